//! `gatehouse mcp ...`: the MCP firewall proxy's commands (`stdio` in front of a child server).
//! Parse → build the session and the daemon client → run `gatehouse_mcp`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_client::Client;
use gatehouse_daemon::Config;
use gatehouse_daemon::auth::AGENT_TOKEN_FILE;
use gatehouse_mcp::pins::Pins;
use gatehouse_mcp::stdio::PinStore;
use gatehouse_mcp::tools::{OnChanged, ServerTools};
use gatehouse_mcp::{DaemonChecker, Session, SessionConfig};

/// File in the data dir holding every server's accepted tool-definition hashes.
pub const PINS_FILE: &str = "mcp-pins.json";
/// File in the data dir holding the token clients of `gatehouse mcp http` present (0600).
pub const HTTP_TOKEN_FILE: &str = "mcp-http.token";

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    #[command(subcommand)]
    command: McpCommand,
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Run a stdio MCP server behind the firewall: `gatehouse mcp stdio --name fs -- npx server`.
    Stdio(StdioArgs),
    /// Listen on loopback in front of a Streamable HTTP MCP server.
    Http(HttpArgs),
    /// Rewrite a client's MCP servers to start through `gatehouse mcp stdio` (with a backup).
    Wrap(WrapArgs),
    /// Undo `wrap` (byte for byte while the file is as wrap left it).
    Unwrap(WrapArgs),
}

#[derive(Debug, clap::Args)]
struct WrapArgs {
    /// claude-code, claude-desktop, cursor, codex or gemini.
    client: String,
    /// Print the new file instead of writing it.
    #[arg(long)]
    dry_run: bool,
    /// The client's config file (default: its usual place under $HOME).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct HttpArgs {
    /// The MCP server's URL, e.g. http://127.0.0.1:3001/mcp.
    #[arg(long)]
    upstream: String,
    /// Where the proxy listens: a loopback address (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7401")]
    listen: std::net::SocketAddr,
    /// The server's name in tool names (`mcp__NAME__tool`); default: the upstream's host.
    #[arg(long)]
    name: Option<String>,
    /// A header sent to the upstream only (its credentials), `Name: value`; repeatable.
    #[arg(long = "upstream-header", env = "GATEHOUSE_MCP_UPSTREAM_HEADER")]
    upstream_headers: Vec<String>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Where the daemon is, and how its checks wait.
#[derive(Debug, clap::Args)]
struct DaemonArgs {
    /// The daemon's URL (`unix:PATH` for its check socket).
    #[arg(long, env = "GATEHOUSE_URL", default_value = "http://127.0.0.1:7400")]
    url: String,
    /// The daemon's data directory (its agent token; the tool pins are kept there too).
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Give up on a paused call after this many seconds (it is then not run).
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// A call to a tool whose definition changed (or that appeared later): `pause` until a
    /// person accepts the new definition, or `reject` it until then.
    #[arg(long, default_value = "pause", value_parser = parse_on_changed)]
    on_changed_tool: OnChanged,
}

fn parse_on_changed(text: &str) -> Result<OnChanged, String> {
    OnChanged::parse(text).ok_or_else(|| format!("{text:?} is not pause or reject"))
}

#[derive(Debug, clap::Args)]
struct StdioArgs {
    /// The server's name in tool names (`mcp__NAME__tool`); default: the command's file name.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Run the server inside this sandbox profile (`gatehouse sandbox run --profile PROFILE`,
    /// with the current directory as its project): what the rules allow it to do still cannot
    /// reach past the profile. Refuses to start where the kernel cannot confine it.
    #[arg(long, value_name = "PROFILE")]
    confine: Option<String>,
    /// The server's command line, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// The command line that starts the server: as given, or inside `gatehouse sandbox run` (this
/// binary, a process of its own: the launcher forks while single-threaded). Fail closed: an
/// unknown profile or a kernel that cannot confine is an error, never an unconfined server.
fn server_command(
    command: &[OsString],
    confine: Option<&str>,
    cwd: &std::path::Path,
) -> Result<Vec<OsString>> {
    let Some(profile) = confine else {
        return Ok(command.to_vec());
    };
    gatehouse_sandbox::profile::find(profile, None)
        .map_err(|err| anyhow::anyhow!("--confine: {err}; the MCP server was not started"))?;
    let support = gatehouse_sandbox::probe();
    if !support.ok() {
        bail!(
            "--confine {profile}: this system cannot confine the MCP server ({}); it was not started",
            support.problems.join("; ")
        );
    }
    let me = std::env::current_exe()
        .context("cannot find this gatehouse binary to confine the MCP server")?;
    let mut line: Vec<OsString> = vec![
        me.into_os_string(),
        "sandbox".into(),
        "run".into(),
        "--profile".into(),
        profile.into(),
        "--cwd".into(),
        cwd.as_os_str().to_owned(),
        "--".into(),
    ];
    line.extend(command.iter().cloned());
    Ok(line)
}

pub async fn run(args: McpArgs) -> Result<ExitCode> {
    init_log();
    match args.command {
        McpCommand::Stdio(args) => stdio(args).await,
        McpCommand::Http(args) => http(args).await,
        McpCommand::Wrap(args) => wrap(&args, true),
        McpCommand::Unwrap(args) => wrap(&args, false),
    }
}

/// Logs go to stderr (stdout is the MCP channel); quiet unless `GATEHOUSE_LOG` says otherwise.
fn init_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

impl DaemonArgs {
    fn data_dir(&self) -> PathBuf {
        Config {
            data_dir: self.data_dir.clone(),
            ..Config::default()
        }
        .resolve_data_dir()
    }

    fn checker(&self) -> Result<DaemonChecker> {
        let token = match std::env::var("GATEHOUSE_TOKEN") {
            Ok(token) if !token.is_empty() => token,
            _ => {
                let path = self.data_dir().join(AGENT_TOKEN_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(token) => token.trim().to_owned(),
                    Err(_) if self.url.trim().starts_with("unix:") => String::new(),
                    Err(err) => bail!(
                        "cannot read the agent token {} (set GATEHOUSE_TOKEN or --data-dir): {err}",
                        path.display()
                    ),
                }
            }
        };
        let mut checker = DaemonChecker::new(Client::new(&self.url, &token)?);
        checker.total_deadline = Duration::from_secs(self.timeout);
        Ok(checker)
    }
}

/// A server name usable in `mcp__NAME__tool`: letters, digits, `-` and `_` (not `__`).
fn server_name(name: Option<&str>, command: &[OsString]) -> Result<String> {
    let raw = match name {
        Some(name) => name.to_owned(),
        None => command
            .first()
            .map(PathBuf::from)
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    if raw.is_empty()
        || raw.contains("__")
        || !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("the server name {raw:?} must be letters, digits, '-' or '_' (give --name)");
    }
    Ok(raw)
}

fn nonce() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

async fn stdio(args: StdioArgs) -> Result<ExitCode> {
    let name = server_name(args.name.as_deref(), &args.command)?;
    let checker = Arc::new(args.daemon.checker()?);
    let pins = PinStore {
        path: args.daemon.data_dir().join(PINS_FILE),
    };
    let nonce = nonce();
    let session = Session::new(
        SessionConfig {
            server: name.clone(),
            session_id: format!("mcp-{name}-{nonce}"),
            nonce,
            cwd: std::env::current_dir()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        },
        ServerTools::new(
            &name,
            Pins::new(pins.load().server(&name)),
            args.daemon.on_changed_tool,
        ),
    );
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let command = server_command(&args.command, args.confine.as_deref(), &cwd)?;
    let Some((program, rest)) = command.split_first() else {
        bail!("give the server's command after --");
    };
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the MCP server {program:?}"))?;
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("the MCP server's stdin/stdout are not pipes");
    };
    gatehouse_mcp::stdio::proxy(
        session,
        checker,
        Some(pins),
        tokio::io::stdin(),
        tokio::io::stdout(),
        server_in,
        server_out,
    )
    .await;
    // The client left (the server's stdin is closed now) or the server did: give it a moment.
    let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let code = status
        .and_then(|s| s.code())
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(0);
    // Exit now: when the server left first, tokio's stdin reader is still blocked in a read of
    // the client's pipe, and the runtime would wait for it at shutdown. Every reply has been
    // written and flushed by the proxy's writer task.
    std::process::exit(i32::from(code))
}

/// The HTTP proxy's client token: read from the data dir, or created there (0600).
fn http_token(data_dir: &std::path::Path) -> Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join(HTTP_TOKEN_FILE);
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}

async fn http(args: HttpArgs) -> Result<ExitCode> {
    let upstream = reqwest_url(&args.upstream)?;
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen must be a loopback address (127.0.0.1 or [::1]): the proxy is for local clients"
        );
    }
    let default_name = upstream
        .host_str()
        .map(|h| h.replace(['.', ':', '[', ']'], "-"))
        .unwrap_or_default();
    let name = server_name(Some(args.name.as_deref().unwrap_or(&default_name)), &[])?;
    let mut upstream_headers = Vec::new();
    for raw in &args.upstream_headers {
        let Some((key, value)) = raw.split_once(':') else {
            bail!("--upstream-header must be `Name: value`");
        };
        let key = axum_header_name(key.trim())?;
        let mut value = axum::http::HeaderValue::from_str(value.trim())
            .context("--upstream-header value is not a valid header value")?;
        value.set_sensitive(true);
        upstream_headers.push((key, value));
    }
    let checker = Arc::new(args.daemon.checker()?);
    let token = http_token(&args.daemon.data_dir())?;
    let nonce = nonce();
    let config = gatehouse_mcp::http::HttpConfig {
        upstream,
        session: SessionConfig {
            server: name.clone(),
            session_id: format!("mcp-{name}-{nonce}"),
            nonce,
            cwd: std::env::current_dir()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        },
        token,
        upstream_headers,
        pins: Some(PinStore {
            path: args.daemon.data_dir().join(PINS_FILE),
        }),
        on_changed: args.daemon.on_changed_tool,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("gatehouse mcp http listening on http://{addr}/mcp");
    println!(
        "clients authenticate with the token in {}",
        args.daemon.data_dir().join(HTTP_TOKEN_FILE).display()
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    gatehouse_mcp::http::serve(listener, config, checker, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

fn reqwest_url(text: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(text).context("--upstream is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--upstream must be an http or https URL");
    }
    Ok(url)
}

fn axum_header_name(name: &str) -> Result<axum::http::HeaderName> {
    axum::http::HeaderName::from_bytes(name.as_bytes())
        .with_context(|| format!("{name:?} is not a header name"))
}

/// `wrap` / `unwrap`: read, rewrite, back up (wrap: the original, once), write (temp + rename).
fn wrap(args: &WrapArgs, wrapping: bool) -> Result<ExitCode> {
    use gatehouse_mcp::wrap::{self as w, McpClient};
    let client = McpClient::parse(&args.client).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown client {:?} (claude-code, claude-desktop, cursor, codex or gemini)",
            args.client
        )
    })?;
    let path = match &args.config {
        Some(path) => path.clone(),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set (or give --config)")?;
            client.config_path(std::path::Path::new(&home))
        }
    };
    let gatehouse = std::env::current_exe()
        .context("cannot find the gatehouse binary's path")?
        .to_string_lossy()
        .into_owned();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "{}: no such file: nothing to {}",
                path.display(),
                if wrapping { "wrap" } else { "unwrap" }
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let backup_path = {
        let mut name = path.as_os_str().to_owned();
        name.push(".gatehouse-backup");
        PathBuf::from(name)
    };
    let backup = std::fs::read_to_string(&backup_path).ok();
    let (new, report) = if wrapping {
        w::wrap(client, &text, &gatehouse)?
    } else {
        w::unwrap_with_backup(client, &text, backup.as_deref(), &gatehouse)?
    };
    for name in &report.changed {
        println!("{} {name}", if wrapping { "wrapped" } else { "unwrapped" });
    }
    for name in &report.unchanged {
        println!("unchanged {name}");
    }
    for (name, why) in &report.skipped {
        println!("skipped {name}: {why}");
    }
    if args.dry_run {
        print!("{new}");
        return Ok(ExitCode::SUCCESS);
    }
    if new == text {
        return Ok(ExitCode::SUCCESS);
    }
    if wrapping && backup.is_none() {
        std::fs::write(&backup_path, &text)
            .with_context(|| format!("cannot write the backup {}", backup_path.display()))?;
        println!("backup: {}", backup_path.display());
    }
    let tmp = path.with_extension("gatehouse-tmp");
    std::fs::write(&tmp, &new).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    if !wrapping && backup.as_deref() == Some(new.as_str()) {
        let _ = std::fs::remove_file(&backup_path);
    }
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_plain() {
        let cmd = [OsString::from("/usr/bin/mcp-server-git")];
        assert_eq!(server_name(None, &cmd).unwrap(), "mcp-server-git");
        assert_eq!(server_name(Some("fs"), &cmd).unwrap(), "fs");
        assert!(server_name(Some("a__b"), &cmd).is_err());
        assert!(server_name(Some("a b"), &cmd).is_err());
        assert!(server_name(Some(""), &cmd).is_err());
    }
}
