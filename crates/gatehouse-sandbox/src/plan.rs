//! A profile resolved for one run: the exact paths the kernel will let the command read and
//! write, with the secret set cut out, and the network mode. The launcher applies a `Plan` with
//! Landlock; the supervisor uses the same `Plan` to say what a denied call was
//! (`Plan::read_allowed`/`write_allowed`), so the report and the enforcement share one source.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::profile::{Network, Profile};

/// Device files programs write to; always writable (they are not storage).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/random",
    "/dev/urandom",
];

/// Write places that are lock files: created empty before the run when their directory exists,
/// so that the directory itself can stay read-only.
const LOCK_FILES: &[&str] = &[".package-cache", ".package-cache-mutate", ".global-cache"];

/// How deep the read places are split around secrets (deeper secrets deny their whole branch).
const MAX_SPLIT_DEPTH: usize = 12;

/// Environment variables removed from the command's environment: credentials an agent's
/// environment may hold, Gatehouse's own, and agent sockets. Matched on the upper-cased name.
const ENV_REMOVED_EXACT: &[&str] = &[
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "NPM_TOKEN",
    "NODE_AUTH_TOKEN",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
];
const ENV_REMOVED_PREFIXES: &[&str] = &["GATEHOUSE_", "AWS_", "AZURE_", "GOOGLE_APPLICATION"];
const ENV_REMOVED_INFIXES: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
];

/// The places a profile is resolved against.
#[derive(Debug, Clone)]
pub struct Places {
    pub home: PathBuf,
    pub project: PathBuf,
    pub tmp: PathBuf,
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
    /// Gatehouse's data directory when it is not the default one (GATEHOUSE_DATA_DIR).
    pub data_dir: Option<PathBuf>,
}

impl Places {
    /// From this process's environment: HOME, CARGO_HOME, RUSTUP_HOME, GATEHOUSE_DATA_DIR.
    pub fn from_env(project: &Path, tmp: &Path) -> Result<Self, SandboxError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| SandboxError::Setup("HOME is not set".into()))?;
        let var = |name: &str, default: PathBuf| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        Ok(Places {
            cargo_home: var("CARGO_HOME", home.join(".cargo")),
            rustup_home: var("RUSTUP_HOME", home.join(".rustup")),
            data_dir: std::env::var_os("GATEHOUSE_DATA_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            home,
            project: project.to_path_buf(),
            tmp: tmp.to_path_buf(),
        })
    }

    /// One place as a path (`None` for a place that names nothing here).
    fn path(&self, place: &str) -> Result<PathBuf, SandboxError> {
        let (base, rest) = if let Some(rest) = place.strip_prefix('~') {
            (&self.home, rest)
        } else if let Some(rest) = place.strip_prefix("{project}") {
            (&self.project, rest)
        } else if let Some(rest) = place.strip_prefix("{tmp}") {
            (&self.tmp, rest)
        } else if let Some(rest) = place.strip_prefix("{cargo_home}") {
            (&self.cargo_home, rest)
        } else if let Some(rest) = place.strip_prefix("{rustup_home}") {
            (&self.rustup_home, rest)
        } else if place.starts_with('/') {
            return Ok(PathBuf::from(place));
        } else {
            return Err(SandboxError::Profile(format!(
                "place {place:?} is neither absolute nor ~, {{project}}, {{tmp}}, {{cargo_home}} or {{rustup_home}}"
            )));
        };
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            Ok(base.clone())
        } else {
            Ok(base.join(rest))
        }
    }
}

/// A profile resolved to paths for one run; what the launcher enforces and the supervisor
/// explains. Serialised to the launcher stages (it holds no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub profile: String,
    /// The working directory (canonical); the `{project}` of the profile.
    pub project: PathBuf,
    /// The private temporary directory (TMPDIR inside).
    pub tmp: PathBuf,
    /// Files and directories readable (and executable), secrets cut out.
    pub read: Vec<PathBuf>,
    /// Files and directories writable (and readable).
    pub write: Vec<PathBuf>,
    /// The secret paths cut out of the read places (for `profiles --explain` and reports).
    pub cut: Vec<PathBuf>,
    pub network: Network,
    pub hosts: Vec<String>,
    /// The filtering proxy's port on 127.0.0.1, when `network = "proxy"`.
    pub proxy_port: Option<u16>,
    /// Set in the command's environment.
    pub env_set: Vec<(String, String)>,
}

impl Plan {
    /// Resolves `profile` for a run in `places`. Refuses a write place that holds (or is in) a
    /// secret, and a project that is `/`, the home directory or one of its ancestors.
    pub fn resolve(name: &str, profile: &Profile, places: &Places) -> Result<Self, SandboxError> {
        let project = canonical(&places.project).ok_or_else(|| {
            SandboxError::Setup(format!(
                "the project directory {} does not exist",
                places.project.display()
            ))
        })?;
        let home = canonical(&places.home).unwrap_or_else(|| places.home.clone());
        if project == Path::new("/") || home.starts_with(&project) {
            return Err(SandboxError::Setup(format!(
                "refusing {} as the project directory: it holds the home directory",
                project.display()
            )));
        }
        let places = Places {
            project: project.clone(),
            home: home.clone(),
            ..places.clone()
        };
        let secrets = Secrets::new(&places)?;

        let mut write = Vec::new();
        for place in &profile.write {
            let path = places.path(place)?;
            let is_lock = path
                .file_name()
                .is_some_and(|n| LOCK_FILES.iter().any(|l| n == *l));
            if is_lock && !path.exists() && path.parent().is_some_and(Path::is_dir) {
                // Best effort: if it cannot be created the place is skipped (and cargo says why).
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
            }
            let Some(path) = canonical(&path) else {
                continue;
            };
            if let Some(secret) = secrets.held_by(&path) {
                return Err(SandboxError::Setup(format!(
                    "refusing to make {} writable: it holds the secret {}",
                    path.display(),
                    secret.display()
                )));
            }
            push_unique(&mut write, path);
        }
        for device in DEVICES {
            if let Some(path) = canonical(Path::new(device)) {
                push_unique(&mut write, path);
            }
        }

        let mut read = Vec::new();
        let mut cut = Vec::new();
        for place in &profile.read {
            let Some(path) = canonical(&places.path(place)?) else {
                continue;
            };
            secrets.split(&path, 0, &mut read, &mut cut);
        }
        read.sort();
        read.dedup();
        cut.sort();
        cut.dedup();

        let mut env_set = vec![
            (
                "TMPDIR".to_owned(),
                places.tmp.to_string_lossy().into_owned(),
            ),
            ("GATEHOUSE_SANDBOX".to_owned(), name.to_owned()),
        ];
        if profile.network == Network::None {
            env_set.push(("CARGO_NET_OFFLINE".to_owned(), "true".to_owned()));
        }
        Ok(Plan {
            profile: name.to_owned(),
            project,
            tmp: places.tmp.clone(),
            read,
            write,
            cut,
            network: profile.network,
            hosts: profile.hosts.clone(),
            proxy_port: None,
            env_set,
        })
    }

    /// Whether the plan lets the command read `path` (canonical, absolute).
    pub fn read_allowed(&self, path: &Path) -> bool {
        under_any(path, &self.read) || under_any(path, &self.write)
    }

    /// Whether the plan lets the command write (create, truncate, remove) `path`.
    pub fn write_allowed(&self, path: &Path) -> bool {
        under_any(path, &self.write)
    }

    /// Whether an environment variable is removed from the command's environment.
    pub fn env_removed(name: &str) -> bool {
        let upper = name.to_ascii_uppercase();
        ENV_REMOVED_EXACT.contains(&upper.as_str())
            || ENV_REMOVED_PREFIXES.iter().any(|p| upper.starts_with(p))
            || ENV_REMOVED_INFIXES.iter().any(|i| upper.contains(i))
    }
}

fn under_any(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

fn push_unique(list: &mut Vec<PathBuf>, path: PathBuf) {
    if !list.contains(&path) {
        list.push(path);
    }
}

/// `path` with symlinks resolved; `None` if it does not exist.
pub fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// `path` made absolute against `base` with `.` and `..` folded (no file system access).
pub fn lexical(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Whether `path` is `root` or lies below it, component-wise (`/a/bc` is not below `/a/b`);
/// both absolute and canonical.
fn beneath(path: &[u8], root: &[u8]) -> bool {
    let root = match root.strip_suffix(b"/") {
        Some(trimmed) => trimmed,
        None => root,
    };
    path.starts_with(root) && (path.len() == root.len() || path[root.len()] == b'/')
}

/// The secret set for this home and project, as globs and their literal prefixes.
struct Secrets {
    set: GlobSet,
    /// Each glob's literal leading directories, and how deep its matches lie below the root:
    /// `None` when a pattern follows and it holds `**` (any depth), otherwise its number of
    /// components (a match lies at exactly that depth).
    prefixes: Vec<(PathBuf, Option<usize>)>,
}

impl Secrets {
    fn new(places: &Places) -> Result<Self, SandboxError> {
        let mut globs =
            gatehouse_policy::sensitive::secret_paths(&places.home, &places.project, false);
        // CARGO_HOME may live outside the home directory; its credentials stay secret.
        for name in ["credentials", "credentials.toml"] {
            let path = canonical(&places.cargo_home).unwrap_or_else(|| places.cargo_home.clone());
            globs.push(path.join(name).to_string_lossy().into_owned());
        }
        for dir in [
            &places.data_dir,
            &Some(places.home.join(".local/share/gatehouse")),
        ]
        .into_iter()
        .flatten()
        {
            let dir = canonical(dir).unwrap_or_else(|| dir.clone());
            let dir = dir.to_string_lossy().into_owned();
            globs.push(format!("{dir}/**"));
            globs.push(dir);
        }
        // `/root` is secret to other users; for root (or a toolchain kept there) it is the
        // home, whose secrets are listed one by one above.
        let own_root = [&places.home, &places.cargo_home, &places.rustup_home]
            .iter()
            .any(|p| p.starts_with("/root"));
        if own_root {
            globs.retain(|g| g != "/root" && g != "/root/**");
        }
        let mut builder = GlobSetBuilder::new();
        let mut prefixes = Vec::new();
        for glob in &globs {
            // /proc/PID/{environ,mem} of processes outside the sandbox are closed by Landlock's
            // ptrace scoping; /proc cannot be split (PIDs come and go).
            if glob.starts_with("/proc/") {
                continue;
            }
            let compiled = GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|err| SandboxError::Setup(format!("secret glob {glob:?}: {err}")))?;
            builder.add(compiled);
            let mut prefix = PathBuf::from("/");
            for part in glob.split('/').filter(|p| !p.is_empty()) {
                if part.contains(['*', '?', '[', '{']) {
                    break;
                }
                prefix.push(part);
            }
            let depth = if glob.contains("**") {
                None
            } else {
                Some(glob.split('/').filter(|p| !p.is_empty()).count())
            };
            prefixes.push((prefix, depth));
        }
        let set = builder
            .build()
            .map_err(|err| SandboxError::Setup(format!("secret set: {err}")))?;
        Ok(Secrets { set, prefixes })
    }

    fn is_secret(&self, path: &Path) -> bool {
        self.set.is_match(path)
    }

    /// Whether some secret may lie strictly below `dir` (absolute, canonical: no `.`, `..` or
    /// doubled separators). Compared as bytes: splitting calls this once per entry it meets.
    fn may_hold(&self, dir: &Path) -> bool {
        let dir = dir.as_os_str().as_bytes();
        let dir_depth = dir.split(|b| *b == b'/').filter(|c| !c.is_empty()).count();
        self.prefixes.iter().any(|(prefix, depth)| {
            let prefix = prefix.as_os_str().as_bytes();
            (prefix != dir && beneath(prefix, dir))
                || (beneath(dir, prefix) && depth.is_none_or(|depth| depth > dir_depth))
        })
    }

    /// An existing secret at or below `root`, or `root` itself inside a secret.
    fn held_by(&self, root: &Path) -> Option<PathBuf> {
        if self.is_secret(root) {
            return Some(root.to_path_buf());
        }
        for (prefix, _) in &self.prefixes {
            if prefix.starts_with(root) && prefix.exists() && self.is_secret(prefix) {
                return Some(prefix.clone());
            }
        }
        if self.may_hold(root) {
            let (mut read, mut cut) = (Vec::new(), Vec::new());
            self.split(root, 0, &mut read, &mut cut);
            return cut.into_iter().find(|p| self.is_secret(p));
        }
        None
    }

    /// Adds to `read` the largest pieces of `root` that hold no secret; adds cut secrets to
    /// `cut`. Symlinks met while splitting are left out (their targets are decided by the
    /// kernel on their own paths).
    fn split(&self, root: &Path, depth: usize, read: &mut Vec<PathBuf>, cut: &mut Vec<PathBuf>) {
        if self.is_secret(root) {
            cut.push(root.to_path_buf());
            return;
        }
        if !self.may_hold(root) {
            read.push(root.to_path_buf());
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(root) else {
            return;
        };
        if !meta.is_dir() || depth >= MAX_SPLIT_DEPTH {
            if meta.is_dir() {
                cut.push(root.to_path_buf());
            } else {
                read.push(root.to_path_buf());
            }
            return;
        }
        let Ok(entries) = std::fs::read_dir(root) else {
            cut.push(root.to_path_buf());
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            self.split(&path, depth + 1, read, cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;

    fn places(home: &Path, project: &Path, tmp: &Path) -> Places {
        Places {
            home: home.to_path_buf(),
            project: project.to_path_buf(),
            tmp: tmp.to_path_buf(),
            cargo_home: home.join(".cargo"),
            rustup_home: home.join(".rustup"),
            data_dir: None,
        }
    }

    #[test]
    fn secrets_are_cut_out_of_read_places_and_writes_stay_in_the_roots() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let project = root.path().join("project");
        let tmp = root.path().join("tmp");
        for dir in [
            home.join(".ssh"),
            home.join(".cargo/registry"),
            home.join(".config/gh"),
            project.clone(),
            tmp.clone(),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(home.join(".ssh/id_rsa"), "fake").unwrap();
        std::fs::write(home.join(".cargo/credentials.toml"), "fake").unwrap();
        std::fs::write(home.join(".cargo/config.toml"), "").unwrap();
        let mut build = profile::builtin("build").unwrap();
        build.read.push("~".into());
        let plan = Plan::resolve("build", &build, &places(&home, &project, &tmp)).unwrap();
        let home = canonical(&home).unwrap();
        let project = canonical(&project).unwrap();
        assert!(!plan.read_allowed(&home.join(".ssh/id_rsa")));
        assert!(!plan.read_allowed(&home.join(".cargo/credentials.toml")));
        assert!(!plan.read_allowed(&home.join(".config/gh/hosts.yml")));
        assert!(plan.read_allowed(&home.join(".cargo/config.toml")));
        assert!(plan.read_allowed(&home.join(".cargo/registry/x")));
        assert!(plan.write_allowed(&project.join("target/debug/x")));
        assert!(plan.write_allowed(&home.join(".cargo/registry/x")));
        assert!(!plan.write_allowed(&home.join(".cargo/config.toml")));
        assert!(!plan.write_allowed(&home.join(".bashrc")));
        assert!(plan.write_allowed(Path::new("/dev/null")));
        assert!(plan.cut.contains(&home.join(".ssh")));
        // `~/.*_history` splits the home directory, not every directory below it.
        assert!(
            plan.read.contains(&home.join(".cargo/registry")),
            "{:?}",
            plan.read
        );
    }

    #[test]
    fn a_project_holding_the_home_or_a_secret_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let build = profile::builtin("build").unwrap();
        let err = Plan::resolve("build", &build, &places(&home, &home, root.path())).unwrap_err();
        assert!(err.to_string().contains("home directory"), "{err}");
        let err =
            Plan::resolve("build", &build, &places(&home, root.path(), root.path())).unwrap_err();
        assert!(err.to_string().contains("home directory"), "{err}");
        let mut bad = build.clone();
        bad.write.push("~/.ssh".into());
        let project = root.path().join("p");
        std::fs::create_dir_all(&project).unwrap();
        let err = Plan::resolve("x", &bad, &places(&home, &project, root.path())).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn secret_environment_variables_are_removed() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "GATEHOUSE_TOKEN",
            "LD_PRELOAD",
        ] {
            assert!(Plan::env_removed(name), "{name}");
        }
        for name in ["PATH", "HOME", "CARGO_HOME", "LANG", "RUSTFLAGS"] {
            assert!(!Plan::env_removed(name), "{name}");
        }
    }

    #[test]
    fn beneath_compares_whole_components() {
        assert!(beneath(b"/a/b", b"/a/b"));
        assert!(beneath(b"/a/b/c", b"/a/b"));
        assert!(!beneath(b"/a/bc", b"/a/b"));
        assert!(!beneath(b"/a", b"/a/b"));
        assert!(beneath(b"/a", b"/"));
        assert!(beneath(b"/", b"/"));
    }

    #[test]
    fn lexical_folds_dots() {
        assert_eq!(
            lexical(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(
            lexical(Path::new("/a"), Path::new("/x/../y")),
            PathBuf::from("/y")
        );
    }
}
