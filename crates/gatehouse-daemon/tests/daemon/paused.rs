//! The paused path: parked in the ledger, pushed to dashboards, decided exactly once by a
//! person or the deadline, surviving restarts, and re-attached by `tool_use_id`.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_ledger::{Ledger, LedgerConfig, NewAction};
use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon, paused};

fn id_of(body: &Value) -> String {
    body["action_id"].as_str().expect("action_id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_and_the_waiting_check_gets_allow() {
    let daemon = Arc::new(TestDaemon::start().await);
    let mut events = daemon.events().await;
    let waiting = tokio::spawn({
        let daemon = daemon.clone();
        async move { daemon.check(paused(20_000)).await }
    });
    let event = events.next_of("action.pending").await;
    let id = event["action"]["action_id"].as_str().unwrap().to_owned();
    assert_eq!(event["action"]["input"]["command"], "git push origin main");
    assert_eq!(event["action"]["rule_id"], "pause-push");
    assert!(event["action"]["deadline_ms"].as_i64().unwrap() > 0);
    let (status, decided) = daemon.decide(&id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["verdict"], "allow");
    let (_, answer) = waiting.await.unwrap();
    assert_eq!(answer["action_id"], id.as_str());
    assert_eq!(answer["verdict"], "allow");
    assert_eq!(answer["decided_by"], "human");
    let decided_event = events.next_of("action.decided").await;
    assert_eq!(decided_event["action"]["action_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_action_is_rejected_and_a_note_is_kept() {
    let daemon = TestDaemon::start().await;
    let (_, parked) = daemon.check(paused(0)).await;
    assert_eq!(parked["verdict"], "pending");
    let id = id_of(&parked);
    let (status, _) = daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/decision"),
            json!({"decision": "deny", "note": "not on main"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The agent long-polls with its own token and sees the agent-facing shape.
    let (status, polled) = daemon
        .get(
            &daemon.agent.clone(),
            &format!("/v1/actions/{id}?wait_ms=1000"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled["verdict"], "reject");
    assert_eq!(polled["decided_by"], "human");
    assert!(
        polled["reason"].as_str().unwrap().contains("not on main"),
        "{polled}"
    );
    assert!(
        polled.get("input").is_none(),
        "agents get the check response, not the ledger row"
    );
    let full = daemon.action(&id).await;
    assert_eq!(full["decision"]["note"], "not on main");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_as_soon_as_the_decision_lands() {
    let daemon = Arc::new(TestDaemon::start().await);
    let (_, parked) = daemon.check(paused(0)).await;
    let id = id_of(&parked);
    let poll = tokio::spawn({
        let (daemon, id) = (daemon.clone(), id.clone());
        async move {
            daemon
                .get(
                    &daemon.agent.clone(),
                    &format!("/v1/actions/{id}?wait_ms=30000"),
                )
                .await
        }
    });
    // Still pending for a short poll.
    let (_, short) = daemon
        .get(
            &daemon.agent.clone(),
            &format!("/v1/actions/{id}?wait_ms=1"),
        )
        .await;
    assert_eq!(short["verdict"], "pending");
    daemon.decide(&id, "approve").await;
    let (_, answer) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("long poll wakes")
        .unwrap();
    assert_eq!(answer["verdict"], "allow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_action_is_rejected_at_its_deadline() {
    let daemon = Setup::default()
        .config(|c| c.approvals.deadline_ms = 300)
        .start()
        .await;
    let (_, answer) = daemon.check(paused(10_000)).await;
    assert_eq!(answer["verdict"], "reject", "{answer}");
    assert_eq!(answer["decided_by"], "timeout");
    let (status, late) = daemon.decide(&id_of(&answer), "approve").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a late approval cannot overturn the timeout: {late}"
    );
    assert_eq!(late["error"]["code"], "already_decided");
    assert!(
        daemon
            .metrics()
            .await
            .contains("gatehouse_decisions_total{decided_by=\"timeout\"} 1")
    );
}

/// Approve, deny and the deadline race for the same actions; each ends with exactly one
/// decision, and the waiting agent is told the one that landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_approve_deny_and_timeout_give_exactly_one_decision() {
    let daemon = Arc::new(
        Setup::default()
            .config(|c| c.approvals.deadline_ms = 150)
            .start()
            .await,
    );
    let mut rounds = Vec::new();
    for round in 0..24u64 {
        let daemon = daemon.clone();
        rounds.push(tokio::spawn(async move {
            let (_, parked) = daemon.check(paused(0)).await;
            let id = id_of(&parked);
            let waiter = tokio::spawn({
                let (daemon, id) = (daemon.clone(), id.clone());
                async move {
                    daemon
                        .get(
                            &daemon.agent.clone(),
                            &format!("/v1/actions/{id}?wait_ms=10000"),
                        )
                        .await
                }
            });
            // Stagger so that sometimes a person wins and sometimes the deadline does.
            tokio::time::sleep(Duration::from_millis(100 + (round % 6) * 15)).await;
            let (approve, deny) =
                tokio::join!(daemon.decide(&id, "approve"), daemon.decide(&id, "deny"));
            let accepted = [&approve, &deny]
                .iter()
                .filter(|(s, _)| *s == StatusCode::OK)
                .count();
            for (status, body) in [&approve, &deny] {
                assert!(
                    *status == StatusCode::OK || *status == StatusCode::CONFLICT,
                    "{status} {body}"
                );
            }
            assert!(accepted <= 1, "two people's decisions both landed");
            let (_, told) = waiter.await.unwrap();
            (id, told, accepted)
        }));
    }
    let mut human_wins = 0;
    for round in rounds {
        let (id, told, accepted) = round.await.unwrap();
        human_wins += accepted;
        let stored = daemon.action(&id).await;
        assert_eq!(
            told["verdict"], stored["verdict"],
            "the agent was told what the ledger holds"
        );
        assert_ne!(stored["verdict"], "pending");
        let decisions: i64 = daemon
            .ledger()
            .query_row(
                "SELECT count(*) FROM decisions WHERE action_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(decisions, 1);
    }
    assert!(human_wins <= 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_actions_survive_a_restart_and_stay_decidable() {
    let first = Setup::default()
        .config(|c| c.approvals.deadline_ms = 60_000)
        .start()
        .await;
    let body = json!({"tool": "Bash", "input": {"command": "git push"}, "session_id": "s1", "tool_use_id": "tu1", "wait_ms": 0});
    let (_, parked) = first.check(body.clone()).await;
    let id = id_of(&parked);
    let dir = first.stop().await;

    let second = Setup::default()
        .config(|c| c.approvals.deadline_ms = 60_000)
        .data_dir(dir)
        .start()
        .await;
    let (_, listed) = second
        .get(&second.approver.clone(), "/v1/actions?status=pending")
        .await;
    assert_eq!(listed["actions"][0]["action_id"], id.as_str(), "{listed}");
    assert_eq!(second.state.health().pending, 1);
    // The agent re-sends the same call after the restart and re-attaches to the same action.
    let resend = tokio::spawn({
        let body = {
            let mut b = body.clone();
            b["wait_ms"] = json!(10_000);
            b
        };
        let (http, url, token) = (
            second.http.clone(),
            second.url("/v1/check"),
            second.agent.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    let (status, _) = second.decide(&id, "approve").await;
    assert_eq!(status, StatusCode::OK);
    let answer = resend.await.unwrap();
    assert_eq!(answer["action_id"], id.as_str());
    assert_eq!(answer["verdict"], "allow");
    assert_eq!(
        second.count("SELECT count(*) FROM actions"),
        1,
        "re-attached, not recorded twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_overdue_while_the_daemon_was_down_is_rejected_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let ledger = Ledger::open(LedgerConfig::new(data.join("ledger.db"))).unwrap();
        let now = gatehouse_daemon::now_ms();
        ledger
            .record_action(NewAction {
                id: "act_overdue".into(),
                created_at_ms: now - 200_000,
                tool: "Bash".into(),
                input: json!({"command": "git push"}).as_object().unwrap().clone(),
                session_id: None,
                agent: None,
                tool_use_id: None,
                cwd: None,
                context: None,
                verdict: Verdict::Pending,
                decided_by: DecidedBy::Rule,
                rule_id: Some("pause-push".into()),
                reason: "pushes leave the machine".into(),
                deadline_ms: Some(now - 80_000),
                tier2_status: Tier2Status::Disabled,
                peer_uid: None,
                peer_pid: None,
                observed_effect: None,
            })
            .await
            .unwrap();
    }
    let daemon = Setup::default().data_dir(dir).start().await;
    let action = daemon.action("act_overdue").await;
    assert_eq!(action["verdict"], "reject");
    assert_eq!(action["decided_by"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_share_one_action_and_a_reused_id_is_refused() {
    let daemon = Arc::new(TestDaemon::start().await);
    let body = json!({"tool": "Bash", "input": {"command": "git push"}, "session_id": "s", "tool_use_id": "t", "wait_ms": 10_000});
    let sends: Vec<_> = (0..3)
        .map(|_| {
            let (daemon, body) = (daemon.clone(), body.clone());
            tokio::spawn(async move { daemon.check(body).await })
        })
        .collect();
    let mut events = daemon.events().await;
    // Decide once the action exists (it may already have been pushed before we subscribed).
    let id = loop {
        let (_, listed) = daemon
            .get(&daemon.approver.clone(), "/v1/actions?status=pending")
            .await;
        if let Some(id) = listed["actions"][0]["action_id"].as_str() {
            break id.to_owned();
        }
        tokio::select! {
            _ = events.next_of("action.pending") => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    daemon.decide(&id, "approve").await;
    for send in sends {
        let (status, answer) = send.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["action_id"], id.as_str());
        assert_eq!(answer["verdict"], "allow");
    }
    assert_eq!(daemon.count("SELECT count(*) FROM actions"), 1);
    let mut edited = body.clone();
    edited["input"]["command"] = json!("git push --force");
    let (status, conflict) = daemon.check(edited).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["code"], "tool_use_conflict");
    assert_eq!(conflict["error"]["field"], "tool_use_id");
}

/// Shutting down answers a waiting check with "pending" at once; the action stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_waiting_checks_and_leaves_their_actions_pending() {
    let daemon = Setup::default()
        .config(|c| c.approvals.deadline_ms = 60_000)
        .start()
        .await;
    let mut events = daemon.events().await;
    let (http, url, token) = (
        daemon.http.clone(),
        daemon.url("/v1/check"),
        daemon.agent.clone(),
    );
    let waiting = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(token)
            .json(&paused(60_000))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    let event = events.next_of("action.pending").await;
    let id = event["action"]["action_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let ledger_path = daemon.ledger_path();
    let _dir = daemon.stop().await;
    let answer = waiting.await.unwrap();
    assert_eq!(answer["verdict"], "pending");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown did not wait out the 60 s wait"
    );
    let conn = rusqlite::Connection::open(ledger_path).unwrap();
    let decided: i64 = conn
        .query_row(
            "SELECT count(*) FROM decisions WHERE action_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(decided, 0, "shutdown decides nothing");
}

/// An approval-fatigue flood cannot bury the queue: past the caps, new pauses are rejected at
/// once (and recorded), and room frees up as actions are decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_past_the_queue_caps_are_rejected_not_queued() {
    let daemon = Setup::default()
        .config(|c| {
            c.approvals.max_pending = 3;
            c.approvals.max_pending_per_session = 2;
        })
        .start()
        .await;
    let pause_in = |session: &str| json!({"tool": "Bash", "input": {"command": "git push"}, "session_id": session, "wait_ms": 0});
    let (_, a1) = daemon.check(pause_in("a")).await;
    let (_, a2) = daemon.check(pause_in("a")).await;
    assert_eq!(
        (a1["verdict"].as_str(), a2["verdict"].as_str()),
        (Some("pending"), Some("pending"))
    );
    let (status, a3) = daemon.check(pause_in("a")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a3["verdict"], "reject", "{a3}");
    assert_eq!(a3["decided_by"], "error");
    assert!(
        a3["reason"]
            .as_str()
            .unwrap()
            .starts_with("approval_queue_full"),
        "{a3}"
    );
    assert!(
        a3["reason"]
            .as_str()
            .unwrap()
            .contains("max_pending_per_session"),
        "{a3}"
    );

    let (_, b1) = daemon.check(pause_in("b")).await;
    assert_eq!(b1["verdict"], "pending", "another session still has room");
    let (_, c1) = daemon.check(pause_in("c")).await;
    assert_eq!(
        c1["verdict"], "reject",
        "the global cap of 3 is reached: {c1}"
    );
    assert!(
        c1["reason"]
            .as_str()
            .unwrap()
            .contains("approvals.max_pending)"),
        "{c1}"
    );
    // The refusals are in the ledger too, as rejections.
    let stored = daemon.action(c1["action_id"].as_str().unwrap()).await;
    assert_eq!(stored["verdict"], "reject");

    daemon.decide(&id_of(&a1), "deny").await;
    let (_, a4) = daemon.check(pause_in("a")).await;
    assert_eq!(a4["verdict"], "pending", "deciding one made room: {a4}");
}
