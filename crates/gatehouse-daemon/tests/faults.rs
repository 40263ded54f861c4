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
use support::{Setup, TEST_POLICY, TestDaemon, allowed, paused, rejected};

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

// Faulty classifier sidecars (real child processes, the fixtures of gatehouse-classifier): the
// fast path answers with the rules' verdict whatever the sidecar does, and what went wrong with
// tier 2 is counted in /metrics and recorded on the action. The fast path's latency with these
// sidecars is measured by the benchmark (`gatehouse-bench --scenario sidecar-faults`).

/// A daemon whose classifier is the sidecar fixture `name` (run with `args`).
async fn with_sidecar(name: &str, args: &[&str], edit: impl FnOnce(&mut Config)) -> TestDaemon {
    let script = format!(
        "{}/../gatehouse-classifier/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut command = vec!["python3".to_owned(), script];
    command.extend(args.iter().map(|a| (*a).to_owned()));
    Setup::default()
        .config(|c| {
            c.classifier.kind = "sidecar".into();
            c.classifier.command = command;
            edit(c);
        })
        .start()
        .await
}

/// The value of one sample line of `/metrics`, e.g. `gatehouse_classifier_restarts_total`.
fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
}

const DROPPED: &str = "gatehouse_classifier_scorings_total{outcome=\"dropped\"}";
const RESTARTS: &str = "gatehouse_classifier_restarts_total";

/// Sends a fast-path check and asserts the rules' verdict; returns the action id.
async fn fast_check(daemon: &TestDaemon, allow: bool) -> String {
    let (status, body) = daemon
        .check(if allow { allowed() } else { rejected() })
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (verdict, rule) = if allow {
        ("allow", "allow-ls")
    } else {
        ("reject", "reject-rm-rf")
    };
    assert_eq!(body["verdict"], verdict, "{body}");
    assert_eq!(body["rule_id"], rule, "{body}");
    assert_eq!(body["decided_by"], "rule", "{body}");
    body["action_id"].as_str().unwrap().to_owned()
}

async fn settled_tier2(daemon: &TestDaemon, id: &str) -> Value {
    daemon
        .wait_for_action(id, |a| a["tier2_status"] != "pending")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sidecar_drops_scorings_past_the_cap_and_times_out_the_rest() {
    // Answers after 10 s; a detached scoring gives up after 3 s, a paused one after 200 ms.
    let daemon = with_sidecar("slow.py", &["10"], |c| {
        c.classifier.max_detached = 1;
        c.classifier.detached_timeout_ms = 3_000;
        c.classifier.budget_ms = 200;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(fast_check(&daemon, i % 2 == 0).await);
    }
    // One slot, held by the slow sidecar: the other three scorings are dropped at once.
    let metrics = daemon.metrics().await;
    assert_eq!(metric(&metrics, DROPPED), 3, "{metrics}");
    for id in &ids[1..] {
        let action = daemon.action(id).await;
        assert_eq!(action["tier2_status"], "dropped", "{action}");
    }
    let action = settled_tier2(&daemon, &ids[0]).await;
    assert_eq!(action["tier2_status"], "timeout", "{action}");
    // A paused action goes on without its score once the budget runs out.
    let (_, body) = daemon.check(paused(0)).await;
    assert_eq!(body["verdict"], "pending", "{body}");
    let action = daemon.action(body["action_id"].as_str().unwrap()).await;
    assert_eq!(action["tier2_status"], "timeout", "{action}");
    assert_eq!(metric(&daemon.metrics().await, RESTARTS), 0);
    let timeouts = daemon.count("SELECT count(*) FROM scores WHERE status = 'timeout'");
    assert_eq!(timeouts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_sidecar_is_restarted_and_its_lost_requests_recorded_as_errors() {
    // Every run answers two requests, then exits on reading the third.
    let daemon = with_sidecar("crash_every.py", &["3"], |_| {}).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let id = fast_check(&daemon, i % 2 == 1).await;
        let action = settled_tier2(&daemon, &id).await;
        statuses.push(action["tier2_status"].as_str().unwrap().to_owned());
        if i == 3 {
            // The fourth was answered by a second run of the sidecar.
            assert_eq!(action["tier2"]["label"], "crashy", "{action}");
            assert!(metric(&daemon.metrics().await, RESTARTS) >= 1);
        }
    }
    assert_eq!(
        statuses,
        ["scored", "scored", "error", "scored", "scored", "error"]
    );
    let errors = daemon.count("SELECT count(*) FROM scores WHERE status = 'error'");
    assert_eq!(errors, 2);
    // The verdicts never waited for the crashes: every one was by the rules.
    let by_rule = daemon.count("SELECT count(*) FROM actions WHERE decided_by = 'rule'");
    assert_eq!(by_rule, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_sidecar_is_stopped_and_restarted_while_the_fast_path_answers() {
    // It writes junk lines non-stop: past 1 000 in a second the daemon stops reading, kills it
    // and restarts it (with backoff), failing what waited on it.
    let daemon = with_sidecar("babble.py", &[], |_| {}).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(fast_check(&daemon, i % 2 == 0).await);
    }
    let mut statuses = Vec::new();
    for id in &ids {
        let action = settled_tier2(&daemon, id).await;
        statuses.push(action["tier2_status"].as_str().unwrap().to_owned());
    }
    // Four detached slots (the default): the rest were dropped at once, and counted.
    let dropped = statuses.iter().filter(|s| *s == "dropped").count();
    assert!(dropped >= 16, "{statuses:?}");
    let metrics = daemon.metrics().await;
    assert_eq!(metric(&metrics, DROPPED), dropped as u64, "{metrics}");
    // What reached the sidecar failed with the reason, or got a reply slipped in between floods.
    assert!(
        statuses
            .iter()
            .all(|s| ["dropped", "error", "scored"].contains(&s.as_str())),
        "{statuses:?}"
    );
    let flood_errors = daemon
        .count("SELECT count(*) FROM scores WHERE status = 'error' AND error LIKE '%flooded%'");
    assert!(flood_errors >= 1, "{statuses:?}");
    // And it was started again: poll the counter, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&daemon.metrics().await, RESTARTS) == 0 {
        assert!(std::time::Instant::now() < deadline, "never restarted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
