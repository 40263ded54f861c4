//! The approval queue's caps are exact under concurrency, and an agent cannot evade the
//! per-session cap by inventing session ids: a per-credential cap counts every pause its
//! credential (the agent token; a socket caller's uid) made.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon};

fn pause_in(session: &str, n: usize) -> Value {
    json!({
        "tool": "Bash",
        "input": {"command": format!("git push origin b{n}")},
        "session_id": session,
        "tool_use_id": format!("t{n}"),
        "wait_ms": 0,
    })
}

/// Sends every body at once; returns how many paused and how many were refused as queue-full.
async fn flood(daemon: &Arc<TestDaemon>, bodies: Vec<Value>) -> (usize, usize) {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let daemon = daemon.clone();
            tokio::spawn(async move { daemon.check(body).await })
        })
        .collect();
    let (mut paused, mut full) = (0, 0);
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        match answer["verdict"].as_str() {
            Some("pending") => paused += 1,
            Some("reject") => {
                assert_eq!(answer["decided_by"], "error", "{answer}");
                assert!(
                    answer["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("approval_queue_full"),
                    "{answer}"
                );
                full += 1;
            }
            other => panic!("unexpected verdict {other:?}: {answer}"),
        }
    }
    (paused, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_cap_admits_exactly_its_number_under_concurrent_pauses() {
    let daemon = Arc::new(
        Setup::default()
            .config(|c| {
                c.approvals.max_pending = 50;
                c.approvals.max_pending_per_agent = 1_000;
            })
            .start()
            .await,
    );
    // 120 pauses from 120 sessions, all at once (before: 52 of 50 admitted).
    let bodies = (0..120).map(|n| pause_in(&format!("s{n}"), n)).collect();
    let (paused, full) = flood(&daemon, bodies).await;
    assert_eq!((paused, full), (50, 70));
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions WHERE verdict = 'pending'"),
        50
    );
    let (_, health) = daemon.get("", "/healthz").await;
    assert_eq!(health["pending"], 50, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inventing_session_ids_does_not_evade_the_agent_credentials_cap() {
    let daemon = Arc::new(
        Setup::default()
            .config(|c| {
                c.approvals.max_pending = 1_000;
                c.approvals.max_pending_per_session = 3;
                c.approvals.max_pending_per_agent = 10;
            })
            .start()
            .await,
    );
    // One session: its own cap.
    let bodies = (0..8).map(|n| pause_in("one", n)).collect();
    assert_eq!(flood(&daemon, bodies).await, (3, 5));
    // A fresh session id per call: the credential's cap holds (3 already waiting).
    let bodies = (100..140)
        .map(|n| pause_in(&format!("invented-{n}"), n))
        .collect();
    assert_eq!(flood(&daemon, bodies).await, (7, 33));
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions WHERE verdict = 'pending'"),
        10
    );
    // A decision frees a place.
    let id: String = daemon
        .ledger()
        .query_row(
            "SELECT id FROM actions WHERE verdict = 'pending' LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(daemon.decide(&id, "deny").await.0, StatusCode::OK);
    assert_eq!(flood(&daemon, vec![pause_in("late", 999)]).await, (1, 0));
}
