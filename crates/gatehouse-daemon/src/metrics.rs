//! Counters and the check-latency histogram, rendered in the Prometheus text format at `/metrics`.
//! Plain atomics: recording on the fast path is a few relaxed increments.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use gatehouse_protocol::Verdict;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&bound| secs <= bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    checks_allow: AtomicU64,
    checks_reject: AtomicU64,
    checks_pending: AtomicU64,
    check_ledger_failures: AtomicU64,
    fast_path_latency: Histogram,
    scoring_in_flight: AtomicI64,
    scoring_scored: AtomicU64,
    scoring_dropped: AtomicU64,
    scoring_errors: AtomicU64,
    scoring_timeouts: AtomicU64,
    disagreements: AtomicU64,
    decisions_human: AtomicU64,
    decisions_timeout: AtomicU64,
    /// Approvals and denials by person (names are plain: `users::check_name`).
    answers_by_approver: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

/// How a scoring ended, for the counters.
#[derive(Debug, Clone, Copy)]
pub enum ScoringEnd {
    Scored,
    Error,
    Timeout,
}

impl Metrics {
    pub fn check_answered(&self, verdict: Verdict) {
        match verdict {
            Verdict::Allow => &self.checks_allow,
            Verdict::Reject => &self.checks_reject,
            Verdict::Pending => &self.checks_pending,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn fast_path_latency(&self, elapsed: Duration) {
        self.fast_path_latency.observe(elapsed);
    }

    pub fn ledger_failure(&self) {
        self.check_ledger_failures.fetch_add(1, Relaxed);
    }

    pub fn scoring_started(&self) {
        self.scoring_in_flight.fetch_add(1, Relaxed);
    }

    pub fn scoring_finished(&self, end: ScoringEnd) {
        self.scoring_in_flight.fetch_sub(1, Relaxed);
        match end {
            ScoringEnd::Scored => &self.scoring_scored,
            ScoringEnd::Error => &self.scoring_errors,
            ScoringEnd::Timeout => &self.scoring_timeouts,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn scoring_dropped(&self) {
        self.scoring_dropped.fetch_add(1, Relaxed);
    }

    pub fn scoring_dropped_total(&self) -> u64 {
        self.scoring_dropped.load(Relaxed)
    }

    pub fn disagreement(&self) {
        self.disagreements.fetch_add(1, Relaxed);
    }

    pub fn decided(&self, by_timeout: bool) {
        if by_timeout {
            &self.decisions_timeout
        } else {
            &self.decisions_human
        }
        .fetch_add(1, Relaxed);
    }

    /// A person approved or denied a paused action (deciding it or not).
    pub fn answered_by(&self, approver: &str) {
        if let Ok(mut answers) = self.answers_by_approver.lock() {
            *answers.entry(approver.to_owned()).or_default() += 1;
        }
    }

    /// The Prometheus text exposition; `pending` is the number of actions waiting for a person,
    /// `classifier_restarts` how many times the sidecar classifier was started again.
    pub fn render(&self, pending: usize, classifier_restarts: u64) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            &mut out,
            "gatehouse_checks_total",
            "Checks answered, by the verdict the agent was first given.",
            &[
                ("{verdict=\"allow\"}", self.checks_allow.load(Relaxed)),
                ("{verdict=\"reject\"}", self.checks_reject.load(Relaxed)),
                ("{verdict=\"pending\"}", self.checks_pending.load(Relaxed)),
            ],
        );
        counter(
            &mut out,
            "gatehouse_check_ledger_failures_total",
            "Checks rejected because the ledger could not commit.",
            &[("", self.check_ledger_failures.load(Relaxed))],
        );
        self.fast_path_latency.render(
            &mut out,
            "gatehouse_fast_path_seconds",
            "Time to answer a check the rules decided, from request parsed to response ready.",
        );
        let _ = writeln!(
            out,
            "# HELP gatehouse_classifier_in_flight Scorings running now.\n# TYPE gatehouse_classifier_in_flight gauge\ngatehouse_classifier_in_flight {}",
            self.scoring_in_flight.load(Relaxed).max(0)
        );
        counter(
            &mut out,
            "gatehouse_classifier_scorings_total",
            "Scorings by outcome; dropped means the detached cap was reached.",
            &[
                ("{outcome=\"scored\"}", self.scoring_scored.load(Relaxed)),
                ("{outcome=\"error\"}", self.scoring_errors.load(Relaxed)),
                ("{outcome=\"timeout\"}", self.scoring_timeouts.load(Relaxed)),
                ("{outcome=\"dropped\"}", self.scoring_dropped.load(Relaxed)),
            ],
        );
        counter(
            &mut out,
            "gatehouse_classifier_restarts_total",
            "Times the sidecar classifier was started again after it stopped.",
            &[("", classifier_restarts)],
        );
        counter(
            &mut out,
            "gatehouse_disagreements_total",
            "Rules-allowed actions the classifier flagged.",
            &[("", self.disagreements.load(Relaxed))],
        );
        counter(
            &mut out,
            "gatehouse_decisions_total",
            "Paused actions decided, by who decided.",
            &[
                ("{decided_by=\"human\"}", self.decisions_human.load(Relaxed)),
                (
                    "{decided_by=\"timeout\"}",
                    self.decisions_timeout.load(Relaxed),
                ),
            ],
        );
        let answers: Vec<(String, u64)> = self
            .answers_by_approver
            .lock()
            .map(|answers| {
                answers
                    .iter()
                    .map(|(name, n)| (format!("{{approver=\"{name}\"}}"), *n))
                    .collect()
            })
            .unwrap_or_default();
        let answers: Vec<(&str, u64)> = answers.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        counter(
            &mut out,
            "gatehouse_approver_answers_total",
            "Approvals and denials of paused actions, by the person who gave them.",
            &answers,
        );
        let _ = writeln!(
            out,
            "# HELP gatehouse_pending_actions Paused actions waiting for a person.\n# TYPE gatehouse_pending_actions gauge\ngatehouse_pending_actions {pending}"
        );
        out
    }
}
