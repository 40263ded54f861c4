//! Command-line interface: argument parsing and one function per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use gatehouse_client::{ActionQuery, Client, ReviewQuery};
use gatehouse_daemon::auth::{AGENT_TOKEN_FILE, APPROVER_TOKEN_FILE};
use gatehouse_daemon::{Config, Daemon, LEDGER_KEY_FILE, Overrides};
use gatehouse_protocol::{CheckRequest, Decision, Event, ReviewLabel, Verdict};

use crate::{display, offline, retrain};

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

/// Where a running daemon is and how to find its tokens.
#[derive(Debug, clap::Args)]
struct Target {
    /// The daemon's URL (`unix:PATH` for its check socket: agent commands only). Default: the
    /// one the daemon wrote to DATA_DIR/daemon.url, else http://127.0.0.1:7400.
    #[arg(long, env = "GATEHOUSE_URL", global = true)]
    url: Option<String>,
    /// The daemon's data directory (where its tokens are).
    #[arg(long, env = "GATEHOUSE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

/// Where the CLI looks for a daemon when neither `--url`, `GATEHOUSE_URL` nor a URL file says.
const DEFAULT_URL: &str = "http://127.0.0.1:7400";

impl Target {
    /// `--url` or `GATEHOUSE_URL`; else the URL the daemon wrote to `DATA_DIR/daemon.url`; else
    /// [`DEFAULT_URL`].
    fn url(&self) -> String {
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            return url.to_owned();
        }
        let data_dir = Config {
            data_dir: self.data_dir.clone(),
            ..Config::default()
        }
        .resolve_data_dir();
        url_from_file(&data_dir).unwrap_or_else(|| DEFAULT_URL.to_owned())
    }

    fn token(&self, file: &str, env: &str) -> Result<String> {
        if let Ok(token) = std::env::var(env)
            && !token.is_empty()
        {
            return Ok(token);
        }
        let config = Config {
            data_dir: self.data_dir.clone(),
            ..Config::default()
        };
        let path = config.resolve_data_dir().join(file);
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} (set {env} or --data-dir)", path.display()))?;
        Ok(token.trim().to_owned())
    }

    fn approver(&self) -> Result<Client> {
        let token = self.token(APPROVER_TOKEN_FILE, "GATEHOUSE_APPROVER_TOKEN")?;
        Ok(Client::new(&self.url(), &token)?)
    }

    /// The agent's client. On the check socket (`--url unix:PATH`) the token is sent if there
    /// is one to read: in hardened mode the agent's user cannot read it, and the socket needs none.
    fn agent(&self) -> Result<Client> {
        let url = self.url();
        let token = if url.trim().starts_with("unix:") {
            self.token(AGENT_TOKEN_FILE, "GATEHOUSE_TOKEN")
                .unwrap_or_default()
        } else {
            self.token(AGENT_TOKEN_FILE, "GATEHOUSE_TOKEN")?
        };
        Ok(Client::new(&url, &token)?)
    }

    /// An agent on the daemon's check socket at `socket` (`--socket`, `GATEHOUSE_SOCKET`).
    fn socket_agent(&self, socket: &std::path::Path) -> Result<Client> {
        let token = self
            .token(AGENT_TOKEN_FILE, "GATEHOUSE_TOKEN")
            .unwrap_or_default();
        Ok(Client::unix(socket, &token)?)
    }
}

/// The URL in `DATA_DIR/daemon.url`, if it is one the daemon wrote: a regular file owned by
/// the data directory's owner and writable by no one else, naming a loopback `http://` address.
/// The approver token is sent there, so a URL file anyone else could have put there is ignored.
fn url_from_file(data_dir: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let path = data_dir.join(gatehouse_daemon::URL_FILE);
    let file = std::fs::symlink_metadata(&path).ok()?;
    let dir = std::fs::metadata(data_dir).ok()?;
    if !file.is_file() || file.uid() != dir.uid() || file.mode() & 0o022 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let url = text.trim();
    let rest = url.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    let addr: std::net::SocketAddr = host.parse().ok()?;
    addr.ip().is_loopback().then(|| url.to_owned())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// The MCP firewall proxy: every tools/call is checked before the server sees it.
    Mcp(crate::mcp::McpArgs),
    /// Ask the daemon about one tool call (exit 0 allow, 3 reject, 1 error).
    Check {
        /// Tool name, e.g. Bash.
        #[arg(long)]
        tool: String,
        /// The tool's input as a JSON object, e.g. '{"command":"ls"}'.
        #[arg(long)]
        input: String,
        #[arg(long)]
        session_id: Option<String>,
        #[arg(long)]
        tool_use_id: Option<String>,
        #[arg(long)]
        cwd: Option<String>,
        /// Give up (and fail closed) after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Ask over the daemon's check socket (hardened mode) instead of --url.
        #[arg(long, env = "GATEHOUSE_SOCKET")]
        socket: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
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
        command: Option<LedgerCommand>,
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
    /// The review queue: actions the rules allowed and the classifier flagged, and human
    /// decisions that went against the score; `review label` marks one malicious or benign.
    Review {
        #[command(subcommand)]
        command: Option<ReviewCommand>,
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
        command: ConfigCommand,
    },
    /// Check and test policy files (no daemon needed).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The built-in tier-2 classifier.
    Classifier {
        #[command(subcommand)]
        command: ClassifierCommand,
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

#[derive(Debug, Subcommand)]
enum PolicyCommand {
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

#[derive(Debug, Subcommand)]
enum ClassifierCommand {
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

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Verify the ledger file in the data directory: SQLite's integrity, the hash chain and
    /// the signed checkpoints (exit 0 intact, 4 tampered or damaged, 1 cannot check).
    Verify {
        /// Check only the newest this-many chain entries (and the latest checkpoint).
        #[arg(long)]
        tail: Option<u64>,
        /// Run SQLite's full integrity_check instead of quick_check.
        #[arg(long)]
        full_integrity_check: bool,
        /// A checkpoint exported earlier (`ledger checkpoint --export`) that the chain must
        /// still match; repeatable.
        #[arg(long)]
        anchor: Vec<PathBuf>,
    },
    /// What happened to tool calls after their hosts ran them (agent hooks' outcomes), newest
    /// first; `--flagged`: only those that ran around the firewall.
    Outcomes {
        #[arg(long)]
        flagged: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Signed checkpoints of the chain head.
    Checkpoint {
        /// Write the latest signed checkpoint as JSON to this file (`-` for stdout).
        #[arg(long)]
        export: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ReviewCommand {
    /// Record a label on an action in the ledger (labelling again appends; the latest counts).
    Label {
        id: String,
        #[arg(value_parser = ["malicious", "benign"])]
        label: String,
        /// Why (saved with the label).
        #[arg(long)]
        note: Option<String>,
    },
}

/// Exit code of `gatehouse ledger verify` for a ledger that failed verification.
const EXIT_TAMPERED: u8 = 4;

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the default configuration file.
    PrintDefault,
    /// List the GATEHOUSE_* environment variables gatehouse reads, and what each is for.
    Env,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Listen on a non-loopback address.
    #[arg(long)]
    allow_remote: bool,
    /// Data directory (ledger and tokens).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Policy file (TOML); the built-in policy if absent.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// crash-safe or power-safe.
    #[arg(long)]
    durability: Option<String>,
    /// Also serve the check API on this Unix socket (hardened mode; docs/SECURITY.md).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Refuse to start if other users could change the data directory, its secrets or the
    /// policy file (hardened mode; needs a socket).
    #[arg(long)]
    hardened: bool,
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
        Command::Serve(serve_args) => serve(serve_args).await,
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
        Command::Check {
            tool,
            input,
            session_id,
            tool_use_id,
            cwd,
            timeout,
            socket,
            target,
        } => {
            let input: serde_json::Value =
                serde_json::from_str(&input).context("--input is not JSON")?;
            let serde_json::Value::Object(input) = input else {
                bail!("--input must be a JSON object");
            };
            let request = CheckRequest {
                tool,
                input,
                session_id,
                agent: Some("gatehouse-cli".into()),
                tool_use_id,
                cwd,
                context: None,
                wait_ms: None,
                can_confine: false,
            };
            let client = match &socket {
                Some(socket) => target.socket_agent(socket)?,
                None => target.agent()?,
            };
            let Some(response) = check_telling_the_person(&client, request, timeout).await? else {
                return Ok(ExitCode::FAILURE);
            };
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(match response.verdict {
                Verdict::Allow => ExitCode::SUCCESS,
                _ => ExitCode::from(3),
            })
        }
        Command::Pending { json, target } => pending(&target, json).await,
        Command::Approve {
            id,
            note,
            json,
            target,
        } => decide(&target, &id, Decision::Approve, note, json).await,
        Command::Deny {
            id,
            note,
            json,
            target,
        } => decide(&target, &id, Decision::Deny, note, json).await,
        Command::Ledger {
            command: Some(command),
            target,
            ..
        } => ledger_file(&target, command),
        Command::Ledger {
            command: None,
            status,
            limit,
            follow,
            json,
            target,
        } => ledger(&target, status, limit, follow, json).await,
        Command::Review {
            command: Some(ReviewCommand::Label { id, label, note }),
            target,
            ..
        } => {
            let label = ReviewLabel::parse(&label)
                .ok_or_else(|| anyhow!("`{label}` is not malicious or benign"))?;
            let client = target.approver()?;
            let id = resolve_action_id(&client, &id, false).await?;
            let labelled = client.label(&id, label, note.as_deref()).await?;
            println!(
                "{}  labelled {}",
                labelled.action_id,
                labelled.label.label.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Review {
            command: None,
            status,
            flagged,
            limit,
            json,
            target,
        } => review(&target, status, flagged, limit, json).await,
        Command::Watch { target } => crate::watch::run(target.approver()?, target.url()).await,
        Command::Dashboard { target } => {
            let link = target.approver()?.login_link().await?;
            println!("{}", link.url);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::PrintDefault,
        } => {
            print!("{}", Config::default_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Env,
        } => {
            crate::env_vars::print_known();
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command } => match command {
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
            PolicyCommand::Print { name } => {
                let full = if name.starts_with("builtin:") {
                    name.clone()
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
        },
        Command::Classifier {
            command:
                ClassifierCommand::Eval {
                    weights,
                    data,
                    model,
                    minilm_dir,
                },
        } if model == "minilm" => offline::classifier_eval_minilm(
            weights.as_deref(),
            data.as_deref(),
            minilm_dir.as_deref(),
        ),
        Command::Classifier {
            command: ClassifierCommand::Eval { weights, data, .. },
        } => offline::classifier_eval(weights.as_deref(), data.as_deref()),
        Command::Classifier {
            command:
                ClassifierCommand::Retrain {
                    from_ledger: _,
                    dry_run,
                    force,
                    data_dir,
                },
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
        Command::Classifier {
            command: ClassifierCommand::Versions { data_dir },
        } => retrain::versions(data_dir),
        Command::Classifier {
            command: ClassifierCommand::Use { version, data_dir },
        } => retrain::use_version(data_dir, &version),
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.allow_remote |= args.allow_remote;
    if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    if let Some(policy) = args.policy {
        config.policy = Some(policy);
    }
    if let Some(durability) = args.durability {
        config.ledger.durability = durability;
    }
    if let Some(socket) = args.socket {
        config.hardened.socket = Some(socket);
    }
    config.hardened.enabled |= args.hardened;
    let daemon = Daemon::start(config, Overrides::default()).await?;
    println!("gatehouse listening on {}", daemon.base_url());
    if let Some(socket) = daemon.socket_path() {
        println!("check socket: {}", socket.display());
    }
    println!("data directory: {}", daemon.data_dir().display());
    show_secrets_on_terminal(&daemon);
    daemon.serve(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `gatehouse review`: the newest page of the queue, printed oldest first (the newest ends up
/// next to the prompt), with why each action is there and its latest label.
async fn review(
    target: &Target,
    status: Option<String>,
    include_flagged: bool,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let list = target
        .approver()?
        .review(&ReviewQuery {
            status,
            include_flagged,
            limit: Some(limit),
            before: None,
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let style = display::Style::stdout();
    println!(
        "{} unlabelled, {} labelled  (model {}, flag >= {:.2}, disagreement >= {:.2})",
        list.unlabelled,
        list.labelled,
        display::terminal_safe(&list.classifier.model, 40),
        list.classifier.flag_threshold,
        list.classifier.disagreement_threshold,
    );
    for item in list.items.iter().rev() {
        let label = item.label.as_ref().map_or("-", |l| l.label.as_str());
        println!(
            "{:<16} {:<9} {}",
            item.reason.as_str(),
            label,
            style.line(&item.action)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    target: &Target,
    id: &str,
    decision: Decision,
    note: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    // The decision names the action as shown here, by the hash of what is shown: an action
    // that is not the one displayed (another, or an edited one) is refused by the daemon.
    let client = target.approver()?;
    let id = &resolve_action_id(&client, id, true).await?;
    let shown = client.action(id).await?;
    let verb = match decision {
        Decision::Approve => "approving",
        Decision::Deny => "denying",
    };
    eprintln!("{verb}: {}", display::line(&shown));
    let hash = shown_action_hash(&shown)?;
    let action = match client
        .decide(id, decision, note.as_deref(), Some(&hash))
        .await
    {
        Ok(action) => action,
        // Person presence (the default): a token is not a person. The person confirms in the
        // dashboard with their authenticator; this waits for the decision and shows it.
        Err(gatehouse_client::ClientError::Api { code, .. }) if code == "presence_required" => {
            confirm_in_dashboard(target, &client, id).await?
        }
        Err(err) => return Err(err.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&action)?);
    } else {
        println!("{}", display::Style::stdout().line(&action));
    }
    // Exit 0 only if the action ended as asked: meanwhile the person may have decided otherwise
    // in the dashboard, or its deadline rejected it.
    let asked = match decision {
        Decision::Approve => Verdict::Allow,
        Decision::Deny => Verdict::Reject,
    };
    Ok(if action.verdict == asked {
        ExitCode::SUCCESS
    } else {
        eprintln!("not {verb}: the action is {}", action.verdict.as_str());
        ExitCode::from(4)
    })
}

/// How long `gatehouse approve`/`deny` waits for the person to confirm in the dashboard.
const CONFIRM_WAIT: Duration = Duration::from_secs(300);

/// Prints where to confirm (the dashboard on `localhost`, where the authenticator works) and
/// waits, polling, until the action is decided or `CONFIRM_WAIT` passes. The CLI itself never
/// decides: an agent that runs it gets the same answer and nothing more.
async fn confirm_in_dashboard(
    target: &Target,
    client: &gatehouse_client::Client,
    id: &str,
) -> Result<gatehouse_protocol::ActionView> {
    let origin = target
        .url()
        .trim_end_matches('/')
        .replacen("://127.0.0.1:", "://localhost:", 1)
        .replacen("://[::1]:", "://localhost:", 1);
    eprintln!(
        "confirm it in the dashboard with your authenticator: {origin}/#action={}\n\
         (decisions need the person's presence: approvals.presence = \"webauthn\"; run \
         `gatehouse dashboard` for a login link) — waiting up to {} s…",
        display::terminal_safe(id, 64),
        CONFIRM_WAIT.as_secs()
    );
    let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
    loop {
        let action = client.action(id).await?;
        if action.verdict != Verdict::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(action);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The dashboard login link and the presence enrolment code are secrets: they go to the
/// controlling terminal only (`/dev/tty`), never to stdout — which may be a pipe, a file or a
/// journal an agent can read — nor to the log. Without a terminal they are not shown at all.
fn show_secrets_on_terminal(daemon: &Daemon) {
    use std::io::Write as _;
    let mut secrets = vec![format!("dashboard login: {}", daemon.login_url())];
    if let Some(code) = daemon.enrolment_code() {
        secrets.push(format!(
            "presence enrolment code: {code}  (no authenticator is enrolled: open the dashboard and \
             enrol yours with this code; it is shown here only)"
        ));
    }
    let shown = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .and_then(|mut tty| {
            for line in &secrets {
                writeln!(tty, "{line}")?;
            }
            tty.flush()
        })
        .is_ok();
    if shown {
        println!(
            "dashboard login: shown on the terminal only (`gatehouse dashboard` prints another)"
        );
    } else {
        println!(
            "dashboard login: no terminal, so not printed; run `gatehouse dashboard` for a one-time link"
        );
        if daemon.enrolment_code().is_some() {
            println!(
                "presence: no authenticator enrolled; start `gatehouse serve` from a terminal to see \
                 the enrolment code (hardened mode: DATA_DIR/enrolment.code, readable by the daemon's user)"
            );
        }
    }
}

/// The hash of the action as displayed, computed here rather than taken on trust; it must be
/// the one the daemon reports.
pub(crate) fn shown_action_hash(shown: &gatehouse_protocol::ActionView) -> Result<String> {
    let input = shown
        .input
        .as_object()
        .ok_or_else(|| anyhow!("action {}: its input is not a JSON object", shown.action_id))?;
    let hash = gatehouse_ledger::action_hash::to_hex(
        &gatehouse_ledger::ActionIdentity {
            tool: &shown.tool,
            input,
            cwd: shown.cwd.as_deref(),
            session_id: shown.session_id.as_deref(),
            tool_use_id: shown.tool_use_id.as_deref(),
        }
        .hash(),
    );
    if hash != shown.action_hash {
        bail!(
            "action {}: the daemon's action_hash does not match the action it showed; nothing was decided",
            shown.action_id
        );
    }
    Ok(hash)
}

/// `ledger verify` and `ledger checkpoint`: they read the ledger file itself (read-only), so
/// they work whether or not the daemon runs, and do not trust it.
fn ledger_file(target: &Target, command: LedgerCommand) -> Result<ExitCode> {
    let data_dir = Config {
        data_dir: target.data_dir.clone(),
        ..Config::default()
    }
    .resolve_data_dir();
    let path = data_dir.join("ledger.db");
    match command {
        LedgerCommand::Verify {
            tail,
            full_integrity_check,
            anchor,
        } => {
            // No ledger and no signing key: nothing was ever recorded here (a wrong --data-dir,
            // most likely) — "cannot check", not "tampered". A key without its ledger is
            // different: the ledger existed and is gone, which verification reports below.
            if !path.exists() && !data_dir.join(LEDGER_KEY_FILE).exists() {
                eprintln!(
                    "gatehouse: cannot check: there is no ledger at {} (is --data-dir or GATEHOUSE_DATA_DIR right?)",
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            let mut anchors = Vec::new();
            for file in &anchor {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                anchors.push(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not an exported checkpoint", file.display())
                })?);
            }
            let options = gatehouse_ledger::VerifyOptions {
                tail,
                full_integrity_check,
                public_key: gatehouse_ledger::public_key(&data_dir.join(LEDGER_KEY_FILE))?,
                anchors,
            };
            match gatehouse_ledger::verify_file(&path, &options) {
                Ok(report) => {
                    println!(
                        "ledger intact: {} chain entries ({} checked), head {} at entry {}, {} checkpoint(s) checked",
                        report.entries,
                        report.checked,
                        hex(&report.head.hash),
                        report.head.seq,
                        report.checkpoints
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(failure) => {
                    println!("LEDGER VERIFICATION FAILED ({}): {failure}", path.display());
                    Ok(ExitCode::from(EXIT_TAMPERED))
                }
            }
        }
        LedgerCommand::Outcomes { flagged, limit } => {
            crate::outcomes::print(&target.url(), target.data_dir.as_deref(), flagged, limit)
        }
        LedgerCommand::Checkpoint { export } => {
            let checkpoint = gatehouse_ledger::latest_checkpoint_in_file(&path)?.ok_or_else(|| {
                anyhow!("the ledger has no signed checkpoint yet (the daemon signs one every ledger.sign_interval_secs and at shutdown)")
            })?;
            let json = serde_json::to_string_pretty(&checkpoint)? + "\n";
            if export.as_os_str() == "-" {
                print!("{json}");
            } else {
                std::fs::write(&export, json)
                    .with_context(|| format!("cannot write {}", export.display()))?;
                eprintln!(
                    "checkpoint of chain entry {} written to {}",
                    checkpoint.chain_seq,
                    export.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `gatehouse check`: asks once without waiting, so that a pause can be announced on stderr
/// (which action, how to approve or deny it) before waiting for the decision; then waits, like
/// [`Client::check`], until `timeout_secs`. `None`: still pending at the deadline (said on
/// stderr, with the id) — the caller fails closed.
async fn check_telling_the_person(
    client: &Client,
    mut request: CheckRequest,
    timeout_secs: u64,
) -> Result<Option<gatehouse_protocol::CheckResponse>> {
    let timeout = Duration::from_secs(timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    request.wait_ms = Some(0);
    let first = client.check_once(&request).await?;
    if first.verdict != Verdict::Pending {
        return Ok(Some(first));
    }
    let id = display::terminal_safe(&first.action_id, 64);
    eprintln!(
        "gatehouse: action {id} ({} {}) is paused for a person's decision: approve it with \
         `gatehouse approve {id}` (or `gatehouse deny {id}`), or in the dashboard \
         (`gatehouse dashboard` prints a login link); waiting up to {timeout_secs} s…",
        display::terminal_safe(&request.tool, 40),
        display::terminal_safe(&compact_input(&request.input), 100),
    );
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            eprintln!(
                "gatehouse: timed out: action {id} is still pending after {timeout_secs} s; \
                 treated as not allowed (exit 1). It stays in `gatehouse pending` until decided \
                 or its deadline."
            );
            return Ok(None);
        }
        let wait = left.min(Duration::from_secs(25));
        let polled = match client.poll_action(&first.action_id, wait).await {
            Ok(polled) => polled,
            Err(gatehouse_client::ClientError::Timeout) => continue,
            Err(err) => return Err(err.into()),
        };
        if polled.verdict != Verdict::Pending {
            return Ok(Some(polled));
        }
    }
}

/// The command of a shell tool, or the input as JSON: what the person is asked about.
fn compact_input(input: &serde_json::Map<String, serde_json::Value>) -> String {
    match input.get("command").and_then(|c| c.as_str()) {
        Some(command) => command.to_owned(),
        None => serde_json::Value::Object(input.clone()).to_string(),
    }
}

/// `gatehouse pending`: the actions waiting for a person, oldest first (the newest ends up next
/// to the prompt), as a table or (`--json`) an array.
async fn pending(target: &Target, json: bool) -> Result<ExitCode> {
    let query = ActionQuery {
        status: Some("pending".into()),
        limit: Some(500),
        before: None,
    };
    let mut list = target.approver()?.actions(&query).await?;
    list.actions.reverse();
    if json {
        println!("{}", serde_json::to_string_pretty(&list.actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.actions.is_empty() {
        println!("no pending actions");
        return Ok(ExitCode::SUCCESS);
    }
    let style = display::Style::stdout();
    println!("{}", style.header());
    for action in &list.actions {
        println!("{}", style.line(action));
    }
    Ok(ExitCode::SUCCESS)
}

/// The shortest prefix people type for an action id (`act_` and at least this many more).
const MIN_ID_PREFIX: usize = 4;

/// The full id of the action `given` names: itself if the daemon knows it, else the one action
/// whose id starts with it — among the pending actions when `pending_only`, else among the
/// ledger's newest 500. An ambiguous prefix is an error listing the candidates.
async fn resolve_action_id(client: &Client, given: &str, pending_only: bool) -> Result<String> {
    match client.action(given).await {
        Ok(_) => return Ok(given.to_owned()),
        // Not found, or refused as malformed: it may still be a prefix.
        Err(gatehouse_client::ClientError::Api {
            status: 404 | 400, ..
        }) => {}
        Err(err) => return Err(err.into()),
    }
    let typed = given.strip_prefix("act_").unwrap_or(given);
    if typed.chars().count() < MIN_ID_PREFIX {
        bail!(
            "no action {} (an id prefix needs at least {MIN_ID_PREFIX} characters after `act_`)",
            display::terminal_safe(given, 64)
        );
    }
    let query = ActionQuery {
        status: pending_only.then(|| "pending".to_owned()),
        limit: Some(500),
        before: None,
    };
    let list = client.actions(&query).await?;
    let prefix = format!("act_{typed}");
    let candidates: Vec<_> = list
        .actions
        .iter()
        .filter(|a| a.action_id.starts_with(&prefix))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.action_id.clone()),
        [] => bail!(
            "no {}action starts with {}",
            if pending_only { "pending " } else { "" },
            display::terminal_safe(given, 64)
        ),
        many => bail!(
            "{} is ambiguous: it starts {} actions:\n{}",
            display::terminal_safe(given, 64),
            many.len(),
            many.iter()
                .map(|a| format!("  {}", display::line(a)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

async fn ledger(
    target: &Target,
    status: Option<String>,
    limit: u32,
    follow: bool,
    json: bool,
) -> Result<ExitCode> {
    let client = target.approver()?;
    let mut list = client
        .actions(&ActionQuery {
            status,
            limit: Some(limit),
            before: None,
        })
        .await?;
    list.actions.reverse();
    let style = display::Style::stdout();
    // What has been printed, so each action's verdict is shown once per change.
    let mut shown = std::collections::HashSet::new();
    if json && !follow {
        println!("{}", serde_json::to_string_pretty(&list.actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !json && !follow {
        println!("{}", style.header());
    }
    for action in &list.actions {
        shown.insert(action.action_id.clone());
        if json {
            println!(
                "{}",
                serde_json::json!({"type": "action.listed", "action": action})
            );
        } else {
            println!("{}", style.line(action));
        }
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let token = target.token(APPROVER_TOKEN_FILE, "GATEHOUSE_APPROVER_TOKEN")?;
    let ws_url = format!(
        "{}/v1/events",
        target.url().trim_end_matches('/').replacen("http", "ws", 1)
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("cannot open the daemon's event stream")?;
    while let Some(message) = socket.next().await {
        let message = message?;
        let Ok(text) = message.to_text() else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let event = serde_json::from_str::<Event>(text)
            .map_err(|err| anyhow!("unexpected event from the daemon: {err}"))?;
        // Actions the rules allowed or rejected at once have no event of their own; every
        // action is scored, so the first event about an unseen action fetches it and shows
        // its verdict (`checked`).
        if let Event::ActionScored { action_id, .. } = &event
            && shown.insert(action_id.clone())
            && let Ok(action) = client.action(action_id).await
            && action.verdict != Verdict::Pending
        {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"type": "action.checked", "action": action})
                );
            } else {
                println!("checked  {}", style.line(&action));
            }
        }
        if let Event::ActionPending { action } | Event::ActionDecided { action } = &event {
            shown.insert(action.action_id.clone());
        }
        if json {
            println!("{}", serde_json::to_string(&event)?);
            continue;
        }
        match event {
            Event::ActionPending { action } => println!("paused   {}", style.line(&action)),
            Event::ActionDecided { action } => println!("decided  {}", style.line(&action)),
            Event::ActionScored {
                action_id,
                tier2,
                tier2_status,
                disagreement,
            } => println!(
                "scored   {}  {}{}{}",
                display::terminal_safe(&action_id, 64),
                tier2_status.as_str(),
                tier2
                    .map(|t| format!(
                        " {:.2} {} ({})",
                        t.score,
                        display::terminal_safe(&t.label, 30),
                        display::terminal_safe(&t.model, 30)
                    ))
                    .unwrap_or_default(),
                if disagreement { "  DISAGREEMENT" } else { "" }
            ),
            Event::ActionLabelled { action_id, label } => println!(
                "labelled {}  {}{}",
                display::terminal_safe(&action_id, 64),
                label.label.as_str(),
                label
                    .reviewer
                    .map(|r| format!(" by {}", display::terminal_safe(&r, 40)))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
