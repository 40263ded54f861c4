//! The policy in force: hot reload of a valid file, refusal of an invalid one.

use serde_json::json;

use crate::support::{Setup, TEST_POLICY, TestDaemon, allowed, paused, rejected};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_policy_takes_effect_and_a_broken_one_is_refused() {
    let daemon = TestDaemon::start().await;
    let (_, before) = daemon.check(paused(0)).await;
    assert_eq!(before["verdict"], "pending");
    assert_eq!(before["rule_id"], "pause-push");

    let stricter = TEST_POLICY.replace(
        "id = \"pause-push\"\neffect = \"pause\"",
        "id = \"no-push\"\neffect = \"reject\"",
    );
    assert_ne!(stricter, TEST_POLICY);
    std::fs::write(daemon.policy_path(), &stricter).unwrap();
    daemon.wait_for_health(|h| h["policy_reloads"] == 1).await;
    let (_, after) = daemon.check(paused(0)).await;
    assert_eq!(after["verdict"], "reject");
    assert_eq!(after["rule_id"], "no-push");

    // Saved with a mistake: refused, the last good policy stays, health says why.
    std::fs::write(daemon.policy_path(), "default = \"sometimes\"\n").unwrap();
    let health = daemon
        .wait_for_health(|h| h["policy_error"].is_string())
        .await;
    assert_eq!(health["status"], "degraded");
    assert!(
        health["policy_error"].as_str().unwrap().contains("line 1"),
        "{health}"
    );
    let (_, still) = daemon
        .check(json!({"tool": "Bash", "input": {"command": "git push"}, "wait_ms": 0}))
        .await;
    assert_eq!(
        still["verdict"], "reject",
        "the last good policy is still in force"
    );

    std::fs::write(daemon.policy_path(), TEST_POLICY).unwrap();
    let health = daemon.wait_for_health(|h| h["policy_reloads"] == 2).await;
    assert_eq!(health["status"], "ok");
    assert!(health.get("policy_error").is_none(), "{health}");
}

/// Observe mode: the rules' verdict is recorded as `observed`, the action is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_allows_and_records_what_the_policy_would_have_done() {
    let daemon = Setup {
        policy: format!("mode = \"observe\"\n{TEST_POLICY}"),
        ..Setup::default()
    }
    .start()
    .await;
    let cases = [
        (
            json!({"tool": "Bash", "input": {"command": "rm -rf build"}}),
            Some("reject"),
            Some("reject-rm-rf"),
        ),
        (paused(0), Some("pause"), Some("pause-push")),
        (
            json!({"tool": "Bash", "input": {"command": "make"}}),
            Some("pause"),
            None,
        ),
        (allowed(), None, Some("allow-ls")),
    ];
    for (request, observed, rule) in cases {
        let (_, response) = daemon.check(request.clone()).await;
        assert_eq!(response["verdict"], "allow", "{request}: {response}");
        assert_eq!(response["rule_id"].as_str(), rule, "{response}");
        let id = response["action_id"].as_str().unwrap();
        let view = daemon.action(id).await;
        assert_eq!(view["observed"].as_str(), observed, "{view}");
        assert_eq!(view["verdict"], "allow", "{view}");
    }
    assert_eq!(
        daemon.count("SELECT COUNT(*) FROM actions WHERE observed_effect = 'reject'"),
        1
    );
    // Self-protection is never relaxed by observe mode.
    let (_, response) = daemon.check(rejected()).await;
    assert_eq!(response["verdict"], "reject", "{response}");
    assert!(
        response["rule_id"]
            .as_str()
            .unwrap()
            .starts_with("builtin:protect"),
        "{response}"
    );
}
