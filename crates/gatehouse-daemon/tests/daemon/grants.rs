//! Standing grants through the real daemon under builtin:developer: proposed from a paused
//! action, saved with its approval, the next similar action allowed (naming the grant) while an
//! unrelated one still pauses, revocation and expiry, refusals for the classes never granted,
//! suggestions from repeated approvals, presence, and the fatigue counts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon};

async fn daemon() -> (TestDaemon, tempfile::TempDir) {
    let project = tempfile::tempdir().unwrap();
    let setup = Setup {
        policy: "include = [\"builtin:developer\"]\n".into(),
        ..Setup::default()
    };
    (setup.start().await, project)
}

fn bash(command: &str, project: &tempfile::TempDir) -> Value {
    json!({
        "tool": "Bash",
        "input": { "command": command },
        "cwd": project.path().to_str().unwrap(),
        "session_id": "sess-1",
        "wait_ms": 0,
    })
}

async fn check(d: &TestDaemon, body: Value) -> Value {
    let (status, answer) = d.check(body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn proposal(d: &TestDaemon, id: &str) -> Value {
    let (status, body) = d
        .get(&d.approver.clone(), &format!("/v1/actions/{id}/grant"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn save(d: &TestDaemon, id: &str, extra: Value) -> (StatusCode, Value) {
    let shown = d.action(id).await;
    let mut body =
        json!({ "action_hash": shown["action_hash"], "scope": "project", "expires": "1h" });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    d.post(
        &d.approver.clone(),
        &format!("/v1/actions/{id}/grant"),
        body,
    )
    .await
}

#[tokio::test]
async fn a_saved_grant_allows_the_next_similar_action_until_it_is_revoked() {
    let (d, project) = daemon().await;
    let first = check(&d, bash("docker ps -a", &project)).await;
    assert_eq!(first["verdict"], "pending", "{first}");
    let id = first["action_id"].as_str().unwrap();
    let offered = proposal(&d, id).await;
    assert_eq!(offered["offered"], true, "{offered}");
    assert_eq!(offered["rules"][0]["command"]["program"], "docker");
    assert!(offered["toml"].as_str().unwrap().contains("docker"));
    assert_eq!(
        offered["scopes"],
        json!(["session", "project", "everywhere"])
    );

    let (status, created) = save(&d, id, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        created["action"]["verdict"], "allow",
        "the action is approved with it"
    );
    let grant_id = created["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["grant"]["status"], "active");
    assert_eq!(created["grant"]["scope"]["kind"], "project");

    let again = check(&d, bash("docker ps -a", &project)).await;
    assert_eq!(again["verdict"], "allow", "{again}");
    assert_eq!(again["rule_id"], format!("grant:{grant_id}"));
    assert!(again["reason"].as_str().unwrap().contains(&grant_id));
    let recorded = d.action(again["action_id"].as_str().unwrap()).await;
    assert_eq!(recorded["rule_id"], format!("grant:{grant_id}"));
    // Unrelated actions still pause; so does the same command in another project.
    let unrelated = check(&d, bash("docker images", &project)).await;
    assert_eq!(unrelated["verdict"], "pending");
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(
        check(&d, bash("docker ps -a", &elsewhere)).await["verdict"],
        "pending"
    );

    let (_, list) = d.get(&d.approver.clone(), "/v1/grants").await;
    assert_eq!(list["grants"][0]["id"], grant_id.as_str());
    assert_eq!(list["grants"][0]["allowed"], 1);
    let (_, stats) = d
        .get(&d.approver.clone(), "/v1/grants/stats?since_ms=0")
        .await;
    assert_eq!(stats["granted"], 1, "{stats}");
    assert_eq!(stats["paused"], 3, "{stats}");
    assert_eq!(stats["share_answered_by_grants"], 0.25);

    let (status, revoked) = d
        .post(
            &d.approver.clone(),
            &format!("/v1/grants/{grant_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        check(&d, bash("docker ps -a", &project)).await["verdict"],
        "pending"
    );
    let (status, _) = d
        .post(&d.approver.clone(), "/v1/grants/grt_nope/revoke", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test]
async fn a_grant_expires_by_itself() {
    let (d, project) = daemon().await;
    let first = check(&d, bash("du -sh /var/log", &project)).await;
    let id = first["action_id"].as_str().unwrap();
    let expires_at = gatehouse_daemon::now_ms() + 1_500;
    let (status, created) = save(
        &d,
        id,
        json!({ "expires": null, "expires_at_ms": expires_at }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        check(&d, bash("du -sh /var/log", &project)).await["verdict"],
        "allow"
    );
    // Expiry is a time, not an event: wait until it has passed.
    let left = expires_at - gatehouse_daemon::now_ms();
    tokio::time::sleep(Duration::from_millis(left.max(0) as u64 + 50)).await;
    assert_eq!(
        check(&d, bash("du -sh /var/log", &project)).await["verdict"],
        "pending"
    );
    let (_, list) = d.get(&d.approver.clone(), "/v1/grants").await;
    assert_eq!(list["grants"][0]["status"], "expired");
    d.stop().await;
}

#[tokio::test]
async fn never_offered_and_refused_when_forced_for_secrets_rejects_and_self_protection() {
    let (d, project) = daemon().await;
    // A project secret: paused by the rules, never granted.
    let env = project.path().join(".env");
    let secret = check(
        &d,
        json!({ "tool": "Read", "input": { "file_path": env.to_str().unwrap() },
                "cwd": project.path().to_str().unwrap(), "wait_ms": 0 }),
    )
    .await;
    assert_eq!(secret["verdict"], "pending", "{secret}");
    let id = secret["action_id"].as_str().unwrap();
    let offered = proposal(&d, id).await;
    assert_eq!(offered["offered"], false);
    assert_eq!(offered["refused"]["code"], "secrets", "{offered}");
    let forced = json!({ "rules": [{ "tool": "Read" }] });
    let (status, body) = save(&d, id, forced).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "grant_refused", "{body}");
    assert_eq!(
        d.action(id).await["verdict"],
        "pending",
        "nothing was decided"
    );

    // A reject rule's action.
    let rejected = check(&d, bash("git push --force origin main", &project)).await;
    assert_eq!(rejected["verdict"], "reject");
    let id = rejected["action_id"].as_str().unwrap();
    assert_eq!(proposal(&d, id).await["refused"]["code"], "rejected");
    assert_eq!(save(&d, id, json!({})).await.0, StatusCode::CONFLICT);

    // Gatehouse's own token: self-protection.
    let token = d.data_dir().join("approver.token");
    let guarded = check(
        &d,
        json!({ "tool": "Bash", "input": { "command": format!("cat {}", token.display()) },
                "cwd": project.path().to_str().unwrap(), "wait_ms": 0 }),
    )
    .await;
    let id = guarded["action_id"].as_str().unwrap();
    assert_eq!(proposal(&d, id).await["refused"]["code"], "self_protection");

    // Egress to a host this deployment never reached.
    let fetch = check(&d, bash("curl https://example.com/data.json", &project)).await;
    assert_eq!(fetch["verdict"], "pending");
    let id = fetch["action_id"].as_str().unwrap();
    assert_eq!(proposal(&d, id).await["refused"]["code"], "new_host");
    assert_eq!(save(&d, id, json!({})).await.0, StatusCode::CONFLICT);

    let (_, list) = d.get(&d.approver.clone(), "/v1/grants").await;
    assert_eq!(list["grants"], json!([]), "no grant was recorded");
    d.stop().await;
}

#[tokio::test]
async fn repeated_approvals_become_a_suggestion_a_person_saves() {
    let (d, project) = daemon().await;
    for _ in 0..3 {
        let paused = check(&d, bash("du -sh /var/log", &project)).await;
        let (status, body) = d
            .decide(paused["action_id"].as_str().unwrap(), "approve")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Approved twice only: not yet.
    for _ in 0..2 {
        let paused = check(&d, bash("docker ps", &project)).await;
        d.decide(paused["action_id"].as_str().unwrap(), "approve")
            .await;
    }
    let (status, found) = d.get(&d.approver.clone(), "/v1/grants/suggestions").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let suggestions = found["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1, "{found}");
    assert_eq!(suggestions[0]["approvals"], 3);
    assert!(
        suggestions[0]["summary"]
            .as_str()
            .unwrap()
            .contains("du -sh /var/log")
    );
    // Nothing is applied by suggesting it.
    assert_eq!(
        check(&d, bash("du -sh /var/log", &project)).await["verdict"],
        "pending"
    );
    let id = suggestions[0]["action_id"].as_str().unwrap();
    let (status, created) = save(
        &d,
        id,
        json!({ "scope": "everywhere", "expires": "always" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["grant"]["expires_at_ms"], Value::Null);
    assert_eq!(
        check(&d, bash("du -sh /var/log", &project)).await["verdict"],
        "allow"
    );
    let (_, found) = d.get(&d.approver.clone(), "/v1/grants/suggestions").await;
    assert_eq!(
        found["suggestions"],
        json!([]),
        "a granted kind is no longer suggested"
    );
    d.stop().await;
}

#[tokio::test]
async fn edited_rules_are_previewed_and_must_cover_the_action() {
    let (d, project) = daemon().await;
    for dir in ["/var/log", "/var/lib"] {
        check(&d, bash(&format!("du -sh {dir}"), &project)).await;
    }
    let paused = check(&d, bash("du -sh /var/log", &project)).await;
    let id = paused["action_id"].as_str().unwrap();
    let offered = proposal(&d, id).await;
    assert_eq!(
        offered["would_allow"], 1,
        "the earlier du of /var/log: {offered}"
    );
    let wider = json!({ "rules": [{ "tool": "Bash", "command": { "program": "du" } }], "scope": "project" });
    let (status, preview) = d
        .post(
            &d.approver.clone(),
            &format!("/v1/actions/{id}/grant/preview"),
            wider,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["covers_action"], true);
    assert_eq!(preview["would_allow"], 2, "{preview}");
    let unrelated = json!({ "rules": [{ "tool": "Bash", "command": { "program": "ls" } }] });
    let (status, body) = save(&d, id, unrelated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "rules");
    let (status, body) = save(&d, id, json!({ "scope": "galaxy" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "scope");
    assert_eq!(d.action(id).await["verdict"], "pending");
    d.stop().await;
}

#[tokio::test]
async fn saving_a_grant_needs_the_person_when_presence_is_on() {
    let project = tempfile::tempdir().unwrap();
    let mut setup = Setup::default().config(|c| c.approvals.presence = "webauthn".into());
    setup.policy = "include = [\"builtin:developer\"]\n".into();
    let d = setup.start().await;
    let paused = check(&d, bash("docker ps -a", &project)).await;
    let id = paused["action_id"].as_str().unwrap();
    let (status, body) = save(&d, id, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(d.action(id).await["verdict"], "pending");
    let (_, list) = d.get(&d.approver.clone(), "/v1/grants").await;
    assert_eq!(list["grants"], json!([]));
    d.stop().await;
}
