//! Tier-2 classifiers: the `Classifier` trait, the sidecar protocol client and test classifiers.
//!
//! Tier 2 is advisory. Tier-1 rules give every verdict; a classifier only scores how malicious an
//! action looks, and the daemon records that score in the ledger beside the verdict. Nothing in this
//! crate can change a verdict, so every failure here is an ordinary [`ClassifierError`] value that
//! the daemon records as the action's tier-2 status.
//!
//! - [`Classifier`] is what the daemon calls, once per action, with a [`ScoreRequest`].
//! - [`SidecarClassifier`] runs the user's model as a child process speaking newline-delimited JSON
//!   (the protocol is in `docs/SIDECAR.md`; `tools/sidecar/reference_sidecar.py` is a working one).
//! - [`BuiltinClassifier`] is the default model: a calibrated logistic regression compiled into
//!   the binary (`docs/MODEL.md`); [`evaluate`] measures it on labelled actions.
//! - `MiniLmClassifier` (feature `minilm`, off by default) stacks all-MiniLM-L6-v2 sentence
//!   embeddings with the built-in model (`docs/MODEL.md`, "Neural tier").
//! - [`BlockingPool`] runs CPU-bound in-process inference off the async workers, bounded.
//! - [`testing`] holds small classifiers with known behaviour for the daemon's tests and benchmark.
//!
//! *Invariant*: a [`Score`] handed out by this crate is finite and within `[0, 1]`. A model that
//! answers anything else gets an error, never a clamped score (a clamped NaN would read as "safe").

mod builtin;
mod history;
#[cfg(feature = "minilm")]
pub mod minilm;
mod pool;
mod sidecar;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Serialize, Serializer};

pub use builtin::{
    BuiltinClassifier, EvalExample, EvalSet, Metrics, ModelLoadError, SourceMetrics, evaluate,
    evaluate_by_source, evaluate_with, fnv1a,
};
pub use history::HistoryFacts;
#[cfg(feature = "minilm")]
pub use minilm::{Encoder, MiniLmClassifier, MiniLmError};
/// Retraining the built-in model from a deployment's reviewed actions, and its versioned weights
/// in the data directory (`docs/MODEL.md`, "Retraining from your own decisions").
pub mod retraining {
    pub use crate::builtin::{
        CURRENT_FILE, Comparison, DECISION_WEIGHT, DeploymentComparison, Example, ExampleCounts,
        HumanDecision, LABEL_WEIGHT, MIN_CALIBRATION, MIN_DEPLOYMENT_HELDOUT, MODELS_DIR,
        ModelStore, ModelVersion, Origin, RetrainError, RetrainOutcome, RetrainSettings,
        ReviewLabel, ReviewedAction, Split, StoreError, examples_from_reviews, retrain,
    };
}
pub use pool::BlockingPool;
pub use sidecar::{
    INITIAL_BACKOFF, MAX_BACKOFF, MAX_REPLY_LINE_BYTES, SidecarClassifier, SidecarConfig,
};

/// One action to score, as the daemon hands it to a classifier.
///
/// `input` and `context` can hold secrets (tokens in a command line, file contents): they go to the
/// classifier and the ledger, never to logs.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreRequest {
    /// The daemon's id for the action; for the caller's bookkeeping, not sent to sidecars.
    pub action_id: String,
    /// Tool name as the agent knows it (`Bash`, `Write`, `mcp__github__create_issue`).
    pub tool: String,
    /// The tool's arguments.
    pub input: serde_json::Value,
    /// Free-form context (the user's task, the previous tool output).
    pub context: Option<serde_json::Value>,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    pub cwd: Option<String>,
    /// What this action does that the deployment has not done before, computed by the daemon
    /// from its allowed history; `None` when unknown (the model then scores without it). Not sent
    /// to sidecars (`docs/SIDECAR.md`).
    #[serde(skip)]
    pub history: Option<HistoryFacts>,
    /// How long the caller will wait. Classifiers give up with [`ClassifierError::Timeout`] when it
    /// has passed; the daemon also enforces it with `tokio::time::timeout`.
    #[serde(rename = "deadline_ms", serialize_with = "serialize_millis")]
    pub deadline: Duration,
}

impl ScoreRequest {
    /// A request with no context, session, agent or working directory.
    pub fn new(
        action_id: impl Into<String>,
        tool: impl Into<String>,
        input: serde_json::Value,
        deadline: Duration,
    ) -> Self {
        Self {
            action_id: action_id.into(),
            tool: tool.into(),
            input,
            context: None,
            session_id: None,
            agent: None,
            cwd: None,
            history: None,
            deadline,
        }
    }
}

fn serialize_millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(millis(*duration))
}

/// Whole milliseconds in `duration`, saturating at `u64::MAX`.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A classifier's answer: how malicious the action looks.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// 0 is benign, 1 is certainly malicious; always finite and within `[0, 1]`.
    pub score: f64,
    /// The model's own word for the score (`benign`, `suspicious`, `malicious`, ...).
    pub label: String,
    /// The model that produced the score, as recorded in the ledger.
    pub model: String,
    /// Why, in a sentence, if the model says.
    pub explanation: Option<String>,
}

impl Score {
    /// True when `value` may stand as a score: finite and within `[0, 1]` (false for NaN).
    pub fn in_range(value: f64) -> bool {
        (0.0..=1.0).contains(&value)
    }
}

/// Why a classifier gave no score. All of them leave the verdict untouched.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ClassifierError {
    /// The request's deadline passed before the classifier answered.
    #[error("classifier timed out")]
    Timeout,
    /// The classifier is not there to ask: its process could not start, exited, or is restarting.
    #[error("classifier unavailable: {0}")]
    Unavailable(String),
    /// The classifier answered something that breaks the protocol (bad JSON, a score outside `[0, 1]`).
    #[error("classifier protocol error: {0}")]
    Protocol(String),
    /// The classifier ran and reported a failure, or panicked.
    #[error("classifier failed: {0}")]
    Failed(String),
}

/// A tier-2 model. Implementations must be cheap to call concurrently: the daemon caps how many
/// scores are in flight, not the classifier.
pub trait Classifier: Send + Sync + 'static {
    /// Model name recorded in the ledger with each score.
    fn model(&self) -> &str;

    /// Scores one action. The future should finish by `request.deadline` (with
    /// [`ClassifierError::Timeout`] if it must), and may be dropped at any point.
    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>>;

    /// How many times the classifier's process was started again after it stopped (a sidecar);
    /// 0 for classifiers that run in the daemon.
    fn restarts(&self) -> u64 {
        0
    }
}

/// A shared classifier is a classifier, so `Arc<dyn Classifier>` can be passed where one is wanted.
impl<C: Classifier + ?Sized> Classifier for Arc<C> {
    fn model(&self) -> &str {
        (**self).model()
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        (**self).score(request)
    }

    fn restarts(&self) -> u64 {
        (**self).restarts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_range_accepts_the_closed_unit_interval_only() {
        for ok in [0.0, 0.5, 1.0, -0.0] {
            assert!(Score::in_range(ok), "{ok} should be in range");
        }
        for bad in [-0.01, 1.01, 7.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!Score::in_range(bad), "{bad} should be out of range");
        }
    }

    #[test]
    fn score_request_serializes_its_deadline_in_milliseconds() {
        let request = ScoreRequest::new(
            "a1",
            "Bash",
            serde_json::json!({"command": "ls"}),
            Duration::from_millis(1500),
        );
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(value["deadline_ms"], 1500);
        assert_eq!(value["tool"], "Bash");
        assert!(value.get("deadline").is_none());
    }
}
