//! Schema 7: a withdrawn action is its own state (`decided_by = "withdrawn"`), against a real
//! SQLite file: it reads back as recorded, it is chained and verifies, a later approval cannot
//! land, and a withdrawal can never allow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use gatehouse_ledger::{
    DecisionFact, DecisionOutcome, Ledger, LedgerConfig, NewAction, VerifyOptions,
};
use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
use serde_json::json;

fn paused(id: &str) -> NewAction {
    NewAction {
        id: id.to_owned(),
        created_at_ms: 1_000,
        tool: "mcp__fs__write_file".into(),
        input: json!({"path": "/p/a"}).as_object().unwrap().clone(),
        session_id: Some("mcp-fs-n".into()),
        agent: Some("mcp-client".into()),
        tool_use_id: Some("n-1:7".into()),
        cwd: Some("/p".into()),
        context: None,
        verdict: Verdict::Pending,
        decided_by: DecidedBy::Default,
        rule_id: None,
        reason: "paused by default".into(),
        deadline_ms: Some(100_000),
        tier2_status: Tier2Status::Pending,
        peer_uid: None,
        peer_pid: None,
        observed_effect: None,
    }
}

fn fact(id: &str, verdict: Verdict, by: DecidedBy) -> DecisionFact {
    DecisionFact {
        action_id: id.into(),
        decided_at_ms: 2_000,
        verdict,
        decided_by: by,
        note: Some("withdrawn by the agent: the MCP client cancelled the call".into()),
        action_hash: None,
    }
}

#[tokio::test]
async fn a_withdrawal_is_recorded_as_withdrawn_chained_and_final() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(LedgerConfig::new(path.clone())).unwrap();
    ledger.record_action(paused("w1")).await.unwrap();
    let outcome = ledger
        .record_decision(fact("w1", Verdict::Reject, DecidedBy::Withdrawn))
        .await
        .unwrap();
    let DecisionOutcome::Decided(view) = outcome else {
        panic!("expected the withdrawal to land, got {outcome:?}")
    };
    assert_eq!(view.verdict, Verdict::Reject);
    let decision = view
        .decision
        .expect("the withdrawal is the action's decision");
    assert_eq!(decision.decided_by, DecidedBy::Withdrawn);
    // A person's approval after it does not land.
    let late = ledger
        .record_decision(fact("w1", Verdict::Allow, DecidedBy::Human))
        .await
        .unwrap();
    assert!(!matches!(late, DecisionOutcome::Decided(_)), "{late:?}");
    assert!(ledger.verify(VerifyOptions::default()).await.is_ok());
    drop(ledger);
    // Reopened: still withdrawn, as JSON too.
    let ledger = Ledger::open(LedgerConfig::new(path)).unwrap();
    let view = ledger.action("w1").await.unwrap().unwrap();
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["decision"]["decided_by"], "withdrawn");
    assert!(ledger.verify(VerifyOptions::default()).await.is_ok());
}

#[tokio::test]
async fn a_withdrawal_can_never_allow() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap();
    ledger.record_action(paused("w2")).await.unwrap();
    let allowed = ledger
        .record_decision(fact("w2", Verdict::Allow, DecidedBy::Withdrawn))
        .await;
    assert!(
        !matches!(allowed, Ok(DecisionOutcome::Decided(_))),
        "a withdrawal allowed an action: {allowed:?}"
    );
    let view = ledger.action("w2").await.unwrap().unwrap();
    assert_eq!(view.verdict, Verdict::Pending);
}
