//! The policy in force: loaded at start-up, swapped atomically when its file changes (a check
//! in flight finishes on the policy it started with), and the filesystem resolver path rules
//! use to see through symlinks. Next to it, the built-in self-protection (Gatehouse's own files,
//! process and decision endpoint), which every action is checked against too.
//!
//! *Invariant*: an invalid file never replaces a valid policy. The last good policy stays in
//! force, and the error is logged and reported on `/healthz` until a valid file is saved.
//!
//! *Invariant*: no policy can switch self-protection off. It is held apart from the policy
//! (a reload never touches it) and combined after the policy's verdict, observe mode included:
//! a protection reject beats anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use gatehouse_policy::protect::{self, ProtectedSet, SelfProtection};
use gatehouse_policy::{ActionRef, Evaluation, PathResolver, Policy, Probe, resolve_path};

use crate::config::Config;
use crate::file_watch::watch_file;

/// Where the policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Builtin,
    File(PathBuf),
}

impl PolicySource {
    pub fn name(&self) -> String {
        match self {
            PolicySource::Builtin => "builtin:developer".into(),
            PolicySource::File(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct PolicyStatus {
    /// How many times a new policy was put in force since start-up.
    pub reloads: u64,
    /// Why the file on disk is not in force, if it is not.
    pub error: Option<String>,
}

/// The policy in force and, when it was pushed into the ledger (`gatehouse policy push`), its
/// version: swapped together, so a check reads both from one load.
#[derive(Debug)]
pub struct InForce {
    pub policy: Arc<Policy>,
    pub version: Option<i64>,
}

pub struct PolicyStore {
    current: ArcSwap<InForce>,
    /// Serialises pushes, so versions are put in force in the order the ledger numbered them.
    pub(crate) push_lock: tokio::sync::Mutex<()>,
    /// Checked on every action next to the policy; a reload never replaces it.
    protection: ArcSwap<SelfProtection>,
    source: PolicySource,
    status: Mutex<PolicyStatus>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("source", &self.source)
            .finish()
    }
}

impl PolicyStore {
    /// A store whose self-protection knows the policy file, the binary, the home and this
    /// process; [`PolicyStore::protect`] completes it once the daemon knows its data directory
    /// and address.
    pub fn new(policy: Policy, source: PolicySource) -> PolicyStore {
        let set = ProtectedSet {
            policy_files: match &source {
                PolicySource::File(path) => vec![absolute(path)],
                PolicySource::Builtin => Vec::new(),
            },
            binary: std::env::current_exe().ok(),
            home: home_dir(),
            daemon_pid: Some(std::process::id()),
            ..ProtectedSet::default()
        };
        PolicyStore {
            current: ArcSwap::from_pointee(InForce {
                policy: Arc::new(policy),
                version: None,
            }),
            push_lock: tokio::sync::Mutex::new(()),
            protection: ArcSwap::from_pointee(SelfProtection::new(&set, &FsResolver)),
            source,
            status: Mutex::new(PolicyStatus::default()),
        }
    }

    /// The policy in force now; a check holds on to it for its whole evaluation.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.current.load().policy)
    }

    /// The policy in force with its ledger version (`None` for the file or built-in policy).
    pub fn in_force(&self) -> Arc<InForce> {
        self.current.load_full()
    }

    /// The ledger version in force, if a pushed version is.
    pub fn version(&self) -> Option<i64> {
        self.current.load().version
    }

    pub fn name(&self) -> String {
        match self.version() {
            Some(version) => format!("ledger policy version {version}"),
            None => self.source.name(),
        }
    }

    /// Puts a policy version pushed into the ledger in force, atomically (a check in flight
    /// finishes on the policy it started with). From then on the policy file is not reloaded:
    /// the ledger's versions are the policy.
    pub fn apply_version(&self, policy: Policy, version: i64) {
        let rules = policy.rule_count();
        self.current.store(Arc::new(InForce {
            policy: Arc::new(policy),
            version: Some(version),
        }));
        if let Ok(mut status) = self.status.lock() {
            status.reloads += 1;
            status.error = None;
        }
        tracing::info!(version, rules, "policy version put in force");
    }

    /// Puts the daemon's whole protected set in force (see [`protected_set`]).
    pub fn protect(&self, set: &ProtectedSet) {
        self.protection
            .store(Arc::new(SelfProtection::new(set, &FsResolver)));
    }

    /// Tier 1's verdict on one action under `policy` (the one the check loaded at its start):
    /// the shell command is parsed once for both, the policy decides, and self-protection
    /// overrides it whenever it is at least as strict.
    pub fn evaluate(&self, policy: &Policy, action: &ActionRef<'_>) -> Evaluation {
        protect::evaluate(policy, &self.protection.load(), action, &FsResolver)
    }

    /// The built-in self-protection in force.
    pub fn protection(&self) -> Arc<SelfProtection> {
        self.protection.load_full()
    }

    /// [`PolicyStore::evaluate`], then the standing grants: a pause they may turn into an allow
    /// becomes one, naming the grant (`gatehouse_policy::grant::evaluate`). Without grants it
    /// is exactly `evaluate`.
    pub fn evaluate_granted(
        &self,
        policy: &Policy,
        grants: &gatehouse_policy::grant::GrantSet,
        action: &ActionRef<'_>,
    ) -> Evaluation {
        gatehouse_policy::grant::evaluate(
            policy,
            &self.protection.load(),
            grants,
            action,
            &FsResolver,
            crate::clock::now_ms(),
        )
    }

    /// Self-protection's own verdict on `action`, apart from the policy's (`None`: nothing it
    /// guards). An edited input must not be one it guards (edit then approve).
    pub fn protection_verdict(
        &self,
        policy: &Policy,
        action: &ActionRef<'_>,
    ) -> Option<Evaluation> {
        let text = protect::shell_command(policy, action)
            .filter(|text| text.len() <= protect::MAX_PROTECTED_COMMAND_BYTES);
        let parsed = text.map(gatehouse_policy::shell::parse);
        self.protection
            .load()
            .check(action, text.zip(parsed.as_ref()), &FsResolver)
    }

    pub fn status(&self) -> PolicyStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reads the file again: a valid policy replaces the current one, an invalid one is refused.
    pub fn reload(&self) {
        let PolicySource::File(path) = &self.source else {
            return;
        };
        if let Some(version) = self.version() {
            tracing::warn!(path = %path.display(), version, "the policy file changed but a pushed ledger version is in force: not reloaded (use `gatehouse policy push`)");
            return;
        }
        let outcome = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))
            .and_then(|text| Policy::from_toml(&text).map_err(|err| err.to_string()));
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match outcome {
            Ok(policy) => {
                let rules = policy.rule_count();
                self.current.store(Arc::new(InForce {
                    policy: Arc::new(policy),
                    version: None,
                }));
                status.reloads += 1;
                status.error = None;
                tracing::info!(path = %path.display(), rules, "policy reloaded");
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "policy change refused; the last good policy stays in force");
                status.error = Some(error);
            }
        }
    }

    /// Watches the policy file and reloads it when it changes. The watcher lives as long as the
    /// returned guard. Editors often replace a file by renaming over it, so the directory is
    /// watched and events are filtered by name.
    pub fn watch(self: &Arc<Self>) -> Option<notify::RecommendedWatcher> {
        let PolicySource::File(path) = &self.source else {
            return None;
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let file_name = path.file_name()?.to_owned();
        let store = Arc::downgrade(self);
        // A save is often several events (truncate, write, rename): let them settle.
        watch_file(
            &dir,
            file_name,
            Duration::from_millis(100),
            "policy file",
            move || store.upgrade().map(|store| store.reload()).is_some(),
        )
    }
}

/// What the daemon protects: its data directory, config and policy files, binary, the user's
/// home (for hook settings), its listen address and its pid.
pub fn protected_set(config: &Config, data_dir: &Path, listen: SocketAddr) -> ProtectedSet {
    ProtectedSet {
        data_dir: absolute(data_dir),
        config_file: config.config_file.as_deref().map(absolute),
        policy_files: config.policy.as_deref().map(absolute).into_iter().collect(),
        binary: std::env::current_exe().ok(),
        home: home_dir(),
        listen_addrs: vec![listen],
        daemon_pid: Some(std::process::id()),
        check_socket: config.hardened.socket.as_deref().map(absolute),
        agent_settings_dirs: agent_settings_dirs(std::env::vars_os()),
    }
}

/// The agent hosts' settings directories the environment moved out of the home: each host reads
/// its hook settings from there when the variable is set.
fn agent_settings_dirs(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<PathBuf> {
    // Each variable, and where the host's settings are under it.
    const MOVED_BY: &[(&str, &str)] = &[
        ("CLAUDE_CONFIG_DIR", ""),
        ("CODEX_HOME", ""),
        ("GEMINI_CLI_HOME", ".gemini"),
    ];
    vars.filter(|(_, value)| !value.is_empty())
        .filter_map(|(name, value)| {
            let (_, under) = MOVED_BY.iter().find(|(known, _)| name == *known)?;
            Some(absolute(&Path::new(&value).join(under)))
        })
        .collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute())
}

/// Resolves paths on the real filesystem for the policy's path rules: every symlink is followed
/// (`gatehouse_policy::resolve_path`), a dangling one to where a write through it would land, so
/// `ln -s ~/.ssh x; cat x/id_rsa` is seen for what it is. A handful of metadata calls per path
/// argument; no file is opened or read.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsResolver;

impl PathResolver for FsResolver {
    /// `$HOME`, so path rules know `~/.ssh` and `/home/me/.ssh` are the same directory.
    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|home| home.is_absolute())
    }

    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        resolve_path(
            path,
            &mut |part: &Path| match std::fs::symlink_metadata(part) {
                Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(part) {
                    Ok(target) => Probe::Link(target),
                    Err(_) => Probe::Missing,
                },
                Ok(_) => Probe::Present,
                Err(_) => Probe::Missing,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn agent_settings_moved_by_the_environment_are_protected_where_they_moved() {
        let vars = [
            ("CLAUDE_CONFIG_DIR", "/srv/claude"),
            ("CODEX_HOME", "/srv/codex"),
            ("GEMINI_CLI_HOME", "/srv/gem"),
            ("HOME", "/root"),
            ("CODEX_HOME_EXTRA", "/nope"),
        ]
        .into_iter()
        .map(|(name, value)| (name.into(), value.into()));
        assert_eq!(
            super::agent_settings_dirs(vars),
            [
                std::path::PathBuf::from("/srv/claude"),
                "/srv/codex".into(),
                "/srv/gem/.gemini".into()
            ]
        );
    }
    use super::*;

    #[test]
    fn the_resolver_follows_symlinks_through_the_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let resolved = FsResolver
            .canonicalize(&link.join("not/yet/there"))
            .unwrap();
        assert_eq!(resolved, real.canonicalize().unwrap().join("not/yet/there"));
    }

    #[test]
    fn a_dangling_symlink_resolves_to_where_a_write_would_land() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir(&project).unwrap();
        let outside = dir.path().join("outside/.bashrc");
        let link = project.join("notes.txt");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let resolved = FsResolver.canonicalize(&link).unwrap();
        assert_eq!(
            resolved,
            dir.path().canonicalize().unwrap().join("outside/.bashrc")
        );
    }

    #[test]
    fn path_rules_know_the_home_directory_through_the_resolver() {
        let Some(home) = FsResolver.home() else {
            return; // no $HOME in this environment: nothing to relate `~` to
        };
        let policy = Policy::from_toml(
            "[[rules]]\nid = \"keys\"\neffect = \"reject\"\npath = { glob = \"~/.ssh/*\" }\n",
        )
        .unwrap();
        let mut input = serde_json::Map::new();
        let path = home.join(".ssh/id_rsa");
        input.insert(
            "file_path".into(),
            path.to_string_lossy().into_owned().into(),
        );
        let action = gatehouse_policy::ActionRef::new("Read", &input);
        assert_eq!(
            policy.evaluate_with(&action, &FsResolver).effect,
            gatehouse_policy::Effect::Reject
        );
        assert_eq!(
            policy.evaluate(&action).effect,
            gatehouse_policy::Effect::Pause,
            "without the resolver `~` is not known"
        );
    }

    #[test]
    fn an_invalid_file_never_replaces_the_policy_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "default = \"allow\"\n").unwrap();
        let store = PolicyStore::new(
            Policy::from_toml("default = \"allow\"\n").unwrap(),
            PolicySource::File(path.clone()),
        );
        std::fs::write(&path, "default = \"sometimes\"\n").unwrap();
        store.reload();
        assert_eq!(
            store.current().default_effect(),
            gatehouse_policy::Effect::Allow
        );
        assert!(store.status().error.unwrap().contains("sometimes"));
        std::fs::write(&path, "default = \"reject\"\n").unwrap();
        store.reload();
        assert_eq!(
            store.current().default_effect(),
            gatehouse_policy::Effect::Reject
        );
        assert_eq!(store.status().error, None);
        assert_eq!(store.status().reloads, 1);
    }
}
