//! Team records on every backend: named users, each person's answer (two-person approval),
//! policy versions and the version that decided each action — chained, append-only, and read
//! back the same whichever backend holds them.

use gatehouse_ledger::{
    NewPolicyVersion, NewUser, PersonDecision, PersonOutcome, UserChange, VerifyOptions,
};
use gatehouse_protocol::{Decision, Role, Verdict};

use super::new_action;
use super::support::{self, TestBackend, conformance};

conformance!(
    users_are_added_once_and_removed,
    two_people_approve_and_one_denial_decides,
    policy_versions_are_numbered_and_decide_actions,
    team_records_cannot_be_rewritten,
);

fn user(name: &str, role: Role, token: u8) -> NewUser {
    NewUser {
        name: name.into(),
        role,
        token_hash: [token; 32],
        actor: "owner".into(),
        recorded_at_ms: 10,
    }
}

fn answer(id: &str, who: &str, decision: Decision, hash: [u8; 32]) -> PersonDecision {
    PersonDecision {
        action_id: id.into(),
        approver: who.into(),
        decision,
        action_hash: Some(hash),
        note: Some(format!("{who} says so")),
        required: 2,
        recorded_at_ms: 2_000,
    }
}

fn version(text: &str, rollback_of: Option<i64>) -> NewPolicyVersion {
    NewPolicyVersion {
        text: text.into(),
        pushed_by: "alice".into(),
        rollback_of,
        recorded_at_ms: 500,
    }
}

fn hash_of(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

async fn users_are_added_once_and_removed(backend: TestBackend) {
    let ledger = backend.open().await;
    assert!(matches!(
        ledger
            .add_user(user("alice", Role::Approver, 1))
            .await
            .unwrap(),
        UserChange::Added(_)
    ));
    assert_eq!(
        ledger
            .add_user(user("alice", Role::Admin, 2))
            .await
            .unwrap(),
        UserChange::Exists
    );
    ledger.add_user(user("bob", Role::Admin, 3)).await.unwrap();
    let users = ledger.users().await.unwrap();
    let names: Vec<(&str, Role, u8)> = users
        .iter()
        .map(|u| (u.name.as_str(), u.role, u.token_hash[0]))
        .collect();
    assert_eq!(
        names,
        [("alice", Role::Approver, 1), ("bob", Role::Admin, 3)]
    );
    assert_eq!(users[0].added_by, "owner");
    assert_eq!(
        ledger.remove_user("alice", "bob", 20).await.unwrap(),
        UserChange::Removed
    );
    assert_eq!(
        ledger.remove_user("alice", "bob", 21).await.unwrap(),
        UserChange::Unknown
    );
    let names: Vec<String> = ledger
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["bob"]);
    // Re-added after removal: a new token.
    ledger
        .add_user(user("alice", Role::Reviewer, 9))
        .await
        .unwrap();
    let alice = ledger.users().await.unwrap().remove(0);
    assert_eq!((alice.role, alice.token_hash[0]), (Role::Reviewer, 9));
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 4, "three adds and a removal are chained");
}

async fn two_people_approve_and_one_denial_decides(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    let hash = hash_of(&ledger.action("p1").await.unwrap().unwrap().action_hash);
    let first = ledger
        .record_person_decision(answer("p1", "alice", Decision::Approve, hash))
        .await
        .unwrap();
    let PersonOutcome::Awaiting {
        action,
        approvals: 1,
        required: 2,
    } = first
    else {
        panic!("one approval of two awaits the second: {first:?}");
    };
    assert_eq!(action.verdict, Verdict::Pending);
    assert_eq!(action.approvals.len(), 1);
    assert_eq!(action.approvals[0].approver, "alice");
    assert!(matches!(
        ledger
            .record_person_decision(answer("p1", "alice", Decision::Approve, hash))
            .await
            .unwrap(),
        PersonOutcome::AlreadyApproved(_)
    ));
    assert!(matches!(
        ledger
            .record_person_decision(answer("p1", "bob", Decision::Approve, [7; 32]))
            .await
            .unwrap(),
        PersonOutcome::ActionMismatch(_)
    ));
    let PersonOutcome::Decided(decided) = ledger
        .record_person_decision(answer("p1", "bob", Decision::Approve, hash))
        .await
        .unwrap()
    else {
        panic!("the second person's approval decides");
    };
    assert_eq!(decided.verdict, Verdict::Allow);
    assert_eq!(
        decided.decision.as_ref().unwrap().approver.as_deref(),
        Some("bob")
    );
    assert!(matches!(
        ledger
            .record_person_decision(answer("p1", "carol", Decision::Deny, hash))
            .await
            .unwrap(),
        PersonOutcome::AlreadyDecided(_)
    ));
    // A denial decides at once, whatever the count.
    ledger
        .record_action(new_action("p2", Verdict::Pending))
        .await
        .unwrap();
    let hash = hash_of(&ledger.action("p2").await.unwrap().unwrap().action_hash);
    let PersonOutcome::Decided(denied) = ledger
        .record_person_decision(answer("p2", "carol", Decision::Deny, hash))
        .await
        .unwrap()
    else {
        panic!("a denial decides");
    };
    assert_eq!(denied.verdict, Verdict::Reject);
    let read = ledger.action("p2").await.unwrap().unwrap();
    assert_eq!(read.approvals.len(), 1);
    assert_eq!(read.approvals[0].decision, Decision::Deny);
    assert_eq!(read.approvals[0].note.as_deref(), Some("carol says so"));
    assert!(matches!(
        ledger
            .record_person_decision(answer("nope", "carol", Decision::Deny, hash))
            .await
            .unwrap(),
        PersonOutcome::NotFound
    ));
    // 2 actions, 3 approvals (alice, bob, carol), 2 decisions.
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 7);
}

async fn policy_versions_are_numbered_and_decide_actions(backend: TestBackend) {
    let ledger = backend.open().await;
    assert!(ledger.policy_versions().await.unwrap().is_empty());
    let v1 = ledger
        .push_policy(version("default = \"pause\"\n", None))
        .await
        .unwrap();
    let v2 = ledger
        .push_policy(version("default = \"allow\"\n", None))
        .await
        .unwrap();
    let v3 = ledger
        .push_policy(version("default = \"pause\"\n", Some(1)))
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version, v3.version), (1, 2, 3));
    assert_eq!(v1.sha256, v3.sha256, "the same text, the same digest");
    assert_ne!(v1.sha256, v2.sha256);
    let versions = ledger.policy_versions().await.unwrap();
    assert_eq!(versions, [v1, v2, v3.clone()]);
    assert_eq!(versions[2].rollback_of, Some(1));

    ledger
        .record_action_under(new_action("a1", Verdict::Allow), Some(3))
        .await
        .unwrap();
    ledger
        .record_action_under(new_action("a2", Verdict::Allow), None)
        .await
        .unwrap();
    assert_eq!(
        ledger.action("a1").await.unwrap().unwrap().policy_version,
        Some(3)
    );
    assert_eq!(
        ledger.action("a2").await.unwrap().unwrap().policy_version,
        None
    );
    let listed = ledger
        .list(gatehouse_ledger::ListQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let versions: Vec<(String, Option<i64>)> = listed
        .into_iter()
        .map(|v| (v.action_id, v.policy_version))
        .collect();
    assert_eq!(
        versions,
        [("a2".to_owned(), None), ("a1".to_owned(), Some(3))]
    );
    // A re-sent check re-attaches: no second version row.
    let mut again = new_action("a1-again", Verdict::Allow);
    again.tool_use_id = Some("tu-a1".into());
    ledger.record_action_under(again, Some(3)).await.unwrap();
    // 3 versions, 2 actions, 1 action's version.
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 6);

    let tamper = match &backend {
        TestBackend::Sqlite(_) => {
            "DROP TRIGGER policy_versions_append_only_update; UPDATE policy_versions SET text = 'default = \"allow\"' WHERE version = 1;"
        }
        TestBackend::Postgres { .. } => {
            "ALTER TABLE policy_versions DISABLE TRIGGER USER; UPDATE policy_versions SET text = 'default = \"allow\"' WHERE version = 1;"
        }
    };
    backend.raw(tamper).await.unwrap();
    let failure = ledger
        .verify(VerifyOptions::default())
        .await
        .expect_err("an edited policy version must fail verification");
    assert_eq!(failure.chain_seq, Some(1), "{failure}");
    assert!(failure.detail.contains("policy version 1"), "{failure}");
}

async fn team_records_cannot_be_rewritten(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .add_user(user("alice", Role::Approver, 1))
        .await
        .unwrap();
    ledger
        .push_policy(version("default = \"pause\"\n", None))
        .await
        .unwrap();
    ledger
        .record_action_under(new_action("p1", Verdict::Pending), Some(1))
        .await
        .unwrap();
    let hash = hash_of(&ledger.action("p1").await.unwrap().unwrap().action_hash);
    ledger
        .record_person_decision(answer("p1", "alice", Decision::Approve, hash))
        .await
        .unwrap();
    for sql in [
        "UPDATE users SET role = 'admin'",
        "DELETE FROM users",
        "UPDATE approvals SET approver = 'mallory'",
        "DELETE FROM approvals",
        "UPDATE policy_versions SET text = 'default = \"allow\"'",
        "DELETE FROM policy_versions",
        "UPDATE action_policy SET version = 2",
        "DELETE FROM action_policy",
    ] {
        let err = backend
            .raw(sql)
            .await
            .expect_err("the ledger must refuse rewriting");
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if let TestBackend::Postgres { .. } = backend {
        for table in ["users", "approvals", "policy_versions", "action_policy"] {
            let err = backend
                .raw(&format!("TRUNCATE {table} CASCADE"))
                .await
                .unwrap_err();
            assert!(err.contains("append-only"), "{table}: {err}");
        }
    }
    ledger.verify(VerifyOptions::default()).await.unwrap();
}
