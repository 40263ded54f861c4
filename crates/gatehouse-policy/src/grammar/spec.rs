//! The grammar files' format (`grammars/*.toml`) and its compiled form.
//!
//! A file holds `[program.NAME]` tables (one per program; `also` names others that share it),
//! `[group.NAME]` tables (option lists that several grammars include) and `[environment]`
//! (the variables a command may be given). Inside a grammar, each option class is a list of
//! entries; an entry lists the spellings of one option separated by spaces, and a trailing `=`
//! says it takes a value (`=?`: an optional value, attached only; `==`: two values). The first
//! long spelling is the option's canonical name. See docs/POLICY.md, "Option grammars".

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// What an option does, which decides whether an allow rule can still apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Changes only what is printed or how (its value, if any, is data).
    Safe,
    /// Its value is a file the command reads.
    Read,
    /// Its value is a file the command writes.
    Write,
    /// Its value is a directory the command works in (`git -C`, `make -C`, `tar -C`).
    Cwd,
    /// Its value is a file of the project's code the command runs (`make -f`).
    Code,
    /// Its value is a script in the program's own language, checked by the grammar's `check`.
    Script,
    /// Its value names a module whose own grammar reads the rest (`python -m`).
    Module,
    /// Runs a command or code named on the command line.
    Exec,
    /// Changes configuration, which can name commands to run.
    Config,
    /// Reaches the network, or decides where a connection goes.
    Network,
}

impl Class {
    fn from_key(key: &str) -> Option<Class> {
        Some(match key {
            "safe" => Class::Safe,
            "read" => Class::Read,
            "write" => Class::Write,
            "cwd" => Class::Cwd,
            "code" => Class::Code,
            "script" => Class::Script,
            "module" => Class::Module,
            "exec" => Class::Exec,
            "config" => Class::Config,
            "network" => Class::Network,
            _ => return None,
        })
    }

    /// Why an option of this class stops an allow rule, or `None` when it does not.
    pub(crate) fn refusal(self) -> Option<&'static str> {
        match self {
            Class::Exec => Some("runs a command or code named on the command line"),
            Class::Config => Some("changes configuration, which can name commands to run"),
            Class::Network => Some("reaches the network or decides where a connection goes"),
            _ => None,
        }
    }
}

/// How many values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arity {
    None,
    /// Attached (`-ofile`, `--out=file`) or the next word.
    Required,
    /// Attached only (`-j4`, `--color=auto`).
    Optional,
    /// The next two words (`jq --arg NAME VALUE`).
    Two,
}

/// One option of a grammar.
#[derive(Clone, Debug)]
pub(crate) struct OptionSpec {
    /// The first long spelling, else the first spelling.
    pub(crate) canonical: String,
    pub(crate) class: Class,
    pub(crate) arity: Arity,
}

/// What an operand is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    /// A file or directory read.
    Read,
    /// A file or directory written (created, changed, deleted).
    Write,
    /// Plain data (a pattern, a message, a test name...).
    Data,
    /// A file of the project's code that runs (`node app.js`).
    Code,
    /// A directory to work in (`cd`).
    Cwd,
    /// A URL; `url`/`host` rules judge where it goes.
    Url,
    /// `NAME=VALUE`: an environment variable, judged against the allowlist.
    Assign,
    /// A make target; `NAME=VALUE` there overrides a variable (configuration).
    Target,
    /// A script in the program's language (sed, awk, jq), judged by the grammar's `check`.
    Script,
    /// Names a module or tool whose own grammar reads the rest (`npx tsc ...`).
    Module,
    /// rustc lint levels after `cargo clippy --` (`-D warnings`, `-Aclippy::x`).
    Lints,
}

impl Operand {
    fn from_key(key: &str) -> Option<Operand> {
        Some(match key {
            "read" => Operand::Read,
            "write" => Operand::Write,
            "data" => Operand::Data,
            "code" => Operand::Code,
            "cwd" => Operand::Cwd,
            "url" => Operand::Url,
            "assign" => Operand::Assign,
            "target" => Operand::Target,
            "script" => Operand::Script,
            "module" => Operand::Module,
            "lints" => Operand::Lints,
            _ => return None,
        })
    }
}

/// How a program spells its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// getopt_long: `-abc` bundles, `-ofile`, `--long=value`, `--long value`, `--`.
    Gnu,
    /// Go's flag package: `-name`, `--name`, `-name=value`, `-name value`; no bundling.
    Go,
    /// GNU tar: like `Gnu`, and a first word without a dash is an old-style bundle (`tar czf x`).
    Tar,
    /// find: starting points, then an expression (checked by code).
    Find,
    /// Every word is an operand (`test`, `[`).
    Operands,
    /// The shell's `set`: `-e`, `+x`, `-o pipefail`, `--`.
    Set,
}

/// Code that checks what a data file cannot say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Sed,
    Awk,
    Jq,
    /// `env` prints the environment unless it runs a command.
    Env,
    /// `chmod -x file`: option-like words made of mode letters are the mode operand.
    Chmod,
    /// `tar -f host:file` reaches another machine.
    Tar,
    /// `curl -d @file`, `-F name=<file`, `-b file`: values that name files to read.
    Curl,
    /// `ps aux`: BSD-style option words are operands; only known letters, and never `e`
    /// (every process's environment: tokens and keys).
    Ps,
}

/// A compiled grammar: one program, or one subcommand of it.
#[derive(Clone, Debug)]
pub(crate) struct Grammar {
    /// `git fetch`, `ls`: for messages.
    pub(crate) name: String,
    pub(crate) style: Style,
    /// Options may follow operands (GNU); otherwise the first operand ends the options.
    pub(crate) permute: bool,
    /// `-NUM` is an option (`head -20`).
    pub(crate) numeric: bool,
    /// `--no-X` negates a listed `--X`.
    pub(crate) negate: bool,
    /// Unknown option-like words are operands (`echo -z` prints `-z`).
    pub(crate) unknown_options_are_operands: bool,
    pub(crate) options: Vec<OptionSpec>,
    /// Spelling (`-x`, `--long`, `-name` for Go) → index into `options`.
    pub(crate) spellings: HashMap<String, usize>,
    /// Operand kinds in order; the last repeats. Empty: no operands.
    pub(crate) operands: Vec<Operand>,
    pub(crate) min_operands: usize,
    pub(crate) max_operands: Option<usize>,
    /// Canonical names of options that supply the first operand (`grep -e`).
    pub(crate) pattern_options: Vec<String>,
    /// What the words after `--` are (default: operands as before).
    pub(crate) after_dashdash: Option<Operand>,
    pub(crate) check: Option<Check>,
    /// The whole command (or subcommand) is of this class (`git push`: network).
    pub(crate) class: Option<Class>,
    /// Subcommands by name (aliases included); the first operand picks one.
    pub(crate) subcommands: HashMap<String, Grammar>,
    pub(crate) subcommand_required: bool,
    /// `python -m NAME` → the grammar reading the module's arguments (a program name).
    pub(crate) modules: BTreeMap<String, String>,
}

impl Grammar {
    pub(crate) fn operand_kind(&self, index: usize) -> Option<Operand> {
        self.operands
            .get(index)
            .or_else(|| self.operands.last())
            .copied()
    }
}

/// Everything the grammar files define, compiled.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) programs: HashMap<String, Grammar>,
    /// Environment variables a command may be given.
    pub(crate) environment: Vec<String>,
    /// Why the embedded data did not load; every analysis then fails closed.
    pub(crate) broken: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFile {
    #[serde(default)]
    program: BTreeMap<String, WireGrammar>,
    #[serde(default)]
    group: BTreeMap<String, WireOptions>,
    #[serde(default)]
    environment: Option<WireEnvironment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvironment {
    allow: Vec<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct WireOptions {
    #[serde(default)]
    safe: Vec<String>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
    #[serde(default)]
    cwd: Vec<String>,
    #[serde(default)]
    code: Vec<String>,
    #[serde(default)]
    script: Vec<String>,
    #[serde(default)]
    module: Vec<String>,
    #[serde(default)]
    exec: Vec<String>,
    #[serde(default)]
    config: Vec<String>,
    #[serde(default)]
    network: Vec<String>,
}

impl WireOptions {
    fn classes(&self) -> [(&'static str, &Vec<String>); 10] {
        [
            ("exec", &self.exec),
            ("config", &self.config),
            ("network", &self.network),
            ("script", &self.script),
            ("module", &self.module),
            ("code", &self.code),
            ("cwd", &self.cwd),
            ("write", &self.write),
            ("read", &self.read),
            ("safe", &self.safe),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireGrammar {
    /// Other program names (or subcommand aliases) with this grammar.
    #[serde(default)]
    also: Vec<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    permute: Option<bool>,
    #[serde(default)]
    numeric: bool,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    unknown_options_are_operands: bool,
    #[serde(default)]
    operands: Vec<String>,
    #[serde(default)]
    min_operands: usize,
    #[serde(default)]
    max_operands: Option<usize>,
    #[serde(default)]
    pattern_options: Vec<String>,
    #[serde(default)]
    after_dashdash: Option<String>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    class: Option<String>,
    /// `[group.NAME]` option lists this grammar includes.
    #[serde(default)]
    groups: Vec<String>,
    /// Subcommand grammars include the parent's options (cargo's `-v` after the subcommand).
    #[serde(default)]
    inherit: bool,
    #[serde(default)]
    subcommand_required: bool,
    #[serde(default)]
    sub: BTreeMap<String, WireGrammar>,
    #[serde(default)]
    modules: BTreeMap<String, String>,
    #[serde(flatten)]
    options: WireOptions,
}

/// Compiles the grammar files; every problem is reported (the data is ours: a unit test loads it).
pub(crate) fn compile(files: &[(&str, &str)]) -> Result<Registry, String> {
    let mut registry = Registry::default();
    let mut errors = Vec::new();
    let mut wires = Vec::new();
    let mut groups: BTreeMap<String, WireOptions> = BTreeMap::new();
    for (name, text) in files {
        match toml::from_str::<WireFile>(text) {
            Ok(file) => {
                groups.extend(file.group.clone());
                if let Some(environment) = &file.environment {
                    registry
                        .environment
                        .extend(environment.allow.iter().cloned());
                }
                wires.push((*name, file));
            }
            Err(error) => errors.push(format!("{name}: {error}")),
        }
    }
    for (file, wire) in &wires {
        for (name, grammar) in &wire.program {
            let mut context = Compiler {
                groups: &groups,
                errors: Vec::new(),
            };
            let compiled = context.grammar(name, grammar, None);
            for error in context.errors {
                errors.push(format!("{file}: program {name}: {error}"));
            }
            for alias in grammar.also.iter().chain(std::iter::once(name)) {
                let mut named = compiled.clone();
                named.name.clone_from(alias);
                if registry.programs.insert(alias.clone(), named).is_some() {
                    errors.push(format!("{file}: program {alias} is defined twice"));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(registry)
    } else {
        Err(errors.join("; "))
    }
}

struct Compiler<'g> {
    groups: &'g BTreeMap<String, WireOptions>,
    errors: Vec<String>,
}

impl Compiler<'_> {
    fn grammar(&mut self, name: &str, wire: &WireGrammar, parent: Option<&Grammar>) -> Grammar {
        let style = match wire.style.as_deref() {
            None | Some("gnu") => Style::Gnu,
            Some("go") => Style::Go,
            Some("tar") => Style::Tar,
            Some("find") => Style::Find,
            Some("operands") => Style::Operands,
            Some("set") => Style::Set,
            Some(other) => {
                self.errors.push(format!("{name}: unknown style `{other}`"));
                Style::Gnu
            }
        };
        let operand = |compiler: &mut Compiler<'_>, key: &str| {
            Operand::from_key(key).or_else(|| {
                compiler
                    .errors
                    .push(format!("{name}: unknown operand kind `{key}`"));
                None
            })
        };
        let operands: Vec<Operand> = wire
            .operands
            .iter()
            .filter_map(|key| operand(self, key))
            .collect();
        let after_dashdash = wire
            .after_dashdash
            .as_deref()
            .and_then(|key| operand(self, key));
        let check = wire.check.as_deref().and_then(|key| {
            Some(match key {
                "sed" => Check::Sed,
                "awk" => Check::Awk,
                "jq" => Check::Jq,
                "env" => Check::Env,
                "chmod" => Check::Chmod,
                "tar" => Check::Tar,
                "curl" => Check::Curl,
                "ps" => Check::Ps,
                other => {
                    self.errors.push(format!("{name}: unknown check `{other}`"));
                    return None;
                }
            })
        });
        let class = wire.class.as_deref().and_then(|key| {
            Class::from_key(key).or_else(|| {
                self.errors.push(format!("{name}: unknown class `{key}`"));
                None
            })
        });
        let mut grammar = Grammar {
            name: name.to_owned(),
            style,
            permute: wire.permute.unwrap_or(true),
            numeric: wire.numeric,
            negate: wire.negate,
            unknown_options_are_operands: wire.unknown_options_are_operands,
            options: Vec::new(),
            spellings: HashMap::new(),
            operands,
            min_operands: wire.min_operands,
            max_operands: wire.max_operands,
            pattern_options: wire.pattern_options.clone(),
            after_dashdash,
            check,
            class,
            subcommands: HashMap::new(),
            subcommand_required: wire.subcommand_required,
            modules: wire.modules.clone(),
        };
        let mut lists = vec![wire.options.clone()];
        for group in &wire.groups {
            match self.groups.get(group) {
                Some(options) => lists.push(options.clone()),
                None => self.errors.push(format!("{name}: unknown group `{group}`")),
            }
        }
        for list in &lists {
            for (key, entries) in list.classes() {
                let Some(class) = Class::from_key(key) else {
                    continue;
                };
                for entry in entries {
                    self.option(&mut grammar, entry, class);
                }
            }
        }
        if wire.inherit
            && let Some(parent) = parent
        {
            for (spelling, index) in &parent.spellings {
                if grammar.spellings.contains_key(spelling) {
                    continue;
                }
                if let Some(option) = parent.options.get(*index) {
                    grammar
                        .spellings
                        .insert(spelling.clone(), grammar.options.len());
                    grammar.options.push(option.clone());
                }
            }
        }
        for (sub_name, sub) in &wire.sub {
            let full = format!("{name} {sub_name}");
            let compiled = self.grammar(&full, sub, Some(&grammar));
            for alias in sub.also.iter().chain(std::iter::once(sub_name)) {
                let mut named = compiled.clone();
                named.name = format!("{name} {alias}");
                grammar.subcommands.insert(alias.clone(), named);
            }
        }
        grammar
    }

    fn option(&mut self, grammar: &mut Grammar, entry: &str, class: Class) {
        let mut arity = Arity::None;
        let mut names = Vec::new();
        for spelling in entry.split_whitespace() {
            let (name, this) = if let Some(name) = spelling.strip_suffix("==") {
                (name, Arity::Two)
            } else if let Some(name) = spelling.strip_suffix("=?") {
                (name, Arity::Optional)
            } else if let Some(name) = spelling.strip_suffix('=') {
                (name, Arity::Required)
            } else {
                (spelling, Arity::None)
            };
            if this != Arity::None {
                arity = this;
            }
            if !name.starts_with('-') && !name.starts_with('+') || name.len() < 2 {
                self.errors
                    .push(format!("{}: `{spelling}` is not an option", grammar.name));
                continue;
            }
            names.push(name.to_owned());
        }
        let Some(first) = names.first() else {
            return;
        };
        let canonical = names
            .iter()
            .find(|n| n.starts_with("--"))
            .unwrap_or(first)
            .clone();
        let index = grammar.options.len();
        grammar.options.push(OptionSpec {
            canonical,
            class,
            arity,
        });
        for name in names {
            // A later list (a group, or a parent's option) never overrides the grammar's own.
            grammar.spellings.entry(name).or_insert(index);
        }
    }
}
