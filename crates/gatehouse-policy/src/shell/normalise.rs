//! From a simple command as written to what it runs: wrappers unwrapped, shells recursed into,
//! interpreters and `eval` declared opaque, options of known commands spelled one way.

use super::spelling::normalise_words;
use super::state::{Cwd, LineState, relative_to};
use super::words::Text;
use super::{ParsedCommand, RawCommand, Stdin, parse_into};
use crate::grammar::{self, Access, Analysis, PathUse};

/// One simple command after normalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleCommand {
    /// The program's name without directory or quotes: `/bin/rm`, `\rm` and `'rm'` are `rm`.
    pub program: String,
    /// Named bare or from a system directory (`/bin`, `/usr/bin`, ...); `./rm` is not.
    pub trusted_path: bool,
    /// The words after the program, options normalised.
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// Every word is known statically (no variables, no substitutions).
    pub is_static: bool,
    /// More arguments arrive at run time (`xargs rm`, `find -exec rm {} ;`).
    pub args_from_input: bool,
    /// Environment variables the line gives it (`X=1 cmd`, `env X=1 cmd`, an earlier
    /// `export X=1`), by name.
    pub env: Vec<String>,
    /// The directory it runs in when an earlier `cd` moved it (relative to the action's
    /// working directory, absolute or under `~`); `None`: the action's. Its relative paths are
    /// already spelled from the action's directory.
    pub cwd: Option<String>,
    /// What its option grammar understood, and why an allow rule may not apply.
    pub analysis: Analysis,
}

/// One word of a simple command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// `None` when the word is not known statically.
    pub text: Option<String>,
    pub kind: WordKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordKind {
    /// An option, in its canonical spelling for known commands (`--recursive`).
    Flag,
    /// The value of the option before it (`-m MESSAGE`, `--output=FILE`).
    Value,
    /// An operand: a subcommand, a path, a URL...
    Positional,
}

/// A redirection of a simple command (or of a group it belongs to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The file; `None` when not known statically.
    pub target: Option<String>,
    pub read: bool,
    pub write: bool,
}

impl SimpleCommand {
    /// The operands (positional words), in order.
    pub fn positionals(&self) -> impl Iterator<Item = &Word> {
        self.words.iter().filter(|w| w.kind == WordKind::Positional)
    }

    /// Whether the command carries an option in its canonical spelling.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.words
            .iter()
            .any(|w| w.kind == WordKind::Flag && w.text.as_deref() == Some(flag))
    }

    /// Why no allow rule may apply to this command: a word, option or setting the engine does
    /// not understand, or one that runs code, changes configuration or reaches the network.
    pub fn not_understood(&self) -> Option<&str> {
        self.analysis.problem.as_deref()
    }

    /// A command the walker builds itself (`$(<file)` reads like `cat`; declarations).
    pub(crate) fn synthetic(program: &str, words: Vec<Word>, redirects: Vec<Redirect>) -> Self {
        SimpleCommand {
            program: program.to_owned(),
            trusted_path: true,
            words,
            redirects,
            is_static: true,
            args_from_input: false,
            env: Vec::new(),
            cwd: None,
            analysis: Analysis::default(),
        }
    }
}

/// Variables whose assignment changes what later commands run or load.
pub(crate) fn dangerous_variable(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "IFS"
            | "HOME"
            | "CDPATH"
            | "OLDPWD"
            | "LD_PRELOAD"
            | "LD_LIBRARY_PATH"
            | "LD_AUDIT"
            | "DYLD_INSERT_LIBRARIES"
            | "DYLD_LIBRARY_PATH"
            | "BASH_ENV"
            | "ENV"
            | "PROMPT_COMMAND"
            | "SHELLOPTS"
            | "BASHOPTS"
            | "PS4"
            | "GIT_SSH_COMMAND"
            | "GIT_SSH"
            | "GIT_EXEC_PATH"
            | "GIT_EDITOR"
            | "GIT_PAGER"
            | "GIT_CONFIG_PARAMETERS"
            | "GIT_CONFIG_GLOBAL"
            | "PAGER"
            | "EDITOR"
            | "VISUAL"
            | "PYTHONSTARTUP"
            | "PYTHONPATH"
            | "NODE_OPTIONS"
            | "PERL5OPT"
            | "RUBYOPT"
    ) || name.starts_with("BASH_FUNC_")
}

pub(crate) fn normalise(
    raw: RawCommand,
    depth: u8,
    out: &mut ParsedCommand,
    state: &mut LineState,
) {
    let mut env = state.env.clone();
    for (name, _) in &raw.assignments {
        if dangerous_variable(name) {
            out.mark_opaque(format!(
                "assigns {name}, which changes what the command runs"
            ));
        }
        if !env.contains(name) {
            env.push(name.clone());
        }
    }
    let mut words = Vec::with_capacity(raw.args.len() + 1);
    words.push(raw.name);
    words.extend(raw.args);
    let mut shell = Shell {
        redirects: &raw.redirects,
        stdin: &raw.stdin,
        depth,
        out,
        state,
    };
    shell.emit(&words, false, env);
}

/// What `emit` needs besides the words: where the command's redirections and input are, and the
/// line state it reads and changes.
struct Shell<'a> {
    redirects: &'a [Redirect],
    stdin: &'a Stdin,
    depth: u8,
    out: &'a mut ParsedCommand,
    state: &'a mut LineState,
}

/// Adds what the line around a command says to its analysis: environment variables off the
/// allowlist and an unknown working directory stop allow rules too.
fn judge_context(analysis: &mut Analysis, env: &[String], cwd: &Cwd, program: &str) {
    if analysis.problem.is_some() {
        return;
    }
    if let Some(name) = env.iter().find(|name| !grammar::environment_allowed(name)) {
        analysis.problem = Some(format!(
            "`{program}` is given `{name}`, which is not on the environment allowlist"
        ));
    } else if let Cwd::Unknown(why) = cwd {
        analysis.problem = Some(format!(
            "the directory `{program}` runs in is unknown: {why}"
        ));
    }
}

/// The command as run from `dir`: its path words and paths spelled from the action's directory.
fn moved(command: &SimpleCommand, dir: &str) -> SimpleCommand {
    let mut copy = command.clone();
    if dir == "." {
        return copy;
    }
    let relative: Vec<&str> = command
        .analysis
        .paths
        .iter()
        .map(|p| p.path.as_str())
        .filter(|p| !p.starts_with('/') && !p.starts_with('~'))
        .collect();
    for word in &mut copy.words {
        if word.kind != WordKind::Flag
            && let Some(text) = &mut word.text
            && relative.contains(&text.as_str())
        {
            *text = relative_to(dir, text);
        }
    }
    for path in &mut copy.analysis.paths {
        path.path = relative_to(dir, &path.path);
    }
    for redirect in &mut copy.redirects {
        if let Some(target) = &mut redirect.target {
            *target = relative_to(dir, target);
        }
    }
    copy.cwd = Some(dir.to_owned());
    copy
}

const TRUSTED_DIRS: &[&str] = &[
    "/bin",
    "/usr/bin",
    "/sbin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/opt/homebrew/bin",
];

pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash", "yash",
];

/// Splits `/usr/bin/rm` into (`rm`, trusted). Names are lowercased: on a case-insensitive
/// filesystem (macOS) `RM` runs `rm`.
fn program_name(name: &str) -> (String, bool) {
    match name.rsplit_once('/') {
        None => (name.to_lowercase(), true),
        Some((_, "")) => (name.to_lowercase(), false),
        Some((dir, base)) => {
            let dir = if dir.is_empty() { "/" } else { dir };
            (
                base.to_lowercase(),
                TRUSTED_DIRS.contains(&dir) || dir == "/",
            )
        }
    }
}

/// Options of ordinary tools that run commands or write arbitrary files (GTFOBins-style).
fn runs_commands(program: &str, args: &[Text]) -> Option<&'static str> {
    let words: Vec<&str> = args.iter().filter_map(Text::as_literal).collect();
    let has = |needles: &[&str]| {
        words.iter().any(|w| {
            needles.iter().any(|n| {
                *w == *n
                    || (n.starts_with("--")
                        && w.strip_prefix(n).is_some_and(|rest| rest.starts_with('=')))
            })
        })
    };
    match program {
        "sed" | "gsed" => words
            .iter()
            .any(|w| !w.starts_with('-') && sed_runs_or_writes(w))
            .then_some("sed script that runs commands or writes files"),
        "tar" | "gtar" | "bsdtar" => has(&[
            "--to-command",
            "--checkpoint-action",
            "--use-compress-program",
            "-I",
            "--rsh-command",
            "--info-script",
            "--new-volume-script",
            "-F",
        ])
        .then_some("tar option that runs a command"),
        "zip" => has(&["-TT", "--unzip-command"]).then_some("zip option that runs a command"),
        "git" => {
            let sub = words.iter().find(|w| !w.starts_with('-')).copied();
            let runs = match sub {
                Some("rebase") => has(&["-x", "--exec"]),
                Some("bisect") => words.contains(&"run"),
                Some("submodule") => words.contains(&"foreach"),
                Some("grep") => has(&["-O", "--open-files-in-pager"]),
                Some("fetch" | "pull" | "clone" | "ls-remote" | "push") => {
                    has(&["--upload-pack", "--receive-pack", "--exec", "-u"])
                }
                Some("filter-branch" | "difftool" | "mergetool") => true,
                _ => false,
            };
            runs.then_some("git option that runs a command")
        }
        "cargo" => has(&["--config"]).then_some("cargo --config can name a runner"),
        _ => None,
    }
}

/// GNU sed's `e` command, the `e` flag of `s///`, and `w`/`W` file writes (best effort).
fn sed_runs_or_writes(script: &str) -> bool {
    let bytes = script.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let before = if i == 0 {
            b';'
        } else {
            bytes.get(i - 1).copied().unwrap_or(b';')
        };
        let after = bytes.get(i + 1).copied().unwrap_or(b' ');
        let command_start = matches!(before, b';' | b'\n' | b'{' | b'}' | b' ' | b'/' | b'$')
            || before.is_ascii_digit();
        if matches!(b, b'e' | b'w' | b'W')
            && command_start
            && matches!(after, b' ' | b';' | b'\n' | b'}')
        {
            return true;
        }
    }
    // s/a/b/e and s/a/b/w FILE: flags after the third delimiter.
    if let Some(rest) = script.trim_start().strip_prefix('s')
        && let Some(delimiter) = rest.chars().next()
    {
        let parts: Vec<&str> = rest[delimiter.len_utf8()..].splitn(3, delimiter).collect();
        if let Some(flags) = parts.get(2) {
            return flags.contains(['e', 'w', 'W']);
        }
    }
    false
}

impl Shell<'_> {
    /// Emits the simple command `words` (program first), given the variables `env` names, and
    /// whatever it runs in turn.
    fn emit(&mut self, words: &[Text], from_input: bool, env: Vec<String>) {
        let redirects = self.redirects;
        let stdin = self.stdin;
        let depth = self.depth;
        let Some((first, args)) = words.split_first() else {
            return;
        };
        let name = match first {
            Text::Literal(name) if !name.is_empty() => name,
            Text::Literal(_) => {
                self.out.mark_opaque("empty command name");
                return;
            }
            _ => {
                self.out.mark_opaque("expansion in command position");
                return;
            }
        };
        let (program, trusted_path) = program_name(name);
        let mut inner: Option<(usize, bool)> = None; // (index into args, args from input)
        // Variables given to the wrapped command, and the directory it is moved to (`env -C`).
        let mut inner_env = env.clone();
        let mut inner_dir: Option<Option<String>> = None;
        match program.as_str() {
            "sudo" | "doas" => {
                let at = skip_options(
                    args,
                    &[
                        "-u",
                        "-g",
                        "-C",
                        "-D",
                        "-h",
                        "-p",
                        "-r",
                        "-t",
                        "-U",
                        "-T",
                        "--user",
                        "--group",
                        "--chdir",
                        "--prompt",
                        "--close-from",
                        "--host",
                        "--role",
                        "--type",
                        "--other-user",
                        "--command-timeout",
                    ],
                    0,
                );
                if at < args.len() {
                    inner = Some((at, from_input));
                }
            }
            "env" => {
                let mut at = 0;
                let mut chdir: Option<Option<String>> = None;
                while let Some(word) = args.get(at) {
                    let Some(text) = word.as_literal() else { break };
                    if text == "-S" || text.starts_with("--split-string") || text.starts_with("-S")
                    {
                        self.out
                            .mark_opaque("env -S splits a string into a command");
                        break;
                    }
                    if text == "--" {
                        at += 1;
                        break;
                    }
                    if text.starts_with('-') {
                        if matches!(text, "-C" | "--chdir") {
                            chdir = Some(
                                args.get(at + 1)
                                    .and_then(Text::as_literal)
                                    .map(str::to_owned),
                            );
                        } else if let Some(dir) = text.strip_prefix("--chdir=") {
                            chdir = Some(Some(dir.to_owned()));
                        } else if let Some(dir) = text.strip_prefix("-C").filter(|d| !d.is_empty())
                        {
                            chdir = Some(Some(dir.to_owned()));
                        }
                        at += if matches!(text, "-u" | "-C" | "--unset" | "--chdir") {
                            2
                        } else {
                            1
                        };
                        continue;
                    }
                    if let Some((var, _)) = text.split_once('=') {
                        if dangerous_variable(var) {
                            self.out.mark_opaque(format!(
                                "assigns {var}, which changes what the command runs"
                            ));
                        }
                        if !inner_env.contains(&var.to_owned()) {
                            inner_env.push(var.to_owned());
                        }
                        at += 1;
                        continue;
                    }
                    break;
                }
                if at < args.len() {
                    inner = Some((at, from_input));
                    if let Some(dir) = chdir {
                        let dir = dir.as_deref();
                        inner_dir = Some(dir.map(str::to_owned));
                    }
                }
            }
            "timeout" => {
                let at = skip_options(args, &["-s", "-k", "--signal", "--kill-after"], 1);
                if at < args.len() {
                    inner = Some((at, from_input));
                }
            }
            "nice" | "ionice" | "nohup" | "setsid" | "time" | "exec" | "builtin" | "stdbuf"
            | "unbuffer" | "caffeinate" | "chronic" | "command" => {
                if program == "command"
                    && args
                        .iter()
                        .any(|a| matches!(a.as_literal(), Some("-v" | "-V")))
                {
                    // `command -v x` only looks a name up.
                } else {
                    let at = skip_options(
                        args,
                        &[
                            "-n",
                            "-c",
                            "-p",
                            "-a",
                            "-f",
                            "-o",
                            "-i",
                            "-e",
                            "-t",
                            "-w",
                            "--adjustment",
                        ],
                        0,
                    );
                    if at < args.len() {
                        inner = Some((at, from_input));
                    }
                }
            }
            "busybox" => {
                if !args.is_empty() {
                    inner = Some((0, from_input));
                }
            }
            "xargs" => {
                let at = skip_options(
                    args,
                    &[
                        "-n",
                        "-L",
                        "-I",
                        "-d",
                        "-P",
                        "-s",
                        "-E",
                        "-a",
                        "--max-args",
                        "--max-lines",
                        "--replace",
                        "--delimiter",
                        "--max-procs",
                        "--max-chars",
                        "--eof",
                        "--arg-file",
                    ],
                    0,
                );
                if at < args.len() {
                    inner = Some((at, true));
                }
            }
            "find" => {
                let mut at = 0;
                while at < args.len() {
                    if matches!(
                        args.get(at).and_then(Text::as_literal),
                        Some("-exec" | "-execdir" | "-ok" | "-okdir")
                    ) {
                        let start = at + 1;
                        let mut end = start;
                        while end < args.len()
                            && !matches!(args.get(end).and_then(Text::as_literal), Some(";" | "+"))
                        {
                            end += 1;
                        }
                        if let Some(command) = args.get(start..end) {
                            let mut inner = Shell {
                                redirects,
                                stdin: &Stdin::Inherit,
                                depth,
                                out: &mut *self.out,
                                state: &mut *self.state,
                            };
                            inner.emit(command, true, env.clone());
                        }
                        at = end;
                    }
                    at += 1;
                }
            }
            "watch" => {
                let at = skip_options(args, &["-n", "-d", "--interval", "--differences"], 0);
                let script: Option<Vec<&str>> = args
                    .get(at..)
                    .unwrap_or(&[])
                    .iter()
                    .map(Text::as_literal)
                    .collect();
                match script {
                    Some(parts) if !parts.is_empty() => {
                        parse_into(&parts.join(" "), depth + 1, self.out, self.state.clone());
                    }
                    Some(_) => {}
                    None => self.out.mark_opaque("watch with a non-literal command"),
                }
            }
            "eval" => self.out.mark_opaque("eval runs a string as a command"),
            "source" | "." => self
                .out
                .mark_opaque("source runs a script file whose contents are unknown"),
            "alias" | "trap" | "fc" | "coproc" | "enable" => {
                self.out
                    .mark_opaque(format!("{program} defines or runs commands indirectly"));
            }
            _ if SHELLS.contains(&program.as_str()) || program == "su" => {
                shell(&program, args, stdin, depth, self.out, self.state);
            }
            _ => interpreter(&program, args, stdin, self.out),
        }
        if let Some(why) = runs_commands(&program, args) {
            self.out.mark_opaque(why);
        }
        if program == "git" && git_configures_commands(args) {
            self.out.mark_opaque("git -c can run arbitrary commands");
        }

        let own_args = match inner {
            Some((at, _)) => args.get(..at).unwrap_or(args),
            None => args,
        };
        let is_static = own_args.iter().all(|a| matches!(a, Text::Literal(_)));
        let normalised = normalise_words(&program, own_args);
        let mut analysis = grammar::analyse(&program, own_args, inner.is_some());
        if matches!(program.as_str(), "cd" | "pushd" | "popd") && inner.is_none() {
            let operands: Vec<Option<&str>> = own_args
                .iter()
                .map(Text::as_literal)
                .filter(|text| !matches!(text, Some("-L" | "-P" | "-e" | "-@" | "-n" | "--")))
                .collect();
            let went = self.state.change_directory(&program, &operands);
            // The command is judged by where it goes; its own operand is already in that.
            analysis.paths.retain(|p| p.access != Access::Cwd);
            match went {
                Cwd::Known(dirs) => analysis.paths.extend(dirs.into_iter().map(|path| PathUse {
                    path,
                    access: Access::Cwd,
                })),
                Cwd::Unknown(why) => {
                    analysis.problem.get_or_insert(why);
                }
            }
            judge_context(&mut analysis, &env, &Cwd::default(), &program);
            self.push(
                SimpleCommand {
                    program,
                    trusted_path,
                    words: normalised,
                    redirects: redirects.to_vec(),
                    is_static,
                    args_from_input: from_input,
                    env,
                    cwd: None,
                    analysis,
                },
                &Cwd::default(),
            );
            return;
        }
        let cwd = self.state.cwd.clone();
        self.state.succeeded = None;
        judge_context(&mut analysis, &env, &cwd, &program);
        self.push(
            SimpleCommand {
                program,
                trusted_path,
                words: normalised,
                redirects: redirects.to_vec(),
                is_static,
                args_from_input: from_input,
                env,
                cwd: None,
                analysis,
            },
            &cwd,
        );
        if let Some((at, from_input)) = inner
            && let Some(rest) = args.get(at..)
        {
            match inner_dir {
                Some(dir) => {
                    let saved = self.state.cwd.clone();
                    let operand = dir.as_deref();
                    self.state.change_directory("cd", &[operand]);
                    // `env -C DIR cmd` fails rather than run `cmd` elsewhere: only DIR counts.
                    if let (Cwd::Known(all), Cwd::Known(old)) = (&self.state.cwd, &saved) {
                        let moved: Vec<String> =
                            all.iter().filter(|d| !old.contains(d)).cloned().collect();
                        if !moved.is_empty() {
                            self.state.cwd = Cwd::Known(moved);
                        }
                    }
                    self.emit(rest, from_input, inner_env);
                    self.state.cwd = saved;
                }
                None => self.emit(rest, from_input, inner_env),
            }
        }
    }

    /// Records `command` once per directory it may run in.
    fn push(&mut self, command: SimpleCommand, cwd: &Cwd) {
        match cwd {
            Cwd::Known(dirs) => {
                for dir in dirs {
                    self.out.commands.push(moved(&command, dir));
                }
            }
            Cwd::Unknown(_) => self.out.commands.push(command),
        }
    }
}

/// Whether git's own options (before the subcommand) set configuration, which can name commands.
fn git_configures_commands(args: &[Text]) -> bool {
    let mut at = 0;
    while let Some(text) = args.get(at).and_then(Text::as_literal) {
        if git_config_override(Some(text)) {
            return true;
        }
        if !text.starts_with('-') {
            return false;
        }
        // Skip the value of -C, --git-dir, --work-tree, --namespace.
        at += if matches!(text, "-C" | "--git-dir" | "--work-tree" | "--namespace") {
            2
        } else {
            1
        };
    }
    false
}

fn git_config_override(word: Option<&str>) -> bool {
    matches!(word, Some("-c" | "--config-env" | "--exec-path"))
        || word.is_some_and(|w| w.starts_with("--config-env=") || w.starts_with("--exec-path="))
}

/// The index of the first operand in `args`, after options (those in `with_value` take the next
/// word) and `skip_operands` leading operands (e.g. the duration of `timeout`).
fn skip_options(args: &[Text], with_value: &[&str], skip_operands: usize) -> usize {
    let mut at = 0;
    let mut operands = 0;
    while let Some(word) = args.get(at) {
        let Some(text) = word.as_literal() else {
            return at;
        };
        if text == "--" {
            return at + 1 + skip_operands.saturating_sub(operands);
        }
        if text.starts_with('-') && text.len() > 1 {
            at += if with_value.contains(&text) { 2 } else { 1 };
            continue;
        }
        if operands < skip_operands {
            operands += 1;
            at += 1;
            continue;
        }
        return at;
    }
    at
}

/// `bash -c '...'`, `bash script.sh`, `... | bash`, `bash <<EOF`.
fn shell(
    program: &str,
    args: &[Text],
    stdin: &Stdin,
    depth: u8,
    out: &mut ParsedCommand,
    state: &LineState,
) {
    let mut command_mode = false;
    let mut at = 0;
    while let Some(word) = args.get(at) {
        let Some(text) = word.as_literal() else { break };
        if text == "--" || text == "-" {
            at += 1;
            break;
        }
        if (text.starts_with('-') || text.starts_with('+')) && text.len() > 1 {
            if text == "-o" || text == "+o" || text == "-O" || text == "+O" {
                at += 2;
                continue;
            }
            if text == "--command" || (!text.starts_with("--") && text.contains('c')) {
                command_mode = true;
            }
            at += 1;
            continue;
        }
        break;
    }
    match (command_mode, args.get(at)) {
        (true, Some(Text::Literal(script))) => parse_into(script, depth + 1, out, state.clone()),
        (true, _) => out.mark_opaque(format!("{program} -c with a script that is not literal")),
        (false, Some(_)) if program != "su" => {
            out.mark_opaque(format!(
                "{program} runs a script file whose contents are unknown"
            ));
        }
        (false, _) => match stdin {
            Stdin::Pipe => out.mark_opaque(format!("pipes into {program}")),
            Stdin::Text(Some(script)) => parse_into(script, depth + 1, out, state.clone()),
            Stdin::Text(None) => {
                out.mark_opaque(format!("feeds a non-literal script to {program}"))
            }
            Stdin::Inherit => out.mark_opaque(format!("starts an interactive {program}")),
        },
    }
}

/// Inline interpreters, code piped to interpreters, and awk programs that run commands.
fn interpreter(program: &str, args: &[Text], stdin: &Stdin, out: &mut ParsedCommand) {
    let literal = |a: &Text| a.as_literal().map(str::to_owned);
    let family = interpreter_family(program);
    if matches!(program, "awk" | "gawk" | "mawk" | "nawk") {
        let code_runs = args.iter().any(|a| match a.as_literal() {
            Some(text) => {
                !text.starts_with('-')
                    && (text.contains("system")
                        || text.contains("getline")
                        || text.contains('|')
                        || text.contains("> \"")
                        || text.contains(">\""))
            }
            None => true,
        });
        if code_runs {
            out.mark_opaque(format!("{program} program that may run commands"));
        }
        return;
    }
    let Some(family) = family else { return };
    let mut script_file = false;
    let mut module = false;
    for arg in args {
        let Some(text) = literal(arg) else {
            out.mark_opaque(format!("{program} with arguments that are not literal"));
            return;
        };
        let inline = match family {
            Family::Python => text == "-c" || (is_cluster(&text) && text.contains('c')),
            Family::Node => {
                matches!(text.as_str(), "-e" | "--eval" | "-p" | "--print" | "-pe")
                    || text.starts_with("--eval=")
                    || text.starts_with("--print=")
            }
            Family::Php => text == "-r" || text == "-R" || text == "-B" || text == "-E",
            Family::Deno => text == "eval",
            Family::Pwsh => {
                let lower = text.to_ascii_lowercase();
                lower.starts_with("-c") || lower.starts_with("-e") || lower == "-command"
            }
            Family::EFlag => is_cluster(&text) && (text.contains('e') || text.contains('E')),
        };
        if inline {
            out.mark_opaque(format!("{program} runs inline code"));
            return;
        }
        if text == "-m" {
            module = true;
        }
        if !text.starts_with('-') {
            script_file = true;
            break;
        }
    }
    if !script_file && !module && !matches!(stdin, Stdin::Inherit) {
        out.mark_opaque(format!("feeds code to {program} on standard input"));
    }
}

enum Family {
    Python,
    Node,
    Php,
    Deno,
    Pwsh,
    /// `-e CODE`, possibly in a cluster: perl, ruby, lua, Rscript, osascript, julia, bun.
    EFlag,
}

fn interpreter_family(program: &str) -> Option<Family> {
    if program.starts_with("python") || program == "pypy" || program == "pypy3" {
        return Some(Family::Python);
    }
    Some(match program {
        "node" | "nodejs" => Family::Node,
        "php" => Family::Php,
        "deno" => Family::Deno,
        "pwsh" | "powershell" => Family::Pwsh,
        "perl" | "ruby" | "lua" | "luajit" | "Rscript" | "osascript" | "julia" | "bun" | "irb"
        | "tclsh" | "jshell" => Family::EFlag,
        _ if program.starts_with("perl5") || program.starts_with("lua5") => Family::EFlag,
        _ => return None,
    })
}

/// `-abc`: a cluster of short options.
pub(super) fn is_cluster(text: &str) -> bool {
    text.len() > 1
        && text.starts_with('-')
        && !text.starts_with("--")
        && text[1..].chars().all(|c| c.is_ascii_alphanumeric())
}
