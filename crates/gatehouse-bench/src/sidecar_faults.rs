//! The `sidecar-faults` scenario: fast-path latency while the classifier sidecar misbehaves.
//!
//! Four gatehouse daemons in a row (crash-safe, 4 × 500/s, the same checks as the fast-path
//! tables): without a classifier (the baseline of this run), then with a sidecar from
//! `crates/gatehouse-classifier/tests/fixtures` that answers after 10 s (`slow.py`), exits after
//! every 100 requests and is restarted by the daemon (`crash_every.py`), or floods its stdout
//! with lines that are not replies as fast as it can (`babble.py`). Tier 2 is advisory and
//! detached from the fast path, so the latency ratios against the baseline should stay near 1.
//! After each load the daemon's `/metrics` gives the sidecar restarts and the scorings by
//! outcome (dropped: the detached cap was full).

use std::path::Path;

/// The sidecars the scenario runs, the baseline first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// No classifier at all: the baseline.
    None,
    /// Answers every request 10 s after reading it.
    Slow,
    /// Exits after every [`CRASH_EVERY`] requests; the daemon restarts it (with backoff).
    Crashing,
    /// Writes junk lines to its stdout as fast as it can, and answers requests correctly.
    Flooding,
}

/// How many requests the crashing sidecar reads before it exits, in every run.
pub const CRASH_EVERY: u32 = 100;

impl Sidecar {
    pub const ALL: [Sidecar; 4] = [
        Sidecar::None,
        Sidecar::Slow,
        Sidecar::Crashing,
        Sidecar::Flooding,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Sidecar::None => "none (baseline)",
            Sidecar::Slow => "slow (answers after 10 s)",
            Sidecar::Crashing => "crashing (exits every 100 requests)",
            Sidecar::Flooding => "flooding (junk lines non-stop)",
        }
    }

    /// The daemon's config: crash-safe, this classifier, every other setting at its default.
    pub fn config(self, fixtures: &Path) -> String {
        let sidecar = |args: &[&str]| {
            let mut command = vec![
                "python3".to_owned(),
                fixtures
                    .join(args[0])
                    .to_string_lossy()
                    .replace('\\', "\\\\"),
            ];
            command.extend(args[1..].iter().map(|a| (*a).to_owned()));
            let quoted: Vec<String> = command.iter().map(|c| format!("\"{c}\"")).collect();
            format!(
                "kind = \"sidecar\"\ncommand = [{}]\nmodel = \"{}\"\n",
                quoted.join(", "),
                args[0].trim_end_matches(".py")
            )
        };
        let classifier = match self {
            Sidecar::None => "kind = \"none\"\n".to_owned(),
            Sidecar::Slow => sidecar(&["slow.py", "10"]),
            Sidecar::Crashing => sidecar(&["crash_every.py", &CRASH_EVERY.to_string()]),
            Sidecar::Flooding => sidecar(&["babble.py"]),
        };
        format!("[ledger]\ndurability = \"crash-safe\"\n\n[classifier]\n{classifier}")
    }
}

/// What the daemon's `/metrics` said about tier 2 after the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tier2Counts {
    pub restarts: u64,
    pub scored: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub dropped: u64,
}

impl Tier2Counts {
    /// Reads the counters from a Prometheus text exposition; a missing sample reads as 0.
    pub fn from_metrics(text: &str) -> Self {
        let sample = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let outcome = |o: &str| {
            sample(&format!(
                "gatehouse_classifier_scorings_total{{outcome=\"{o}\"}}"
            ))
        };
        Tier2Counts {
            restarts: sample("gatehouse_classifier_restarts_total"),
            scored: outcome("scored"),
            errors: outcome("error"),
            timeouts: outcome("timeout"),
            dropped: outcome("dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_each_fixture_with_its_arguments() {
        let fixtures = Path::new("/ws/fixtures");
        assert!(
            Sidecar::None
                .config(fixtures)
                .ends_with("[classifier]\nkind = \"none\"\n")
        );
        let slow = Sidecar::Slow.config(fixtures);
        assert!(
            slow.contains(r#"command = ["python3", "/ws/fixtures/slow.py", "10"]"#),
            "{slow}"
        );
        let crashing = Sidecar::Crashing.config(fixtures);
        assert!(
            crashing.contains(r#""/ws/fixtures/crash_every.py", "100"]"#),
            "{crashing}"
        );
        for s in Sidecar::ALL {
            let config = s.config(fixtures);
            assert!(config.starts_with("[ledger]\ndurability = \"crash-safe\""));
        }
    }

    #[test]
    fn counters_are_read_from_the_metrics_text() {
        let text = "# HELP gatehouse_classifier_scorings_total Scorings by outcome.\n\
                    gatehouse_classifier_scorings_total{outcome=\"scored\"} 12\n\
                    gatehouse_classifier_scorings_total{outcome=\"error\"} 3\n\
                    gatehouse_classifier_scorings_total{outcome=\"timeout\"} 4\n\
                    gatehouse_classifier_scorings_total{outcome=\"dropped\"} 9000\n\
                    gatehouse_classifier_restarts_total 5\n";
        assert_eq!(
            Tier2Counts::from_metrics(text),
            Tier2Counts {
                restarts: 5,
                scored: 12,
                errors: 3,
                timeouts: 4,
                dropped: 9000
            }
        );
        assert_eq!(Tier2Counts::from_metrics(""), Tier2Counts::default());
    }
}
