//! The confinement applied to an action on every backend: recorded with the action in one
//! transaction, chained as `action_confinement`, read back into the view, refused when its
//! digest is not one, append-only — and chained with the same bytes whichever backend holds it
//! (the chain head over the same facts is the same hash on SQLite and PostgreSQL).

use gatehouse_ledger::{Ledger, LedgerConfig, ListQuery, VerifyOptions};
use gatehouse_protocol::{ConfinementApplied, ConfinementRecord, Verdict};

use super::new_action;
use super::support::{self, TestBackend, conformance};

conformance!(
    confinement_is_recorded_chained_and_read_back,
    a_bad_confinement_records_nothing,
    an_edited_confinement_fails_verification,
);

fn confined() -> ConfinementRecord {
    ConfinementRecord {
        profile: "build".into(),
        profile_digest: Some("ab".repeat(32)),
        summary: Some("writes only {project} {tmp}; no network".into()),
        applied: ConfinementApplied::Confined,
        fallback: None,
    }
}

fn fell_back() -> ConfinementRecord {
    ConfinementRecord {
        profile_digest: None,
        summary: None,
        applied: ConfinementApplied::Fallback,
        fallback: Some("pause".into()),
        ..confined()
    }
}

/// The same facts, recorded the same way on whichever ledger: a confined action, one whose
/// client could not confine it (a pause), and one whose rule required no confinement.
async fn record_three(ledger: &Ledger) {
    ledger
        .record_action_confined(new_action("c1", Verdict::Allow), None, Some(confined()))
        .await
        .unwrap();
    ledger
        .record_action_confined(new_action("c2", Verdict::Pending), None, Some(fell_back()))
        .await
        .unwrap();
    ledger
        .record_action_confined(new_action("c3", Verdict::Allow), None, None)
        .await
        .unwrap();
}

async fn confinement_is_recorded_chained_and_read_back(backend: TestBackend) {
    let ledger = backend.open().await;
    record_three(&ledger).await;
    let view = ledger.action("c1").await.unwrap().unwrap();
    assert_eq!(view.confinement, Some(confined()));
    let view = ledger.action("c2").await.unwrap().unwrap();
    assert_eq!(view.confinement, Some(fell_back()));
    let view = ledger.action("c3").await.unwrap().unwrap();
    assert_eq!(view.confinement, None);
    // The listing and the queue of pauses show it too.
    let listed = ledger
        .list(ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let c1 = listed.iter().find(|v| v.action_id == "c1").unwrap();
    assert_eq!(c1.confinement, Some(confined()));
    let pending = ledger.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].confinement, Some(fell_back()));
    // A re-sent check re-attaches to the recorded action: no second confinement record.
    let mut again = new_action("c1-again", Verdict::Allow);
    again.tool_use_id = Some("tu-c1".into());
    ledger
        .record_action_confined(again, None, Some(confined()))
        .await
        .unwrap();
    assert!(ledger.action("c1-again").await.unwrap().is_none());

    // Chained: 3 actions and 2 confinement records.
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 5);

    // The same bytes on both backends: an SQLite ledger given the same facts ends its chain on
    // the same hash as this one (on SQLite this compares two SQLite ledgers).
    let reference_dir = tempfile::tempdir().unwrap();
    let reference =
        Ledger::open(LedgerConfig::new(reference_dir.path().join("ledger.db"))).unwrap();
    record_three(&reference).await;
    let expected = reference.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.head, expected.head);
}

async fn a_bad_confinement_records_nothing(backend: TestBackend) {
    let ledger = backend.open().await;
    let bad = ConfinementRecord {
        profile_digest: Some("not hex".into()),
        ..confined()
    };
    let outcome = ledger
        .record_action_confined(new_action("c1", Verdict::Allow), None, Some(bad))
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(ledger.action("c1").await.unwrap().is_none());
    // A confinement the table refuses (a fallback without its verdict) takes the action with it.
    let unexplained = ConfinementRecord {
        fallback: None,
        ..fell_back()
    };
    let outcome = ledger
        .record_action_confined(new_action("c2", Verdict::Pending), None, Some(unexplained))
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(ledger.action("c2").await.unwrap().is_none());
    // The ledger goes on recording afterwards.
    ledger
        .record_action_confined(new_action("c3", Verdict::Allow), None, Some(confined()))
        .await
        .unwrap();
    assert_eq!(
        ledger.action("c3").await.unwrap().unwrap().confinement,
        Some(confined())
    );
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 2);
}

async fn an_edited_confinement_fails_verification(backend: TestBackend) {
    let ledger = backend.open().await;
    record_three(&ledger).await;
    ledger.flush().await.unwrap();
    for sql in [
        "UPDATE action_confinement SET profile = 'build-net'",
        "DELETE FROM action_confinement",
    ] {
        let err = backend
            .raw(sql)
            .await
            .expect_err("the ledger must refuse rewriting");
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if let TestBackend::Postgres { .. } = backend {
        let err = backend
            .raw("TRUNCATE action_confinement")
            .await
            .unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }
    let tamper = match &backend {
        TestBackend::Sqlite(_) => {
            "DROP TRIGGER action_confinement_append_only_update;
             UPDATE action_confinement SET profile = 'build-net' WHERE action_id = 'c1';"
        }
        TestBackend::Postgres { .. } => {
            "ALTER TABLE action_confinement DISABLE TRIGGER USER;
             UPDATE action_confinement SET profile = 'build-net' WHERE action_id = 'c1';"
        }
    };
    backend.raw(tamper).await.unwrap();
    let failure = ledger
        .verify(VerifyOptions::default())
        .await
        .expect_err("an edited confinement must fail verification");
    assert!(failure.detail.contains("action_confinement"), "{failure}");
    assert!(failure.detail.contains("c1"), "{failure}");
}
