//! Attacks on approvals: an approval is a single-use capability bound to the action's hash. A
//! replay, an approval carried to another action or to an edited one, and racing decisions must
//! all leave exactly the decisions a person meant, and nothing else, in the ledger.

use std::sync::Arc;

use gatehouse_ledger::{ActionIdentity, action_hash};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestDaemon;

/// A paused check (the test policy pauses `git push…`), answered at once.
fn push(command: &str) -> Value {
    json!({"tool": "Bash", "input": {"command": command}, "cwd": "/work", "wait_ms": 0})
}

/// Parks a paused action and returns its id and its `action_hash` as the approver sees it.
async fn park(daemon: &TestDaemon, command: &str) -> (String, String) {
    let (status, parked) = daemon.check(push(command)).await;
    assert_eq!(status, StatusCode::OK, "{parked}");
    assert_eq!(parked["verdict"], "pending", "{parked}");
    let id = parked["action_id"].as_str().unwrap().to_owned();
    let hash = daemon.action(&id).await["action_hash"]
        .as_str()
        .expect("an action_hash")
        .to_owned();
    (id, hash)
}

async fn decide(daemon: &TestDaemon, id: &str, body: Value) -> (StatusCode, Value) {
    daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/decision"),
            body,
        )
        .await
}

fn decisions(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM decisions")
}

fn assert_error(reply: &(StatusCode, Value), status: StatusCode, code: &str, field: Option<&str>) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    assert_eq!(reply.1["error"]["field"].as_str(), field, "{}", reply.1);
}

async fn assert_pending(daemon: &TestDaemon, id: &str) {
    let action = daemon.action(id).await;
    assert_eq!(action["verdict"], "pending", "{action}");
    assert!(action["decision"].is_null(), "{action}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_hash_is_the_documented_hash_of_what_the_approver_is_shown() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let shown = daemon.action(&id).await;
    let input = shown["input"].as_object().unwrap();
    let expected = ActionIdentity {
        tool: "Bash",
        input,
        cwd: Some("/work"),
        session_id: None,
        tool_use_id: None,
    };
    assert_eq!(
        expected.canonical_json(),
        r#"{"cwd":"/work","input":{"command":"git push origin main"},"session_id":null,"tool":"Bash","tool_use_id":null}"#
    );
    assert_eq!(hash, action_hash::to_hex(&expected.hash()));
    assert_eq!(hash.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_approval_is_refused_and_one_decision_stands() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let approval = json!({"decision": "approve", "action_hash": hash});
    let first = decide(&daemon, &id, approval.clone()).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["verdict"], "allow");
    assert_eq!(first.1["decision"]["action_hash"], hash.as_str());

    for _ in 0..3 {
        let replay = decide(&daemon, &id, approval.clone()).await;
        assert_error(&replay, StatusCode::CONFLICT, "already_decided", None);
    }
    assert_eq!(decisions(&daemon), 1, "a replay records nothing");
    let stored: Vec<u8> = daemon
        .ledger()
        .query_row(
            "SELECT action_hash FROM decisions WHERE action_id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(action_hash::to_hex(&stored.try_into().unwrap()), hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_carrying_another_actions_hash_decides_nothing() {
    let daemon = TestDaemon::start().await;
    let (harmless, harmless_hash) = park(&daemon, "git push origin docs").await;
    let (dangerous, dangerous_hash) = park(&daemon, "git push --force origin main").await;
    assert_ne!(harmless_hash, dangerous_hash);

    // The approval the person gave for the harmless push, sent for the dangerous one.
    let carried = json!({"decision": "approve", "action_hash": harmless_hash});
    let reply = decide(&daemon, &dangerous, carried).await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        "action_mismatch",
        Some("action_hash"),
    );
    assert_eq!(decisions(&daemon), 0, "nothing was recorded");
    assert_pending(&daemon, &dangerous).await;
    assert_pending(&daemon, &harmless).await;

    // Both are still decidable, each with its own hash.
    let reply = decide(
        &daemon,
        &dangerous,
        json!({"decision": "deny", "action_hash": dangerous_hash}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    assert_eq!(reply.1["verdict"], "reject");
    let reply = decide(
        &daemon,
        &harmless,
        json!({"decision": "approve", "action_hash": harmless_hash}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    assert_eq!(reply.1["verdict"], "allow");
    assert_eq!(decisions(&daemon), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_for_an_edited_version_of_the_action_is_refused() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let shown = daemon.action(&id).await;
    // What a person approved when shown an edited action under the same id: same tool, cwd
    // and ids, a different input; or the same input with another cwd.
    let edited_input = json!({"command": "git push --force origin main"});
    let edited_input = edited_input.as_object().unwrap();
    let same_input = shown["input"].as_object().unwrap();
    let edits = [
        ActionIdentity {
            tool: "Bash",
            input: edited_input,
            cwd: Some("/work"),
            session_id: None,
            tool_use_id: None,
        },
        ActionIdentity {
            tool: "Bash",
            input: same_input,
            cwd: Some("/"),
            session_id: None,
            tool_use_id: None,
        },
        ActionIdentity {
            tool: "Bash",
            input: same_input,
            cwd: Some("/work"),
            session_id: Some("another-session"),
            tool_use_id: None,
        },
    ];
    for edit in edits {
        let edited_hash = action_hash::to_hex(&edit.hash());
        assert_ne!(edited_hash, hash);
        let reply = decide(
            &daemon,
            &id,
            json!({"decision": "approve", "action_hash": edited_hash}),
        )
        .await;
        assert_error(
            &reply,
            StatusCode::CONFLICT,
            "action_mismatch",
            Some("action_hash"),
        );
        assert_pending(&daemon, &id).await;
    }
    assert_eq!(decisions(&daemon), 0);
    // The right hash decides it, in either case of hex digits.
    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash.to_uppercase()}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_must_name_a_well_formed_hash_and_a_denial_that_names_one_is_checked() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let (_, other_hash) = park(&daemon, "git push origin other").await;
    let malformed = [
        json!({"decision": "approve"}),
        json!({"decision": "approve", "action_hash": null}),
        json!({"decision": "approve", "action_hash": ""}),
        json!({"decision": "approve", "action_hash": "zz".repeat(32)}),
        json!({"decision": "approve", "action_hash": &hash[..63]}),
        json!({"decision": "approve", "action_hash": format!("{hash}00")}),
        json!({"decision": "deny", "action_hash": "not hex"}),
    ];
    for body in malformed {
        let reply = decide(&daemon, &id, body.clone()).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{body}: {}", reply.1);
        assert_eq!(reply.1["error"]["code"], "invalid_request", "{body}");
        assert_eq!(reply.1["error"]["field"], "action_hash", "{body}");
    }
    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": 7}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{}", reply.1);
    assert_eq!(reply.1["error"]["field"], "action_hash");

    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "deny", "action_hash": other_hash}),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        "action_mismatch",
        Some("action_hash"),
    );
    assert_pending(&daemon, &id).await;
    assert_eq!(
        decisions(&daemon),
        0,
        "no malformed or mismatched decision landed"
    );

    // A denial without a hash still stops the action (denying is always safe).
    let reply = decide(&daemon, &id, json!({"decision": "deny"})).await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    assert_eq!(reply.1["verdict"], "reject");
    assert!(reply.1["decision"].get("action_hash").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_and_denials_land_exactly_one_decision() {
    let daemon = Arc::new(TestDaemon::start().await);
    for round in 0..5 {
        let (id, hash) = park(&daemon, &format!("git push origin r{round}")).await;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (daemon, id, hash) = (daemon.clone(), id.clone(), hash.clone());
                tokio::spawn(async move {
                    let decision = if i % 2 == 0 { "approve" } else { "deny" };
                    decide(
                        &daemon,
                        &id,
                        json!({"decision": decision, "action_hash": hash}),
                    )
                    .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::OK => winners.push(body),
                StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "already_decided"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one decision wins");
        let stored = daemon.action(&id).await;
        assert_eq!(
            stored["verdict"], winners[0]["verdict"],
            "the winner stands"
        );
        let count: i64 = daemon
            .ledger()
            .query_row(
                "SELECT count(*) FROM decisions WHERE action_id = ?1",
                [&id],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(count, 1, "round {round}");
    }
}

/// An approval authorises the one tool call named by (session_id, tool_use_id): the re-sent
/// check gets it, a different action under those ids is a conflict, and the same action asked
/// again without ids is a new action that needs its own decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_authorises_exactly_one_tool_call() {
    let daemon = TestDaemon::start().await;
    let call = json!({"tool": "Bash", "input": {"command": "git push origin main"},
                      "session_id": "s1", "tool_use_id": "toolu_1", "wait_ms": 0});
    let (_, parked) = daemon.check(call.clone()).await;
    let id = parked["action_id"].as_str().unwrap().to_owned();
    let hash = daemon.action(&id).await["action_hash"].clone();
    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);

    // The re-sent check re-attaches and gets the same decision.
    let (status, resent) = daemon.check(call.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resent["action_id"], id.as_str());
    assert_eq!(resent["verdict"], "allow");

    // Another action under the same ids is refused, not approved.
    let mut other = call.clone();
    other["input"]["command"] = json!("git push --force origin main");
    let (status, conflict) = daemon.check(other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["error"]["code"], "tool_use_conflict");
    assert_eq!(conflict["error"]["field"], "tool_use_id");

    // The same action asked again as a new call (new tool_use_id, or none) needs a new decision.
    for fresh in [
        json!({"tool": "Bash", "input": {"command": "git push origin main"},
               "session_id": "s1", "tool_use_id": "toolu_2", "wait_ms": 0}),
        json!({"tool": "Bash", "input": {"command": "git push origin main"}, "wait_ms": 0}),
    ] {
        let (status, asked) = daemon.check(fresh).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(asked["action_id"], id.as_str());
        assert_eq!(asked["verdict"], "pending", "{asked}");
    }
    assert_eq!(daemon.count("SELECT count(*) FROM actions"), 3);
    assert_eq!(decisions(&daemon), 1);
}
