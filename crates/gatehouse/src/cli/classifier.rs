//! `gatehouse classifier`: evaluate, retrain from the ledger, list and switch model versions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::{offline, retrain};

#[derive(Debug, Subcommand)]
pub(super) enum ClassifierCommand {
    /// AUC, precision/recall, TPR at 1% FPR, calibration and latency on held-out data.
    Eval {
        /// Weights file (default: the embedded model).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Labelled actions, JSON lines (default: the embedded held-out set).
        #[arg(long)]
        data: Option<PathBuf>,
        /// `builtin`, or `minilm`: the neural tier stacked on the built-in model, reported beside
        /// the built-in model alone on the same rows (needs a build with `--features minilm`).
        #[arg(long, default_value = "builtin", value_parser = ["builtin", "minilm"])]
        model: String,
        /// The directory scripts/fetch-minilm.sh printed (`--model minilm`).
        #[arg(long, env = "GATEHOUSE_MINILM_DIR")]
        minilm_dir: Option<PathBuf>,
    },
    /// Retrain the built-in model from this deployment's labels and decisions in the ledger,
    /// compare old and new on held-out data, and install the new version only if it is not
    /// worse (exit 2 when it is not installed). Reads the ledger read-only: safe beside a
    /// running daemon, which then scores new actions with the new version.
    Retrain {
        /// Learn from the ledger in the data directory (the only source for now).
        #[arg(long, required = true)]
        from_ledger: bool,
        /// Evaluate only; install nothing.
        #[arg(long, conflicts_with = "force")]
        dry_run: bool,
        /// Install even if the new model is worse (say why you are sure: it overrides the
        /// guard against careless or poisoned labels).
        #[arg(long)]
        force: bool,
        /// The daemon's data directory (ledger and models).
        #[arg(long, env = "GATEHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List the installed versions of the built-in model (`*` marks the one in force).
    Versions {
        #[arg(long, env = "GATEHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Put an installed version in force (e.g. roll back to the one before a retrain).
    Use {
        /// A name from `gatehouse classifier versions`, e.g. builtin-lr-v1+r1 or builtin-lr-v1.
        version: String,
        #[arg(long, env = "GATEHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub(super) fn run(command: ClassifierCommand) -> Result<ExitCode> {
    match command {
        ClassifierCommand::Eval {
            weights,
            data,
            model,
            minilm_dir,
        } if model == "minilm" => offline::classifier_eval_minilm(
            weights.as_deref(),
            data.as_deref(),
            minilm_dir.as_deref(),
        ),
        ClassifierCommand::Eval { weights, data, .. } => {
            offline::classifier_eval(weights.as_deref(), data.as_deref())
        }
        ClassifierCommand::Retrain {
            from_ledger: _,
            dry_run,
            force,
            data_dir,
        } => retrain::retrain(
            data_dir,
            if dry_run {
                retrain::InstallMode::DryRun
            } else if force {
                retrain::InstallMode::Force
            } else {
                retrain::InstallMode::IfNotWorse
            },
        ),
        ClassifierCommand::Versions { data_dir } => retrain::versions(data_dir),
        ClassifierCommand::Use { version, data_dir } => retrain::use_version(data_dir, &version),
    }
}
