//! Self-protection in the running daemon: a policy that allows everything, a hot reload and
//! observe mode still leave Gatehouse's files, process and decision endpoint out of reach.

use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon};

/// Allows everything it can: the protection must not depend on the policy.
const ALLOW_ALL: &str = r#"
default = "allow"

[[rules]]
id = "everything"
effect = "allow"
"#;

fn bash(command: &str) -> Value {
    json!({"tool": "Bash", "input": {"command": command}, "cwd": "/tmp", "wait_ms": 0})
}

/// The actions that must be rejected, with the rule that must reject them.
fn attacks(daemon: &TestDaemon) -> Vec<(Value, &'static str)> {
    let data = daemon.data_dir();
    let policy = daemon.policy_path();
    let port = daemon.port;
    vec![
        (
            bash(&format!("cat {}/approver.token", data.display())),
            "builtin:protect-secret",
        ),
        (
            json!({"tool": "Read", "input": {"file_path": data.join("agent.token")}, "wait_ms": 0}),
            "builtin:protect-secret",
        ),
        (
            bash(&format!(
                "echo 'default = \"allow\"' > {}",
                policy.display()
            )),
            "builtin:protect-write",
        ),
        (
            json!({"tool": "Write", "input": {"file_path": policy, "content": ""}, "wait_ms": 0}),
            "builtin:protect-write",
        ),
        (
            bash("sh -c 'echo {} > ~/.claude/settings.json'"),
            "builtin:protect-write",
        ),
        (
            bash(&format!(
                "curl -X POST http://127.0.0.1:{port}/v1/actions/act_x/decision"
            )),
            "builtin:protect-endpoint",
        ),
        (
            bash(&format!("kill -9 {}", std::process::id())),
            "builtin:protect-kill",
        ),
        (bash("pkill -f gatehouse"), "builtin:protect-kill"),
    ]
}

async fn assert_all_rejected(daemon: &TestDaemon) {
    for (action, rule) in attacks(daemon) {
        let (status, body) = daemon.check(action.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["verdict"], "reject", "{action}: {body}");
        assert_eq!(body["rule_id"], rule, "{action}: {body}");
        assert_eq!(body["decided_by"], "rule", "{body}");
        let recorded = daemon.action(body["action_id"].as_str().unwrap()).await;
        assert_eq!(recorded["verdict"], "reject", "{recorded}");
        assert_eq!(recorded["rule_id"], rule, "{recorded}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_allows_everything_cannot_switch_self_protection_off() {
    let daemon = Setup {
        policy: ALLOW_ALL.to_owned(),
        ..Setup::default()
    }
    .start()
    .await;
    let (_, ordinary) = daemon.check(bash("cargo test")).await;
    assert_eq!(ordinary["verdict"], "allow", "{ordinary}");
    assert_eq!(ordinary["rule_id"], "everything");
    assert_all_rejected(&daemon).await;

    // A reload to another allow-everything policy changes nothing.
    std::fs::write(
        daemon.policy_path(),
        ALLOW_ALL.replace("\"everything\"", "\"anything\""),
    )
    .unwrap();
    daemon.wait_for_health(|h| h["policy_reloads"] == 1).await;
    let (_, ordinary) = daemon.check(bash("cargo test")).await;
    assert_eq!(
        ordinary["rule_id"], "anything",
        "the new policy is in force"
    );
    assert_all_rejected(&daemon).await;

    // Neither does observe mode, which allows whatever the policy would have decided.
    std::fs::write(
        daemon.policy_path(),
        "mode = \"observe\"\ndefault = \"reject\"\n",
    )
    .unwrap();
    daemon.wait_for_health(|h| h["policy_reloads"] == 2).await;
    let (_, observed) = daemon.check(bash("cargo test")).await;
    assert_eq!(observed["verdict"], "allow", "{observed}");
    assert_all_rejected(&daemon).await;
}
