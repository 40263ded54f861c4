//! Fault tests of the daemon in-process: a tampered or corrupted ledger at start-up (deny-all,
//! `/healthz` degraded, nothing replaced), and a full disk (checks rejected with a clear
//! reason, health degraded, recovery when space returns). Process-level faults (`kill -9`)
//! are in `crates/gatehouse/tests/faults.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]
#![allow(dead_code, reason = "the shared harness has more than these tests use")]

#[path = "daemon/support.rs"]
mod support;

use gatehouse_daemon::{Config, Daemon, Overrides};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Setup, TEST_POLICY, TestDaemon, allowed, rejected};

async fn health(daemon: &TestDaemon) -> Value {
    let (status, body) = daemon.get(&daemon.agent.clone(), "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A daemon over a data directory, restarted: the ledger is opened (and verified) again.
async fn restart(dir: tempfile::TempDir) -> TestDaemon {
    Setup::default().data_dir(dir).start().await
}

fn assert_denied_by_error(body: &Value, words: &str) {
    assert_eq!(body["verdict"], "reject", "{body}");
    assert_eq!(body["decided_by"], "error", "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(words), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_ledger_puts_the_daemon_in_deny_all() {
    let daemon = TestDaemon::start().await;
    let (_, first) = daemon.check(rejected()).await;
    assert_eq!(first["verdict"], "reject");
    for _ in 0..5 {
        assert_eq!(daemon.check(allowed()).await.1["verdict"], "allow");
    }
    assert_eq!(health(&daemon).await["status"], "ok");
    let dir = daemon.stop().await;

    // Someone with the user's file access turns the rejection into an allow.
    let path = dir.path().join("data/ledger.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("DROP TRIGGER actions_append_only_update")
        .unwrap();
    let id = first["action_id"].as_str().unwrap();
    raw.execute(
        "UPDATE actions SET verdict = 'allow', reason = 'fine' WHERE id = ?1",
        [id],
    )
    .unwrap();
    drop(raw);
    // Tells the harness this ledger is broken on purpose (it verifies every ledger it drops).
    std::fs::write(dir.path().join("data/tampered"), "").unwrap();

    let daemon = restart(dir).await;
    let body = health(&daemon).await;
    assert_eq!(body["status"], "degraded", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("chain entry 1"), "{reason}");
    for check in [allowed(), rejected()] {
        let (status, body) = daemon.check(check).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_denied_by_error(&body, "untrusted");
    }
    // Nothing was appended, and the evidence was not replaced.
    assert_eq!(daemon.count("SELECT count(*) FROM actions"), 6);
    assert_eq!(
        daemon.count(&format!(
            "SELECT count(*) FROM actions WHERE id = '{id}' AND reason = 'fine'"
        )),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_ledger_file_puts_the_daemon_in_deny_all() {
    let daemon = TestDaemon::start().await;
    for i in 0..300 {
        let body = json!({"tool": "Read", "input": {"file_path": format!("/tmp/{i}/{}", "x".repeat(400))}});
        assert_eq!(daemon.check(body).await.1["verdict"], "allow");
    }
    let dir = daemon.stop().await;
    let path = dir.path().join("data/ledger.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    assert!(len > 100 * 1024, "{len}");
    for b in &mut bytes[len / 2..len / 2 + 8192] {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, TEST_POLICY).unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: Some(dir.path().join("data")),
        policy: Some(policy),
        ..Config::default()
    };
    let daemon = Daemon::start(config, Overrides::default())
        .await
        .expect("a damaged ledger starts the daemon in deny-all mode, not a crash loop");
    let state = daemon.state();
    let health = state.health();
    assert_eq!(health.status, "degraded");
    assert!(
        health
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("damaged"),
        "{health:?}"
    );
    let request: gatehouse_protocol::CheckRequest =
        serde_json::from_value(json!({"tool": "Read", "input": {"file_path": "/etc/hosts"}}))
            .unwrap();
    let response = state.check(request).await.unwrap();
    assert_eq!(response.verdict, gatehouse_protocol::Verdict::Reject);
    assert_eq!(response.decided_by, gatehouse_protocol::DecidedBy::Error);
    drop(daemon);
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        len,
        "the file is left for inspection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_rejects_checks_degrades_health_and_recovers() {
    let daemon = Setup::default()
        .config(|config| config.ledger.max_page_count = 64)
        .start()
        .await;
    let big = |i: usize| json!({"tool": "Read", "input": {"file_path": format!("/{i}/{}", "y".repeat(8_000))}});
    let mut allowed_before_full = 0;
    let refused = loop {
        let (status, body) = daemon.check(big(allowed_before_full)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["verdict"] != "allow" {
            break body;
        }
        allowed_before_full += 1;
        assert!(allowed_before_full < 500, "the size cap never bit");
    };
    assert_denied_by_error(&refused, "full");
    let body = health(&daemon).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("full"), "{body}");

    // Space returns: the next check commits and health recovers, with nothing lost.
    daemon.state.ledger().set_max_page_count(None).unwrap();
    let (_, body) = daemon.check(big(9_999)).await;
    assert_eq!(body["verdict"], "allow", "{body}");
    assert_eq!(health(&daemon).await["status"], "ok");
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions") as usize,
        allowed_before_full + 1
    );
    let report = daemon
        .state
        .ledger()
        .verify(Default::default())
        .await
        .unwrap();
    assert_eq!(report.entries as usize, allowed_before_full + 1);
}
