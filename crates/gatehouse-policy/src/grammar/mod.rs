//! Per-program option grammars, as data: the positive model an allow rule relies on.
//!
//! A grammar (`grammars/*.toml`, embedded at build time and compiled on first use) says which
//! options a program has, in which spellings, which take a value, and what each does: only
//! prints (`safe`), reads or writes a file, changes the working directory, runs the project's
//! code, or runs a command, changes configuration or reaches the network. It also says what the
//! operands are, and subcommands have grammars of their own (`git fetch`, `cargo test`).
//!
//! [`analyse`] reads one simple command's words with its program's grammar, the way the program's
//! own option parser would (bundled short options, attached values, `--opt=value`, `--`), and
//! says what it understood: the files it touches ([`Analysis::paths`]) and, when an allow rule must
//! not apply, why ([`Analysis::problem`]): an unknown option, an abbreviated one, an option or
//! operand that runs code, changes configuration or reaches the network, a word that is not
//! literal, an environment variable off the allowlist.
//!
//! *Invariant*: whatever the grammar does not describe is a problem. A program without a grammar
//! has no known options; only its operands (taken as paths) can be judged.

mod scripts;
mod spec;

use std::sync::OnceLock;

use serde::Serialize;

use crate::shell::words::Text;
pub(crate) use spec::Registry;
use spec::{Arity, Check, Class, Grammar, Operand, Style};

/// The grammar files, embedded.
const FILES: &[(&str, &str)] = &[
    (
        "environment.toml",
        include_str!("../../grammars/environment.toml"),
    ),
    ("shell.toml", include_str!("../../grammars/shell.toml")),
    ("files.toml", include_str!("../../grammars/files.toml")),
    ("text.toml", include_str!("../../grammars/text.toml")),
    ("git.toml", include_str!("../../grammars/git.toml")),
    ("build.toml", include_str!("../../grammars/build.toml")),
    ("network.toml", include_str!("../../grammars/network.toml")),
];

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The compiled grammars. If the embedded data ever failed to compile, the registry is empty and
/// says why, and every analysis fails closed.
pub(crate) fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| match spec::compile(FILES) {
        Ok(registry) => registry,
        Err(error) => Registry {
            broken: Some(error),
            ..Registry::default()
        },
    })
}

/// Whether an environment variable may be given to a command an allow rule allows.
pub(crate) fn environment_allowed(name: &str) -> bool {
    registry().environment.iter().any(|allowed| allowed == name)
}

/// How a command uses a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    /// A directory the command works in.
    Cwd,
    /// A file of code the command runs.
    Code,
}

/// One path a command names, as written, relative to where the command runs (a `-C DIR` option
/// before it already applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathUse {
    pub path: String,
    pub access: Access,
}

/// What the grammar understood of one simple command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The grammar that read it (`git fetch`), or `None` when the program has none.
    pub grammar: Option<String>,
    /// Why no allow rule may apply, naming the word that stopped it; `None` when every part is
    /// understood and nothing runs code, changes configuration or reaches the network.
    pub problem: Option<String>,
    /// The files and directories it names.
    pub paths: Vec<PathUse>,
}

/// Reads `args` (the words after the program, up to a wrapped command) with `program`'s grammar.
/// `wraps`: another command follows (`env X=1 cmd`, `timeout 5 cmd`).
pub(crate) fn analyse(program: &str, args: &[Text], wraps: bool) -> Analysis {
    let registry = registry();
    let mut run = Run::default();
    if let Some(broken) = &registry.broken {
        run.analysis.problem = Some(format!("the option grammars did not load: {broken}"));
        return run.analysis;
    }
    let mut words = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        match arg.as_literal() {
            Some(text) => words.push(text),
            None => {
                run.analysis.problem = Some(format!(
                    "word {} of `{program}` is not literal (a variable, substitution or expansion the engine does not expand)",
                    index + 1
                ));
                return run.analysis;
            }
        }
    }
    match registry.programs.get(program) {
        Some(grammar) => {
            run.analysis.grammar = Some(grammar.name.clone());
            if let Err(problem) = run.grammar(registry, grammar, &words, wraps) {
                run.analysis.problem = Some(problem);
            }
        }
        None => {
            for word in &words {
                if word.len() > 1 && word.starts_with('-') {
                    run.analysis.problem.get_or_insert_with(|| {
                        format!(
                            "`{program}` has no option grammar, so its option `{word}` is unknown"
                        )
                    });
                } else {
                    run.path(word, Access::Read);
                }
            }
        }
    }
    run.analysis
}

/// What one option did.
enum Step {
    /// It consumed this many following words.
    Took(usize),
    /// It hands the rest of the words (after the ones it consumed) to another program's
    /// grammar (`python -m pytest ...`).
    Module(String, usize),
}

#[derive(Default)]
struct Run {
    analysis: Analysis,
    /// Set by a `-C DIR`-style option: where later relative paths are.
    cwd: Option<String>,
}

impl Run {
    fn path(&mut self, text: &str, access: Access) {
        let path = match &self.cwd {
            Some(dir) if !text.starts_with('/') && !text.starts_with('~') => {
                format!("{dir}/{text}")
            }
            _ => text.to_owned(),
        };
        if access == Access::Cwd {
            self.cwd = Some(path.clone());
        }
        self.analysis.paths.push(PathUse { path, access });
    }

    fn grammar(
        &mut self,
        registry: &Registry,
        grammar: &Grammar,
        words: &[&str],
        wraps: bool,
    ) -> Result<(), String> {
        if let Some(why) = grammar.class.and_then(Class::refusal) {
            return Err(format!("`{}` {why}", grammar.name));
        }
        match grammar.style {
            Style::Find => return scripts::find(self, words),
            Style::Set => return scripts::set(words),
            Style::Operands => {
                for word in words {
                    self.operand(grammar, Operand::Data, word)?;
                }
                return Ok(());
            }
            Style::Gnu | Style::Go | Style::Tar => {}
        }
        let mut operands: Vec<&str> = Vec::new();
        let mut given: Vec<String> = Vec::new();
        let mut at = 0;
        let mut only_operands = false;
        if grammar.style == Style::Tar
            && let Some(first) = words.first()
            && !first.starts_with('-')
            && !first.is_empty()
            && first.chars().all(|c| c.is_ascii_alphabetic())
        {
            at = 1 + self.old_style_cluster(
                grammar,
                first,
                words.get(1..).unwrap_or(&[]),
                &mut given,
            )?;
        }
        while let Some(&word) = words.get(at) {
            at += 1;
            let is_option = !only_operands
                && word.len() > 1
                && (word.starts_with('-')
                    || (word.starts_with('+') && grammar.spellings.contains_key("+*")));
            if !is_option {
                if operands.is_empty() && grammar.operand_kind(0) == Some(Operand::Module) {
                    let rest = words.get(at..).unwrap_or(&[]);
                    return self.module(registry, grammar, word, rest, wraps);
                }
                if !grammar.subcommands.is_empty() && operands.is_empty() {
                    return match grammar.subcommands.get(word) {
                        Some(sub) => {
                            self.analysis.grammar = Some(sub.name.clone());
                            self.grammar(registry, sub, words.get(at..).unwrap_or(&[]), wraps)
                        }
                        None => Err(format!(
                            "`{word}` is not a subcommand of `{}` the engine knows",
                            grammar.name
                        )),
                    };
                }
                operands.push(word);
                if !grammar.permute {
                    only_operands = true;
                }
                continue;
            }
            if word == "--" {
                if let Some(kind) = grammar.after_dashdash {
                    let rest = words.get(at..).unwrap_or(&[]);
                    if kind == Operand::Lints {
                        scripts::lints(rest)?;
                    } else {
                        for word in rest {
                            self.operand(grammar, kind, word)?;
                        }
                    }
                    at = words.len();
                }
                only_operands = true;
                continue;
            }
            if grammar.unknown_options_are_operands && !self.known_option(grammar, word) {
                operands.push(word);
                continue;
            }
            if grammar.check == Some(Check::Chmod) && is_mode(grammar, word) {
                operands.push(word);
                continue;
            }
            match self.option(grammar, word, words.get(at..).unwrap_or(&[]), &mut given)? {
                Step::Took(count) => at += count,
                Step::Module(module, took) => {
                    let rest = words.get(at + took..).unwrap_or(&[]);
                    return self.module(registry, grammar, &module, rest, wraps);
                }
            }
        }
        if grammar.subcommand_required && operands.is_empty() && !grammar.subcommands.is_empty() {
            return Err(format!("`{}` without a subcommand", grammar.name));
        }
        let skip_first = grammar
            .pattern_options
            .iter()
            .any(|pattern| given.contains(pattern));
        if operands.len() < grammar.min_operands {
            return Err(format!(
                "`{}` needs at least {} operand(s) here",
                grammar.name, grammar.min_operands
            ));
        }
        if let Some(max) = grammar.max_operands
            && operands.len() > max
        {
            return Err(format!(
                "`{}` takes at most {max} operand(s), found {}",
                grammar.name,
                operands.len()
            ));
        }
        for (index, text) in operands.iter().enumerate() {
            let kind = grammar
                .operand_kind(index + usize::from(skip_first))
                .ok_or_else(|| format!("`{}` takes no operands, found `{text}`", grammar.name))?;
            if grammar.check == Some(Check::Ps) {
                ps_bsd_word(text)?;
            }
            self.operand(grammar, kind, text)?;
        }
        if grammar.check == Some(Check::Env) && !wraps {
            return Err("`env` without a command prints the environment".to_owned());
        }
        Ok(())
    }

    fn module(
        &mut self,
        registry: &Registry,
        grammar: &Grammar,
        module: &str,
        rest: &[&str],
        wraps: bool,
    ) -> Result<(), String> {
        let Some(target) = grammar.modules.get(module) else {
            return Err(format!(
                "`{} {module}`: not a module or tool the engine knows",
                grammar.name
            ));
        };
        let Some(inner) = registry.programs.get(target) else {
            return Err(format!(
                "`{} {module}`: its grammar `{target}` is missing",
                grammar.name
            ));
        };
        self.analysis.grammar = Some(format!("{} {module}", grammar.name));
        self.grammar(registry, inner, rest, wraps)
    }

    fn known_option(&self, grammar: &Grammar, word: &str) -> bool {
        if grammar.spellings.contains_key(word) {
            return true;
        }
        // A cluster of known short options without values (`echo -ne`).
        !word.starts_with("--")
            && word.chars().skip(1).all(|c| {
                grammar
                    .spellings
                    .get(&format!("-{c}"))
                    .and_then(|i| grammar.options.get(*i))
                    .is_some_and(|o| o.arity == spec::Arity::None)
            })
    }

    fn operand(&mut self, grammar: &Grammar, kind: Operand, text: &str) -> Result<(), String> {
        match kind {
            Operand::Read => {
                if grammar.check == Some(Check::Awk) && scripts::is_assignment(text) {
                    return Ok(());
                }
                self.path(text, Access::Read);
            }
            Operand::Write => self.path(text, Access::Write),
            Operand::Code => self.path(text, Access::Code),
            Operand::Cwd => self.path(text, Access::Cwd),
            Operand::Data | Operand::Url => {}
            Operand::Assign => {
                let name = text.split_once('=').map_or(text, |(name, _)| name);
                if !environment_allowed(name) {
                    return Err(format!(
                        "`{}` sets `{name}`, which is not on the environment allowlist",
                        grammar.name
                    ));
                }
            }
            Operand::Target => {
                if text.contains('=') {
                    return Err(format!(
                        "`{text}` overrides a `{}` variable, which can name commands to run",
                        grammar.name
                    ));
                }
            }
            Operand::Script => self.script(grammar, text)?,
            Operand::Module | Operand::Lints => {
                return Err(format!(
                    "`{}`: `{text}` is not understood here",
                    grammar.name
                ));
            }
        }
        Ok(())
    }

    fn script(&mut self, grammar: &Grammar, text: &str) -> Result<(), String> {
        match grammar.check {
            Some(Check::Sed) => scripts::sed(text),
            Some(Check::Awk) => scripts::awk(text),
            Some(Check::Jq) => scripts::jq(text),
            _ => Err(format!(
                "`{}` takes a script the engine cannot read",
                grammar.name
            )),
        }
    }

    /// One option word (and the values it takes from `rest`).
    fn option<'w>(
        &mut self,
        grammar: &Grammar,
        word: &'w str,
        rest: &[&'w str],
        given: &mut Vec<String>,
    ) -> Result<Step, String> {
        if word.starts_with('+') {
            return Ok(Step::Took(0));
        }
        if grammar.style == Style::Go {
            let bare = word.trim_start_matches('-');
            let (name, value) = match bare.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (bare, None),
            };
            let spelling = format!("-{name}");
            let Some(index) = grammar.spellings.get(&spelling) else {
                return Err(unknown(grammar, word));
            };
            return self.apply(grammar, *index, word, value, rest, given, true);
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (format!("--{name}"), Some(value)),
                None => (word.to_owned(), None),
            };
            if let Some(index) = grammar.spellings.get(&name) {
                return self.apply(grammar, *index, word, value, rest, given, true);
            }
            if grammar.negate
                && let Some(positive) = name.strip_prefix("--no-")
                && grammar.spellings.contains_key(&format!("--{positive}"))
                && value.is_none()
            {
                return Ok(Step::Took(0));
            }
            return Err(abbreviation(grammar, word, &name));
        }
        // A cluster of short options.
        let letters: Vec<char> = word.chars().skip(1).collect();
        if grammar.numeric && letters.iter().all(char::is_ascii_digit) {
            return Ok(Step::Took(0));
        }
        for (position, letter) in letters.iter().enumerate() {
            let Some(index) = grammar.spellings.get(&format!("-{letter}")) else {
                return Err(if letters.len() == 1 {
                    unknown(grammar, word)
                } else {
                    format!(
                        "unknown option `-{letter}` (in `{word}`) for `{}`",
                        grammar.name
                    )
                });
            };
            let arity = grammar.options.get(*index).map_or(Arity::None, |o| o.arity);
            if arity == Arity::None {
                self.apply(grammar, *index, word, None, rest, given, false)?;
                continue;
            }
            let attached: String = letters.iter().skip(position + 1).collect();
            let attached = (!attached.is_empty()).then_some(attached);
            return self.apply(
                grammar,
                *index,
                word,
                attached.as_deref(),
                rest,
                given,
                false,
            );
        }
        Ok(Step::Took(0))
    }

    /// `tar czf FILE`: a first word without a dash, whose value-taking letters take the next
    /// words in order. Returns how many words the values took.
    fn old_style_cluster<'w>(
        &mut self,
        grammar: &Grammar,
        cluster: &'w str,
        rest: &[&'w str],
        given: &mut Vec<String>,
    ) -> Result<usize, String> {
        let mut taken = 0;
        for letter in cluster.chars() {
            let Some(index) = grammar.spellings.get(&format!("-{letter}")) else {
                return Err(format!(
                    "unknown option `{letter}` (in `{cluster}`) for `{}`",
                    grammar.name
                ));
            };
            let arity = grammar.options.get(*index).map_or(Arity::None, |o| o.arity);
            if arity == Arity::None {
                self.apply(grammar, *index, cluster, None, &[], given, false)?;
            } else {
                let value = rest.get(taken).copied().ok_or_else(|| {
                    format!("option `{letter}` of `{}` has no value", grammar.name)
                })?;
                taken += 1;
                self.apply(grammar, *index, cluster, Some(value), &[], given, false)?;
            }
        }
        Ok(taken)
    }

    /// Applies option `index` spelled `word`, with its attached value (if any) or values taken
    /// from `rest`.
    #[expect(clippy::too_many_arguments, reason = "one call site per spelling form")]
    fn apply<'w>(
        &mut self,
        grammar: &Grammar,
        index: usize,
        word: &'w str,
        attached: Option<&str>,
        rest: &[&'w str],
        given: &mut Vec<String>,
        long: bool,
    ) -> Result<Step, String> {
        let Some(option) = grammar.options.get(index) else {
            return Err(unknown(grammar, word));
        };
        if let Some(why) = option.class.refusal() {
            let spelled = if option.canonical == word.split('=').next().unwrap_or(word) {
                format!("`{word}`")
            } else {
                format!("`{word}` ({})", option.canonical)
            };
            return Err(format!("option {spelled} of `{}` {why}", grammar.name));
        }
        given.push(option.canonical.clone());
        let (values, took): (Vec<String>, usize) = match (option.arity, attached) {
            (Arity::None, None) => (Vec::new(), 0),
            (Arity::None, Some(value)) => {
                // Go's `-v=true`; elsewhere `--flag=x` is an error the program reports.
                if grammar.style == Style::Go && long {
                    (vec![value.to_owned()], 0)
                } else {
                    return Err(format!(
                        "option `{word}` of `{}` takes no value",
                        grammar.name
                    ));
                }
            }
            (Arity::Optional, value) => (value.map(str::to_owned).into_iter().collect(), 0),
            (Arity::Required, Some(value)) => (vec![value.to_owned()], 0),
            (Arity::Required, None) => match rest.first() {
                Some(value) => (vec![(*value).to_owned()], 1),
                None => {
                    return Err(format!(
                        "option `{word}` of `{}` has no value",
                        grammar.name
                    ));
                }
            },
            (Arity::Two, _) => match rest.get(..2) {
                Some(pair) => (pair.iter().map(|v| (*v).to_owned()).collect(), 2),
                None => {
                    return Err(format!(
                        "option `{word}` of `{}` needs two values",
                        grammar.name
                    ));
                }
            },
        };
        let value = values.last().map(String::as_str);
        match (option.class, value) {
            (Class::Read, Some(value)) => self.path(value, Access::Read),
            (Class::Write, Some(value)) => self.path(value, Access::Write),
            (Class::Code, Some(value)) => self.path(value, Access::Code),
            (Class::Cwd, Some(value)) => self.path(value, Access::Cwd),
            (Class::Script, Some(value)) => self.script(grammar, value)?,
            (Class::Module, Some(value)) => return Ok(Step::Module(value.to_owned(), took)),
            _ => {}
        }
        if grammar.check == Some(Check::Curl)
            && option.class == Class::Safe
            && let Some(value) = value
        {
            let file = value
                .strip_prefix('@')
                .or_else(|| value.split_once("=@").map(|(_, file)| file))
                .or_else(|| value.split_once("=<").map(|(_, file)| file))
                // `--data-urlencode name@file`.
                .or_else(|| {
                    value
                        .split_once('@')
                        .filter(|(name, _)| {
                            option.canonical == "--data"
                                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        })
                        .map(|(_, file)| file)
                })
                .or_else(|| {
                    (option.canonical == "--cookie" && !value.contains('=')).then_some(value)
                });
            if let Some(file) = file
                && !file.is_empty()
                && file != "-"
            {
                self.path(file, Access::Read);
            }
        }
        if grammar.check == Some(Check::Tar)
            && option.canonical == "--file"
            && let Some(value) = value
            && value
                .split('/')
                .next()
                .is_some_and(|head| head.contains(':'))
        {
            return Err(format!(
                "`tar --file {value}` names an archive on another machine"
            ));
        }
        Ok(Step::Took(took))
    }
}

fn unknown(grammar: &Grammar, word: &str) -> String {
    format!("unknown option `{word}` for `{}`", grammar.name)
}

/// An unknown long option: an abbreviation of listed ones, or unknown. Abbreviations are never
/// allowed: the engine's list of a program's options is never complete, and a prefix unique
/// among the listed ones may name an unlisted option to the program itself.
fn abbreviation(grammar: &Grammar, word: &str, name: &str) -> String {
    let mut targets: Vec<&str> = grammar
        .spellings
        .iter()
        .filter(|(spelling, _)| spelling.starts_with("--") && spelling.starts_with(name))
        .filter_map(|(_, index)| grammar.options.get(*index))
        .map(|option| option.canonical.as_str())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    match targets.as_slice() {
        [] => unknown(grammar, word),
        [one] => {
            let danger = grammar
                .options
                .iter()
                .find(|o| o.canonical == *one)
                .and_then(|o| o.class.refusal())
                .map(|why| format!(", which {why}"))
                .unwrap_or_default();
            format!(
                "`{word}` abbreviates `{one}`{danger}; options of `{}` must be spelled in full",
                grammar.name
            )
        }
        many => format!(
            "`{word}` abbreviates several options of `{}` ({})",
            grammar.name,
            many.join(", ")
        ),
    }
}

/// `chmod -x file`: a dash word of mode letters that are not all options is the mode.
fn is_mode(grammar: &Grammar, word: &str) -> bool {
    !word.starts_with("--")
        && word.chars().skip(1).all(|c| "rwxXstugoa".contains(c))
        && !word
            .chars()
            .skip(1)
            .all(|c| grammar.spellings.contains_key(&format!("-{c}")))
}

#[cfg(test)]
mod tests;

/// BSD-style `ps` option letters the engine understands; `e` (show each process's environment)
/// is left out on purpose. A number is a process id.
const PS_BSD_LETTERS: &str = "acfhjlmnrsuvwxST";

/// An operand of `ps`: a process id, or a word of known BSD option letters.
fn ps_bsd_word(word: &str) -> Result<(), String> {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    if word.contains('e') {
        return Err(format!(
            "`ps {word}`: `e` prints every process's environment (tokens and keys)"
        ));
    }
    match word.chars().find(|c| !PS_BSD_LETTERS.contains(*c)) {
        Some(letter) => Err(format!(
            "`ps {word}`: `{letter}` is not a BSD option letter the engine knows"
        )),
        None => Ok(()),
    }
}
