//! Standing grants and edits on every backend: a grant and its one revocation, the reads around
//! them (actions a grant allowed, recent pauses, people's approvals, the overview's counts), and
//! edit then approve — chained, read back the same whichever backend holds them.

use gatehouse_ledger::{
    DecisionOutcome, EditFact, NewGrant, RecordedEffect, Revoked, VerifyOptions,
};
use gatehouse_protocol::Verdict;
use serde_json::json;

use super::support::{self, TestBackend, conformance};
use super::{decision, new_action};

conformance!(grants_and_edits_are_recorded_and_read_back);

async fn grants_and_edits_are_recorded_and_read_back(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_grant(NewGrant {
            id: "g1".into(),
            created_at_ms: 1_500,
            expires_at_ms: Some(9_000),
            scope: json!({"kind": "session", "session_id": "s1"}),
            rules: vec![json!({"tool": "Bash"})],
            hosts: vec!["example.com".into()],
            action_id: Some("p1".into()),
            created_by: "alice".into(),
            note: Some("similar ls".into()),
        })
        .await
        .unwrap();
    let mut granted = new_action("a2", Verdict::Allow);
    granted.rule_id = Some("grant:g1".into());
    ledger.record_action(granted).await.unwrap();
    let grants = ledger.grants().await.unwrap();
    assert_eq!(grants.len(), 1);
    let grant = &grants[0];
    assert_eq!(
        (grant.id.as_str(), grant.allowed, grant.expires_at_ms),
        ("g1", 1, Some(9_000))
    );
    assert_eq!(grant.scope, json!({"kind": "session", "session_id": "s1"}));
    assert_eq!(grant.rules, [json!({"tool": "Bash"})]);
    assert_eq!(grant.hosts, ["example.com"]);
    assert_eq!(grant.action_id.as_deref(), Some("p1"));
    assert_eq!(grant.revoked_at_ms, None);
    assert_eq!(
        ledger.revoke_grant("g1", 3_000, "bob").await.unwrap(),
        Revoked::Revoked
    );
    assert_eq!(
        ledger.revoke_grant("g1", 3_001, "bob").await.unwrap(),
        Revoked::Already
    );
    assert_eq!(
        ledger.revoke_grant("nope", 3_001, "bob").await.unwrap(),
        Revoked::NotFound
    );
    let grant = ledger.grants().await.unwrap().remove(0);
    assert_eq!(
        (grant.revoked_at_ms, grant.revoked_by.as_deref()),
        (Some(3_000), Some("bob"))
    );
    let paused = ledger.paused_actions(10).await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(
        (paused[0].id.as_str(), paused[0].effect),
        ("p1", RecordedEffect::Pause)
    );

    // Edit then approve: the decision and its edit land together.
    let hash = ledger.action("p1").await.unwrap().unwrap().action_hash;
    let edited_input = json!({"command": "ls"}).as_object().unwrap().clone();
    let mut fact = decision("p1", Verdict::Allow);
    fact.action_hash = Some(hex(&hash));
    let edit = EditFact {
        edited_input: edited_input.clone(),
        edited_hash: [5; 32],
        edited_by: "alice".into(),
    };
    let DecisionOutcome::Decided(view) = ledger
        .record_edited_decision(fact.clone(), edit.clone())
        .await
        .unwrap()
    else {
        panic!("the edited approval lands");
    };
    let recorded = view.decision.unwrap().edit.unwrap();
    assert_eq!(recorded.edited_input, edited_input);
    assert_eq!(recorded.edited_by, "alice");
    assert_eq!(recorded.edited_hash, "05".repeat(32));
    let read = ledger.action("p1").await.unwrap().unwrap();
    assert_eq!(
        read.input,
        json!({"command": "ls -la"}),
        "the original stays"
    );
    assert_eq!(
        read.decision.unwrap().edit.unwrap().edited_input,
        edited_input
    );
    let history = ledger.history("p1").await.unwrap();
    assert!(history.iter().any(|e| e.kind == "edited"), "{history:?}");
    // A second edited approval does not land, and appends no edit.
    assert!(matches!(
        ledger.record_edited_decision(fact, edit).await.unwrap(),
        DecisionOutcome::AlreadyDecided(_)
    ));
    let approved = ledger.approvals_since(0, 10).await.unwrap();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].action.id, "p1");
    assert_eq!(approved[0].action_hash, hash);
    let counts = ledger.grant_counts(0).await.unwrap();
    assert_eq!(
        (
            counts.actions,
            counts.paused,
            counts.granted,
            counts.decided_by_people
        ),
        (2, 1, 1, 1)
    );
    // 2 actions, a grant, its revocation, a decision and its edit.
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 6);
    for sql in [
        "UPDATE grants SET expires_at_ms = NULL",
        "DELETE FROM grant_revocations",
        "UPDATE edits SET edited_input = '{}'",
    ] {
        let err = backend.raw(sql).await.expect_err("append-only");
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

fn hex(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}
