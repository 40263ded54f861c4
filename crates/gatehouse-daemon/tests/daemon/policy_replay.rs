//! `POST /v1/policy/replay`: a candidate policy replayed over the actions this daemon recorded
//! reports exactly what would change; a broken candidate and an agent's token are refused.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TEST_POLICY, TestDaemon, allowed, paused, rejected};

/// A daemon whose ledger holds one allowed (`ls -la`), one rejected (`rm -rf /`) and one paused
/// (`git push`) action, recorded by real checks.
async fn daemon_with_three_actions() -> TestDaemon {
    let daemon = TestDaemon::start().await;
    for (body, verdict) in [
        (allowed(), "allow"),
        (rejected(), "reject"),
        (paused(0), "pending"),
    ] {
        let (status, response) = daemon.check(body).await;
        assert_eq!(status, StatusCode::OK, "{response}");
        assert_eq!(response["verdict"], verdict, "{response}");
    }
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_rejects_one_recorded_action_reports_exactly_that_change() {
    let daemon = daemon_with_three_actions().await;
    let approver = daemon.approver.clone();

    // The policy in force changes nothing.
    let (status, same) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": TEST_POLICY}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["replayed"], 3, "{same}");
    for change in ["newly_allowed", "newly_paused", "newly_rejected"] {
        assert_eq!(same[change]["count"], 0, "{change}: {same}");
    }

    // `ls` is no longer allowed: one action goes from allow to reject, nothing else moves.
    let candidate = TEST_POLICY.replace(
        "id = \"allow-ls\"\neffect = \"allow\"",
        "id = \"no-ls\"\neffect = \"reject\"",
    );
    assert_ne!(candidate, TEST_POLICY);
    let (status, report) = daemon
        .post(&approver, "/v1/policy/replay", json!({"policy": candidate}))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["replayed"], 3, "{report}");
    assert_eq!(report["newly_rejected"]["count"], 1, "{report}");
    assert_eq!(report["newly_allowed"]["count"], 0, "{report}");
    assert_eq!(report["newly_paused"]["count"], 0, "{report}");
    let example = &report["newly_rejected"]["examples"][0];
    assert_eq!(example["tool"], "Bash", "{report}");
    assert_eq!(example["summary"], "ls -la", "{report}");
    assert_eq!(example["was"], "allow", "{report}");
    assert_eq!(example["was_rule"], "allow-ls", "{report}");
    assert_eq!(example["now"], "reject", "{report}");
    assert_eq!(example["now_rule"], "no-ls", "{report}");
    assert_eq!(report["matrix"]["allow"]["reject"], 1, "{report}");
    assert_eq!(report["matrix"]["reject"]["reject"], 1, "{report}");
    assert_eq!(report["matrix"]["pause"]["pause"], 1, "{report}");

    // A window after every recorded action replays nothing.
    let later = gatehouse_daemon::now_ms() + 60_000;
    let (status, none) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": candidate, "since_ms": later}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{none}");
    assert_eq!(none["replayed"], 0, "{none}");

    // Replaying changed nothing in force: `ls` is still allowed.
    let (_, still) = daemon.check(allowed()).await;
    assert_eq!(still["verdict"], "allow", "{still}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_candidate_is_a_400_naming_the_policy_field() {
    let daemon = daemon_with_three_actions().await;
    let approver = daemon.approver.clone();
    let (status, body) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": "default = \"sometimes\"\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "policy", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not load"),
        "{body}"
    );

    let (status, body) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": TEST_POLICY, "examples": 100_000}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "examples", "{body}");

    let (status, body) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": TEST_POLICY, "unknown": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Adds a person with the owner's token; returns their token.
async fn add_user(daemon: &TestDaemon, name: &str, role: &str) -> String {
    let (status, body) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/users",
            json!({"name": name, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_replays_and_a_reviewer_does_not() {
    let daemon = daemon_with_three_actions().await;
    let approver = add_user(&daemon, "alice", "approver").await;
    let reviewer = add_user(&daemon, "rita", "reviewer").await;
    let (status, report) = daemon
        .post(
            &approver,
            "/v1/policy/replay",
            json!({"policy": TEST_POLICY}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["replayed"], 3, "{report}");
    let (status, body) = daemon
        .post(
            &reviewer,
            "/v1/policy/replay",
            json!({"policy": TEST_POLICY}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_role", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_cannot_replay_a_policy() {
    let daemon = daemon_with_three_actions().await;
    let agent = daemon.agent.clone();
    let (status, body) = daemon
        .post(&agent, "/v1/policy/replay", json!({"policy": TEST_POLICY}))
        .await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
        "{status} {body}"
    );
    assert!(body.get("replayed").is_none(), "{body}");
    let (status, _) = daemon
        .post("", "/v1/policy/replay", json!({"policy": TEST_POLICY}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
