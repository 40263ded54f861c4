//! The optional neural tier (feature `minilm`): all-MiniLM-L6-v2 sentence embeddings, computed
//! in pure Rust on the CPU, feed a small logistic head whose logit is stacked with the built-in
//! model's calibrated probability (`docs/MODEL.md`, "Neural tier").
//!
//! - [`Encoder`] reads the model from a directory that `scripts/fetch-minilm.sh` filled from the
//!   pinned PyPI wheel. It never downloads anything: every file is checked against the sha256
//!   compiled in here ([`MODEL_FILES`]), and a missing or different file is a clear
//!   [`MiniLmError`] at load time.
//! - [`MiniLmClassifier`] scores an action: the embedding of the action's text, and when the
//!   context carries the user's `task` (or `prompt`) its embedding's cosine similarity with the
//!   action, go through the head (`model/minilm-head.json`, trained by
//!   `tools/train/train_minilm_head.py`); a two-input logistic model (fitted on the calibration
//!   split) combines that logit with the built-in model's and gives a calibrated probability.
//!
//! Inference takes milliseconds, so [`MiniLmClassifier`] scores on a [`BlockingPool`], never on
//! an async worker, and runs every matrix product on one dedicated thread.

mod encoder;
mod head;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use encoder::{DIM, Encoder, MAX_TOKENS, MODEL_FILES, WHEEL, WHEEL_SHA256};
pub use head::{HEAD_FEATURES, Head};

use crate::{BlockingPool, BuiltinClassifier, Classifier, ClassifierError, Score, ScoreRequest};

/// Why the neural tier could not load or score.
#[derive(thiserror::Error, Debug)]
pub enum MiniLmError {
    /// A model file is not in the directory (or cannot be read).
    #[error(
        "MiniLM file {path} cannot be read ({source}); run scripts/fetch-minilm.sh and set \
         [classifier] minilm_dir to the directory it prints"
    )]
    Missing {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A model file is there but is not the pinned one (corrupt, truncated or another version).
    #[error(
        "MiniLM file {path} has sha256 {actual}, expected {expected}; it is corrupt or another \
         version: run scripts/fetch-minilm.sh again"
    )]
    Hash {
        path: String,
        expected: &'static str,
        actual: String,
    },
    /// The files passed their hashes but the tokenizer or the network would not load.
    #[error("cannot load the MiniLM model: {0}")]
    Load(String),
    /// The head's weights file is malformed.
    #[error("bad MiniLM head weights: {0}")]
    Head(String),
    /// Tokenizing or running the network failed.
    #[error("MiniLM inference failed: {0}")]
    Inference(String),
}

/// The built-in model with the neural tier stacked on it. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct MiniLmClassifier {
    inner: Arc<Inner>,
    pool: BlockingPool,
}

struct Inner {
    encoder: Encoder,
    head: Head,
    builtin: BuiltinClassifier,
}

impl std::fmt::Debug for MiniLmClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmClassifier")
            .field("model", &self.inner.head.model())
            .field("builtin", &self.inner.builtin)
            .finish_non_exhaustive()
    }
}

/// One action's scores, for evaluation and explanations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parts {
    /// The built-in model's calibrated probability.
    pub builtin: f64,
    /// The head's own probability from the embeddings alone (uncalibrated logistic output).
    pub head: f64,
    /// The stacked, calibrated probability: the score.
    pub combined: f64,
}

impl MiniLmClassifier {
    /// Loads the encoder from `dir` (checking every file's sha256) and the committed head, over
    /// `builtin`. Scores run on `pool`.
    ///
    /// # Errors
    /// A file is missing or not the pinned one, or the model will not load.
    pub fn load(
        dir: impl AsRef<Path>,
        builtin: BuiltinClassifier,
        pool: BlockingPool,
    ) -> Result<Self, MiniLmError> {
        Ok(Self::new(
            Encoder::load(dir)?,
            Head::embedded()?,
            builtin,
            pool,
        ))
    }

    /// The parts put together (a head other than the committed one, for tests and training).
    pub fn new(
        encoder: Encoder,
        head: Head,
        builtin: BuiltinClassifier,
        pool: BlockingPool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                encoder,
                head,
                builtin,
            }),
            pool,
        }
    }

    /// Above this a score is labelled `malicious` (scores are calibrated probabilities).
    pub fn threshold(&self) -> f64 {
        self.inner.head.threshold()
    }

    /// The built-in, head and stacked probabilities of one action, synchronously (milliseconds:
    /// call it from a blocking thread, as [`Classifier::score`] does).
    ///
    /// # Errors
    /// Tokenizing or running the network failed.
    pub fn parts(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
    ) -> Result<Parts, MiniLmError> {
        let inner = &*self.inner;
        let builtin = inner.builtin.probability(tool, input, context);
        let features = head_features(&inner.encoder, tool, input, context)?;
        Ok(inner.head.combine(builtin, &features))
    }

    /// The stacked probability that the action is malicious, in `[0, 1]`.
    ///
    /// # Errors
    /// As [`MiniLmClassifier::parts`].
    pub fn probability(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
    ) -> Result<f64, MiniLmError> {
        Ok(self.parts(tool, input, context)?.combined)
    }

    /// Scores synchronously, with the label and explanation the ledger records.
    ///
    /// # Errors
    /// As [`MiniLmClassifier::parts`].
    pub fn score_sync(&self, request: &ScoreRequest) -> Result<Score, MiniLmError> {
        let inner = &*self.inner;
        // The built-in model's score gives both its probability and its explanation.
        let builtin = inner.builtin.score_sync(request);
        let features = head_features(
            &inner.encoder,
            &request.tool,
            &request.input,
            request.context.as_ref(),
        )?;
        let parts = inner.head.combine(builtin.score, &features);
        let threshold = self.threshold();
        let label = if parts.combined >= threshold {
            "malicious"
        } else if parts.combined >= threshold / 2.0 {
            "suspicious"
        } else {
            "benign"
        };
        let mut explanation = format!(
            "built-in {:.2}, MiniLM head {:.2}",
            parts.builtin, parts.head
        );
        if let Some(why) = builtin.explanation {
            explanation.push_str("; ");
            explanation.push_str(&why);
        }
        Ok(Score {
            score: parts.combined,
            label: label.to_owned(),
            model: self.inner.head.model().to_owned(),
            explanation: Some(explanation),
        })
    }
}

impl Classifier for MiniLmClassifier {
    fn model(&self) -> &str {
        self.inner.head.model()
    }

    /// Runs on the [`BlockingPool`]: a score takes milliseconds of matrix products.
    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let this = self.clone();
        let job = self.pool.run(move || this.score_sync(&request));
        Box::pin(async move {
            let score = job
                .await?
                .map_err(|e| ClassifierError::Failed(e.to_string()))?;
            if Score::in_range(score.score) {
                Ok(score)
            } else {
                Err(ClassifierError::Failed(format!(
                    "MiniLM model produced score {}",
                    score.score
                )))
            }
        })
    }
}

/// Bytes of an action's or a task's text given to the tokenizer; the tokenizer keeps the first
/// [`MAX_TOKENS`] tokens of it anyway, so this only bounds the tokenizer's own work.
const MAX_TEXT_BYTES: usize = 2048;

/// The head's inputs for one action: the action text's embedding ([`DIM`] numbers), then 1 and
/// the cosine similarity of the task's and the action's embeddings when the context carries a
/// task (or prompt), else 0 and 0.
///
/// # Errors
/// Tokenizing or running the network failed.
pub fn head_features(
    encoder: &Encoder,
    tool: &str,
    input: &serde_json::Value,
    context: Option<&serde_json::Value>,
) -> Result<Vec<f32>, MiniLmError> {
    let action = encoder.embed(&action_text(tool, input))?;
    let mut features = action.clone();
    match task_text(context) {
        Some(task) => {
            let task = encoder.embed(&task)?;
            let cosine: f32 = action.iter().zip(&task).map(|(a, b)| a * b).sum();
            features.extend([1.0, cosine]);
        }
        None => features.extend([0.0, 0.0]),
    }
    Ok(features)
}

/// The text embedded for an action: the tool name, then `key: value` for each string, number or
/// boolean in the input (object keys in order, nested values flattened), one per line, cut at
/// [`MAX_TEXT_BYTES`].
pub fn action_text(tool: &str, input: &serde_json::Value) -> String {
    let mut text = String::from(tool);
    flatten(None, input, &mut text);
    cut(text)
}

/// The user's `task` and `prompt` from a context object, joined by a newline; `None` when neither
/// is there (or both are empty).
pub fn task_text(context: Option<&serde_json::Value>) -> Option<String> {
    let context = context?.as_object()?;
    let mut text = String::new();
    for key in ["task", "prompt"] {
        if let Some(value) = context.get(key) {
            let mut part = String::new();
            flatten(None, value, &mut part);
            let part = part.trim();
            if !part.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(part);
            }
        }
    }
    (!text.trim().is_empty()).then(|| cut(text))
}

fn flatten(key: Option<&str>, value: &serde_json::Value, out: &mut String) {
    if out.len() > MAX_TEXT_BYTES {
        return;
    }
    let mut leaf = |text: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        if let Some(key) = key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(text);
    };
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => leaf(s),
        serde_json::Value::Bool(b) => leaf(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => leaf(&n.to_string()),
        serde_json::Value::Array(items) => {
            for item in items {
                flatten(key, item, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(Some(k), v, out);
            }
        }
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
