//! Where a running daemon is (`--url`, `GATEHOUSE_URL`, DATA_DIR/daemon.url) and how the CLI
//! finds the tokens to talk to it as an agent or as an approver.

use std::path::PathBuf;

use anyhow::{Context, Result};
use gatehouse_client::Client;
use gatehouse_daemon::Config;
use gatehouse_daemon::auth::{AGENT_TOKEN_FILE, APPROVER_TOKEN_FILE};

/// Where a running daemon is and how to find its tokens.
#[derive(Debug, clap::Args)]
pub(super) struct Target {
    /// The daemon's URL (`unix:PATH` for its check socket: agent commands only). Default: the
    /// one the daemon wrote to DATA_DIR/daemon.url, else http://127.0.0.1:7400.
    #[arg(long, env = "GATEHOUSE_URL", global = true)]
    pub(super) url: Option<String>,
    /// The daemon's data directory (where its tokens are).
    #[arg(long, env = "GATEHOUSE_DATA_DIR", global = true)]
    pub(super) data_dir: Option<PathBuf>,
}

/// Where the CLI looks for a daemon when neither `--url`, `GATEHOUSE_URL` nor a URL file says.
pub(super) const DEFAULT_URL: &str = "http://127.0.0.1:7400";

impl Target {
    /// `--url` or `GATEHOUSE_URL`; else the URL the daemon wrote to `DATA_DIR/daemon.url`; else
    /// [`DEFAULT_URL`].
    pub(super) fn url(&self) -> String {
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

    pub(super) fn token(&self, file: &str, env: &str) -> Result<String> {
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

    pub(super) fn approver(&self) -> Result<Client> {
        let token = self.token(APPROVER_TOKEN_FILE, "GATEHOUSE_APPROVER_TOKEN")?;
        Ok(Client::new(&self.url(), &token)?)
    }

    /// The agent's client. On the check socket (`--url unix:PATH`) the token is sent if there
    /// is one to read: in hardened mode the agent's user cannot read it, and the socket needs none.
    pub(super) fn agent(&self) -> Result<Client> {
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
    pub(super) fn socket_agent(&self, socket: &std::path::Path) -> Result<Client> {
        let token = self
            .token(AGENT_TOKEN_FILE, "GATEHOUSE_TOKEN")
            .unwrap_or_default();
        Ok(Client::unix(socket, &token)?)
    }
}

/// The URL in `DATA_DIR/daemon.url`, if it is one the daemon wrote: a regular file owned by
/// the data directory's owner and writable by no one else, naming a loopback `http://` address
/// or an `https://` one (a daemon serving TLS).
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
    // A daemon serving TLS (docs/TEAM.md, "Remote access"): its certificate is verified, so
    // the token only reaches a host that holds one for that name.
    if url.starts_with("https://") && !url.contains(char::is_whitespace) {
        return Some(url.to_owned());
    }
    let rest = url.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    let addr: std::net::SocketAddr = host.parse().ok()?;
    addr.ip().is_loopback().then(|| url.to_owned())
}
