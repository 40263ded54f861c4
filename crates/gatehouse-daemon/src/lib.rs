//! Gatehouse daemon: the composition root. It loads the configuration, opens the ledger,
//! builds the policy, classifier, approvals and scoring services, and serves the HTTP API.
//!
//! Lifecycle (`Daemon::start` then `Daemon::serve`): load config (every error at once) →
//! prepare the data directory and tokens → load the policy → open the ledger → start the
//! classifier → bind → restore pending actions → serve until the shutdown future resolves →
//! stop accepting, release waiting requests (their actions stay pending), drain in-flight
//! requests within a time limit → flush the ledger.

pub mod api;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod check;
mod clock;
pub mod commands;
pub mod config;
pub mod data_dir_lock;
pub mod edits;
pub mod events;
mod file_watch;
pub mod grants;
pub mod hardened;
pub mod listen;
pub mod live_model;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod outcomes;
pub mod policy_store;
pub mod policy_versions;
pub mod presence;
pub mod replay;
pub mod review;
pub mod scoring;
pub mod telemetry;
pub mod tls;
pub mod users;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use gatehouse_classifier::retraining::ModelStore;
use gatehouse_classifier::{
    BuiltinClassifier, Classifier, SidecarClassifier, SidecarConfig, testing::Fixed,
};
use gatehouse_ledger::{Ledger, LedgerConfig};
use gatehouse_policy::Policy;
use tokio::net::TcpListener;

pub use app::{App, AppState};
pub use clock::now_ms;
pub use config::Config;

use crate::approvals::{Approvals, QueueCaps};
use crate::auth::{Auth, Tokens};
use crate::events::Events;
use crate::live_model::LiveModel;
use crate::metrics::Metrics;
use crate::policy_store::{PolicySource, PolicyStore};
use crate::scoring::{Scoring, ScoringSettings};

/// The Ed25519 key that signs ledger checkpoints, in the data directory (mode 0600).
pub const LEDGER_KEY_FILE: &str = "ledger.key";

/// How long in-flight requests may take to finish once shutdown starts.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the policy file {path}: {source}")]
    PolicyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the policy file {path} has errors:\n{errors}")]
    Policy {
        path: PathBuf,
        errors: gatehouse_policy::PolicyError,
    },
    #[error(transparent)]
    Locked(#[from] data_dir_lock::LockError),
    #[error(transparent)]
    Ledger(#[from] gatehouse_ledger::LedgerError),
    #[error("cannot start the classifier: {0}")]
    Classifier(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Socket(#[from] listen::SocketError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("refusing to start in hardened mode: other users could change what the daemon trusts:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Hardened(Vec<String>),
    #[error(transparent)]
    Notify(#[from] notify::NotifyConfigError),
}

/// What a caller (the binary, or a test) can override beyond the configuration.
#[derive(Default)]
pub struct Overrides {
    /// Use this classifier instead of the configured one (tests inject test classifiers).
    pub classifier: Option<Arc<dyn Classifier>>,
}

/// A daemon that is bound and ready to serve.
pub struct Daemon {
    state: AppState,
    listener: TcpListener,
    /// `[tls]`: the TCP listener serves HTTPS with this configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
    local_addr: SocketAddr,
    /// The check API's Unix socket (hardened mode), if configured.
    socket: Option<listen::CheckSocket>,
    data_dir: PathBuf,
    /// Held until the daemon has stopped: one daemon per data directory.
    data_dir_lock: data_dir_lock::DataDirLock,
    /// `DATA_DIR/daemon.url`, removed when the daemon stops.
    url_file: UrlFile,
    tokens: Tokens,
    login_url: String,
}

/// The file in the data directory that tells the CLI where this daemon listens (so it finds a
/// daemon on another port without `--url`).
pub const URL_FILE: &str = "daemon.url";

/// `DATA_DIR/daemon.url`: the daemon's base URL and a newline, mode 0600, written (atomically)
/// once the listener is bound and removed when the daemon stops. Best effort: a daemon that
/// cannot write it still serves (the CLI then needs `--url`).
struct UrlFile {
    path: Option<PathBuf>,
}

impl UrlFile {
    fn write(data_dir: &Path, url: &str) -> UrlFile {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = data_dir.join(URL_FILE);
        let temp = data_dir.join(format!(".{URL_FILE}.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| writeln!(file, "{url}"))
            .and_then(|()| std::fs::rename(&temp, &path));
        match written {
            Ok(()) => UrlFile { path: Some(path) },
            Err(err) => {
                let _ = std::fs::remove_file(&temp);
                tracing::warn!(%err, path = %path.display(), "could not write the daemon's URL file");
                UrlFile { path: None }
            }
        }
    }
}

impl Drop for UrlFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Daemon {
    pub async fn start(config: Config, overrides: Overrides) -> Result<Daemon, StartError> {
        config.validate()?;
        let data_dir = config.resolve_data_dir();
        if config.hardened.enabled {
            // Before prepare_data_dir, which would quietly tighten an open directory.
            let trusted = hardened::Trusted {
                data_dir: &data_dir,
                policy: config.policy.as_deref(),
                socket: config.hardened.socket.as_deref(),
            };
            hardened::audit(trusted, hardened::effective_uid()).map_err(StartError::Hardened)?;
        }
        auth::prepare_data_dir(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        // Before anything reads or writes the ledger: a second daemon on this directory would
        // interleave its chain with ours.
        let data_dir_lock = data_dir_lock::DataDirLock::acquire(&data_dir)?;
        let tokens = Tokens::load_or_create(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let policy = Arc::new(load_policy(&config)?);

        let mut ledger_config = LedgerConfig::new(data_dir.join("ledger.db"));
        ledger_config.durability = config.durability().unwrap_or_default();
        ledger_config.busy_timeout = Duration::from_millis(config.ledger.busy_timeout_ms);
        ledger_config.signing_key = Some(data_dir.join(LEDGER_KEY_FILE));
        ledger_config.sign_interval = Duration::from_secs(config.ledger.sign_interval_secs);
        ledger_config.verify_tail =
            (config.ledger.verify_tail > 0).then_some(config.ledger.verify_tail);
        ledger_config.max_page_count =
            (config.ledger.max_page_count > 0).then_some(config.ledger.max_page_count);
        // A ledger that fails verification opens untrusted: every check is then rejected
        // (decided_by "error") and /healthz says why; it is never replaced by an empty one.
        let ledger = if config.ledger.url.is_empty() {
            Ledger::open(ledger_config)?
        } else {
            // Team mode (docs/TEAM.md): replicas share one PostgreSQL ledger.
            let mut shared = gatehouse_ledger::postgres::PgConfig::new(config.ledger.url.clone());
            shared.verify_tail = ledger_config.verify_tail;
            Ledger::open_postgres(shared).await?
        };
        let ledger_trusted = ledger.health() == gatehouse_ledger::LedgerHealth::Ok;

        // `live_model`: the built-in model from the data directory's versioned store, swapped
        // when `gatehouse classifier retrain`/`use` moves its pointer.
        let (classifier, live_model) = match overrides.classifier {
            Some(classifier) => (Some(classifier), None),
            None => match live_model(&config, &data_dir)? {
                Some(live) => (Some(live.clone() as Arc<dyn Classifier>), Some(live)),
                None => (build_classifier(&config)?, None),
            },
        };

        // Before binding: a certificate that cannot be used is a start-up error, never plain HTTP.
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Some(
                tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }
                .server_config()?,
            ),
            _ => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        // Now the daemon knows all it must keep out of the actions' reach (docs/POLICY.md,
        // "Self-protection").
        policy.protect(&policy_store::protected_set(&config, &data_dir, local_addr));
        let socket = match &config.hardened.socket {
            Some(path) => Some(
                listen::bind(&listen::SocketSpec {
                    path: path.clone(),
                    // validate() checked it.
                    mode: config.hardened.socket_mode_bits().unwrap_or(0o600),
                    group: config.hardened.socket_group.clone(),
                })
                .await?,
            ),
            None => None,
        };

        let events = Events::default();
        let telemetry = telemetry::Telemetry::start(
            telemetry::Exporter::from_settings(&config.telemetry, replica_name(local_addr)),
            &events,
        );
        let metrics = Arc::new(Metrics::default());
        let approvals = Approvals::new(
            ledger.clone(),
            events.clone(),
            metrics.clone(),
            QueueCaps {
                max_pending: config.approvals.max_pending,
                max_pending_per_session: config.approvals.max_pending_per_session,
                max_pending_per_agent: config.approvals.max_pending_per_agent,
            },
        );
        // The deployment memory (history facts for the classifier), seeded from the ledger
        // before the daemon serves, so the first actions after a restart are judged against it.
        let memory = match &classifier {
            Some(_) => {
                let memory = Arc::new(memory::Memory::new());
                match memory.seed(&ledger, memory::SEED_ACTIONS).await {
                    Ok(learned) => {
                        tracing::info!(learned, "deployment memory seeded from the ledger")
                    }
                    Err(err) => {
                        tracing::warn!(%err, "deployment memory: the ledger could not be read; starting empty");
                    }
                }
                Some(memory)
            }
            None => None,
        };
        let mut scoring = Scoring::new(
            classifier,
            ScoringSettings {
                max_detached: config.classifier.max_detached,
                budget: Duration::from_millis(config.classifier.budget_ms),
                detached_timeout: Duration::from_millis(config.classifier.detached_timeout_ms),
                disagreement_threshold: config.classifier.disagreement_threshold,
                flag_threshold: config.classifier.flag_threshold,
            },
            ledger.clone(),
            events.clone(),
            metrics.clone(),
        );
        if let Some(memory) = memory {
            scoring = scoring.with_memory(memory);
        }
        let scoring = Arc::new(scoring);
        let auth = Auth::new(
            tokens.clone(),
            Duration::from_secs(config.approvals.login_link_ttl_secs),
            Duration::from_secs(config.approvals.session_ttl_secs),
        );
        let port = local_addr.port();
        let mut allowed_hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        if !local_addr.ip().is_loopback() {
            allowed_hosts.push(local_addr.to_string());
        }
        // Remote access (docs/TEAM.md): over https, only https origins; with a public URL,
        // only that one (and its host is ours too).
        let public = config.tls.public_origin();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = match &public {
            Some((origin, _)) => origin.clone(),
            None if local_addr.ip().is_loopback() => format!("{scheme}://127.0.0.1:{port}"),
            None => format!("{scheme}://{local_addr}"),
        };
        let allowed_origins = match &public {
            Some((origin, authority)) => {
                allowed_hosts.push(authority.clone());
                vec![origin.clone()]
            }
            None => allowed_hosts
                .iter()
                .map(|host| format!("{scheme}://{host}"))
                .collect(),
        };
        let relying_party = match &public {
            // WebAuthn's RP id is the public host name (an IP address cannot be one).
            Some((origin, authority)) => presence::webauthn::RelyingParty {
                id: host_of(authority),
                origin: origin.clone(),
            },
            None => presence::webauthn::RelyingParty {
                id: "localhost".into(),
                origin: format!("{scheme}://localhost:{port}"),
            },
        };
        // Person presence (docs/SECURITY.md): WebAuthn needs a domain as its RP id, so the
        // dashboard confirms decisions from http://localhost:PORT.
        let presence_mode = presence::PresenceMode::parse(&config.approvals.presence)
            .unwrap_or(presence::PresenceMode::WebAuthn);
        if presence_mode == presence::PresenceMode::Off {
            tracing::warn!(
                "approvals.presence = \"off\": the approver token alone can decide; anything that \
                 can read it (an agent too) can approve. For tests and automation only"
            );
        }
        let presence = presence::Presence::open(
            presence_mode,
            &data_dir,
            relying_party,
            config.hardened.enabled,
        )
        .map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        // Remote approvals (ntfy, the signed webhook): links lead to this daemon's origin on
        // `localhost`, where the authenticator works, unless `notify.public_url` says otherwise.
        let notifier = notify::Notifier::start(
            &config.notify,
            &origin.replacen("://127.0.0.1:", "://localhost:", 1),
            &events,
        )?;
        if notifier.enabled() && presence_mode == presence::PresenceMode::Off {
            tracing::warn!(
                "remote approvals are on and approvals.presence = \"off\": a notification's link \
                 alone decides, so whoever can read the ntfy topic, the webhook's receiver or the \
                 Slack channel can approve"
            );
        }
        let state = AppState(Arc::new(App {
            _policy_watcher: policy.watch().map(std::sync::Mutex::new),
            _model_watcher: live_model
                .as_ref()
                .and_then(|live| live.watch())
                .map(std::sync::Mutex::new),
            live_model,
            policy,
            ledger,
            approvals: approvals.clone(),
            grants: Default::default(),
            scoring,
            events,
            metrics,
            auth,
            presence,
            deadline: Duration::from_millis(config.approvals.deadline_ms),
            allowed_hosts,
            allowed_origins,
            secure_cookies: config.tls.https(),
            telemetry,
            notify: notifier,
            origin,
        }));
        if ledger_trusted {
            let grants = state.grants.reload(&state.ledger).await?;
            if grants > 0 {
                tracing::info!(grants, "standing grants in force");
            }
            let restored = approvals.restore().await?;
            if restored > 0 {
                tracing::info!(restored, "pending actions restored from the ledger");
            }
            approvals::follow_replicas(&state.ledger, &approvals);
        } else {
            tracing::error!(
                health = ?state.ledger.health(),
                "serving in deny-all mode: every check is rejected until the ledger is repaired \
                 (see `gatehouse ledger verify`)"
            );
        }
        policy_versions::restore_latest(&state.ledger, &state.policy).await?;
        let people = users::admit_users(&state.ledger, &state.auth).await?;
        if people > 0 {
            tracing::info!(people, "named users admitted");
        }
        approvals::follow_team(&state.0);
        let (login_url, _) = state.login_link_shared(auth::Person::owner()).await;
        let url_file = UrlFile::write(&data_dir, &state.origin);
        Ok(Daemon {
            state,
            listener,
            tls,
            local_addr,
            socket,
            data_dir,
            data_dir_lock,
            url_file,
            tokens,
            login_url,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.state.origin.clone()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The check API's Unix socket, if one is configured (`hardened.socket`).
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(|socket| socket.file.path())
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// While no authenticator is enrolled (presence on): the one-time enrolment code, for the
    /// binary to show on its controlling terminal only (never a log, a file or a URL).
    pub fn enrolment_code(&self) -> Option<String> {
        self.state.presence.enrolment_code()
    }

    /// The one-time dashboard login URL issued at start-up.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves (over TCP, and on the check socket if there is one) until `shutdown` resolves,
    /// then drains: stops accepting, answers waiting paused checks with "pending" (their actions
    /// stay pending in the ledger), lets in-flight requests finish within `DRAIN_LIMIT`, removes
    /// the socket file, and flushes the ledger.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Daemon {
            state,
            listener,
            tls,
            socket,
            data_dir_lock,
            url_file,
            ..
        } = self;
        let router = api::router(state.clone());
        let approvals = state.approvals.clone();
        let (drain_started, drain_signal) = tokio::sync::oneshot::channel::<()>();
        // One shutdown for both listeners: the TCP server's signal tells the socket's.
        let (stop_socket, socket_stopped) = tokio::sync::watch::channel(false);
        let socket_server = serve_socket(state.clone(), socket, socket_stopped);
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; releasing waiting requests");
            approvals.shut_down();
            let _ = stop_socket.send(true);
            let _ = drain_started.send(());
        };
        let server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls
        {
            Some(config) => Box::pin(
                axum::serve(tls::TlsListener::new(listener, config)?, router)
                    .with_graceful_shutdown(shutdown)
                    .into_future(),
            ),
            None => {
                // Answers are small and latency is the point: no Nagle delay on them.
                let listener = listener.tap_io(|tcp| {
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::debug!(%err, "could not set TCP_NODELAY");
                    }
                });
                Box::pin(
                    axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                )
            }
        };
        let drained = async {
            // Once shutdown starts, in-flight requests get DRAIN_LIMIT to finish.
            if drain_signal.await.is_ok() {
                tokio::time::sleep(DRAIN_LIMIT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = async { tokio::try_join!(server, socket_server) } => {
                served?;
            }
            () = drained => tracing::warn!("drain limit reached; closing remaining connections"),
        }
        if let Err(err) = state.ledger.flush().await {
            tracing::error!(%err, "could not flush the ledger on shutdown");
        }
        match state.ledger.sign_checkpoint().await {
            Ok(Some(checkpoint)) => {
                tracing::info!(chain_seq = checkpoint.chain_seq, "ledger checkpoint signed")
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "could not sign the ledger checkpoint on shutdown"),
        }
        tracing::info!("stopped");
        drop(url_file);
        drop(data_dir_lock);
        Ok(())
    }
}

/// Serves the check socket's routes until `stopped` turns true, then removes the socket file.
async fn serve_socket(
    state: AppState,
    socket: Option<listen::CheckSocket>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Some(listen::CheckSocket { listener, file }) = socket else {
        return Ok(());
    };
    let service =
        api::socket_router(state).into_make_service_with_connect_info::<listen::SocketPeer>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await;
    drop(file);
    served
}

/// This replica in exported telemetry: the machine's host name and the port.
fn replica_name(local_addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    match host.is_empty() {
        true => local_addr.to_string(),
        false => format!("{host}:{}", local_addr.port()),
    }
}

/// The host of an authority (`name:port`, `[v6]:port`), without its port.
fn host_of(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !authority.ends_with(']') =>
        {
            host.to_owned()
        }
        _ => authority.to_owned(),
    }
}

fn load_policy(config: &Config) -> Result<PolicyStore, StartError> {
    match &config.policy {
        None => Ok(PolicyStore::new(
            Policy::builtin_default(),
            PolicySource::Builtin,
        )),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| StartError::PolicyRead {
                path: path.clone(),
                source,
            })?;
            let policy = Policy::from_toml(&text).map_err(|errors| StartError::Policy {
                path: path.clone(),
                errors,
            })?;
            Ok(PolicyStore::new(policy, PolicySource::File(path.clone())))
        }
    }
}

/// The built-in model from the data directory's versioned store, when that is the classifier
/// (`builtin` without explicit `weights`): `gatehouse classifier retrain`/`use` move its pointer
/// and the daemon swaps the model without a restart.
fn live_model(config: &Config, data_dir: &Path) -> Result<Option<Arc<LiveModel>>, StartError> {
    let settings = &config.classifier;
    if settings.kind != "builtin" || settings.weights.is_some() {
        return Ok(None);
    }
    let live =
        LiveModel::open(ModelStore::in_data_dir(data_dir)).map_err(StartError::Classifier)?;
    Ok(Some(Arc::new(live)))
}

fn build_classifier(config: &Config) -> Result<Option<Arc<dyn Classifier>>, StartError> {
    let settings = &config.classifier;
    Ok(match settings.kind.as_str() {
        "builtin" => {
            let model = match &settings.weights {
                Some(path) => BuiltinClassifier::from_file(path),
                None => BuiltinClassifier::embedded(),
            }
            .map_err(|err| StartError::Classifier(err.to_string()))?;
            Some(Arc::new(model))
        }
        #[cfg(feature = "minilm")]
        "minilm" => {
            let builtin = match &settings.weights {
                Some(path) => BuiltinClassifier::from_file(path),
                None => BuiltinClassifier::embedded(),
            }
            .map_err(|err| StartError::Classifier(err.to_string()))?;
            let dir = settings
                .minilm_dir
                .as_deref()
                .ok_or_else(|| StartError::Classifier("classifier.minilm_dir is not set".into()))?;
            // One job at a time: the encoder has one inference thread anyway.
            let pool = gatehouse_classifier::BlockingPool::new(1);
            let model = gatehouse_classifier::MiniLmClassifier::load(dir, builtin, pool)
                .map_err(|err| StartError::Classifier(err.to_string()))?;
            Some(Arc::new(model))
        }
        "fixed" => Some(Arc::new(Fixed {
            score: settings.score,
            label: settings.label.clone(),
            delay: Duration::from_millis(settings.delay_ms),
        })),
        "sidecar" => {
            let sidecar = SidecarClassifier::spawn(SidecarConfig {
                command: settings.command.clone(),
                model_name: settings.model.clone(),
                env: Vec::new(),
            })
            .map_err(|err| StartError::Classifier(err.to_string()))?;
            Some(Arc::new(sidecar))
        }
        _ => None,
    })
}
