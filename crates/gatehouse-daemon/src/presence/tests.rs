//! Unit tests of person presence: challenges bound to their purpose, counters, enrolment.

use super::webauthn::soft::SoftAuthenticator;
use super::*;

const ORIGIN: &str = "http://localhost:7400";

fn presence(dir: &Path) -> Presence {
    let rp = RelyingParty {
        id: "localhost".into(),
        origin: ORIGIN.into(),
    };
    Presence::open(PresenceMode::WebAuthn, dir, rp, false).unwrap()
}

fn wire(auth: &mut SoftAuthenticator, challenge: &str) -> PresenceAssertion {
    let (client, data, sig) = auth.assert(&b64("c", challenge).unwrap());
    PresenceAssertion {
        credential_id: to_b64(&auth.credential_id),
        client_data_json: to_b64(&client),
        authenticator_data: to_b64(&data),
        signature: to_b64(&sig),
    }
}

fn enrol(presence: &Presence, auth: &SoftAuthenticator) {
    let code = presence.enrolment_code().unwrap();
    let options = presence
        .begin_enrolment(Some(&code.to_lowercase()), None)
        .unwrap();
    let (client, object) = auth.register(&b64("c", &options.challenge).unwrap());
    presence
        .finish_enrolment(&to_b64(&client), &to_b64(&object), "test key")
        .unwrap();
}

#[test]
fn a_decision_needs_an_assertion_for_that_action_hash_and_decision() {
    let dir = tempfile::tempdir().unwrap();
    let presence = presence(dir.path());
    let mut auth = SoftAuthenticator::new(3, "localhost", ORIGIN);
    assert!(matches!(
        presence.decision_challenge("act_1", "ab", Decision::Approve),
        Err(PresenceError::NotEnrolled)
    ));
    enrol(&presence, &auth);
    assert_eq!(presence.enrolment_code(), None, "enrolment closes");
    assert!(matches!(
        presence.verify_decision("act_1", Some("ab"), Decision::Approve, None),
        Err(PresenceError::Required)
    ));

    let options = presence
        .decision_challenge("act_1", "ab", Decision::Approve)
        .unwrap();
    let assertion = wire(&mut auth, &options.challenge);
    for (id, hash, decision) in [
        ("act_2", "ab", Decision::Approve),
        ("act_1", "cd", Decision::Approve),
        ("act_1", "ab", Decision::Deny),
    ] {
        // Another purpose spends the challenge too: it is single-use whatever happens.
        let options = presence
            .decision_challenge("act_1", "ab", Decision::Approve)
            .unwrap();
        let other = wire(&mut auth, &options.challenge);
        let err = presence
            .verify_decision(id, Some(hash), decision, Some(&other))
            .unwrap_err();
        assert!(err.to_string().contains("another action"), "{err}");
    }
    // The counter moved past the first assertion's: it is refused as a replay.
    let err = presence
        .verify_decision("act_1", Some("ab"), Decision::Approve, Some(&assertion))
        .unwrap_err();
    assert!(err.to_string().contains("counter"), "{err}");

    let options = presence
        .decision_challenge("act_1", "AB", Decision::Approve)
        .unwrap();
    let assertion = wire(&mut auth, &options.challenge);
    presence
        .verify_decision("act_1", Some("ab"), Decision::Approve, Some(&assertion))
        .unwrap();
    let err = presence
        .verify_decision("act_1", Some("ab"), Decision::Approve, Some(&assertion))
        .unwrap_err();
    assert!(err.to_string().contains("replayed"), "{err}");
    // An authenticator without a counter (always 0) still cannot reuse a challenge.
    let dir = tempfile::tempdir().unwrap();
    let presence = self::presence(dir.path());
    let mut counterless = SoftAuthenticator::new(5, "localhost", ORIGIN);
    enrol(&presence, &counterless);
    let options = presence
        .decision_challenge("act_1", "ab", Decision::Deny)
        .unwrap();
    counterless.counter = u32::MAX; // wraps to 0 on the next assertion
    let assertion = wire(&mut counterless, &options.challenge);
    presence
        .verify_decision("act_1", Some("ab"), Decision::Deny, Some(&assertion))
        .unwrap();
    let err = presence
        .verify_decision("act_1", Some("ab"), Decision::Deny, Some(&assertion))
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
}

#[test]
fn enrolment_needs_the_code_then_an_enrolled_credential() {
    let dir = tempfile::tempdir().unwrap();
    let presence = presence(dir.path());
    for _ in 0..ENROLMENT_ATTEMPTS {
        assert!(presence.begin_enrolment(Some("WRONG"), None).is_err());
    }
    assert_eq!(presence.enrolment_code(), None, "burned by wrong attempts");
    let err = presence.begin_enrolment(None, None).unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let presence_a = self::presence(dir.path());
    let mut first = SoftAuthenticator::new(3, "localhost", ORIGIN);
    enrol(&presence_a, &first);
    // A registration nobody began is refused, even one that verifies.
    let second = SoftAuthenticator::new(4, "localhost", ORIGIN);
    let (client, object) = second.register(b"made-up challenge");
    assert!(
        presence_a
            .finish_enrolment(&to_b64(&client), &to_b64(&object), "x")
            .is_err()
    );
    // With a credential enrolled, the code no longer works; an assertion does.
    assert!(presence_a.begin_enrolment(Some("anything"), None).is_err());
    let options = presence_a.add_credential_challenge().unwrap();
    let assertion = wire(&mut first, &options.challenge);
    let options = presence_a.begin_enrolment(None, Some(&assertion)).unwrap();
    let (client, object) = second.register(&b64("c", &options.challenge).unwrap());
    presence_a
        .finish_enrolment(&to_b64(&client), &to_b64(&object), "second")
        .unwrap();

    // The credentials survive a restart: public keys only, in a private file.
    let reopened = self::presence(dir.path());
    assert_eq!(reopened.status().enrolled, 2);
    assert_eq!(reopened.enrolment_code(), None);
    let text = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
    assert!(text.contains("public_key") && !text.contains("private"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn hardened_mode_keeps_the_code_in_a_private_file_until_one_is_enrolled() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let rp = RelyingParty {
        id: "localhost".into(),
        origin: ORIGIN.into(),
    };
    let presence = Presence::open(PresenceMode::WebAuthn, dir.path(), rp.clone(), true).unwrap();
    let file = dir.path().join(ENROLMENT_CODE_FILE);
    let code = presence.enrolment_code().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), code);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    enrol(&presence, &SoftAuthenticator::new(3, "localhost", ORIGIN));
    assert!(!file.exists(), "removed once an authenticator is enrolled");
    // Presence off: no code, no file, and nothing to enrol.
    let dir = tempfile::tempdir().unwrap();
    let off = Presence::open(PresenceMode::Off, dir.path(), rp, true).unwrap();
    assert_eq!(off.enrolment_code(), None);
    assert!(!dir.path().join(ENROLMENT_CODE_FILE).exists());
    assert!(off.begin_enrolment(Some("x"), None).is_err());
    off.verify_decision("act", None, Decision::Approve, None)
        .unwrap();
}

#[test]
fn a_key_confirms_only_its_own_persons_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let presence = presence(dir.path());
    let mut auth = SoftAuthenticator::new(3, "localhost", ORIGIN);
    let code = presence.enrolment_code().unwrap();
    let options = presence.begin_enrolment(Some(&code), None).unwrap();
    let (client, object) = auth.register(&b64("c", &options.challenge).unwrap());
    let info = presence
        .finish_enrolment_for("alice", &to_b64(&client), &to_b64(&object), "alice's key")
        .unwrap();
    assert_eq!(info.person, "alice");
    assert_eq!(presence.credentials()[0].person, "alice");

    let options = presence
        .decision_challenge("act_1", "ab", Decision::Approve)
        .unwrap();
    let assertion = wire(&mut auth, &options.challenge);
    let err = presence
        .verify_decision_by(
            "bob",
            "act_1",
            Some("ab"),
            Decision::Approve,
            Some(&assertion),
        )
        .unwrap_err();
    assert!(err.to_string().contains("alice's"), "{err}");
    let options = presence
        .decision_challenge("act_1", "ab", Decision::Approve)
        .unwrap();
    let assertion = wire(&mut auth, &options.challenge);
    presence
        .verify_decision_by(
            "alice",
            "act_1",
            Some("ab"),
            Decision::Approve,
            Some(&assertion),
        )
        .unwrap();
    // The binding is stored with the key (a key stored without one is the owner's).
    let stored = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
    assert!(stored.contains("\"person\": \"alice\""), "{stored}");
}
