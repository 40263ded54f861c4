//! Daemon configuration, in one place: defaults, then a TOML file, then `GATEHOUSE_*`
//! environment variables, then command-line flags (applied by the binary).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gatehouse_ledger::Durability;
use serde::{Deserialize, Serialize};

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. A non-loopback address needs `allow_remote`.
    pub listen: SocketAddr,
    pub allow_remote: bool,
    /// Where the ledger and tokens live; empty means the platform default (see `resolve_data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Policy file; absent means the built-in default policy.
    pub policy: Option<PathBuf>,
    pub ledger: LedgerSettings,
    pub classifier: ClassifierSettings,
    pub approvals: ApprovalSettings,
    pub hardened: HardenedSettings,
    pub tls: TlsSettings,
    pub telemetry: TelemetrySettings,
    /// Remote approvals: `[notify]`, `[notify.ntfy]`, `[notify.webhook]` (docs/APPROVALS.md).
    pub notify: crate::notify::NotifySettings,
    /// The file this configuration was read from (set by `load`, never written in one): part of
    /// what the daemon protects from the actions it judges.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    /// `crash-safe` (survives a killed daemon) or `power-safe` (survives power loss).
    pub durability: String,
    /// How long a commit waits for a lock held by another process before failing (closed).
    pub busy_timeout_ms: u64,
    /// At start-up, verify this many of the newest hash-chain entries (plus the latest signed
    /// checkpoint and SQLite's quick_check); on failure the daemon rejects every check. 0 skips
    /// the check (not recommended).
    pub verify_tail: u64,
    /// How often the chain head is signed (it is also signed at shutdown).
    pub sign_interval_secs: u64,
    /// Cap on the ledger file's size in 4 KiB pages (`PRAGMA max_page_count`); 0 means no cap.
    /// Past it, checks are rejected and `/healthz` reports `degraded` until space returns.
    pub max_page_count: u64,
    /// Team mode: a PostgreSQL ledger shared by several daemon replicas
    /// (`postgres://user:password@host:5432/gatehouse`, docs/TEAM.md). Empty: the embedded
    /// SQLite ledger in the data directory.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierSettings {
    /// `builtin` (the embedded model, docs/MODEL.md), `none`, `sidecar` (run `command` and speak
    /// docs/SIDECAR.md) or `fixed` (a constant score after `delay_ms`: for trying things out and
    /// benchmarks).
    pub kind: String,
    /// Weights for the built-in model; if absent, the version in force in the data directory's
    /// `models/` (installed by `gatehouse classifier retrain`, switched by `classifier use`,
    /// picked up without a restart), else the embedded weights.
    pub weights: Option<PathBuf>,
    /// `minilm` only: the directory `scripts/fetch-minilm.sh` filled with the all-MiniLM-L6-v2
    /// files (docs/MODEL.md, "Neural tier"). Read at start, never downloaded.
    pub minilm_dir: Option<PathBuf>,
    /// Program and arguments of the sidecar.
    pub command: Vec<String>,
    /// Model name recorded for sidecar scores when the sidecar does not name one.
    pub model: Option<String>,
    pub score: f64,
    pub label: String,
    pub delay_ms: u64,
    /// How long a paused action waits for its score before going on without one.
    pub budget_ms: u64,
    /// Most detached (fast-path) scorings in flight; past it new scorings are dropped.
    pub max_detached: usize,
    /// How long a detached scoring may take before it is recorded as timed out.
    pub detached_timeout_ms: u64,
    /// A rules-allowed action scored at or above this is recorded as a disagreement.
    pub disagreement_threshold: f64,
    /// A score at or above this counts as *flagged* (the review queue's "human decisions that
    /// went against the score", dashboards).
    pub flag_threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalSettings {
    /// How long a paused action waits for a person before it is rejected by timeout.
    pub deadline_ms: u64,
    /// Most paused actions waiting for a person at once; past it new pauses are rejected
    /// (`approval_queue_full`) rather than silently queued.
    pub max_pending: usize,
    /// The same cap for one agent session.
    pub max_pending_per_session: usize,
    /// The same cap for one agent credential (a Unix-socket caller's uid; the agent token over
    /// TCP), so that inventing session ids does not evade the per-session cap.
    pub max_pending_per_agent: usize,
    /// Who may decide a paused action: `webauthn` (the default) requires the person's presence,
    /// a WebAuthn assertion with user verification from an enrolled authenticator, for every
    /// decision; `off` lets the approver token (or a dashboard session) decide alone — for tests
    /// and automation only: an agent that can read the token can then approve itself
    /// (docs/SECURITY.md, "Person presence").
    pub presence: String,
    /// How long a dashboard login link stays valid.
    pub login_link_ttl_secs: u64,
    /// How long a dashboard session lasts.
    pub session_ttl_secs: u64,
}

/// Hardened mode (`docs/SECURITY.md`): the check API on a Unix socket, and a daemon that runs as
/// its own user and refuses to start when others could change what it trusts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardenedSettings {
    /// Refuse to start when the data directory, its secrets or the policy file could be changed
    /// by anyone but the daemon's user (`gatehouse serve --hardened`). Needs `socket`.
    pub enabled: bool,
    /// Serve `/v1/check` (and the agent's poll, and `/healthz`) on this Unix socket, recording
    /// the peer's uid and pid with each action. Absent: no socket.
    pub socket: Option<PathBuf>,
    /// Permission bits of the socket file, in octal: who may connect (and so ask for checks).
    pub socket_mode: String,
    /// Group of the socket file (a name from /etc/group or a numeric gid), e.g. with
    /// `socket_mode = "0660"` to let only that group's members ask. Absent: the daemon's group.
    pub socket_group: Option<String>,
}

/// Remote listening (docs/TEAM.md, "Remote access"): TLS served by the daemon itself, or a
/// TLS-terminating reverse proxy in front of it. A non-loopback `listen` needs one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain (PEM, leaf first) the daemon serves HTTPS with; needs `key`.
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The daemon sits behind a reverse proxy that terminates TLS and forwards plain HTTP to
    /// it (over loopback or a private network): a non-loopback `listen` without `cert` is then
    /// allowed, cookies are `Secure`, and `public_url` is required.
    pub behind_proxy: bool,
    /// The `https://host[:port]` address people and agents use (the proxy's, or this
    /// daemon's name on its certificate). When set, it is the only browser origin accepted,
    /// its host is accepted in `Host`, and login links use it. Empty: the listen address.
    pub public_url: String,
}

impl TlsSettings {
    /// The daemon serves HTTPS itself.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// Browsers reach the dashboard over https (directly or through the proxy).
    pub fn https(&self) -> bool {
        self.enabled() || self.behind_proxy
    }

    /// `public_url` as `https://AUTHORITY` (no trailing slash) and its authority, if it is one.
    pub fn public_origin(&self) -> Option<(String, String)> {
        let authority = self
            .public_url
            .trim()
            .strip_prefix("https://")?
            .trim_end_matches('/');
        let plain = !authority.is_empty()
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        plain.then(|| {
            (
                format!("https://{authority}"),
                authority.to_ascii_lowercase(),
            )
        })
    }
}

/// OpenTelemetry (docs/TEAM.md, "Telemetry"): verdicts and decisions as OTLP log records, sent
/// over OTLP/HTTP (JSON) in batches, off the fast path; dropped and counted when the collector
/// cannot take them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP endpoint (`http://collector:4318`; records go to its
    /// `/v1/logs`). Empty: no export. `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: String,
    /// `service.name` of the records (`OTEL_SERVICE_NAME` overrides it).
    pub service_name: String,
    /// Most records waiting for export; past it new ones are dropped (and counted).
    pub queue: usize,
    /// Most records in one export request.
    pub batch: usize,
    /// How long a record may wait for its batch to fill.
    pub flush_interval_ms: u64,
    /// Time limit of one export request.
    pub timeout_ms: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: String::new(),
            service_name: "gatehouse".into(),
            queue: 8_192,
            batch: 512,
            flush_interval_ms: 1_000,
            timeout_ms: 5_000,
        }
    }
}

impl Default for HardenedSettings {
    fn default() -> Self {
        HardenedSettings {
            enabled: false,
            socket: None,
            socket_mode: "0666".into(),
            socket_group: None,
        }
    }
}

impl HardenedSettings {
    /// `socket_mode` as permission bits, if it is octal and at most 0777.
    pub fn socket_mode_bits(&self) -> Option<u32> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|bits| *bits <= 0o777)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7400))),
            allow_remote: false,
            data_dir: None,
            policy: None,
            ledger: LedgerSettings::default(),
            classifier: ClassifierSettings::default(),
            approvals: ApprovalSettings::default(),
            hardened: HardenedSettings::default(),
            tls: TlsSettings::default(),
            telemetry: TelemetrySettings::default(),
            notify: crate::notify::NotifySettings::default(),
            config_file: None,
        }
    }
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            durability: Durability::CrashSafe.as_str().into(),
            busy_timeout_ms: 2_000,
            verify_tail: 10_000,
            sign_interval_secs: 60,
            max_page_count: 0,
            url: String::new(),
        }
    }
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        ClassifierSettings {
            kind: "builtin".into(),
            weights: None,
            minilm_dir: None,
            command: Vec::new(),
            model: None,
            score: 0.0,
            label: "benign".into(),
            delay_ms: 0,
            budget_ms: 2_000,
            max_detached: 4,
            detached_timeout_ms: 10_000,
            disagreement_threshold: 0.8,
            flag_threshold: 0.5,
        }
    }
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            deadline_ms: 120_000,
            max_pending: 1_000,
            max_pending_per_session: 100,
            max_pending_per_agent: 200,
            presence: "webauthn".into(),
            login_link_ttl_secs: 3_600,
            session_ttl_secs: 12 * 3_600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl Config {
    /// Defaults, overlaid by `file` (if given) and then by `GATEHOUSE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
            None => Config::default(),
        };
        config.config_file = file.map(Path::to_path_buf);
        let mut problems = Vec::new();
        for (key, value) in env {
            match key.as_str() {
                "GATEHOUSE_LISTEN" => match value.parse() {
                    Ok(addr) => config.listen = addr,
                    Err(_) => problems.push(format!(
                        "GATEHOUSE_LISTEN: `{value}` is not an address like 127.0.0.1:7400"
                    )),
                },
                "GATEHOUSE_DATA_DIR" if !value.is_empty() => config.data_dir = Some(value.into()),
                "GATEHOUSE_POLICY" if !value.is_empty() => config.policy = Some(value.into()),
                "GATEHOUSE_DURABILITY" => config.ledger.durability = value,
                "GATEHOUSE_LEDGER_URL" => config.ledger.url = value,
                "GATEHOUSE_APPROVALS_PRESENCE" => config.approvals.presence = value,
                "GATEHOUSE_TLS_CERT" if !value.is_empty() => config.tls.cert = Some(value.into()),
                "GATEHOUSE_TLS_KEY" if !value.is_empty() => config.tls.key = Some(value.into()),
                "GATEHOUSE_TLS_BEHIND_PROXY" => match value.as_str() {
                    "1" | "true" => config.tls.behind_proxy = true,
                    "0" | "false" | "" => config.tls.behind_proxy = false,
                    _ => problems.push(format!(
                        "GATEHOUSE_TLS_BEHIND_PROXY: `{value}` is not true or false"
                    )),
                },
                "GATEHOUSE_PUBLIC_URL" => config.tls.public_url = value,
                // The OpenTelemetry SDKs' standard variables.
                "OTEL_EXPORTER_OTLP_ENDPOINT" => config.telemetry.otlp_endpoint = value,
                "OTEL_SERVICE_NAME" if !value.is_empty() => config.telemetry.service_name = value,
                _ => {}
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }

    /// The default configuration as a commented TOML file (`gatehouse config print-default`).
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# Gatehouse configuration. Every key is optional; these are the defaults.\n\
             # Precedence: defaults < this file < GATEHOUSE_* environment < command-line flags.\n\
             # data_dir defaults to $GATEHOUSE_DATA_DIR, else $XDG_DATA_HOME/gatehouse, else ~/.local/share/gatehouse.\n\
             # policy defaults to the built-in policy (docs/POLICY.md).\n\n{body}"
        )
    }

    /// Every problem with the configuration at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            problems.push(format!(
                "listen: {} is not a loopback address; Gatehouse answers only this machine unless you pass --allow-remote",
                self.listen
            ));
        }
        problems.extend(self.tls_problems());
        let endpoint = self.telemetry.otlp_endpoint.trim();
        let http_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !(endpoint.is_empty() || http_url) {
            problems.push(format!(
                "telemetry.otlp_endpoint: `{endpoint}` is not an http:// or https:// URL (OTLP/HTTP)"
            ));
        }
        if self.telemetry.queue == 0 || self.telemetry.batch == 0 {
            problems.push("telemetry.queue and telemetry.batch: must be at least 1".into());
        }
        if !self.ledger.url.is_empty()
            && !gatehouse_ledger::postgres::is_postgres_url(&self.ledger.url)
        {
            problems.push(
                "ledger.url: must be a postgres:// or postgresql:// URL (or empty for the SQLite ledger)".into(),
            );
        }
        if self.durability().is_none() {
            problems.push(format!(
                "ledger.durability: `{}` is not one of crash-safe, power-safe",
                self.ledger.durability
            ));
        }
        let c = &self.classifier;
        match c.kind.as_str() {
            "none" | "fixed" | "builtin" => {}
            "sidecar" if c.command.is_empty() => {
                problems.push("classifier.command: a sidecar needs a command to run".into())
            }
            "sidecar" => {}
            "minilm" if !cfg!(feature = "minilm") => problems.push(
                "classifier.kind: `minilm` needs a build with the neural tier \
                 (cargo build --release -p gatehouse --features minilm)"
                    .into(),
            ),
            "minilm" if c.minilm_dir.is_none() => problems.push(
                "classifier.minilm_dir: the minilm tier needs the directory scripts/fetch-minilm.sh prints"
                    .into(),
            ),
            "minilm" => {}
            other => problems.push(format!(
                "classifier.kind: `{other}` is not one of builtin, none, sidecar, fixed, minilm"
            )),
        }
        if !(0.0..=1.0).contains(&c.score) {
            problems.push("classifier.score: must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&c.disagreement_threshold) {
            problems.push("classifier.disagreement_threshold: must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&c.flag_threshold) {
            problems.push("classifier.flag_threshold: must be between 0 and 1".into());
        }
        if c.max_detached == 0 {
            problems.push("classifier.max_detached: must be at least 1".into());
        }
        if self.ledger.sign_interval_secs == 0 {
            problems.push("ledger.sign_interval_secs: must be at least 1".into());
        }
        if self.approvals.deadline_ms == 0 {
            problems.push("approvals.deadline_ms: must be at least 1".into());
        }
        if !matches!(self.approvals.presence.as_str(), "webauthn" | "off") {
            problems.push(format!(
                "approvals.presence: `{}` is not one of webauthn, off",
                self.approvals.presence
            ));
        }
        let hardened = &self.hardened;
        if hardened.socket_mode_bits().is_none() {
            problems.push(format!(
                "hardened.socket_mode: `{}` is not octal permission bits like \"0666\" or \"0660\"",
                hardened.socket_mode
            ));
        }
        if hardened
            .socket
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push("hardened.socket: an empty path".into());
        }
        if hardened.enabled && hardened.socket.is_none() {
            problems.push(
                "hardened.enabled: hardened mode serves agents on a Unix socket; set hardened.socket (or --socket)"
                    .into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// What is wrong with `[tls]`, and a non-loopback `listen` that neither serves TLS nor
    /// sits behind a TLS-terminating proxy (the bearer tokens would cross the network in clear).
    fn tls_problems(&self) -> Vec<String> {
        let tls = &self.tls;
        let mut problems = Vec::new();
        match (&tls.cert, &tls.key) {
            (Some(_), None) => problems.push("tls.key: tls.cert needs its key (--tls-key)".into()),
            (None, Some(_)) => {
                problems.push("tls.cert: tls.key needs its certificate (--tls-cert)".into())
            }
            _ => {}
        }
        if !self.listen.ip().is_loopback() && self.allow_remote && !tls.https() {
            problems.push(format!(
                "listen: {} is not a loopback address and nothing encrypts the connection: serve                  TLS (tls.cert and tls.key, or --tls-cert/--tls-key), or set tls.behind_proxy = true                  (--behind-proxy) when a TLS-terminating reverse proxy is in front (docs/TEAM.md)",
                self.listen
            ));
        }
        if !tls.public_url.is_empty() && tls.public_origin().is_none() {
            problems.push(format!(
                "tls.public_url: `{}` is not an https://HOST[:PORT] address (no path, user or query)",
                tls.public_url
            ));
        }
        if tls.behind_proxy && tls.public_url.is_empty() {
            problems.push(
                "tls.public_url: behind a proxy, the https:// address people open is needed                  (the daemon accepts only that Host and Origin besides loopback)"
                    .into(),
            );
        }
        problems
    }

    pub fn durability(&self) -> Option<Durability> {
        Durability::parse(&self.ledger.durability)
    }

    /// `data_dir`, else `$XDG_DATA_HOME/gatehouse`, else `~/.local/share/gatehouse`.
    pub fn resolve_data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("gatehouse");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/gatehouse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(
            &path,
            "[classifier]\nmax_detached = 9\n[ledger]\ndurability = \"power-safe\"\n",
        )
        .unwrap();
        let env = [("GATEHOUSE_DURABILITY".to_string(), "crash-safe".to_string())];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.classifier.max_detached, 9);
        assert_eq!(config.durability(), Some(Durability::CrashSafe));
        assert_eq!(config.approvals.deadline_ms, 120_000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        assert!(
            Config::from_toml("lisen = \"x\"")
                .unwrap_err()
                .contains("lisen")
        );
        let mut config = Config {
            listen: "0.0.0.0:7400".parse().unwrap(),
            ..Config::default()
        };
        config.ledger.durability = "sometimes".into();
        config.classifier.kind = "magic".into();
        config.classifier.flag_threshold = 1.5;
        let err = config.validate().unwrap_err().to_string();
        for needle in ["--allow-remote", "sometimes", "magic", "flag_threshold"] {
            assert!(err.contains(needle), "{err}");
        }
        config.allow_remote = true;
        config.tls.behind_proxy = true;
        config.tls.public_url = "https://gatehouse.example.com".into();
        config.ledger.durability = "power-safe".into();
        config.classifier.kind = "none".into();
        config.classifier.flag_threshold = 0.5;
        config.validate().unwrap();
    }

    #[test]
    fn the_minilm_tier_needs_its_feature_and_its_directory() {
        let mut config = Config::default();
        config.classifier.kind = "minilm".into();
        let err = config.validate().unwrap_err().to_string();
        if cfg!(feature = "minilm") {
            assert!(err.contains("classifier.minilm_dir"), "{err}");
            config.classifier.minilm_dir = Some("/opt/minilm".into());
            config.validate().unwrap();
        } else {
            assert!(err.contains("--features minilm"), "{err}");
        }
    }

    #[test]
    fn hardened_settings_are_validated() {
        let config = Config::from_toml(
            "[hardened]\nenabled = true\nsocket_mode = \"0660\"\nsocket_group = \"agents\"\n",
        )
        .unwrap();
        assert_eq!(config.hardened.socket_mode_bits(), Some(0o660));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("hardened.socket"), "{err}");
        let mut config = Config::default();
        config.hardened.socket = Some("/run/gatehouse/check.sock".into());
        config.hardened.enabled = true;
        config.validate().unwrap();
        for bad in ["rw-rw-rw-", "0888", "01777", ""] {
            config.hardened.socket_mode = bad.into();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("hardened.socket_mode"), "{bad}: {err}");
        }
    }

    #[test]
    fn remote_listening_needs_tls_or_a_proxy() {
        let mut config = Config {
            listen: "0.0.0.0:7400".parse().unwrap(),
            allow_remote: true,
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("tls.behind_proxy") && err.contains("--tls-cert"),
            "{err}"
        );

        config.tls.cert = Some("/etc/gatehouse/cert.pem".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls.key"), "{err}");
        config.tls.key = Some("/etc/gatehouse/key.pem".into());
        config.validate().unwrap();

        config.tls = TlsSettings {
            behind_proxy: true,
            ..TlsSettings::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls.public_url"), "{err}");
        for bad in [
            "http://gatehouse.example.com",
            "https://",
            "https://gatehouse.example.com/dash",
            "https://me@gatehouse.example.com",
            "gatehouse.example.com",
        ] {
            config.tls.public_url = bad.into();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("tls.public_url"), "{bad}: {err}");
        }
        config.tls.public_url = "https://Gatehouse.example.com:8443/".into();
        config.validate().unwrap();
        assert_eq!(
            config.tls.public_origin(),
            Some((
                "https://Gatehouse.example.com:8443".into(),
                "gatehouse.example.com:8443".into()
            ))
        );
    }

    #[test]
    fn tls_settings_come_from_the_environment_too() {
        let env = [
            ("GATEHOUSE_TLS_CERT", "/tls/cert.pem"),
            ("GATEHOUSE_TLS_KEY", "/tls/key.pem"),
            ("GATEHOUSE_PUBLIC_URL", "https://gh.example.com"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::load(None, env).unwrap();
        assert!(config.tls.enabled() && config.tls.https());
        assert_eq!(config.tls.public_url, "https://gh.example.com");
        let bad = [(
            "GATEHOUSE_TLS_BEHIND_PROXY".to_string(),
            "yes please".to_string(),
        )];
        let err = Config::load(None, bad).unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_TLS_BEHIND_PROXY"), "{err}");
    }

    #[test]
    fn the_printed_default_parses_back_to_the_default() {
        let text = Config::default_toml();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }
}
