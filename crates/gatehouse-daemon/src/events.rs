//! Fan-out of dashboard events (`action.pending`, `action.scored`, `action.decided`).
//!
//! Lossy by design: a dashboard that falls behind is disconnected and reloads its list on
//! reconnect. Decisions never travel here; they go through the ledger and `Approvals`.

use std::sync::Arc;

use gatehouse_protocol::Event;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.sender.receiver_count())
            .finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events {
            sender: broadcast::channel(4096).0,
        }
    }
}

impl Events {
    /// Serialises once and sends to every connected dashboard (none connected is fine).
    pub fn publish(&self, event: &Event) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(event) {
            Ok(json) => {
                let _ = self.sender.send(json.into());
            }
            Err(err) => tracing::error!(%err, "could not serialise a dashboard event"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }
}
