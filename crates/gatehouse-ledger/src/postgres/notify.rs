//! `LISTEN gatehouse_ledger`: pauses and decisions committed by any replica become
//! `LedgerEvent`s on a broadcast channel. The connection is re-made if the server drops it.
//!
//! A notification is a hint, never the fact: a replica that hears "decided" re-reads the action
//! from the ledger, and waiting requests re-read the ledger when they time out, so a
//! notification lost while the connection was down delays an answer but cannot change it.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{CHANNEL, CONNECT_TIMEOUT};
use crate::{LedgerError, LedgerEvent};

/// The listening task; stops when dropped.
pub(crate) struct Listener {
    task: AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Parses `"paused|decided REPLICA ACTION_ID"`, `"policy REPLICA VERSION"` and
/// `"user REPLICA NAME"`, `"login REPLICA session"` and `"grant REPLICA GRANT_ID"`.
pub(crate) fn parse(payload: &str) -> Option<LedgerEvent> {
    let (what, rest) = payload.split_once(' ')?;
    let (replica, action_id) = rest.split_once(' ')?;
    let (replica, action_id) = (replica.to_owned(), action_id.to_owned());
    match what {
        "paused" => Some(LedgerEvent::Paused { action_id, replica }),
        "decided" => Some(LedgerEvent::Decided { action_id, replica }),
        "login" => Some(LedgerEvent::Login { replica }),
        "grant" => Some(LedgerEvent::Grant { replica }),
        "user" => Some(LedgerEvent::User {
            name: action_id,
            replica,
        }),
        "policy" => action_id
            .parse()
            .ok()
            .map(|version| LedgerEvent::Policy { version, replica }),
        _ => None,
    }
}

impl Listener {
    /// Connects and listens before returning, so nothing committed after `open` is missed.
    pub(crate) async fn start(
        url: &str,
        replica_id: &str,
        events: broadcast::Sender<LedgerEvent>,
    ) -> Result<Listener, LedgerError> {
        let first = listen(url, replica_id, events.clone()).await?;
        let url = url.to_owned();
        let replica_id = replica_id.to_owned();
        let task = tokio::spawn(async move {
            let mut session = Some(first);
            let mut backoff = Duration::from_millis(50);
            loop {
                if let Some(running) = session.take() {
                    let _ = running.task.await;
                    tracing::warn!("the ledger's LISTEN connection ended; reconnecting");
                }
                tokio::time::sleep(backoff).await;
                match listen(&url, &replica_id, events.clone()).await {
                    Ok(running) => {
                        backoff = Duration::from_millis(50);
                        session = Some(running);
                        // What was committed while no one listened is read again.
                        let _ = events.send(LedgerEvent::Reconnected);
                    }
                    Err(err) => {
                        tracing::warn!(%err, "cannot re-open the ledger's LISTEN connection");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok(Listener {
            task: task.abort_handle(),
        })
    }
}

/// Opens a connection, `LISTEN`s, and returns the task that forwards its notifications (it
/// ends when the connection does).
async fn listen(
    url: &str,
    replica_id: &str,
    events: broadcast::Sender<LedgerEvent>,
) -> Result<Session, LedgerError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|err| LedgerError::Postgres(format!("the ledger URL is not valid: {err}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name(format!("gatehouse {replica_id} listen"));
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| LedgerError::Postgres("connecting to the ledger database timed out".into()))?
        .map_err(|err| {
            LedgerError::Postgres(format!("cannot connect to the ledger database: {err}"))
        })?;
    let task = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) if note.channel() == CHANNEL => {
                    if let Some(event) = parse(note.payload()) {
                        // No receiver is fine (nobody subscribed yet).
                        let _ = events.send(event);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::warn!(%err, "the ledger's LISTEN connection failed");
                    break;
                }
                None => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(super::pg)?;
    Ok(Session {
        _client: client,
        task,
    })
}

/// A listening connection: the client (dropping it would close the connection) and the task
/// polling it.
struct Session {
    _client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_garbage_does_not() {
        assert_eq!(
            parse("decided r1 act_1"),
            Some(LedgerEvent::Decided {
                action_id: "act_1".into(),
                replica: "r1".into()
            })
        );
        assert_eq!(
            parse("paused host-12 a b"),
            Some(LedgerEvent::Paused {
                action_id: "a b".into(),
                replica: "host-12".into()
            })
        );
        assert_eq!(
            parse("policy r2 7"),
            Some(LedgerEvent::Policy {
                version: 7,
                replica: "r2".into()
            })
        );
        assert_eq!(parse("policy r2 seven"), None);
        assert_eq!(
            parse("user r3 alice"),
            Some(LedgerEvent::User {
                name: "alice".into(),
                replica: "r3".into()
            })
        );
        assert_eq!(parse("other r a"), None);
        assert_eq!(parse("decided"), None);
    }
}
