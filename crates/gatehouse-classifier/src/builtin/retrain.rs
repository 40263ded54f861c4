//! Retraining the built-in model from a deployment's own reviewed actions, and the rule that
//! decides whether the retrained model may replace the current one.
//!
//! **Examples.** A reviewer's label is the strongest evidence (`malicious` = 1, `benign` = 0; the
//! latest label of an action wins). A person's decision on a paused action is weaker evidence: a
//! deny becomes a positive and an approve a negative with [`DECISION_WEIGHT`] instead of
//! [`LABEL_WEIGHT`], because people deny what is merely unwanted or mistimed (not malicious) and
//! approve in a hurry; a labelled action's decision is ignored. Deadline timeouts are not
//! evidence at all. Features are the scorer's own ([`BuiltinClassifier::feature_vector`]).
//!
//! **Fit.** MAP logistic regression warm-started from the current model: minimise
//! `Σ weightᵢ·logloss(yᵢ, w·xᵢ + b) + λ·(‖w − w_old‖² + (b − b_old)²)`, a Gaussian prior centred
//! on the current weights, so a few examples move the model only as far as they must. Newton's
//! method with conjugate gradients over the features the examples use (the rest keep their old
//! weights exactly). Then Platt scaling `(a, c)` is re-fitted on the calibration split with the
//! same kind of prior around the old `(a, c)`.
//!
//! **Deterministic**: examples in action-id order, features in index order, every sum in one
//! thread in a fixed order, no randomness; the same reviews give byte-identical weights files.
//!
//! **Splits** (by FNV-1a of the action id, so an action never changes side as the ledger grows):
//! 25% held out for evaluation, 15% for calibration, the rest fitted.
//!
//! **Installation rule** ([`RetrainOutcome::install`]): the new model must not be worse on data
//! neither model was trained on: its AUC on the embedded general eval set (never trained on) may
//! be at most [`RetrainSettings::general_auc_tolerance`] below the old model's, and on the
//! deployment's held-out slice its AUC must not be lower and its log-loss not higher. A slice
//! with fewer than [`MIN_DEPLOYMENT_HELDOUT`] examples, or only one class, is reported as too
//! few and the decision rests on the general set alone.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::eval::{EvalExample, EvalSet, Metrics, evaluate};
use super::{BuiltinClassifier, ModelLoadError, fnv1a};

/// Sample weight of an action a reviewer labelled.
pub const LABEL_WEIGHT: f64 = 1.0;
/// Sample weight of an action known only from a person's approve/deny decision.
pub const DECISION_WEIGHT: f64 = 0.25;
/// Fewest held-out deployment examples (with both classes) for the deployment comparison.
pub const MIN_DEPLOYMENT_HELDOUT: usize = 20;
/// Fewest calibration examples (with both classes) for re-fitting Platt scaling; with fewer the
/// old calibration is kept.
pub const MIN_CALIBRATION: usize = 10;

/// Strength of the prior that keeps Platt's `(a, c)` near the old ones.
const PLATT_PRIOR: f64 = 10.0;
const MAX_NEWTON_STEPS: usize = 50;
const MAX_CG_STEPS: usize = 250;
/// Newton stops when the gradient's norm is below this.
const GRADIENT_TOLERANCE: f64 = 1e-7;

/// A reviewer's label of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewLabel {
    Malicious,
    Benign,
}

/// A person's decision on a paused action (not a deadline's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HumanDecision {
    Approved,
    Denied,
}

/// What the ledger knows about one reviewed action.
#[derive(Clone, Debug)]
pub struct ReviewedAction {
    pub action_id: String,
    pub tool: String,
    pub input: Value,
    pub context: Option<Value>,
    /// The action's latest label, if a reviewer gave one.
    pub label: Option<ReviewLabel>,
    /// A person's decision, if the action was paused and a person decided it.
    pub human_decision: Option<HumanDecision>,
}

/// Where an example's label came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Label,
    Decision,
}

/// Which part of the training run an example serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Fit,
    Calibration,
    HeldOut,
}

/// One labelled action for training.
#[derive(Clone, Debug)]
pub struct Example {
    pub action_id: String,
    pub tool: String,
    pub input: Value,
    pub context: Option<Value>,
    /// 1 malicious, 0 benign.
    pub label: u8,
    /// Sample weight: [`LABEL_WEIGHT`] or [`DECISION_WEIGHT`].
    pub weight: f64,
    pub origin: Origin,
}

impl Example {
    /// The example's split, from a hash of its action id.
    pub fn split(&self) -> Split {
        match fnv1a(self.action_id.as_bytes()) % 100 {
            0..25 => Split::HeldOut,
            25..40 => Split::Calibration,
            _ => Split::Fit,
        }
    }

    fn eval_example(&self) -> EvalExample {
        EvalExample {
            source: "deployment".into(),
            label: self.label,
            tool: self.tool.clone(),
            input: self.input.clone(),
            context: self.context.clone(),
            history: None,
        }
    }
}

/// Training examples from reviewed actions, in action-id order (one per action; actions with
/// neither a label nor a human decision are skipped).
pub fn examples_from_reviews(reviews: &[ReviewedAction]) -> Vec<Example> {
    let mut by_id: BTreeMap<&str, Example> = BTreeMap::new();
    for review in reviews {
        let (label, weight, origin) = match (review.label, review.human_decision) {
            (Some(ReviewLabel::Malicious), _) => (1, LABEL_WEIGHT, Origin::Label),
            (Some(ReviewLabel::Benign), _) => (0, LABEL_WEIGHT, Origin::Label),
            (None, Some(HumanDecision::Denied)) => (1, DECISION_WEIGHT, Origin::Decision),
            (None, Some(HumanDecision::Approved)) => (0, DECISION_WEIGHT, Origin::Decision),
            (None, None) => continue,
        };
        by_id.insert(
            &review.action_id,
            Example {
                action_id: review.action_id.clone(),
                tool: review.tool.clone(),
                input: review.input.clone(),
                context: review.context.clone(),
                label,
                weight,
                origin,
            },
        );
    }
    by_id.into_values().collect()
}

/// Knobs of a retraining run.
#[derive(Clone, Debug)]
pub struct RetrainSettings {
    /// The name of the new model (recorded with every score it gives), e.g. `builtin-lr-v1+r1`.
    pub name: String,
    /// λ of the prior `λ·‖w − w_old‖²`: larger keeps the new model closer to the old one.
    pub prior: f64,
    /// How far the new model's AUC on the general eval set may fall below the old one's.
    pub general_auc_tolerance: f64,
}

impl RetrainSettings {
    /// The defaults: λ = 1, general AUC tolerance 0.005.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prior: 1.0,
            general_auc_tolerance: 0.005,
        }
    }
}

/// Old and new model on one set of held-out actions.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub old: Metrics,
    pub new: Metrics,
    /// Mean log-loss (weighted by sample weight) of the calibrated scores.
    pub old_log_loss: f64,
    pub new_log_loss: f64,
}

/// The comparison on the deployment's held-out slice, or why there is none.
#[derive(Clone, Debug)]
pub enum DeploymentComparison {
    TooFew { n: usize, positives: usize },
    Measured(Box<Comparison>),
}

/// How many examples went where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExampleCounts {
    pub labels: usize,
    pub decisions: usize,
    pub fit: usize,
    pub calibration: usize,
    pub held_out: usize,
}

/// What a retraining run produced and whether the new model may be installed.
#[derive(Clone, Debug)]
pub struct RetrainOutcome {
    /// The retrained model (named [`RetrainSettings::name`]).
    pub model: BuiltinClassifier,
    pub counts: ExampleCounts,
    /// Whether Platt scaling was re-fitted (else the old calibration was kept: too few examples).
    pub recalibrated: bool,
    /// On the embedded general eval set.
    pub general: Comparison,
    /// On the deployment's held-out slice.
    pub deployment: DeploymentComparison,
    /// The installation rule's answer.
    pub install: bool,
    /// Why, in a sentence.
    pub reason: String,
}

/// Why no model could be trained.
#[derive(thiserror::Error, Debug)]
pub enum RetrainError {
    #[error(
        "nothing to train on: {0} labelled or decided actions, none of them in the training split"
    )]
    NothingToFit(usize),
    #[error("the retrained model is invalid: {0}")]
    Model(#[from] ModelLoadError),
    #[error("the general eval set is empty")]
    NoEvalSet,
}

/// Retrains `current` on `examples`, evaluates old and new on `general` (never trained on) and on
/// the examples' held-out split, and applies the installation rule. Installs nothing itself.
///
/// # Errors
/// No example falls in the fit split, the general set is empty, or the result is not a valid
/// model (non-finite parameters).
pub fn retrain(
    current: &BuiltinClassifier,
    examples: &[Example],
    general: &EvalSet,
    settings: &RetrainSettings,
) -> Result<RetrainOutcome, RetrainError> {
    if general.examples.is_empty() {
        return Err(RetrainError::NoEvalSet);
    }
    let mut counts = ExampleCounts::default();
    let (mut fit, mut calibration, mut held_out) = (Vec::new(), Vec::new(), Vec::new());
    for example in examples {
        match example.origin {
            Origin::Label => counts.labels += 1,
            Origin::Decision => counts.decisions += 1,
        }
        match example.split() {
            Split::Fit => fit.push(example),
            Split::Calibration => calibration.push(example),
            Split::HeldOut => held_out.push(example),
        }
    }
    counts.fit = fit.len();
    counts.calibration = calibration.len();
    counts.held_out = held_out.len();
    if fit.is_empty() {
        return Err(RetrainError::NothingToFit(examples.len()));
    }

    let featurize = |e: &Example| current.feature_vector(&e.tool, &e.input, e.context.as_ref());
    let fit_rows: Vec<Row> = fit
        .iter()
        .map(|e| Row {
            features: featurize(e),
            label: f64::from(e.label),
            weight: e.weight,
        })
        .collect();
    let (weights, intercept) = fit_weights(current, &fit_rows, settings.prior);

    let (old_weights, _, old_platt) = current.parameters();
    debug_assert_eq!(weights.len(), old_weights.len());
    let provenance = |platt: (f64, f64)| {
        json!({
            "parent": crate::Classifier::model(current),
            "examples": {"fit": counts.fit, "calibration": counts.calibration, "held_out": counts.held_out,
                         "labels": counts.labels, "decisions": counts.decisions},
            "prior": settings.prior,
            "label_weight": LABEL_WEIGHT,
            "decision_weight": DECISION_WEIGHT,
            "platt": [platt.0, platt.1],
        })
    };
    // The weights with the old calibration, to compute the logits Platt scaling is fitted on.
    let uncalibrated = current.derive(
        &settings.name,
        weights.clone(),
        intercept,
        old_platt,
        provenance(old_platt),
    )?;
    let calibration_rows: Vec<(f64, f64, f64)> = calibration
        .iter()
        .map(|e| {
            (
                uncalibrated.logit(&featurize(e)),
                f64::from(e.label),
                e.weight,
            )
        })
        .collect();
    let positives = calibration_rows.iter().filter(|r| r.1 > 0.5).count();
    let recalibrated = calibration_rows.len() >= MIN_CALIBRATION
        && positives > 0
        && positives < calibration_rows.len();
    let model = if recalibrated {
        let platt = fit_platt(&calibration_rows, old_platt);
        current.derive(&settings.name, weights, intercept, platt, provenance(platt))?
    } else {
        uncalibrated
    };

    let general_cmp = compare(current, &model, &general.examples, None);
    let held: Vec<EvalExample> = held_out.iter().map(|e| e.eval_example()).collect();
    let held_weights: Vec<f64> = held_out.iter().map(|e| e.weight).collect();
    let held_positives = held.iter().filter(|e| e.label == 1).count();
    let deployment = if held.len() >= MIN_DEPLOYMENT_HELDOUT
        && held_positives > 0
        && held_positives < held.len()
    {
        DeploymentComparison::Measured(Box::new(compare(
            current,
            &model,
            &held,
            Some(&held_weights),
        )))
    } else {
        DeploymentComparison::TooFew {
            n: held.len(),
            positives: held_positives,
        }
    };
    let (install, reason) = decide(&general_cmp, &deployment, settings.general_auc_tolerance);
    Ok(RetrainOutcome {
        model,
        counts,
        recalibrated,
        general: general_cmp,
        deployment,
        install,
        reason,
    })
}

/// The installation rule.
fn decide(
    general: &Comparison,
    deployment: &DeploymentComparison,
    tolerance: f64,
) -> (bool, String) {
    let (Some(old_auc), Some(new_auc)) = (general.old.auc, general.new.auc) else {
        return (
            false,
            "the general eval set has only one class: cannot compare".into(),
        );
    };
    if new_auc < old_auc - tolerance {
        return (
            false,
            format!(
                "AUC on the general eval set fell from {old_auc:.4} to {new_auc:.4}, more than the tolerance {tolerance}: \
                 the new labels contradict what the model knows (careless or poisoned labels?)"
            ),
        );
    }
    match deployment {
        DeploymentComparison::TooFew { n, .. } => (
            true,
            format!(
                "general AUC {old_auc:.4} → {new_auc:.4} (within {tolerance}); too few held-out deployment examples \
                 ({n}, need {MIN_DEPLOYMENT_HELDOUT} with both classes) to compare there"
            ),
        ),
        DeploymentComparison::Measured(cmp) => {
            let (old, new) = (cmp.old.auc.unwrap_or(0.0), cmp.new.auc.unwrap_or(0.0));
            if new < old {
                (
                    false,
                    format!(
                        "AUC on the deployment's held-out actions fell from {old:.4} to {new:.4}"
                    ),
                )
            } else if cmp.new_log_loss > cmp.old_log_loss {
                (
                    false,
                    format!(
                        "log-loss on the deployment's held-out actions rose from {:.4} to {:.4}",
                        cmp.old_log_loss, cmp.new_log_loss
                    ),
                )
            } else {
                (
                    true,
                    format!(
                        "not worse: general AUC {old_auc:.4} → {new_auc:.4} (within {tolerance}); deployment AUC \
                         {old:.4} → {new:.4}, log-loss {:.4} → {:.4}",
                        cmp.old_log_loss, cmp.new_log_loss
                    ),
                )
            }
        }
    }
}

fn compare(
    old: &BuiltinClassifier,
    new: &BuiltinClassifier,
    set: &[EvalExample],
    weights: Option<&[f64]>,
) -> Comparison {
    Comparison {
        old: evaluate(old, set),
        new: evaluate(new, set),
        old_log_loss: log_loss(old, set, weights),
        new_log_loss: log_loss(new, set, weights),
    }
}

/// Mean log-loss of calibrated scores, weighted by `weights` (all 1 when `None`).
fn log_loss(model: &BuiltinClassifier, set: &[EvalExample], weights: Option<&[f64]>) -> f64 {
    let (mut total, mut mass) = (0.0, 0.0);
    for (i, e) in set.iter().enumerate() {
        let w = weights.and_then(|w| w.get(i)).copied().unwrap_or(1.0);
        let p = model
            .probability(&e.tool, &e.input, e.context.as_ref())
            .clamp(1e-12, 1.0 - 1e-12);
        total -= w * if e.label == 1 { p.ln() } else { (1.0 - p).ln() };
        mass += w;
    }
    if mass > 0.0 { total / mass } else { 0.0 }
}

/// One fit example: its sparse features, label (0 or 1) and sample weight.
struct Row {
    features: Vec<(u32, f64)>,
    label: f64,
    weight: f64,
}

/// `log(1 + e^z) − y·z`, the logistic loss of logit `z` for label `y`, without overflow.
fn logistic_loss(z: f64, y: f64) -> f64 {
    let softplus = if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    };
    softplus - y * z
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One fit example in the problem's coordinates.
struct ProblemRow {
    /// (position among the used features, value)
    features: Vec<(usize, f64)>,
    /// The old model's logit.
    base: f64,
    label: f64,
    weight: f64,
}

/// The MAP problem in the coordinates `δ = (w − w_old, b − b_old)` restricted to the features
/// the examples use; the last coordinate is the intercept.
struct Problem {
    rows: Vec<ProblemRow>,
    dim: usize,
    prior: f64,
}

impl Problem {
    fn logit(&self, row: &[(usize, f64)], base: f64, delta: &[f64]) -> f64 {
        let intercept = delta[self.dim - 1];
        base + intercept + row.iter().map(|&(j, x)| x * delta[j]).sum::<f64>()
    }

    fn value(&self, delta: &[f64]) -> f64 {
        let loss: f64 = self
            .rows
            .iter()
            .map(|r| r.weight * logistic_loss(self.logit(&r.features, r.base, delta), r.label))
            .sum();
        loss + self.prior * dot(delta, delta)
    }

    /// The gradient, and each example's curvature `w·p·(1 − p)` for Hessian products.
    fn gradient(&self, delta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut grad: Vec<f64> = delta.iter().map(|d| 2.0 * self.prior * d).collect();
        let mut curvature = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let p = sigmoid(self.logit(&r.features, r.base, delta));
            let g = r.weight * (p - r.label);
            for &(j, x) in &r.features {
                grad[j] += g * x;
            }
            grad[self.dim - 1] += g;
            curvature.push(r.weight * p * (1.0 - p));
        }
        (grad, curvature)
    }

    fn hessian_times(&self, curvature: &[f64], v: &[f64]) -> Vec<f64> {
        let mut out: Vec<f64> = v.iter().map(|x| 2.0 * self.prior * x).collect();
        for (r, c) in self.rows.iter().zip(curvature) {
            let xv = v[self.dim - 1] + r.features.iter().map(|&(j, x)| x * v[j]).sum::<f64>();
            let s = c * xv;
            for &(j, x) in &r.features {
                out[j] += s * x;
            }
            out[self.dim - 1] += s;
        }
        out
    }
}

/// Newton's method with conjugate-gradient steps and a backtracking line search; the objective
/// is strictly convex (the prior), so it converges to the one minimum.
fn fit_weights(current: &BuiltinClassifier, rows: &[Row], prior: f64) -> (Vec<f32>, f64) {
    let (old_weights, old_intercept, _) = current.parameters();
    let mut positions: BTreeMap<u32, usize> = BTreeMap::new();
    for row in rows {
        for &(index, _) in &row.features {
            positions.entry(index).or_insert(0);
        }
    }
    for (position, slot) in positions.values_mut().enumerate() {
        *slot = position;
    }
    let dim = positions.len() + 1;
    let problem = Problem {
        rows: rows
            .iter()
            .map(|r| ProblemRow {
                features: r
                    .features
                    .iter()
                    .map(|(index, x)| (positions[index], *x))
                    .collect(),
                base: current.logit(&r.features),
                label: r.label,
                weight: r.weight,
            })
            .collect(),
        dim,
        prior,
    };
    let delta = newton(
        dim,
        |d| problem.value(d),
        |d| problem.gradient(d),
        |c, v| problem.hessian_times(c, v),
    );
    let mut weights = old_weights.to_vec();
    for (&index, &position) in &positions {
        let old = f64::from(old_weights[index as usize]);
        weights[index as usize] = (old + delta[position]) as f32;
    }
    (weights, old_intercept + delta[dim - 1])
}

/// Minimises a smooth strictly convex function from 0 with Newton-CG steps.
fn newton(
    dim: usize,
    value: impl Fn(&[f64]) -> f64,
    gradient: impl Fn(&[f64]) -> (Vec<f64>, Vec<f64>),
    hessian_times: impl Fn(&[f64], &[f64]) -> Vec<f64>,
) -> Vec<f64> {
    let mut x = vec![0.0; dim];
    let mut fx = value(&x);
    for _ in 0..MAX_NEWTON_STEPS {
        let (g, curvature) = gradient(&x);
        let g_norm = dot(&g, &g).sqrt();
        if g_norm < GRADIENT_TOLERANCE {
            break;
        }
        // Conjugate gradients for H·d = −g, to a residual of 1e-3·‖g‖.
        let mut d = vec![0.0; dim];
        let mut r: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut p = r.clone();
        let mut rs = dot(&r, &r);
        for _ in 0..MAX_CG_STEPS {
            let hp = hessian_times(&curvature, &p);
            let php = dot(&p, &hp);
            if php <= 0.0 {
                break;
            }
            let alpha = rs / php;
            for i in 0..dim {
                d[i] += alpha * p[i];
                r[i] -= alpha * hp[i];
            }
            let rs_next = dot(&r, &r);
            if rs_next.sqrt() <= 1e-3 * g_norm {
                break;
            }
            let beta = rs_next / rs;
            for i in 0..dim {
                p[i] = r[i] + beta * p[i];
            }
            rs = rs_next;
        }
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            break;
        }
        let mut step = 1.0;
        let mut accepted = false;
        while step > 1e-10 {
            let trial: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let f_trial = value(&trial);
            if f_trial <= fx + 1e-4 * step * slope {
                x = trial;
                fx = f_trial;
                accepted = true;
                break;
            }
            step /= 2.0;
        }
        if !accepted {
            break;
        }
    }
    x
}

/// Platt's `(a, c)` for `p = sigmoid(a·z + c)`, fitted on `(logit, label, weight)` rows with the
/// prior `PLATT_PRIOR·((a − a_old)² + (c − c_old)²)`.
fn fit_platt(rows: &[(f64, f64, f64)], old: (f64, f64)) -> (f64, f64) {
    let value = |d: &[f64]| {
        let (a, c) = (old.0 + d[0], old.1 + d[1]);
        rows.iter()
            .map(|(z, y, w)| w * logistic_loss(a * z + c, *y))
            .sum::<f64>()
            + PLATT_PRIOR * dot(d, d)
    };
    let gradient = |d: &[f64]| {
        let (a, c) = (old.0 + d[0], old.1 + d[1]);
        let mut g = vec![2.0 * PLATT_PRIOR * d[0], 2.0 * PLATT_PRIOR * d[1]];
        let mut curvature = Vec::with_capacity(rows.len());
        for (z, y, w) in rows {
            let p = sigmoid(a * z + c);
            g[0] += w * (p - y) * z;
            g[1] += w * (p - y);
            curvature.push(w * p * (1.0 - p));
        }
        (g, curvature)
    };
    let hessian_times = |curvature: &[f64], v: &[f64]| {
        let mut out = vec![2.0 * PLATT_PRIOR * v[0], 2.0 * PLATT_PRIOR * v[1]];
        for ((z, ..), c) in rows.iter().zip(curvature) {
            let s = c * (z * v[0] + v[1]);
            out[0] += s * z;
            out[1] += s;
        }
        out
    };
    let d = newton(2, value, gradient, hessian_times);
    (old.0 + d[0], old.1 + d[1])
}

#[cfg(test)]
#[path = "retrain_tests.rs"]
mod tests;
