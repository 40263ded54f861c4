//! `gatehouse policy push FILE`, `policy history`, `policy rollback N`: the versioned policy
//! kept in the daemon's ledger (who pushed what, when, and the diff), put in force atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::Target;
use crate::display;

/// The policy subcommands that talk to the running daemon.
#[derive(Debug, clap::Subcommand)]
pub(super) enum VersionCommand {
    /// Record FILE as the next policy version in the daemon's ledger and put it in force (an
    /// admin; refused with every error if it does not load). From then on the daemon's
    /// policy is the ledger's latest version, not its policy file.
    Push {
        file: PathBuf,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The pushed versions, newest first: who, when, and the diff against the one before.
    History {
        /// Leave the diffs out.
        #[arg(long)]
        no_diff: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Push version N's text again as a new version (an admin).
    Rollback {
        version: i64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

pub(super) async fn run(command: VersionCommand) -> Result<ExitCode> {
    match command {
        VersionCommand::Push { file, json, target } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let pushed = target.approver()?.push_policy(&text).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pushed)?);
            } else {
                println!(
                    "policy version {} pushed by {} is in force (sha256 {})",
                    pushed.version, pushed.pushed_by, pushed.sha256
                );
            }
        }
        VersionCommand::History {
            no_diff,
            json,
            target,
        } => {
            let history = target.approver()?.policy_history().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&history)?);
                return Ok(ExitCode::SUCCESS);
            }
            if history.versions.is_empty() {
                println!(
                    "no policy versions pushed: the daemon's policy file (or built-in policy) is in force"
                );
            }
            for version in &history.versions {
                let current = if history.current == Some(version.version) {
                    " (in force)"
                } else {
                    ""
                };
                let rollback = version
                    .rollback_of
                    .map(|n| format!(", a rollback to version {n}"))
                    .unwrap_or_default();
                println!(
                    "version {}{current}: pushed by {} at {}{rollback}",
                    version.version,
                    version.pushed_by,
                    display::timestamp(version.pushed_at_ms)
                );
                if let Some(diff) = version.diff.as_deref().filter(|_| !no_diff) {
                    for line in diff.lines().filter(|l| !l.starts_with(' ')) {
                        println!("    {line}");
                    }
                }
            }
        }
        VersionCommand::Rollback {
            version,
            json,
            target,
        } => {
            let pushed = target.approver()?.rollback_policy(version).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pushed)?);
            } else {
                println!(
                    "version {version}'s policy is in force again as version {}",
                    pushed.version
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
