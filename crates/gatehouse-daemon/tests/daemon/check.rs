//! The fast path: rules decide, the row is committed before the answer, the classifier never
//! delays it, and the ledger failing means reject.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_classifier::testing::{Fixed, Gated};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Setup, TestDaemon, allowed, rejected};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_allow_and_reject_and_name_the_deciding_rule() {
    let daemon = TestDaemon::start().await;
    let (status, allow) = daemon.check(allowed()).await;
    assert_eq!(status, StatusCode::OK, "{allow}");
    assert_eq!(allow["verdict"], "allow");
    assert_eq!(allow["decided_by"], "rule");
    assert_eq!(allow["rule_id"], "allow-ls");
    assert_eq!(allow["reason"], "listing files is harmless");
    assert_eq!(allow["tier2"], json!(null));
    let (_, reject) = daemon.check(rejected()).await;
    assert_eq!(reject["verdict"], "reject");
    assert_eq!(reject["rule_id"], "reject-rm-rf");
    // Both answers were committed before they were sent.
    for response in [&allow, &reject] {
        let id = response["action_id"].as_str().unwrap();
        let stored = daemon.action(id).await;
        assert_eq!(stored["verdict"], response["verdict"]);
        assert_eq!(
            stored["tier2_status"], "disabled",
            "no classifier is configured"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmatched_action_gets_the_policy_default() {
    let daemon = Setup::default()
        .config(|c| c.approvals.deadline_ms = 60_000)
        .start()
        .await;
    let (_, body) = daemon
        .check(json!({"tool": "Write", "input": {"file_path": "/tmp/x"}, "wait_ms": 0}))
        .await;
    assert_eq!(body["verdict"], "pending");
    assert_eq!(body["decided_by"], "default");
    assert_eq!(body["rule_id"], json!(null));
}

/// The seed's first test, made deterministic: with a classifier that never answers until we
/// let it, fast-path checks still come back — so no response waits for scoring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_answers_while_the_classifier_is_still_scoring() {
    let gate = Arc::new(Gated::new(0.1, "benign"));
    let daemon = Setup::default().classifier(gate.clone()).start().await;
    let mut waiting = gate.waiting();
    let (_, body) = daemon.check(allowed()).await;
    assert_eq!(body["verdict"], "allow");
    assert_eq!(
        body["tier2"],
        json!(null),
        "the score is not awaited on the fast path"
    );
    // The scoring did start (after the answer) and is parked at the gate.
    tokio::time::timeout(Duration::from_secs(5), waiting.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    let id = body["action_id"].as_str().unwrap();
    assert_eq!(daemon.action(id).await["tier2_status"], "pending");
    // The back-fill lands after the response.
    gate.open();
    let scored = daemon
        .wait_for_action(id, |a| a["tier2_status"] == "scored")
        .await;
    assert_eq!(scored["tier2"]["score"], 0.1);
    assert_eq!(scored["tier2"]["model"], "gated");
    assert_eq!(
        scored["verdict"], "allow",
        "a score never changes a verdict"
    );
}

/// Same property with wall-clock numbers: a 2 s classifier against none. The bound is loose
/// on purpose (a timing test must not flake); the benchmark measures the real ratio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_latency_does_not_include_a_slow_classifier() {
    async fn latencies(daemon: &TestDaemon) -> Vec<Duration> {
        let mut out = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let (_, body) = daemon.check(allowed()).await;
            out.push(started.elapsed());
            assert_eq!(body["verdict"], "allow");
        }
        out.sort();
        out
    }
    let plain = TestDaemon::start().await;
    let without = latencies(&plain).await;
    let slow = Setup::default()
        .classifier(Fixed {
            score: 0.1,
            label: "benign".into(),
            delay: Duration::from_secs(2),
        })
        .config(|c| c.classifier.max_detached = 64)
        .start()
        .await;
    let with = latencies(&slow).await;
    let (median_without, median_with, worst_with) = (without[10], with[10], with[19]);
    assert!(
        worst_with < Duration::from_millis(1000),
        "a check waited for the 2 s classifier: {worst_with:?}"
    );
    assert!(
        median_with < median_without * 20 + Duration::from_millis(20),
        "medians not comparable: {median_with:?} with a 2 s classifier vs {median_without:?} without"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighty_concurrent_fast_path_checks_all_land_in_the_ledger() {
    let daemon = Setup::default()
        .classifier(Fixed {
            score: 0.2,
            label: "benign".into(),
            delay: Duration::from_millis(50),
        })
        .start()
        .await;
    let daemon = Arc::new(daemon);
    let tasks: Vec<_> = (0..80)
        .map(|i| {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let body = if i % 2 == 0 { allowed() } else { rejected() };
                daemon.check(body).await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["verdict"] == "allow" || body["verdict"] == "reject");
        ids.insert(body["action_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 80);
    assert_eq!(daemon.count("SELECT count(*) FROM actions"), 80);
    for id in &ids {
        let n =
            daemon
                .ledger()
                .query_row("SELECT count(*) FROM actions WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                });
        assert_eq!(n.unwrap(), 1, "{id} is in the ledger");
    }
}

/// Fail closed: when the ledger cannot commit (another process holds its write lock), the
/// check is rejected with `decided_by: "error"`; when it can again, checks go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_commit_rejects_the_check() {
    let daemon = Setup::default()
        .config(|c| c.ledger.busy_timeout_ms = 100)
        .start()
        .await;
    let blocker = daemon.ledger();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = daemon.check(allowed()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["verdict"], "reject", "{body}");
    assert_eq!(body["decided_by"], "error");
    assert!(body["reason"].as_str().unwrap().contains("ledger"));
    assert!(
        daemon
            .metrics()
            .await
            .contains("gatehouse_check_ledger_failures_total 1")
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    let (_, body) = daemon.check(allowed()).await;
    assert_eq!(body["verdict"], "allow");
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions"),
        1,
        "only the committed check is recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_gets_fast_path_verdicts_and_fails_closed_when_the_daemon_is_gone() {
    use gatehouse_client::{CheckOptions, Client, ClientError};
    use gatehouse_protocol::{CheckRequest, Verdict};

    let daemon = TestDaemon::start().await;
    let client = Client::new(&daemon.base, &daemon.agent).unwrap();
    let request: CheckRequest = serde_json::from_value(allowed()).unwrap();
    let response = client
        .check(&request, &CheckOptions::default())
        .await
        .unwrap();
    assert_eq!(response.verdict, Verdict::Allow);
    let base = daemon.base.clone();
    daemon.stop().await;
    let client = Client::new(&base, "whatever").unwrap();
    let options = CheckOptions {
        total_deadline: Duration::from_secs(2),
        ..CheckOptions::default()
    };
    let err = client.check(&request, &options).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unreachable(_) | ClientError::Timeout),
        "{err:?}"
    );
}
