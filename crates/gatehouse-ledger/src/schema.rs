//! Opening the write connection: pragmas, and the versioned migrations in `migrations/`.

use rusqlite::Connection;

use crate::{Durability, LedgerConfig, LedgerError};

/// Migrations in order; the ledger's `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_hash_chain.sql"),
    include_str!("../migrations/0003_action_hash_and_labels.sql"),
    include_str!("../migrations/0004_outcomes.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
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
