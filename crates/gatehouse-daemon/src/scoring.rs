//! Tier-2 scoring around the verdict: detached (fast path) or awaited within a budget
//! (paused path). The classifier is advisory: nothing here can change a verdict.
//!
//! *Invariant*: on the fast path, scoring starts only after the verdict is committed and is
//! spawned behind a yield, so no classifier work delays the response; at most `max_detached`
//! scorings run detached, and past that a scoring is dropped (counted, and recorded on the
//! action) — never the verdict.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use gatehouse_classifier::{Classifier, ClassifierError, ScoreRequest};
use gatehouse_ledger::{Ledger, ScoreFact, ScoreOutcome};
use gatehouse_protocol::{Event, Tier2Score, Tier2Status};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::now_ms;
use crate::events::Events;
use crate::memory::{Memory, Touches};
use crate::metrics::{Metrics, ScoringEnd};

/// What the fast path could reserve for an action's detached scoring.
#[derive(Debug)]
pub enum DetachedSlot {
    /// No classifier is configured.
    Disabled,
    /// At the cap: this action will not be scored.
    Dropped,
    Reserved(OwnedSemaphorePermit),
}

impl DetachedSlot {
    /// What the action row records about its scoring.
    pub fn status(&self) -> Tier2Status {
        match self {
            DetachedSlot::Disabled => Tier2Status::Disabled,
            DetachedSlot::Dropped => Tier2Status::Dropped,
            DetachedSlot::Reserved(_) => Tier2Status::Pending,
        }
    }
}

pub struct Scoring {
    classifier: Option<Arc<dyn Classifier>>,
    detached: Arc<Semaphore>,
    budget: Duration,
    detached_timeout: Duration,
    disagreement_threshold: f64,
    flag_threshold: f64,
    ledger: Ledger,
    events: Events,
    metrics: Arc<Metrics>,
    /// The deployment memory the classifier's history facts come from; `None` scores without.
    memory: Option<Arc<Memory>>,
}

impl std::fmt::Debug for Scoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoring")
            .field("model", &self.model())
            .finish()
    }
}

pub struct ScoringSettings {
    pub max_detached: usize,
    pub budget: Duration,
    pub detached_timeout: Duration,
    pub disagreement_threshold: f64,
    /// A score at or above this counts as flagged (the review queue).
    pub flag_threshold: f64,
}

impl Scoring {
    pub fn new(
        classifier: Option<Arc<dyn Classifier>>,
        settings: ScoringSettings,
        ledger: Ledger,
        events: Events,
        metrics: Arc<Metrics>,
    ) -> Scoring {
        Scoring {
            classifier,
            detached: Arc::new(Semaphore::new(settings.max_detached)),
            budget: settings.budget,
            detached_timeout: settings.detached_timeout,
            disagreement_threshold: settings.disagreement_threshold,
            flag_threshold: settings.flag_threshold,
            ledger,
            events,
            metrics,
            memory: None,
        }
    }

    /// Hands the classifier history facts from `memory`, and teaches it the allowed actions.
    pub fn with_memory(mut self, memory: Arc<Memory>) -> Scoring {
        self.memory = Some(memory);
        self
    }

    /// Sets the request's history facts from the memory; returns what the action touches.
    fn remember(&self, request: &mut ScoreRequest) -> Option<Touches> {
        let memory = self.memory.as_ref()?;
        let touches = Touches::of(&request.input);
        request.history =
            Some(memory.facts(&request.tool, &touches, request.session_id.as_deref()));
        Some(touches)
    }

    /// Teaches the memory an action a person approved (`view` as decided).
    pub fn learn_decided(&self, view: &gatehouse_protocol::ActionView) {
        if let Some(memory) = &self.memory {
            memory.learn_view(view);
        }
    }

    /// The classifier's model name, or `none`.
    pub fn model(&self) -> &str {
        self.classifier.as_ref().map_or("none", |c| c.model())
    }

    /// The model in force and the thresholds (`GET /v1/classifier`, the review queue).
    pub fn info(&self) -> gatehouse_protocol::ClassifierInfo {
        gatehouse_protocol::ClassifierInfo {
            model: self.model().to_owned(),
            flag_threshold: self.flag_threshold,
            disagreement_threshold: self.disagreement_threshold,
        }
    }

    /// How many times the classifier's process has been restarted (a sidecar's; else 0).
    pub fn classifier_restarts(&self) -> u64 {
        self.classifier.as_ref().map_or(0, |c| c.restarts())
    }

    pub fn enabled(&self) -> bool {
        self.classifier.is_some()
    }

    /// Reserves a detached scoring slot without waiting.
    pub fn reserve_detached(&self) -> DetachedSlot {
        if self.classifier.is_none() {
            return DetachedSlot::Disabled;
        }
        match self.detached.clone().try_acquire_owned() {
            Ok(permit) => DetachedSlot::Reserved(permit),
            Err(_) => {
                self.metrics.scoring_dropped();
                DetachedSlot::Dropped
            }
        }
    }

    /// Scores a committed fast-path action in the background and back-fills the ledger. With
    /// `learn` (the rules allowed it, not in observe mode) the deployment memory learns the
    /// action, after its own history facts were taken.
    pub fn spawn_detached(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        mut request: ScoreRequest,
        rules_allowed: bool,
        learn: bool,
    ) {
        let scoring = self.clone();
        tokio::spawn(async move {
            // Let the response go out before any classifier code runs on this worker.
            tokio::task::yield_now().await;
            let action_id = request.action_id.clone();
            if let (Some(touches), Some(memory)) = (scoring.remember(&mut request), &scoring.memory)
                && learn
            {
                memory.learn(&request.tool, &touches, request.session_id.as_deref());
            }
            let outcome = scoring.run(request, scoring.detached_timeout).await;
            drop(permit);
            scoring.record(&action_id, outcome, rules_allowed).await;
        });
    }

    /// Scores a paused action within the budget and records the outcome before returning it.
    pub async fn score_paused(&self, mut request: ScoreRequest) -> ScoreOutcome {
        let action_id = request.action_id.clone();
        self.remember(&mut request);
        let outcome = self.run(request, self.budget).await;
        self.record(&action_id, outcome.clone(), false).await;
        outcome
    }

    /// Asks the classifier, bounded by `limit`; a panic or an out-of-range score is an error.
    async fn run(&self, mut request: ScoreRequest, limit: Duration) -> ScoreOutcome {
        let Some(classifier) = self.classifier.clone() else {
            return ScoreOutcome::Error("no classifier configured".into());
        };
        request.deadline = limit;
        self.metrics.scoring_started();
        let attempt = AssertUnwindSafe(classifier.score(request)).catch_unwind();
        let outcome = match tokio::time::timeout(limit, attempt).await {
            Err(_) | Ok(Ok(Err(ClassifierError::Timeout))) => ScoreOutcome::Timeout,
            Ok(Err(_panic)) => ScoreOutcome::Error("classifier panicked".into()),
            Ok(Ok(Err(err))) => ScoreOutcome::Error(err.to_string()),
            Ok(Ok(Ok(score))) if !(0.0..=1.0).contains(&score.score) => ScoreOutcome::Error(
                format!("classifier returned an out-of-range score {}", score.score),
            ),
            Ok(Ok(Ok(score))) => ScoreOutcome::Scored {
                score: score.score,
                label: score.label,
                model: score.model,
                explanation: score.explanation,
                disagreement: false,
            },
        };
        self.metrics.scoring_finished(match &outcome {
            ScoreOutcome::Scored { .. } => ScoringEnd::Scored,
            ScoreOutcome::Timeout => ScoringEnd::Timeout,
            _ => ScoringEnd::Error,
        });
        outcome
    }

    /// Back-fills the outcome into the ledger and tells the dashboards.
    async fn record(&self, action_id: &str, mut outcome: ScoreOutcome, rules_allowed: bool) {
        if let ScoreOutcome::Scored {
            score,
            disagreement,
            model,
            ..
        } = &mut outcome
            && rules_allowed
            && *score >= self.disagreement_threshold
        {
            *disagreement = true;
            self.metrics.disagreement();
            tracing::warn!(
                action_id,
                score = *score,
                model = model.as_str(),
                threshold = self.disagreement_threshold,
                "disagreement: the rules allowed an action the classifier flagged"
            );
        }
        let fact = ScoreFact {
            action_id: action_id.to_owned(),
            recorded_at_ms: now_ms(),
            outcome: outcome.clone(),
        };
        match self.ledger.record_score(fact).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(action_id, "score dropped: its action is not in the ledger");
                return;
            }
            Err(err) => {
                tracing::warn!(action_id, %err, "score dropped: the ledger could not record it");
                return;
            }
        }
        let (tier2_status, tier2, disagreement) = describe(&outcome);
        self.events.publish(&Event::ActionScored {
            action_id: action_id.to_owned(),
            tier2_status,
            tier2,
            disagreement,
        });
    }
}

/// The wire view of a scoring outcome.
pub fn describe(outcome: &ScoreOutcome) -> (Tier2Status, Option<Tier2Score>, bool) {
    match outcome {
        ScoreOutcome::Scored {
            score,
            label,
            model,
            disagreement,
            ..
        } => (
            Tier2Status::Scored,
            Some(Tier2Score {
                score: *score,
                label: label.clone(),
                model: model.clone(),
            }),
            *disagreement,
        ),
        ScoreOutcome::Error(_) => (Tier2Status::Error, None, false),
        ScoreOutcome::Timeout => (Tier2Status::Timeout, None, false),
        ScoreOutcome::Dropped => (Tier2Status::Dropped, None, false),
    }
}
