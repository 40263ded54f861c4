//! Command-line interface: the argument grammar (clap) and the dispatch to one module per command
//! group — each parses nothing more, calls the daemon or a library, and prints. Commands with a
//! life of their own (hook, install/doctor, mcp, sandbox, watch) live in their own top-level
//! modules, which the dispatch calls the same way.

mod check;
mod classifier;
mod config;
mod decide;
mod grants;
mod ledger;
mod ledger_export;
mod policy;
mod policy_versions;
mod review;
mod serve;
mod target;
mod user;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use gatehouse_protocol::Decision;

pub(crate) use decide::shown_action_hash;
use target::Target;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A local action firewall for AI agents."
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(serve::ServeArgs),
    /// The MCP firewall proxy: every tools/call is checked before the server sees it.
    Mcp(crate::mcp::McpArgs),
    /// Ask the daemon about one tool call (exit 0 allow, 3 reject, 1 error).
    Check(check::CheckArgs),
    /// List actions waiting for a decision.
    Pending {
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Approve a paused action (ID may be a unique prefix of its id).
    Approve {
        id: String,
        #[arg(long)]
        note: Option<String>,
        /// Edit then approve: the input to run instead (a JSON object, or @FILE holding one);
        /// the rules re-check it and the daemon refuses an edit they would reject.
        #[arg(long, value_name = "JSON|@FILE")]
        input: Option<String>,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Deny a paused action (ID may be a unique prefix of its id).
    Deny {
        id: String,
        #[arg(long)]
        note: Option<String>,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Show recent actions from the ledger; `ledger verify` checks it, `ledger checkpoint`
    /// exports its signed head.
    Ledger {
        #[command(subcommand)]
        command: Option<ledger::LedgerCommand>,
        /// pending, decided, allow, reject or all.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Keep printing actions as they are checked, paused, scored and decided.
        #[arg(long)]
        follow: bool,
        /// Print JSON for scripts (with --follow: one JSON object per line).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Named people with their own tokens and roles (approver, reviewer, admin): add, list,
    /// remove (an admin), whoami.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Standing grants ("approve and allow similar"): list (the default), revoke ID,
    /// suggestions, stats.
    Grants {
        #[command(subcommand)]
        command: Option<grants::GrantsCommand>,
        #[command(flatten)]
        target: Target,
    },
    /// The review queue: actions the rules allowed and the classifier flagged, and human
    /// decisions that went against the score; `review label` marks one malicious or benign.
    Review {
        #[command(subcommand)]
        command: Option<review::ReviewCommand>,
        /// unlabelled (default), labelled or all.
        #[arg(long)]
        status: Option<String>,
        /// Also list every flagged action (score at or above the flag threshold).
        #[arg(long)]
        flagged: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// A terminal UI listing pending actions live: `a` approve, `d` deny (same presence rules
    /// as `gatehouse approve`), `q` quit; a desktop notification on a new pause (notify-send).
    Watch {
        #[command(flatten)]
        target: Target,
    },
    /// Print a fresh one-time login URL for the dashboard.
    Dashboard {
        #[command(flatten)]
        target: Target,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Check and test policy files (no daemon needed).
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// The built-in tier-2 classifier.
    Classifier {
        #[command(subcommand)]
        command: classifier::ClassifierCommand,
    },
    /// An agent host's hook: reads the host's payload on stdin, asks the daemon, prints the
    /// host's answer; every failure is the host's deny (exit 2). Installed by `gatehouse install`.
    Hook {
        /// claude-code, codex, gemini or cursor.
        host: String,
        /// --url URL, --data-dir DIR, --wait SECS, --pause wait|ask
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        options: Vec<String>,
    },
    /// Install Gatehouse's hooks into an agent host's settings (fail-closed options on, backup kept).
    Install(Box<crate::install::InstallArgs>),
    /// Take Gatehouse's hooks out of an agent host's settings (restoring the file byte for byte
    /// when nothing else changed it).
    Uninstall(crate::install::UninstallArgs),
    /// Check each agent host's hooks, the daemon and a live round trip; exit 1 if an installed
    /// host is left unguarded.
    Doctor(crate::doctor::DoctorArgs),
    /// Run a command confined by a profile (Landlock, namespaces, seccomp); list the profiles;
    /// probe the kernel's support.
    Sandbox(crate::sandbox::SandboxArgs),
}

impl Args {
    /// `sandbox` runs without the async runtime (its launcher stages start single-threaded).
    #[expect(
        clippy::result_large_err,
        reason = "called once at start-up; the Err is the parsed arguments, not an error"
    )]
    pub fn into_sandbox(self) -> std::result::Result<crate::sandbox::SandboxArgs, Self> {
        match self.command {
            Command::Sandbox(args) => Ok(args),
            command => Err(Self { command }),
        }
    }
}

pub async fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Sandbox(sandbox_args) => Ok(crate::sandbox::main(sandbox_args)),
        Command::Serve(serve_args) => serve::serve(serve_args).await,
        Command::Hook { host, options } => Ok(crate::hook::main(
            std::iter::once(host)
                .chain(options)
                .map(Into::into)
                .collect(),
        )),
        Command::Install(install_args) => crate::install::install(*install_args),
        Command::Uninstall(uninstall_args) => crate::install::uninstall(uninstall_args),
        Command::Doctor(doctor_args) => crate::doctor::run(doctor_args).await,
        Command::Mcp(mcp_args) => crate::mcp::run(mcp_args).await,
        Command::Check(check_args) => check::run(check_args).await,
        Command::Pending { json, target } => decide::pending(&target, json).await,
        Command::Approve {
            id,
            note,
            input: Some(input),
            json,
            target,
        } => decide::approve_edited(&target, &id, &input, note, json).await,
        Command::Approve {
            id,
            note,
            input: None,
            json,
            target,
        } => decide::decide(&target, &id, Decision::Approve, note, json).await,
        Command::Deny {
            id,
            note,
            json,
            target,
        } => decide::decide(&target, &id, Decision::Deny, note, json).await,
        Command::Ledger {
            command: Some(command),
            target,
            ..
        } => ledger::ledger_file(&target, command),
        Command::Ledger {
            command: None,
            status,
            limit,
            follow,
            json,
            target,
        } => ledger::ledger(&target, status, limit, follow, json).await,
        Command::Review {
            command: Some(command),
            target,
            ..
        } => review::label(&target, command).await,
        Command::Review {
            command: None,
            status,
            flagged,
            limit,
            json,
            target,
        } => review::review(&target, status, flagged, limit, json).await,
        Command::Watch { target } => crate::watch::run(target.approver()?, target.url()).await,
        Command::Dashboard { target } => {
            let link = target.approver()?.login_link().await?;
            println!("{}", link.url);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command } => Ok(config::run(command)),
        Command::Policy {
            command: policy::PolicyCommand::Versions(command),
        } => policy_versions::run(command).await,
        Command::Policy { command } => policy::run(command),
        Command::User { command, target } => user::run(&target, command).await,
        Command::Grants { command, target } => grants::run(&target, command).await,
        Command::Classifier { command } => classifier::run(command),
    }
}
