//! Person presence: in the default mode (`approvals.presence = "webauthn"`) every decision by
//! a person carries a WebAuthn assertion with user verification, made by an authenticator
//! enrolled in this data directory, over a single-use challenge the daemon derived from the
//! action, its hash and the decision. Bearer secrets (the approver token, a dashboard cookie)
//! can read, but can no longer decide: an agent that reads every file its user can still cannot
//! produce an assertion, since the private key is in the authenticator, never in a file.
//!
//! Enrolment: the first credential only with a one-time enrolment code the daemon never writes
//! to a file, a log or a URL (the binary shows it on its controlling terminal; in hardened mode
//! it is also in `DATA_DIR/enrolment.code`, readable by the daemon's user only); later
//! credentials only with an assertion of an existing one. `docs/SECURITY.md`, "Person presence",
//! says what remains.
//!
//! *Invariant*: a challenge answers at most one ceremony (it is removed when used or expired),
//! and it is bound to its purpose: an assertion made to approve action A cannot approve B,
//! deny A, or enrol a credential.

pub mod webauthn;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_protocol::{Decision, OWNER, PresenceAssertion};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::now_ms;
use webauthn::{PublicKey, RelyingParty, WebAuthnError, b64, to_b64};

/// Enrolled credentials: public keys and counters only (mode 0600).
pub const CREDENTIALS_FILE: &str = "presence.json";
/// Hardened mode only: the enrolment code, for the daemon's user to read (mode 0600).
pub const ENROLMENT_CODE_FILE: &str = "enrolment.code";
/// How long a challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// Most challenges outstanding at once (the oldest are dropped past it).
const MAX_CHALLENGES: usize = 256;
/// Wrong enrolment codes tolerated before the code is burned (a restart shows a new one).
const ENROLMENT_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceMode {
    /// Every decision by a person needs a WebAuthn assertion with user verification.
    WebAuthn,
    /// The approver token or a dashboard session decides alone (tests and automation).
    Off,
}

impl PresenceMode {
    pub fn parse(text: &str) -> Option<PresenceMode> {
        match text {
            "webauthn" => Some(PresenceMode::WebAuthn),
            "off" => Some(PresenceMode::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PresenceMode::WebAuthn => "webauthn",
            PresenceMode::Off => "off",
        }
    }
}

/// Why a decision or an enrolment was refused for want of presence. Each maps to one error
/// code of the API (`docs/API.md`).
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(
        "this decision needs the person's presence: confirm it in the dashboard with your authenticator \
         (approvals.presence = \"webauthn\"); the approver token alone can read but not decide"
    )]
    Required,
    #[error(
        "no authenticator is enrolled: enrol one in the dashboard with the enrolment code shown on the \
         terminal where `gatehouse serve` started"
    )]
    NotEnrolled,
    #[error("the person's presence could not be verified: {0}")]
    Invalid(String),
    #[error("enrolment refused: {0}")]
    EnrolmentRefused(String),
    #[error("cannot store the enrolled credential: {0}")]
    Store(#[from] std::io::Error),
}

/// What a challenge may be answered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Decide {
        action_id: String,
        action_hash: String,
        decision: Decision,
    },
    /// An assertion of an enrolled credential that allows enrolling another.
    AddCredential,
    /// A registration (`navigator.credentials.create`) of a new credential.
    Register,
}

impl Purpose {
    fn tag(&self) -> Vec<u8> {
        let mut tag = b"gatehouse.presence.v1\0".to_vec();
        match self {
            Purpose::Decide {
                action_id,
                action_hash,
                decision,
            } => {
                let decision = match decision {
                    Decision::Approve => "approve",
                    Decision::Deny => "deny",
                };
                for part in ["decide", action_id, action_hash, decision] {
                    tag.extend_from_slice(part.as_bytes());
                    tag.push(0);
                }
            }
            Purpose::AddCredential => tag.extend_from_slice(b"add-credential\0"),
            Purpose::Register => tag.extend_from_slice(b"register\0"),
        }
        tag
    }
}

struct Issued {
    purpose: Purpose,
    expires: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCredential {
    /// base64url credential id.
    id: String,
    /// base64url uncompressed SEC1 P-256 point.
    public_key: String,
    sign_count: u32,
    created_at_ms: i64,
    name: String,
    /// The person it belongs to (`gatehouse user`); `None`: the owner (every key enrolled
    /// before named approvers, and any enrolled through the approver token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<String>,
}

impl StoredCredential {
    fn person(&self) -> &str {
        self.person.as_deref().unwrap_or(OWNER)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    credentials: Vec<StoredCredential>,
}

struct Enrolment {
    code: String,
    attempts_left: u32,
}

struct State {
    credentials: Vec<StoredCredential>,
    challenges: HashMap<Vec<u8>, Issued>,
    enrolment: Option<Enrolment>,
}

/// Options for `navigator.credentials.get`, as the dashboard passes them on.
#[derive(Debug, Clone, Serialize)]
pub struct RequestOptions {
    pub challenge: String,
    pub rp_id: String,
    pub allow_credentials: Vec<String>,
    pub timeout_ms: u64,
    pub user_verification: &'static str,
}

/// Options for `navigator.credentials.create`.
#[derive(Debug, Clone, Serialize)]
pub struct CreationOptions {
    pub challenge: String,
    pub rp_id: String,
    pub rp_name: &'static str,
    pub user_id: String,
    pub user_name: &'static str,
    pub exclude_credentials: Vec<String>,
    pub timeout_ms: u64,
}

/// `GET /v1/presence`: how decisions are confirmed here.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceStatus {
    pub mode: &'static str,
    pub enrolled: usize,
    pub rp_id: String,
    /// The only origin presence can be given from (`http://localhost:PORT`).
    pub origin: String,
    /// Whether the first credential may be enrolled with the enrolment code now.
    pub enrolment_open: bool,
}

/// A credential as listed (no key material beyond its id).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialInfo {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// The person whose decisions it confirms.
    pub person: String,
}

pub struct Presence {
    mode: PresenceMode,
    rp: RelyingParty,
    path: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("mode", &self.mode)
            .finish()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A typeable code: 16 characters of Crockford base32 (80 bits), in groups of four.
fn new_enrolment_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes = random_bytes::<16>();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Presence {
    /// Loads the enrolled credentials from `data_dir`. With none enrolled (and presence on),
    /// opens enrolment with a fresh code; `write_code_file` (hardened mode) also puts it in
    /// `DATA_DIR/enrolment.code` for the daemon's user.
    pub fn open(
        mode: PresenceMode,
        data_dir: &Path,
        rp: RelyingParty,
        write_code_file: bool,
    ) -> std::io::Result<Presence> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<StoredFile>(&bytes).map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not valid: {err}", path.display()),
                )
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => StoredFile::default(),
            Err(err) => return Err(err),
        };
        let code_file = data_dir.join(ENROLMENT_CODE_FILE);
        let enrolment =
            (mode == PresenceMode::WebAuthn && stored.credentials.is_empty()).then(|| Enrolment {
                code: new_enrolment_code(),
                attempts_left: ENROLMENT_ATTEMPTS,
            });
        match &enrolment {
            Some(enrolment) if write_code_file => {
                write_private(&code_file, format!("{}\n", enrolment.code).as_bytes())?
            }
            _ => match std::fs::remove_file(&code_file) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            },
        }
        Ok(Presence {
            mode,
            rp,
            path,
            state: Mutex::new(State {
                credentials: stored.credentials,
                challenges: HashMap::new(),
                enrolment,
            }),
        })
    }

    pub fn mode(&self) -> PresenceMode {
        self.mode
    }

    pub fn origin(&self) -> &str {
        &self.rp.origin
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, PresenceError> {
        self.state
            .lock()
            .map_err(|_| PresenceError::Invalid("the presence state is unavailable".into()))
    }

    /// The enrolment code while enrolment is open: for the binary to show on its terminal.
    /// Never logged, never served.
    pub fn enrolment_code(&self) -> Option<String> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.enrolment.as_ref().map(|e| e.code.clone()))
    }

    pub fn status(&self) -> PresenceStatus {
        let (enrolled, enrolment_open) = self
            .state
            .lock()
            .map(|s| (s.credentials.len(), s.enrolment.is_some()))
            .unwrap_or((0, false));
        PresenceStatus {
            mode: self.mode.as_str(),
            enrolled,
            rp_id: self.rp.id.clone(),
            origin: self.rp.origin.clone(),
            enrolment_open,
        }
    }

    pub fn credentials(&self) -> Vec<CredentialInfo> {
        self.state
            .lock()
            .map(|s| {
                s.credentials
                    .iter()
                    .map(|c| CredentialInfo {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        created_at_ms: c.created_at_ms,
                        person: c.person().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn issue(state: &mut State, purpose: Purpose) -> Vec<u8> {
        let now = Instant::now();
        state.challenges.retain(|_, issued| issued.expires > now);
        if state.challenges.len() >= MAX_CHALLENGES
            && let Some(oldest) = state
                .challenges
                .iter()
                .min_by_key(|(_, issued)| issued.expires)
                .map(|(challenge, _)| challenge.clone())
        {
            state.challenges.remove(&oldest);
        }
        let mut hasher = Sha256::new();
        hasher.update(purpose.tag());
        hasher.update(random_bytes::<32>());
        let challenge = hasher.finalize().to_vec();
        state.challenges.insert(
            challenge.clone(),
            Issued {
                purpose,
                expires: now + CHALLENGE_TTL,
            },
        );
        challenge
    }

    fn request_options(&self, state: &mut State, purpose: Purpose) -> RequestOptions {
        let challenge = Self::issue(state, purpose);
        RequestOptions {
            challenge: to_b64(&challenge),
            rp_id: self.rp.id.clone(),
            allow_credentials: state.credentials.iter().map(|c| c.id.clone()).collect(),
            timeout_ms: CHALLENGE_TTL.as_millis() as u64,
            user_verification: "required",
        }
    }

    /// A challenge for deciding `action_id` (whose hash is `action_hash`) with `decision`.
    pub fn decision_challenge(
        &self,
        action_id: &str,
        action_hash: &str,
        decision: Decision,
    ) -> Result<RequestOptions, PresenceError> {
        let mut state = self.lock()?;
        if state.credentials.is_empty() {
            return Err(PresenceError::NotEnrolled);
        }
        Ok(self.request_options(
            &mut state,
            Purpose::Decide {
                action_id: action_id.to_owned(),
                action_hash: action_hash.to_ascii_lowercase(),
                decision,
            },
        ))
    }

    /// A challenge for an enrolled credential to vouch for a new one.
    pub fn add_credential_challenge(&self) -> Result<RequestOptions, PresenceError> {
        let mut state = self.lock()?;
        if state.credentials.is_empty() {
            return Err(PresenceError::NotEnrolled);
        }
        Ok(self.request_options(&mut state, Purpose::AddCredential))
    }

    /// Verifies `assertion` against the enrolled credentials and spends its challenge, which
    /// must have been issued for `purpose`. The credential's counter moves forward. Returns the
    /// person the credential belongs to.
    fn verify(
        &self,
        assertion: &PresenceAssertion,
        purpose: &Purpose,
    ) -> Result<String, PresenceError> {
        let invalid = |err: WebAuthnError| PresenceError::Invalid(err.0);
        let id = b64("presence.credential_id", &assertion.credential_id).map_err(invalid)?;
        let client_data =
            b64("presence.client_data_json", &assertion.client_data_json).map_err(invalid)?;
        let auth_data =
            b64("presence.authenticator_data", &assertion.authenticator_data).map_err(invalid)?;
        let signature = b64("presence.signature", &assertion.signature).map_err(invalid)?;
        let mut state = self.lock()?;
        if state.credentials.is_empty() {
            return Err(PresenceError::NotEnrolled);
        }
        let id = to_b64(&id);
        let index = state
            .credentials
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| PresenceError::Invalid("the credential is not enrolled here".into()))?;
        let key =
            PublicKey(b64("public_key", &state.credentials[index].public_key).map_err(invalid)?);
        let verified =
            webauthn::verify_assertion(&self.rp, &key, &client_data, &auth_data, &signature)
                .map_err(invalid)?;
        let stored = &mut state.credentials[index];
        // §7.2 step 21: a counter that does not move forward may be a cloned authenticator, or
        // a replayed assertion. Authenticators without a counter report 0 every time.
        if (verified.sign_count != 0 || stored.sign_count != 0)
            && verified.sign_count <= stored.sign_count
        {
            return Err(PresenceError::Invalid(format!(
                "the authenticator's signature counter went from {} to {}: a cloned authenticator or a replayed assertion",
                stored.sign_count, verified.sign_count
            )));
        }
        if verified.sign_count != stored.sign_count {
            stored.sign_count = verified.sign_count;
            self.persist(&state)?;
        }
        // Single use: whatever it was issued for, a challenge that was answered is spent.
        let issued = state
            .challenges
            .remove(&verified.challenge)
            .ok_or_else(|| {
                PresenceError::Invalid(
                    "the challenge is unknown, expired or already used: ask for a new one".into(),
                )
            })?;
        if issued.expires <= Instant::now() {
            return Err(PresenceError::Invalid("the challenge expired".into()));
        }
        if &issued.purpose != purpose {
            return Err(PresenceError::Invalid(
                "the assertion answers a challenge issued for another action, hash or decision"
                    .into(),
            ));
        }
        Ok(state.credentials[index].person().to_owned())
    }

    /// Verifies a person's presence for deciding `action_id` (hash `action_hash`) with
    /// `decision`. With presence off, there is nothing to verify.
    pub fn verify_decision(
        &self,
        action_id: &str,
        action_hash: Option<&str>,
        decision: Decision,
        assertion: Option<&PresenceAssertion>,
    ) -> Result<(), PresenceError> {
        if self.mode == PresenceMode::Off {
            return Ok(());
        }
        let (Some(assertion), Some(action_hash)) = (assertion, action_hash) else {
            return Err(PresenceError::Required);
        };
        self.verify(
            assertion,
            &Purpose::Decide {
                action_id: action_id.to_owned(),
                action_hash: action_hash.to_ascii_lowercase(),
                decision,
            },
        )
        .map(|_| ())
    }

    /// As [`Presence::verify_decision`], and the authenticator must be `person`'s own: one
    /// person's key cannot confirm another's decision (nor a reviewer's token borrow an
    /// approver's key).
    pub fn verify_decision_by(
        &self,
        person: &str,
        action_id: &str,
        action_hash: Option<&str>,
        decision: Decision,
        assertion: Option<&PresenceAssertion>,
    ) -> Result<(), PresenceError> {
        if self.mode == PresenceMode::Off {
            return Ok(());
        }
        let (Some(assertion), Some(action_hash)) = (assertion, action_hash) else {
            return Err(PresenceError::Required);
        };
        let owner = self.verify(
            assertion,
            &Purpose::Decide {
                action_id: action_id.to_owned(),
                action_hash: action_hash.to_ascii_lowercase(),
                decision,
            },
        )?;
        if owner != person {
            return Err(PresenceError::Invalid(format!(
                "this authenticator is {owner}'s: {person} confirms with their own"
            )));
        }
        Ok(())
    }

    /// Starts enrolling a credential: the first one with the enrolment code, later ones with an
    /// assertion of an enrolled credential (answering `add_credential_challenge`).
    pub fn begin_enrolment(
        &self,
        code: Option<&str>,
        assertion: Option<&PresenceAssertion>,
    ) -> Result<CreationOptions, PresenceError> {
        if self.mode == PresenceMode::Off {
            return Err(PresenceError::EnrolmentRefused(
                "presence is off (approvals.presence = \"off\")".into(),
            ));
        }
        let first = self.lock()?.credentials.is_empty();
        if first {
            let mut state = self.lock()?;
            let Some(enrolment) = state.enrolment.as_mut() else {
                return Err(PresenceError::EnrolmentRefused(
                    "the enrolment code was burned by wrong attempts: restart `gatehouse serve` in a terminal for a new one"
                        .into(),
                ));
            };
            let given = normalise_code(code.unwrap_or_default());
            let expected = normalise_code(&enrolment.code);
            let matches = given.len() == expected.len()
                && bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
            if !matches {
                enrolment.attempts_left = enrolment.attempts_left.saturating_sub(1);
                let left = enrolment.attempts_left;
                if left == 0 {
                    state.enrolment = None;
                }
                tracing::warn!(
                    attempts_left = left,
                    "a wrong presence enrolment code was given"
                );
                return Err(PresenceError::EnrolmentRefused(format!(
                    "the enrolment code is not the one shown on the daemon's terminal ({left} attempts left)"
                )));
            }
        } else {
            let assertion = assertion.ok_or_else(|| {
                PresenceError::EnrolmentRefused(
                    "an authenticator is already enrolled: confirm with it to add another".into(),
                )
            })?;
            self.verify(assertion, &Purpose::AddCredential)
                .map(|_| ())?;
        }
        let mut state = self.lock()?;
        let challenge = Self::issue(&mut state, Purpose::Register);
        Ok(CreationOptions {
            challenge: to_b64(&challenge),
            rp_id: self.rp.id.clone(),
            rp_name: "Gatehouse",
            user_id: to_b64(b"gatehouse-approver"),
            user_name: "gatehouse-approver",
            exclude_credentials: state.credentials.iter().map(|c| c.id.clone()).collect(),
            timeout_ms: CHALLENGE_TTL.as_millis() as u64,
        })
    }

    /// Finishes an enrolment begun with `begin_enrolment`: verifies the registration and stores
    /// the credential's public key. Closes the enrolment code.
    pub fn finish_enrolment(
        &self,
        client_data_json: &str,
        attestation_object: &str,
        name: &str,
    ) -> Result<CredentialInfo, PresenceError> {
        self.finish_enrolment_for(OWNER, client_data_json, attestation_object, name)
    }

    /// As [`Presence::finish_enrolment`], binding the credential to `person` (the person
    /// whose session or token enrols it): it confirms only their decisions.
    pub fn finish_enrolment_for(
        &self,
        person: &str,
        client_data_json: &str,
        attestation_object: &str,
        name: &str,
    ) -> Result<CredentialInfo, PresenceError> {
        let refused = |err: WebAuthnError| PresenceError::EnrolmentRefused(err.0);
        let client_data = b64("client_data_json", client_data_json).map_err(refused)?;
        let object = b64("attestation_object", attestation_object).map_err(refused)?;
        let registration =
            webauthn::verify_registration(&self.rp, &client_data, &object).map_err(refused)?;
        let mut state = self.lock()?;
        match state.challenges.remove(&registration.challenge) {
            Some(issued)
                if issued.purpose == Purpose::Register && issued.expires > Instant::now() => {}
            _ => {
                return Err(PresenceError::EnrolmentRefused(
                    "the registration does not answer an enrolment this daemon began (or it expired)"
                        .into(),
                ));
            }
        }
        let id = to_b64(&registration.credential_id);
        if state.credentials.iter().any(|c| c.id == id) {
            return Err(PresenceError::EnrolmentRefused(
                "this credential is already enrolled".into(),
            ));
        }
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        let credential = StoredCredential {
            id: id.clone(),
            public_key: to_b64(&registration.public_key.0),
            sign_count: registration.sign_count,
            created_at_ms: now_ms(),
            name: if name.is_empty() {
                "authenticator".into()
            } else {
                name
            },
            person: (person != OWNER).then(|| person.to_owned()),
        };
        state.credentials.push(credential.clone());
        if let Err(err) = self.persist(&state) {
            state.credentials.pop();
            return Err(err.into());
        }
        state.enrolment = None;
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_file(dir.join(ENROLMENT_CODE_FILE));
        }
        tracing::info!(credential = %id, "a presence authenticator was enrolled");
        Ok(CredentialInfo {
            id,
            name: credential.name,
            created_at_ms: credential.created_at_ms,
            person: person.to_owned(),
        })
    }

    fn persist(&self, state: &State) -> std::io::Result<()> {
        let file = StoredFile {
            credentials: state.credentials.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
        write_private(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests;
