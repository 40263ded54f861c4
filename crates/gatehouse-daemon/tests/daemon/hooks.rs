//! Issue 10: Claude Code's HTTP hook (`POST /v1/hooks/claude-code`) and outcome reports
//! (`/v1/outcomes`). Every failure of the hook endpoint is Claude Code's explicit deny in a 200
//! answer; an allowed call is `{}`; outcomes land in the ledger linked to their action, or
//! flagged when nothing was checked.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon};

fn pre(command: &str, tool_use_id: &str) -> Value {
    json!({
        "session_id": "sess-1",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/tmp",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "d"},
        "tool_use_id": tool_use_id,
        "agent_id": "sub-7",
        "agent_type": "general-purpose",
    })
}

async fn hook(daemon: &TestDaemon, token: &str, body: &[u8]) -> Value {
    let response = daemon
        .http
        .post(daemon.url("/v1/hooks/claude-code"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the hook answers 200, always"
    );
    response.json().await.unwrap()
}

fn is_deny(answer: &Value) -> bool {
    answer["hookSpecificOutput"]["permissionDecision"] == "deny"
        && answer["decision"] == "block"
        && answer["hookSpecificOutput"]["permissionDecisionReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Gatehouse: "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_http_hook_allows_rejects_and_records_identity() {
    let daemon = TestDaemon::start().await;
    let agent = daemon.agent.clone();
    let allowed = hook(
        &daemon,
        &agent,
        pre("ls -la", "toolu_a").to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        allowed,
        json!({}),
        "allowed: no opinion, Claude Code's own flow goes on"
    );
    let rejected = hook(
        &daemon,
        &agent,
        pre("rm -rf /", "toolu_b").to_string().as_bytes(),
    )
    .await;
    assert!(is_deny(&rejected), "{rejected}");
    let reason = rejected["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("recursive forced delete"), "{reason}");

    let (_, list) = daemon.get(&daemon.approver.clone(), "/v1/actions").await;
    let action = list["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tool_use_id"] == "toolu_a")
        .unwrap()
        .clone();
    assert_eq!(action["session_id"], "sess-1");
    assert_eq!(action["agent"], "claude-code");
    assert_eq!(action["cwd"], "/tmp");
    assert_eq!(action["context"]["agent_id"], "sub-7");
    assert_eq!(action["context"]["agent_type"], "general-purpose");
    assert_eq!(action["context"]["hook_event"], "PreToolUse");
    // A re-sent call re-attaches to its action instead of making a second one.
    let again = hook(
        &daemon,
        &agent,
        pre("ls -la", "toolu_a").to_string().as_bytes(),
    )
    .await;
    assert_eq!(again, json!({}));
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions WHERE tool_use_id = 'toolu_a'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_of_the_http_hook_is_an_explicit_deny() {
    let daemon = TestDaemon::start().await;
    let agent = daemon.agent.clone();
    let good = pre("ls -la", "toolu_x").to_string();
    let approver = daemon.approver.clone();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("bad token", "not-the-token", good.clone().into_bytes()),
        ("approver token", approver.as_str(), good.clone().into_bytes()),
        ("not JSON", agent.as_str(), b"not json".to_vec()),
        ("truncated", agent.as_str(), good.as_bytes()[..good.len() / 2].to_vec()),
        ("empty", agent.as_str(), Vec::new()),
        (
            "duplicate key",
            agent.as_str(),
            br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls","command":"rm -rf /"}}"#.to_vec(),
        ),
        (
            "input not an object",
            agent.as_str(),
            br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"rm -rf /"}"#.to_vec(),
        ),
        (
            "unknown event",
            agent.as_str(),
            br#"{"hook_event_name":"PermissionRequest","tool_name":"Bash","tool_input":{}}"#.to_vec(),
        ),
        (
            "control character in the tool name",
            agent.as_str(),
            br#"{"hook_event_name":"PreToolUse","tool_name":"Bash\u0000x","tool_input":{"command":"ls"}}"#.to_vec(),
        ),
        (
            "oversized",
            agent.as_str(),
            format!(
                r#"{{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{{"command":"ls {}"}}}}"#,
                "a".repeat(2 * 1024 * 1024)
            )
            .into_bytes(),
        ),
    ];
    for (name, token, body) in cases {
        let answer = hook(&daemon, token, &body).await;
        assert!(is_deny(&answer), "{name}: {answer}");
    }
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions"),
        0,
        "nothing was checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_call_waits_for_the_person_and_can_map_to_ask() {
    let daemon = Setup::default()
        .config(|c| c.approvals.deadline_ms = 60_000)
        .start()
        .await;
    let agent = daemon.agent.clone();
    // `?pause=ask`: handed to Claude Code's prompt at once, and recorded as such.
    let response = daemon
        .http
        .post(daemon.url("/v1/hooks/claude-code?pause=ask"))
        .bearer_auth(&agent)
        .json(&pre("git push origin main", "toolu_ask"))
        .send()
        .await
        .unwrap();
    let asked: Value = response.json().await.unwrap();
    assert_eq!(
        asked["hookSpecificOutput"]["permissionDecision"], "ask",
        "{asked}"
    );
    let (_, list) = daemon
        .get(&daemon.approver.clone(), "/v1/actions?status=pending")
        .await;
    let action = &list["actions"][0];
    assert_eq!(action["context"]["pause_maps_to"], "host_ask");

    // Waiting: a person approves while the hook waits, and the call is allowed. The pause is
    // awaited as the dashboard sees it (its event), not polled.
    let mut events = daemon.events().await;
    let http = daemon.http.clone();
    let url = daemon.url("/v1/hooks/claude-code?wait=30");
    let waiting = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(&agent)
            .json(&pre("git push origin feature", "toolu_wait"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    let pending = events.next_of("action.pending").await;
    assert_eq!(pending["action"]["tool_use_id"], "toolu_wait", "{pending}");
    let id = pending["action"]["action_id"].as_str().unwrap().to_owned();
    let (status, _) = daemon.decide(&id, "approve").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(waiting.await.unwrap(), json!({}), "approved: allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_recorded_linked_and_an_unchecked_one_is_flagged() {
    let daemon = TestDaemon::start().await;
    let agent = daemon.agent.clone();
    hook(
        &daemon,
        &agent,
        pre("ls -la", "toolu_o").to_string().as_bytes(),
    )
    .await;
    let mut post = pre("ls -la", "toolu_o");
    post["hook_event_name"] = json!("PostToolUse");
    post["tool_response"] =
        json!({"stdout": "secret\n", "stderr": "gatehouse sandbox: denied read /etc/shadow\n"});
    post["duration_ms"] = json!(52);
    assert_eq!(
        hook(&daemon, &agent, post.to_string().as_bytes()).await,
        json!({})
    );
    // A call that never went through the check: its outcome is evidence of a bypass.
    let (status, record) = daemon
        .post(
            &agent,
            "/v1/outcomes",
            json!({"tool": "Bash", "session_id": "sess-1", "tool_use_id": "never-checked", "agent": "codex", "ran": true, "exit_code": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["flag"], "unchecked");
    assert_eq!(record["action_id"], json!(null));

    let (_, outcomes) = daemon.get(&daemon.approver.clone(), "/v1/outcomes").await;
    let linked = &outcomes["outcomes"][1];
    assert_eq!(linked["tool_use_id"], "toolu_o");
    assert_eq!(linked["duration_ms"], 52);
    assert_eq!(
        linked["findings"],
        json!(["gatehouse sandbox: denied read /etc/shadow"])
    );
    assert!(
        !linked.to_string().contains("secret"),
        "the output is never stored"
    );
    let (_, flagged) = daemon
        .get(&daemon.approver.clone(), "/v1/outcomes?flagged=true")
        .await;
    assert_eq!(flagged["outcomes"].as_array().unwrap().len(), 1);
    let id = linked["action_id"].as_str().unwrap();
    let (_, history) = daemon
        .get(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/history"),
        )
        .await;
    assert_eq!(
        history["history"].as_array().unwrap().last().unwrap()["kind"],
        "outcome"
    );
    // Agents cannot read outcomes; bad outcomes are refused with the field named.
    let (status, _) = daemon.get(&agent, "/v1/outcomes").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = daemon
        .post(&agent, "/v1/outcomes", json!({"tool": "", "ran": true}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "tool");
    let (status, body) = daemon
        .post(
            &agent,
            "/v1/outcomes",
            json!({"tool": "Bash", "ran": true, "output": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A rule that allows a command only confined: the HTTP hook allows it with the command
/// rewritten to run inside the sandbox profile (the answer's `confine`, and this binary's path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_allow_through_the_http_hook_rewrites_the_command_into_the_sandbox() {
    let daemon = Setup {
        policy: r#"default = "pause"

[[rules]]
id = "allow-cargo-confined"
effect = "allow"
reason = "builds the project"
command = { program = "cargo", args_within = ["$CWD", "/tmp"] }
confine = "build"
"#
        .into(),
        ..Setup::default()
    }
    .start()
    .await;
    let agent = daemon.agent.clone();
    let answer = hook(
        &daemon,
        &agent,
        pre("cargo build", "toolu_c").to_string().as_bytes(),
    )
    .await;
    let output = &answer["hookSpecificOutput"];
    assert_eq!(output["permissionDecision"], "allow", "{answer}");
    let command = output["updatedInput"]["command"]
        .as_str()
        .unwrap_or_default();
    assert!(
        command.contains("sandbox") && command.contains("build") && command.contains("cargo build"),
        "the command runs confined: {answer}"
    );
    assert_eq!(
        output["updatedInput"]["description"], "d",
        "the rest of the input is kept: {answer}"
    );
}

/// Issue 11: the ledger records the confinement applied to each action, structured and chained
/// with it: the profile and its digest for a client that confines; for one that cannot, the
/// fallback verdict it got instead. An action no rule confines has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_records_the_confinement_applied_or_the_fallback_given() {
    let daemon = Setup {
        policy: r#"default = "reject"

[[rules]]
id = "allow-cargo-confined"
effect = "allow"
reason = "builds the project"
command = { program = "cargo", args_within = ["$CWD", "/tmp"] }
confine = "build"

[[rules]]
id = "allow-ls"
effect = "allow"
reason = "lists"
command = { program = "ls" }
"#
        .into(),
        ..Setup::default()
    }
    .start()
    .await;
    let check = |command: &str, can_confine: bool| {
        json!({"tool": "Bash", "input": {"command": command}, "cwd": "/tmp",
               "can_confine": can_confine, "wait_ms": 0})
    };
    let (status, confined) = daemon.check(check("cargo build", true)).await;
    assert_eq!(status, StatusCode::OK, "{confined}");
    assert_eq!(confined["verdict"], "allow", "{confined}");
    let view = daemon
        .action(confined["action_id"].as_str().unwrap_or_default())
        .await;
    let record = &view["confinement"];
    assert_eq!(record["profile"], "build", "{view}");
    assert_eq!(record["applied"], "confined", "{view}");
    assert_eq!(
        record["profile_digest"].as_str().map(str::len),
        Some(64),
        "{view}"
    );
    assert!(
        record["summary"]
            .as_str()
            .is_some_and(|s| s.contains("{project}") && s.contains("no network")),
        "{view}"
    );

    let (_, fallback) = daemon.check(check("cargo test", false)).await;
    assert_eq!(fallback["verdict"], "pending", "{fallback}");
    let view = daemon
        .action(fallback["action_id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(view["confinement"]["applied"], "fallback", "{view}");
    assert_eq!(view["confinement"]["fallback"], "pause", "{view}");
    assert_eq!(view["confinement"]["profile"], "build", "{view}");

    let (_, plain) = daemon.check(check("ls", false)).await;
    let view = daemon
        .action(plain["action_id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(plain["verdict"], "allow", "{plain}");
    assert!(view.get("confinement").is_none(), "{view}");

    assert_eq!(
        daemon.count("SELECT count(*) FROM action_confinement"),
        2,
        "one record per confined rule's action"
    );
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind = 'action_confinement'"),
        2,
        "each one chained"
    );
}
