//! `gatehouse serve`: runs the daemon until SIGINT/SIGTERM; its secrets go to the terminal only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use gatehouse_daemon::{Config, Daemon, Overrides};

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Listen on a non-loopback address (needs --tls-cert/--tls-key or --behind-proxy).
    #[arg(long)]
    allow_remote: bool,
    /// Serve HTTPS with this PEM certificate chain (`tls.cert`; docs/TEAM.md).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (`tls.key`).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A TLS-terminating reverse proxy is in front (`tls.behind_proxy`; needs --public-url).
    #[arg(long)]
    behind_proxy: bool,
    /// The https:// address people and agents use (`tls.public_url`).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
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
    /// Team mode: a PostgreSQL ledger shared by several replicas (postgres://...); the
    /// embedded SQLite ledger if absent (docs/TEAM.md).
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// Also serve the check API on this Unix socket (hardened mode; docs/SECURITY.md).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Refuse to start if other users could change the data directory, its secrets or the
    /// policy file (hardened mode; needs a socket).
    #[arg(long)]
    hardened: bool,
}

pub(super) async fn serve(args: ServeArgs) -> Result<ExitCode> {
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
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls.cert = Some(cert);
        config.tls.key = Some(key);
    }
    config.tls.behind_proxy |= args.behind_proxy;
    if let Some(url) = args.public_url {
        config.tls.public_url = url;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    if let Some(policy) = args.policy {
        config.policy = Some(policy);
    }
    if let Some(durability) = args.durability {
        config.ledger.durability = durability;
    }
    if let Some(url) = args.ledger {
        config.ledger.url = url;
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
