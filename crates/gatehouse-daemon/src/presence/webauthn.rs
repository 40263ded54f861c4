//! WebAuthn verification, the small part Gatehouse needs: ES256 (ECDSA P-256 with SHA-256)
//! credentials, registration with `none`/self attestation (the enrolment code is the trust
//! root, not the authenticator's vendor), and assertions with user verification.
//!
//! Pure: bytes in, a verdict out. The caller keeps the challenges and the credentials.
//! References: W3C Web Authentication Level 2, §7.1 (registration) and §7.2 (assertion);
//! RFC 8152 §13.1.1 (COSE EC2 keys).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Authenticator data flags (§6.1).
pub const FLAG_UP: u8 = 0x01;
pub const FLAG_UV: u8 = 0x04;
pub const FLAG_AT: u8 = 0x40;

/// Why an assertion or a registration was refused. The message names what did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebAuthnError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, WebAuthnError> {
    Err(WebAuthnError(message.into()))
}

/// Decodes a base64url field (padding tolerated), naming it on failure.
pub fn b64(field: &str, text: &str) -> Result<Vec<u8>, WebAuthnError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| WebAuthnError(format!("{field} is not base64url")))
}

pub fn to_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the relying party expects of every ceremony: its id and the page's origin.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    /// `localhost` for a loopback daemon.
    pub id: String,
    /// `http://localhost:PORT`: the only page allowed to ask for a person's presence.
    pub origin: String,
}

#[derive(Debug, Deserialize)]
struct WireClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: bool,
}

/// Checks `clientDataJSON` (§7.2 steps 10–14): the ceremony type, the origin, not cross-origin;
/// returns the challenge bytes it names, for the caller to match with one it issued.
pub fn client_data_challenge(
    rp: &RelyingParty,
    client_data_json: &[u8],
    expected_type: &str,
) -> Result<Vec<u8>, WebAuthnError> {
    let data: WireClientData = serde_json::from_slice(client_data_json)
        .map_err(|err| WebAuthnError(format!("clientDataJSON is not valid: {err}")))?;
    if data.kind != expected_type {
        return fail(format!(
            "clientDataJSON.type is `{}`, expected `{expected_type}`",
            data.kind
        ));
    }
    if data.origin != rp.origin {
        return fail(format!(
            "the assertion was made for the origin `{}`, not the dashboard's `{}`",
            data.origin, rp.origin
        ));
    }
    if data.cross_origin {
        return fail("the assertion was made in a cross-origin frame");
    }
    b64("clientDataJSON.challenge", &data.challenge)
}

/// A credential's public key: the uncompressed SEC1 point of a P-256 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub Vec<u8>);

impl PublicKey {
    fn verifying_key(&self) -> Result<VerifyingKey, WebAuthnError> {
        VerifyingKey::from_sec1_bytes(&self.0)
            .map_err(|_| WebAuthnError("the stored public key is not a P-256 point".into()))
    }
}

/// The parsed authenticator data (§6.1).
#[derive(Debug)]
pub struct AuthenticatorData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
    /// Present in a registration (`AT` flag): the new credential's id and public key.
    pub attested: Option<(Vec<u8>, PublicKey)>,
}

pub fn parse_authenticator_data(bytes: &[u8]) -> Result<AuthenticatorData, WebAuthnError> {
    if bytes.len() < 37 {
        return fail("authenticatorData is shorter than 37 bytes");
    }
    let mut rp_id_hash = [0u8; 32];
    rp_id_hash.copy_from_slice(&bytes[..32]);
    let flags = bytes[32];
    let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
    let attested = if flags & FLAG_AT != 0 {
        // aaguid (16) || credentialIdLength (2) || credentialId || COSE key
        let rest = &bytes[37..];
        if rest.len() < 18 {
            return fail("attested credential data is truncated");
        }
        let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        if id_len == 0 || id_len > 1023 || rest.len() < 18 + id_len {
            return fail("the credential id length is invalid");
        }
        let id = rest[18..18 + id_len].to_vec();
        let mut key_bytes = &rest[18 + id_len..];
        let key: Value = ciborium::from_reader(&mut key_bytes)
            .map_err(|_| WebAuthnError("the credential public key is not CBOR".into()))?;
        Some((id, cose_es256_key(&key)?))
    } else {
        None
    };
    Ok(AuthenticatorData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
    })
}

fn map_get(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    map.iter()
        .find(|(k, _)| {
            k.as_integer()
                .is_some_and(|k| i128::from(k) == i128::from(key))
        })
        .map(|(_, v)| v)
}

fn int_is(value: Option<&Value>, expected: i64) -> bool {
    value
        .and_then(Value::as_integer)
        .is_some_and(|v| i128::from(v) == i128::from(expected))
}

/// A COSE_Key (RFC 8152) that must be EC2 (kty 2), ES256 (alg -7) on P-256 (crv 1).
fn cose_es256_key(key: &Value) -> Result<PublicKey, WebAuthnError> {
    let Some(map) = key.as_map() else {
        return fail("the credential public key is not a COSE map");
    };
    if !int_is(map_get(map, 1), 2) || !int_is(map_get(map, 3), -7) || !int_is(map_get(map, -1), 1) {
        return fail("only ES256 credentials (COSE EC2, alg -7, P-256) are accepted");
    }
    let coordinate = |label| {
        map_get(map, label)
            .and_then(Value::as_bytes)
            .filter(|b| b.len() == 32)
    };
    let (Some(x), Some(y)) = (coordinate(-2), coordinate(-3)) else {
        return fail("the credential public key lacks its 32-byte x and y");
    };
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    let key = PublicKey(point);
    key.verifying_key()?;
    Ok(key)
}

fn check_rp_and_flags(rp: &RelyingParty, data: &AuthenticatorData) -> Result<(), WebAuthnError> {
    let expected: [u8; 32] = Sha256::digest(rp.id.as_bytes()).into();
    if data.rp_id_hash != expected {
        return fail(format!(
            "the authenticator signed for another relying party (rpIdHash is not SHA-256(\"{}\"))",
            rp.id
        ));
    }
    if data.flags & FLAG_UP == 0 {
        return fail("the authenticator did not report user presence (UP flag)");
    }
    if data.flags & FLAG_UV == 0 {
        return fail(
            "the authenticator did not verify the user (UV flag): a PIN, fingerprint or face is required",
        );
    }
    Ok(())
}

/// A new credential, verified (§7.1): what to store.
#[derive(Debug)]
pub struct Registration {
    pub credential_id: Vec<u8>,
    pub public_key: PublicKey,
    pub sign_count: u32,
    /// The challenge `clientDataJSON` names, for the caller to match with one it issued.
    pub challenge: Vec<u8>,
}

/// Verifies a registration (`navigator.credentials.create`): client data of type
/// `webauthn.create` from our origin, an attestation object whose authenticator data is for our
/// RP id, with UP and UV, holding an ES256 credential. The attestation statement is not
/// verified (formats `none` and `packed` self-attestation are what platform authenticators and
/// security keys send by default); the enrolment code or an existing credential vouches for it.
pub fn verify_registration(
    rp: &RelyingParty,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Registration, WebAuthnError> {
    let challenge = client_data_challenge(rp, client_data_json, "webauthn.create")?;
    let object: Value = ciborium::from_reader(attestation_object)
        .map_err(|_| WebAuthnError("attestationObject is not CBOR".into()))?;
    let Some(map) = object.as_map() else {
        return fail("attestationObject is not a CBOR map");
    };
    let auth_data = map
        .iter()
        .find(|(k, _)| k.as_text() == Some("authData"))
        .and_then(|(_, v)| v.as_bytes())
        .ok_or_else(|| WebAuthnError("attestationObject has no authData".into()))?;
    let data = parse_authenticator_data(auth_data)?;
    check_rp_and_flags(rp, &data)?;
    let Some((credential_id, public_key)) = data.attested else {
        return fail("the registration holds no attested credential (AT flag)");
    };
    Ok(Registration {
        credential_id,
        public_key,
        sign_count: data.sign_count,
        challenge,
    })
}

/// A verified assertion: which challenge it answered and the authenticator's new counter.
#[derive(Debug)]
pub struct Assertion {
    pub challenge: Vec<u8>,
    pub sign_count: u32,
}

/// Verifies an assertion (`navigator.credentials.get`, §7.2) made with `key`: client data of
/// type `webauthn.get` from our origin, authenticator data for our RP id with UP and UV, and
/// an ECDSA signature over `authenticatorData || SHA-256(clientDataJSON)`. The caller checks
/// the challenge and the signature counter.
pub fn verify_assertion(
    rp: &RelyingParty,
    key: &PublicKey,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
) -> Result<Assertion, WebAuthnError> {
    let challenge = client_data_challenge(rp, client_data_json, "webauthn.get")?;
    let data = parse_authenticator_data(authenticator_data)?;
    check_rp_and_flags(rp, &data)?;
    let signature = Signature::from_der(signature)
        .map_err(|_| WebAuthnError("the signature is not a DER ECDSA signature".into()))?;
    let mut signed = authenticator_data.to_vec();
    signed.extend_from_slice(&Sha256::digest(client_data_json));
    key.verifying_key()?
        .verify(&signed, &signature)
        .map_err(|_| {
            WebAuthnError("the signature does not verify with the credential's key".into())
        })?;
    Ok(Assertion {
        challenge,
        sign_count: data.sign_count,
    })
}

/// A software authenticator for tests (like `gatehouse_classifier::testing`): it makes the
/// registrations and assertions a browser would send. Nothing in the daemon uses it; a real
/// deployment's private key lives in an authenticator, and enrolling one needs the enrolment
/// code or an existing credential's assertion.
pub mod soft {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    #[derive(Debug, Clone)]
    pub struct SoftAuthenticator {
        pub key: SigningKey,
        pub credential_id: Vec<u8>,
        pub rp_id: String,
        pub origin: String,
        pub counter: u32,
        /// Whether it reports user verification (a real one does after a PIN or biometric).
        pub user_verified: bool,
    }

    impl SoftAuthenticator {
        pub fn new(seed: u8, rp_id: &str, origin: &str) -> SoftAuthenticator {
            let mut scalar = [0x11u8; 32];
            scalar[31] = seed.max(1);
            SoftAuthenticator {
                key: SigningKey::from_bytes((&scalar).into()).unwrap_or_else(|_| unreachable!()),
                credential_id: vec![seed; 16],
                rp_id: rp_id.to_owned(),
                origin: origin.to_owned(),
                counter: 0,
                user_verified: true,
            }
        }

        fn client_data(&self, kind: &str, challenge: &[u8]) -> Vec<u8> {
            serde_json::json!({
                "type": kind,
                "challenge": to_b64(challenge),
                "origin": self.origin,
                "crossOrigin": false,
            })
            .to_string()
            .into_bytes()
        }

        fn auth_data(&self, attested: bool) -> Vec<u8> {
            let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
            let mut flags = FLAG_UP;
            if self.user_verified {
                flags |= FLAG_UV;
            }
            if attested {
                flags |= FLAG_AT;
            }
            data.push(flags);
            data.extend_from_slice(&self.counter.to_be_bytes());
            if attested {
                data.extend_from_slice(&[0u8; 16]);
                data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
                data.extend_from_slice(&self.credential_id);
                let point = self.key.verifying_key().to_encoded_point(false);
                let int = |v: i64| Value::Integer(v.into());
                let cose = Value::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (
                        int(-2),
                        Value::Bytes(point.x().map(|x| x.to_vec()).unwrap_or_default()),
                    ),
                    (
                        int(-3),
                        Value::Bytes(point.y().map(|y| y.to_vec()).unwrap_or_default()),
                    ),
                ]);
                let mut encoded = Vec::new();
                let _ = ciborium::into_writer(&cose, &mut encoded);
                data.extend_from_slice(&encoded);
            }
            data
        }

        /// `(clientDataJSON, attestationObject)` for a registration answering `challenge`.
        pub fn register(&self, challenge: &[u8]) -> (Vec<u8>, Vec<u8>) {
            let object = Value::Map(vec![
                (Value::Text("fmt".into()), Value::Text("none".into())),
                (Value::Text("attStmt".into()), Value::Map(vec![])),
                (
                    Value::Text("authData".into()),
                    Value::Bytes(self.auth_data(true)),
                ),
            ]);
            let mut encoded = Vec::new();
            let _ = ciborium::into_writer(&object, &mut encoded);
            (self.client_data("webauthn.create", challenge), encoded)
        }

        /// `(clientDataJSON, authenticatorData, signature)` answering `challenge`; the counter
        /// goes up by one.
        pub fn assert(&mut self, challenge: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
            self.counter = self.counter.wrapping_add(1);
            let client_data = self.client_data("webauthn.get", challenge);
            let auth_data = self.auth_data(false);
            let mut signed = auth_data.clone();
            signed.extend_from_slice(&Sha256::digest(&client_data));
            let signature: Signature = self.key.sign(&signed);
            (
                client_data,
                auth_data,
                signature.to_der().as_bytes().to_vec(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::soft::SoftAuthenticator;
    use super::*;

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "localhost".into(),
            origin: "http://localhost:7400".into(),
        }
    }

    fn registered(auth: &SoftAuthenticator) -> PublicKey {
        let (client, object) = auth.register(b"enrol-challenge");
        let registration = verify_registration(&rp(), &client, &object).unwrap();
        assert_eq!(registration.credential_id, auth.credential_id);
        assert_eq!(registration.challenge, b"enrol-challenge");
        registration.public_key
    }

    #[test]
    fn a_registration_and_an_assertion_verify() {
        let mut auth = SoftAuthenticator::new(7, "localhost", "http://localhost:7400");
        let key = registered(&auth);
        let (client, data, sig) = auth.assert(b"decide");
        let assertion = verify_assertion(&rp(), &key, &client, &data, &sig).unwrap();
        assert_eq!(assertion.challenge, b"decide");
        assert_eq!(assertion.sign_count, 1);
    }

    #[test]
    fn another_key_origin_rp_or_no_user_verification_is_refused() {
        let mut auth = SoftAuthenticator::new(7, "localhost", "http://localhost:7400");
        let key = registered(&auth);
        let other = registered(&SoftAuthenticator::new(
            9,
            "localhost",
            "http://localhost:7400",
        ));
        let (client, data, sig) = auth.assert(b"x");
        let err = verify_assertion(&rp(), &other, &client, &data, &sig).unwrap_err();
        assert!(err.0.contains("does not verify"), "{err}");

        // A signature over other client data (e.g. another challenge) does not verify.
        let (client2, _, _) = auth.assert(b"y");
        let err = verify_assertion(&rp(), &key, &client2, &data, &sig).unwrap_err();
        assert!(err.0.contains("does not verify"), "{err}");

        let mut evil = SoftAuthenticator::new(7, "localhost", "http://localhost:9999");
        let (client, data, sig) = evil.assert(b"x");
        let err = verify_assertion(&rp(), &key, &client, &data, &sig).unwrap_err();
        assert!(err.0.contains("origin"), "{err}");

        let mut evil = SoftAuthenticator::new(7, "evil.example", "http://localhost:7400");
        let (client, data, sig) = evil.assert(b"x");
        let err = verify_assertion(&rp(), &key, &client, &data, &sig).unwrap_err();
        assert!(err.0.contains("relying party"), "{err}");

        auth.user_verified = false;
        let (client, data, sig) = auth.assert(b"x");
        let err = verify_assertion(&rp(), &key, &client, &data, &sig).unwrap_err();
        assert!(err.0.contains("UV flag"), "{err}");

        // A registration's client data is not an assertion's.
        let (client, _) = auth.register(b"x");
        let (_, data, sig) = auth.assert(b"x");
        let err = verify_assertion(&rp(), &key, &client, &data, &sig).unwrap_err();
        assert!(err.0.contains("webauthn.get"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let key = registered(&SoftAuthenticator::new(
            7,
            "localhost",
            "http://localhost:7400",
        ));
        for (client, data, sig) in [
            (&b""[..], &b""[..], &b""[..]),
            (b"{}", &[0u8; 37][..], b"\x30\x00"),
            (
                br#"{"type":"webauthn.get","challenge":"!!","origin":"http://localhost:7400"}"#,
                &[0u8; 100][..],
                b"",
            ),
        ] {
            assert!(verify_assertion(&rp(), &key, client, data, sig).is_err());
        }
        assert!(parse_authenticator_data(&[0xff; 40]).is_err());
        assert!(verify_registration(&rp(), b"{}", b"\xa0").is_err());
    }
}
