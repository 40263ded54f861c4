//! Integration tests of the ledger against a real SQLite file in a temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::time::Duration;

use gatehouse_ledger::{
    DecisionFact, DecisionOutcome, Durability, Ledger, LedgerConfig, LedgerError, ListQuery,
    NewAction, Recorded, ScoreFact, ScoreOutcome, StatusFilter,
};
use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
use serde_json::json;

fn open(dir: &tempfile::TempDir) -> Ledger {
    Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap()
}

fn action(id: &str, verdict: Verdict) -> NewAction {
    NewAction {
        id: id.to_owned(),
        created_at_ms: 1_000,
        tool: "Bash".into(),
        input: json!({"command": "ls"}).as_object().unwrap().clone(),
        session_id: None,
        agent: Some("test".into()),
        tool_use_id: None,
        cwd: Some("/tmp".into()),
        context: None,
        verdict,
        decided_by: DecidedBy::Rule,
        rule_id: Some("r1".into()),
        reason: "because".into(),
        deadline_ms: (verdict == Verdict::Pending).then_some(100_000),
        tier2_status: Tier2Status::Pending,
    }
}

fn decision(id: &str, verdict: Verdict, by: DecidedBy) -> DecisionFact {
    DecisionFact {
        action_id: id.into(),
        decided_at_ms: 2_000,
        verdict,
        decided_by: by,
        note: None,
    }
}

#[tokio::test]
async fn an_action_reads_back_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    assert!(matches!(
        ledger
            .record_action(action("a1", Verdict::Allow))
            .await
            .unwrap(),
        Recorded::Inserted
    ));
    let view = ledger.action("a1").await.unwrap().unwrap();
    assert_eq!(view.verdict, Verdict::Allow);
    assert_eq!(view.input, json!({"command": "ls"}));
    assert_eq!(view.rule_id.as_deref(), Some("r1"));
    assert_eq!(view.tier2_status, Tier2Status::Pending);
    assert!(ledger.action("nope").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .record_action(action(&format!("a{i}"), Verdict::Allow))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap().unwrap(), Recorded::Inserted));
    }
    assert_eq!(ledger.count().await.unwrap(), 300);
    // A second process opening the same file sees every row: they were committed, not buffered.
    let raw = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let n: i64 = raw
        .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 300);
}

#[tokio::test]
async fn a_resent_tool_use_reattaches_to_its_action() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let mut first = action("a1", Verdict::Pending);
    first.session_id = Some("s".into());
    first.tool_use_id = Some("t".into());
    let mut again = first.clone();
    again.id = "a2".into();
    let mut edited = again.clone();
    edited.input.insert("command".into(), json!("rm -rf ~"));
    assert!(matches!(
        ledger.record_action(first).await.unwrap(),
        Recorded::Inserted
    ));
    match ledger.record_action(again).await.unwrap() {
        Recorded::Existing {
            action,
            same_action,
        } => {
            assert_eq!(action.action_id, "a1");
            assert!(same_action);
        }
        other => panic!("expected re-attach, got {other:?}"),
    }
    match ledger.record_action(edited).await.unwrap() {
        Recorded::Existing {
            action,
            same_action,
        } => {
            assert_eq!(action.action_id, "a1");
            assert!(
                !same_action,
                "an edited action under a reused tool_use_id is not the same"
            );
        }
        other => panic!("expected re-attach, got {other:?}"),
    }
    assert_eq!(ledger.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_decisions_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("p", Verdict::Pending))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let ledger = ledger.clone();
            let (verdict, by) = match i % 3 {
                0 => (Verdict::Allow, DecidedBy::Human),
                1 => (Verdict::Reject, DecidedBy::Human),
                _ => (Verdict::Reject, DecidedBy::Timeout),
            };
            tokio::spawn(async move { ledger.record_decision(decision("p", verdict, by)).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            DecisionOutcome::Decided(view) => winners.push(view),
            DecisionOutcome::AlreadyDecided(view) => assert_ne!(view.verdict, Verdict::Pending),
            DecisionOutcome::NotFound => panic!("the action exists"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one decision wins");
    let stored = ledger.action("p").await.unwrap().unwrap();
    assert_eq!(stored.decision, winners[0].decision);
    let raw = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let n: i64 = raw
        .query_row("SELECT count(*) FROM decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn only_paused_actions_can_be_decided() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("a", Verdict::Allow))
        .await
        .unwrap();
    assert!(matches!(
        ledger
            .record_decision(decision("a", Verdict::Reject, DecidedBy::Human))
            .await
            .unwrap(),
        DecisionOutcome::AlreadyDecided(_)
    ));
    assert!(matches!(
        ledger
            .record_decision(decision("missing", Verdict::Allow, DecidedBy::Human))
            .await
            .unwrap(),
        DecisionOutcome::NotFound
    ));
}

#[tokio::test]
async fn a_score_for_a_missing_action_is_dropped_and_a_real_one_shows() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("a", Verdict::Allow))
        .await
        .unwrap();
    let scored = ScoreOutcome::Scored {
        score: 0.93,
        label: "malicious".into(),
        model: "m1".into(),
        explanation: None,
        disagreement: true,
    };
    let missing = ScoreFact {
        action_id: "zz".into(),
        recorded_at_ms: 5,
        outcome: scored.clone(),
    };
    assert!(!ledger.record_score(missing).await.unwrap());
    let real = ScoreFact {
        action_id: "a".into(),
        recorded_at_ms: 1_005,
        outcome: scored,
    };
    assert!(ledger.record_score(real).await.unwrap());
    let view = ledger.action("a").await.unwrap().unwrap();
    assert_eq!(view.tier2_status, Tier2Status::Scored);
    assert_eq!(view.tier2.as_ref().unwrap().score, 0.93);
    assert!(view.disagreement);
    let flagged = ledger
        .list(ListQuery {
            limit: 10,
            disagreements_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(flagged.len(), 1);
    let history = ledger.history("a").await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.kind).collect::<Vec<_>>(),
        ["recorded", "scored"]
    );
}

#[tokio::test]
async fn errors_and_timeouts_are_recorded_never_as_safe() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("a", Verdict::Allow))
        .await
        .unwrap();
    ledger
        .record_score(ScoreFact {
            action_id: "a".into(),
            recorded_at_ms: 5,
            outcome: ScoreOutcome::Error("boom".into()),
        })
        .await
        .unwrap();
    let view = ledger.action("a").await.unwrap().unwrap();
    assert_eq!(view.tier2_status, Tier2Status::Error);
    assert_eq!(view.tier2, None);
    assert_eq!(view.tier2_error.as_deref(), Some("boom"));
}

#[tokio::test]
async fn the_ledger_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("a", Verdict::Allow))
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let update = raw.execute("UPDATE actions SET verdict = 'reject' WHERE id = 'a'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = raw.execute("DELETE FROM actions", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(
        ledger.action("a").await.unwrap().unwrap().verdict,
        Verdict::Allow
    );
}

#[tokio::test]
async fn listing_filters_by_status_and_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    for i in 0..5 {
        ledger
            .record_action(action(&format!("allow{i}"), Verdict::Allow))
            .await
            .unwrap();
    }
    ledger
        .record_action(action("p1", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_action(action("p2", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_decision(decision("p1", Verdict::Reject, DecidedBy::Human))
        .await
        .unwrap();

    let pending = ledger.list(ListQuery {
        status: Some(StatusFilter::Pending),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(ids(pending.await.unwrap()), ["p2"]);
    let rejected = ledger.list(ListQuery {
        status: Some(StatusFilter::Rejected),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(ids(rejected.await.unwrap()), ["p1"]);
    let page1 = ledger
        .list(ListQuery {
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(page1.clone()), ["p2", "p1", "allow4"]);
    let page2 = ledger
        .list(ListQuery {
            limit: 3,
            before: Some(page1[2].action_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(page2), ["allow3", "allow2", "allow1"]);
    assert_eq!(ids(ledger.pending().await.unwrap()), ["p2"]);
}

fn ids(views: Vec<gatehouse_protocol::ActionView>) -> Vec<String> {
    views.into_iter().map(|v| v.action_id).collect()
}

#[tokio::test]
async fn pending_actions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open(&dir);
        ledger
            .record_action(action("p", Verdict::Pending))
            .await
            .unwrap();
    }
    let ledger = open(&dir);
    assert_eq!(ids(ledger.pending().await.unwrap()), ["p"]);
    assert!(matches!(
        ledger
            .record_decision(decision("p", Verdict::Allow, DecidedBy::Human))
            .await
            .unwrap(),
        DecisionOutcome::Decided(_)
    ));
}

#[tokio::test]
async fn a_ledger_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(open(&dir));
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    match Ledger::open(LedgerConfig::new(&path)) {
        Err(LedgerError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_blocked_by_another_writer_fails_and_the_ledger_recovers() {
    // Crash-safe commits inline when the writer is idle; power-safe always goes through the
    // writer thread. Both must fail closed and recover.
    for durability in [Durability::CrashSafe, Durability::PowerSafe] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut config = LedgerConfig::new(&path);
        config.busy_timeout = Duration::from_millis(50);
        config.durability = durability;
        let ledger = Ledger::open(config).unwrap();
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = ledger.record_action(action("a", Verdict::Allow)).await.unwrap_err();
        assert!(matches!(err, LedgerError::CommitFailed(_)), "{durability:?}: {err}");
        blocker.execute_batch("ROLLBACK").unwrap();
        ledger.record_action(action("b", Verdict::Allow)).await.unwrap();
        assert!(ledger.action("a").await.unwrap().is_none(), "a failed append leaves no row");
        assert!(ledger.action("b").await.unwrap().is_some());
    }
}
