//! Evaluation of the built-in model on labelled actions: the figures `gatehouse classifier eval`
//! prints and `docs/MODEL.md` keeps.
//!
//! The metric definitions match `tools/train/train.py` exactly, so the figures the trainer writes
//! for the committed eval set (`model/metrics.json`, `eval_file`) are the figures computed here.
//!
//! - **AUC**: area under the ROC curve (Mann–Whitney, ties counted half).
//! - **Precision / recall** at the model's threshold (a score ≥ threshold is flagged).
//! - **TPR at 1% FPR**: the share of malicious actions scored above the score that lets through at
//!   most 1% of benign ones.
//! - **ECE**: expected calibration error over ten equal-width score bins.
//! - **Latency**: wall time of each score on this thread, p50 and p99.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::BuiltinClassifier;

/// The held-out eval set committed with the crate: samples of every test split the model was not
/// trained on (text sources, generated actions from held-out value pools, and sources never used in
/// training at all). One JSON object per line.
const EMBEDDED_EVAL: &str = include_str!("../../model/eval.jsonl");

/// One labelled action.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EvalExample {
    /// Which split it comes from (`slabs-test`, `neuralchemy-test`, `generated`, ...).
    pub source: String,
    /// 1 malicious, 0 benign.
    pub label: u8,
    pub tool: String,
    pub input: serde_json::Value,
    #[serde(default)]
    pub context: Option<serde_json::Value>,
    /// Deployment-memory facts, when the row carries them (generated rows do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::HistoryFacts>,
}

/// A list of labelled actions.
#[derive(Clone, Debug, Default)]
pub struct EvalSet {
    pub examples: Vec<EvalExample>,
}

impl EvalSet {
    /// The held-out set committed with the crate (about 3,000 rows).
    ///
    /// # Errors
    /// Only if the committed file is malformed, which the crate's tests rule out.
    pub fn embedded() -> Result<Self, serde_json::Error> {
        Self::from_jsonl(EMBEDDED_EVAL)
    }

    /// Parses JSON lines of [`EvalExample`]; blank lines are skipped.
    ///
    /// # Errors
    /// The first line that is not an example, with its line number in the message.
    pub fn from_jsonl(text: &str) -> Result<Self, serde_json::Error> {
        let mut examples = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            examples.push(serde_json::from_str(line)?);
        }
        Ok(Self { examples })
    }
}

/// How well a model did on a set of labelled actions. Figures that need both classes (AUC, TPR at
/// 1% FPR) or a non-empty denominator are `None` when the set does not allow them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub positives: usize,
    pub auc: Option<f64>,
    pub threshold: f64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub tpr_at_1pct_fpr: Option<f64>,
    /// Expected calibration error, ten bins.
    pub ece: Option<f64>,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
}

/// One line: `n 3217 (1848 malicious)  AUC 0.9947  precision 0.980  recall 0.965 @ 0.50  ...`;
/// figures the set does not allow print as `-`.
impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        write!(
            f,
            "n {} ({} malicious)  AUC {}  precision {}  recall {} @ {:.2}  TPR@1%FPR {}  ECE {}  latency p50 {:.1} µs p99 {:.1} µs",
            self.n,
            self.positives,
            show(self.auc, 4),
            show(self.precision, 3),
            show(self.recall, 3),
            self.threshold,
            show(self.tpr_at_1pct_fpr, 3),
            show(self.ece, 3),
            self.latency_p50_us,
            self.latency_p99_us,
        )
    }
}

/// Metrics of one source within a set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceMetrics {
    pub source: String,
    pub metrics: Metrics,
}

/// Scores every example with `model` and measures it.
pub fn evaluate(model: &BuiltinClassifier, dataset: &[EvalExample]) -> Metrics {
    let (scores, latencies) = score_all(model, dataset);
    let labels: Vec<u8> = dataset.iter().map(|e| e.label).collect();
    measure(&scores, &labels, model.threshold(), latencies)
}

/// Measures any model given as a scoring function (another tier, e.g. the neural one): scores
/// every example with `score`, timing each call, and computes the same figures as [`evaluate`].
pub fn evaluate_with(
    dataset: &[EvalExample],
    threshold: f64,
    mut score: impl FnMut(&EvalExample) -> f64,
) -> Metrics {
    let mut scores = Vec::with_capacity(dataset.len());
    let mut latencies = Vec::with_capacity(dataset.len());
    for e in dataset {
        let start = Instant::now();
        scores.push(score(e));
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let labels: Vec<u8> = dataset.iter().map(|e| e.label).collect();
    measure(&scores, &labels, threshold, latencies)
}

/// [`evaluate`] per `source`, sorted by source name.
pub fn evaluate_by_source(
    model: &BuiltinClassifier,
    dataset: &[EvalExample],
) -> Vec<SourceMetrics> {
    let mut groups: BTreeMap<&str, Vec<EvalExample>> = BTreeMap::new();
    for e in dataset {
        groups.entry(&e.source).or_default().push(e.clone());
    }
    groups
        .into_iter()
        .map(|(source, examples)| SourceMetrics {
            source: source.to_owned(),
            metrics: evaluate(model, &examples),
        })
        .collect()
}

fn score_all(model: &BuiltinClassifier, dataset: &[EvalExample]) -> (Vec<f64>, Vec<f64>) {
    let mut scores = Vec::with_capacity(dataset.len());
    let mut latencies = Vec::with_capacity(dataset.len());
    for e in dataset {
        let start = Instant::now();
        let p = model.probability_with_history(
            &e.tool,
            &e.input,
            e.context.as_ref(),
            e.history.as_ref(),
        );
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
        scores.push(p);
    }
    (scores, latencies)
}

fn measure(scores: &[f64], labels: &[u8], threshold: f64, mut latencies: Vec<f64>) -> Metrics {
    let positives = labels.iter().filter(|&&l| l == 1).count();
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    latencies.sort_by(f64::total_cmp);
    Metrics {
        n: scores.len(),
        positives,
        auc: auc(scores, labels),
        threshold,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        tpr_at_1pct_fpr: tpr_at_fpr(scores, labels, 0.01),
        ece: ece(scores, labels, 10),
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
    }
}

/// The `q` quantile of sorted `values` (nearest rank), 0 when empty.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Area under the ROC curve; ties share their average rank.
pub(crate) fn auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l == 1).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        i = j + 1;
    }
    let pos = pos as f64;
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg as f64))
}

/// True-positive rate when at most `fpr` of the negatives may score above the cut.
pub(crate) fn tpr_at_fpr(scores: &[f64], labels: &[u8], fpr: f64) -> Option<f64> {
    let mut neg: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == 0)
        .map(|(s, _)| *s)
        .collect();
    let pos: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == 1)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fpr * neg.len() as f64).floor() as usize;
    let cut = neg.get(allowed).copied().unwrap_or(-1.0);
    Some(pos.iter().filter(|&&s| s > cut).count() as f64 / pos.len() as f64)
}

/// Expected calibration error over `bins` equal-width bins (a score of exactly 1 goes in the last).
pub(crate) fn ece(scores: &[f64], labels: &[u8], bins: usize) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for b in 0..bins {
        let (lo, hi) = (b as f64 / bins as f64, (b + 1) as f64 / bins as f64);
        let members: Vec<usize> = (0..scores.len())
            .filter(|&i| {
                let s = scores[i];
                (lo <= s && s < hi) || (b == bins - 1 && s == 1.0)
            })
            .collect();
        if members.is_empty() {
            continue;
        }
        let m = members.len() as f64;
        let confidence = members.iter().map(|&i| scores[i]).sum::<f64>() / m;
        let accuracy = members.iter().map(|&i| f64::from(labels[i])).sum::<f64>() / m;
        total += m / scores.len() as f64 * (confidence - accuracy).abs();
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_ranking_is_one_and_of_ties_one_half() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]), Some(1.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[0, 1, 0, 1]), Some(0.5));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]), Some(0.0));
        assert_eq!(auc(&[0.3], &[1]), None);
    }

    #[test]
    fn tpr_at_fpr_cuts_above_the_allowed_negatives() {
        let scores = [0.1, 0.2, 0.3, 0.4, 0.95, 0.35, 0.5];
        let labels = [0, 0, 0, 0, 1, 1, 1];
        // Four negatives: 1% of them is none, so the cut is the top negative (0.4).
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.01), Some(2.0 / 3.0));
    }

    #[test]
    fn ece_is_zero_when_scores_match_outcomes() {
        assert_eq!(ece(&[0.0, 1.0, 0.0, 1.0], &[0, 1, 0, 1], 10), Some(0.0));
        let e = ece(&[0.9, 0.9], &[0, 0], 10).unwrap();
        assert!((e - 0.9).abs() < 1e-12);
    }

    #[test]
    fn metrics_print_on_one_line_with_dashes_for_missing_figures() {
        let m = measure(&[0.9, 0.8], &[1, 1], 0.5, vec![2.0, 3.0]);
        let line = m.to_string();
        assert!(
            line.starts_with("n 2 (2 malicious)  AUC -  precision 1.000  recall 1.000 @ 0.50"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.99), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
