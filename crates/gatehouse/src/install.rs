//! `gatehouse install <host>` and `gatehouse uninstall <host>`: parse, call the installer in
//! `gatehouse_hosts::install`, print what was done.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use gatehouse_hosts::Host;
use gatehouse_hosts::install::{
    self, HookCommand, HostEnv, InstallRequest, Scope, Transport, Undone,
};
use gatehouse_hosts::version::Version;

use crate::hook::DEFAULT_WAIT_SECS;

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// claude-code, codex, gemini or cursor.
    host: String,
    /// user (every project), project (one project's settings) or managed (the machine's).
    #[arg(long, default_value = "user")]
    scope: String,
    /// The project directory for --scope project (default: the current directory).
    #[arg(long)]
    project: Option<PathBuf>,
    /// Print what would be written; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The host's version, when its CLI cannot be asked (e.g. 2.1.328).
    #[arg(long)]
    host_version: Option<String>,
    /// The daemon's URL the hook asks (default http://127.0.0.1:7400; unix:PATH for the check socket).
    #[arg(long, env = "GATEHOUSE_URL")]
    url: Option<String>,
    /// The daemon's data directory (where the agent token is); written into the hook.
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// How long the hook waits for a person on a paused call, in seconds; the host's hook
    /// timeout is set 30 s above it.
    #[arg(long, default_value_t = DEFAULT_WAIT_SECS)]
    wait: u64,
    /// What a pause becomes: `wait` for the person, or `ask` (Claude Code, Cursor: the host's
    /// own prompt, recorded as such in the ledger).
    #[arg(long, default_value = "wait", value_parser = ["wait", "ask"])]
    pause: String,
    /// `command` (a hook process per event) or `http` (Claude Code posts to the daemon; needs
    /// GATEHOUSE_TOKEN in Claude Code's environment).
    #[arg(long, default_value = "command", value_parser = ["command", "http"])]
    transport: String,
    /// The gatehouse binary the hook runs (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// claude-code, codex, gemini or cursor.
    host: String,
    #[arg(long, default_value = "user")]
    scope: String,
    #[arg(long)]
    project: Option<PathBuf>,
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

/// The absolute data directory (the default one when none is given).
pub fn data_dir(given: Option<&Path>) -> PathBuf {
    let config = gatehouse_daemon::Config {
        data_dir: given.map(Path::to_path_buf),
        ..gatehouse_daemon::Config::default()
    };
    let dir = config.resolve_data_dir();
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Where install manifests and backups are kept.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("hosts")
}

fn project_dir(scope: Scope, project: Option<PathBuf>) -> Result<Option<PathBuf>> {
    match (scope, project) {
        (Scope::Project, Some(dir)) => Ok(Some(std::path::absolute(&dir)?)),
        (Scope::Project, None) => Ok(Some(std::env::current_dir()?)),
        (_, project) => Ok(project),
    }
}

/// Runs `<program> --version` (30 s at most: Gemini CLI's takes ~7-12 s on a busy 2-core
/// machine) and finds the version in what it prints.
pub fn probe_version(host: Host) -> Option<(Version, String)> {
    let program = host.program()?;
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(30)).ok();
    let _ = child.kill();
    let _ = child.wait();
    let text = text?;
    Some((Version::find_in(&text)?, text.trim().to_owned()))
}

pub fn install(args: InstallArgs) -> Result<ExitCode> {
    let host: Host = args.host.parse()?;
    let scope: Scope = args.scope.parse().map_err(|e: String| anyhow!(e))?;
    let project = project_dir(scope, args.project)?;
    let data_dir = data_dir(args.data_dir.as_deref());
    let gatehouse = match args.binary {
        Some(path) => std::path::absolute(path)?,
        None => std::env::current_exe().context("cannot tell where this gatehouse binary is")?,
    };
    let version = match &args.host_version {
        Some(text) => Some(text.parse::<Version>()?),
        None => probe_version(host).map(|(v, _)| v),
    };
    let url = args.url.clone();
    let request = InstallRequest {
        host,
        scope,
        project,
        command: HookCommand {
            gatehouse,
            url: url.clone(),
            data_dir: Some(data_dir.clone()),
            wait_secs: args.wait,
            pause_ask: args.pause == "ask",
        },
        transport: match args.transport.as_str() {
            "http" => Transport::Http {
                url: url.unwrap_or_else(|| "http://127.0.0.1:7400".into()),
            },
            _ => Transport::Command,
        },
        version,
    };
    let env = HostEnv::from_process();
    let plan = install::plan(&request, &env)?;
    for change in &plan.changes {
        let what = if change.before.is_some() {
            "update"
        } else {
            "create"
        };
        if args.dry_run {
            println!("would {what} {}:", change.path.display());
            println!("{}", String::from_utf8_lossy(&change.after));
        }
    }
    if args.dry_run {
        for note in &plan.notes {
            println!("note: {note}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let manifest = install::apply(&plan, &state_dir(&data_dir))?;
    println!(
        "installed Gatehouse for {host} ({} scope{})",
        scope.as_str(),
        version.map(|v| format!(", {host} {v}")).unwrap_or_default()
    );
    for change in &plan.changes {
        println!("  wrote {}", change.path.display());
    }
    for note in &plan.notes {
        println!("  {note}");
    }
    println!(
        "  backup and manifest: {} (`gatehouse uninstall {host}` restores the settings)",
        manifest.display()
    );
    println!("  check it: gatehouse doctor");
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(args: UninstallArgs) -> Result<ExitCode> {
    let host: Host = args.host.parse()?;
    let scope: Scope = args.scope.parse().map_err(|e: String| anyhow!(e))?;
    let project = project_dir(scope, args.project)?;
    let data_dir = data_dir(args.data_dir.as_deref());
    let env = HostEnv::from_process();
    let undone = install::uninstall(host, scope, project.as_deref(), &env, &state_dir(&data_dir))?;
    for item in undone {
        match item {
            Undone::Restored(path) => println!("restored {} from its backup", path.display()),
            Undone::Removed(path) => {
                println!("removed {} (it did not exist before)", path.display())
            }
            Undone::EntriesRemoved(path) => println!(
                "took Gatehouse's hooks out of {} (it was changed since the install, so it was not restored from the backup)",
                path.display()
            ),
            Undone::Untouched(path) => {
                println!("{}: no Gatehouse hooks found", path.display())
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
