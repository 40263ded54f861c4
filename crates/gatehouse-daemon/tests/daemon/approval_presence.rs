//! Person presence (the default, `approvals.presence = "webauthn"`): a bearer secret alone —
//! the approver token, a dashboard session — reads but cannot decide; an enrolled
//! authenticator's assertion decides exactly the action, hash and decision its challenge was
//! issued for, once. Enrolment needs the code only the daemon's terminal shows.
//!
//! The authenticator here is a software one (`presence::webauthn::soft`), as a browser's would
//! answer; the browser test (tests/e2e/presence.test.mjs) uses Chromium's virtual authenticator.

use gatehouse_daemon::presence::webauthn::soft::SoftAuthenticator;
use gatehouse_daemon::presence::webauthn::{b64, to_b64};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::boundary::log_in;
use crate::support::{Setup, TestDaemon, paused};

/// A daemon with presence on, as it ships.
pub(crate) async fn with_presence() -> TestDaemon {
    Setup::default()
        .config(|config| config.approvals.presence = "webauthn".into())
        .start()
        .await
}

pub(crate) fn origin(daemon: &TestDaemon) -> String {
    format!("http://localhost:{}", daemon.port)
}

fn assert_error(reply: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
}

/// Parks a paused action; returns its id and hash.
pub(crate) async fn park(daemon: &TestDaemon, command: &str) -> (String, String) {
    let (status, parked) = daemon
        .check(json!({"tool": "Bash", "input": {"command": command}, "wait_ms": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{parked}");
    assert_eq!(parked["verdict"], "pending", "{parked}");
    let id = parked["action_id"].as_str().unwrap().to_owned();
    let hash = daemon.action(&id).await["action_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, hash)
}

/// Enrols `auth` with the enrolment code (which the binary shows on its terminal only).
pub(crate) async fn enrol(daemon: &TestDaemon, auth: &SoftAuthenticator) {
    let code = daemon
        .state
        .presence()
        .enrolment_code()
        .expect("enrolment is open while nothing is enrolled");
    let (status, options) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol",
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let challenge = b64("challenge", options["challenge"].as_str().unwrap()).unwrap();
    let (client, object) = auth.register(&challenge);
    let (status, enrolled) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol/finish",
            json!({"client_data_json": to_b64(&client), "attestation_object": to_b64(&object), "name": "test key"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
}

/// Asks for the challenge of (`id`, `hash`, `decision`) and signs it.
pub(crate) async fn assertion(
    daemon: &TestDaemon,
    auth: &mut SoftAuthenticator,
    id: &str,
    hash: &str,
    decision: &str,
) -> Value {
    let (status, options) = daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/presence"),
            json!({"decision": decision, "action_hash": hash}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["rp_id"], "localhost");
    assert_eq!(options["user_verification"], "required");
    let challenge = b64("challenge", options["challenge"].as_str().unwrap()).unwrap();
    let (client, data, signature) = auth.assert(&challenge);
    json!({
        "credential_id": to_b64(&auth.credential_id),
        "client_data_json": to_b64(&client),
        "authenticator_data": to_b64(&data),
        "signature": to_b64(&signature),
    })
}

async fn decide_with(
    daemon: &TestDaemon,
    id: &str,
    hash: &str,
    decision: &str,
    presence: Option<Value>,
) -> (StatusCode, Value) {
    let mut body = json!({"decision": decision, "action_hash": hash});
    if let Some(presence) = presence {
        body["presence"] = presence;
    }
    daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/decision"),
            body,
        )
        .await
}

fn human_decisions(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM decisions WHERE decided_by = 'human'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_approver_token_alone_reads_but_cannot_decide() {
    let daemon = with_presence().await;
    let (_, health) = daemon.get("", "/healthz").await;
    assert_eq!(health["presence"], "webauthn", "{health}");
    let (id, hash) = park(&daemon, "git push origin main").await;

    // Reading still works with the token.
    let (status, list) = daemon
        .get(&daemon.approver.clone(), "/v1/actions?status=pending")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["actions"][0]["action_id"], id.as_str());

    for decision in ["approve", "deny"] {
        let reply = decide_with(&daemon, &id, &hash, decision, None).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "presence_required");
        assert_eq!(reply.1["error"]["field"], "presence");
    }
    // Nothing is enrolled: no challenge can be had either.
    let reply = daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/presence"),
            json!({"decision": "approve", "action_hash": hash}),
        )
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_not_enrolled");
    // A forged assertion (a key nobody enrolled) is refused the same way.
    let mut stranger = SoftAuthenticator::new(66, "localhost", &origin(&daemon));
    let (client, data, sig) = stranger.assert(b"made up");
    let forged = json!({"credential_id": to_b64(&stranger.credential_id), "client_data_json": to_b64(&client), "authenticator_data": to_b64(&data), "signature": to_b64(&sig)});
    let reply = decide_with(&daemon, &id, &hash, "approve", Some(forged)).await;
    assert_eq!(reply.0, StatusCode::FORBIDDEN, "{}", reply.1);

    // A dashboard session is a bearer secret too.
    assert!(
        daemon.login_url.starts_with(&origin(&daemon)),
        "with presence on, the dashboard is served from localhost (a WebAuthn RP id): {}",
        daemon.login_url
    );
    let session = log_in(&daemon, &daemon.login_url).await;
    let reply = daemon
        .http
        .post(daemon.url(&format!("/v1/actions/{id}/decision")))
        .header("cookie", &session.cookie)
        .header("x-gatehouse-csrf", &session.csrf)
        .json(&json!({"decision": "approve", "action_hash": hash}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "presence_required", "{body}");

    let action = daemon.action(&id).await;
    assert_eq!(action["verdict"], "pending", "{action}");
    assert_eq!(daemon.count("SELECT count(*) FROM decisions"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_authenticator_decides_exactly_what_it_was_asked_once() {
    let daemon = with_presence().await;
    let mut auth = SoftAuthenticator::new(7, "localhost", &origin(&daemon));
    enrol(&daemon, &auth).await;
    assert_eq!(
        daemon.state.presence().enrolment_code(),
        None,
        "enrolment closes once a credential exists"
    );
    let (a, hash_a) = park(&daemon, "git push origin a").await;
    let (b, hash_b) = park(&daemon, "git push origin b").await;

    // The waiting check is released by the approval.
    let waiter = {
        let http = daemon.http.clone();
        let url = daemon.url(&format!("/v1/actions/{a}?wait_ms=20000"));
        let agent = daemon.agent.clone();
        tokio::spawn(async move {
            let reply = http.get(url).bearer_auth(agent).send().await.unwrap();
            reply.json::<Value>().await.unwrap()
        })
    };

    // An assertion made to approve A: it cannot approve B, nor deny A.
    let for_a = assertion(&daemon, &mut auth, &a, &hash_a, "approve").await;
    let reply = decide_with(&daemon, &b, &hash_b, "approve", Some(for_a.clone())).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_invalid");
    let for_a = assertion(&daemon, &mut auth, &a, &hash_a, "approve").await;
    let reply = decide_with(&daemon, &a, &hash_a, "deny", Some(for_a)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_invalid");
    // Without user verification (presence but no PIN/biometric): refused.
    auth.user_verified = false;
    let unverified = assertion(&daemon, &mut auth, &a, &hash_a, "approve").await;
    let reply = decide_with(&daemon, &a, &hash_a, "approve", Some(unverified)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_invalid");
    assert!(reply.1["error"]["message"].as_str().unwrap().contains("UV"));
    auth.user_verified = true;
    // Made on another page (origin): refused.
    let mut elsewhere = auth.clone();
    elsewhere.origin = "http://127.0.0.1:1".into();
    let other_origin = assertion(&daemon, &mut elsewhere, &a, &hash_a, "approve").await;
    auth.counter = elsewhere.counter;
    let reply = decide_with(&daemon, &a, &hash_a, "approve", Some(other_origin)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_invalid");
    assert_eq!(daemon.count("SELECT count(*) FROM decisions"), 0);

    // The real thing.
    let good = assertion(&daemon, &mut auth, &a, &hash_a, "approve").await;
    let (status, decided) = decide_with(&daemon, &a, &hash_a, "approve", Some(good.clone())).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["verdict"], "allow");
    assert_eq!(decided["decision"]["decided_by"], "human");
    let answer = waiter.await.unwrap();
    assert_eq!(answer["verdict"], "allow", "{answer}");

    // Replayed on B (its challenge is spent and its counter is old): refused.
    let reply = decide_with(&daemon, &b, &hash_b, "approve", Some(good)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "presence_invalid");
    // A challenge for a decided action is not issued.
    let reply = daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{a}/presence"),
            json!({"decision": "deny", "action_hash": hash_a}),
        )
        .await;
    assert_error(&reply, StatusCode::CONFLICT, "already_decided");
    // A deny needs presence too, and works with it.
    let deny_b = assertion(&daemon, &mut auth, &b, &hash_b, "deny").await;
    let (status, denied) = decide_with(&daemon, &b, &hash_b, "deny", Some(deny_b)).await;
    assert_eq!(status, StatusCode::OK, "{denied}");
    assert_eq!(denied["verdict"], "reject");
    assert_eq!(human_decisions(&daemon), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_needs_the_terminal_code_or_an_enrolled_authenticator() {
    let daemon = with_presence().await;
    let code = daemon.state.presence().enrolment_code().unwrap();
    // The code is in no response, file or log line an agent could read.
    let (_, status) = daemon.get(&daemon.approver.clone(), "/v1/presence").await;
    assert_eq!(status["enrolled"], 0);
    assert_eq!(status["enrolment_open"], true);
    let (_, health) = daemon.get("", "/healthz").await;
    assert!(!status.to_string().contains(&code) && !health.to_string().contains(&code));
    assert!(!daemon.login_url.contains(&code));
    for entry in std::fs::read_dir(daemon.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&code),
                "{} holds the enrolment code",
                path.display()
            );
        }
    }
    // A wrong code is refused, and an agent's own authenticator cannot be slipped in.
    let reply = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol",
            json!({"code": "0000-0000-0000-0000"}),
        )
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "enrolment_refused");
    let agents = SoftAuthenticator::new(99, "localhost", &origin(&daemon));
    let (client, object) = agents.register(b"a challenge the daemon never issued");
    let reply = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol/finish",
            json!({"client_data_json": to_b64(&client), "attestation_object": to_b64(&object)}),
        )
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "enrolment_refused");
    // The agent token cannot even ask.
    let reply = daemon
        .post(
            &daemon.agent.clone(),
            "/v1/presence/enrol",
            json!({"code": code}),
        )
        .await;
    assert_eq!(reply.0, StatusCode::FORBIDDEN, "{}", reply.1);

    let mut first = SoftAuthenticator::new(7, "localhost", &origin(&daemon));
    enrol(&daemon, &first).await;
    // Now the code is spent; a second authenticator needs the first one's assertion.
    let reply = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol",
            json!({"code": code}),
        )
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "enrolment_refused");
    let (status, options) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/credentials/challenge",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let challenge = b64("c", options["challenge"].as_str().unwrap()).unwrap();
    let (client, data, sig) = first.assert(&challenge);
    let vouch = json!({"credential_id": to_b64(&first.credential_id), "client_data_json": to_b64(&client), "authenticator_data": to_b64(&data), "signature": to_b64(&sig)});
    let (status, options) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol",
            json!({"presence": vouch}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let second = SoftAuthenticator::new(8, "localhost", &origin(&daemon));
    let (client, object) =
        second.register(&b64("c", options["challenge"].as_str().unwrap()).unwrap());
    let (status, _) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/presence/enrol/finish",
            json!({"client_data_json": to_b64(&client), "attestation_object": to_b64(&object)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, status) = daemon.get(&daemon.approver.clone(), "/v1/presence").await;
    assert_eq!(status["enrolled"], 2, "{status}");
    assert_eq!(status["enrolment_open"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_off_must_be_chosen_and_is_reported() {
    let daemon = TestDaemon::start().await; // the harness sets presence = "off"
    let (_, health) = daemon.get("", "/healthz").await;
    assert_eq!(health["presence"], "off", "{health}");
    let (id, _) = park(&daemon, "git push origin main").await;
    let (status, decided) = daemon.decide(&id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    // An unknown mode is a configuration error, not a silent "off".
    let mut config = gatehouse_daemon::Config::default();
    config.approvals.presence = "maybe".into();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("approvals.presence"), "{err}");
    assert_eq!(
        gatehouse_daemon::Config::default().approvals.presence,
        "webauthn"
    );
    let _ = paused(0);
}
