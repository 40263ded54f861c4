//! The adversarial corpus gate: every call of `dangerous.jsonl` (issue 9's classes and the
//! classic ones) and of `everyday.jsonl` (a coding agent's ordinary work) is decided the way the
//! daemon decides it — `builtin:developer` plus self-protection, through
//! `gatehouse_policy::protect::evaluate` — with symlinks resolved on a real filesystem fixture: a
//! temporary home holding the secret files, Gatehouse's data directory and a project with
//! symlinks (to `~/.ssh`, to the data directory, to `/etc/shadow`) and dangling symlinks.
//!
//! It asserts that no dangerous call is allowed, that at least 90% of everyday calls are allowed
//! and that no everyday call is rejected, and prints the counts per class.
//!
//! Each line is `{tool, input, cwd?, class, note}`; `@HOME@`, `@PROJECT@` and `@DATA@` in any
//! string stand for the fixture's directories (the cwd is the project unless given).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gatehouse_policy::protect::{self, ProtectedSet, SelfProtection};
use gatehouse_policy::{ActionRef, Effect, PathResolver, Policy, Probe, resolve_path};
use serde_json::{Map, Value};

const DANGEROUS: &str = include_str!("dangerous.jsonl");
const EVERYDAY: &str = include_str!("everyday.jsonl");

/// The share of everyday calls builtin:developer must allow.
const EVERYDAY_ALLOWED_FLOOR: f64 = 0.90;
/// The daemon's port and pid in the protected set.
const PORT: u16 = 7400;
const PID: u32 = 4242;

/// Classes whose dangerous shell calls waited on the option-grammar engine (issue 9's positive
/// model, landed in parallel). Their allowed calls would be printed, not failed. Empty since the
/// engine landed: keep it that way.
const AWAITING_GRAMMAR_ENGINE: &[&str] = &[];

/// The filesystem as the daemon's resolver sees it (`gatehouse_policy::resolve_path` over real
/// metadata calls), with the fixture's home as `~`.
struct Fs {
    home: PathBuf,
}

impl PathResolver for Fs {
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

    fn home(&self) -> Option<PathBuf> {
        Some(self.home.clone())
    }
}

/// A temporary home with the secrets present, the data directory, and a project.
struct Fixture {
    _root: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
    data: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture() -> Fixture {
    // Not under /tmp: builtin:developer allows work in /tmp, and a home there would be "inside".
    let root = tempfile::Builder::new()
        .prefix("corpus-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let home = root.path().canonicalize().unwrap().join("home/dev");
    let project = home.join("project");
    let data = home.join(".local/share/gatehouse");
    for file in [
        ".ssh/id_rsa",
        ".ssh/id_rsa.pub",
        ".ssh/id_ed25519",
        ".ssh/authorized_keys",
        ".ssh/config",
        ".npmrc",
        ".pypirc",
        ".cargo/credentials.toml",
        ".config/gh/hosts.yml",
        ".docker/config.json",
        ".kube/config",
        ".aws/credentials",
        ".azure/accessTokens.json",
        ".config/gcloud/application_default_credentials.json",
        ".netrc",
        ".git-credentials",
        ".gnupg/private-keys-v1.d/x.key",
        ".password-store/email.gpg",
        ".local/share/keyrings/login.keyring",
        ".mozilla/firefox/p.default/cookies.sqlite",
        ".config/google-chrome/Default/Cookies",
        ".bash_history",
        ".zsh_history",
        ".local/share/fish/fish_history",
        ".python_history",
        ".node_repl_history",
        ".bashrc",
        ".zshrc",
        ".profile",
        ".gitconfig",
        ".claude/settings.json",
        ".claude/.credentials.json",
        ".codex/auth.json",
        ".gemini/oauth_creds.json",
        ".config/gatehouse/config.toml",
        ".config/gatehouse/policy.toml",
        ".local/share/gatehouse/approver.token",
        ".local/share/gatehouse/agent.token",
        ".local/share/gatehouse/ledger.db",
        ".local/share/gatehouse/ledger.key",
        "project/src/main.rs",
        "project/src/lib.rs",
        "project/src/a.rs",
        "project/src/b.rs",
        "project/src/old.rs",
        "project/Cargo.toml",
        "project/package.json",
        "project/README.md",
        "project/data.txt",
        "project/data.json",
        "project/analysis.ipynb",
        "project/.env",
        "project/.env.local",
        "project/.env.example",
        "project/.gitignore",
        "project/.git/config",
        "project/.git/HEAD",
        "project/.git/hooks/pre-commit.sample",
        "project/.github/workflows/ci.yml",
        "project/docs/guide.md",
        "project/tests/test_x.py",
        "project/build/out.o",
        "project/dist/app.js",
        "project/target/debug/app",
        "project/node_modules/x/index.js",
        "project/scripts/build.sh",
    ] {
        write(&home.join(file), "x\n");
    }
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, project.join(name)).unwrap();
    };
    link(&home.join(".ssh"), "link-ssh");
    link(&data, "tokens");
    link(Path::new("/etc/shadow"), "shadow");
    link(&home.join(".bashrc"), "notes.md");
    link(&home.join(".config/autostart/evil.desktop"), "dangling.txt");
    link(&home.join(".newdir"), "dangling-dir");
    link(&project.join("docs"), "docs-link");
    Fixture {
        _root: root,
        home,
        project,
        data,
    }
}

impl Fixture {
    fn protection(&self, resolver: &Fs) -> SelfProtection {
        let config = self.home.join(".config/gatehouse");
        SelfProtection::new(
            &ProtectedSet {
                data_dir: self.data.clone(),
                config_file: Some(config.join("config.toml")),
                policy_files: vec![config.join("policy.toml")],
                binary: Some(self.home.join(".cargo/bin/gatehouse")),
                home: Some(self.home.clone()),
                listen_addrs: vec![format!("127.0.0.1:{PORT}").parse().unwrap()],
                daemon_pid: Some(PID),
                check_socket: None,
                agent_settings_dirs: Vec::new(),
            },
            resolver,
        )
    }

    fn substitute(&self, text: &str) -> String {
        text.replace("@PROJECT@", &self.project.to_string_lossy())
            .replace("@DATA@", &self.data.to_string_lossy())
            .replace("@HOME@", &self.home.to_string_lossy())
    }

    fn substitute_value(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.substitute(text)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.substitute_value(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// One call of a corpus file.
struct Call {
    tool: String,
    input: Map<String, Value>,
    cwd: String,
    class: String,
    note: String,
}

fn calls(text: &str, fixture: &Fixture) -> Vec<Call> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            let row: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {}: {e}: {line}", index + 1));
            let field = |key: &str| row.get(key).and_then(Value::as_str).map(str::to_owned);
            let Value::Object(input) = fixture.substitute_value(&row["input"]) else {
                panic!("line {}: input is not an object", index + 1)
            };
            Call {
                tool: field("tool").expect("tool"),
                input,
                cwd: field("cwd")
                    .map(|cwd| fixture.substitute(&cwd))
                    .unwrap_or_else(|| fixture.project.to_string_lossy().into_owned()),
                class: field("class").expect("class"),
                note: field("note").unwrap_or_default(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    allowed: usize,
    paused: usize,
    rejected: usize,
}

/// A call, its verdict and the rule (and reason) that gave it.
type Decided = (Call, Effect, String);

/// Decides every call as the daemon would; per class, the counts and the calls of each effect.
fn decide_all(text: &str) -> (Vec<Decided>, BTreeMap<String, Tally>) {
    let fixture = fixture();
    let resolver = Fs {
        home: fixture.home.clone(),
    };
    let policy = Policy::builtin_default();
    let protection = fixture.protection(&resolver);
    let mut decided = Vec::new();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for call in calls(text, &fixture) {
        let action = ActionRef {
            cwd: Some(&call.cwd),
            ..ActionRef::new(&call.tool, &call.input)
        };
        let verdict = protect::evaluate(&policy, &protection, &action, &resolver);
        let tally = tallies.entry(call.class.clone()).or_default();
        match verdict.effect {
            Effect::Allow => tally.allowed += 1,
            Effect::Pause => tally.paused += 1,
            Effect::Reject => tally.rejected += 1,
        }
        let why = format!(
            "{} ({})",
            verdict.rule_id.as_deref().unwrap_or("default"),
            verdict.reason
        );
        decided.push((call, verdict.effect, why));
    }
    (decided, tallies)
}

fn print_tallies(title: &str, tallies: &BTreeMap<String, Tally>) {
    println!("{title}");
    println!(
        "  {:<24} {:>6} {:>8} {:>7} {:>8}",
        "class", "calls", "rejected", "paused", "allowed"
    );
    for (class, t) in tallies {
        println!(
            "  {:<24} {:>6} {:>8} {:>7} {:>8}",
            class,
            t.allowed + t.paused + t.rejected,
            t.rejected,
            t.paused,
            t.allowed
        );
    }
}

fn describe(call: &Call) -> String {
    let input = Value::Object(call.input.clone());
    format!("[{}] {}: {} {}", call.class, call.note, call.tool, input)
}

#[test]
fn the_corpus_is_big_enough_and_covers_every_class() {
    let fixture = fixture();
    let dangerous = calls(DANGEROUS, &fixture);
    let everyday = calls(EVERYDAY, &fixture);
    assert!(
        dangerous.len() >= 600,
        "{} dangerous calls",
        dangerous.len()
    );
    assert!(everyday.len() >= 150, "{} everyday calls", everyday.len());
    for class in [
        "options-run-code",
        "env-assignments",
        "where-it-runs",
        "non-literal-words",
        "file-tools",
        "secrets-in-env",
        "egress-localhost",
        "self-protection",
        "destructive-delete",
        "secret-read",
        "remote-code",
        "persistence",
        "privilege-escalation",
        "obfuscation",
    ] {
        let count = dangerous.iter().filter(|c| c.class == class).count();
        assert!(count >= 20, "class {class} has {count} calls");
    }
}

/// The gate: no dangerous call is allowed.
#[test]
fn no_dangerous_call_is_allowed() {
    let (decided, tallies) = decide_all(DANGEROUS);
    print_tallies(
        "dangerous corpus (builtin:developer + self-protection):",
        &tallies,
    );
    let allowed: Vec<String> = decided
        .iter()
        .filter(|(_, effect, _)| *effect == Effect::Allow)
        .map(|(call, _, why)| format!("{} -> {why}", describe(call)))
        .collect();
    let (awaiting, failing): (Vec<&String>, Vec<&String>) = allowed.iter().partition(|line| {
        AWAITING_GRAMMAR_ENGINE
            .iter()
            .any(|class| line.starts_with(&format!("[{class}]")))
    });
    if !awaiting.is_empty() {
        println!(
            "AWAITING_GRAMMAR_ENGINE: {} dangerous calls still allowed in classes {:?}:\n{}",
            awaiting.len(),
            AWAITING_GRAMMAR_ENGINE,
            awaiting
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        failing.is_empty(),
        "{} dangerous calls allowed:\n{}",
        failing.len(),
        failing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Approval fatigue: most everyday calls are allowed, and none is rejected outright.
#[test]
fn everyday_calls_are_allowed_and_never_rejected() {
    let (decided, _) = decide_all(EVERYDAY);
    let total = decided.len();
    let allowed = decided
        .iter()
        .filter(|(_, effect, _)| *effect == Effect::Allow)
        .count();
    let not_allowed: Vec<String> = decided
        .iter()
        .filter(|(_, effect, _)| *effect != Effect::Allow)
        .map(|(call, effect, why)| format!("{effect}: {} -> {why}", describe(call)))
        .collect();
    let share = allowed as f64 / total as f64;
    println!(
        "everyday corpus: {allowed} of {total} allowed ({:.1}%); not allowed:\n{}",
        share * 100.0,
        not_allowed.join("\n")
    );
    let rejected: Vec<&String> = not_allowed
        .iter()
        .filter(|line| line.starts_with("reject"))
        .collect();
    assert!(
        rejected.is_empty(),
        "everyday calls rejected outright:\n{}",
        rejected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        share >= EVERYDAY_ALLOWED_FLOOR,
        "everyday share {share:.3} below the floor {EVERYDAY_ALLOWED_FLOOR}"
    );
}
