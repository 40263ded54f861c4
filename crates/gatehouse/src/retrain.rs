//! `gatehouse classifier retrain | versions | use`: retraining the built-in model from the
//! deployment's own ledger and switching between its installed versions. Thin commands over
//! `gatehouse_classifier::retraining` and `gatehouse_ledger::reviewed_actions_in_file`; they read
//! the ledger file read-only, so they are safe while the daemon runs, which picks up a newly
//! installed version for new actions by itself.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use gatehouse_classifier::retraining::{
    self, Comparison, DECISION_WEIGHT, DeploymentComparison, HumanDecision, LABEL_WEIGHT,
    MIN_DEPLOYMENT_HELDOUT, ModelStore, RetrainSettings, ReviewLabel,
};
use gatehouse_classifier::{Classifier, EvalSet, Metrics};
use gatehouse_daemon::Config;
use gatehouse_protocol::Verdict;

/// Exit code of `classifier retrain` when the new model was not installed (it was worse).
pub const EXIT_NOT_INSTALLED: u8 = 2;

fn data_dir(dir: Option<PathBuf>) -> PathBuf {
    Config {
        data_dir: dir,
        ..Config::default()
    }
    .resolve_data_dir()
}

/// What to do with the retrained model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallMode {
    /// Install if the installation rule allows it.
    IfNotWorse,
    /// Evaluate only.
    DryRun,
    /// Install even if the rule refuses (loudly).
    Force,
}

/// `gatehouse classifier retrain --from-ledger`.
pub fn retrain(dir: Option<PathBuf>, mode: InstallMode) -> Result<ExitCode> {
    let dir = data_dir(dir);
    let ledger = dir.join("ledger.db");
    let store = ModelStore::in_data_dir(&dir);
    let current = store
        .load_current()
        .context("cannot load the model in force")?;
    let reviews: Vec<retraining::ReviewedAction> =
        gatehouse_ledger::reviewed_actions_in_file(&ledger)
            .with_context(|| format!("cannot read {}", ledger.display()))?
            .into_iter()
            .map(|r| retraining::ReviewedAction {
                action_id: r.action_id,
                tool: r.tool,
                input: r.input,
                context: r.context,
                label: r.label.map(|l| match l {
                    gatehouse_protocol::ReviewLabel::Malicious => ReviewLabel::Malicious,
                    gatehouse_protocol::ReviewLabel::Benign => ReviewLabel::Benign,
                }),
                human_decision: r.human_decision.and_then(|v| match v {
                    Verdict::Allow => Some(HumanDecision::Approved),
                    Verdict::Reject => Some(HumanDecision::Denied),
                    _ => None,
                }),
            })
            .collect();
    let examples = retraining::examples_from_reviews(&reviews);
    if examples.is_empty() {
        bail!(
            "the ledger at {} has no labelled or human-decided actions to learn from",
            ledger.display()
        );
    }
    let general = EvalSet::embedded().context("the embedded eval set is malformed")?;
    let name = store.next_name(current.model())?;
    let outcome = retraining::retrain(
        &current,
        &examples,
        &general,
        &RetrainSettings::named(&name),
    )?;

    let c = outcome.counts;
    println!("model in force: {}  →  retrained: {name}", current.model());
    println!(
        "examples: {} labelled (weight {LABEL_WEIGHT}), {} known only from a person's decision (weight {DECISION_WEIGHT}); \
         {} fitted, {} for calibration, {} held out",
        c.labels, c.decisions, c.fit, c.calibration, c.held_out
    );
    println!(
        "calibration: {}",
        if outcome.recalibrated {
            "re-fitted on the calibration split"
        } else {
            "kept (too few calibration examples)"
        }
    );
    println!();
    println!(
        "{:<26} {:>5} {:>5} {:>7} {:>9} {:>7} {:>10} {:>6} {:>9}",
        "", "n", "mal.", "AUC", "precision", "recall", "TPR@1%FPR", "ECE", "log-loss"
    );
    print_comparison("general eval set", &outcome.general);
    match &outcome.deployment {
        DeploymentComparison::Measured(cmp) => print_comparison("deployment held-out", cmp),
        DeploymentComparison::TooFew { n, positives } => println!(
            "deployment held-out        too few: {n} ({positives} malicious); need {MIN_DEPLOYMENT_HELDOUT} with both classes"
        ),
    }
    println!();

    let install = match mode {
        InstallMode::DryRun => {
            println!(
                "dry run: nothing installed. The rule would {}: {}",
                if outcome.install {
                    "install it"
                } else {
                    "refuse it"
                },
                outcome.reason
            );
            return Ok(ExitCode::SUCCESS);
        }
        InstallMode::IfNotWorse => outcome.install,
        InstallMode::Force => {
            if !outcome.install {
                eprintln!(
                    "WARNING: --force installs a model the installation rule refused: {}",
                    outcome.reason
                );
            }
            true
        }
    };
    if !install {
        println!("NOT installed: {}", outcome.reason);
        return Ok(ExitCode::from(EXIT_NOT_INSTALLED));
    }
    let path = store.install(&outcome.model)?;
    println!("installed {name} ({}): {}", path.display(), outcome.reason);
    println!(
        "a running daemon scores new actions with it; roll back with `gatehouse classifier use {}`",
        current.model()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_comparison(title: &str, cmp: &Comparison) {
    print_row(&format!("{title} (old)"), &cmp.old, cmp.old_log_loss);
    print_row(&format!("{title} (new)"), &cmp.new, cmp.new_log_loss);
}

fn print_row(title: &str, m: &Metrics, log_loss: f64) {
    let show =
        |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
    println!(
        "{title:<26} {:>5} {:>5} {:>7} {:>9} {:>7} {:>10} {:>6} {:>9.4}",
        m.n,
        m.positives,
        show(m.auc, 4),
        show(m.precision, 3),
        show(m.recall, 3),
        show(m.tpr_at_1pct_fpr, 3),
        show(m.ece, 3),
        log_loss
    );
}

/// `gatehouse classifier versions`.
pub fn versions(dir: Option<PathBuf>) -> Result<ExitCode> {
    let store = ModelStore::in_data_dir(&data_dir(dir));
    for version in store.versions()? {
        println!(
            "{} {}  {}",
            if version.current { "*" } else { " " },
            version.name,
            version
                .path
                .as_deref()
                .map_or("(embedded)".to_owned(), |p: &Path| p.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse classifier use VERSION`.
pub fn use_version(dir: Option<PathBuf>, version: &str) -> Result<ExitCode> {
    let store = ModelStore::in_data_dir(&data_dir(dir));
    let version = version.strip_suffix(".bin").unwrap_or(version);
    store.use_version(version)?;
    println!("{version} is in force; a running daemon scores new actions with it");
    Ok(ExitCode::SUCCESS)
}
