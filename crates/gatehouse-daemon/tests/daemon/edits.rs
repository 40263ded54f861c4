//! Edit then approve, and deny with guidance: a person's edited input reaches the waiting agent
//! (`updated_input`) and the ledger (original, edited, hash, who) only if the rules would not
//! reject it and self-protection does not guard it; a denial's note reaches the agent (`note`,
//! and in `reason`). Presence is bound to the edited action's hash.

use gatehouse_daemon::presence::webauthn::b64;
use gatehouse_daemon::presence::webauthn::soft::SoftAuthenticator;
use gatehouse_daemon::presence::webauthn::to_b64;
use gatehouse_ledger::{ActionIdentity, action_hash};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::approval_presence::{assertion, enrol, with_presence};
use crate::support::TestDaemon;

/// A paused check (`git push…` pauses under the test policy), answered at once.
async fn park(daemon: &TestDaemon, command: &str) -> (String, String) {
    let (status, parked) = daemon
        .check(
            json!({"tool": "Bash", "input": {"command": command}, "cwd": "/work",
                      "session_id": "s1", "tool_use_id": format!("t-{command}"), "wait_ms": 0}),
        )
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

async fn decide(daemon: &TestDaemon, id: &str, body: Value) -> (StatusCode, Value) {
    daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/decision"),
            body,
        )
        .await
}

/// What the waiting agent gets: its long-poll of the action with the agent token.
async fn agent_view(daemon: &TestDaemon, id: &str) -> Value {
    let (status, body) = daemon
        .get(
            &daemon.agent.clone(),
            &format!("/v1/actions/{id}?wait_ms=0"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn edited_hash(command: &str, tool_use_id: &str) -> String {
    let input = json!({"command": command});
    action_hash::to_hex(
        &ActionIdentity {
            tool: "Bash",
            input: input.as_object().unwrap(),
            cwd: Some("/work"),
            session_id: Some("s1"),
            tool_use_id: Some(tool_use_id),
        }
        .hash(),
    )
}

fn assert_refused(reply: &(StatusCode, Value), status: StatusCode, code: &str, field: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    assert_eq!(reply.1["error"]["field"], field, "{}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_note_reaches_the_waiting_agent_and_the_ledger() {
    let daemon = TestDaemon::start().await;
    let mut events = daemon.events().await;
    let waiting = {
        let agent = daemon.agent.clone();
        let http = reqwest::Client::new();
        let url = daemon.url("/v1/check");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(agent)
                .json(
                    &json!({"tool": "Bash", "input": {"command": "git push origin main"},
                              "wait_ms": 20_000}),
                )
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let pending = events.next_of("action.pending").await;
    let id = pending["action"]["action_id"].as_str().unwrap().to_owned();
    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "deny", "note": "use --dry-run first"}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    let answer = waiting.await.unwrap();
    assert_eq!(answer["verdict"], "reject", "{answer}");
    assert_eq!(answer["note"], "use --dry-run first", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("use --dry-run first"),
        "{answer}"
    );
    assert!(answer.get("updated_input").is_none(), "{answer}");
    assert_eq!(
        daemon.count("SELECT count(*) FROM decisions WHERE note = 'use --dry-run first'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_approval_reaches_the_agent_and_the_ledger_keeps_both_inputs() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let reply = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "note": "dry run only",
               "input": {"command": "git push --dry-run origin main"}}),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    let view = reply.1;
    assert_eq!(view["verdict"], "allow", "{view}");
    // The action keeps what was asked; the decision carries what was approved.
    assert_eq!(view["input"]["command"], "git push origin main");
    let edit = &view["decision"]["edit"];
    assert_eq!(
        edit["edited_input"],
        json!({"command": "git push --dry-run origin main"})
    );
    assert_eq!(
        edit["edited_hash"],
        edited_hash("git push --dry-run origin main", "t-git push origin main")
    );
    assert_eq!(edit["edited_by"], "owner (token)");
    assert_eq!(view["decision"]["action_hash"], hash.as_str());

    let answer = agent_view(&daemon, &id).await;
    assert_eq!(answer["verdict"], "allow", "{answer}");
    assert_eq!(
        answer["updated_input"],
        json!({"command": "git push --dry-run origin main"})
    );
    assert_eq!(answer["note"], "dry run only");

    assert_eq!(
        daemon.count(
            "SELECT count(*) FROM edits WHERE original_input = '{\"command\":\"git push origin main\"}'
               AND edited_input = '{\"command\":\"git push --dry-run origin main\"}'"
        ),
        1
    );
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind = 'edit'"),
        1
    );
    let (status, history) = daemon
        .get(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/history"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        history["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["kind"] == "edited"),
        "{history}"
    );
    // A second answer, edited or not, finds it decided.
    let again = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": {"command": "ls"}}),
    )
    .await;
    assert_eq!(again.0, StatusCode::CONFLICT, "{}", again.1);
    assert_eq!(again.1["error"]["code"], "already_decided");
    assert_eq!(daemon.count("SELECT count(*) FROM edits"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_the_rules_reject_or_self_protection_guards_is_refused_and_nothing_is_decided() {
    let daemon = TestDaemon::start().await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let rejected = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": {"command": "rm -rf build"}}),
    )
    .await;
    assert_refused(
        &rejected,
        StatusCode::UNPROCESSABLE_ENTITY,
        "edit_refused",
        "input",
    );
    assert!(
        rejected.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reject-rm-rf"),
        "{}",
        rejected.1
    );
    let token = daemon.data_dir().join("approver.token");
    let guarded = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash,
               "input": {"command": format!("cat {}", token.display())}}),
    )
    .await;
    assert_refused(
        &guarded,
        StatusCode::UNPROCESSABLE_ENTITY,
        "edit_refused",
        "input",
    );
    assert!(
        guarded.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("self-protection"),
        "{}",
        guarded.1
    );
    // Malformed edits: a denial with an input, an input that is not an object, no hash.
    let deny = decide(
        &daemon,
        &id,
        json!({"decision": "deny", "action_hash": hash, "input": {"command": "ls"}}),
    )
    .await;
    assert_refused(&deny, StatusCode::BAD_REQUEST, "invalid_request", "input");
    let not_object = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": "ls"}),
    )
    .await;
    assert_eq!(not_object.0, StatusCode::BAD_REQUEST, "{}", not_object.1);
    let no_hash = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "input": {"command": "git push --dry-run"}}),
    )
    .await;
    assert_refused(
        &no_hash,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "action_hash",
    );
    // An edit of another action's hash lands nowhere.
    let (_, other_hash) = park(&daemon, "git push origin other").await;
    let mismatch = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": other_hash,
               "input": {"command": "git push --dry-run"}}),
    )
    .await;
    assert_refused(
        &mismatch,
        StatusCode::CONFLICT,
        "action_mismatch",
        "action_hash",
    );
    assert_eq!(daemon.count("SELECT count(*) FROM decisions"), 0);
    assert_eq!(daemon.count("SELECT count(*) FROM edits"), 0);
    assert_eq!(daemon.action(&id).await["verdict"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_for_an_edit_is_bound_to_the_edited_hash() {
    let daemon = with_presence().await;
    let mut auth =
        SoftAuthenticator::new(7, "localhost", &crate::approval_presence::origin(&daemon));
    enrol(&daemon, &auth).await;
    let (id, hash) = park(&daemon, "git push origin main").await;
    let edited = json!({"command": "git push --dry-run origin main"});
    // An assertion over the plain approval's challenge cannot approve an edit.
    let plain = assertion(&daemon, &mut auth, &id, &hash, "approve").await;
    let refused = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": edited, "presence": plain}),
    )
    .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN, "{}", refused.1);
    // The edit's own challenge, for another edit, cannot either.
    let other = edit_assertion(
        &daemon,
        &mut auth,
        &id,
        &hash,
        json!({"command": "git push --dry-run origin other"}),
    )
    .await;
    let refused = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": edited, "presence": other}),
    )
    .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN, "{}", refused.1);
    assert_eq!(daemon.count("SELECT count(*) FROM decisions"), 0);
    // The challenge for this edit does.
    let mine = edit_assertion(&daemon, &mut auth, &id, &hash, edited.clone()).await;
    let approved = decide(
        &daemon,
        &id,
        json!({"decision": "approve", "action_hash": hash, "input": edited, "presence": mine}),
    )
    .await;
    assert_eq!(approved.0, StatusCode::OK, "{}", approved.1);
    let by = approved.1["decision"]["edit"]["edited_by"]
        .as_str()
        .unwrap();
    assert!(by.contains("authenticator"), "{by}");
}

/// Signs the challenge issued for approving `input` in place of the action's input.
async fn edit_assertion(
    daemon: &TestDaemon,
    auth: &mut SoftAuthenticator,
    id: &str,
    hash: &str,
    input: Value,
) -> Value {
    let (status, options) = daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/presence"),
            json!({"decision": "approve", "action_hash": hash, "input": input}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let challenge = b64("challenge", options["challenge"].as_str().unwrap()).unwrap();
    let (client, data, signature) = auth.assert(&challenge);
    json!({
        "credential_id": to_b64(&auth.credential_id),
        "client_data_json": to_b64(&client),
        "authenticator_data": to_b64(&data),
        "signature": to_b64(&signature),
    })
}
