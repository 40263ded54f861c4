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
//!
//! Standing grants too: a grant made or revoked on any replica is put in force (or out) on all.
//!
//! Dashboard logins too: a login code is recorded in the shared ledger when issued and spent
//! there (once, whichever replica redeems it); a session opened on one replica is recorded and
//! announced, and the others let it in. With a shared ledger a code the ledger cannot spend is
//! refused (fail closed), even one issued here.

use std::sync::{Arc, Weak};

use std::time::Duration;

use gatehouse_ledger::{Ledger, LedgerError, LedgerEvent, LoginKind, SharedLogin};
use gatehouse_policy::Policy;
use gatehouse_protocol::{Event, Role, Verdict};
use tokio::sync::broadcast::error::RecvError;

use super::Approvals;
use crate::app::App;
use crate::auth::{Person, token_hash};
use crate::clock::now_ms;

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
                Ok(
                    LedgerEvent::Policy { .. }
                    | LedgerEvent::User { .. }
                    | LedgerEvent::Login { .. }
                    | LedgerEvent::Grant { .. },
                ) => Ok(()),
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

    /// After missed notifications: the latest policy version, every current person, every open
    /// dashboard session, and the grants in force.
    async fn catch_up_team(&self) -> Result<(), LedgerError> {
        self.catch_up_policy().await?;
        crate::users::admit_users(&self.ledger, &self.auth).await?;
        self.adopt_shared_sessions().await?;
        self.grants.reload(&self.ledger).await?;
        Ok(())
    }

    /// Lets in the sessions other replicas opened (and have not expired), for people who are
    /// still current here.
    pub async fn adopt_shared_sessions(&self) -> Result<usize, LedgerError> {
        let now = now_ms();
        let mut adopted = 0;
        for shared in self.ledger.shared_sessions(now).await? {
            let (Some(role), Some(csrf)) = (Role::parse(&shared.role), shared.csrf) else {
                continue;
            };
            let person = Person {
                name: shared.person,
                role,
            };
            if !self.auth.is_current(&person) {
                continue;
            }
            let ttl = Duration::from_millis(u64::try_from(shared.expires_at_ms - now).unwrap_or(0));
            if self
                .auth
                .adopt_session(shared.secret_hash, csrf, person, ttl)
                .is_some()
            {
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    /// A one-time dashboard login link (`login_link`), recorded in a shared ledger so any
    /// replica can spend it.
    pub async fn login_link_shared(&self, person: Person) -> (String, Duration) {
        let (url, ttl) = self.login_link(person.clone());
        if self.ledger.is_shared() {
            let code = url.rsplit_once("code=").map_or("", |(_, code)| code);
            let now = now_ms();
            let login = SharedLogin {
                kind: LoginKind::Code,
                secret_hash: token_hash(code),
                person: person.name,
                role: person.role.as_str().to_owned(),
                csrf: None,
                expires_at_ms: now
                    .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            };
            if let Err(err) = self.ledger.share_login(login, now).await {
                tracing::warn!(%err, "could not record the login link in the shared ledger: it will not work");
            }
        }
        (url, ttl)
    }

    /// Spends a login code and opens a session: the cookie value, or `None` if the code is not
    /// valid. With a shared ledger, the ledger spends it (once across replicas) and the session
    /// is recorded for the other replicas.
    pub async fn redeem_login(&self, code: &str) -> Option<String> {
        let local = self.auth.take_login_code(code);
        if !self.ledger.is_shared() {
            return self.auth.open_session(local?).map(|(token, _)| token);
        }
        let now = now_ms();
        let person = match self.ledger.spend_login_code(&token_hash(code), now).await {
            Ok(Some((name, role))) => Person {
                name,
                role: Role::parse(&role)?,
            },
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(%err, "cannot spend a login code in the shared ledger: refused");
                return None;
            }
        };
        if !self.auth.is_current(&person) {
            return None;
        }
        let (token, csrf) = self.auth.open_session(person.clone())?;
        let ttl = i64::try_from(self.auth.session_ttl().as_millis()).unwrap_or(i64::MAX);
        let login = SharedLogin {
            kind: LoginKind::Session,
            secret_hash: token_hash(&token),
            person: person.name,
            role: person.role.as_str().to_owned(),
            csrf: Some(csrf),
            expires_at_ms: now.saturating_add(ttl),
        };
        if let Err(err) = self.ledger.share_login(login, now).await {
            tracing::warn!(%err, "could not share a dashboard session: it is valid on this replica only");
        }
        Some(token)
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
                Ok(LedgerEvent::Login { .. }) => app.adopt_shared_sessions().await.map(|_| ()),
                Ok(LedgerEvent::Grant { .. }) => app.grants.reload(&app.ledger).await.map(|_| ()),
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
