//! Connections to PostgreSQL: one with the ledger's session settings, and a small pool of read
//! connections that reconnect when the server dropped them (each pipelines concurrent queries).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::{Client, NoTls};

use super::{CONNECT_TIMEOUT, pg};
use crate::LedgerError;

/// Connects and sets the session up: `synchronous_commit = on` whatever the server's default
/// (a commit is durable before anyone is told), and the replica's name for `pg_stat_activity`.
pub(crate) async fn connect(url: &str, replica_id: &str) -> Result<Client, LedgerError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|err| LedgerError::Postgres(format!("the ledger URL is not valid: {err}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let name: String = format!("gatehouse {replica_id}")
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(60)
        .collect();
    config.application_name(&name);
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| LedgerError::Postgres("connecting to the ledger database timed out".into()))?
        .map_err(|err| {
            LedgerError::Postgres(format!("cannot connect to the ledger database: {err}"))
        })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(%err, "a ledger database connection ended");
        }
    });
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(pg)?;
    Ok(client)
}

/// Read connections, handed out round-robin; a closed one is replaced on its next use.
pub(crate) struct ReadPool {
    url: String,
    replica_id: String,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
}

impl ReadPool {
    pub(crate) async fn open(
        url: &str,
        replica_id: &str,
        size: usize,
    ) -> Result<ReadPool, LedgerError> {
        let mut slots = Vec::with_capacity(size.max(1));
        for _ in 0..size.max(1) {
            let client = connect(url, replica_id).await?;
            slots.push(tokio::sync::Mutex::new(Some(Arc::new(client))));
        }
        Ok(ReadPool {
            url: url.to_owned(),
            replica_id: replica_id.to_owned(),
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// A live read connection (reconnecting its slot if the server closed it).
    pub(crate) async fn get(&self) -> Result<Arc<Client>, LedgerError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let client = Arc::new(connect(&self.url, &self.replica_id).await?);
        *slot = Some(client.clone());
        Ok(client)
    }
}
