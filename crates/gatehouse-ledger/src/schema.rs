//! Opening the write connection: pragmas, and the versioned migrations in `migrations/`.

use rusqlite::Connection;

use crate::{Durability, LedgerConfig, LedgerError};

/// Migrations by version, ascending; the ledger's `user_version` is the last one applied. A
/// version's number is its file's number, so work on several migrations at once may leave a gap
/// (a number never shipped); it can never reuse one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_hash_chain.sql")),
    (
        3,
        include_str!("../migrations/0003_action_hash_and_labels.sql"),
    ),
    (4, include_str!("../migrations/0004_outcomes.sql")),
    (5, include_str!("../migrations/0005_open_chain_kinds.sql")),
    (7, include_str!("../migrations/0007_withdrawn.sql")),
    (
        9,
        include_str!("../migrations/0009_named_approvers_and_policy_versions.sql"),
    ),
    (10, include_str!("../migrations/0010_grants.sql")),
    (11, include_str!("../migrations/0011_edits.sql")),
    (12, include_str!("../migrations/0012_console_indexes.sql")),
    (
        13,
        include_str!("../migrations/0013_action_confinement.sql"),
    ),
];

/// The schema version this build writes and understands: its last migration's.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Opens the one connection that writes, in WAL mode, and brings the schema up to date.
pub(crate) fn open_write_connection(config: &LedgerConfig) -> Result<Connection, LedgerError> {
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut conn = Connection::open(&config.path)?;
    conn.busy_timeout(config.busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match config.durability {
        Durability::CrashSafe => "NORMAL",
        Durability::PowerSafe => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    // Checkpoints run on the checkpointer's own connection, never inside a request's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, config)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, config: &LedgerConfig) -> Result<(), LedgerError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            path: config.path.clone(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if version == 2 {
            // Records written before the chain existed are chained now, in time order.
            let chained = crate::chain::backfill(&tx)?;
            if chained > 0 {
                tracing::info!(
                    chained,
                    "ledger records from before the hash chain were chained"
                );
            }
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, path = %config.path.display(), "ledger schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migration_versions_ascend_and_match_their_file_numbers() {
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "migration {} comes after {}",
                pair[1].0,
                pair[0].0
            );
        }
        for (version, sql) in MIGRATIONS {
            let first_line = sql.lines().next().unwrap_or_default();
            let named = format!("schema version {version}");
            let rest = first_line.split_once(&named).map(|(_, rest)| rest);
            assert!(
                matches!(rest, Some(r) if r.starts_with(':') || r.starts_with('.')),
                "migration {version} does not open with {named:?}: {first_line}"
            );
        }
    }
}
