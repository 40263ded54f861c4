//! `gatehouse policy`: check, test, explain, print and replay policies, and import Claude Code's
//! permissions — all offline, no daemon needed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::offline;

#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Load a policy and report every error, with its line and column.
    Check { file: PathBuf },
    /// Evaluate a candidate policy (a file or a builtin name) over the actions recorded in the
    /// ledger and report what would change: newly allowed (first), newly paused, newly rejected.
    Replay {
        candidate: PathBuf,
        /// Only actions recorded in this window: 30d, 12h, 90m...
        #[arg(long, value_parser = crate::policy_replay::parse_window)]
        since: Option<std::time::Duration>,
        /// Examples kept for each kind of change.
        #[arg(long, default_value_t = gatehouse_daemon::replay::DEFAULT_EXAMPLES)]
        examples: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The daemon's data directory (where its ledger is).
        #[arg(long, env = "GATEHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run a cases file (JSON lines: {"tool","input","cwd"?,"expect":"allow|reject|pause"})
    /// against a policy; exit 1 on any mismatch.
    Test { file: PathBuf, cases: PathBuf },
    /// Explain one action: each rule considered (matched or not, and why), the parsed command
    /// tree and the final verdict. FILE may be a builtin name such as builtin:developer.
    Explain {
        file: PathBuf,
        /// The action as JSON ({"tool","input","cwd"?,"session_id"?,"agent"?}), or `-` to read
        /// it from standard input.
        action: String,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Versions(super::policy_versions::VersionCommand),
    /// Print a built-in policy (`developer`, `strict`, `observe`, `default`, with or without `builtin:`).
    Print {
        #[arg(default_value = "developer")]
        name: String,
    },
    /// Convert a Claude Code settings.json (permissions.allow/ask/deny) into policy TOML;
    /// entries that cannot be translated are listed as comments and warned about on stderr.
    ImportClaude {
        /// The settings file, e.g. .claude/settings.json.
        path: PathBuf,
        /// Write the policy here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Do not start the policy from builtin:developer.
        #[arg(long)]
        no_include: bool,
        /// The project root Claude Code's `/path` patterns are relative to (default: the
        /// directory holding `.claude/`).
        #[arg(long)]
        project_root: Option<PathBuf>,
    },
}

pub(super) fn run(command: PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::Check { file } => offline::policy_check(&file),
        PolicyCommand::Replay {
            candidate,
            since,
            examples,
            json,
            data_dir,
        } => crate::policy_replay::run(crate::policy_replay::ReplayRequest {
            candidate,
            since,
            examples,
            json,
            data_dir,
        }),
        PolicyCommand::Test { file, cases } => offline::policy_test(&file, &cases),
        PolicyCommand::Explain { file, action, json } => {
            offline::policy_explain(&file, &action, json)
        }
        PolicyCommand::ImportClaude {
            path,
            output,
            no_include,
            project_root,
        } => offline::import_claude(&path, output.as_deref(), !no_include, project_root),
        PolicyCommand::Print { name } => print_builtin(&name),
        // Routed to the daemon before this (`cli::run`): they need the async runtime.
        PolicyCommand::Versions(_) => bail!("policy push/history/rollback talk to the daemon"),
    }
}

/// `policy print NAME`: a built-in policy's source, named with or without `builtin:`.
fn print_builtin(name: &str) -> Result<ExitCode> {
    let full = if name.starts_with("builtin:") {
        name.to_owned()
    } else {
        format!("builtin:{name}")
    };
    match gatehouse_policy::builtin_source(&full) {
        Some(source) => {
            print!("{source}");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "no built-in policy `{name}` (known: {})",
            gatehouse_policy::BUILTIN_NAMES.join(", ")
        ),
    }
}
