//! Installing Gatehouse into a host's settings, and taking it out again — the only file IO in
//! this crate.
//!
//! `plan` reads the settings file(s), merges Gatehouse's hook entries in (`settings`, `codex`)
//! and validates the result by reading it back; `apply` keeps a backup of each file as it was
//! before the *first* install, writes atomically (temp file + rename, same permissions) and
//! records a manifest in Gatehouse's data directory. `uninstall` restores each file byte for
//! byte from its backup when nothing else changed it since; otherwise it takes out only
//! Gatehouse's entries and says so.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Host;
use crate::codex::{self, CodexHook, TrustEntry};
use crate::confine::shell_word;
use crate::settings::{self, PlannedHook, SettingsError};
use crate::version::{self, Version};

/// Where in the host's settings layers to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The user's own settings (every project).
    User,
    /// One project's settings (shared with everyone who opens it).
    Project,
    /// The machine's managed settings (a project cannot switch them off).
    Managed,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
            Scope::Managed => "managed",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "user" => Ok(Scope::User),
            "project" => Ok(Scope::Project),
            "managed" => Ok(Scope::Managed),
            other => Err(format!(
                "unknown scope `{other}` (expected user, project or managed)"
            )),
        }
    }
}

/// The environment that decides where the hosts keep their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnv {
    pub home: PathBuf,
    /// `CLAUDE_CONFIG_DIR` (replaces `~/.claude`).
    pub claude_config_dir: Option<PathBuf>,
    /// `CODEX_HOME` (replaces `~/.codex`; Codex canonicalizes it).
    pub codex_home: Option<PathBuf>,
    /// `GEMINI_CLI_HOME` (replaces the home directory `.gemini` is under).
    pub gemini_cli_home: Option<PathBuf>,
    /// The root managed settings live under (`/`; tests point it elsewhere).
    pub managed_root: PathBuf,
}

impl HostEnv {
    pub fn from_process() -> HostEnv {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        HostEnv {
            home: var("HOME").unwrap_or_else(|| PathBuf::from("/")),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
            codex_home: var("CODEX_HOME"),
            gemini_cli_home: var("GEMINI_CLI_HOME"),
            managed_root: var("GATEHOUSE_MANAGED_ROOT").unwrap_or_else(|| PathBuf::from("/")),
        }
    }

    /// Codex's home, as Codex names it (`CODEX_HOME` canonicalized when it exists).
    pub fn codex_home(&self) -> PathBuf {
        match &self.codex_home {
            Some(dir) => dir.canonicalize().unwrap_or_else(|_| dir.clone()),
            None => self.home.join(".codex"),
        }
    }

    /// The user-level `config.toml` where Codex keeps hook trust.
    pub fn codex_user_config(&self) -> PathBuf {
        self.codex_home().join("config.toml")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("--project DIR is needed for --scope project")]
    NoProject,
    #[error("{host} has no {scope} settings Gatehouse can install into")]
    ScopeUnsupported { host: Host, scope: &'static str },
    #[error(
        "cannot tell which version of {host} is installed (is `{program}` on PATH?); pass --host-version to say"
    )]
    NoVersion { host: Host, program: &'static str },
    #[error("{host} {version} runs no hooks (Gatehouse needs {needed} or later); upgrade it first")]
    TooOld {
        host: Host,
        version: Version,
        needed: Version,
    },
    #[error("the written settings did not read back as installed: {0}")]
    Validation(String),
    #[error("{0}")]
    Manifest(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The settings file Gatehouse's hooks go into for `host` at `scope`.
pub fn settings_path(
    host: Host,
    scope: Scope,
    project: Option<&Path>,
    env: &HostEnv,
) -> Result<PathBuf, InstallError> {
    let project = || project.ok_or(InstallError::NoProject);
    Ok(match (host, scope) {
        (Host::ClaudeCode, Scope::User) => env
            .claude_config_dir
            .clone()
            .unwrap_or_else(|| env.home.join(".claude"))
            .join("settings.json"),
        (Host::ClaudeCode, Scope::Project) => project()?.join(".claude/settings.json"),
        (Host::ClaudeCode, Scope::Managed) => env
            .managed_root
            .join("etc/claude-code/managed-settings.json"),
        (Host::Codex, Scope::User) => env.codex_user_config(),
        (Host::Codex, Scope::Project) => project()?.join(".codex/config.toml"),
        (Host::Gemini, Scope::User) => env
            .gemini_cli_home
            .clone()
            .unwrap_or_else(|| env.home.clone())
            .join(".gemini/settings.json"),
        (Host::Gemini, Scope::Project) => project()?.join(".gemini/settings.json"),
        (Host::Gemini, Scope::Managed) => env.managed_root.join("etc/gemini-cli/settings.json"),
        (Host::Cursor, Scope::User) => env.home.join(".cursor/hooks.json"),
        (Host::Cursor, Scope::Project) => project()?.join(".cursor/hooks.json"),
        (Host::Cursor, Scope::Managed) => env.managed_root.join("etc/cursor/hooks.json"),
        (Host::Codex, Scope::Managed) => {
            return Err(InstallError::ScopeUnsupported {
                host,
                scope: "managed",
            });
        }
    })
}

/// How the host reaches Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A `gatehouse hook <host>` process per event.
    Command,
    /// Claude Code's HTTP hook posting to the daemon (the token from `GATEHOUSE_TOKEN` in the
    /// host's environment); the post-tool event still uses the command.
    Http { url: String },
}

/// What the installed hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    /// Absolute path of the `gatehouse` binary.
    pub gatehouse: PathBuf,
    /// `--url` to pass, if not the default.
    pub url: Option<String>,
    /// `--data-dir` to pass (where the agent token is).
    pub data_dir: Option<PathBuf>,
    /// How long the hook waits for a person on a paused call, in seconds.
    pub wait_secs: u64,
    /// Hand a paused call to the host's own prompt (Claude Code `ask`) instead of waiting.
    pub pause_ask: bool,
}

impl HookCommand {
    /// The shell command line the host runs.
    pub fn command_line(&self, host: Host) -> String {
        let mut line = format!(
            "{} hook {}",
            shell_word(&self.gatehouse.to_string_lossy()),
            host.as_str()
        );
        if let Some(url) = &self.url {
            line.push_str(&format!(" --url {}", shell_word(url)));
        }
        if let Some(dir) = &self.data_dir {
            line.push_str(&format!(
                " --data-dir {}",
                shell_word(&dir.to_string_lossy())
            ));
        }
        line.push_str(&format!(" --wait {}", self.wait_secs));
        if self.pause_ask {
            line.push_str(" --pause ask");
        }
        line
    }

    /// The host's hook timeout: above the pause wait, so Gatehouse always answers first.
    pub fn timeout_secs(&self) -> u64 {
        self.wait_secs + 30
    }
}

/// One install, as asked.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    pub host: Host,
    pub scope: Scope,
    pub project: Option<PathBuf>,
    pub command: HookCommand,
    pub transport: Transport,
    /// The host's version, read from its CLI or given by `--host-version`.
    pub version: Option<Version>,
}

/// A file as it is and as it will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
    pub after: Vec<u8>,
}

/// What an install will write, and what it sets.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    pub host: Host,
    pub scope: Scope,
    pub changes: Vec<FileChange>,
    pub trust: Vec<TrustEntry>,
    /// Human-readable notes: fail-closed options set or missing, trust recorded.
    pub notes: Vec<String>,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, InstallError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io(path)(err)),
    }
}

fn text(path: &Path, bytes: &Option<Vec<u8>>) -> Result<Option<String>, InstallError> {
    bytes
        .as_ref()
        .map(|b| {
            String::from_utf8(b.clone()).map_err(|_| {
                InstallError::Validation(format!("{} is not UTF-8 text", path.display()))
            })
        })
        .transpose()
}

/// Works out what installing means for this host and version, reading the current settings.
pub fn plan(request: &InstallRequest, env: &HostEnv) -> Result<InstallPlan, InstallError> {
    let host = request.host;
    let features = version::features(host, request.version);
    if let (Some(program), None) = (host.program(), request.version) {
        return Err(InstallError::NoVersion { host, program });
    }
    if let (Host::Codex, Some(v)) = (host, request.version)
        && !features.hooks
    {
        return Err(InstallError::TooOld {
            host,
            version: v,
            needed: version::CODEX_HOOKS,
        });
    }
    let path = settings_path(host, request.scope, request.project.as_deref(), env)?;
    let before = read_optional(&path)?;
    let current = text(&path, &before)?;
    let shown = path.display().to_string();
    let command = request.command.command_line(host);
    let timeout = request.command.timeout_secs();
    let mut notes = Vec::new();
    let mut changes = Vec::new();
    let mut trust = Vec::new();
    match host {
        Host::Codex => {
            let hooks = [
                CodexHook {
                    event: "PreToolUse",
                    command: command.clone(),
                    timeout_sec: timeout,
                },
                CodexHook {
                    event: "PostToolUse",
                    command: command.clone(),
                    timeout_sec: 30,
                },
            ];
            let source = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
            let (merged, entries) = codex::merge(
                &shown,
                &source.to_string_lossy(),
                current.as_deref(),
                &hooks,
            )?;
            trust = entries;
            let user_config = env.codex_user_config();
            if request.scope == Scope::User || user_config == path {
                let merged = codex::record_trust(&shown, Some(&merged), &trust)?;
                changes.push(FileChange {
                    path: path.clone(),
                    before,
                    after: merged.into_bytes(),
                });
            } else {
                changes.push(FileChange {
                    path: path.clone(),
                    before,
                    after: merged.into_bytes(),
                });
                let user_before = read_optional(&user_config)?;
                let user_text = text(&user_config, &user_before)?;
                let trusted = codex::record_trust(
                    &user_config.display().to_string(),
                    user_text.as_deref(),
                    &trust,
                )?;
                changes.push(FileChange {
                    path: user_config.clone(),
                    before: user_before,
                    after: trusted.into_bytes(),
                });
                notes.push(format!(
                    "the project must also be trusted by Codex ([projects.\"{}\"] trust_level = \"trusted\" in {}), or Codex loads its config.toml disabled",
                    request.project.as_deref().unwrap_or(Path::new(".")).display(),
                    user_config.display()
                ));
            }
            notes.push(format!(
                "Codex trust recorded for {} hook(s) in {} (Codex has no fail-closed option: Gatehouse's hook answers every failure with an explicit deny)",
                trust.len(),
                env.codex_user_config().display()
            ));
        }
        _ => {
            let planned = json_hooks(request, features, &command, timeout, &mut notes);
            let merged = settings::merge(host, &shown, current.as_deref(), &planned)?;
            changes.push(FileChange {
                path: path.clone(),
                before,
                after: merged.into_bytes(),
            });
        }
    }
    let plan = InstallPlan {
        host,
        scope: request.scope,
        changes,
        trust,
        notes,
    };
    validate(&plan, features.on_failure_block)?;
    Ok(plan)
}

fn json_hooks(
    request: &InstallRequest,
    features: version::Features,
    command: &str,
    timeout: u64,
    notes: &mut Vec<String>,
) -> Vec<PlannedHook> {
    let hook = |event: &str, matcher: Option<&str>, handler: Value| PlannedHook {
        event: event.to_owned(),
        matcher: matcher.map(str::to_owned),
        handler,
    };
    match request.host {
        Host::ClaudeCode => {
            let mut pre = match &request.transport {
                Transport::Http { url } if features.http_hooks => json!({
                    "type": "http",
                    "url": format!("{}/v1/hooks/claude-code", url.trim_end_matches('/')),
                    "timeout": timeout,
                    "headers": {"Authorization": "Bearer $GATEHOUSE_TOKEN"},
                    "allowedEnvVars": ["GATEHOUSE_TOKEN"],
                }),
                transport => {
                    if matches!(transport, Transport::Http { .. }) {
                        notes.push("this Claude Code version has no HTTP hooks: the command hook is installed instead".into());
                    }
                    json!({"type": "command", "command": command, "timeout": timeout})
                }
            };
            if features.on_failure_block {
                pre["onFailure"] = json!("block");
                notes.push("onFailure: \"block\" set: a hook that fails, times out or is missing blocks the call".into());
            } else {
                notes.push(format!(
                    "WARNING: Claude Code {} has no onFailure option (needs {}): a crashed or missing hook lets the call run; upgrade Claude Code",
                    request.version.map(|v| v.to_string()).unwrap_or_default(),
                    version::CLAUDE_ON_FAILURE
                ));
            }
            vec![
                hook("PreToolUse", Some("*"), pre),
                hook(
                    "PostToolUse",
                    Some("*"),
                    json!({"type": "command", "command": command, "timeout": 30}),
                ),
            ]
        }
        Host::Gemini => {
            notes.push("Gemini CLI has no fail-closed option: Gatehouse's hook answers every failure with an explicit deny (exit 2, reason on stderr)".into());
            vec![
                hook(
                    "BeforeTool",
                    Some(".*"),
                    json!({"name": "gatehouse", "type": "command", "command": command, "timeout": timeout * 1000}),
                ),
                hook(
                    "AfterTool",
                    Some(".*"),
                    json!({"name": "gatehouse-outcome", "type": "command", "command": command, "timeout": 30_000}),
                ),
            ]
        }
        Host::Cursor => {
            notes.push("failClosed: true set on every before-hook".into());
            let before = json!({"command": command, "timeout": timeout, "failClosed": true});
            let after = json!({"command": command, "timeout": 30});
            vec![
                hook("beforeShellExecution", None, before.clone()),
                hook("beforeMCPExecution", None, before.clone()),
                hook("preToolUse", None, before),
                hook("afterShellExecution", None, after.clone()),
                hook("afterMCPExecution", None, after),
            ]
        }
        Host::Codex => Vec::new(),
    }
}

/// Reads every changed file back: it must parse, hold Gatehouse's before-hook, and (where the
/// version supports it) fail closed.
fn validate(plan: &InstallPlan, on_failure_block: bool) -> Result<(), InstallError> {
    let host = plan.host;
    let Some(main) = plan.changes.first() else {
        return Err(InstallError::Validation("nothing to write".into()));
    };
    let shown = main.path.display().to_string();
    let text = String::from_utf8(main.after.clone())
        .map_err(|_| InstallError::Validation("not UTF-8".into()))?;
    match host {
        Host::Codex => {
            let source = std::path::absolute(&main.path).unwrap_or_else(|_| main.path.clone());
            let (found, _) = codex::inspect(&shown, &source.to_string_lossy(), &text)?;
            if !found.iter().any(|f| f.event == "PreToolUse") {
                return Err(InstallError::Validation(format!(
                    "{shown} has no Gatehouse PreToolUse hook"
                )));
            }
            for hook in &found {
                if !plan
                    .trust
                    .iter()
                    .any(|t| t.key == hook.key && t.trusted_hash == hook.current_hash)
                {
                    return Err(InstallError::Validation(format!(
                        "the trust recorded does not match the hook {}",
                        hook.key
                    )));
                }
            }
        }
        _ => {
            let inspection = settings::inspect(host, &shown, &text)?;
            if !inspection
                .events()
                .iter()
                .any(|e| settings::is_before_event(host, e))
            {
                return Err(InstallError::Validation(format!(
                    "{shown} has no Gatehouse before-tool hook"
                )));
            }
            let must_fail_closed = match host {
                Host::ClaudeCode => on_failure_block,
                Host::Cursor => true,
                _ => false,
            };
            if must_fail_closed && !inspection.fail_closed(host) {
                return Err(InstallError::Validation(format!(
                    "{shown}: the fail-closed option is not on every Gatehouse before-hook"
                )));
            }
        }
    }
    Ok(())
}

/// What `apply` recorded, to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub host: String,
    pub scope: Scope,
    pub files: Vec<ManifestFile>,
    /// Codex trust keys recorded (taken out again on uninstall).
    #[serde(default)]
    pub trust_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: PathBuf,
    /// The file existed before the first install (its bytes are in `backup`).
    pub existed: bool,
    pub backup: Option<PathBuf>,
    /// SHA-256 (hex) of what Gatehouse last wrote.
    pub installed_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The manifest file for one host's settings file, under `state_dir`.
pub fn manifest_path(state_dir: &Path, host: Host, settings: &Path) -> PathBuf {
    let id = &sha256_hex(settings.to_string_lossy().as_bytes())[..16];
    state_dir.join(format!("{}-{id}.json", host.as_str()))
}

pub fn read_manifest(path: &Path) -> Result<Option<Manifest>, InstallError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| InstallError::Manifest(format!("{}: {err}", path.display()))),
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename),
/// keeping the mode of the file it replaces.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings".into());
    let temp = dir.join(format!(".{name}.gatehouse-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(io(path))
}

/// Writes the plan: backups and manifest first (in `state_dir`), then each file.
pub fn apply(plan: &InstallPlan, state_dir: &Path) -> Result<PathBuf, InstallError> {
    std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    let main = plan
        .changes
        .first()
        .ok_or_else(|| InstallError::Validation("nothing to write".into()))?;
    let manifest_file = manifest_path(state_dir, plan.host, &main.path);
    let previous = read_manifest(&manifest_file)?;
    let mut files = Vec::new();
    for (index, change) in plan.changes.iter().enumerate() {
        // A re-install keeps the backup of the file as it was before the first install.
        let earlier = previous
            .as_ref()
            .and_then(|m| m.files.iter().find(|f| f.path == change.path))
            .filter(|f| !f.existed || f.backup.as_ref().is_some_and(|b| b.exists()));
        let (existed, backup) = match earlier {
            Some(file) => (file.existed, file.backup.clone()),
            None => match &change.before {
                Some(bytes) => {
                    let backup = manifest_file.with_extension(format!("{index}.orig"));
                    write_atomic(&backup, bytes)?;
                    (true, Some(backup))
                }
                None => (false, None),
            },
        };
        files.push(ManifestFile {
            path: change.path.clone(),
            existed,
            backup,
            installed_sha256: sha256_hex(&change.after),
        });
    }
    let mut trust_keys: Vec<String> = previous.map(|m| m.trust_keys).unwrap_or_default();
    for entry in &plan.trust {
        if !trust_keys.contains(&entry.key) {
            trust_keys.push(entry.key.clone());
        }
    }
    let manifest = Manifest {
        host: plan.host.as_str().to_owned(),
        scope: plan.scope,
        files,
        trust_keys,
    };
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|err| InstallError::Manifest(err.to_string()))?;
    write_atomic(&manifest_file, &body)?;
    for change in &plan.changes {
        write_atomic(&change.path, &change.after)?;
    }
    Ok(manifest_file)
}

/// What an uninstall did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    /// Restored byte for byte from the backup.
    Restored(PathBuf),
    /// Deleted: it did not exist before the install.
    Removed(PathBuf),
    /// Changed by someone since the install: only Gatehouse's entries were taken out.
    EntriesRemoved(PathBuf),
    /// Nothing of Gatehouse's was there.
    Untouched(PathBuf),
}

/// Takes Gatehouse out of `host`'s settings at `scope`.
pub fn uninstall(
    host: Host,
    scope: Scope,
    project: Option<&Path>,
    env: &HostEnv,
    state_dir: &Path,
) -> Result<Vec<Undone>, InstallError> {
    let path = settings_path(host, scope, project, env)?;
    let manifest_file = manifest_path(state_dir, host, &path);
    let manifest = read_manifest(&manifest_file)?;
    let mut undone = Vec::new();
    let files: Vec<ManifestFile> = match &manifest {
        Some(m) => m.files.clone(),
        None => vec![ManifestFile {
            path: path.clone(),
            existed: true,
            backup: None,
            installed_sha256: String::new(),
        }],
    };
    let keys = manifest
        .as_ref()
        .map(|m| m.trust_keys.clone())
        .unwrap_or_default();
    for file in &files {
        let current = read_optional(&file.path)?;
        let unchanged = current
            .as_ref()
            .is_some_and(|c| sha256_hex(c) == file.installed_sha256);
        match (unchanged, file.existed, &file.backup) {
            (true, true, Some(backup)) => {
                let bytes = std::fs::read(backup).map_err(io(backup))?;
                write_atomic(&file.path, &bytes)?;
                undone.push(Undone::Restored(file.path.clone()));
            }
            (true, false, _) => {
                std::fs::remove_file(&file.path).map_err(io(&file.path))?;
                undone.push(Undone::Removed(file.path.clone()));
            }
            _ => {
                let Some(current) = current else {
                    undone.push(Undone::Untouched(file.path.clone()));
                    continue;
                };
                let shown = file.path.display().to_string();
                let current = String::from_utf8(current)
                    .map_err(|_| InstallError::Validation(format!("{shown} is not UTF-8 text")))?;
                let after = match host {
                    Host::Codex => codex::unmerge(&shown, &current, &keys)?,
                    _ => settings::unmerge(host, &shown, &current)?,
                };
                if after == current {
                    undone.push(Undone::Untouched(file.path.clone()));
                } else {
                    write_atomic(&file.path, after.as_bytes())?;
                    undone.push(Undone::EntriesRemoved(file.path.clone()));
                }
            }
        }
    }
    if let Some(manifest) = manifest {
        for file in manifest.files {
            if let Some(backup) = file.backup {
                let _ = std::fs::remove_file(backup);
            }
        }
        std::fs::remove_file(&manifest_file).map_err(io(&manifest_file))?;
    }
    Ok(undone)
}
