//! Replicas sharing one PostgreSQL ledger (team mode): what another replica commits reaches this
//! one's waiting checks, deadline timers and dashboards.
//!
//! A pause recorded on replica A is tracked here too (its deadline timer and its waiters: an
//! agent whose replica died re-attaches here by `tool_use_id`) and shown on this replica's
//! dashboards. A decision landed on replica B wakes the checks waiting here within the
//! `LISTEN/NOTIFY` round trip. Every replica runs a deadline timer for every pause; the ledger
//! takes exactly one decision (the chain's lock, the `decisions` key), so a deadline fires once
//! and the other timers are told it was decided.
//!
//! An event is a hint: the action is always re-read from the ledger before anything is done,
//! and a lagging subscriber re-reads every pending action.
//!
//! Team changes follow the same way (`follow_team`): a policy version pushed on any replica is
//! put in force here, atomically, within the `LISTEN/NOTIFY` round trip (only ever a newer
//! version than the one in force); a person added or removed on any replica is admitted or shut
//! out here. After a re-made `LISTEN` connection or missed events, both are re-read.

use std::sync::{Arc, Weak};

use gatehouse_ledger::{Ledger, LedgerError, LedgerEvent};
use gatehouse_policy::Policy;
use gatehouse_protocol::{Event, Verdict};
use tokio::sync::broadcast::error::RecvError;

use super::Approvals;
use crate::app::App;
use crate::auth::Person;

impl Approvals {
    /// Another replica recorded a pause: track it here (deadline, waiters) and show it.
    pub async fn paused_elsewhere(self: &Arc<Self>, action_id: &str) -> Result<(), LedgerError> {
        let Some(view) = self.ledger.action(action_id).await? else {
            return Ok(());
        };
        if view.verdict != Verdict::Pending {
            self.settle(&view);
            return Ok(());
        }
        if let Some(deadline) = view.deadline_ms {
            self.track(
                &view.action_id,
                deadline,
                view.session_id.as_deref(),
                view.peer_uid,
            );
        }
        self.events.publish(&Event::ActionPending { action: view });
        Ok(())
    }

    /// Another replica landed a decision: wake the checks waiting here, tell the dashboards.
    pub async fn decided_elsewhere(&self, action_id: &str) -> Result<(), LedgerError> {
        let Some(view) = self.ledger.action(action_id).await? else {
            return Ok(());
        };
        if view.verdict == Verdict::Pending {
            return Ok(());
        }
        self.settle(&view);
        self.events.publish(&Event::ActionDecided { action: view });
        Ok(())
    }

    /// After missed events: every pending action is tracked, every tracked one that another
    /// replica decided is settled.
    async fn resync(self: &Arc<Self>) -> Result<(), LedgerError> {
        let tracked: Vec<String> = self
            .queue
            .lock()
            .map(|q| q.waiting.keys().cloned().collect())
            .unwrap_or_default();
        for id in tracked {
            self.decided_elsewhere(&id).await?;
        }
        for action in self.ledger.pending().await? {
            if let Some(deadline) = action.deadline_ms {
                self.track(
                    &action.action_id,
                    deadline,
                    action.session_id.as_deref(),
                    action.peer_uid,
                );
            }
        }
        Ok(())
    }
}

/// Follows what other replicas commit to a shared ledger, until the daemon shuts down. Does
/// nothing for an SQLite ledger (one daemon owns it).
pub fn follow_replicas(ledger: &Ledger, approvals: &Arc<Approvals>) {
    let Some(mut events) = ledger.subscribe() else {
        return;
    };
    let me = ledger.replica_id().to_owned();
    let weak: Weak<Approvals> = Arc::downgrade(approvals);
    let mut shutdown = approvals.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            };
            let Some(approvals) = weak.upgrade() else {
                return;
            };
            let outcome = match event {
                Ok(event) if event.replica() == me => Ok(()),
                Ok(LedgerEvent::Paused { action_id, .. }) => {
                    approvals.paused_elsewhere(&action_id).await
                }
                Ok(LedgerEvent::Decided { action_id, .. }) => {
                    approvals.decided_elsewhere(&action_id).await
                }
                Ok(LedgerEvent::Reconnected) => approvals.resync().await,
                Ok(LedgerEvent::Policy { .. } | LedgerEvent::User { .. }) => Ok(()),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "missed replica events; re-reading the pending actions"
                    );
                    approvals.resync().await
                }
                Err(RecvError::Closed) => return,
            };
            if let Err(err) = outcome {
                tracing::warn!(%err, "could not apply another replica's event (waiters re-read the ledger)");
            }
        }
    });
}

impl App {
    /// Puts the ledger's latest policy version in force if it is newer than the one in force
    /// (another replica pushed it). Returns the version in force afterwards.
    pub async fn catch_up_policy(&self) -> Result<Option<i64>, LedgerError> {
        let _one_at_a_time = self.policy.push_lock.lock().await;
        let versions = self.ledger.policy_versions().await?;
        let Some(latest) = versions.last() else {
            return Ok(self.policy.version());
        };
        if self.policy.version() >= Some(latest.version) {
            return Ok(self.policy.version());
        }
        match Policy::from_toml(&latest.text) {
            Ok(policy) => self.policy.apply_version(policy, latest.version),
            Err(err) => tracing::error!(
                version = latest.version,
                %err,
                "another replica pushed a policy version that does not load here; the policy in force stays"
            ),
        }
        Ok(self.policy.version())
    }

    /// Admits a person another replica added, or shuts out one it removed.
    pub async fn catch_up_user(&self, name: &str) -> Result<(), LedgerError> {
        let users = self.ledger.users().await?;
        match users.iter().find(|user| user.name == name) {
            Some(user) => self.auth.admit_person(
                user.token_hash,
                Person {
                    name: user.name.clone(),
                    role: user.role,
                },
            ),
            None => self.auth.expel_person(name),
        }
        Ok(())
    }

    /// After missed notifications: the latest policy version, and every current person.
    async fn catch_up_team(&self) -> Result<(), LedgerError> {
        self.catch_up_policy().await?;
        crate::users::admit_users(&self.ledger, &self.auth).await?;
        Ok(())
    }
}

/// Follows the team changes other replicas commit to a shared ledger (policy versions, users),
/// until the daemon shuts down. Does nothing for an SQLite ledger.
pub fn follow_team(app: &Arc<App>) {
    let Some(mut events) = app.ledger.subscribe() else {
        return;
    };
    let me = app.ledger.replica_id().to_owned();
    let weak: Weak<App> = Arc::downgrade(app);
    let mut shutdown = app.approvals.shutdown_signal();
    tokio::spawn(async move {
        // What was pushed or added between start-up's reads and this subscription.
        if let Some(app) = weak.upgrade()
            && let Err(err) = app.catch_up_team().await
        {
            tracing::warn!(%err, "could not re-read the team's policy and users");
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            };
            let Some(app) = weak.upgrade() else {
                return;
            };
            let outcome = match event {
                Ok(event) if event.replica() == me => Ok(()),
                Ok(LedgerEvent::Policy { .. }) => app.catch_up_policy().await.map(|_| ()),
                Ok(LedgerEvent::User { name, .. }) => app.catch_up_user(&name).await,
                Ok(LedgerEvent::Reconnected) | Err(RecvError::Lagged(_)) => {
                    app.catch_up_team().await
                }
                Ok(LedgerEvent::Paused { .. } | LedgerEvent::Decided { .. }) => Ok(()),
                Err(RecvError::Closed) => return,
            };
            if let Err(err) = outcome {
                tracing::warn!(%err, "could not apply another replica's team change");
            }
        }
    });
}
