//! The built-in tier-2 model: a calibrated logistic regression over hashed n-grams and structural
//! features of an action, with weights compiled into the binary. No process, no network, no files.
//!
//! The model is trained by `tools/train/train.py` (see `docs/MODEL.md`), which writes the weights
//! file embedded here (`model/builtin.bin`). Its format: the bytes `GHLR`, a little-endian `u32`
//! format version (1), a little-endian `u32` header length, the JSON header (model name, hash
//! dimension, intercept, Platt calibration, threshold, word lists), then `2^dim_bits` weights as
//! little-endian `f32`.
//!
//! Context: when `ScoreRequest::context` is a JSON object, these keys are read (others ignored):
//! - `task`: what the user asked the agent to do (trusted; compared with the action);
//! - `prompt`: the user's prompt (compared with the action, and scanned for injection text);
//! - `previous_output`: the tool output the agent saw last (untrusted; scanned for injection text).
//!
//! Values may be strings or any JSON (their strings are used); each is cut at 4 KiB.

mod eval;
mod features;
mod retrain;
mod versions;

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

pub use eval::{
    EvalExample, EvalSet, Metrics, SourceMetrics, evaluate, evaluate_by_source, evaluate_with,
};
pub use features::fnv1a;
use features::{Lexicon, Sink, WireLexicon};
pub use retrain::{
    Comparison, DECISION_WEIGHT, DeploymentComparison, Example, ExampleCounts, HumanDecision,
    LABEL_WEIGHT, MIN_CALIBRATION, MIN_DEPLOYMENT_HELDOUT, Origin, RetrainError, RetrainOutcome,
    RetrainSettings, ReviewLabel, ReviewedAction, Split, examples_from_reviews, retrain,
};
pub use versions::{CURRENT_FILE, MODELS_DIR, ModelStore, ModelVersion, StoreError};

use crate::{Classifier, ClassifierError, HistoryFacts, Score, ScoreRequest};

/// The weights shipped in the binary.
const EMBEDDED: &[u8] = include_bytes!("../../model/builtin.bin");

const MAGIC: &[u8; 4] = b"GHLR";
const FORMAT_VERSION: u32 = 1;
/// Hash spaces larger than this are refused (2^24 weights = 64 MiB).
const MAX_DIM_BITS: u32 = 24;

/// Why a weights file could not be loaded.
#[derive(thiserror::Error, Debug)]
pub enum ModelLoadError {
    #[error("cannot read weights file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a builtin model weights file: {0}")]
    Format(String),
}

#[derive(Debug, Deserialize)]
struct Header {
    model: String,
    dim_bits: u32,
    intercept: f64,
    platt_a: f64,
    platt_b: f64,
    threshold: f64,
    lexicon: WireLexicon,
}

/// The built-in classifier. Cheap to share (`Arc` inside); scoring is a few microseconds of pure
/// computation.
#[derive(Clone)]
pub struct BuiltinClassifier {
    model: Arc<Model>,
}

struct Model {
    /// The whole JSON header as read, so a retrained model keeps fields this build does not use
    /// (data provenance) when it is written out again.
    header: serde_json::Map<String, serde_json::Value>,
    name: String,
    dim_bits: u32,
    intercept: f64,
    platt_a: f64,
    platt_b: f64,
    threshold: f64,
    lexicon: Lexicon,
    weights: Vec<f32>,
}

impl std::fmt::Debug for BuiltinClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinClassifier")
            .field("model", &self.model.name)
            .field("dim_bits", &self.model.dim_bits)
            .field("threshold", &self.model.threshold)
            .finish_non_exhaustive()
    }
}

/// A dot product with the weights.
struct Dot<'w> {
    weights: &'w [f32],
    sum: f64,
    fired: Option<Vec<String>>,
}

impl Sink for Dot<'_> {
    fn add(&mut self, index: u32, value: f64) {
        // `index` is masked to the dimension, and the loader checked the weights cover it.
        if let Some(w) = self.weights.get(index as usize) {
            self.sum += f64::from(*w) * value;
        }
    }

    fn fired(&mut self, name: &str) {
        if let Some(fired) = &mut self.fired {
            fired.push(name.to_owned());
        }
    }
}

/// The features of one action as a sorted `(index, value)` list; for tests against the trainer.
#[derive(Default)]
struct Collect(std::collections::BTreeMap<u32, f64>);

impl Sink for Collect {
    fn add(&mut self, index: u32, value: f64) {
        *self.0.entry(index).or_insert(0.0) += value;
    }
}

impl BuiltinClassifier {
    /// The model compiled into the binary (`builtin-lr-v1`).
    ///
    /// # Errors
    /// Only if the embedded file is corrupt, which the crate's tests rule out.
    pub fn embedded() -> Result<Self, ModelLoadError> {
        Self::from_bytes(EMBEDDED)
    }

    /// A model from a weights file written by `tools/train/train.py` (a retrained model).
    ///
    /// # Errors
    /// The file cannot be read or is not a valid weights file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ModelLoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ModelLoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// A model from the bytes of a weights file.
    ///
    /// # Errors
    /// The bytes are not a valid weights file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelLoadError> {
        let bad = |m: &str| ModelLoadError::Format(m.to_owned());
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("no GHLR magic"))?;
        let (version, rest) = read_u32(rest).ok_or_else(|| bad("truncated"))?;
        if version != FORMAT_VERSION {
            return Err(ModelLoadError::Format(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let (header_len, rest) = read_u32(rest).ok_or_else(|| bad("truncated"))?;
        let header_len = header_len as usize;
        if rest.len() < header_len {
            return Err(bad("truncated header"));
        }
        let (header, rest) = rest.split_at(header_len);
        let raw_header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
            .map_err(|e| ModelLoadError::Format(format!("header: {e}")))?;
        let header: Header = serde_json::from_value(serde_json::Value::Object(raw_header.clone()))
            .map_err(|e| ModelLoadError::Format(format!("header: {e}")))?;
        if header.dim_bits == 0 || header.dim_bits > MAX_DIM_BITS {
            return Err(ModelLoadError::Format(format!(
                "dim_bits {} outside 1..={MAX_DIM_BITS}",
                header.dim_bits
            )));
        }
        let dim = 1usize << header.dim_bits;
        if rest.len() != dim * 4 {
            return Err(ModelLoadError::Format(format!(
                "{} bytes of weights, expected {}",
                rest.len(),
                dim * 4
            )));
        }
        let weights: Vec<f32> = rest
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let numbers = [
            header.intercept,
            header.platt_a,
            header.platt_b,
            header.threshold,
        ];
        if weights.iter().any(|w| !w.is_finite()) || numbers.iter().any(|x| !x.is_finite()) {
            return Err(bad("non-finite weight"));
        }
        Ok(Self {
            model: Arc::new(Model {
                header: raw_header,
                lexicon: Lexicon::new(&header.lexicon),
                name: header.model,
                dim_bits: header.dim_bits,
                intercept: header.intercept,
                platt_a: header.platt_a,
                platt_b: header.platt_b,
                threshold: header.threshold,
                weights,
            }),
        })
    }

    /// Scores above this are labelled `malicious` (0.5: scores are calibrated probabilities).
    pub fn threshold(&self) -> f64 {
        self.model.threshold
    }

    /// The calibrated probability that the action is malicious, in `[0, 1]`.
    pub fn probability(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
    ) -> f64 {
        self.run(tool, input, context, None, false).0
    }

    /// [`BuiltinClassifier::probability`] with the daemon's deployment-memory facts (`None`
    /// scores exactly as `probability` does).
    pub fn probability_with_history(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
        history: Option<&HistoryFacts>,
    ) -> f64 {
        self.run(tool, input, context, history, false).0
    }

    /// Scores synchronously. Takes microseconds; see [`Classifier::score`] for why that is fine
    /// on an async worker.
    pub fn score_sync(&self, request: &ScoreRequest) -> Score {
        let (score, fired) = self.run(
            &request.tool,
            &request.input,
            request.context.as_ref(),
            request.history.as_ref(),
            true,
        );
        let label = if score >= self.model.threshold {
            "malicious"
        } else if score >= self.model.threshold / 2.0 {
            "suspicious"
        } else {
            "benign"
        };
        Score {
            score,
            label: label.to_owned(),
            model: self.model.name.clone(),
            explanation: explain(&fired, score >= self.model.threshold / 2.0),
        }
    }

    fn run(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
        history: Option<&HistoryFacts>,
        explain: bool,
    ) -> (f64, Vec<String>) {
        let m = &*self.model;
        let mut dot = Dot {
            weights: &m.weights,
            sum: m.intercept,
            fired: explain.then(Vec::new),
        };
        features::featurize(
            tool, input, context, history, &m.lexicon, m.dim_bits, &mut dot,
        );
        let z = m.platt_a * dot.sum + m.platt_b;
        let p = 1.0 / (1.0 + (-z).exp());
        // `p` is in [0, 1] for every finite z, and 0 or 1 at the infinities; NaN cannot arise from
        // finite weights, but a score must never be NaN (it would read as "safe"), so say 1.
        let p = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
        (p, dot.fired.unwrap_or_default())
    }

    /// The sparse feature vector of an action, sorted by index (for comparing with the trainer).
    #[doc(hidden)]
    pub fn feature_vector(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
    ) -> Vec<(u32, f64)> {
        self.feature_vector_with_history(tool, input, context, None)
    }

    /// [`BuiltinClassifier::feature_vector`] with deployment-memory facts.
    #[doc(hidden)]
    pub fn feature_vector_with_history(
        &self,
        tool: &str,
        input: &serde_json::Value,
        context: Option<&serde_json::Value>,
        history: Option<&HistoryFacts>,
    ) -> Vec<(u32, f64)> {
        let mut collect = Collect::default();
        let m = &*self.model;
        features::featurize(
            tool,
            input,
            context,
            history,
            &m.lexicon,
            m.dim_bits,
            &mut collect,
        );
        collect.0.into_iter().collect()
    }
}

/// Building retrained models and writing weights files (for `retrain` and `versions`).
impl BuiltinClassifier {
    /// The bytes of this model's weights file, in the format [`BuiltinClassifier::from_bytes`]
    /// reads. The same model always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&self.model.header, &self.model.weights)
    }

    /// The same model under another name (the name every score it gives carries).
    ///
    /// # Errors
    /// Never for a model that loaded; the copy is checked like a file.
    pub fn with_name(&self, name: &str) -> Result<Self, ModelLoadError> {
        let mut header = self.model.header.clone();
        header.insert("model".into(), name.into());
        Self::from_bytes(&encode(&header, &self.model.weights))
    }

    /// A copy of this model with other parameters and name; `provenance` is recorded in the
    /// header under `retrained`. Fails if a parameter is not finite.
    pub(crate) fn derive(
        &self,
        name: &str,
        weights: Vec<f32>,
        intercept: f64,
        platt: (f64, f64),
        provenance: serde_json::Value,
    ) -> Result<Self, ModelLoadError> {
        let m = &*self.model;
        let mut header = m.header.clone();
        header.insert("model".into(), name.into());
        header.insert("intercept".into(), intercept.into());
        header.insert("platt_a".into(), platt.0.into());
        header.insert("platt_b".into(), platt.1.into());
        header.insert("retrained".into(), provenance);
        if weights.len() != m.weights.len() {
            return Err(ModelLoadError::Format("weights of the wrong length".into()));
        }
        // Encoded and parsed back, so a derived model is exactly what loading its file gives,
        // checked the same way (finite numbers, the right length).
        Self::from_bytes(&encode(&header, &weights))
    }

    /// The weights, the intercept and the Platt calibration `(a, b)`.
    pub(crate) fn parameters(&self) -> (&[f32], f64, (f64, f64)) {
        let m = &*self.model;
        (&m.weights, m.intercept, (m.platt_a, m.platt_b))
    }

    /// The raw (uncalibrated) logit of a feature vector from [`BuiltinClassifier::feature_vector`].
    pub(crate) fn logit(&self, features: &[(u32, f64)]) -> f64 {
        let m = &*self.model;
        let mut dot = Dot {
            weights: &m.weights,
            sum: m.intercept,
            fired: None,
        };
        for &(index, value) in features {
            dot.add(index, value);
        }
        dot.sum
    }
}

/// A weights file: magic, format version, header length, JSON header, little-endian `f32`s.
fn encode(header: &serde_json::Map<String, serde_json::Value>, weights: &[f32]) -> Vec<u8> {
    // A `Map` serializes in a fixed order (sorted keys, or the file's order with serde_json's
    // `preserve_order`), so the same model always gives the same bytes.
    let header = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(12 + header.len() + weights.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(header.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&header);
    for w in weights {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

fn read_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// A sentence naming the signals that fired, or `None` when only n-grams spoke. The relation to the
/// task is named only for a flagged action: "unrelated to the task" beside a low score would
/// mislead (word overlap is a weak signal that the other features often outweigh).
fn explain(fired: &[String], flagged: bool) -> Option<String> {
    let phrases: Vec<&str> = fired
        .iter()
        .filter_map(|name| {
            Some(match name.as_str() {
                "pipe_shell" => "pipes into a shell",
                "ip_url" => "URL to an IP address",
                "sensitive_path" => "touches a sensitive path",
                "secret" => "contains a secret-shaped string",
                "b64_blob" | "hex_blob" => "carries an encoded blob",
                "payment_amount" | "iban" => "moves money",
                "persistence" => "sets up persistence",
                "reverse_shell" => "reverse-shell pattern",
                "destructive" => "destructive command",
                "upload" => "uploads data",
                "hist_new_host" if flagged => "a host this deployment never contacted",
                "hist_new_recipient" if flagged => "a recipient this deployment never used",
                "decode" => "decodes a payload",
                "ctx_inj1" | "ctx_inj2" => "injection-style text in the context",
                "sim0" if flagged => "unrelated to the user's task",
                n if flagged && n.ends_with("_mismatch") => "outside what the task asked for",
                _ => return None,
            })
        })
        .collect();
    let mut unique: Vec<&str> = Vec::new();
    for p in phrases {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    (!unique.is_empty()).then(|| unique.join("; "))
}

impl Classifier for BuiltinClassifier {
    fn model(&self) -> &str {
        &self.model.name
    }

    /// Scores inline, inside the future: a typical action takes 2–10 µs of arithmetic, less than a
    /// trip through [`crate::BlockingPool`] would cost, and the text is cut at 4 KiB for the action
    /// and each context field, so even the worst case (every field past the cut) is ≈ 0.25–0.4 ms.
    /// That does not hold an async worker for long. A caller that wants it off the workers anyway
    /// can run [`BuiltinClassifier::score_sync`] in a pool: the classifier is cheap to clone.
    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            let score = self.score_sync(&request);
            if Score::in_range(score.score) {
                Ok(score)
            } else {
                Err(ClassifierError::Failed(format!(
                    "builtin model produced score {}",
                    score.score
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests;
