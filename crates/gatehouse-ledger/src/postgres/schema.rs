//! Versioned migrations of the PostgreSQL ledger (`migrations-postgres/`), run once even when
//! several replicas start together: each takes a session advisory lock, reads the applied
//! versions, applies the missing ones (each in its own transaction), and lets go.

use tokio_postgres::Client;

use super::pg;
use crate::LedgerError;

/// Migrations by version, ascending; `gatehouse_schema` holds one row per applied version.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations-postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations-postgres/0002_withdrawn.sql"),
    ),
    (3, include_str!("../../migrations-postgres/0003_team.sql")),
    (
        4,
        include_str!("../../migrations-postgres/0004_dashboard_logins.sql"),
    ),
    (
        5,
        include_str!("../../migrations-postgres/0005_grants_and_edits.sql"),
    ),
    (
        6,
        include_str!("../../migrations-postgres/0006_action_confinement.sql"),
    ),
];

/// The schema version this build writes and understands.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key migrations hold ("gh-migr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0067_682d_6d69_6772;

pub(crate) async fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    // Up to date already: nothing to lock or create (a daemon connecting as the insert-only
    // role may not create anything, and need not).
    if applied(client).await? == Some(PG_SCHEMA_VERSION) {
        return Ok(());
    }
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    let outcome = migrate_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    outcome?;
    unlocked.map_err(pg)?;
    Ok(())
}

/// The last applied version, or `None` before the first migration.
async fn applied(client: &Client) -> Result<Option<i64>, LedgerError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('gatehouse_schema') IS NOT NULL", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    if !exists {
        return Ok(None);
    }
    let version: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM gatehouse_schema",
            &[],
        )
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    Ok(Some(version))
}

async fn migrate_locked(client: &mut Client) -> Result<(), LedgerError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS gatehouse_schema (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
    let found: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM gatehouse_schema",
            &[],
        )
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    if found > PG_SCHEMA_VERSION {
        return Err(LedgerError::Postgres(format!(
            "the ledger database has schema version {found}, newer than this gatehouse supports ({PG_SCHEMA_VERSION}); upgrade gatehouse"
        )));
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(sql)
            .await
            .map_err(|err| LedgerError::Postgres(format!("migration {version} failed: {err}")))?;
        tx.execute(
            "INSERT INTO gatehouse_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        tracing::info!(version, "ledger (PostgreSQL) schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migration_versions_ascend_and_open_with_their_number() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        for (version, sql) in MIGRATIONS {
            let first = sql.lines().next().unwrap_or_default();
            assert!(
                first.contains(&format!("schema version {version}:")),
                "{first}"
            );
        }
    }
}
