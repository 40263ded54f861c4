//! The checkpointer: a thread with its own connection that moves the WAL into the database
//! file in the background, so no append ever pays for a checkpoint.
//!
//! It checkpoints only once the WAL has grown past `WAL_CHECKPOINT_BYTES`: after a complete
//! checkpoint the next commit restarts the WAL, and SQLite syncs the new WAL header inside that
//! commit. Checkpointing rarely keeps that cost off all but a handful of requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::{LedgerConfig, LedgerError};

/// WAL size past which the checkpointer copies it back into the database file.
pub(crate) const WAL_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(config: &LedgerConfig) -> Result<Checkpointer, LedgerError> {
        let conn = Connection::open(&config.path)?;
        conn.busy_timeout(config.busy_timeout)?;
        let stop = Arc::new(AtomicBool::new(false));
        let interval = config.checkpoint_interval;
        let mut wal_path = config.path.clone().into_os_string();
        wal_path.push("-wal");
        let thread = std::thread::Builder::new()
            .name("gatehouse-ledger-checkpoint".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(interval);
                        let wal_bytes = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
                        if wal_bytes < WAL_CHECKPOINT_BYTES {
                            continue;
                        }
                        // PASSIVE never blocks the writer or readers; it copies what it can.
                        if let Err(err) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::warn!(%err, "ledger checkpoint failed");
                        }
                    }
                    // On the way out, fold the whole WAL back so the file stands alone.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                }
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
