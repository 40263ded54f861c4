//! Turns policy TOML into a compiled [`Policy`], collecting every problem with its line and column.
//!
//! The file is parsed into `toml`'s spanned document tree and walked by hand rather than through
//! `serde`, so one pass can report every unknown key, bad value and broken pattern instead of
//! stopping at the first. Syntax errors are reported on their own: a half-parsed file would only
//! add misleading follow-on problems.
//!
//! Each rule key has one arm in [`Loader::rule`]; new kinds of condition (shell-aware, path and
//! host rules) slot in as new keys that push new [`Condition`] variants.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::RegexSetBuilder;
use serde_json::{Map, Number, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::command::{CommandCondition, Root};
use crate::diagnostic::{Diagnostics, PolicyError};
use crate::effect::Effect;
use crate::matcher::REGEX_SIZE_LIMIT;
use crate::matcher::{
    ArgMatcher, ArgTest, Comparison, JsonPointer, NameSet, Numeric, compile_glob,
};
use crate::network::{DEFAULT_NETWORK_POINTERS, HostSet, UrlCondition};
use crate::paths::{DEFAULT_PATH_POINTERS, PathCondition};
use crate::policy::{
    ArgGroup, ArgSets, Condition, Confine, GroupSet, Policy, ProgramIndex, Rule, ShellSettings,
    ToolIndex, default_reason, precedence_order,
};

type Item<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;

const TOP_KEYS: &[&str] = &[
    "include",
    "mode",
    "default",
    "opaque",
    "max_input_bytes",
    "shell",
    "paths",
    "network",
    "rules",
];
const RULE_KEYS: &[&str] = &[
    "id",
    "effect",
    "reason",
    "priority",
    "tool",
    "session",
    "agent",
    "args",
    "command",
    "path",
    "url",
    "host",
    "confine",
    "confine_fallback",
    "approvals",
];
const SHELL_KEYS: &[&str] = &["tools", "pointer"];
const PATH_KEYS: &[&str] = &["glob", "within", "outside", "pointer"];
const URL_KEYS: &[&str] = &["host", "scheme", "pointer"];
const COMMAND_KEYS: &[&str] = &[
    "pointer",
    "program",
    "args_prefix",
    "has_flag",
    "has_all_flags",
    "arg",
    "args_all",
    "args_within",
    "args_outside",
    "writes",
    "reads",
    "redirects_outside",
    "dynamic",
];
/// Tools that run shell commands unless a policy's `[shell] tools` says otherwise.
pub(crate) const DEFAULT_SHELL_TOOLS: &[&str] = &[
    "Bash",
    "bash",
    "shell",
    "Shell",
    "sh",
    "run_shell_command",
    "execute_command",
    "exec_command",
    "local_shell",
    "terminal",
];
/// Where a shell tool's command text is unless a policy's `[shell] pointer` says otherwise.
pub(crate) const DEFAULT_SHELL_POINTER: &str = "/command";
/// The default `max_input_bytes`: 64 KiB.
pub(crate) const DEFAULT_MAX_INPUT_BYTES: usize = 64 * 1024;
/// How deep builtin policies may include each other.
const MAX_INCLUDE_DEPTH: usize = 4;
const MATCHER_KEYS: &[&str] = &[
    "pointer", "equals", "prefix", "glob", "regex", "in", "lt", "le", "gt", "ge", "exists",
];
const MATCHER_OPERATIONS: &[&str] = &[
    "equals", "prefix", "glob", "regex", "in", "lt", "le", "gt", "ge", "exists",
];

/// Used when a file does not say `default = ...`: fail closed, ask a human.
const DEFAULT_EFFECT: Effect = Effect::Pause;

pub(crate) fn load(source: &str) -> Result<Policy, PolicyError> {
    let (settings, drafts, mut loader) = load_parts(source, 0)?;
    let policy = loader.build(settings, drafts);
    if loader.problems.is_empty() {
        Ok(policy)
    } else {
        Err(loader.problems.into_error())
    }
}

/// Reads a file into its settings and rule drafts (includes merged), without compiling indexes.
fn load_parts(
    source: &str,
    depth: usize,
) -> Result<(Settings, Vec<RuleDraft>, Loader<'_>), PolicyError> {
    let mut loader = Loader {
        problems: Diagnostics::new(source),
        first_id_at: HashMap::new(),
        depth,
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            loader
                .problems
                .report(error.span().unwrap_or(0..0), error.message());
        }
        return Err(loader.problems.into_error());
    }
    let (settings, drafts) = loader.document(root.get_ref());
    if loader.problems.is_empty() {
        Ok((settings, drafts, loader))
    } else {
        Err(loader.problems.into_error())
    }
}

fn default_pointers(texts: &[&str]) -> Vec<JsonPointer> {
    texts
        .iter()
        .filter_map(|text| JsonPointer::parse(text).ok())
        .collect()
}

/// Moves every glob and regex argument test into a set shared by the tests on the same pointer.
fn group_arg_tests(rules: &mut [Rule]) -> ArgSets {
    #[derive(Default)]
    struct Draft {
        pointer: Option<JsonPointer>,
        globs: Vec<Glob>,
        regexes: Vec<String>,
    }
    let mut index: HashMap<(String, bool), usize> = HashMap::new();
    let mut drafts: Vec<(bool, Draft)> = Vec::new();
    for rule in rules.iter_mut() {
        for condition in rule.conditions.iter_mut() {
            let Condition::Arg(matcher) = condition else {
                continue;
            };
            let is_glob = match &matcher.test {
                ArgTest::Glob(_) => true,
                ArgTest::Regex(_) => false,
                _ => continue,
            };
            let key = (matcher.pointer.text.to_string(), is_glob);
            let group = *index.entry(key).or_insert_with(|| {
                drafts.push((is_glob, Draft::default()));
                drafts.len() - 1
            });
            let Some((_, draft)) = drafts.get_mut(group) else {
                continue;
            };
            draft.pointer.get_or_insert_with(|| matcher.pointer.clone());
            let slot = match &matcher.test {
                ArgTest::Glob(glob) => {
                    draft.globs.push(glob.glob().clone());
                    draft.globs.len() - 1
                }
                ArgTest::Regex(regex) => {
                    draft.regexes.push(regex.as_str().to_owned());
                    draft.regexes.len() - 1
                }
                _ => continue,
            };
            *condition = Condition::ArgSet {
                group,
                slot,
                fallback: matcher.clone(),
            };
        }
    }
    let groups = drafts
        .into_iter()
        .map(|(is_glob, draft)| {
            let set = if is_glob {
                let mut builder = GlobSetBuilder::new();
                for glob in draft.globs {
                    builder.add(glob);
                }
                builder.build().ok().map(GroupSet::Glob)
            } else {
                let limit = REGEX_SIZE_LIMIT
                    .saturating_mul(draft.regexes.len().max(1))
                    .min(64 << 20);
                RegexSetBuilder::new(&draft.regexes)
                    .size_limit(limit)
                    .dfa_size_limit(limit)
                    .build()
                    .ok()
                    .map(GroupSet::Regex)
            };
            ArgGroup {
                pointer: draft.pointer.unwrap_or_else(JsonPointer::never),
                set,
            }
        })
        .collect();
    ArgSets { groups }
}

struct Loader<'s> {
    problems: Diagnostics<'s>,
    /// Byte offset of each rule id's first definition, to point back at it from a duplicate.
    first_id_at: HashMap<String, usize>,
    /// How many includes deep this file is.
    depth: usize,
}

/// Top-level settings; `None` = not given (an including file's value, or the default, applies).
#[derive(Default)]
struct Settings {
    default: Option<Effect>,
    opaque: Option<Effect>,
    max_input_bytes: Option<usize>,
    shell_tools: Option<Vec<Glob>>,
    shell_pointer: Option<JsonPointer>,
    observe: Option<bool>,
    path_pointers: Option<Vec<JsonPointer>>,
    network_pointers: Option<Vec<JsonPointer>>,
}

impl Settings {
    /// `self` over `base`: what this file says wins over what it includes.
    fn over(self, base: Settings) -> Settings {
        Settings {
            default: self.default.or(base.default),
            opaque: self.opaque.or(base.opaque),
            max_input_bytes: self.max_input_bytes.or(base.max_input_bytes),
            shell_tools: self.shell_tools.or(base.shell_tools),
            shell_pointer: self.shell_pointer.or(base.shell_pointer),
            observe: self.observe.or(base.observe),
            path_pointers: self.path_pointers.or(base.path_pointers),
            network_pointers: self.network_pointers.or(base.network_pointers),
        }
    }
}

/// A rule as read so far. Problems are reported as found; a policy is only returned if none were.
struct RuleDraft {
    id: Option<Arc<str>>,
    effect: Option<Effect>,
    reason: Option<Arc<str>>,
    priority: i64,
    tool_globs: Option<Vec<Glob>>,
    session: Option<NameSet>,
    agent: Option<NameSet>,
    args: Vec<ArgMatcher>,
    command: Option<CommandCondition>,
    path: Option<PathCondition>,
    url: Option<UrlCondition>,
    /// `host = [...]`, the shorthand of `url = { host = [...] }`, with its span.
    host: Option<(HostSet, Range<usize>)>,
    /// The literal program names of `command.program` (for the index), if all are literal.
    program_names: Option<Vec<String>>,
    program_globs: Vec<Glob>,
    /// Where the id is, to report a duplicate coming from an include.
    id_span: Range<usize>,
    /// `confine = "PROFILE"` and `confine_fallback` (allow rules only).
    confine: Option<Confine>,
    /// `approvals = N` (pause rules only): how many different people must approve.
    approvals: u32,
}

impl Loader<'_> {
    fn document(&mut self, root: &DeTable<'_>) -> (Settings, Vec<RuleDraft>) {
        let mut settings = Settings::default();
        let mut included = Settings::default();
        let mut included_rules = Vec::new();
        let mut rules = Vec::new();
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "include" => {
                    (included, included_rules) = self.includes(value);
                }
                "default" => settings.default = self.effect("default", value),
                "opaque" => {
                    settings.opaque = self.effect("opaque", value);
                    if settings.opaque == Some(Effect::Allow) {
                        self.report(
                            value.span(),
                            "`opaque` must be `pause` or `reject`: a command that cannot be analysed is never allowed",
                        );
                    }
                }
                "max_input_bytes" => {
                    settings.max_input_bytes = self.positive("max_input_bytes", value)
                }
                "shell" => self.shell(value, &mut settings),
                "mode" => {
                    settings.observe = match self.string("mode", value) {
                        Some("enforce") => Some(false),
                        Some("observe") => Some(true),
                        Some(other) => {
                            self.report(
                                value.span(),
                                format!("invalid mode `{other}`; expected `enforce` or `observe`"),
                            );
                            None
                        }
                        None => None,
                    }
                }
                "paths" => settings.path_pointers = self.pointers_table("paths", value),
                "network" => settings.network_pointers = self.pointers_table("network", value),
                "rules" => rules = self.rules(value),
                other => {
                    let hint = if RULE_KEYS.contains(&other) {
                        "; rule fields belong under [[rules]]"
                    } else {
                        ""
                    };
                    self.unknown_key(key, "at the top level", TOP_KEYS, hint);
                }
            }
        }
        for draft in &rules {
            if let Some(id) = &draft.id
                && included_rules
                    .iter()
                    .any(|d: &RuleDraft| d.id.as_deref() == Some(&**id))
            {
                self.report(
                    draft.id_span.clone(),
                    format!("duplicate rule id `{id}`; an included policy defines it"),
                );
            }
        }
        included_rules.extend(rules);
        (settings.over(included), included_rules)
    }

    /// `include = ["builtin:developer", ...]`: the named builtin policies' settings and rules.
    fn includes(&mut self, value: &Item<'_>) -> (Settings, Vec<RuleDraft>) {
        let mut settings = Settings::default();
        let mut drafts = Vec::new();
        let Some(items) = value.get_ref().as_array() else {
            self.report(
                value.span(),
                format!(
                    "`include` must be an array of policy names such as \"builtin:developer\", found {}",
                    value.get_ref().type_str()
                ),
            );
            return (settings, drafts);
        };
        for item in items {
            let Some(name) = self.string("include", item) else {
                continue;
            };
            let Some(source) = crate::builtin::source(name) else {
                self.report(
                    item.span(),
                    format!(
                        "unknown policy `{name}`; expected one of {}",
                        crate::builtin::NAMES
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            if self.depth >= MAX_INCLUDE_DEPTH {
                self.report(item.span(), "includes nest too deeply");
                continue;
            }
            match load_parts(source, self.depth + 1) {
                Ok((theirs, rules, _)) => {
                    settings = theirs.over(settings);
                    drafts.extend(rules);
                }
                Err(error) => self.report(
                    item.span(),
                    format!("included policy `{name}` is invalid: {error}"),
                ),
            }
        }
        // Rules of an included file are positioned in that file; never report them here.
        for draft in &mut drafts {
            draft.id_span = 0..0;
        }
        (settings, drafts)
    }

    fn shell(&mut self, value: &Item<'_>, settings: &mut Settings) {
        let Some(table) = self.table(value, "shell", "") else {
            return;
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "tools" => settings.shell_tools = self.name_globs("tools", value),
                "pointer" => {
                    settings.shell_pointer = self
                        .string("pointer", value)
                        .and_then(|text| self.check(value.span(), JsonPointer::parse(text)));
                }
                _ => self.unknown_key(key, "in [shell]", SHELL_KEYS, ""),
            }
        }
    }

    fn positive(&mut self, key: &str, value: &Item<'_>) -> Option<usize> {
        let parsed = match value.get_ref() {
            DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0),
            _ => None,
        };
        if parsed.is_none() {
            self.report(value.span(), format!("`{key}` must be a positive integer"));
        }
        parsed
    }

    fn build(&mut self, settings: Settings, drafts: Vec<RuleDraft>) -> Policy {
        let default_effect = settings.default.unwrap_or(DEFAULT_EFFECT);
        let mut globs = GlobSetBuilder::new();
        let mut rule_of_glob = Vec::new();
        let mut program_globs = GlobSetBuilder::new();
        let mut rule_of_program_glob = Vec::new();
        let mut programs = ProgramIndex::default();
        let mut any_program = Vec::new();
        let mut rules = Vec::with_capacity(drafts.len());
        for draft in drafts {
            // A draft without id or effect has been reported already.
            let (Some(id), Some(effect)) = (draft.id, draft.effect) else {
                continue;
            };
            let index = rules.len();
            let tool_filtered = draft.tool_globs.is_some();
            for glob in draft.tool_globs.into_iter().flatten() {
                globs.add(glob);
                rule_of_glob.push(index);
            }
            if let Some(command) = &draft.command {
                match (&draft.program_names, &command.program) {
                    (_, None) => any_program.push(index),
                    (Some(names), Some(_)) => {
                        for name in names {
                            programs
                                .by_name
                                .entry(name.clone())
                                .or_default()
                                .push(index);
                        }
                    }
                    (None, Some(_)) => {
                        for glob in &draft.program_globs {
                            program_globs.add(glob.clone());
                            rule_of_program_glob.push(index);
                        }
                    }
                }
            }
            let conditions = draft
                .session
                .map(Condition::Session)
                .into_iter()
                .chain(draft.agent.map(Condition::Agent))
                .chain(draft.args.into_iter().map(Condition::Arg))
                .collect();
            let reason = draft
                .reason
                .unwrap_or_else(|| format!("matched rule {id}").into());
            rules.push(Rule {
                id,
                effect,
                reason,
                priority: draft.priority,
                index,
                tool_filtered,
                conditions,
                command: draft.command,
                path: draft.path,
                url: draft.url,
                confine: draft.confine,
                approvals: draft.approvals,
            });
        }
        let arg_sets = group_arg_tests(&mut rules);
        let globs = globs.build().unwrap_or_else(|error| {
            self.problems
                .report(0..0, format!("cannot combine the tool globs: {error}"));
            globset::GlobSet::empty()
        });
        if !rule_of_program_glob.is_empty() {
            programs.globs = program_globs.build().ok();
            programs.rule_of_glob = rule_of_program_glob.into_boxed_slice();
        }
        programs.any = any_program.into_boxed_slice();
        let precedence = precedence_order(&rules);
        let mut rank = vec![0; rules.len()];
        for (position, &index) in precedence.iter().enumerate() {
            if let Some(slot) = rank.get_mut(index) {
                *slot = position;
            }
        }
        let untooled = precedence
            .iter()
            .copied()
            .filter(|&i| {
                rules
                    .get(i)
                    .is_some_and(|r: &Rule| !r.tool_filtered && r.command.is_none())
            })
            .collect();
        let shell_tools = settings.shell_tools.unwrap_or_else(|| {
            DEFAULT_SHELL_TOOLS
                .iter()
                .filter_map(|name| compile_glob(name).ok())
                .collect()
        });
        let shell_tools = NameSet::new(shell_tools).unwrap_or_else(|error| {
            self.problems.report(0..0, error);
            NameSet::empty()
        });
        let shell_pointer = settings.shell_pointer.unwrap_or_else(|| {
            JsonPointer::parse(DEFAULT_SHELL_POINTER).unwrap_or_else(|_| JsonPointer::never())
        });
        // Path and url rules without a command condition or a tool: per simple command for every
        // shell tool (those naming tools are found through the tool index).
        let shell_scoped = precedence
            .iter()
            .copied()
            .filter(|&i| {
                rules.get(i).is_some_and(|r: &Rule| {
                    !r.tool_filtered && r.command.is_none() && (r.path.is_some() || r.url.is_some())
                })
            })
            .collect();
        let pointer_rules = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.command.as_ref().is_some_and(|c| c.pointer.is_some()))
            .map(|(i, _)| i)
            .collect();
        Policy {
            default_effect,
            default_reason: default_reason(default_effect),
            rank: rank.into_boxed_slice(),
            rules: rules.into_boxed_slice(),
            tools: ToolIndex {
                globs,
                rule_of_glob: rule_of_glob.into_boxed_slice(),
            },
            untooled,
            pointer_rules,
            programs,
            arg_sets,
            shell: ShellSettings {
                tools: shell_tools,
                pointer: shell_pointer,
            },
            observe: settings.observe.unwrap_or(false),
            path_pointers: settings
                .path_pointers
                .unwrap_or_else(|| default_pointers(DEFAULT_PATH_POINTERS))
                .into_boxed_slice(),
            network_pointers: settings
                .network_pointers
                .unwrap_or_else(|| default_pointers(DEFAULT_NETWORK_POINTERS))
                .into_boxed_slice(),
            shell_scoped,
            opaque_effect: settings.opaque.unwrap_or(Effect::Pause),
            max_input_bytes: settings.max_input_bytes.unwrap_or(DEFAULT_MAX_INPUT_BYTES),
        }
    }

    fn rules(&mut self, value: &Item<'_>) -> Vec<RuleDraft> {
        let Some(items) = value.get_ref().as_array() else {
            self.report(
                value.span(),
                format!(
                    "`rules` must be an array of tables (write each rule under [[rules]]), found {}",
                    value.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item.get_ref().as_table() {
                Some(table) => Some(self.rule(item.span(), table)),
                None => {
                    self.report(
                        item.span(),
                        format!(
                            "a rule must be a table, found {}",
                            item.get_ref().type_str()
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    fn rule(&mut self, span: Range<usize>, table: &DeTable<'_>) -> RuleDraft {
        let mut draft = RuleDraft {
            id: None,
            effect: None,
            reason: None,
            priority: 0,
            tool_globs: None,
            session: None,
            agent: None,
            args: Vec::new(),
            command: None,
            path: None,
            url: None,
            host: None,
            program_names: None,
            program_globs: Vec::new(),
            id_span: 0..0,
            confine: None,
            approvals: 1,
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "id" => {
                    draft.id_span = value.span();
                    draft.id = self.rule_id(value);
                }
                "effect" => draft.effect = self.effect("effect", value),
                "reason" => draft.reason = self.reason(value),
                "priority" => match value.get_ref() {
                    DeValue::Integer(integer) => {
                        match i64::from_str_radix(integer.as_str(), integer.radix()) {
                            Ok(priority) => draft.priority = priority,
                            Err(_) => {
                                self.report(value.span(), "`priority` does not fit in 64 bits")
                            }
                        }
                    }
                    other => self.report(
                        value.span(),
                        format!("`priority` must be an integer, found {}", other.type_str()),
                    ),
                },
                "tool" => draft.tool_globs = self.name_globs("tool", value),
                "session" => draft.session = self.name_set("session", value),
                "agent" => draft.agent = self.name_set("agent", value),
                "args" => draft.args = self.arg_matchers(value),
                "command" => self.command(value, &mut draft),
                "path" => draft.path = self.path_condition(value),
                "url" => draft.url = self.url_condition(value),
                "host" => {
                    draft.host = self
                        .host_set("host", value)
                        .map(|hosts| (hosts, value.span()))
                }
                "confine" => {
                    if let Some(profile) = self.string("confine", value) {
                        let valid = !profile.is_empty()
                            && profile.len() <= 64
                            && profile
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                        if valid {
                            let fallback = draft.confine.as_ref().map_or(Effect::Pause, |c| c.fallback);
                            draft.confine = Some(Confine {
                                profile: profile.into(),
                                fallback,
                            });
                        } else {
                            self.report(
                                value.span(),
                                "`confine` names a sandbox profile: letters, digits, - and _ (e.g. \"build\")",
                            );
                        }
                    }
                }
                "approvals" => match value.get_ref() {
                    DeValue::Integer(integer) => {
                        match u32::from_str_radix(integer.as_str(), integer.radix()) {
                            Ok(n @ 1..=5) => draft.approvals = n,
                            _ => self.report(
                                value.span(),
                                "`approvals` is how many different people must approve: 1 to 5",
                            ),
                        }
                    }
                    other => self.report(
                        value.span(),
                        format!("`approvals` must be an integer, found {}", other.type_str()),
                    ),
                },
                "confine_fallback" => match self.effect("confine_fallback", value) {
                    Some(Effect::Allow) => self.report(
                        value.span(),
                        "`confine_fallback` is `pause` or `reject`: an unconfined allow is what `confine` rules out",
                    ),
                    Some(fallback) => {
                        let profile = draft.confine.as_ref().map_or_else(|| Arc::from(""), |c| Arc::clone(&c.profile));
                        draft.confine = Some(Confine { profile, fallback });
                    }
                    None => {}
                },
                other => {
                    let hint = if MATCHER_KEYS.contains(&other) {
                        "; argument matchers go under [[rules.args]]"
                    } else {
                        ""
                    };
                    self.unknown_key(key, "in a rule", RULE_KEYS, hint);
                }
            }
        }
        if let Some((hosts, span)) = draft.host.take() {
            match &mut draft.url {
                Some(url) if url.hosts.is_some() => self.report(
                    span,
                    "`host` and `url.host` both given; list the hosts in one of them",
                ),
                Some(url) => url.hosts = Some(hosts),
                None => {
                    draft.url = Some(UrlCondition {
                        hosts: Some(hosts),
                        ..UrlCondition::default()
                    })
                }
            }
        }
        if draft.confine.as_ref().is_some_and(|c| c.profile.is_empty()) {
            self.report(span.clone(), "`confine_fallback` without `confine`");
            draft.confine = None;
        }
        if draft.approvals > 1 && draft.effect.is_some_and(|e| e != Effect::Pause) {
            self.report(
                span.clone(),
                "`approvals` applies to `pause` rules only (what a person approves)",
            );
        }
        if draft.confine.is_some() && draft.effect.is_some_and(|e| e != Effect::Allow) {
            self.report(span.clone(), "`confine` applies to `allow` rules only");
            draft.confine = None;
        }
        // A missing key is pointed at the rule's `[[rules]]` header (or its inline table).
        if !table.contains_key("id") {
            self.report(span.clone(), "rule is missing `id`");
        }
        if !table.contains_key("effect") {
            self.report(
                span,
                "rule is missing `effect` (one of `allow`, `reject`, `pause`)",
            );
        }
        draft
    }

    /// `command = { program = "git", args_prefix = ["push"], ... }`.
    fn command(&mut self, value: &Item<'_>, draft: &mut RuleDraft) {
        let Some(table) = self.table(value, "command", " such as { program = \"git\" }") else {
            return;
        };
        let mut condition = CommandCondition::default();
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "pointer" => {
                    condition.pointer = self
                        .string("pointer", value)
                        .and_then(|text| self.check(value.span(), JsonPointer::parse(text)));
                }
                "program" => {
                    let Some(globs) = self.name_globs("program", value) else {
                        continue;
                    };
                    let literal: Vec<String> = globs
                        .iter()
                        .map(|g| g.glob().to_owned())
                        .filter(|g| !g.contains(['*', '?', '[', '{', '\\']))
                        .collect();
                    if literal.len() == globs.len() {
                        draft.program_names = Some(literal);
                    }
                    draft.program_globs = globs.clone();
                    condition.program = self.glob_set(value, globs);
                }
                "args_prefix" => {
                    if let Some(globs) = self.name_globs("args_prefix", value) {
                        condition.args_prefix =
                            globs.into_iter().map(|g| g.compile_matcher()).collect();
                    }
                }
                "has_flag" | "has_all_flags" => {
                    let key_name = key.get_ref().to_string();
                    let Some(flags) = self.strings(&key_name, value) else {
                        continue;
                    };
                    for (flag, span) in &flags {
                        if !flag.starts_with('-') {
                            self.report(
                                span.clone(),
                                format!("flag `{flag}` must start with `-`, e.g. \"--force\""),
                            );
                        }
                    }
                    let flags = flags.into_iter().map(|(f, _)| f.into()).collect();
                    if key_name == "has_flag" {
                        condition.has_flag = flags;
                    } else {
                        condition.has_all_flags = flags;
                    }
                }
                "arg" | "args_all" | "writes" | "reads" => {
                    let key_name = key.get_ref().to_string();
                    let set = self
                        .name_globs(&key_name, value)
                        .and_then(|globs| self.glob_set(value, globs));
                    match key_name.as_str() {
                        "arg" => condition.arg = set,
                        "args_all" => condition.args_all = set,
                        "writes" => condition.writes = set,
                        _ => condition.reads = set,
                    }
                }
                "args_within" | "args_outside" | "redirects_outside" => {
                    let key_name = key.get_ref().to_string();
                    let Some(roots) = self.strings(&key_name, value) else {
                        continue;
                    };
                    let mut parsed = Vec::new();
                    for (root, span) in roots {
                        if root == "$CWD" {
                            parsed.push(Root::Cwd);
                        } else if root.starts_with('/') || root == "~" || root.starts_with("~/") {
                            parsed.push(Root::Dir(crate::command::lexical(&root, None)));
                        } else {
                            self.report(
                                span,
                                format!("`{root}` is not a root; use \"$CWD\", an absolute path or a path under ~"),
                            );
                        }
                    }
                    match key_name.as_str() {
                        "args_within" => condition.within = parsed,
                        "args_outside" => condition.outside = parsed,
                        _ => condition.redirects_outside = parsed,
                    }
                }
                // Principle 5: a rule never allows a word that is not literal.
                "dynamic" => self.report(
                    key.span(),
                    "`dynamic` is no longer supported: an allow rule never allows a command whose words are not all literal".to_owned(),
                ),
                _ => self.unknown_key(key, "in a command condition", COMMAND_KEYS, ""),
            }
        }
        draft.command = Some(condition);
    }

    /// `[paths]` / `[network]`: a table with `pointers` only.
    fn pointers_table(&mut self, key: &str, value: &Item<'_>) -> Option<Vec<JsonPointer>> {
        let table = self.table(value, key, "")?;
        let mut pointers = None;
        for (name, item) in table.iter() {
            match name.get_ref().as_ref() {
                "pointers" => pointers = self.pointer_list("pointers", item),
                _ => self.unknown_key(name, &format!("in [{key}]"), &["pointers"], ""),
            }
        }
        pointers
    }

    /// A JSON pointer or a non-empty array of them.
    fn pointer_list(&mut self, key: &str, value: &Item<'_>) -> Option<Vec<JsonPointer>> {
        let texts = self.strings(key, value)?;
        let mut pointers = Vec::with_capacity(texts.len());
        let mut complete = true;
        for (text, span) in texts {
            match self.check(span, JsonPointer::parse(&text)) {
                Some(pointer) => pointers.push(pointer),
                None => complete = false,
            }
        }
        complete.then_some(pointers)
    }

    /// Roots: `"cwd"` (or `"$CWD"`), an absolute directory, or a directory under `~`.
    fn roots(&mut self, key: &str, value: &Item<'_>) -> Option<Vec<Root>> {
        let roots = self.strings(key, value)?;
        let mut parsed = Vec::new();
        for (root, span) in roots {
            if root == "$CWD" || root == "cwd" {
                parsed.push(Root::Cwd);
            } else if root.starts_with('/') || root == "~" || root.starts_with("~/") {
                parsed.push(Root::Dir(crate::command::lexical(&root, None)));
            } else {
                self.report(
                    span,
                    format!(
                        "`{root}` is not a root; use \"cwd\", an absolute path or a path under ~"
                    ),
                );
            }
        }
        Some(parsed)
    }

    /// `path = { glob = [...], within = "cwd", outside = [...], pointer = [...] }`.
    fn path_condition(&mut self, value: &Item<'_>) -> Option<PathCondition> {
        let table = self.table(value, "path", " such as { within = \"cwd\" }")?;
        let mut condition = PathCondition::default();
        for (key, item) in table.iter() {
            match key.get_ref().as_ref() {
                "glob" => {
                    condition.globs = self
                        .name_globs("glob", item)
                        .and_then(|globs| self.glob_set(item, globs));
                }
                "within" => condition.within = self.roots("within", item).unwrap_or_default(),
                "outside" => condition.outside = self.roots("outside", item).unwrap_or_default(),
                "pointer" => {
                    condition.pointers = self
                        .pointer_list("pointer", item)
                        .map(Vec::into_boxed_slice);
                }
                _ => self.unknown_key(key, "in a path condition", PATH_KEYS, ""),
            }
        }
        if !["glob", "within", "outside"]
            .iter()
            .any(|key| table.contains_key(*key))
        {
            self.report(
                value.span(),
                "a path condition needs `glob`, `within` or `outside`",
            );
            return None;
        }
        Some(condition)
    }

    /// `url = { host = [...], scheme = [...], pointer = [...] }`.
    fn url_condition(&mut self, value: &Item<'_>) -> Option<UrlCondition> {
        let table = self.table(
            value,
            "url",
            " such as { host = [\"github.com\"], scheme = [\"https\"] }",
        )?;
        let mut condition = UrlCondition::default();
        for (key, item) in table.iter() {
            match key.get_ref().as_ref() {
                "host" => condition.hosts = self.host_set("host", item),
                "scheme" => {
                    condition.schemes = self.strings("scheme", item).map(|schemes| {
                        schemes
                            .into_iter()
                            .map(|(scheme, _)| scheme.to_ascii_lowercase().into_boxed_str())
                            .collect()
                    });
                }
                "pointer" => {
                    condition.pointers = self
                        .pointer_list("pointer", item)
                        .map(Vec::into_boxed_slice);
                }
                _ => self.unknown_key(key, "in a url condition", URL_KEYS, ""),
            }
        }
        if !table.contains_key("host") && !table.contains_key("scheme") {
            self.report(value.span(), "a url condition needs `host` or `scheme`");
            return None;
        }
        Some(condition)
    }

    /// Host patterns: domains, IP addresses, CIDR blocks, `*`.
    fn host_set(&mut self, key: &str, value: &Item<'_>) -> Option<HostSet> {
        let patterns = self.strings(key, value)?;
        let mut complete = true;
        for (pattern, span) in &patterns {
            if let Err(message) = HostSet::new([pattern.as_str()]) {
                self.report(span.clone(), message);
                complete = false;
            }
        }
        if !complete {
            return None;
        }
        HostSet::new(patterns.iter().map(|(p, _)| p.as_str())).ok()
    }

    fn glob_set(&mut self, value: &Item<'_>, globs: Vec<Glob>) -> Option<GlobSet> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(glob);
        }
        let built = builder
            .build()
            .map_err(|error| format!("cannot build glob set: {error}"));
        self.check(value.span(), built)
    }

    /// A string or a non-empty array of strings, each with its span.
    fn strings(&mut self, key: &str, value: &Item<'_>) -> Option<Vec<(String, Range<usize>)>> {
        let items: Vec<&Item<'_>> = match value.get_ref() {
            DeValue::String(_) => vec![value],
            DeValue::Array(items) if !items.is_empty() => items.iter().collect(),
            other => {
                self.report(
                    value.span(),
                    format!(
                        "`{key}` must be a string or a non-empty array of strings; found {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push((self.string(key, item)?.to_owned(), item.span()));
        }
        Some(out)
    }

    fn rule_id(&mut self, value: &Item<'_>) -> Option<Arc<str>> {
        let id = self.string("id", value)?;
        if id.is_empty() {
            self.report(value.span(), "rule `id` must not be empty");
            return None;
        }
        if id.starts_with("builtin:") {
            self.report(
                value.span(),
                format!("rule id `{id}` must not start with `builtin:`, which names Gatehouse's own decisions"),
            );
            return None;
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.report(
                value.span(),
                format!("rule id `{id}` must not contain whitespace or control characters"),
            );
            return None;
        }
        if let Some(&first) = self.first_id_at.get(id) {
            let line = self.problems.line_of(first);
            self.report(
                value.span(),
                format!("duplicate rule id `{id}`; first defined on line {line}"),
            );
            return None;
        }
        self.first_id_at.insert(id.to_owned(), value.span().start);
        Some(id.into())
    }

    fn effect(&mut self, key: &str, value: &Item<'_>) -> Option<Effect> {
        let name = self.string(key, value)?;
        let effect = Effect::from_name(name);
        if effect.is_none() {
            self.report(
                value.span(),
                format!("invalid effect `{name}`; expected `allow`, `reject` or `pause`"),
            );
        }
        effect
    }

    fn reason(&mut self, value: &Item<'_>) -> Option<Arc<str>> {
        let reason = self.string("reason", value)?;
        if reason.trim().is_empty() {
            self.report(
                value.span(),
                "`reason` must not be blank; leave it out for the default",
            );
            return None;
        }
        Some(reason.into())
    }

    /// A name or glob, or a non-empty array of them (`tool`, `session`, `agent`).
    fn name_globs(&mut self, key: &str, value: &Item<'_>) -> Option<Vec<Glob>> {
        let patterns: Vec<&Item<'_>> = match value.get_ref() {
            DeValue::String(_) => vec![value],
            DeValue::Array(items) if items.is_empty() => {
                self.report(
                    value.span(),
                    format!("`{key}` is an empty list, which matches nothing; leave `{key}` out to match any"),
                );
                return None;
            }
            DeValue::Array(items) => items.iter().collect(),
            other => {
                self.report(
                    value.span(),
                    format!(
                        "`{key}` must be a name or glob, or an array of them; found {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        let mut globs = Vec::with_capacity(patterns.len());
        let mut complete = true;
        for pattern in patterns {
            let text = self.string(key, pattern);
            // `"@secrets"` and the other sets of `sensitive` stand for all their globs.
            if let Some(set) = text.and_then(crate::sensitive::named_set) {
                for text in set {
                    match self.check(pattern.span(), compile_glob(&text)) {
                        Some(glob) => globs.push(glob),
                        None => complete = false,
                    }
                }
                continue;
            }
            let glob = text.and_then(|text| self.check(pattern.span(), compile_glob(text)));
            match glob {
                Some(glob) => globs.push(glob),
                None => complete = false,
            }
        }
        complete.then_some(globs)
    }

    fn name_set(&mut self, key: &str, value: &Item<'_>) -> Option<NameSet> {
        let globs = self.name_globs(key, value)?;
        self.check(value.span(), NameSet::new(globs))
    }

    /// `[[rules.args]]`, or an inline `args = [{ ... }]`.
    fn arg_matchers(&mut self, value: &Item<'_>) -> Vec<ArgMatcher> {
        let Some(items) = value.get_ref().as_array() else {
            self.report(
                value.span(),
                format!(
                    "`args` must be an array of tables (write each matcher under [[rules.args]]), found {}",
                    value.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item.get_ref().as_table() {
                Some(table) => self.arg_matcher(item.span(), table),
                None => {
                    self.report(
                        item.span(),
                        format!(
                            "an argument matcher must be a table, found {}",
                            item.get_ref().type_str()
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    fn arg_matcher(&mut self, span: Range<usize>, table: &DeTable<'_>) -> Option<ArgMatcher> {
        let mut pointer = None;
        let mut pointer_ok = true;
        let mut operations: Vec<(&Key<'_>, &Item<'_>)> = Vec::new();
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "pointer" => {
                    pointer = self
                        .string("pointer", value)
                        .and_then(|text| self.check(value.span(), JsonPointer::parse(text)));
                    pointer_ok = pointer.is_some();
                }
                name if MATCHER_OPERATIONS.contains(&name) => operations.push((key, value)),
                _ => self.unknown_key(key, "in an argument matcher", MATCHER_KEYS, ""),
            }
        }
        if !table.contains_key("pointer") {
            pointer_ok = false;
            self.report(
                span.clone(),
                "argument matcher is missing `pointer` (a JSON pointer such as \"/command\")",
            );
        }
        operations.sort_by_key(|(key, _)| key.span().start);
        let test = match operations.as_slice() {
            [] => {
                self.report(
                    span,
                    "argument matcher needs one of `equals`, `prefix`, `glob`, `regex`, `in`, `lt`, `le`, `gt`, `ge` or `exists`",
                );
                None
            }
            [(key, value)] => self.arg_test(key.get_ref(), value),
            [(first, _), rest @ ..] => {
                for (key, _) in rest {
                    self.report(
                        key.span(),
                        format!(
                            "argument matcher has both `{}` and `{}`; give each test its own [[rules.args]] entry",
                            first.get_ref(),
                            key.get_ref()
                        ),
                    );
                }
                None
            }
        };
        match (pointer, test) {
            (Some(pointer), Some(test)) if pointer_ok => Some(ArgMatcher { pointer, test }),
            _ => None,
        }
    }

    fn arg_test(&mut self, operation: &str, value: &Item<'_>) -> Option<ArgTest> {
        match operation {
            "equals" => self.json(value).map(ArgTest::Equals),
            "prefix" => self
                .string("prefix", value)
                .map(|text| ArgTest::Prefix(text.into())),
            "glob" => {
                let text = self.string("glob", value)?;
                self.check(value.span(), ArgTest::glob(text))
            }
            "regex" => {
                let text = self.string("regex", value)?;
                self.check(value.span(), ArgTest::regex(text))
            }
            "in" => match value.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    let converted: Vec<Option<Value>> =
                        items.iter().map(|item| self.json(item)).collect();
                    converted
                        .into_iter()
                        .collect::<Option<Vec<_>>>()
                        .map(|values| ArgTest::In(values.into_boxed_slice()))
                }
                other => {
                    self.report(
                        value.span(),
                        format!(
                            "`in` must be a non-empty array of values, found {}",
                            if matches!(other, DeValue::Array(_)) {
                                "an empty array"
                            } else {
                                other.type_str()
                            }
                        ),
                    );
                    None
                }
            },
            "lt" | "le" | "gt" | "ge" => {
                let threshold = match value.get_ref() {
                    DeValue::Integer(_) | DeValue::Float(_) => match self.json(value)? {
                        Value::Number(number) => Numeric::of_number(&number),
                        _ => None,
                    },
                    other => {
                        self.report(
                            value.span(),
                            format!(
                                "`{operation}` must be a number (write `{operation} = 500`, not `\"500\"`), found {}",
                                other.type_str()
                            ),
                        );
                        return None;
                    }
                };
                Some(ArgTest::Compare(
                    Comparison::from_key(operation)?,
                    threshold?,
                ))
            }
            "exists" => match value.get_ref() {
                DeValue::Boolean(want) => Some(ArgTest::Exists(*want)),
                other => {
                    self.report(
                        value.span(),
                        format!(
                            "`exists` must be `true` or `false`, found {}",
                            other.type_str()
                        ),
                    );
                    None
                }
            },
            // Only called with one of MATCHER_OPERATIONS.
            _ => None,
        }
    }

    /// Converts a TOML value to the JSON value it stands for, reporting every part that has none.
    fn json(&mut self, value: &Item<'_>) -> Option<Value> {
        match value.get_ref() {
            DeValue::String(text) => Some(Value::String(text.to_string())),
            DeValue::Boolean(flag) => Some(Value::Bool(*flag)),
            DeValue::Integer(integer) => {
                let parsed = i64::from_str_radix(integer.as_str(), integer.radix()).ok();
                if parsed.is_none() {
                    self.report(value.span(), "integer does not fit in 64 bits");
                }
                parsed.map(Value::from)
            }
            DeValue::Float(float) => {
                let number = float
                    .as_str()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64);
                if number.is_none() {
                    self.report(
                        value.span(),
                        "`nan` and `inf` have no JSON equivalent and can never be equal to an input value",
                    );
                }
                number.map(Value::Number)
            }
            DeValue::Datetime(_) => {
                self.report(
                    value.span(),
                    "datetimes have no JSON equivalent; quote the value to compare it as a string",
                );
                None
            }
            DeValue::Array(items) => {
                // Convert every element so each bad one is reported.
                let converted: Vec<Option<Value>> =
                    items.iter().map(|item| self.json(item)).collect();
                converted
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            DeValue::Table(table) => {
                let mut map = Map::new();
                let mut complete = true;
                for (key, item) in table.iter() {
                    match self.json(item) {
                        Some(converted) => {
                            map.insert(key.get_ref().to_string(), converted);
                        }
                        None => complete = false,
                    }
                }
                complete.then_some(Value::Object(map))
            }
        }
    }

    fn string<'v>(&mut self, key: &str, value: &'v Item<'_>) -> Option<&'v str> {
        let text = value.get_ref().as_str();
        if text.is_none() {
            self.report(
                value.span(),
                format!(
                    "`{key}` must be a string, found {}",
                    value.get_ref().type_str()
                ),
            );
        }
        text
    }

    fn unknown_key(&mut self, key: &Key<'_>, place: &str, expected: &[&str], hint: &str) {
        let expected = expected
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.report(
            key.span(),
            format!(
                "unknown key `{}` {place}; expected one of {expected}{hint}",
                key.get_ref()
            ),
        );
    }

    /// Reports a builder's failure at `span`.
    fn check<T>(&mut self, span: Range<usize>, built: Result<T, String>) -> Option<T> {
        built.map_err(|message| self.report(span, message)).ok()
    }

    /// `value` as a table, or `None` after reporting "`name` must be a table{example}, found ...".
    fn table<'v, 'i>(
        &mut self,
        value: &'v Item<'i>,
        name: &str,
        example: &str,
    ) -> Option<&'v DeTable<'i>> {
        let table = value.get_ref().as_table();
        if table.is_none() {
            self.report(
                value.span(),
                format!(
                    "`{name}` must be a table{example}, found {}",
                    value.get_ref().type_str()
                ),
            );
        }
        table
    }

    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.report(span, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostic;

    fn diagnostics(source: &str) -> Vec<(usize, usize, String)> {
        match load(source) {
            Ok(_) => panic!("expected problems in:\n{source}"),
            Err(error) => error
                .diagnostics
                .into_iter()
                .map(
                    |Diagnostic {
                         line,
                         column,
                         message,
                     }| (line, column, message),
                )
                .collect(),
        }
    }

    #[test]
    fn approvals_counts_people_on_pause_rules_only() {
        let policy = load(
            "[[rules]]\nid = \"deploy\"\neffect = \"pause\"\ntool = \"Deploy\"\napprovals = 2\n",
        )
        .unwrap();
        assert_eq!(policy.required_approvals("deploy"), 2);
        assert_eq!(policy.required_approvals("no-such-rule"), 1);
        let problems = diagnostics(
            "[[rules]]\nid = \"a\"\neffect = \"allow\"\napprovals = 2\n\n[[rules]]\nid = \"b\"\neffect = \"pause\"\napprovals = 9\n",
        );
        let messages: Vec<&str> = problems.iter().map(|(_, _, m)| m.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("`pause` rules only")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("1 to 5")),
            "{messages:?}"
        );
    }

    /// One file, many mistakes: every one is reported, in file order, at the key or value at fault.
    #[test]
    fn several_mistakes_in_one_file_are_all_reported_with_positions() {
        let source = r#"default = "deny"
verbose = true

[[rules]]
id = "dup"
effect = "allow"
tool = "[Bash"

[[rules]]
id = "dup"
effect = "block"
prefix = "ls"
[[rules.args]]
pointer = "command"
regex = "(unclosed"
[[rules.args]]
pointer = ""
[[rules.args]]
pointer = "/a"
prefix = "x"
glob = "y*"
flags = "i"
[[rules.args]]
equals = 1

[[rules]]
reason = "no id, no effect"
session = []
agent = 7
args = [{ pointer = "/when", equals = 1979-05-27 }, "oops"]
"#;
        let expected: &[(usize, usize, &str)] = &[
            (
                1,
                11,
                "invalid effect `deny`; expected `allow`, `reject` or `pause`",
            ),
            (2, 1, "unknown key `verbose` at the top level"),
            (7, 8, "invalid glob `[Bash`: unclosed character class"),
            (10, 6, "duplicate rule id `dup`; first defined on line 5"),
            (11, 10, "invalid effect `block`"),
            (
                12,
                1,
                "unknown key `prefix` in a rule; expected one of `id`, `effect`, `reason`, `priority`, `tool`, `session`, `agent`, `args`, `command`, `path`, `url`, `host`, `confine`, `confine_fallback`, `approvals`; argument matchers go under [[rules.args]]",
            ),
            (14, 11, "pointer `command` must start with '/'"),
            (15, 9, "invalid regex: unclosed group"),
            (
                16,
                1,
                "argument matcher needs one of `equals`, `prefix`, `glob`, `regex`, `in`, `lt`, `le`, `gt`, `ge` or `exists`",
            ),
            (17, 11, "empty pointer"),
            (21, 1, "argument matcher has both `prefix` and `glob`"),
            (22, 1, "unknown key `flags` in an argument matcher"),
            (23, 1, "argument matcher is missing `pointer`"),
            (26, 1, "rule is missing `id`"),
            (26, 1, "rule is missing `effect`"),
            (28, 11, "`session` is an empty list, which matches nothing"),
            (
                29,
                9,
                "`agent` must be a name or glob, or an array of them; found integer",
            ),
            (30, 39, "datetimes have no JSON equivalent"),
            (30, 53, "an argument matcher must be a table, found string"),
        ];
        let found = diagnostics(source);
        let summary: Vec<_> = found.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
        assert_eq!(found.len(), expected.len(), "{summary:#?}");
        for ((line, column, message), (want_line, want_column, want)) in found.iter().zip(expected)
        {
            assert_eq!((line, column), (want_line, want_column), "{message}");
            assert!(
                message.starts_with(want),
                "{message:?} should start with {want:?}"
            );
        }
    }

    /// One mistake per file: (name, source, line, column, start of the message).
    #[test]
    fn each_mistake_is_pinned_to_its_line_and_column() {
        let rule = "[[rules]]\nid = \"r\"\neffect = \"allow\"\n";
        let long_regex = format!(
            "{rule}[[rules.args]]\npointer = \"/c\"\nregex = \"{}\"\n",
            "a".repeat(5000)
        );
        let cases: Vec<(&str, String, usize, usize, &str)> = vec![
            (
                "default not a string",
                "default = 1\n".into(),
                1,
                11,
                "`default` must be a string, found integer",
            ),
            (
                "rule key at top level",
                "id = \"x\"\n".into(),
                1,
                1,
                "unknown key `id` at the top level; expected one of `include`, `mode`, `default`, `opaque`, `max_input_bytes`, `shell`, `paths`, `network`, `rules`; rule fields belong under [[rules]]",
            ),
            (
                "rules is a table",
                "[rules]\nid = \"x\"\n".into(),
                1,
                1,
                "`rules` must be an array of tables",
            ),
            (
                "rules is a number",
                "rules = 3\n".into(),
                1,
                9,
                "`rules` must be an array of tables",
            ),
            (
                "rule is a string",
                "rules = [\"x\"]\n".into(),
                1,
                10,
                "a rule must be a table, found string",
            ),
            (
                "id not a string",
                "[[rules]]\nid = 1\neffect = \"allow\"\n".into(),
                2,
                6,
                "`id` must be a string, found integer",
            ),
            (
                "empty id",
                "[[rules]]\nid = \"\"\neffect = \"allow\"\n".into(),
                2,
                6,
                "rule `id` must not be empty",
            ),
            (
                "id with space",
                "[[rules]]\nid = \"a b\"\neffect = \"allow\"\n".into(),
                2,
                6,
                "rule id `a b` must not contain whitespace",
            ),
            (
                "effect wrong case",
                "[[rules]]\nid = \"r\"\neffect = \"Allow\"\n".into(),
                3,
                10,
                "invalid effect `Allow`",
            ),
            (
                "missing effect",
                "\n\n[[rules]]\nid = \"r\"\n".into(),
                3,
                1,
                "rule is missing `effect`",
            ),
            (
                "missing id",
                "[[rules]]\neffect = \"pause\"\n".into(),
                1,
                1,
                "rule is missing `id`",
            ),
            (
                "inline rule missing id",
                "rules = [ { effect = \"pause\" } ]\n".into(),
                1,
                11,
                "rule is missing `id`",
            ),
            (
                "blank reason",
                format!("{rule}reason = \"  \"\n"),
                4,
                10,
                "`reason` must not be blank",
            ),
            (
                "empty tool",
                format!("{rule}tool = \"\"\n"),
                4,
                8,
                "empty pattern never matches anything",
            ),
            (
                "tool list with a number",
                format!("{rule}tool = [\"Bash\", 2]\n"),
                4,
                17,
                "`tool` must be a string, found integer",
            ),
            (
                "tool list with bad glob",
                format!("{rule}tool = [\"Read\", \"{{a,\"]\n"),
                4,
                17,
                "invalid glob `{a,`",
            ),
            (
                "bad session glob",
                format!("{rule}session = \"s[\"\n"),
                4,
                11,
                "invalid glob `s[`",
            ),
            (
                "args is a table",
                format!("{rule}[rules.args]\npointer = \"/c\"\n"),
                4,
                1,
                "`args` must be an array of tables",
            ),
            (
                "missing pointer",
                format!("{rule}[[rules.args]]\nprefix = \"x\"\n"),
                4,
                1,
                "argument matcher is missing `pointer`",
            ),
            (
                "pointer not a string",
                format!("{rule}[[rules.args]]\npointer = [\"/c\"]\nprefix = \"x\"\n"),
                5,
                11,
                "`pointer` must be a string, found array",
            ),
            (
                "bad pointer escape",
                format!("{rule}[[rules.args]]\npointer = \"/a~2\"\nprefix = \"x\"\n"),
                5,
                11,
                "invalid escape in pointer `/a~2`",
            ),
            (
                "prefix not a string",
                format!("{rule}[[rules.args]]\npointer = \"/c\"\nprefix = 1\n"),
                6,
                10,
                "`prefix` must be a string, found integer",
            ),
            (
                "bad arg glob",
                format!("{rule}[[rules.args]]\npointer = \"/c\"\nglob = \"[z-a]\"\n"),
                6,
                8,
                "invalid glob `[z-a]`",
            ),
            (
                "regex too long",
                long_regex,
                6,
                9,
                "regex is 5000 bytes long; the limit is 4096",
            ),
            (
                "regex too complex",
                format!(
                    "{rule}[[rules.args]]\npointer = \"/c\"\nregex = '\\w{{1000}}\\w{{1000}}'\n"
                ),
                6,
                9,
                "regex is too complex",
            ),
            (
                "regex not a string",
                format!("{rule}[[rules.args]]\npointer = \"/c\"\nregex = true\n"),
                6,
                9,
                "`regex` must be a string, found boolean",
            ),
            (
                "equals nan",
                format!("{rule}args = [{{ pointer = \"/c\", equals = [1, nan] }}]\n"),
                4,
                40,
                "`nan` and `inf` have no JSON equivalent",
            ),
            (
                "equals datetime in table",
                format!("{rule}args = [{{ pointer = \"/c\", equals = {{ at = 07:32:00 }} }}]\n"),
                4,
                43,
                "datetimes have no JSON equivalent",
            ),
            (
                "equals beyond i64",
                format!("{rule}args = [{{ pointer = \"/c\", equals = 9223372036854775808 }}]\n"),
                4,
                36,
                "integer does not fit in 64 bits",
            ),
            (
                "three operations",
                format!("{rule}[[rules.args]]\nregex = \"a\"\npointer = \"/c\"\nequals = 1\n"),
                7,
                1,
                "argument matcher has both `regex` and `equals`",
            ),
        ];
        for (name, source, line, column, message) in cases {
            let found = diagnostics(&source);
            let (got_line, got_column, got) = &found[0];
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert_eq!((*got_line, *got_column), (line, column), "{name}: {got}");
            assert!(
                got.starts_with(message),
                "{name}: {got:?} should start with {message:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_reported_without_follow_on_problems() {
        let source = "[[rules]]\nid = \"r\"\neffect = allow\n";
        let found = diagnostics(source);
        assert!(!found.is_empty());
        assert_eq!((found[0].0, found[0].1), (3, 10), "{found:?}");
        assert!(
            found[0].2.contains("string values must be quoted"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .all(|(_, _, m)| !m.contains("missing `effect`")),
            "{found:?}"
        );

        let found = diagnostics("[[rules]]\nid = \"a\"\nid = \"b\"\neffect = \"allow\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (3, 1));
        assert!(found[0].2.starts_with("duplicate key"), "{found:?}");
    }

    #[test]
    fn error_display_lists_every_diagnostic_on_its_own_line() {
        let error =
            load("default = \"nope\"\n[[rules]]\nid = 5\neffect = \"allow\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1, column 11: invalid effect `nope`; expected `allow`, `reject` or `pause`\n\
             line 3, column 6: `id` must be a string, found integer"
        );
    }

    #[test]
    fn inline_and_table_forms_load_alike() {
        let sources = [
            r#"
            default = "allow"
            [[rules]]
            id = "no-force-push"
            effect = "reject"
            reason = "force push"
            tool = "Bash"
            [[rules.args]]
            pointer = "/command"
            regex = '\bgit\s+push\b.*\s(--force|-f)\b'
            "#,
            r#"
            default = "allow"
            [[rules]]
            id = "no-force-push"
            effect = "reject"
            reason = "force push"
            tool = ["Bash"]
            args = [{ pointer = "/command", regex = '\bgit\s+push\b.*\s(--force|-f)\b' }]
            "#,
            r#"
            default = "allow"
            rules = [
              { id = "no-force-push", effect = "reject", reason = "force push", tool = "Bash",
                args = [{ pointer = "/command", regex = '\bgit\s+push\b.*\s(--force|-f)\b' }] },
            ]
            "#,
        ];
        for source in sources {
            let policy = load(source).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(policy.rule_count(), 1);
            assert_eq!(policy.default_effect(), Effect::Allow);
            let input = match serde_json::json!({"command": "git push -f origin"}) {
                Value::Object(map) => map,
                _ => unreachable!(),
            };
            let verdict = policy.evaluate(&crate::ActionRef::new("Bash", &input));
            assert_eq!(verdict.effect, Effect::Reject);
            assert_eq!(&*verdict.reason, "force push");
        }
    }
}
