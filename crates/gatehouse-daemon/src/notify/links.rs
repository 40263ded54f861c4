//! Single-use approve/deny links sent to remote channels (ntfy, the signed webhook).
//!
//! *Invariant*: a link alone never decides. It names one action, by its id and the hash of the
//! action as paused, and one decision; it opens a confirmation page on the daemon that shows the
//! action, and the decision it confirms goes through the same person-presence rules as the
//! dashboard. Only the SHA-256 of a link's secret is kept (in memory: a restarted daemon's links
//! are dead, and the action still waits for the dashboard). A link is used once, expires with its
//! action's deadline, and is withdrawn as soon as the action is decided by any channel.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_protocol::Decision;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a link may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub action_id: String,
    pub action_hash: String,
    pub decision: Decision,
    /// The action's deadline: the link is dead after it.
    pub expires_at_ms: i64,
}

/// Why a link does not (or no longer) work; the page says which, and nothing is decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("this link is not known (mistyped, or the daemon restarted since it was sent)")]
    Unknown,
    #[error("this link was already used: a link works once")]
    Used,
    #[error("this link expired with its action's deadline")]
    Expired,
    #[error("the action was already decided (the first answer from any channel wins)")]
    Withdrawn,
}

#[derive(Debug)]
struct Entry {
    link: Link,
    state: EntryState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    Open,
    Used,
    Withdrawn,
}

/// The links issued, by the SHA-256 of their secret.
#[derive(Debug, Default)]
pub struct LinkStore {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// Most links kept (each pause issues two); the oldest expired ones go first.
const MAX_LINKS: usize = 10_000;

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl LinkStore {
    /// A new link for `link`: its secret (256 random bits, base64url), to put in a URL.
    pub fn issue(&self, link: Link, now_ms: i64) -> String {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let mut entries = self.lock();
        if entries.len() >= MAX_LINKS {
            entries.retain(|_, e| e.state == EntryState::Open && e.link.expires_at_ms > now_ms);
        }
        entries.insert(
            digest(&secret),
            Entry {
                link,
                state: EntryState::Open,
            },
        );
        secret
    }

    /// The link `secret` names, if it may still be used (it is not consumed).
    pub fn peek(&self, secret: &str, now_ms: i64) -> Result<Link, LinkRefused> {
        let entries = self.lock();
        let entry = entries.get(&digest(secret)).ok_or(LinkRefused::Unknown)?;
        Self::usable(entry, now_ms)?;
        Ok(entry.link.clone())
    }

    /// Uses the link `secret` up: the one caller that gets `Ok` may decide with it.
    pub fn consume(&self, secret: &str, now_ms: i64) -> Result<Link, LinkRefused> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(&digest(secret))
            .ok_or(LinkRefused::Unknown)?;
        Self::usable(entry, now_ms)?;
        entry.state = EntryState::Used;
        Ok(entry.link.clone())
    }

    /// Gives a consumed link back (the person's presence was not confirmed, so nothing was
    /// decided and they may try again with the same link).
    pub fn release(&self, secret: &str) {
        if let Some(entry) = self.lock().get_mut(&digest(secret))
            && entry.state == EntryState::Used
        {
            entry.state = EntryState::Open;
        }
    }

    /// The action was decided (by any channel): every link of it is withdrawn.
    pub fn withdraw(&self, action_id: &str) {
        for entry in self.lock().values_mut() {
            if entry.link.action_id == action_id && entry.state == EntryState::Open {
                entry.state = EntryState::Withdrawn;
            }
        }
    }

    fn usable(entry: &Entry, now_ms: i64) -> Result<(), LinkRefused> {
        match entry.state {
            EntryState::Used => Err(LinkRefused::Used),
            EntryState::Withdrawn => Err(LinkRefused::Withdrawn),
            EntryState::Open if entry.link.expires_at_ms <= now_ms => Err(LinkRefused::Expired),
            EntryState::Open => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(expires_at_ms: i64) -> Link {
        Link {
            action_id: "act_1".into(),
            action_hash: "00".repeat(32),
            decision: Decision::Approve,
            expires_at_ms,
        }
    }

    #[test]
    fn a_link_works_once_expires_and_is_withdrawn() {
        let store = LinkStore::default();
        let secret = store.issue(link(1_000), 0);
        assert_eq!(store.peek(&secret, 10), Ok(link(1_000)));
        assert_eq!(store.consume(&secret, 10), Ok(link(1_000)));
        assert_eq!(store.consume(&secret, 10), Err(LinkRefused::Used));
        store.release(&secret);
        assert_eq!(store.peek(&secret, 1_000), Err(LinkRefused::Expired));
        assert_eq!(store.peek(&secret, 999), Ok(link(1_000)));
        store.withdraw("act_1");
        assert_eq!(store.consume(&secret, 10), Err(LinkRefused::Withdrawn));
        assert_eq!(store.peek("nope", 10), Err(LinkRefused::Unknown));
    }
}
