//! PostgreSQL only: several `Ledger`s (replicas) on one database — migrations that run once
//! when they start together, pauses and decisions heard over LISTEN/NOTIFY, one decision when
//! replicas race, the insert-only role, and connections killed under load.

use std::time::Duration;

use gatehouse_ledger::postgres::{PG_SCHEMA_VERSION, PgConfig};
use gatehouse_ledger::{DecisionOutcome, Ledger, LedgerEvent, Recorded, VerifyOptions};
use gatehouse_protocol::Verdict;

use super::support::{fresh_database, with_user};
use super::{decision, new_action};

async fn replica(url: &str, name: &str) -> Ledger {
    let mut config = PgConfig::new(url.to_owned());
    config.replica_id = name.into();
    Ledger::open_postgres(config).await.unwrap()
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { replica(&url, &format!("r{i}")).await })
        })
        .collect();
    for start in starts {
        start.await.unwrap();
    }
    let rows = admin(&url)
        .await
        .query("SELECT version FROM gatehouse_schema ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions.last().copied(), Some(PG_SCHEMA_VERSION));
    assert_eq!(versions.len() as i64, PG_SCHEMA_VERSION);
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<LedgerEvent>) -> LedgerEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the other replica's event arrives")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_and_its_decision_are_heard_by_every_replica() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let a = replica(&url, "a").await;
    let b = replica(&url, "b").await;
    let mut heard_by_a = a.subscribe().unwrap();
    let mut heard_by_b = b.subscribe().unwrap();
    a.record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut heard_by_b).await,
        LedgerEvent::Paused {
            action_id: "p1".into(),
            replica: "a".into()
        }
    );
    // B sees the pause in its own reads at once: one database.
    assert_eq!(b.pending().await.unwrap().len(), 1);
    assert!(matches!(
        b.record_decision(decision("p1", Verdict::Allow))
            .await
            .unwrap(),
        DecisionOutcome::Decided(_)
    ));
    loop {
        if let LedgerEvent::Decided { action_id, replica } = next_event(&mut heard_by_a).await {
            assert_eq!((action_id.as_str(), replica.as_str()), ("p1", "b"));
            break;
        }
    }
    assert_eq!(
        a.action("p1").await.unwrap().unwrap().verdict,
        Verdict::Allow
    );
    // A re-sent check on another replica re-attaches by tool_use_id.
    let mut again = new_action("p1-resent", Verdict::Pending);
    again.tool_use_id = Some("tu-p1".into());
    assert!(matches!(
        b.record_action(again).await.unwrap(),
        Recorded::Existing { action, same_action: true } if action.action_id == "p1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_decisions_on_three_replicas_land_exactly_one() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let replicas = [
        replica(&url, "a").await,
        replica(&url, "b").await,
        replica(&url, "c").await,
    ];
    for i in 0..10 {
        replicas[i % 3]
            .record_action(new_action(&format!("p{i}"), Verdict::Pending))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..10 {
        for (j, ledger) in replicas.iter().enumerate() {
            let ledger = ledger.clone();
            let verdict = if j == 1 {
                Verdict::Reject
            } else {
                Verdict::Allow
            };
            tasks.push(tokio::spawn(async move {
                let outcome = ledger
                    .record_decision(decision(&format!("p{i}"), verdict))
                    .await
                    .unwrap();
                (i, matches!(outcome, DecisionOutcome::Decided(_)))
            }));
        }
    }
    let mut winners = [0; 10];
    for task in tasks {
        let (i, won) = task.await.unwrap();
        winners[i] += usize::from(won);
    }
    assert_eq!(winners, [1; 10]);
    let report = replicas[2].verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_role_can_only_read_and_append() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let owner = replica(&url, "owner").await;
    owner
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    let admin = admin(&url).await;
    let _ = admin
        .batch_execute("CREATE ROLE gh_test_daemon LOGIN IN ROLE gatehouse_writer")
        .await;
    let as_daemon = with_user(&url, "gh_test_daemon");
    // The daemon role runs a replica: reads and appends work.
    let daemon = replica(&as_daemon, "daemon").await;
    assert!(matches!(
        daemon
            .record_decision(decision("p1", Verdict::Allow))
            .await
            .unwrap(),
        DecisionOutcome::Decided(_)
    ));
    let confinement = gatehouse_protocol::ConfinementRecord {
        profile: "build".into(),
        profile_digest: Some("cd".repeat(32)),
        summary: None,
        applied: gatehouse_protocol::ConfinementApplied::Confined,
        fallback: None,
    };
    daemon
        .record_action_confined(
            new_action("c1", Verdict::Allow),
            None,
            Some(confinement.clone()),
        )
        .await
        .unwrap();
    let view = daemon.action("c1").await.unwrap().unwrap();
    assert_eq!(view.confinement, Some(confinement));
    let client = self::admin(&as_daemon).await;
    for sql in [
        "UPDATE actions SET tool = 'x'",
        "UPDATE action_confinement SET profile = 'x'",
        "DELETE FROM decisions",
        "TRUNCATE chain",
        "ALTER TABLE actions DISABLE TRIGGER USER",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        let message = err
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{sql}: {message}"
        );
    }
    daemon.verify(VerifyOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_lose_no_acknowledged_fact() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let ledger = replica(&url, "victim").await;
    let admin = admin(&url).await;
    let writers: Vec<_> = (0..200)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let id = format!("a{i}");
                let ok = ledger
                    .record_action(new_action(&id, Verdict::Allow))
                    .await
                    .is_ok();
                (id, ok)
            })
        })
        .collect();
    // Kill every connection of the replica while it writes (kill -9 of its sessions).
    for _ in 0..3 {
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name LIKE 'gatehouse victim%'",
                &[],
            )
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        let (id, ok) = writer.await.unwrap();
        if ok {
            acknowledged.push(id);
        }
    }
    // The ledger reconnects: later appends work, and every acknowledged one is there.
    let after = async {
        for _ in 0..50 {
            if ledger
                .record_action(new_action("after", Verdict::Allow))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        after.await,
        "the ledger reconnects after its connections were killed"
    );
    for id in &acknowledged {
        assert!(
            ledger.action(id).await.unwrap().is_some(),
            "{id} was acknowledged but lost"
        );
    }
    ledger.verify(VerifyOptions::default()).await.unwrap();
    eprintln!(
        "{} of 200 appends acknowledged while their connections were killed",
        acknowledged.len()
    );
}
