//! Self-protection that no policy can switch off: Gatehouse's own files, its process and its
//! decision endpoint are out of reach of the actions it judges.
//!
//! [`SelfProtection`] is built once from a [`ProtectedSet`] (the daemon's data directory, config
//! and policy files, binary, the user's home, its listen addresses and pid) and checks every
//! action *in addition to* the policy: the daemon combines both with [`combine`], so a protection
//! verdict beats an allow or a pause of any policy, include, observe mode or hot reload.
//!
//! What it rejects (rule ids `builtin:protect-*`):
//! - writes, edits, deletes, moves, permission changes, truncations, redirections and links onto
//!   a protected path (the data directory, the config and policy files, the binary, agents' hook
//!   settings), by file tools and shell commands, and destructive commands on a directory that
//!   holds one (`rm -rf ~/.claude`, `chmod -R 777 ~`);
//! - reading anything in the data directory (tokens, signing key, ledger);
//! - killing the daemon (`kill PID`, `kill -9 -1`, `pkill`/`killall` patterns naming it,
//!   `systemctl stop gatehouse`);
//! - calling the decision or login endpoints of the daemon, or opening a raw socket to its port;
//! - running the `gatehouse` binary's approver commands (`approve`, `deny`, `dashboard`).
//!
//! Paths are judged as written, normalised against the action's `cwd` (and any literal `cd`
//! earlier on the line), with `~` expanded, and in canonical form through the caller's
//! [`PathResolver`] (symlinks). It is pure: no IO beyond the resolver, no clock.
//!
//! *Boundary*: this is not a sandbox. A program that writes a file named only at run time
//! (`python script.py`, a variable, a config file of another tool) is not seen; that is the
//! policy's business, which never allows an opaque command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value};

use crate::command::{PathResolver, lexical};
use crate::effect::Effect;
use crate::policy::{ActionRef, Evaluation, Policy};
use crate::shell::{self, ParsedCommand, SimpleCommand, WordKind};

/// A write, edit, delete, move or permission change onto a protected path.
pub const PROTECT_WRITE: &str = "builtin:protect-write";
/// Reading Gatehouse's data directory (tokens, signing key, ledger).
pub const PROTECT_SECRET: &str = "builtin:protect-secret";
/// Killing or stopping the daemon.
pub const PROTECT_KILL: &str = "builtin:protect-kill";
/// Calling the daemon's decision or login endpoints, or a raw socket to its port.
pub const PROTECT_ENDPOINT: &str = "builtin:protect-endpoint";
/// Running the `gatehouse` binary's approver commands.
pub const PROTECT_APPROVE: &str = "builtin:protect-approve";
/// A path near a protected one whose canonical form could not be resolved.
pub const PROTECT_UNRESOLVED: &str = "builtin:protect-unresolved";

/// Command lines longer than this are not parsed for self-protection; they pause.
pub const MAX_PROTECTED_COMMAND_BYTES: usize = 64 * 1024;

/// What the daemon must keep out of reach of the actions it judges.
#[derive(Clone, Debug, Default)]
pub struct ProtectedSet {
    /// Tokens, ledger, signing key: neither read nor written.
    pub data_dir: PathBuf,
    /// The configuration file the daemon was started with, if any.
    pub config_file: Option<PathBuf>,
    /// The policy file in force and every file it includes.
    pub policy_files: Vec<PathBuf>,
    /// The daemon's own executable.
    pub binary: Option<PathBuf>,
    /// The user's home, for `~` and the home-level hook settings.
    pub home: Option<PathBuf>,
    /// Where the daemon listens: its port is the one actions may not call.
    pub listen_addrs: Vec<SocketAddr>,
    /// The daemon's process id.
    pub daemon_pid: Option<u32>,
    /// Hardened mode's check socket: removing or replacing it would cut agents off from (or put a
    /// stand-in between them and) the daemon.
    pub check_socket: Option<PathBuf>,
    /// Agent hosts' settings directories moved out of the home by the environment the daemon
    /// started in (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `GEMINI_CLI_HOME`): their hook settings.
    pub agent_settings_dirs: Vec<PathBuf>,
}

/// The agent hosts' system-wide (managed) settings: they override the user's, hooks included,
/// so an agent running as root could turn Gatehouse's hooks off there.
const MANAGED_SETTINGS_DIRS: &[&str] = &[
    "/etc/claude-code",
    "/Library/Application Support/ClaudeCode",
    "/etc/codex",
    "/etc/gemini-cli",
    "/Library/Application Support/GeminiCli",
];

/// How a path is protected, weakest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Inside the data directory: no reads, no writes.
    Secret,
    /// The data directory itself: no writes, no recursive reads.
    DataDir,
    /// Config, policy, binary, hook settings: no writes.
    Protected,
    /// A directory holding something protected: no destructive commands on it.
    Container,
}

#[derive(Clone, Copy, Debug)]
struct Hit {
    kind: Kind,
    what: &'static str,
}

/// A protected path known in advance, for the "directory holding it" test.
#[derive(Clone, Debug)]
struct Anchor {
    /// Lowercase, absolute, without trailing `/`.
    path: String,
    what: &'static str,
}

/// The compiled protected set. Cheap to share; checking an action costs microseconds plus the
/// resolver's metadata calls.
#[derive(Clone, Debug)]
pub struct SelfProtection {
    home: Option<String>,
    globs: GlobSet,
    hits_of_glob: Vec<Hit>,
    anchors: Vec<Anchor>,
    ports: Vec<u16>,
    pid: Option<u32>,
    /// Lowercase file names the daemon runs under (`gatehouse` and the binary's name).
    binary_names: Vec<String>,
    /// Full command lines the daemon may run under, for `pkill -f`.
    command_lines: Vec<String>,
    /// The data directory, lowercase, absolute, without trailing `/` (each spelling).
    data_dirs: Vec<String>,
}

/// Files Gatehouse keeps in its data directory: a non-literal command whose literal parts name
/// one of them is reaching for the tokens.
const DATA_FILE_NAMES: &[&str] = &[
    "approver.token",
    "agent.token",
    "ledger.key",
    "ledger.db",
    "ledger.db-wal",
    "ledger.db-shm",
    "daemon.lock",
];

/// Programs that serve a directory over HTTP, and how they name it (`None`: the cwd, unless a
/// later operand or a `--directory`-like option names one).
const HTTP_SERVERS: &[&str] = &[
    "http.server",
    "SimpleHTTPServer",
    "http-server",
    "serve",
    "httpd",
    "live-server",
    "browser-sync",
    "webfsd",
];

/// A finding of the protection: the verdict it forces.
struct Finding {
    effect: Effect,
    rule: &'static str,
    reason: String,
}

impl Finding {
    fn reject(rule: &'static str, reason: String) -> Finding {
        Finding {
            effect: Effect::Reject,
            rule,
            reason,
        }
    }

    fn into_evaluation(self) -> Evaluation {
        Evaluation {
            effect: self.effect,
            rule_id: Some(Arc::from(self.rule)),
            reason: Arc::from(self.reason),
            observed: None,
            confine: None,
        }
    }
}

/// The strongest finding so far; a reject ends the search.
#[derive(Default)]
struct Findings(Option<Finding>);

impl Findings {
    fn offer(&mut self, finding: Option<Finding>) {
        let Some(finding) = finding else { return };
        let stronger = match &self.0 {
            None => true,
            Some(current) => finding.effect.strength() > current.effect.strength(),
        };
        if stronger {
            self.0 = Some(finding);
        }
    }

    fn rejected(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.effect == Effect::Reject)
    }
}

/// The verdict of an action given the policy's evaluation and the protection's: a protection
/// verdict stricter than the policy's wins (its reject beats everything; its pause beats an
/// allow); when both are as strict, the policy's rule is named. Observe mode and hot reload
/// happen in the policy, so they can never relax it.
pub fn combine(policy: Evaluation, protection: Option<Evaluation>) -> Evaluation {
    match protection {
        Some(protection) if protection.effect.strength() > policy.effect.strength() => protection,
        _ => policy,
    }
}

/// Tier 1's verdict on one action as the daemon gives it: the shell command (the text at the
/// policy's `[shell] pointer`) is parsed once, the policy decides, and self-protection overrides
/// it whenever it is at least as strict ([`combine`]). Tests that mean "what the daemon would
/// say" call this too.
pub fn evaluate(
    policy: &Policy,
    protection: &SelfProtection,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
) -> Evaluation {
    let text = shell_command(policy, action);
    let parsed = text
        .filter(|text| text.len() <= MAX_PROTECTED_COMMAND_BYTES)
        .map(shell::parse);
    let evaluation = match &parsed {
        Some(parsed) => policy.evaluate_parsed(action, parsed, resolver),
        None => policy.evaluate_with(action, resolver),
    };
    let command = text.zip(parsed.as_ref());
    combine(evaluation, protection.check(action, command, resolver))
}

/// The command text the policy parses for this action (the string at its `[shell] pointer`), so
/// the caller can parse it once with [`shell::parse`] and hand the parse to both
/// [`Policy::evaluate_parsed`] and [`SelfProtection::check`].
pub fn shell_command<'a>(policy: &Policy, action: &ActionRef<'a>) -> Option<&'a str> {
    match policy.shell.pointer.resolve(action.input) {
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    }
}

/// Tool names (lowercase) that only read files or list names.
const READ_TOOLS: &[&str] = &[
    "read",
    "notebookread",
    "glob",
    "grep",
    "ls",
    "read_file",
    "read_many_files",
    "list_directory",
    "list_dir",
    "search_file_content",
    "codebase_search",
    "file_search",
    "view",
    "websearch",
    "webfetch",
    "todowrite",
    "todoread",
];

/// Read tools that read the contents of every file under a directory.
const RECURSIVE_READ_TOOLS: &[&str] = &[
    "grep",
    "read_many_files",
    "search_file_content",
    "codebase_search",
];

/// Programs that only look at names or print their arguments.
const META_PROGRAMS: &[&str] = &[
    "echo", "printf", "ls", "stat", "test", "[", "[[", "realpath", "readlink", "basename",
    "dirname", "which", "type", "pwd", "true", "false", "du", "df", "tree", "exa", "eza",
    "whereis", "mkdir", "export", "local", "declare", "unset", "readonly", "typeset", ":",
];

/// Programs that read the files they name (and write nothing named on the command line).
const READ_PROGRAMS: &[&str] = &[
    "cat",
    "tac",
    "less",
    "more",
    "head",
    "tail",
    "nl",
    "wc",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "ack",
    "diff",
    "cmp",
    "comm",
    "jq",
    "yq",
    "md5sum",
    "sha1sum",
    "sha224sum",
    "sha256sum",
    "sha384sum",
    "sha512sum",
    "b2sum",
    "cksum",
    "sum",
    "bat",
    "batcat",
    "od",
    "hexdump",
    "strings",
    "base64",
    "base32",
    "basenc",
    "cut",
    "paste",
    "fold",
    "fmt",
    "column",
    "look",
    "zcat",
    "bzcat",
    "xzcat",
    "zless",
    "zgrep",
    "file",
    "source",
    ".",
    "vimdiff",
    "colordiff",
    "delta",
    "git",
];

/// Readers that read every file under a directory they are given.
const RECURSIVE_READ_PROGRAMS: &[&str] = &["rg", "ag", "ack"];

/// Programs whose operands are destroyed or changed wholesale: on a directory that holds a
/// protected path, they reach it.
const DESTRUCTIVE_PROGRAMS: &[&str] = &[
    "rm",
    "rmdir",
    "unlink",
    "shred",
    "srm",
    "mv",
    "chmod",
    "chown",
    "chgrp",
    "chattr",
    "setfacl",
    "ln",
    "trash",
    "trash-put",
    "gio",
    "truncate",
    "rsync",
];

/// Programs that open raw connections: the daemon's port on their command line is enough.
const SOCKET_PROGRAMS: &[&str] = &[
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "openssl",
    "websocat",
    "wscat",
    "gnutls-cli",
];

/// git subcommands that only read the files they name.
const GIT_READS: &[&str] = &[
    "add",
    "diff",
    "log",
    "show",
    "status",
    "blame",
    "annotate",
    "grep",
    "ls-files",
    "commit",
    "cat-file",
    "shortlog",
    "whatchanged",
    "check-ignore",
    "check-attr",
];

/// Shell tools recognised whatever the policy says.
const SHELL_TOOLS: &[&str] = &[
    "bash",
    "shell",
    "sh",
    "run_shell_command",
    "execute_command",
    "exec_command",
    "local_shell",
    "terminal",
    "container.exec",
];

fn glob(pattern: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .case_insensitive(true)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// Escapes glob metacharacters in a literal path.
fn escape(path: &str) -> String {
    globset::escape(path)
}

fn path_text(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let trimmed = text.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

impl SelfProtection {
    /// Compiles the protected set. `resolver` adds the canonical form of each protected path
    /// (the daemon passes its filesystem resolver; tests a fake).
    pub fn new(set: &ProtectedSet, resolver: &dyn PathResolver) -> SelfProtection {
        let home = set.home.as_deref().and_then(path_text);
        let mut patterns: Vec<(String, Hit)> = Vec::new();
        let mut anchors: Vec<Anchor> = Vec::new();
        let mut add_path =
            |path: &Path, kind: Kind, what: &'static str, dir: bool, anchor: bool| {
                let mut forms = Vec::new();
                if let Some(text) = path_text(path) {
                    forms.push(text);
                }
                if path.is_absolute()
                    && let Some(canonical) = resolver.canonicalize(path)
                    && let Some(text) = path_text(&canonical)
                    && !forms.contains(&text)
                {
                    forms.push(text);
                }
                for form in forms {
                    let escaped = escape(&form);
                    if dir {
                        patterns.push((format!("{escaped}/**"), Hit { kind, what }));
                        patterns.push((
                            escaped,
                            Hit {
                                kind: if kind == Kind::Secret {
                                    Kind::DataDir
                                } else {
                                    kind
                                },
                                what,
                            },
                        ));
                    } else {
                        patterns.push((escaped, Hit { kind, what }));
                    }
                    if anchor && form.starts_with('/') {
                        anchors.push(Anchor {
                            path: form.to_lowercase(),
                            what,
                        });
                    }
                }
            };
        const DATA: &str = "Gatehouse's data directory (tokens, ledger, signing key)";
        const CONFIG: &str = "Gatehouse's configuration file";
        const POLICY: &str = "Gatehouse's policy file";
        const BINARY: &str = "Gatehouse's own binary";
        const SOCKET: &str = "Gatehouse's check socket";
        const HOOKS: &str = "an agent's hook settings";
        const CLIENT_CONFIG: &str = "curl's or wget's start-up file";
        if !set.data_dir.as_os_str().is_empty() {
            add_path(&set.data_dir, Kind::Secret, DATA, true, true);
        }
        if let Some(config) = &set.config_file {
            add_path(config, Kind::Protected, CONFIG, false, true);
        }
        for policy in &set.policy_files {
            add_path(policy, Kind::Protected, POLICY, false, true);
        }
        if let Some(binary) = &set.binary {
            // Not an anchor: deleting the directory a binary sits in (`rm -rf target`) does not
            // stop a running daemon, and the binary itself stays protected.
            add_path(binary, Kind::Protected, BINARY, false, false);
        }
        if let Some(socket) = &set.check_socket {
            add_path(socket, Kind::Protected, SOCKET, false, true);
        }
        for dir in MANAGED_SETTINGS_DIRS {
            add_path(Path::new(dir), Kind::Protected, HOOKS, true, true);
        }
        for dir in &set.agent_settings_dirs {
            add_path(dir, Kind::Protected, HOOKS, true, true);
        }
        if let Some(home) = &set.home {
            add_path(&home.join(".codex"), Kind::Protected, HOOKS, true, true);
            for file in [
                ".claude/settings.json",
                ".claude/settings.local.json",
                ".gemini/settings.json",
                ".cursor/hooks.json",
            ] {
                add_path(&home.join(file), Kind::Protected, HOOKS, false, true);
            }
            // Read by every curl/wget run: a proxy or URL set there reaches the daemon unseen.
            for file in [".curlrc", ".config/.curlrc", ".wgetrc"] {
                add_path(
                    &home.join(file),
                    Kind::Protected,
                    CLIENT_CONFIG,
                    false,
                    false,
                );
            }
        }
        // Hook settings anywhere (projects have their own), and the directories holding them.
        for (pattern, kind) in [
            ("**/.claude/settings*.json", Kind::Protected),
            ("**/.cursor/hooks.json", Kind::Protected),
            ("**/.gemini/settings.json", Kind::Protected),
            ("**/.codex", Kind::Protected),
            ("**/.codex/**", Kind::Protected),
            ("**/.claude", Kind::Container),
            ("**/.cursor", Kind::Container),
            ("**/.gemini", Kind::Container),
        ] {
            patterns.push((pattern.to_owned(), Hit { kind, what: HOOKS }));
        }
        let mut builder = GlobSetBuilder::new();
        let mut hits_of_glob = Vec::new();
        for (pattern, hit) in patterns {
            if let Ok(glob) = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .case_insensitive(true)
                .backslash_escape(true)
                .build()
            {
                builder.add(glob);
                hits_of_glob.push(hit);
            }
        }
        let globs = builder.build().unwrap_or_else(|_| GlobSet::empty());
        let mut binary_names = vec!["gatehouse".to_owned()];
        let mut command_lines = vec!["gatehouse serve".to_owned()];
        if let Some(binary) = &set.binary {
            if let Some(name) = binary.file_name().and_then(|n| n.to_str()) {
                let name = name.to_lowercase();
                if !binary_names.contains(&name) {
                    binary_names.push(name);
                }
            }
            if let Some(text) = binary.to_str() {
                command_lines.push(format!("{text} serve"));
            }
        }
        let mut ports: Vec<u16> = set.listen_addrs.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        ports.retain(|&p| p != 0);
        let mut data_dirs = Vec::new();
        if !set.data_dir.as_os_str().is_empty() {
            for path in [
                Some(set.data_dir.clone()),
                resolver.canonicalize(&set.data_dir),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(text) = path_text(&path).map(|t| t.to_lowercase())
                    && text.starts_with('/')
                    && text != "/"
                    && !data_dirs.contains(&text)
                {
                    data_dirs.push(text);
                }
            }
        }
        SelfProtection {
            home,
            globs,
            hits_of_glob,
            anchors,
            ports,
            pid: set.daemon_pid,
            binary_names,
            command_lines,
            data_dirs,
        }
    }

    /// Checks one action against the protected set. `command` is the text at the policy's shell
    /// pointer with its parse (see [`shell_command`]), so the daemon parses once; other
    /// command-like fields (`command`, `cmd`, `script`, arrays of words) are parsed here.
    /// Returns the verdict protection forces, or `None` when it has nothing to say.
    pub fn check(
        &self,
        action: &ActionRef<'_>,
        command: Option<(&str, &ParsedCommand)>,
        resolver: &dyn PathResolver,
    ) -> Option<Evaluation> {
        let mut findings = Findings::default();
        let cx = Cx {
            cwd: action.cwd,
            resolver,
        };
        let tool = action.tool.to_lowercase();

        // Shell command lines: the policy's, and any other command-like field.
        let mut lines: Vec<String> = Vec::new();
        collect_command_lines(action.input, 0, &mut lines);
        if let Some((text, parsed)) = command {
            findings.offer(self.check_line(text, Some(parsed), &cx));
            lines.retain(|line| line != text);
        }
        for line in &lines {
            if findings.rejected() {
                break;
            }
            findings.offer(self.check_line(line, None, &cx));
        }

        // File tools: path-like fields.
        if !findings.rejected() && !SHELL_TOOLS.contains(&tool.as_str()) {
            let reads_only = READ_TOOLS.contains(&tool.as_str());
            let recursive = RECURSIVE_READ_TOOLS.contains(&tool.as_str());
            let mut paths = Vec::new();
            collect_paths(action.input, 0, &mut paths);
            for path in paths {
                if findings.rejected() {
                    break;
                }
                findings.offer(self.check_tool_path(&path, reads_only, recursive, &cx));
            }
        }

        // URLs anywhere in the input.
        if !findings.rejected() {
            let mut strings = Vec::new();
            collect_strings(action.input, 0, &mut strings);
            'strings: for text in strings {
                // A whole string that is the URL: a call. A URL inside a longer text (a script,
                // a curl config, docs about Gatehouse): it may be used later, so a person looks.
                if let Some(finding) = self.check_url(text, &[]) {
                    findings.offer(Some(finding));
                    break;
                }
                for token in url_tokens(text) {
                    if let Some(finding) = self.check_url(token, &[]) {
                        findings.offer(Some(Finding {
                            effect: Effect::Pause,
                            rule: PROTECT_ENDPOINT,
                            reason: format!(
                                "{}; written into a file or message, it could be used later",
                                finding.reason
                            ),
                        }));
                        break 'strings;
                    }
                }
            }
        }
        findings.0.map(Finding::into_evaluation)
    }

    fn check_line(
        &self,
        text: &str,
        parsed: Option<&ParsedCommand>,
        cx: &Cx<'_>,
    ) -> Option<Finding> {
        if text.len() > MAX_PROTECTED_COMMAND_BYTES {
            return Some(Finding {
                effect: Effect::Pause,
                rule: PROTECT_UNRESOLVED,
                reason: format!(
                    "the command is longer than {MAX_PROTECTED_COMMAND_BYTES} bytes; too long to \
                     check that it leaves Gatehouse alone"
                ),
            });
        }
        let owned;
        let parsed = match parsed {
            Some(parsed) => parsed,
            None => {
                owned = shell::parse(text);
                &owned
            }
        };
        let mut findings = Findings::default();
        // Literal `cd` earlier on the line changes what later relative paths mean: judge them
        // against every directory the line may be in.
        let mut cwds: Vec<Option<String>> = vec![cx.cwd.map(str::to_owned)];
        let looks_for_daemon = parsed.commands.iter().any(|c| self.names_daemon_process(c));
        for command in &parsed.commands {
            if findings.rejected() {
                break;
            }
            for cwd in cwds.clone() {
                let cx = Cx {
                    cwd: cwd.as_deref(),
                    resolver: cx.resolver,
                };
                findings.offer(self.check_command(command, looks_for_daemon, &cx));
                if findings.rejected() {
                    break;
                }
            }
            if findings.rejected() {
                break;
            }
            if matches!(command.program.as_str(), "cd" | "pushd") {
                let target = command
                    .positionals()
                    .next()
                    .map(|w| w.text.clone())
                    .unwrap_or(Some("~".to_owned()));
                if let Some(target) = target.filter(|t| t != "-") {
                    let mut next = Vec::new();
                    for cwd in &cwds {
                        let dir = self.absolute(&lexical(&target, cwd.as_deref()));
                        if !next.contains(&Some(dir.clone())) && !cwds.contains(&Some(dir.clone()))
                        {
                            next.push(Some(dir));
                        }
                    }
                    cwds.extend(next);
                    cwds.truncate(8);
                }
            }
        }
        let literal = !parsed.is_opaque()
            && parsed
                .commands
                .iter()
                .all(|c| c.is_static && !c.args_from_input);
        if !literal && !findings.rejected() {
            findings.offer(self.check_fragments(text));
        }
        findings.0
    }

    /// A line with words known only at run time (`"$(echo /home/u/.local/share/gateh)ouse/x"`,
    /// `$D/approver.token`, `find ... -exec cat {}`): its literal fragments may still name the
    /// data directory. A fragment naming a file Gatehouse keeps there, or spelling the data
    /// directory's path (whole or cut inside its last component), rejects; a fragment spelling
    /// the directory that holds it, or a long piece of its name, pauses.
    fn check_fragments(&self, text: &str) -> Option<Finding> {
        if self.data_dirs.is_empty() {
            return None;
        }
        let mut weak = None;
        for fragment in text
            .split(|c: char| c.is_whitespace() || "$(){}`\"';&|<>,=@:!#".contains(c) || c == '\\')
            .filter(|f| f.len() >= 3)
        {
            let lower = self.absolute(&fragment.to_lowercase());
            let strong = DATA_FILE_NAMES.iter().any(|name| {
                lower.contains(name)
                    || lower.rsplit('/').next().is_some_and(|last| {
                        // A glob with a few literal characters (`appr*`, `*.token`), not `*`.
                        has_glob_chars(last)
                            && last.chars().filter(|c| !"*?[]!".contains(*c)).count() >= 3
                            && glob(last).is_some_and(|m| m.is_match(name))
                    })
            }) || self.data_dirs.iter().any(|dir| {
                let parent_len = dir.rfind('/').unwrap_or(0);
                lower.contains(dir.as_str())
                    || (lower.starts_with('/')
                        && dir.starts_with(lower.trim_end_matches('/'))
                        && lower.trim_end_matches('/').len() > parent_len + 1)
            });
            if strong {
                return Some(Finding::reject(
                    PROTECT_SECRET,
                    format!(
                        "`{fragment}` in a command whose words are known only at run time names \
                         Gatehouse's data directory (tokens, ledger, signing key)"
                    ),
                ));
            }
            let names_part = self.data_dirs.iter().any(|dir| {
                let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
                (lower.starts_with('/') && lower.trim_end_matches('/') == parent)
                    || (name.len() >= 6
                        && lower.len() >= 5
                        && (name.contains(lower.trim_matches(['/', '.', '*', '?']))
                            || lower.contains(name)))
            });
            if names_part && weak.is_none() {
                weak = Some(Finding {
                    effect: Effect::Pause,
                    rule: PROTECT_UNRESOLVED,
                    reason: format!(
                        "`{fragment}` in a command whose words are known only at run time may \
                         name Gatehouse's data directory"
                    ),
                });
            }
        }
        weak
    }

    /// One simple command, its words judged by what the program does with them.
    fn check_command(
        &self,
        command: &SimpleCommand,
        looks_for_daemon: bool,
        cx: &Cx<'_>,
    ) -> Option<Finding> {
        let program = command.program.as_str();

        for redirect in &command.redirects {
            let Some(target) = redirect.target.as_deref() else {
                continue;
            };
            if let Some(finding) = self.check_socket_path(target) {
                return Some(finding);
            }
            let found = self.classify_word(target, cx);
            if let Some(unresolved) = found.unresolved {
                return Some(unresolved);
            }
            if let Some(hit) = found.hit {
                if redirect.write && hit.kind != Kind::Container {
                    return Some(write_finding(hit, target, "redirection"));
                }
                if redirect.read && hit.kind == Kind::Secret {
                    return Some(secret_finding(hit, target));
                }
            }
        }

        if let Some(finding) = self.check_binary(command) {
            return Some(finding);
        }
        if let Some(finding) = self.check_kill(command, looks_for_daemon) {
            return Some(finding);
        }
        let words: Vec<&str> = command
            .words
            .iter()
            .filter_map(|w| w.text.as_deref())
            .collect();
        for word in &words {
            for token in url_tokens(word) {
                if let Some(finding) = self.check_url(token, &words) {
                    return Some(finding);
                }
            }
        }
        if let Some(finding) = self.check_request_target(command, &words) {
            return Some(finding);
        }
        if let Some(finding) = self.check_directory_options(command, cx) {
            return Some(finding);
        }
        if let Some(finding) = self.check_http_server(command, cx) {
            return Some(finding);
        }
        if let Some(finding) = self.check_client_config(command) {
            return Some(finding);
        }
        // A path inside a longer word: a `-c` program, a `printf` format, an `-e` script.
        for word in words.iter().filter(|w| w.contains(char::is_whitespace)) {
            for token in url_tokens(word) {
                let token = token.trim_matches(|c: char| "=:".contains(c));
                if !(token.starts_with('/') || token.starts_with("~/")) {
                    continue;
                }
                if let Some(hit) = self.classify_word(token, cx).hit
                    && matches!(hit.kind, Kind::Secret)
                {
                    return Some(secret_finding(hit, token));
                }
            }
        }
        if SOCKET_PROGRAMS.contains(&program)
            && let Some(port) = self.port_named(&words)
        {
            return Some(Finding::reject(
                PROTECT_ENDPOINT,
                format!(
                    "`{program}` opens a raw connection to Gatehouse's port {port}; actions may \
                     not talk to the daemon"
                ),
            ));
        }

        if META_PROGRAMS.contains(&program) {
            return None;
        }
        if matches!(program, "cd" | "pushd") {
            for word in command.positionals() {
                let Some(text) = word.text.as_deref() else {
                    continue;
                };
                if let Some(hit) = self.classify_word(text, cx).hit
                    && matches!(hit.kind, Kind::Secret | Kind::DataDir)
                {
                    return Some(secret_finding(hit, text));
                }
            }
            return None;
        }

        let roles = roles(command);
        if let Some(finding) = self.check_copy_into(command, &roles, cx) {
            return Some(finding);
        }
        for (word, role) in command.words.iter().zip(roles) {
            let Some(text) = word.text.as_deref() else {
                continue;
            };
            if role == Role::Ignore {
                continue;
            }
            let found = self.classify_word(text, cx);
            if let Some(unresolved) = found.unresolved
                && role != Role::Read
            {
                return Some(unresolved);
            }
            let Some(hit) = found.hit else { continue };
            let finding = match (role, hit.kind) {
                (_, Kind::Secret) => Some(secret_finding(hit, text)),
                (Role::RecursiveRead, Kind::DataDir | Kind::Container)
                    if found.holds_data_dir || hit.kind == Kind::DataDir =>
                {
                    Some(secret_finding(hit, text))
                }
                (Role::Read | Role::RecursiveRead, _) => None,
                (Role::Write | Role::Destroy, Kind::DataDir | Kind::Protected) => {
                    Some(write_finding(hit, text, program))
                }
                (Role::Destroy, Kind::Container) => Some(write_finding(hit, text, program)),
                (Role::Write, Kind::Container) => None,
                (Role::Ignore, _) => None,
            };
            if finding.is_some() {
                return finding;
            }
        }
        None
    }

    /// `cp settings.json ~/.claude/`: a copy into a directory writes `DIR/NAME` for each source.
    fn check_copy_into(
        &self,
        command: &SimpleCommand,
        roles: &[Role],
        cx: &Cx<'_>,
    ) -> Option<Finding> {
        if !matches!(
            command.program.as_str(),
            "cp" | "install" | "ln" | "rsync" | "scp" | "ditto"
        ) {
            return None;
        }
        let texts = || {
            command
                .words
                .iter()
                .zip(roles)
                .filter_map(|(w, r)| Some((w.text.as_deref()?, *r)))
        };
        let into: Vec<&str> = texts()
            .filter(|(_, r)| matches!(r, Role::Write | Role::Destroy))
            .map(|(t, _)| t)
            .collect();
        let sources: Vec<&str> = texts()
            .filter(|(_, r)| matches!(r, Role::Read | Role::RecursiveRead))
            .map(|(t, _)| t)
            .collect();
        for dir in into {
            for source in &sources {
                let name = source
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                if name.is_empty() || name == "." || name == ".." {
                    continue;
                }
                let joined = format!("{}/{name}", dir.trim_end_matches('/'));
                if let Some(hit) = self.classify_word(&joined, cx).hit
                    && matches!(hit.kind, Kind::Secret | Kind::DataDir | Kind::Protected)
                {
                    return Some(write_finding(hit, &joined, &command.program));
                }
            }
        }
        None
    }

    /// `gatehouse approve|deny|dashboard`: an agent approving its own actions.
    fn check_binary(&self, command: &SimpleCommand) -> Option<Finding> {
        if !self.binary_names.contains(&command.program) {
            return None;
        }
        // The subcommand may follow options the normaliser does not know (`--data-dir X`).
        let sub = command
            .positionals()
            .take(4)
            .filter_map(|w| w.text.as_deref())
            .find(|t| matches!(*t, "approve" | "deny" | "dashboard"))?;
        Some(Finding::reject(
            PROTECT_APPROVE,
            format!(
                "`gatehouse {sub}` acts as the person approving actions; an agent may not run it"
            ),
        ))
    }

    /// Whether a command looks the daemon's process up (`pgrep gatehouse`, `pidof gatehouse`).
    fn names_daemon_process(&self, command: &SimpleCommand) -> bool {
        matches!(
            command.program.as_str(),
            "pgrep" | "pidof" | "ps" | "lsof" | "fuser"
        ) && command.words.iter().any(|w| {
            w.text.as_deref().is_some_and(|t| {
                let t = t.to_lowercase();
                self.binary_names.iter().any(|n| t.contains(n.as_str()))
                    || self.ports.iter().any(|p| t.contains(&p.to_string()))
            })
        })
    }

    fn check_kill(&self, command: &SimpleCommand, looks_for_daemon: bool) -> Option<Finding> {
        let program = command.program.as_str();
        let reject = |how: String| {
            Some(Finding::reject(
                PROTECT_KILL,
                format!("{how}: actions may not stop Gatehouse"),
            ))
        };
        match program {
            "kill" => {
                if looks_for_daemon && (!command.is_static || command.args_from_input) {
                    return reject(
                        "`kill` of process ids looked up by the daemon's name or port".into(),
                    );
                }
                let mut first = true;
                let mut skip_next = false;
                for word in &command.words {
                    let Some(text) = word.text.as_deref() else {
                        continue;
                    };
                    if skip_next {
                        skip_next = false;
                        continue;
                    }
                    if text == "--" {
                        first = false;
                        continue;
                    }
                    if word.kind == WordKind::Flag && first {
                        first = false;
                        if matches!(text, "-s" | "-n" | "--signal") {
                            skip_next = true;
                        }
                        if !text.starts_with("-l") && !text.starts_with("-L") {
                            continue;
                        }
                    }
                    first = false;
                    let number = text.trim_start_matches(['-', '+']);
                    let Ok(pid) = number.parse::<i64>() else {
                        continue;
                    };
                    if text.starts_with('-') && pid == 1 {
                        return reject("`kill -1` signals every process, Gatehouse's too".into());
                    }
                    if self.pid.is_some_and(|own| i64::from(own) == pid) {
                        return reject(format!("`kill` of process {pid}, the Gatehouse daemon"));
                    }
                }
                None
            }
            "pkill" | "killall" | "skill" => {
                let (patterns, selects, regex, exact, full) = kill_patterns(command);
                if patterns.is_empty() {
                    return selects.then(|| {
                        Finding::reject(
                            PROTECT_KILL,
                            format!(
                                "`{program}` selecting processes by user, group or terminal \
                                 reaches Gatehouse's daemon: actions may not stop Gatehouse"
                            ),
                        )
                    });
                }
                if !command.is_static || command.args_from_input {
                    return reject(format!("`{program}` with patterns known only at run time"));
                }
                let regex = regex || program == "pkill";
                for pattern in patterns {
                    if self.pattern_names_daemon(&pattern, regex, exact, full) {
                        return reject(format!("`{program} {pattern}` matches the daemon"));
                    }
                }
                None
            }
            "systemctl" | "service" | "launchctl" | "supervisorctl" | "sv" | "rc-service" => {
                let words: Vec<String> = command
                    .positionals()
                    .filter_map(|w| w.text.as_deref())
                    .map(str::to_lowercase)
                    .collect();
                let stops = words.iter().any(|w| {
                    matches!(
                        w.as_str(),
                        "stop"
                            | "kill"
                            | "disable"
                            | "mask"
                            | "restart"
                            | "try-restart"
                            | "reload-or-restart"
                            | "unload"
                            | "bootout"
                            | "remove"
                            | "down"
                            | "zap"
                    )
                });
                let names_it = words.iter().any(|w| w.contains("gatehouse"));
                (stops && names_it).then(|| {
                    Finding::reject(
                        PROTECT_KILL,
                        format!(
                            "`{program}` stopping the Gatehouse service: actions may not stop \
                             Gatehouse"
                        ),
                    )
                })
            }
            _ => None,
        }
    }

    fn pattern_names_daemon(&self, pattern: &str, regex: bool, exact: bool, full: bool) -> bool {
        let mut subjects: Vec<String> = Vec::new();
        for name in &self.binary_names {
            subjects.push(name.clone());
            // Linux keeps the first 15 bytes of a process name.
            subjects.push(name.chars().take(15).collect());
        }
        if full {
            subjects.extend(self.command_lines.iter().cloned());
        }
        if !regex {
            let base = pattern.rsplit('/').next().unwrap_or(pattern).to_lowercase();
            return subjects.iter().any(|s| s.eq_ignore_ascii_case(&base));
        }
        let anchored = if exact {
            format!("^(?:{pattern})$")
        } else {
            pattern.to_owned()
        };
        match regex::RegexBuilder::new(&anchored)
            // Case-insensitive whatever `-i` says: a near miss on case is still a kill attempt.
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => subjects.iter().any(|s| re.is_match(s)),
            // pkill refuses a pattern it cannot compile; nothing is killed.
            Err(_) => false,
        }
    }

    /// A URL (or `host:port/path`) aimed at the daemon's decision or login endpoints. `words`
    /// are the other words of the command: a port named there (`--connect-to`, `--proxy`) counts
    /// as the URL's.
    fn check_url(&self, text: &str, words: &[&str]) -> Option<Finding> {
        if self.ports.is_empty() || text.len() > 8192 || text.chars().any(char::is_whitespace) {
            return None;
        }
        let target = parse_url(text)?;
        if !forbidden_endpoint(&target.path) {
            return None;
        }
        let port_hit = target.port.is_some_and(|p| self.ports.contains(&p))
            || self.port_named(words).is_some();
        port_hit.then(|| {
            Finding::reject(
                PROTECT_ENDPOINT,
                format!(
                    "`{text}` calls Gatehouse's own {} endpoint; only a person may decide",
                    if target.path.contains("login") {
                        "login"
                    } else {
                        "decision"
                    }
                ),
            )
        })
    }

    /// The daemon's port, when a word names it as a port (`:7400`, `7400`, `tcp:host:7400`).
    fn port_named(&self, words: &[&str]) -> Option<u16> {
        for word in words {
            for token in word.split(|c: char| !c.is_ascii_digit()) {
                if token.is_empty() || token.len() > 5 {
                    continue;
                }
                if let Ok(port) = token.trim_start_matches('0').parse::<u16>()
                    && self.ports.contains(&port)
                {
                    return Some(port);
                }
            }
        }
        None
    }

    /// `/dev/tcp/HOST/PORT` redirections to the daemon's port.
    fn check_socket_path(&self, target: &str) -> Option<Finding> {
        let rest = target
            .strip_prefix("/dev/tcp/")
            .or_else(|| target.strip_prefix("/dev/udp/"))?;
        let port = rest.rsplit('/').next()?.parse::<u16>().ok()?;
        self.ports.contains(&port).then(|| {
            Finding::reject(
                PROTECT_ENDPOINT,
                format!("`{target}` opens a raw connection to Gatehouse's port {port}"),
            )
        })
    }

    /// `curl --request-target /v1/actions/x/decision http://127.0.0.1:PORT/`: the path sent is
    /// not the URL's.
    fn check_request_target(&self, command: &SimpleCommand, words: &[&str]) -> Option<Finding> {
        if self.ports.is_empty() || self.port_named(words).is_none() {
            return None;
        }
        let hit = command.words.iter().any(|w| {
            w.text.as_deref().is_some_and(|t| {
                let path = t.rsplit_once('=').map_or(t, |(_, v)| v);
                path.starts_with('/') && forbidden_endpoint(&normalise_url_path(path))
            })
        });
        hit.then(|| {
            Finding::reject(
                PROTECT_ENDPOINT,
                format!(
                    "`{}` sends a request for Gatehouse's decision or login endpoint to its port; \
                     only a person may decide",
                    command.program
                ),
            )
        })
    }

    /// `env -C DIR`, `git -C DIR`, `make -C DIR`, `--work-tree=DIR`...: a command run inside the
    /// data directory reads it by relative names.
    fn check_directory_options(&self, command: &SimpleCommand, cx: &Cx<'_>) -> Option<Finding> {
        const DIRECTORY_OPTIONS: &[&str] = &[
            "-C",
            "--chdir",
            "--directory",
            "--work-tree",
            "--git-dir",
            "--cwd",
            "--prefix",
            "--dir",
            "-d",
            "-t",
        ];
        let mut flag: Option<&str> = None;
        for word in &command.words {
            let Some(text) = word.text.as_deref() else {
                flag = None;
                continue;
            };
            let value = match word.kind {
                WordKind::Flag => {
                    if let Some((name, value)) = text.split_once('=')
                        && DIRECTORY_OPTIONS.contains(&name)
                    {
                        Some(value)
                    } else if let Some(value) = text.strip_prefix("-C").filter(|v| !v.is_empty()) {
                        Some(value)
                    } else {
                        flag = Some(text);
                        continue;
                    }
                }
                _ => flag
                    .take()
                    .filter(|f| DIRECTORY_OPTIONS.contains(f))
                    .map(|_| text),
            };
            let Some(value) = value else { continue };
            let found = self.classify_word(value, cx);
            if let Some(hit) = found.hit
                && matches!(hit.kind, Kind::Secret | Kind::DataDir)
            {
                return Some(secret_finding(hit, value));
            }
            // `tar -C ~/.local/share -cf - gatehouse`: operands are relative to that directory.
            if found.holds_data_dir {
                let base = self.absolute(&lexical(value, cx.cwd));
                let inner = Cx {
                    cwd: Some(&base),
                    resolver: cx.resolver,
                };
                for operand in command.positionals() {
                    let Some(text) = operand.text.as_deref() else {
                        continue;
                    };
                    if let Some(hit) = self.classify_word(text, &inner).hit
                        && matches!(hit.kind, Kind::Secret | Kind::DataDir)
                    {
                        return Some(secret_finding(hit, text));
                    }
                }
            }
        }
        None
    }

    /// `python3 -m http.server` (and its kin) serving a directory that holds the data directory:
    /// any local process, the agent's `curl localhost` included, could then read the tokens.
    fn check_http_server(&self, command: &SimpleCommand, cx: &Cx<'_>) -> Option<Finding> {
        let program = command.program.as_str();
        let texts: Vec<&str> = command
            .words
            .iter()
            .filter_map(|w| w.text.as_deref())
            .collect();
        let serves = match program {
            _ if program.starts_with("python") => {
                texts.windows(2).any(|w| {
                    w.first() == Some(&"-m") && w.get(1).is_some_and(|m| HTTP_SERVERS.contains(m))
                }) || texts.iter().any(|t| {
                    t.strip_prefix("-m")
                        .is_some_and(|m| HTTP_SERVERS.contains(&m))
                })
            }
            "php" => texts.contains(&"-S"),
            "ruby" => texts.iter().any(|t| t.contains("httpd")),
            "npx" | "pnpx" | "bunx" | "busybox" => texts
                .iter()
                .any(|t| HTTP_SERVERS.contains(t) || *t == "httpd"),
            "caddy" => texts.contains(&"file-server"),
            _ => HTTP_SERVERS.contains(&program) || program == "darkhttpd",
        };
        if !serves {
            return None;
        }
        // The directory served: a `-d`/`--directory`/`-t`/`-h`/`--root` value, else a path
        // operand, else the working directory.
        let mut dirs: Vec<&str> = Vec::new();
        let mut take = false;
        for word in &command.words {
            let Some(text) = word.text.as_deref() else {
                continue;
            };
            if take {
                dirs.push(text);
                take = false;
                continue;
            }
            if let Some((name, value)) = text.split_once('=')
                && matches!(name, "--directory" | "-d" | "--root")
            {
                dirs.push(value);
            } else if matches!(text, "-d" | "--directory" | "-t" | "-h" | "--root" | "-r") {
                take = true;
            } else if (text.starts_with('/') || text.starts_with('~') || text.starts_with('.'))
                && word.kind != WordKind::Flag
            {
                dirs.push(text);
            }
        }
        let cwd = cx.cwd.unwrap_or(".");
        if dirs.is_empty() {
            dirs.push(cwd);
        }
        for dir in dirs {
            let found = self.classify_word(dir, cx);
            let hit = found.hit.filter(|h| {
                matches!(h.kind, Kind::Secret | Kind::DataDir)
                    || (h.kind == Kind::Container && found.holds_data_dir)
            });
            if let Some(hit) = hit {
                return Some(Finding::reject(
                    PROTECT_SECRET,
                    format!(
                        "`{program}` would serve `{dir}`, which holds {} , over HTTP; any local \
                         process could read Gatehouse's tokens",
                        hit.what
                    ),
                ));
            }
        }
        None
    }

    /// `curl -K file`, `wget -e ...`/`-i file`: the URL and options come from somewhere the
    /// protection cannot read, so the decision endpoint may be among them. Paused for a person.
    fn check_client_config(&self, command: &SimpleCommand) -> Option<Finding> {
        if self.ports.is_empty() {
            return None;
        }
        let program = command.program.as_str();
        let reads = command.words.iter().any(|w| {
            w.kind == WordKind::Flag
                && w.text.as_deref().is_some_and(|t| {
                    let name = t.split_once('=').map_or(t, |(n, _)| n);
                    match program {
                        "curl" => matches!(name, "-K" | "--config"),
                        "wget" => matches!(
                            name,
                            "-e" | "--execute" | "-i" | "--input-file" | "--config"
                        ),
                        _ => false,
                    }
                })
        });
        reads.then(|| Finding {
            effect: Effect::Pause,
            rule: PROTECT_UNRESOLVED,
            reason: format!(
                "`{program}` takes its URL or options from a file Gatehouse cannot see; it \
                 could reach the decision endpoint"
            ),
        })
    }

    /// A path in a file tool's input.
    fn check_tool_path(
        &self,
        text: &str,
        reads_only: bool,
        recursive: bool,
        cx: &Cx<'_>,
    ) -> Option<Finding> {
        let text = text.strip_prefix("file://").unwrap_or(text);
        let found = self.classify_word(text, cx);
        if let Some(unresolved) = found.unresolved
            && !reads_only
        {
            return Some(unresolved);
        }
        let hit = found.hit?;
        match hit.kind {
            Kind::Secret => Some(secret_finding(hit, text)),
            Kind::DataDir | Kind::Container if recursive && found.holds_data_dir => {
                Some(secret_finding(hit, text))
            }
            Kind::DataDir if recursive => Some(secret_finding(hit, text)),
            Kind::DataDir | Kind::Protected if !reads_only => {
                Some(write_finding(hit, text, "this tool"))
            }
            _ => None,
        }
    }

    /// `~` expanded when the home is known.
    fn absolute(&self, lexical: &str) -> String {
        match &self.home {
            Some(home) if lexical == "~" => home.clone(),
            Some(home) => match lexical.strip_prefix("~/") {
                Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
                None => lexical.to_owned(),
            },
            None => lexical.to_owned(),
        }
    }

    /// What a word of a command or a tool's path names, in every spelling it may mean.
    fn classify_word(&self, text: &str, cx: &Cx<'_>) -> Found {
        let mut found = Found::default();
        let mut spellings: Vec<&str> = vec![text];
        if let Some(rest) = text.strip_prefix('@') {
            spellings.push(rest);
        } else if let Some((name, rest)) = text.split_once('@')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            spellings.push(rest);
        }
        if let Some((_, rest)) = text.split_once('=') {
            spellings.push(rest);
            if let Some(file) = rest.strip_prefix('@').or_else(|| rest.strip_prefix('<')) {
                spellings.push(file);
            }
        }
        for spelling in spellings {
            if spelling.is_empty() || spelling.contains("://") {
                continue;
            }
            let lexical = lexical(spelling, cx.cwd);
            let absolute = self.absolute(&lexical);
            self.classify_form(&absolute, &mut found);
            if absolute.starts_with('/') {
                match cx.resolver.canonicalize(Path::new(&absolute)) {
                    Some(canonical) => {
                        if let Some(canonical) = canonical.to_str()
                            && canonical != absolute
                        {
                            self.classify_form(canonical, &mut found);
                        }
                    }
                    None if found.hit.is_none() && self.near_protected(&absolute) => {
                        found.unresolved = Some(Finding {
                            effect: Effect::Pause,
                            rule: PROTECT_UNRESOLVED,
                            reason: format!(
                                "`{spelling}` could not be resolved and lies next to a path \
                                 Gatehouse protects"
                            ),
                        });
                    }
                    None => {}
                }
            }
            if has_glob_chars(&absolute) {
                self.classify_pattern(&absolute, &mut found);
            }
        }
        found
    }

    fn classify_form(&self, form: &str, found: &mut Found) {
        for index in self.globs.matches(form) {
            if let Some(hit) = self.hits_of_glob.get(index) {
                found.offer(*hit);
            }
        }
        let lower = form.to_lowercase();
        let lower = lower.trim_end_matches('/');
        let prefix = if lower.is_empty() { "/" } else { lower };
        for anchor in &self.anchors {
            let holds = if prefix == "/" {
                anchor.path.starts_with('/') && anchor.path != "/"
            } else {
                anchor
                    .path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
            };
            if holds {
                found.offer(Hit {
                    kind: Kind::Container,
                    what: anchor.what,
                });
                if anchor.what.starts_with("Gatehouse's data") {
                    found.holds_data_dir = true;
                }
            }
        }
    }

    /// A word with glob characters (`.claude/*`, `~/.codex/c*`): does it expand onto a
    /// protected path? Tried against the known protected paths and the hook-settings names
    /// under the pattern's literal directory.
    fn classify_pattern(&self, pattern: &str, found: &mut Found) {
        let Some(matcher) = glob(pattern) else {
            return;
        };
        let literal_dir: String = {
            let mut parts = Vec::new();
            for part in pattern.split('/') {
                if has_glob_chars(part) {
                    break;
                }
                parts.push(part);
            }
            parts.join("/")
        };
        let mut samples: Vec<String> = self.anchors.iter().map(|a| a.path.clone()).collect();
        for dir in &self.data_dirs {
            samples.extend(DATA_FILE_NAMES.iter().map(|name| format!("{dir}/{name}")));
        }
        let mut dirs = vec![literal_dir.clone()];
        if let Some((parent, _)) = literal_dir.rsplit_once('/') {
            dirs.push(parent.to_owned());
        }
        for dir in dirs {
            for name in [
                ".claude",
                ".claude/settings.json",
                ".claude/settings.local.json",
                "settings.json",
                "settings.local.json",
                ".cursor",
                ".cursor/hooks.json",
                "hooks.json",
                ".gemini",
                ".gemini/settings.json",
                ".codex",
                ".codex/config.toml",
            ] {
                samples.push(if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        for sample in samples {
            if matcher.is_match(&sample) && glob_reaches(pattern, &sample) {
                self.classify_form(&sample, found);
            }
        }
    }

    /// Whether an unresolvable path sits in a directory that holds protected paths.
    fn near_protected(&self, path: &str) -> bool {
        let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
        let mut probe = Found::default();
        self.classify_form(parent, &mut probe);
        self.classify_form(path, &mut probe);
        probe.hit.is_some()
    }
}

/// What a word names.
#[derive(Default)]
struct Found {
    /// The strongest protection among its spellings.
    hit: Option<Hit>,
    /// It is a directory holding the data directory (a recursive read would read the tokens).
    holds_data_dir: bool,
    /// It could not be resolved and lies next to something protected.
    unresolved: Option<Finding>,
}

impl Found {
    fn offer(&mut self, hit: Hit) {
        if self.hit.is_none_or(|current| hit.kind < current.kind) {
            self.hit = Some(hit);
        }
    }
}

struct Cx<'a> {
    cwd: Option<&'a str>,
    resolver: &'a dyn PathResolver,
}

/// The pieces of a string that may be URLs: split at whitespace, quotes and brackets, so a URL
/// inside a script, a config file or a `-c` program is seen.
fn url_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || "\"'`()<>{},;|".contains(c))
        .filter(|t| !t.is_empty())
}

/// Whether a shell glob could expand to `sample`: bash's `*`, `?` and `[...]` never match a
/// leading `.` of a name (no `dotglob`), so `build/*` does not reach `build/.claude`.
fn glob_reaches(pattern: &str, sample: &str) -> bool {
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    let sample_parts: Vec<&str> = sample.split('/').collect();
    if pattern.contains("**") || pattern_parts.len() != sample_parts.len() {
        return true;
    }
    pattern_parts
        .iter()
        .zip(&sample_parts)
        .all(|(p, s)| !s.starts_with('.') || p.starts_with('.'))
}

fn has_glob_chars(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

fn write_finding(hit: Hit, text: &str, by: &str) -> Finding {
    let what = match hit.kind {
        Kind::Container => format!("a directory holding {}", hit.what),
        _ => hit.what.to_owned(),
    };
    Finding::reject(
        PROTECT_WRITE,
        format!("`{text}` is {what}; {by} may not change it (Gatehouse protects itself)"),
    )
}

fn secret_finding(hit: Hit, text: &str) -> Finding {
    let what = match hit.kind {
        Kind::Secret => hit.what.to_owned(),
        _ => format!("a directory holding {}", hit.what),
    };
    Finding::reject(
        PROTECT_SECRET,
        format!("`{text}` reaches {what}; actions may not read Gatehouse's tokens or keys"),
    )
}

/// What a program does with one of its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Ignore,
    Read,
    /// Reads every file under a directory.
    RecursiveRead,
    /// May create or change the file.
    Write,
    /// Deletes, moves or changes it wholesale: a directory holding protected paths counts.
    Destroy,
}

/// The role of each word of `command` (flags are ignored; their values are not).
fn roles(command: &SimpleCommand) -> Vec<Role> {
    let program = command.program.as_str();
    let flag = |name: &str| command.has_flag(name);
    let any_flag = |pred: &dyn Fn(&str) -> bool| {
        command
            .words
            .iter()
            .any(|w| w.kind == WordKind::Flag && w.text.as_deref().is_some_and(pred))
    };
    let recursive = flag("--recursive")
        || flag("-r")
        || flag("-R")
        || flag("--archive")
        || flag("-a")
        || flag("--dereference-recursive")
        || any_flag(&|t| t.len() > 2 && !t.starts_with("--") && t.contains(['r', 'R', 'a']));
    let operand = |w: &crate::shell::Word| w.kind != WordKind::Flag;
    let uniform = |role: Role| -> Vec<Role> {
        command
            .words
            .iter()
            .map(|w| if operand(w) { role } else { Role::Ignore })
            .collect()
    };
    match program {
        "sed" | "gsed" => {
            let in_place = any_flag(&|t| {
                t.starts_with("--in-place") || (!t.starts_with("--") && t.contains('i'))
            });
            uniform(if in_place { Role::Write } else { Role::Read })
        }
        "sort" if any_flag(&|t| t == "-o" || t.starts_with("--output")) => uniform(Role::Write),
        "find" => {
            let writes = any_flag(&|t| {
                matches!(t, "-delete" | "-fprint" | "-fprint0" | "-fprintf" | "-fls")
            });
            uniform(if writes { Role::Destroy } else { Role::Read })
        }
        "git" => {
            let sub = command
                .positionals()
                .next()
                .and_then(|w| w.text.as_deref())
                .unwrap_or("");
            uniform(if GIT_READS.contains(&sub) {
                Role::Read
            } else {
                Role::Write
            })
        }
        "grep" | "egrep" | "fgrep" | "zgrep" if recursive => uniform(Role::RecursiveRead),
        _ if RECURSIVE_READ_PROGRAMS.contains(&program) => uniform(Role::RecursiveRead),
        "zip" | "7za" | "rar" | "borg" | "restic" | "duplicity" | "rclone" => {
            uniform(Role::RecursiveRead)
        }
        _ if READ_PROGRAMS.contains(&program) => uniform(Role::Read),
        "cp" | "install" | "scp" | "rsync" | "ditto" => copy_roles(command, recursive),
        "dd" => command
            .words
            .iter()
            .map(|w| match w.text.as_deref() {
                Some(t) if t.starts_with("if=") => Role::Read,
                Some(t) if t.starts_with("of=") => Role::Write,
                _ => Role::Ignore,
            })
            .collect(),
        "tar" | "bsdtar" | "gtar" | "unzip" | "7z" | "cpio" => uniform(Role::Destroy),
        _ if DESTRUCTIVE_PROGRAMS.contains(&program) => uniform(Role::Destroy),
        _ => uniform(Role::Write),
    }
}

/// `cp SRC... DEST` / `cp -t DEST SRC...`: sources are read, the destination written (a
/// recursive copy into a directory that holds protected paths can overwrite them).
fn copy_roles(command: &SimpleCommand, recursive: bool) -> Vec<Role> {
    let into = if recursive || command.program == "rsync" {
        Role::Destroy
    } else {
        Role::Write
    };
    let source = if recursive || command.program == "rsync" {
        Role::RecursiveRead
    } else {
        Role::Read
    };
    let mut roles = vec![Role::Ignore; command.words.len()];
    let mut target_flag = false;
    let mut last_operand = None;
    for (index, word) in command.words.iter().enumerate() {
        match word.kind {
            WordKind::Flag => {
                target_flag = matches!(
                    word.text.as_deref(),
                    Some("--target-directory" | "-t" | "-d" | "--dest")
                );
            }
            WordKind::Value if target_flag => {
                if let Some(role) = roles.get_mut(index) {
                    *role = into;
                }
                target_flag = false;
            }
            _ => {
                if let Some(role) = roles.get_mut(index) {
                    *role = source;
                }
                last_operand = Some(index);
                target_flag = false;
            }
        }
    }
    let has_target_flag = roles.contains(&into);
    if !has_target_flag
        && let Some(index) = last_operand
        && let Some(role) = roles.get_mut(index)
    {
        *role = into;
    }
    roles
}

/// pkill/killall's patterns and selection options: (patterns, selects by user/group/terminal,
/// regex, exact, full command line).
fn kill_patterns(command: &SimpleCommand) -> (Vec<String>, bool, bool, bool, bool) {
    let mut patterns = Vec::new();
    let (mut selects, mut regex, mut exact, mut full) = (false, false, false, false);
    let mut skip_next = false;
    for word in &command.words {
        let Some(text) = word.text.as_deref() else {
            continue;
        };
        if skip_next {
            skip_next = false;
            continue;
        }
        if word.kind == WordKind::Flag {
            let value_options = [
                "-u",
                "-U",
                "-g",
                "-G",
                "-P",
                "-s",
                "-t",
                "-F",
                "-o",
                "-y",
                "-n",
                "-c",
                "--signal",
                "--euid",
                "--uid",
                "--pgroup",
                "--group",
                "--parent",
                "--session",
                "--terminal",
                "--pidfile",
                "--ns",
                "--nslist",
                "--user",
                "--older-than",
                "--younger-than",
                "--context",
            ];
            if matches!(
                text,
                "-u" | "-U"
                    | "-g"
                    | "-G"
                    | "-P"
                    | "-s"
                    | "-t"
                    | "-F"
                    | "--euid"
                    | "--uid"
                    | "--pgroup"
                    | "--group"
                    | "--parent"
                    | "--session"
                    | "--terminal"
                    | "--pidfile"
                    | "--user"
                    | "-a"
                    | "--all"
            ) {
                selects = true;
            }
            if value_options.contains(&text) && command.program != "killall"
                || matches!(text, "-u" | "-s" | "--signal" | "--user" | "-o" | "-y")
            {
                skip_next = true;
            }
            match text {
                "-r" | "--regexp" => regex = true,
                "-x" | "--exact" | "-e" => exact = true,
                "-f" | "--full" => full = true,
                _ => {}
            }
            continue;
        }
        patterns.push(text.to_owned());
    }
    (patterns, selects, regex, exact, full)
}

/// The parts of a URL that matter here.
struct UrlTarget {
    port: Option<u16>,
    /// Percent-decoded, lowercase, dot segments resolved, no query or fragment.
    path: String,
}

/// Parses `scheme://[user@]host[:port]/path`, `//host/path` and `host:port/path`.
fn parse_url(text: &str) -> Option<UrlTarget> {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (Some(scheme.to_ascii_lowercase()), rest)
        }
        Some(_) => return None,
        None => (None, text.strip_prefix("//").unwrap_or(text)),
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let port_text = if let Some(after) = authority.strip_prefix('[') {
        after
            .split_once(']')
            .map(|(_, p)| p.trim_start_matches(':'))
    } else {
        authority.rsplit_once(':').map(|(_, p)| p)
    };
    let port = match port_text.filter(|p| !p.is_empty()) {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => match scheme.as_deref() {
            Some("http" | "ws") => Some(80),
            Some("https" | "wss") => Some(443),
            Some(_) => None,
            // Without a scheme it is a URL only when it names a port.
            None => return None,
        },
    };
    Some(UrlTarget {
        port,
        path: normalise_url_path(path),
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((h as char).to_digit(16), (l as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn normalise_url_path(path: &str) -> String {
    let mut decoded = path.to_owned();
    for _ in 0..3 {
        let next = percent_decode(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    let decoded = decoded.replace('\\', "/").to_lowercase();
    let decoded = decoded
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut parts: Vec<&str> = Vec::new();
    for part in decoded.split('/') {
        match part.trim_end_matches(';') {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `/v1/actions/{id}/decision`, `/v1/login-codes`, `/login`.
fn forbidden_endpoint(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["v1", "actions", rest @ ..] => rest.contains(&"decision"),
        ["v1", "login-codes", ..] | ["login", ..] => true,
        _ => false,
    }
}

/// Command lines in the input: strings under `command`-like keys, and arrays of words
/// (`["bash", "-lc", "..."]`) joined as a shell would read them.
fn collect_command_lines(input: &Map<String, Value>, depth: usize, out: &mut Vec<String>) {
    if depth > 3 {
        return;
    }
    for (key, value) in input {
        let key = key.to_lowercase();
        let command_key = matches!(
            key.as_str(),
            "command" | "cmd" | "script" | "commands" | "shell_command" | "bash_command"
        );
        match value {
            Value::String(text) if command_key => out.push(text.clone()),
            Value::Array(items) if command_key => {
                let words: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                match words {
                    Some(words) => out.push(
                        words
                            .iter()
                            .map(|w| shell_quote(w))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    None => {
                        for item in items {
                            if let Value::String(text) = item {
                                out.push(text.clone());
                            }
                        }
                    }
                }
            }
            Value::Object(inner) => collect_command_lines(inner, depth + 1, out),
            _ => {}
        }
    }
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,~".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Whether a key of a tool's input names a file or directory.
fn is_path_key(key: &str) -> bool {
    let key = key.to_lowercase();
    matches!(
        key.as_str(),
        "path"
            | "paths"
            | "file"
            | "files"
            | "filename"
            | "filenames"
            | "target"
            | "destination"
            | "dest"
            | "source"
            | "src"
            | "to"
            | "from"
            | "output"
            | "directory"
            | "dir"
            | "uri"
            | "absolute_path"
    ) || key.ends_with("path")
        || key.ends_with("paths")
        || key.ends_with("_file")
        || key.ends_with("_dir")
        || key.ends_with("_directory")
        || key.starts_with("file")
}

/// Paths in a tool's input: strings (or arrays of strings) under path-like keys, and the file
/// headers of patches (`*** Update File: x`, `+++ b/x`).
fn collect_paths(input: &Map<String, Value>, depth: usize, out: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    for (key, value) in input {
        let path_key = is_path_key(key);
        match value {
            Value::String(text) => {
                if path_key {
                    out.push(text.clone());
                }
                let patch_key = matches!(key.to_lowercase().as_str(), "patch" | "diff");
                if text.trim_start().starts_with("*** Begin Patch") || patch_key {
                    patch_paths(text, out);
                }
            }
            Value::Array(items) => {
                for item in items.iter().take(1000) {
                    match item {
                        Value::String(text) if path_key => out.push(text.clone()),
                        Value::Object(inner) => collect_paths(inner, depth + 1, out),
                        _ => {}
                    }
                }
            }
            Value::Object(inner) => collect_paths(inner, depth + 1, out),
            _ => {}
        }
    }
}

fn patch_paths(text: &str, out: &mut Vec<String>) {
    for line in text.lines().take(100_000) {
        let line = line.trim_end();
        for prefix in [
            "*** Add File: ",
            "*** Update File: ",
            "*** Delete File: ",
            "*** Move to: ",
            "+++ ",
            "--- ",
        ] {
            if let Some(path) = line.strip_prefix(prefix) {
                let path = path
                    .strip_prefix("b/")
                    .or_else(|| path.strip_prefix("a/"))
                    .unwrap_or(path);
                let path = path.split('\t').next().unwrap_or(path).trim();
                if !path.is_empty() && path != "/dev/null" {
                    out.push(path.to_owned());
                }
            }
        }
    }
}

/// Every string of the input (bounded), for URLs.
fn collect_strings<'v>(value: &'v Map<String, Value>, depth: usize, out: &mut Vec<&'v str>) {
    fn walk<'v>(value: &'v Value, depth: usize, out: &mut Vec<&'v str>) {
        if depth > 8 || out.len() > 10_000 {
            return;
        }
        match value {
            Value::String(text) => out.push(text),
            Value::Array(items) => items.iter().for_each(|i| walk(i, depth + 1, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, depth + 1, out)),
            _ => {}
        }
    }
    for item in value.values() {
        walk(item, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart_robustly() {
        let cases = [
            (
                "http://127.0.0.1:7400/v1/actions/a/decision",
                Some(7400),
                true,
            ),
            (
                "HTTP://LOCALHOST:7400/V1/Actions/x/DECISION",
                Some(7400),
                true,
            ),
            (
                "http://[::1]:7400/v1/actions/x/decision?x=1",
                Some(7400),
                true,
            ),
            (
                "http://u:p@0x7f000001:7400/v1/%61ctions/x/%64ecision",
                Some(7400),
                true,
            ),
            (
                "http://2130706433:7400/v1/actions/x/%2564ecision",
                Some(7400),
                true,
            ),
            ("localhost:7400/v1/actions/x/decision", Some(7400), true),
            (
                "http://127.0.0.1:7400/v1/x/../actions/y/decision/",
                Some(7400),
                true,
            ),
            ("http://127.0.0.1:7400/v1/login-codes", Some(7400), true),
            ("http://127.0.0.1:7400/v1/check", Some(7400), false),
            ("http://example.com/v1/actions/x/decision", Some(80), true),
        ];
        for (text, port, forbidden) in cases {
            let target = parse_url(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(target.port, port, "{text}");
            assert_eq!(forbidden_endpoint(&target.path), forbidden, "{text}");
        }
        assert!(parse_url("src/main.rs").is_none());
        assert!(parse_url("a:b").is_none());
    }

    #[test]
    fn patches_name_their_files() {
        let mut out = Vec::new();
        patch_paths(
            "*** Begin Patch\n*** Update File: .claude/settings.json\n@@\n-a\n+b\n*** End Patch",
            &mut out,
        );
        assert_eq!(out, vec![".claude/settings.json"]);
    }
}
