//! The neural tier's trained part: a logistic head over the MiniLM features and the stacking
//! model that combines its logit with the built-in model's. Weights in `model/minilm-head.json`,
//! written by `tools/train/train_minilm_head.py`.

use serde::Deserialize;

use super::{DIM, MiniLmError, Parts};

/// The head's input length: the embedding, then "has a task" and the task–action cosine.
pub const HEAD_FEATURES: usize = DIM + 2;

/// The committed head (`model/minilm-head.json`).
const EMBEDDED: &str = include_str!("../../model/minilm-head.json");

/// Probabilities given to the stacking model are kept this far from 0 and 1, so their logits are
/// finite (the built-in model does output exactly 0 or 1 for extreme actions).
const EPSILON: f64 = 1e-6;

#[derive(Debug, Deserialize)]
struct Wire {
    model: String,
    threshold: f64,
    head: Linear,
    stack: Stack,
}

#[derive(Debug, Deserialize)]
struct Linear {
    weights: Vec<f64>,
    intercept: f64,
}

#[derive(Debug, Deserialize)]
struct Stack {
    intercept: f64,
    builtin: f64,
    head: f64,
}

/// The head and stacking weights.
#[derive(Debug)]
pub struct Head {
    model: String,
    threshold: f64,
    weights: Vec<f64>,
    intercept: f64,
    stack: Stack,
}

impl Head {
    /// The committed head.
    ///
    /// # Errors
    /// Only if the committed file is malformed, which the crate's tests rule out.
    pub fn embedded() -> Result<Self, MiniLmError> {
        Self::from_json(EMBEDDED)
    }

    /// A head from the JSON the trainer writes.
    ///
    /// # Errors
    /// The text is not a head file, has the wrong number of weights or a non-finite number.
    pub fn from_json(text: &str) -> Result<Self, MiniLmError> {
        let wire: Wire =
            serde_json::from_str(text).map_err(|e| MiniLmError::Head(e.to_string()))?;
        if wire.head.weights.len() != HEAD_FEATURES {
            return Err(MiniLmError::Head(format!(
                "{} head weights, expected {HEAD_FEATURES}",
                wire.head.weights.len()
            )));
        }
        let numbers = [
            wire.threshold,
            wire.head.intercept,
            wire.stack.intercept,
            wire.stack.builtin,
            wire.stack.head,
        ];
        if wire
            .head
            .weights
            .iter()
            .chain(&numbers)
            .any(|x| !x.is_finite())
        {
            return Err(MiniLmError::Head("non-finite weight".into()));
        }
        if !(0.0..=1.0).contains(&wire.threshold) {
            return Err(MiniLmError::Head("threshold outside [0, 1]".into()));
        }
        Ok(Self {
            model: wire.model,
            threshold: wire.threshold,
            weights: wire.head.weights,
            intercept: wire.head.intercept,
            stack: wire.stack,
        })
    }

    /// The name scores carry (`minilm-stack-v1`).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Scores at or above this are labelled `malicious`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The head's logit for `features` (see [`super::head_features`]).
    pub fn logit(&self, features: &[f32]) -> f64 {
        self.intercept
            + self
                .weights
                .iter()
                .zip(features)
                .map(|(w, x)| w * f64::from(*x))
                .sum::<f64>()
    }

    /// The head's probability and the stacked one, given the built-in model's probability.
    pub fn combine(&self, builtin: f64, features: &[f32]) -> Parts {
        let head = self.logit(features);
        let b = builtin.clamp(EPSILON, 1.0 - EPSILON);
        let z = self.stack.intercept
            + self.stack.builtin * (b / (1.0 - b)).ln()
            + self.stack.head * head;
        Parts {
            builtin,
            head: probability(head),
            combined: probability(z),
        }
    }
}

/// The logistic function; a NaN (impossible from finite inputs) reads as 1, never as "safe".
fn probability(z: f64) -> f64 {
    let p = 1.0 / (1.0 + (-z).exp());
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}
