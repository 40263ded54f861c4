//! Integration tests of the ledger against a real SQLite file in a temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::time::Duration;

#[cfg(feature = "postgres")]
mod conformance;

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
        peer_uid: None,
        peer_pid: None,
        observed_effect: None,
    }
}

fn decision(id: &str, verdict: Verdict, by: DecidedBy) -> DecisionFact {
    DecisionFact {
        action_id: id.into(),
        decided_at_ms: 2_000,
        verdict,
        decided_by: by,
        note: None,
        action_hash: None,
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
            DecisionOutcome::NotFound | DecisionOutcome::ActionMismatch(_) => {
                panic!("the action exists and no hash was named")
            }
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
    let history = ledger.history("p").await.unwrap();
    let kinds: Vec<_> = history.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, ["recorded", "decided"]);
    assert_eq!(
        history[0].detail["verdict"], "pending",
        "history keeps the row as recorded"
    );
    assert_eq!(history[0].detail["reason"], "because");
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
        let err = ledger
            .record_action(action("a", Verdict::Allow))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::CommitFailed(_)),
            "{durability:?}: {err}"
        );
        blocker.execute_batch("ROLLBACK").unwrap();
        ledger
            .record_action(action("b", Verdict::Allow))
            .await
            .unwrap();
        assert!(
            ledger.action("a").await.unwrap().is_none(),
            "a failed append leaves no row"
        );
        assert!(ledger.action("b").await.unwrap().is_some());
    }
}

// ---- The hash chain, verification, untrusted ledgers, full disks and signed checkpoints ----

use gatehouse_ledger::{LedgerHealth, VerifyOptions};

fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("ledger.db")
}

/// A ledger with one of each kind of record: a1 (allow), p1 (paused, scored, decided), p2
/// (paused), a2 (allow, scored): 7 chain entries.
async fn filled(ledger: &Ledger) {
    ledger
        .record_action(action("a1", Verdict::Allow))
        .await
        .unwrap();
    ledger
        .record_action(action("p1", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_score(ScoreFact {
            action_id: "p1".into(),
            recorded_at_ms: 1_001,
            outcome: ScoreOutcome::Timeout,
        })
        .await
        .unwrap();
    ledger
        .record_action(action("p2", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_decision(decision("p1", Verdict::Allow, DecidedBy::Human))
        .await
        .unwrap();
    ledger
        .record_action(action("a2", Verdict::Allow))
        .await
        .unwrap();
    ledger
        .record_score(ScoreFact {
            action_id: "a2".into(),
            recorded_at_ms: 1_002,
            outcome: ScoreOutcome::Error("boom".into()),
        })
        .await
        .unwrap();
}

/// A connection of someone with write access to the file who removed the append-only triggers.
fn attacker(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let raw = rusqlite::Connection::open(path(dir)).unwrap();
    for table in [
        "actions",
        "scores",
        "decisions",
        "chain",
        "checkpoints",
        "labels",
    ] {
        for op in ["update", "delete"] {
            raw.execute_batch(&format!("DROP TRIGGER IF EXISTS {table}_append_only_{op}"))
                .unwrap();
        }
    }
    raw.execute_batch(
        "DROP TRIGGER IF EXISTS decisions_only_for_paused;
         DROP TRIGGER IF EXISTS decisions_bound_to_action_hash",
    )
    .unwrap();
    raw
}

fn full() -> VerifyOptions {
    VerifyOptions::default()
}

#[tokio::test]
async fn every_record_is_chained_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    filled(&ledger).await;
    let report = ledger.verify(full()).await.unwrap();
    assert_eq!(report.entries, 7);
    assert_eq!(report.checked, 7);
    let tail = ledger
        .verify(VerifyOptions {
            tail: Some(2),
            ..full()
        })
        .await
        .unwrap();
    assert_eq!((tail.entries, tail.checked), (7, 2));
    assert_eq!(tail.head, report.head);
    // Re-sends, refused decisions and scores for missing actions append nothing.
    let mut again = action("x", Verdict::Allow);
    again.session_id = Some("s".into());
    again.tool_use_id = Some("t".into());
    ledger.record_action(again.clone()).await.unwrap();
    again.id = "y".into();
    ledger.record_action(again).await.unwrap();
    ledger
        .record_decision(decision("a1", Verdict::Reject, DecidedBy::Human))
        .await
        .unwrap();
    let missing = ScoreFact {
        action_id: "zz".into(),
        recorded_at_ms: 1,
        outcome: ScoreOutcome::Dropped,
    };
    ledger.record_score(missing).await.unwrap();
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_through_both_commit_paths_keep_one_chain() {
    for durability in [Durability::CrashSafe, Durability::PowerSafe] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LedgerConfig::new(path(&dir));
        config.durability = durability;
        let ledger = Ledger::open(config).unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    let id = format!("a{i}");
                    let verdict = if i % 2 == 0 {
                        Verdict::Pending
                    } else {
                        Verdict::Allow
                    };
                    ledger.record_action(action(&id, verdict)).await.unwrap();
                    let score = ScoreFact {
                        action_id: id.clone(),
                        recorded_at_ms: 1_001,
                        outcome: ScoreOutcome::Timeout,
                    };
                    ledger.record_score(score).await.unwrap();
                    if verdict == Verdict::Pending {
                        ledger
                            .record_decision(decision(&id, Verdict::Reject, DecidedBy::Timeout))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let report = ledger.verify(full()).await.unwrap();
        assert_eq!(report.entries, 500, "{durability:?}");
    }
}

#[tokio::test]
async fn verify_names_the_first_edited_deleted_reordered_or_inserted_record() {
    // (what the attacker does, the first bad chain entry if the fault is in one, words in the message)
    let cases: &[(&str, Option<i64>, &str)] = &[
        ("UPDATE actions SET input = '{\"command\":\"rm -rf ~\"}' WHERE id = 'p1'", Some(2), "edited"),
        ("UPDATE decisions SET verdict = 'reject' WHERE action_id = 'p1'", Some(5), "edited"),
        ("UPDATE scores SET error = 'fine' WHERE action_id = 'a2'", Some(7), "edited"),
        ("DELETE FROM scores WHERE action_id = 'p1'", Some(3), "deleted"),
        ("DELETE FROM decisions", Some(5), "deleted"),
        ("DELETE FROM chain WHERE seq = 4; DELETE FROM actions WHERE id = 'p2'", Some(4), "deleted"),
        (
            "UPDATE chain SET seq = -1 WHERE seq = 3; UPDATE chain SET seq = 3 WHERE seq = 4;
             UPDATE chain SET seq = 4 WHERE seq = -1",
            Some(3),
            "reordered",
        ),
        (
            "UPDATE actions SET created_at_ms = 5 WHERE id = 'a1'",
            Some(1),
            "edited",
        ),
        (
            "INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by) VALUES ('p2', 3, 'allow', 'human')",
            None,
            "not in the chain",
        ),
        (
            "INSERT INTO actions (id, created_at_ms, tool, input, verdict, decided_by, reason, tier2_status)
             VALUES ('evil', 1, 'Bash', '{}', 'allow', 'rule', 'x', 'disabled')",
            None,
            "not in the chain",
        ),
    ];
    for (attack, first_bad, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(&dir);
        filled(&ledger).await;
        ledger.verify(full()).await.unwrap();
        attacker(&dir).execute_batch(attack).unwrap();
        let failure = ledger.verify(full()).await.unwrap_err();
        assert_eq!(failure.chain_seq, *first_bad, "{attack}: {failure}");
        assert!(failure.to_string().contains(words), "{attack}: {failure}");
        let file = gatehouse_ledger::verify_file(&path(&dir), &full()).unwrap_err();
        assert_eq!(file, failure, "verifying the file finds the same fault");
    }
}

#[tokio::test]
async fn a_truncated_chain_is_caught_by_its_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LedgerConfig::new(path(&dir));
    config.signing_key = Some(dir.path().join("ledger.key"));
    let ledger = Ledger::open(config.clone()).unwrap();
    filled(&ledger).await;
    let checkpoint = ledger.sign_checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.chain_seq, 7);
    checkpoint.verify_signature().unwrap();
    assert_eq!(ledger.verify(full()).await.unwrap().checkpoints, 1);
    // Cut the last two records and their entries: the chain itself still links up.
    attacker(&dir)
        .execute_batch(
            "DELETE FROM chain WHERE seq > 5; DELETE FROM scores WHERE action_id = 'a2';
             DELETE FROM actions WHERE id = 'a2'",
        )
        .unwrap();
    let failure = ledger.verify(full()).await.unwrap_err();
    assert!(failure.to_string().contains("truncated"), "{failure}");
    // Deleting the checkpoint too hides it from the ledger, but not from an exported copy.
    attacker(&dir)
        .execute_batch("DELETE FROM checkpoints")
        .unwrap();
    ledger.verify(full()).await.unwrap();
    let anchored = VerifyOptions {
        anchors: vec![checkpoint.clone()],
        ..full()
    };
    let failure = ledger.verify(anchored).await.unwrap_err();
    assert!(failure.to_string().contains("truncated"), "{failure}");
    // A forged checkpoint (signed with another key, or with a bad signature) is refused.
    let mut forged = checkpoint.clone();
    forged.chain_seq = 5;
    let failure = ledger
        .verify(VerifyOptions {
            anchors: vec![forged],
            ..full()
        })
        .await
        .unwrap_err();
    assert!(failure.to_string().contains("bad signature"), "{failure}");
    let json = serde_json::to_value(&checkpoint).unwrap();
    for field in [
        "chain_seq",
        "head_hash",
        "created_at_ms",
        "public_key",
        "signature",
    ] {
        assert!(json.get(field).is_some(), "{json}");
    }
    let back: gatehouse_ledger::Checkpoint = serde_json::from_value(json).unwrap();
    assert_eq!(back, checkpoint);
}

#[cfg(unix)]
#[tokio::test]
async fn the_signing_key_is_private_and_checkpoints_are_signed_on_close() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ledger.key");
    let mut config = LedgerConfig::new(path(&dir));
    config.signing_key = Some(key.clone());
    {
        let ledger = Ledger::open(config.clone()).unwrap();
        filled(&ledger).await;
        assert!(ledger.latest_checkpoint().await.unwrap().is_none());
    }
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let latest = gatehouse_ledger::latest_checkpoint_in_file(&path(&dir))
        .unwrap()
        .expect("closing the ledger signs its head");
    assert_eq!(latest.chain_seq, 7);
    assert_eq!(
        Some(latest.public_key),
        gatehouse_ledger::public_key(&key).unwrap()
    );
    // A checkpoint by a key that is not the data directory's is refused.
    let options = VerifyOptions {
        public_key: Some([7; 32]),
        ..full()
    };
    let failure = gatehouse_ledger::verify_file(&path(&dir), &options).unwrap_err();
    assert!(
        failure.to_string().contains("not this ledger's"),
        "{failure}"
    );
    // Periodic signing: the head moved, so the signer thread signs it again.
    config.sign_interval = Duration::from_millis(20);
    let ledger = Ledger::open(config).unwrap();
    ledger
        .record_action(action("later", Verdict::Allow))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let latest = ledger.latest_checkpoint().await.unwrap().unwrap();
        if latest.chain_seq == 8 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never signed the new head"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn verifying(dir: &tempfile::TempDir) -> LedgerConfig {
    let mut config = LedgerConfig::new(path(dir));
    config.verify_tail = Some(10_000);
    config.signing_key = Some(dir.path().join("ledger.key"));
    config
}

#[tokio::test]
async fn a_tampered_ledger_opens_untrusted_and_refuses_every_append() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = Ledger::open(verifying(&dir)).unwrap();
        filled(&ledger).await;
        assert_eq!(ledger.health(), LedgerHealth::Ok);
    }
    attacker(&dir)
        .execute_batch("UPDATE actions SET verdict = 'allow', deadline_ms = NULL WHERE id = 'p2'")
        .unwrap();
    let ledger = Ledger::open(verifying(&dir)).unwrap();
    let LedgerHealth::Degraded(reason) = ledger.health() else {
        panic!("a tampered ledger must not be healthy");
    };
    assert!(reason.contains("chain entry 4"), "{reason}");
    let err = ledger
        .record_action(action("new", Verdict::Allow))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Untrusted(_)), "{err}");
    let err = ledger
        .record_decision(decision("p2", Verdict::Allow, DecidedBy::Human))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Untrusted(_)), "{err}");
    assert!(
        ledger.sign_checkpoint().await.is_err(),
        "never vouch for a broken chain"
    );
    // Still readable, for the person investigating.
    assert_eq!(ledger.count().await.unwrap(), 4);
}

#[tokio::test]
async fn a_corrupted_file_is_never_trusted_nor_replaced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = Ledger::open(verifying(&dir)).unwrap();
        for i in 0..400 {
            let mut big = action(&format!("a{i}"), Verdict::Allow);
            big.reason = "x".repeat(300);
            ledger.record_action(big).await.unwrap();
        }
    }
    let file = path(&dir);
    let mut bytes = std::fs::read(&file).unwrap();
    let len = bytes.len();
    assert!(len > 64 * 1024, "{len}");
    for b in &mut bytes[len / 2..len / 2 + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    match Ledger::open(verifying(&dir)) {
        Ok(ledger) => {
            let health = ledger.health();
            assert!(matches!(health, LedgerHealth::Degraded(_)), "{health:?}");
            let err = ledger
                .record_action(action("new", Verdict::Allow))
                .await
                .unwrap_err();
            assert!(matches!(err, LedgerError::Untrusted(_)), "{err}");
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    assert!(gatehouse_ledger::verify_file(&file, &full()).is_err());
    assert_eq!(
        std::fs::read(&file).unwrap().len(),
        len,
        "the broken file is left as it was"
    );
}

#[tokio::test]
async fn a_missing_ledger_beside_its_key_is_not_silently_recreated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = Ledger::open(verifying(&dir)).unwrap();
        filled(&ledger).await;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path(&dir).display()));
    }
    let ledger = Ledger::open(verifying(&dir)).unwrap();
    let LedgerHealth::Degraded(reason) = ledger.health() else {
        panic!("a vanished ledger must not be healthy");
    };
    assert!(reason.contains("missing"), "{reason}");
    assert!(
        ledger
            .record_action(action("new", Verdict::Allow))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_ledger_from_before_the_chain_is_migrated_and_chained() {
    let dir = tempfile::tempdir().unwrap();
    {
        let raw = rusqlite::Connection::open(path(&dir)).unwrap();
        raw.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        raw.execute_batch(
            "INSERT INTO actions (id, created_at_ms, tool, input, verdict, decided_by, reason, deadline_ms, tier2_status)
             VALUES ('old1', 10, 'Bash', '{}', 'pending', 'rule', 'r', 99, 'pending'),
                    ('old2', 20, 'Read', '{}', 'allow', 'rule', 'r', NULL, 'disabled');
             INSERT INTO scores (action_id, recorded_at_ms, status) VALUES ('old1', 15, 'timeout');
             INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by) VALUES ('old1', 30, 'reject', 'human');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let ledger = Ledger::open(verifying(&dir)).unwrap();
    assert_eq!(ledger.health(), LedgerHealth::Ok);
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 4);
    ledger
        .record_action(action("new", Verdict::Allow))
        .await
        .unwrap();
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 5);
}

#[tokio::test]
async fn a_full_disk_fails_closed_degrades_and_recovers() {
    for durability in [Durability::CrashSafe, Durability::PowerSafe] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LedgerConfig::new(path(&dir));
        config.durability = durability;
        config.max_page_count = Some(40);
        let ledger = Ledger::open(config).unwrap();
        let mut accepted = 0;
        let err = loop {
            let mut big = action(&format!("a{accepted}"), Verdict::Allow);
            big.reason = "x".repeat(2_000);
            match ledger.record_action(big).await {
                Ok(_) => accepted += 1,
                Err(err) => break err,
            }
            assert!(accepted < 1_000, "the cap never bit");
        };
        assert!(err.to_string().contains("full"), "{durability:?}: {err}");
        let LedgerHealth::Degraded(reason) = ledger.health() else {
            panic!("a full disk must degrade the ledger");
        };
        assert!(reason.contains("full"), "{reason}");
        assert_eq!(ledger.count().await.unwrap(), accepted);
        ledger.set_max_page_count(None).unwrap();
        ledger
            .record_action(action("after", Verdict::Allow))
            .await
            .unwrap();
        assert_eq!(ledger.health(), LedgerHealth::Ok);
        let report = ledger.verify(full()).await.unwrap();
        assert_eq!(report.entries, accepted + 1, "{durability:?}");
    }
}

// ---- Schema 3: action hashes, peer credentials, observed effects, labels ----

use gatehouse_ledger::{ActionIdentity, NewLabel, action_hash};
use gatehouse_protocol::{ObservedEffect, ReviewLabel};
use sha2::{Digest, Sha256};

/// The chain's version-1 encoding, written out independently of `chain.rs` from its
/// documentation (docs/SECURITY.md): a schema-2 ledger built with it must still verify once
/// migrated, which pins "records written before schema 3 hash exactly as before".
fn v1_entry_hash(
    seq: i64,
    prev: &[u8; 32],
    kind: &str,
    record: i64,
    row: &rusqlite::Row<'_>,
) -> [u8; 32] {
    fn value(out: &mut Vec<u8>, v: rusqlite::types::ValueRef<'_>) {
        use rusqlite::types::ValueRef::*;
        match v {
            Null => out.push(0),
            Integer(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Real(f) => {
                out.push(2);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Text(b) | Blob(b) => {
                out.push(if matches!(v, Text(_)) { 3 } else { 4 });
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let mut bytes = b"gatehouse.ledger.chain.v1\0".to_vec();
    bytes.extend_from_slice(&(seq as u64).to_be_bytes());
    bytes.extend_from_slice(prev);
    value(&mut bytes, rusqlite::types::ValueRef::Text(kind.as_bytes()));
    bytes.extend_from_slice(&(record as u64).to_be_bytes());
    let n = row.as_ref().column_count();
    bytes.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        value(&mut bytes, row.get_ref(i).unwrap());
    }
    Sha256::digest(&bytes).into()
}

/// A schema-2 ledger file, chained the way schema 2 chained it: a1 (allow), p1 (paused,
/// scored), p2 (paused, decided by a person).
fn build_v2_ledger(path: &std::path::Path) {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute_batch(include_str!("../migrations/0001_init.sql"))
        .unwrap();
    raw.execute_batch(include_str!("../migrations/0002_hash_chain.sql"))
        .unwrap();
    raw.execute_batch(
        r#"INSERT INTO actions (id, created_at_ms, tool, input, session_id, tool_use_id, cwd, verdict, decided_by, reason, deadline_ms, tier2_status)
           VALUES ('a1', 10, 'Read', '{"path":"x"}', NULL, NULL, NULL, 'allow', 'rule', 'r', NULL, 'disabled'),
                  ('p1', 20, 'Bash', '{"command":"git push","z":[1,2.5]}', 's1', 't1', '/w', 'pending', 'rule', 'r', 4102444800000, 'pending'),
                  ('p2', 30, 'Bash', '{"command":"curl x"}', NULL, NULL, NULL, 'pending', 'rule', 'r', 4102444800000, 'disabled');
           INSERT INTO scores (action_id, recorded_at_ms, status, score, label, model) VALUES ('p1', 21, 'scored', 0.75, 'malicious', 'm');
           INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by, note) VALUES ('p2', 40, 'reject', 'human', 'no');"#,
    )
    .unwrap();
    let records = [
        (
            "action",
            1,
            "SELECT id, seq, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd, context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status FROM actions WHERE seq = ?1",
        ),
        (
            "action",
            2,
            "SELECT id, seq, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd, context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status FROM actions WHERE seq = ?1",
        ),
        (
            "score",
            1,
            "SELECT action_id, seq, recorded_at_ms, status, score, label, model, explanation, error, disagreement FROM scores WHERE seq = ?1",
        ),
        (
            "action",
            3,
            "SELECT id, seq, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd, context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status FROM actions WHERE seq = ?1",
        ),
        (
            "decision",
            3,
            "SELECT d.action_id, a.seq, d.decided_at_ms, d.verdict, d.decided_by, d.note FROM decisions d JOIN actions a ON a.id = d.action_id WHERE a.seq = ?1",
        ),
    ];
    let mut prev = [0u8; 32];
    for (index, (kind, record, sql)) in records.iter().enumerate() {
        let seq = index as i64 + 1;
        let hash = raw
            .query_row(sql, [record], |row| {
                Ok(v1_entry_hash(seq, &prev, kind, *record, row))
            })
            .unwrap();
        raw.execute(
            "INSERT INTO chain (seq, kind, record, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![seq, kind, record, &prev[..], &hash[..]],
        )
        .unwrap();
        prev = hash;
    }
    raw.pragma_update(None, "user_version", 2).unwrap();
}

#[tokio::test]
async fn a_schema_2_ledger_is_migrated_keeps_verifying_and_its_old_actions_stay_decidable() {
    let dir = tempfile::tempdir().unwrap();
    build_v2_ledger(&path(&dir));
    // Verifying the file read-only, before any migration, reads it as schema 2.
    assert_eq!(
        gatehouse_ledger::verify_file(&path(&dir), &full())
            .unwrap()
            .entries,
        5
    );

    let ledger = Ledger::open(verifying(&dir)).unwrap();
    assert_eq!(
        ledger.health(),
        LedgerHealth::Ok,
        "the migrated chain verifies at open"
    );
    let report = ledger.verify(full()).await.unwrap();
    assert_eq!(report.entries, 5);

    let raw = rusqlite::Connection::open(path(&dir)).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, gatehouse_ledger::SCHEMA_VERSION);
    let null_hashes: i64 = raw
        .query_row(
            "SELECT count(*) FROM actions WHERE action_hash IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(null_hashes, 3, "rows from before schema 3 keep NULL");
    // The rebuilt chain table kept its append-only triggers.
    assert!(
        raw.execute("UPDATE chain SET record = 9 WHERE seq = 1", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM chain WHERE seq = 5", []).is_err());

    // An old paused action still shows a hash (computed from its row) and is decided by it.
    let p1 = ledger.action("p1").await.unwrap().unwrap();
    let input = p1.input.as_object().unwrap().clone();
    let expected = ActionIdentity {
        tool: "Bash",
        input: &input,
        cwd: Some("/w"),
        session_id: Some("s1"),
        tool_use_id: Some("t1"),
    }
    .hash();
    assert_eq!(p1.action_hash, action_hash::to_hex(&expected));
    let mut fact = decision("p1", Verdict::Allow, DecidedBy::Human);
    fact.action_hash = Some(expected);
    assert!(matches!(
        ledger.record_decision(fact).await.unwrap(),
        DecisionOutcome::Decided(_)
    ));
    // New records (a label, an action) chain on after the old ones.
    assert!(
        ledger
            .append_label(label("p1", ReviewLabel::Benign, 50))
            .await
            .unwrap()
    );
    ledger
        .record_action(action("new", Verdict::Allow))
        .await
        .unwrap();
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 8);
    drop(ledger);
    // And the migrated file verifies on its own, as schema 3.
    assert_eq!(
        gatehouse_ledger::verify_file(&path(&dir), &full())
            .unwrap()
            .entries,
        8
    );
}

fn label(id: &str, label: ReviewLabel, at: i64) -> NewLabel {
    NewLabel {
        action_id: id.into(),
        label,
        reviewer: Some("ana".into()),
        note: Some(format!("seen at {at}")),
        recorded_at_ms: at,
    }
}

#[tokio::test]
async fn labels_are_chained_read_back_and_an_edited_label_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    filled(&ledger).await; // 7 entries
    assert!(
        ledger
            .append_label(label("p1", ReviewLabel::Malicious, 3_000))
            .await
            .unwrap()
    );
    assert!(
        ledger
            .append_label(label("a1", ReviewLabel::Benign, 3_001))
            .await
            .unwrap()
    );
    assert!(
        ledger
            .append_label(label("p1", ReviewLabel::Benign, 3_002))
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .append_label(label("nope", ReviewLabel::Benign, 3_003))
            .await
            .unwrap(),
        "a label for a missing action is not recorded"
    );
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 10);

    let labels = ledger.labels_for("p1").await.unwrap();
    assert_eq!(
        labels.iter().map(|l| l.label).collect::<Vec<_>>(),
        [ReviewLabel::Malicious, ReviewLabel::Benign]
    );
    assert_eq!(labels[0].reviewer.as_deref(), Some("ana"));
    assert_eq!(labels[1].recorded_at_ms, 3_002);
    let history = ledger.history("p1").await.unwrap();
    let kinds: Vec<&str> = history.iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        ["recorded", "scored", "decided", "labelled", "labelled"]
    );
    assert_eq!(history[4].detail["label"], "benign");

    // Each tampering with a label is found, at the label's own chain entry (entry 8 is
    // p1's first label).
    let cases: &[(&str, Option<i64>, &str)] = &[
        (
            "UPDATE labels SET label = 'benign' WHERE seq = 1",
            Some(8),
            "edited",
        ),
        (
            "UPDATE labels SET reviewer = 'mallory' WHERE seq = 1",
            Some(8),
            "edited",
        ),
        ("DELETE FROM labels WHERE seq = 2", Some(9), "deleted"),
        (
            "INSERT INTO labels (action_id, label, recorded_at_ms) VALUES ('a2', 'benign', 1)",
            None,
            "not in the chain",
        ),
    ];
    drop(ledger);
    let pristine = std::fs::read(path(&dir)).unwrap();
    for (attack, first_bad, words) in cases {
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(path(&copy), &pristine).unwrap();
        gatehouse_ledger::verify_file(&path(&copy), &full()).unwrap();
        attacker(&copy).execute_batch(attack).unwrap();
        let failure = gatehouse_ledger::verify_file(&path(&copy), &full()).unwrap_err();
        assert_eq!(failure.chain_seq, *first_bad, "{attack}: {failure}");
        assert!(failure.to_string().contains(words), "{attack}: {failure}");
    }
}

#[tokio::test]
async fn labelled_examples_carry_the_latest_label_the_human_decision_and_the_latest_score() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    filled(&ledger).await; // p1: paused, timeout score, approved by a person; a2: error score
    ledger
        .record_score(ScoreFact {
            action_id: "p1".into(),
            recorded_at_ms: 2_500,
            outcome: ScoreOutcome::Scored {
                score: 0.9,
                label: "malicious".into(),
                model: "m".into(),
                explanation: None,
                disagreement: false,
            },
        })
        .await
        .unwrap();
    ledger
        .append_label(label("p1", ReviewLabel::Benign, 3_000))
        .await
        .unwrap();
    ledger
        .append_label(label("a2", ReviewLabel::Malicious, 3_001))
        .await
        .unwrap();
    ledger
        .append_label(label("p1", ReviewLabel::Malicious, 3_002))
        .await
        .unwrap();

    let examples = ledger.labelled_examples().await.unwrap();
    assert_eq!(
        examples
            .iter()
            .map(|e| e.action_id.as_str())
            .collect::<Vec<_>>(),
        ["p1", "a2"],
        "one row per labelled action, oldest action first; unlabelled actions are not examples"
    );
    let p1 = &examples[0];
    assert_eq!(
        p1.label.label,
        ReviewLabel::Malicious,
        "the latest label counts"
    );
    assert_eq!(p1.label.recorded_at_ms, 3_002);
    assert_eq!(p1.human_decision, Some(Verdict::Allow));
    assert_eq!(p1.rules_verdict, Verdict::Pending);
    assert_eq!(p1.score, Some(0.9));
    assert_eq!(p1.tool, "Bash");
    assert_eq!(p1.input, json!({"command": "ls"}));
    let a2 = &examples[1];
    assert_eq!(a2.human_decision, None);
    assert_eq!(a2.score, None, "an error is not a score");
    assert_eq!(a2.rules_verdict, Verdict::Allow);
}

#[tokio::test]
async fn schema_3_columns_round_trip_and_are_chained() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let mut observed = action("o1", Verdict::Allow);
    observed.peer_uid = Some(1000);
    observed.peer_pid = Some(4242);
    observed.observed_effect = Some(ObservedEffect::Pause);
    observed.session_id = Some("s".into());
    observed.tool_use_id = Some("t".into());
    let expected_hash = observed.identity().hash();
    ledger.record_action(observed).await.unwrap();
    ledger
        .record_action(action("plain", Verdict::Allow))
        .await
        .unwrap();

    let view = ledger.action("o1").await.unwrap().unwrap();
    assert_eq!(view.peer_uid, Some(1000));
    assert_eq!(view.peer_pid, Some(4242));
    assert_eq!(view.observed, Some(ObservedEffect::Pause));
    assert_eq!(view.action_hash, action_hash::to_hex(&expected_hash));
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["observed"], "pause");
    assert_eq!(json["peer_uid"], 1000);
    let plain = ledger.action("plain").await.unwrap().unwrap();
    assert_eq!(
        (plain.peer_uid, plain.peer_pid, plain.observed),
        (None, None, None)
    );
    assert_ne!(plain.action_hash, view.action_hash);

    let raw = rusqlite::Connection::open(path(&dir)).unwrap();
    let stored: Vec<u8> = raw
        .query_row("SELECT action_hash FROM actions WHERE id = 'o1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, expected_hash);
    drop(ledger);

    // The new columns are inside the chain's hash: changing any of them is caught.
    for attack in [
        "UPDATE actions SET peer_uid = 0 WHERE id = 'o1'",
        "UPDATE actions SET observed_effect = NULL WHERE id = 'o1'",
        "UPDATE actions SET action_hash = (SELECT action_hash FROM actions WHERE id = 'plain') WHERE id = 'o1'",
    ] {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(path(&dir), path(&copy)).unwrap();
        attacker(&copy).execute_batch(attack).unwrap();
        let failure = gatehouse_ledger::verify_file(&path(&copy), &full()).unwrap_err();
        assert_eq!(failure.chain_seq, Some(1), "{attack}: {failure}");
    }
}

#[tokio::test]
async fn a_decision_lands_only_with_its_actions_hash_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    ledger
        .record_action(action("p1", Verdict::Pending))
        .await
        .unwrap();
    let mut other = action("p2", Verdict::Pending);
    other.input = json!({"command": "rm -rf /"}).as_object().unwrap().clone();
    ledger.record_action(other).await.unwrap();
    let p1 = ledger.action("p1").await.unwrap().unwrap();
    let p2 = ledger.action("p2").await.unwrap().unwrap();

    // p2's hash on p1: refused, nothing appended, p1 still pending.
    let mut wrong = decision("p1", Verdict::Allow, DecidedBy::Human);
    wrong.action_hash = action_hash::from_hex(&p2.action_hash);
    match ledger.record_decision(wrong).await.unwrap() {
        DecisionOutcome::ActionMismatch(view) => assert_eq!(view.verdict, Verdict::Pending),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(
        ledger.verify(full()).await.unwrap().entries,
        2,
        "nothing was appended"
    );

    let mut right = decision("p1", Verdict::Allow, DecidedBy::Human);
    right.action_hash = action_hash::from_hex(&p1.action_hash);
    let DecisionOutcome::Decided(decided) = ledger.record_decision(right.clone()).await.unwrap()
    else {
        panic!("the right hash decides");
    };
    assert_eq!(decided.verdict, Verdict::Allow);
    assert_eq!(
        decided.decision.unwrap().action_hash.as_deref(),
        Some(p1.action_hash.as_str())
    );
    // A replay is a second decision.
    assert!(matches!(
        ledger.record_decision(right).await.unwrap(),
        DecisionOutcome::AlreadyDecided(_)
    ));
    assert_eq!(ledger.verify(full()).await.unwrap().entries, 3);

    // The schema refuses a mismatched decision even from a writer that skipped the check.
    let raw = rusqlite::Connection::open(path(&dir)).unwrap();
    let err = raw
        .execute(
            "INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by, action_hash)
             VALUES ('p2', 1, 'allow', 'human', (SELECT action_hash FROM actions WHERE id = 'p1'))",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("another action hash"), "{err}");
}

/// Two writers on one file (what two daemons on one data directory did before the daemon took a
/// lock on it): an append that fails shows in that handle's health — never "ok" while its checks
/// are answered with errors — and the next append, on a reloaded chain head, recovers.
#[tokio::test]
async fn an_append_that_fails_shows_in_health_until_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let handles = [open(&dir), open(&dir)];
    let mut failures = 0;
    for i in 0..6 {
        // Alternate: each handle's cached chain head goes stale behind the other's back.
        let ledger = &handles[i % 2];
        match ledger
            .record_action(action(&format!("a{i}"), Verdict::Allow))
            .await
        {
            Ok(_) => assert_eq!(ledger.health(), gatehouse_ledger::LedgerHealth::Ok),
            Err(err) => {
                failures += 1;
                assert!(
                    matches!(ledger.health(), gatehouse_ledger::LedgerHealth::Degraded(ref why) if !why.is_empty()),
                    "a failed append ({err}) must show in health"
                );
                ledger
                    .record_action(action(&format!("retry{i}"), Verdict::Allow))
                    .await
                    .expect("the next append reloads the chain head and commits");
                assert_eq!(ledger.health(), gatehouse_ledger::LedgerHealth::Ok);
            }
        }
    }
    assert!(failures > 0, "stale chain heads must have collided");
    // Nothing half-written was committed: the file's chain verifies.
    handles[0].verify(full()).await.unwrap();
}

fn outcome(
    session: Option<&str>,
    tool_use: Option<&str>,
    ran: bool,
) -> gatehouse_ledger::NewOutcome {
    gatehouse_ledger::NewOutcome {
        session_id: session.map(str::to_owned),
        tool_use_id: tool_use.map(str::to_owned),
        tool: "Bash".into(),
        agent: Some("claude-code".into()),
        cwd: Some("/tmp".into()),
        ran,
        exit_code: Some(0),
        error: None,
        duration_ms: Some(12),
        findings: vec!["gatehouse sandbox: denied write /etc/passwd".into()],
        recorded_at_ms: 5_000,
    }
}

/// Issue 10: an outcome links to its checked action, one for a call never checked (or one that
/// ran though rejected) is flagged, and every outcome is a chained record that verify covers.
#[tokio::test]
async fn outcomes_link_to_their_action_are_flagged_when_unchecked_and_are_chained() {
    use gatehouse_protocol::OutcomeFlag;
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let mut allowed = action("ok", Verdict::Allow);
    allowed.session_id = Some("s".into());
    allowed.tool_use_id = Some("t1".into());
    ledger.record_action(allowed).await.unwrap();
    let mut rejected = action("no", Verdict::Reject);
    rejected.session_id = Some("s".into());
    rejected.tool_use_id = Some("t2".into());
    ledger.record_action(rejected).await.unwrap();

    let linked = ledger
        .record_outcome(outcome(Some("s"), Some("t1"), true))
        .await
        .unwrap();
    assert_eq!(linked.action_id.as_deref(), Some("ok"));
    assert_eq!(linked.flag, None);
    let around = ledger
        .record_outcome(outcome(Some("s"), Some("t9"), true))
        .await
        .unwrap();
    assert_eq!(
        (around.action_id, around.flag),
        (None, Some(OutcomeFlag::Unchecked))
    );
    let despite = ledger
        .record_outcome(outcome(Some("s"), Some("t2"), true))
        .await
        .unwrap();
    assert_eq!(despite.flag, Some(OutcomeFlag::NotAllowed));
    let blocked = ledger
        .record_outcome(outcome(Some("s"), Some("t2"), false))
        .await
        .unwrap();
    assert_eq!(
        blocked.flag, None,
        "a rejected call that did not run is no evidence"
    );

    let history = ledger.history("ok").await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.kind, "outcome");
    assert_eq!(
        last.detail["findings"][0],
        "gatehouse sandbox: denied write /etc/passwd"
    );
    let flagged = ledger.outcomes(10, true).await.unwrap();
    assert_eq!(flagged.len(), 2);
    assert_eq!(flagged[0].outcome_id, despite.outcome_id, "newest first");
    assert_eq!(ledger.outcomes(10, false).await.unwrap().len(), 4);

    let report = ledger.verify(full()).await.unwrap();
    assert_eq!(report.entries, 6, "2 actions + 4 outcomes");
    drop(ledger);
    // Editing an outcome behind the ledger's back breaks the chain.
    let raw = attacker(&dir);
    raw.execute_batch(
        "DROP TRIGGER IF EXISTS outcomes_append_only_update;
         UPDATE outcomes SET flag = NULL WHERE flag = 'unchecked'",
    )
    .unwrap();
    drop(raw);
    let failure = gatehouse_ledger::verify_file(&path(&dir), &full()).unwrap_err();
    assert!(failure.detail.contains("outcome"), "{failure}");
}
