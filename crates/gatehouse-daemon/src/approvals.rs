//! Paused actions waiting for a person: deadlines, decisions, and the requests waiting on them.
//!
//! *Invariant*: every paused action ends in exactly one decision. The ledger enforces it (one
//! `decisions` row per action, appended by the single writer); whoever lands it — a person,
//! the deadline timer, or the start-up sweep after a restart — then wakes the waiters with the
//! decided action. A racing loser is told the action was already decided.
//!
//! Decisions travel through the ledger and per-action `watch` channels, never a lossy one.
//!
//! *Invariant*: the queue caps are exact. A pause is admitted (`admit`) under the same lock that
//! counts the queue, as a reservation, before its action is recorded; the reservation becomes
//! the tracked action, or is released if the action is not recorded. Concurrent pauses cannot
//! overshoot a cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gatehouse_ledger::{
    DecisionFact, DecisionOutcome, Ledger, LedgerError, PersonDecision, PersonOutcome,
};
use gatehouse_protocol::{ActionView, DecidedBy, Event, Verdict};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::clock::now_ms;
use crate::events::Events;
use crate::metrics::Metrics;

mod replicas;
pub use replicas::{follow_replicas, follow_team};

/// Whose pause it is, for the caps: the session it names, and the agent credential it came
/// with (which an agent cannot invent, unlike a session id).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    session_id: Option<String>,
    agent: String,
}

/// The agent credential a pause is counted against: the Unix-socket caller's uid (hardened
/// mode), else the agent token (one per data directory).
pub fn agent_key(peer_uid: Option<u32>) -> String {
    match peer_uid {
        Some(uid) => format!("uid {uid}"),
        None => "agent token".into(),
    }
}

/// A paused action this daemon is tracking.
struct Waiting {
    decided: watch::Sender<Option<Arc<ActionView>>>,
    deadline_timer: AbortHandle,
    owner: Owner,
}

/// The waiting actions and the admitted pauses not yet recorded, under one lock.
#[derive(Default)]
struct Queue {
    waiting: HashMap<String, Waiting>,
    reserved: HashMap<u64, Owner>,
    next_reservation: u64,
}

impl Queue {
    fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.waiting
            .values()
            .map(|w| &w.owner)
            .chain(self.reserved.values())
    }
}

/// A place in the queue, held from admission until the action is recorded and tracked; dropped
/// unused (the ledger failed, or a re-sent check re-attached), it frees the place.
pub struct Reservation {
    approvals: Arc<Approvals>,
    id: u64,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("id", &self.id).finish()
    }
}

impl Reservation {
    /// The recorded paused action takes this place in the queue.
    /// The reservation becomes the waiting entry under one lock, so no admission in between sees
    /// the place free (that gap let 51 of 50 pauses in).
    pub fn track(self, action_id: &str, deadline_ms: i64) {
        self.approvals
            .track_reserved(action_id, deadline_ms, Some(self.id), None);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.approvals.queue.lock() {
            queue.reserved.remove(&self.id);
        }
    }
}

/// How many paused actions may wait for a person at once, so that a flood of pauses (approval
/// fatigue as an attack) cannot bury the queue: past a cap, new pauses are rejected.
#[derive(Debug, Clone, Copy)]
pub struct QueueCaps {
    pub max_pending: usize,
    pub max_pending_per_session: usize,
    pub max_pending_per_agent: usize,
}

pub struct Approvals {
    ledger: Ledger,
    events: Events,
    metrics: Arc<Metrics>,
    queue: Mutex<Queue>,
    caps: QueueCaps,
    /// Flips to true when the daemon shuts down: waiting requests answer "pending" at once.
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("pending", &self.pending_count())
            .finish()
    }
}

/// What a decision attempt did.
#[derive(Debug)]
pub enum DecideOutcome {
    Decided(ActionView),
    AlreadyDecided(ActionView),
    /// The decision named another action hash: nothing was recorded, the action still waits.
    ActionMismatch(ActionView),
    NotFound,
}

impl Approvals {
    pub fn new(
        ledger: Ledger,
        events: Events,
        metrics: Arc<Metrics>,
        caps: QueueCaps,
    ) -> Arc<Approvals> {
        Arc::new(Approvals {
            ledger,
            events,
            metrics,
            queue: Mutex::new(Queue::default()),
            caps,
            shutdown: watch::Sender::new(false),
        })
    }

    pub fn pending_count(&self) -> usize {
        self.queue.lock().map(|q| q.waiting.len()).unwrap_or(0)
    }

    /// Starts tracking a committed paused action: its deadline timer and its waiters.
    /// Idempotent: the first caller (the check that recorded it, or a re-sent check that got
    /// there first) creates the entry; later calls keep it, so no waiter is orphaned.
    /// (A new pause is tracked through its `Reservation`; this is for re-attached and restored
    /// actions, counted against the credential that recorded them.)
    pub fn track(
        self: &Arc<Self>,
        action_id: &str,
        deadline_ms: i64,
        session_id: Option<&str>,
        peer_uid: Option<u32>,
    ) {
        let owner = Owner {
            session_id: session_id.map(str::to_owned),
            agent: agent_key(peer_uid),
        };
        self.track_owned(action_id, deadline_ms, owner);
    }

    fn track_owned(self: &Arc<Self>, action_id: &str, deadline_ms: i64, owner: Owner) {
        self.track_reserved(action_id, deadline_ms, None, Some(owner));
    }

    /// Tracks `action_id` for `owner`, or for the owner of `reservation`, which is released in
    /// the same critical section.
    fn track_reserved(
        self: &Arc<Self>,
        action_id: &str,
        deadline_ms: i64,
        reservation: Option<u64>,
        owner: Option<Owner>,
    ) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        let reserved = reservation.and_then(|id| queue.reserved.remove(&id));
        let Some(owner) = owner.or(reserved) else {
            return;
        };
        if queue.waiting.contains_key(action_id) {
            return;
        }
        let weak = Arc::downgrade(self);
        let id = action_id.to_owned();
        let delay = Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            expire(weak, id).await;
        });
        let entry = Waiting {
            decided: watch::Sender::new(None),
            deadline_timer: timer.abort_handle(),
            owner,
        };
        queue.waiting.insert(action_id.to_owned(), entry);
    }

    /// Admits a new pause into the queue, or says why it may not join: the global cap, the
    /// agent credential's cap (`agent_key`), the session's cap. Counting and reserving happen
    /// under one lock, so concurrent pauses cannot overshoot a cap.
    pub fn admit(
        self: &Arc<Self>,
        session_id: Option<&str>,
        peer_uid: Option<u32>,
    ) -> Result<Reservation, String> {
        let owner = Owner {
            session_id: session_id.map(str::to_owned),
            agent: agent_key(peer_uid),
        };
        let mut queue = self
            .queue
            .lock()
            .map_err(|_| "approval_queue_full: the approval queue is unavailable".to_owned())?;
        let total = queue.waiting.len() + queue.reserved.len();
        if total >= self.caps.max_pending {
            return Err(format!(
                "approval_queue_full: {total} actions are already waiting for a person (approvals.max_pending)"
            ));
        }
        let of_agent = queue.owners().filter(|o| o.agent == owner.agent).count();
        if of_agent >= self.caps.max_pending_per_agent {
            return Err(format!(
                "approval_queue_full: {of_agent} actions of this agent credential ({}) are already waiting for a person (approvals.max_pending_per_agent)",
                owner.agent
            ));
        }
        if let Some(session) = session_id {
            let in_session = queue
                .owners()
                .filter(|o| o.agent == owner.agent && o.session_id.as_deref() == Some(session))
                .count();
            if in_session >= self.caps.max_pending_per_session {
                return Err(format!(
                    "approval_queue_full: {in_session} actions of this session are already waiting for a person (approvals.max_pending_per_session)"
                ));
            }
        }
        let id = queue.next_reservation;
        queue.next_reservation += 1;
        queue.reserved.insert(id, owner);
        Ok(Reservation {
            approvals: self.clone(),
            id,
        })
    }

    /// Lands a decision on a paused action, unless it already has one. With `action_hash` it
    /// lands only if that is the action's hash (checked in the transaction that records it).
    pub async fn decide(
        &self,
        action_id: &str,
        verdict: Verdict,
        decided_by: DecidedBy,
        note: Option<String>,
        action_hash: Option<[u8; 32]>,
    ) -> Result<DecideOutcome, LedgerError> {
        let fact = DecisionFact {
            action_id: action_id.to_owned(),
            decided_at_ms: now_ms(),
            verdict,
            decided_by,
            note,
            action_hash,
        };
        Ok(match self.ledger.record_decision(fact).await? {
            DecisionOutcome::Decided(view) => {
                self.metrics.decided(decided_by == DecidedBy::Timeout);
                tracing::info!(
                    action_id,
                    verdict = verdict.as_str(),
                    decided_by = decided_by.as_str(),
                    "paused action decided"
                );
                self.settle(&view);
                self.events.publish(&Event::ActionDecided {
                    action: (*view).clone(),
                });
                DecideOutcome::Decided(*view)
            }
            DecisionOutcome::AlreadyDecided(view) => {
                // Make sure nobody keeps waiting on it here (e.g. decided before a restart).
                self.settle(&view);
                DecideOutcome::AlreadyDecided(*view)
            }
            DecisionOutcome::ActionMismatch(view) => {
                tracing::warn!(
                    action_id,
                    "a decision named another action's hash (a different or edited action): refused"
                );
                DecideOutcome::ActionMismatch(*view)
            }
            DecisionOutcome::NotFound => DecideOutcome::NotFound,
        })
    }

    /// Edit then approve: lands a person's approval of `edit` in place of the action's input,
    /// with the edit, both or neither; bound to the original's `action_hash` like every
    /// approval. Waiters wake with the decided action (its decision carries the edit).
    pub async fn decide_edited(
        &self,
        action_id: &str,
        note: Option<String>,
        action_hash: [u8; 32],
        edit: gatehouse_ledger::EditFact,
    ) -> Result<DecideOutcome, LedgerError> {
        let fact = DecisionFact {
            action_id: action_id.to_owned(),
            decided_at_ms: now_ms(),
            verdict: Verdict::Allow,
            decided_by: DecidedBy::Human,
            note,
            action_hash: Some(action_hash),
        };
        let outcome = self.ledger.record_edited_decision(fact, edit).await?;
        Ok(match outcome {
            DecisionOutcome::Decided(view) => {
                self.metrics.decided(false);
                tracing::info!(action_id, "paused action approved with an edited input");
                self.settle(&view);
                self.events.publish(&Event::ActionDecided {
                    action: (*view).clone(),
                });
                DecideOutcome::Decided(*view)
            }
            DecisionOutcome::AlreadyDecided(view) => {
                self.settle(&view);
                DecideOutcome::AlreadyDecided(*view)
            }
            DecisionOutcome::ActionMismatch(view) => DecideOutcome::ActionMismatch(*view),
            DecisionOutcome::NotFound => DecideOutcome::NotFound,
        })
    }

    /// Records a named person's approval or denial (`PersonDecision`). When it decides the
    /// action (a denial, or the last approval a two-person rule needs) the waiters wake as for
    /// any decision; a first approval leaves the action waiting and tells the dashboards.
    pub async fn decide_as(&self, answer: PersonDecision) -> Result<PersonOutcome, LedgerError> {
        let action_id = answer.action_id.clone();
        let approver = answer.approver.clone();
        let outcome = self.ledger.record_person_decision(answer).await?;
        match &outcome {
            PersonOutcome::Decided(view) => {
                self.metrics.decided(false);
                self.metrics.answered_by(&approver);
                tracing::info!(
                    action_id,
                    verdict = view.verdict.as_str(),
                    approver,
                    "paused action decided"
                );
                self.settle(view);
                self.events.publish(&Event::ActionDecided {
                    action: (**view).clone(),
                });
            }
            PersonOutcome::Awaiting {
                action,
                approvals,
                required,
            } => {
                self.metrics.answered_by(&approver);
                tracing::info!(
                    action_id,
                    approver,
                    approvals,
                    required,
                    "approval recorded; the action waits for another approver"
                );
                self.events.publish(&Event::ActionPending {
                    action: (**action).clone(),
                });
            }
            PersonOutcome::AlreadyDecided(view) => self.settle(view),
            PersonOutcome::AlreadyApproved(_)
            | PersonOutcome::ActionMismatch(_)
            | PersonOutcome::NotFound => {}
        }
        Ok(outcome)
    }

    /// Wakes the action's waiters with its decided state and stops its timer.
    fn settle(&self, view: &ActionView) {
        let entry = self
            .queue
            .lock()
            .ok()
            .and_then(|mut q| q.waiting.remove(&view.action_id));
        if let Some(entry) = entry {
            entry.deadline_timer.abort();
            entry.decided.send_replace(Some(Arc::new(view.clone())));
        }
    }

    /// The action as it stands after waiting up to `wait` for its decision.
    /// `None` if the ledger has no such action.
    pub async fn wait(
        &self,
        action_id: &str,
        wait: Duration,
    ) -> Result<Option<ActionView>, LedgerError> {
        let receiver = self.queue.lock().ok().and_then(|q| {
            q.waiting
                .get(action_id)
                .map(|entry| entry.decided.subscribe())
        });
        if let Some(mut receiver) = receiver
            && !wait.is_zero()
        {
            // A decision may have landed between the commit and `track`: look once first.
            let current = self.ledger.action(action_id).await?;
            if let Some(view) = &current
                && view.verdict != Verdict::Pending
            {
                self.settle(view);
                return Ok(current);
            }
            let mut shutdown = self.shutdown.subscribe();
            tokio::select! {
                decided = async { receiver.wait_for(Option::is_some).await.map(|view| view.clone()) } => {
                    if let Ok(Some(view)) = decided {
                        return Ok(Some((*view).clone()));
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = async { shutdown.wait_for(|stopping| *stopping).await.map(|_| ()) } => {}
            }
        }
        // Not tracked here (decided already, never paused, or from before a restart),
        // or still pending after the wait: the ledger says how it stands.
        self.ledger.action(action_id).await
    }

    /// On start-up: track every action still pending in the ledger, and reject by timeout
    /// those whose deadline passed while the daemon was down. Returns how many are pending.
    pub async fn restore(self: &Arc<Self>) -> Result<usize, LedgerError> {
        let now = now_ms();
        for action in self.ledger.pending().await? {
            match action.deadline_ms {
                Some(deadline) if deadline > now => self.track(
                    &action.action_id,
                    deadline,
                    action.session_id.as_deref(),
                    action.peer_uid,
                ),
                _ => {
                    self.decide(
                        &action.action_id,
                        Verdict::Reject,
                        DecidedBy::Timeout,
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        Ok(self.pending_count())
    }

    /// Becomes true when the daemon is shutting down (long-lived connections close on it).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Releases every waiting request (they answer "pending"; the actions stay pending in the
    /// ledger) and stops the deadline timers; a restarted daemon picks them up again.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
        if let Ok(mut queue) = self.queue.lock() {
            for (_, entry) in queue.waiting.drain() {
                entry.deadline_timer.abort();
            }
        }
    }
}

/// The deadline timer's end: reject the action by timeout unless someone decided it first.
/// If the ledger cannot take the rejection, the action stays pending and this tries again.
async fn expire(approvals: Weak<Approvals>, action_id: String) {
    loop {
        let Some(live) = approvals.upgrade() else {
            return;
        };
        match live
            .decide(&action_id, Verdict::Reject, DecidedBy::Timeout, None, None)
            .await
        {
            Ok(_) => return,
            Err(err) => {
                tracing::error!(action_id, %err, "could not record a deadline rejection; retrying");
                let still_tracked = live
                    .queue
                    .lock()
                    .map(|queue| queue.waiting.contains_key(&action_id))
                    .unwrap_or(false);
                if !still_tracked {
                    return;
                }
            }
        }
        drop(live);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
