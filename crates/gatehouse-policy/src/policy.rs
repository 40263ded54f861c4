//! A loaded policy and its evaluation of one action: the Tier-1 hot path.
//!
//! *Invariant*: evaluation cannot fail; every verdict names the rule that decided it (a built-in
//! id such as `builtin:opaque` for decisions no rule made), or `None` for the default. An opaque
//! shell command, or an input over the size cap, is never allowed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use globset::{Candidate, GlobSet};
use regex::RegexSet;
use serde_json::{Map, Value};

use crate::command::{CommandCondition, Context, NoResolver, PathResolver};
use crate::effect::Effect;
use crate::matcher::{ArgMatcher, JsonPointer, NameSet};
use crate::network::{Endpoint, UrlCondition, endpoints_of_command, endpoints_of_input};
use crate::paths::{PathCondition, Paths, Resolved};
use crate::shell::{self, ParsedCommand, SimpleCommand};

/// A borrowed view of one action, as the daemon received it.
#[derive(Clone, Copy, Debug)]
pub struct ActionRef<'a> {
    /// The tool the agent wants to call, e.g. `Bash` or `mcp__github__create_issue`.
    pub tool: &'a str,
    /// The tool's arguments.
    pub input: &'a Map<String, Value>,
    pub session_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub cwd: Option<&'a str>,
}

impl<'a> ActionRef<'a> {
    /// An action with no session, agent or working directory.
    pub fn new(tool: &'a str, input: &'a Map<String, Value>) -> Self {
        ActionRef {
            tool,
            input,
            session_id: None,
            agent: None,
            cwd: None,
        }
    }
}

/// Tier 1's verdict on one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub effect: Effect,
    /// The rule that decided; `None` when no rule matched and the policy's default decided.
    pub rule_id: Option<Arc<str>>,
    /// Human-readable: the rule's `reason`, or a sentence naming the default.
    pub reason: Arc<str>,
    /// Observe mode only: what the policy would have decided, when that was not `allow`
    /// (`effect` is then `allow`, and `rule_id`/`reason` name the would-be decision).
    pub observed: Option<Effect>,
    /// An `allow` that stands only if the command runs in this sandbox profile (a rule's
    /// `confine`); `None` for other verdicts.
    pub confine: Option<Confine>,
}

/// A rule's `confine = "PROFILE"`: the sandbox profile an allowed command must run in, and the
/// verdict when the client cannot run it there (`confine_fallback`, `pause` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confine {
    pub profile: Arc<str>,
    pub fallback: Effect,
}

/// A compiled, validated policy. Cheap to share behind an `Arc`; immutable once built.
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) default_effect: Effect,
    pub(crate) default_reason: Arc<str>,
    /// In file order (included rules first).
    pub(crate) rules: Box<[Rule]>,
    /// For each rule, its position in precedence order: every `reject` in file order, then every
    /// `pause`, then every `allow`. Among matching rules, the lowest rank decides.
    pub(crate) rank: Box<[usize]>,
    pub(crate) tools: ToolIndex,
    /// Rules without a `command` condition and without `tool`, in precedence order.
    pub(crate) untooled: Box<[usize]>,
    pub(crate) programs: ProgramIndex,
    pub(crate) arg_sets: ArgSets,
    /// Command rules with their own `pointer`, whose text is parsed separately.
    pub(crate) pointer_rules: Box<[usize]>,
    pub(crate) shell: ShellSettings,
    /// What an opaque shell command gets (`reject` or `pause`).
    pub(crate) opaque_effect: Effect,
    /// Inputs with more string bytes than this are never allowed.
    pub(crate) max_input_bytes: usize,
    /// `mode = "observe"`: verdicts other than allow are recorded in `observed` and allowed.
    pub(crate) observe: bool,
    /// Where file tools keep their paths (`[paths] pointers`).
    pub(crate) path_pointers: Box<[JsonPointer]>,
    /// Where network tools keep their URLs or hosts (`[network] pointers`).
    pub(crate) network_pointers: Box<[JsonPointer]>,
    /// Path and url rules without a `command` condition or a `tool`, in precedence order: for a
    /// shell tool they judge each simple command (as do those naming the tool).
    pub(crate) shell_scoped: Box<[usize]>,
}

/// Which tools run shell commands and where their command text is.
#[derive(Clone, Debug)]
pub(crate) struct ShellSettings {
    pub(crate) tools: NameSet,
    pub(crate) pointer: JsonPointer,
}

/// Command rules by the program they name, so a simple command meets only its candidates.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProgramIndex {
    pub(crate) by_name: HashMap<String, Vec<usize>>,
    pub(crate) globs: Option<GlobSet>,
    pub(crate) rule_of_glob: Box<[usize]>,
    /// Command rules without `program`.
    pub(crate) any: Box<[usize]>,
}

/// One `[[rules]]` entry, compiled.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) id: Arc<str>,
    pub(crate) effect: Effect,
    pub(crate) reason: Arc<str>,
    /// Orders rules of the same effect: higher first (default 0). Never crosses effects.
    pub(crate) priority: i64,
    /// Its position in the policy's `rules`.
    pub(crate) index: usize,
    /// Whether the rule names tools; if so, [`ToolIndex`] says whether the action's tool is one.
    /// A command rule that names no tool applies to the policy's shell tools.
    pub(crate) tool_filtered: bool,
    /// Every condition must hold. Cheap ones come first.
    pub(crate) conditions: Box<[Condition]>,
    /// Structural match on each simple command of a shell command.
    pub(crate) command: Option<CommandCondition>,
    /// The files the action (or each simple command) touches.
    pub(crate) path: Option<PathCondition>,
    /// Where the action (or each simple command) connects to.
    pub(crate) url: Option<UrlCondition>,
    /// An allow rule's sandbox profile (and fallback).
    pub(crate) confine: Option<Confine>,
    /// A pause rule's `approvals = N`: how many different people must approve (default 1).
    pub(crate) approvals: u32,
}

/// A condition of a rule other than its tool.
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    /// The action's session id matches; an action without one does not.
    Session(NameSet),
    /// The action's agent matches; an action without one does not.
    Agent(NameSet),
    /// A value in the input passes a test.
    Arg(ArgMatcher),
    /// A glob or regex test compiled into a set shared with other rules testing the same
    /// pointer: slot `slot` of [`ArgSets`] group `group`. `fallback` is the test on its own.
    ArgSet {
        group: usize,
        slot: usize,
        fallback: ArgMatcher,
    },
}

/// Glob and regex argument tests grouped by pointer into one [`GlobSet`] or [`RegexSet`] each,
/// so one pass over a value answers every rule that tests it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ArgSets {
    pub(crate) groups: Box<[ArgGroup]>,
}

#[derive(Clone, Debug)]
pub(crate) struct ArgGroup {
    pub(crate) pointer: JsonPointer,
    /// `None` when the combined set could not be built; conditions then use their fallback.
    pub(crate) set: Option<GroupSet>,
}

#[derive(Clone, Debug)]
pub(crate) enum GroupSet {
    Glob(GlobSet),
    Regex(RegexSet),
}

/// Per-evaluation cache of each group's hits (sorted slots), computed on first use.
pub(crate) struct SetHits<'p> {
    sets: &'p ArgSets,
    hits: Vec<Option<Vec<usize>>>,
}

impl SetHits<'_> {
    fn holds(
        &mut self,
        group: usize,
        slot: usize,
        fallback: &ArgMatcher,
        input: &Map<String, Value>,
    ) -> bool {
        let Some(entry) = self.sets.groups.get(group) else {
            return fallback.matches(input);
        };
        let Some(set) = &entry.set else {
            return fallback.matches(input);
        };
        if self.hits.is_empty() {
            self.hits = vec![None; self.sets.groups.len()];
        }
        let Some(cached) = self.hits.get_mut(group) else {
            return fallback.matches(input);
        };
        let hits = cached.get_or_insert_with(|| match entry.pointer.resolve(input) {
            Some(Value::String(text)) => match set {
                GroupSet::Glob(globs) => {
                    globs.matches_candidate(&Candidate::from_bytes(text.as_bytes()))
                }
                GroupSet::Regex(regexes) => regexes.matches(text).into_iter().collect(),
            },
            _ => Vec::new(),
        });
        if !hits.is_sorted() {
            hits.sort_unstable();
        }
        hits.binary_search(&slot).is_ok()
    }
}

/// Every rule's tool globs in one [`GlobSet`], so one match call tells which rules' tool
/// conditions hold.
#[derive(Clone, Debug)]
pub(crate) struct ToolIndex {
    pub(crate) globs: GlobSet,
    /// For each glob in `globs`, the rule it belongs to. Non-decreasing: globs are added in rule
    /// order.
    pub(crate) rule_of_glob: Box<[usize]>,
}

impl Condition {
    pub(crate) fn holds(&self, action: &ActionRef<'_>, sets: &mut SetHits<'_>) -> bool {
        match self {
            Condition::Session(names) => action.session_id.is_some_and(|id| names.matches(id)),
            Condition::Agent(names) => action.agent.is_some_and(|agent| names.matches(agent)),
            Condition::Arg(matcher) => matcher.matches(action.input),
            Condition::ArgSet {
                group,
                slot,
                fallback,
            } => sets.holds(*group, *slot, fallback, action.input),
        }
    }
}

impl ToolIndex {
    /// The indices of the rules whose tool globs match `tool`, sorted and without duplicates.
    pub(crate) fn rules_matching(&self, tool: &str) -> Vec<usize> {
        let mut hits = Vec::new();
        if self.globs.is_empty() {
            return hits;
        }
        self.globs
            .matches_candidate_into(&Candidate::from_bytes(tool.as_bytes()), &mut hits);
        for hit in &mut hits {
            // `hit` came from `globs`, whose length equals `rule_of_glob`'s.
            *hit = self.rule_of_glob.get(*hit).copied().unwrap_or(usize::MAX);
        }
        hits.dedup();
        hits
    }
}

/// What a command rule looks at besides the simple command.
pub(crate) struct Subject<'a, 'r> {
    pub(crate) action: &'a ActionRef<'a>,
    pub(crate) is_shell: bool,
    pub(crate) tool_hits: &'a [usize],
    pub(crate) cx: Context<'r>,
}

/// What path and url rules judge, worked out once per action (for the policy's own pointers) or
/// per simple command, on first use.
#[derive(Default)]
pub(crate) struct Facts {
    paths: Option<Resolved>,
    endpoints: Option<Vec<Endpoint>>,
}

/// Why a rule did not match: one of its `conditions` (by index), or a named test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    Condition(usize),
    /// `tool`, `text` (reads another command text), a `command` key (`program`, `has_flag`, ...,
    /// `allow`), `path`, `path.glob`, `path.within`, `path.outside`, `url`.
    Key(&'static str),
}

/// The built-in decisions that no rule names.
pub(crate) const OPAQUE_RULE_ID: &str = "builtin:opaque";
pub(crate) const TOO_LONG_RULE_ID: &str = "builtin:input-too-long";

/// The strongest verdict found so far while combining per-command results: a stronger effect
/// replaces it, and so does a rule of the same effect that ranks before it (higher priority).
struct Strongest<'p> {
    found: Option<(Effect, Option<&'p Rule>, Option<String>)>,
    rank: &'p [usize],
}

impl<'p> Strongest<'p> {
    fn offer(&mut self, effect: Effect, rule: Option<&'p Rule>, why: Option<String>) {
        let stronger = match &self.found {
            None => true,
            Some((current, current_rule, _)) => {
                effect.strength() > current.strength()
                    || (effect == *current
                        && match (rule, current_rule) {
                            (Some(new), Some(old)) => self.rank_of(new) < self.rank_of(old),
                            _ => false,
                        })
            }
        };
        if stronger {
            self.found = Some((effect, rule, why));
        }
    }

    fn rank_of(&self, rule: &Rule) -> usize {
        self.rank.get(rule.index).copied().unwrap_or(usize::MAX)
    }
}

impl Policy {
    /// Decides one action with no symlink resolution ([`NoResolver`]).
    pub fn evaluate(&self, action: &ActionRef<'_>) -> Evaluation {
        self.evaluate_with(action, &NoResolver)
    }

    /// Decides one action. Rules without a `command` condition see the action as a whole; for a
    /// shell tool, each simple command of the parsed command line is decided on its own by the
    /// command rules (and the `path` / `url` rules). The verdict is the most restrictive of all of
    /// them: any `reject`, then any `pause` (an opaque command counts as the policy's `opaque`
    /// effect), then `allow` when a whole-action allow rule matched or every simple command was
    /// allowed; else the default. In observe mode a verdict other than allow becomes an allow
    /// that records it in [`Evaluation::observed`] (built-in decisions excepted).
    pub fn evaluate_with(&self, action: &ActionRef<'_>, resolver: &dyn PathResolver) -> Evaluation {
        self.observe(self.decide(action, None, resolver))
    }

    /// Decides one action whose shell command (the text at the policy's `[shell] pointer`) the
    /// caller has already parsed with [`shell::parse`], e.g. to show it or to time the rules alone.
    /// Passing the parse of a different text gives a verdict on that text.
    pub fn evaluate_parsed(
        &self,
        action: &ActionRef<'_>,
        command: &ParsedCommand,
        resolver: &dyn PathResolver,
    ) -> Evaluation {
        self.observe(self.decide(action, Some(command), resolver))
    }

    /// Observe mode: allow, and say what the policy would have done. Gatehouse's own decisions
    /// (`builtin:*`: opaque commands, oversized inputs, self-protection) are never relaxed.
    fn observe(&self, verdict: Evaluation) -> Evaluation {
        let builtin = verdict
            .rule_id
            .as_deref()
            .is_some_and(|id| id.starts_with("builtin:"));
        if !self.observe || verdict.effect == Effect::Allow || builtin {
            return verdict;
        }
        Evaluation {
            effect: Effect::Allow,
            reason: format!("observe mode: would {}: {}", verdict.effect, verdict.reason).into(),
            rule_id: verdict.rule_id,
            observed: Some(verdict.effect),
            confine: None,
        }
    }

    /// Whether the policy is in observe mode (`mode = "observe"`).
    pub fn is_observe(&self) -> bool {
        self.observe
    }

    /// Whole-action candidates for this tool, in precedence order. Path and url rules are
    /// per simple command for shell tools, so they are left out there.
    pub(crate) fn whole_candidates(&self, tool_hits: &[usize], is_shell: bool) -> Vec<usize> {
        let mut candidates: Vec<usize> = tool_hits
            .iter()
            .copied()
            .filter(|&i| self.rules.get(i).is_some_and(|r| r.command.is_none()))
            .chain(self.untooled.iter().copied())
            .filter(|&i| {
                !is_shell
                    || self
                        .rules
                        .get(i)
                        .is_some_and(|r| r.path.is_none() && r.url.is_none())
            })
            .collect();
        candidates.sort_unstable_by_key(|&i| self.rank.get(i).copied().unwrap_or(usize::MAX));
        candidates.dedup();
        candidates
    }

    /// Whether a whole-action rule matches; if not, the first condition that failed.
    pub(crate) fn whole_check(
        &self,
        rule: &Rule,
        action: &ActionRef<'_>,
        sets: &mut SetHits<'_>,
        cx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), Failed> {
        for (index, condition) in rule.conditions.iter().enumerate() {
            if !condition.holds(action, sets) {
                return Err(Failed::Condition(index));
            }
        }
        if let Some(path) = &rule.path {
            let own;
            let resolved = match &path.pointers {
                Some(pointers) => {
                    own = Resolved::new(&Paths::of_input(pointers, action.input), cx);
                    &own
                }
                None => facts.paths.get_or_insert_with(|| {
                    Resolved::new(
                        &Paths::of_tool(action.tool, &self.path_pointers, action.input),
                        cx,
                    )
                }),
            };
            path.check(resolved, rule.effect, cx).map_err(Failed::Key)?;
        }
        if let Some(url) = &rule.url {
            let own;
            let endpoints = match &url.pointers {
                Some(pointers) => {
                    own = endpoints_of_input(pointers, action.input);
                    &own
                }
                None => facts.endpoints.get_or_insert_with(|| {
                    endpoints_of_input(&self.network_pointers, action.input)
                }),
            };
            url.check(endpoints, rule.effect).map_err(Failed::Key)?;
        }
        Ok(())
    }

    pub(crate) fn new_set_hits(&self) -> SetHits<'_> {
        SetHits {
            sets: &self.arg_sets,
            hits: Vec::new(),
        }
    }

    /// The texts a command rule reads: the policy's command text (for a shell tool, or a tool a
    /// command rule names) and each command rule's own pointer, parsed.
    pub(crate) fn command_texts<'s>(
        &'s self,
        action: &ActionRef<'_>,
        is_shell: bool,
        tool_hits: &[usize],
        preparsed: Option<&'s ParsedCommand>,
    ) -> Vec<(Option<&'s JsonPointer>, Cow<'s, ParsedCommand>)> {
        let mut parsed: Vec<(Option<&JsonPointer>, Cow<'_, ParsedCommand>)> = Vec::new();
        let wants_text = is_shell
            || tool_hits.iter().any(|&i| {
                self.rules
                    .get(i)
                    .and_then(|r| r.command.as_ref())
                    .is_some_and(|c| c.pointer.is_none())
            });
        if wants_text && let Some(Value::String(text)) = self.shell.pointer.resolve(action.input) {
            parsed.push((
                None,
                match preparsed {
                    Some(command) => Cow::Borrowed(command),
                    None => Cow::Owned(shell::parse(text)),
                },
            ));
        }
        for pointer in self
            .pointer_rules
            .iter()
            .filter_map(|&i| self.rules.get(i)?.command.as_ref()?.pointer.as_ref())
        {
            if parsed
                .iter()
                .any(|(p, _)| p.is_some_and(|p| std::ptr::eq(p, pointer)))
            {
                continue;
            }
            if let Some(Value::String(text)) = pointer.resolve(action.input) {
                parsed.push((Some(pointer), Cow::Owned(shell::parse(text))));
            }
        }
        parsed
    }

    fn decide(
        &self,
        action: &ActionRef<'_>,
        preparsed: Option<&ParsedCommand>,
        resolver: &dyn PathResolver,
    ) -> Evaluation {
        let tool_hits = self.tools.rules_matching(action.tool);
        let mut sets = self.new_set_hits();
        let is_shell = self.shell.tools.matches(action.tool);
        let too_long = input_exceeds(action.input, self.max_input_bytes);
        let mut strongest = Strongest {
            found: None,
            rank: &self.rank,
        };
        let subject = Subject {
            action,
            is_shell,
            tool_hits: &tool_hits,
            cx: Context::new(action.cwd, resolver),
        };

        // Whole-action rules.
        let mut facts = Facts::default();
        let whole = self
            .whole_candidates(&tool_hits, is_shell)
            .into_iter()
            .find_map(|i| {
                let rule = self.rules.get(i)?;
                self.whole_check(rule, action, &mut sets, &subject.cx, &mut facts)
                    .is_ok()
                    .then_some(rule)
            });
        let whole_allows = whole.is_some_and(|r| r.effect == Effect::Allow);
        if let Some(rule) = whole {
            strongest.offer(rule.effect, Some(rule), None);
        }

        // Per simple command.
        let mut all_commands_allowed = None::<&Rule>;
        // Any allowed simple command whose rule confines confines the whole line.
        let mut confine = whole.and_then(|r| r.confine.clone());
        let mut every_allowed = true;
        let mut any_command = false;
        // A whole-action allow rule (e.g. `tool = "Bash"`) never allows a shell command the
        // engine does not fully understand (principle 5).
        let mut shell_not_understood = false;
        if too_long {
            strongest.offer(
                Effect::Pause,
                None,
                Some(format!(
                    "input is longer than {} bytes; too long to check",
                    self.max_input_bytes
                )),
            );
        } else {
            let parsed = self.command_texts(action, is_shell, &tool_hits, preparsed);
            for (pointer, command_line) in &parsed {
                if let Some(why) = command_line.opaque.first() {
                    strongest.offer(
                        self.opaque_effect,
                        None,
                        Some(format!("the command cannot be analysed statically: {why}")),
                    );
                }
                for command in command_line.commands.iter() {
                    any_command = true;
                    if command.not_understood().is_some() || !command.is_static {
                        shell_not_understood = true;
                    }
                    let decided = self.decide_command(command, *pointer, &subject, &mut sets);
                    match decided {
                        Some(rule) => {
                            strongest.offer(rule.effect, Some(rule), None);
                            if rule.effect == Effect::Allow {
                                if confine.is_none() {
                                    confine = rule.confine.clone();
                                }
                                let better = all_commands_allowed.is_none_or(|best| {
                                    strongest.rank_of(rule) < strongest.rank_of(best)
                                });
                                if better {
                                    all_commands_allowed = Some(rule);
                                }
                            } else {
                                every_allowed = false;
                            }
                        }
                        None => every_allowed = false,
                    }
                }
            }
        }

        let verdict = match strongest.found {
            Some((effect @ (Effect::Reject | Effect::Pause), rule, why)) => {
                Some((effect, rule, why))
            }
            _ if whole_allows && !shell_not_understood => {
                whole.map(|r| (Effect::Allow, Some(r), None))
            }
            _ if any_command && every_allowed => {
                all_commands_allowed.map(|r| (Effect::Allow, Some(r), None))
            }
            _ => None,
        };
        match verdict {
            Some((effect, Some(rule), _)) => Evaluation {
                effect,
                rule_id: Some(Arc::clone(&rule.id)),
                reason: Arc::clone(&rule.reason),
                observed: None,
                confine: if effect == Effect::Allow {
                    confine.or_else(|| rule.confine.clone())
                } else {
                    None
                },
            },
            Some((effect, None, why)) => Evaluation {
                effect,
                rule_id: Some(Arc::from(if too_long {
                    TOO_LONG_RULE_ID
                } else {
                    OPAQUE_RULE_ID
                })),
                reason: why.unwrap_or_default().into(),
                observed: None,
                confine: None,
            },
            None => {
                // The default never allows what cannot be known.
                Evaluation {
                    effect: self.default_effect,
                    rule_id: None,
                    reason: Arc::clone(&self.default_reason),
                    observed: None,
                    confine: None,
                }
            }
        }
    }

    /// The rules that may decide one simple command, in precedence order: command rules by
    /// program name, and (for a shell tool's own command text) the path and url rules.
    pub(crate) fn command_candidates(
        &self,
        command: &SimpleCommand,
        pointer: Option<&JsonPointer>,
        is_shell: bool,
        tool_hits: &[usize],
    ) -> Vec<usize> {
        let mut candidates: Vec<usize> = Vec::new();
        if let Some(list) = self.programs.by_name.get(&command.program) {
            candidates.extend_from_slice(list);
        }
        if let Some(globs) = &self.programs.globs {
            let mut hits = Vec::new();
            globs.matches_candidate_into(
                &Candidate::from_bytes(command.program.as_bytes()),
                &mut hits,
            );
            candidates.extend(
                hits.into_iter()
                    .filter_map(|h| self.programs.rule_of_glob.get(h).copied()),
            );
        }
        candidates.extend_from_slice(&self.programs.any);
        if is_shell && pointer.is_none() {
            candidates.extend_from_slice(&self.shell_scoped);
            // Path and url rules naming this (shell) tool.
            candidates.extend(tool_hits.iter().copied().filter(|&i| {
                self.rules
                    .get(i)
                    .is_some_and(|r| r.command.is_none() && (r.path.is_some() || r.url.is_some()))
            }));
        }
        candidates.sort_unstable_by_key(|&i| self.rank.get(i).copied().unwrap_or(usize::MAX));
        candidates.dedup();
        candidates
    }

    /// Whether a rule decides one simple command; if not, the first condition that failed.
    pub(crate) fn command_check(
        &self,
        rule: &Rule,
        command: &SimpleCommand,
        pointer: Option<&JsonPointer>,
        subject: &Subject<'_, '_>,
        sets: &mut SetHits<'_>,
        facts: &mut Facts,
    ) -> Result<(), Failed> {
        let own_pointer = rule.command.as_ref().and_then(|c| c.pointer.as_ref());
        let same_text = match (own_pointer, pointer) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        };
        if !same_text {
            return Err(Failed::Key("text"));
        }
        let tool_holds = if rule.tool_filtered {
            subject.tool_hits.binary_search(&rule.index).is_ok()
        } else {
            subject.is_shell
        };
        if !tool_holds {
            return Err(Failed::Key("tool"));
        }
        for (index, condition) in rule.conditions.iter().enumerate() {
            if !condition.holds(subject.action, sets) {
                return Err(Failed::Condition(index));
            }
        }
        match &rule.command {
            Some(condition) => condition
                .check(command, rule.effect, &subject.cx)
                .map_err(Failed::Key)?,
            // Path and url allow rules are as strict as command allow rules.
            None if rule.effect == Effect::Allow
                && (!command.trusted_path || !command.is_static || command.args_from_input) =>
            {
                return Err(Failed::Key("allow"));
            }
            None if rule.effect == Effect::Allow && command.not_understood().is_some() => {
                return Err(Failed::Key("understood"));
            }
            None => {}
        }
        if let Some(path) = &rule.path {
            let resolved = facts
                .paths
                .get_or_insert_with(|| Resolved::new(&Paths::of_command(command), &subject.cx));
            path.check(resolved, rule.effect, &subject.cx)
                .map_err(Failed::Key)?;
        }
        if let Some(url) = &rule.url {
            let endpoints = facts
                .endpoints
                .get_or_insert_with(|| endpoints_of_command(command));
            url.check(endpoints, rule.effect).map_err(Failed::Key)?;
        }
        Ok(())
    }

    /// The first rule, in precedence order, that matches one simple command.
    fn decide_command(
        &self,
        command: &SimpleCommand,
        pointer: Option<&JsonPointer>,
        subject: &Subject<'_, '_>,
        sets: &mut SetHits<'_>,
    ) -> Option<&Rule> {
        let mut facts = Facts::default();
        self.command_candidates(command, pointer, subject.is_shell, subject.tool_hits)
            .into_iter()
            .find_map(|i| {
                let rule = self.rules.get(i)?;
                self.command_check(rule, command, pointer, subject, sets, &mut facts)
                    .is_ok()
                    .then_some(rule)
            })
    }

    /// How many different people must approve an action the rule `rule_id` paused: its
    /// `approvals` (1 for a rule without it, or a rule this policy does not have).
    pub fn required_approvals(&self, rule_id: &str) -> u32 {
        self.rules
            .iter()
            .find(|rule| &*rule.id == rule_id)
            .map_or(1, |rule| rule.approvals.max(1))
    }

    /// How many `[[rules]]` the policy holds (included rules count).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The effect when no rule matches.
    pub fn default_effect(&self) -> Effect {
        self.default_effect
    }

    /// The effect of an opaque shell command.
    pub fn opaque_effect(&self) -> Effect {
        self.opaque_effect
    }
}

/// Whether the strings of `input` (keys and values) add up to more than `limit` bytes.
pub(crate) fn input_exceeds(input: &Map<String, Value>, limit: usize) -> bool {
    fn walk(value: &Value, budget: &mut usize) -> bool {
        match value {
            Value::String(text) => spend(text.len(), budget),
            Value::Array(items) => items.iter().any(|item| walk(item, budget)),
            Value::Object(map) => map
                .iter()
                .any(|(key, item)| spend(key.len(), budget) || walk(item, budget)),
            _ => spend(8, budget),
        }
    }
    fn spend(bytes: usize, budget: &mut usize) -> bool {
        match budget.checked_sub(bytes) {
            Some(left) => {
                *budget = left;
                false
            }
            None => true,
        }
    }
    let mut budget = limit;
    input
        .iter()
        .any(|(key, item)| spend(key.len(), &mut budget) || walk(item, &mut budget))
}

/// Orders rule indices for evaluation: strongest effect first; within an effect, higher
/// `priority` first, then file order. Priority never moves a rule across effects.
pub(crate) fn precedence_order(rules: &[Rule]) -> Box<[usize]> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&index| {
        rules
            .get(index)
            .map_or((u8::MAX, std::cmp::Reverse(0), index), |rule| {
                (
                    2 - rule.effect.strength(),
                    std::cmp::Reverse(rule.priority),
                    index,
                )
            })
    });
    order.into_boxed_slice()
}

/// The reason reported when no rule matched.
pub(crate) fn default_reason(effect: Effect) -> Arc<str> {
    format!("no rule matched; policy default is {effect}").into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::effect::Effect::{Allow, Pause, Reject};

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("input must be an object, got {other}"),
        }
    }

    fn load(source: &str) -> Policy {
        Policy::from_toml(source).unwrap_or_else(|error| panic!("{error}\n--- in ---\n{source}"))
    }

    /// The id of the rule that decided, or `None` for the default.
    fn decided_by(policy: &Policy, action: &ActionRef<'_>) -> Option<String> {
        policy.evaluate(action).rule_id.map(|id| id.to_string())
    }

    #[test]
    fn tool_conditions_match_names_globs_and_lists() {
        let policy = load(
            r#"
            [[rules]]
            id = "bash"
            effect = "allow"
            tool = "Bash"

            [[rules]]
            id = "github"
            effect = "allow"
            tool = "mcp__github__*"

            [[rules]]
            id = "search"
            effect = "allow"
            tool = ["Grep", "Gl?b", "Web{Search,Fetch}"]

            [[rules]]
            id = "mcp-any"
            effect = "allow"
            tool = "mcp__*"
            "#,
        );
        let input = Map::new();
        let cases = [
            ("Bash", Some("bash")),
            ("bash", None),
            ("BashOutput", None),
            ("mcp__github__create_issue", Some("github")),
            ("mcp__gitlab__create_issue", Some("mcp-any")),
            ("Grep", Some("search")),
            ("Glob", Some("search")),
            ("Gloob", None),
            ("WebFetch", Some("search")),
            ("WebSearch", Some("search")),
            ("Read", None),
            ("", None),
        ];
        for (tool, expected) in cases {
            let action = ActionRef::new(tool, &input);
            assert_eq!(
                decided_by(&policy, &action).as_deref(),
                expected,
                "tool {tool:?}"
            );
        }
    }

    #[test]
    fn a_rule_without_tool_matches_every_tool() {
        let policy = load("[[rules]]\nid = \"any\"\neffect = \"reject\"\n");
        let input = Map::new();
        for tool in ["Bash", "Read", "mcp__x__y", ""] {
            assert_eq!(
                decided_by(&policy, &ActionRef::new(tool, &input)).as_deref(),
                Some("any"),
                "{tool}"
            );
        }
    }

    /// Each case is one argument condition (TOML) on a rule; does it hold for the input?
    #[test]
    fn argument_matchers() {
        let cases: &[(&str, &str, Value, bool)] = &[
            // prefix
            (
                "prefix hit",
                r#"{ pointer = "/command", prefix = "git " }"#,
                json!({"command": "git status"}),
                true,
            ),
            (
                "prefix miss",
                r#"{ pointer = "/command", prefix = "git " }"#,
                json!({"command": "gitk"}),
                false,
            ),
            (
                "prefix on number",
                r#"{ pointer = "/n", prefix = "1" }"#,
                json!({"n": 12}),
                false,
            ),
            (
                "prefix on absent",
                r#"{ pointer = "/command", prefix = "" }"#,
                json!({"cmd": "x"}),
                false,
            ),
            // glob
            (
                "glob hit",
                r#"{ pointer = "/file_path", glob = "/work/**/*.rs" }"#,
                json!({"file_path": "/work/a/b.rs"}),
                true,
            ),
            (
                "glob crosses slashes",
                r#"{ pointer = "/file_path", glob = "/work/*.rs" }"#,
                json!({"file_path": "/work/a/b.rs"}),
                true,
            ),
            (
                "glob whole value",
                r#"{ pointer = "/file_path", glob = "*.rs" }"#,
                json!({"file_path": "b.rs.orig"}),
                false,
            ),
            (
                "glob on bool",
                r#"{ pointer = "/flag", glob = "*" }"#,
                json!({"flag": true}),
                false,
            ),
            (
                "glob on null",
                r#"{ pointer = "/flag", glob = "*" }"#,
                json!({"flag": null}),
                false,
            ),
            // regex
            (
                "regex unanchored",
                r#"{ pointer = "/command", regex = '\bsudo\b' }"#,
                json!({"command": "echo x && sudo ls"}),
                true,
            ),
            (
                "regex anchored",
                r#"{ pointer = "/command", regex = '^ls\b' }"#,
                json!({"command": "echo; ls"}),
                false,
            ),
            (
                "regex on array",
                r#"{ pointer = "/command", regex = "ls" }"#,
                json!({"command": ["ls"]}),
                false,
            ),
            (
                "regex on object",
                r#"{ pointer = "/command", regex = "ls" }"#,
                json!({"command": {"ls": 1}}),
                false,
            ),
            // equals
            (
                "equals string",
                r#"{ pointer = "/mode", equals = "w" }"#,
                json!({"mode": "w"}),
                true,
            ),
            (
                "equals string vs number",
                r#"{ pointer = "/n", equals = "1" }"#,
                json!({"n": 1}),
                false,
            ),
            (
                "equals integer",
                r#"{ pointer = "/timeout", equals = 120000 }"#,
                json!({"timeout": 120000}),
                true,
            ),
            (
                "equals integer vs float",
                r#"{ pointer = "/timeout", equals = 5 }"#,
                json!({"timeout": 5.0}),
                true,
            ),
            (
                "equals float",
                r#"{ pointer = "/t", equals = 0.5 }"#,
                json!({"t": 0.5}),
                true,
            ),
            (
                "equals hex integer",
                r#"{ pointer = "/n", equals = 0x10 }"#,
                json!({"n": 16}),
                true,
            ),
            (
                "equals underscored",
                r#"{ pointer = "/n", equals = -1_000 }"#,
                json!({"n": -1000}),
                true,
            ),
            (
                "equals integer miss",
                r#"{ pointer = "/n", equals = 2 }"#,
                json!({"n": 3}),
                false,
            ),
            (
                "equals true",
                r#"{ pointer = "/run_in_background", equals = true }"#,
                json!({"run_in_background": true}),
                true,
            ),
            (
                "equals false vs true",
                r#"{ pointer = "/run_in_background", equals = false }"#,
                json!({"run_in_background": true}),
                false,
            ),
            (
                "equals bool vs string",
                r#"{ pointer = "/b", equals = true }"#,
                json!({"b": "true"}),
                false,
            ),
            (
                "equals array",
                r#"{ pointer = "/args", equals = ["push", "--force"] }"#,
                json!({"args": ["push", "--force"]}),
                true,
            ),
            (
                "equals array order",
                r#"{ pointer = "/args", equals = ["--force", "push"] }"#,
                json!({"args": ["push", "--force"]}),
                false,
            ),
            (
                "equals object",
                r#"{ pointer = "/opts", equals = { a = 1, b = { c = true } } }"#,
                json!({"opts": {"b": {"c": true}, "a": 1}}),
                true,
            ),
            (
                "equals object subset",
                r#"{ pointer = "/opts", equals = { a = 1 } }"#,
                json!({"opts": {"a": 1, "b": 2}}),
                false,
            ),
            (
                "equals absent",
                r#"{ pointer = "/n", equals = 0 }"#,
                json!({}),
                false,
            ),
            // pointers
            (
                "nested pointer",
                r#"{ pointer = "/edits/0/file_path", prefix = "/etc/" }"#,
                json!({"edits": [{"file_path": "/etc/hosts"}]}),
                true,
            ),
            (
                "nested pointer out of range",
                r#"{ pointer = "/edits/1/file_path", prefix = "/" }"#,
                json!({"edits": [{"file_path": "/etc/hosts"}]}),
                false,
            ),
            (
                "escaped pointer",
                r#"{ pointer = "/a~1b", equals = 1 }"#,
                json!({"a/b": 1}),
                true,
            ),
        ];
        for (name, matcher, input, expected) in cases {
            let source = format!("[[rules]]\nid = \"r\"\neffect = \"allow\"\nargs = [{matcher}]\n");
            let policy = load(&source);
            let input = object(input.clone());
            let verdict = policy.evaluate(&ActionRef::new("Any", &input));
            assert_eq!(verdict.rule_id.is_some(), *expected, "{name}");
            assert_eq!(verdict.effect == Allow, *expected, "{name}");
        }
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        let policy = load(
            r#"
            [[rules]]
            id = "force-push"
            effect = "reject"
            tool = "Bash"
            session = "ci-*"
            [[rules.args]]
            pointer = "/command"
            prefix = "git push"
            [[rules.args]]
            pointer = "/command"
            regex = '\s(--force|-f)\b'
            "#,
        );
        let cases = [
            ("all hold", "Bash", "git push --force", Some("ci-1"), true),
            (
                "wrong tool",
                "Shell",
                "git push --force",
                Some("ci-1"),
                false,
            ),
            (
                "first arg fails",
                "Bash",
                "echo git push --force",
                Some("ci-1"),
                false,
            ),
            (
                "second arg fails",
                "Bash",
                "git push origin main",
                Some("ci-1"),
                false,
            ),
            ("session fails", "Bash", "git push -f", Some("dev-1"), false),
            ("no session", "Bash", "git push -f", None, false),
        ];
        for (name, tool, command, session, expected) in cases {
            let input = object(json!({ "command": command }));
            let action = ActionRef {
                session_id: session,
                ..ActionRef::new(tool, &input)
            };
            assert_eq!(decided_by(&policy, &action).is_some(), expected, "{name}");
        }
    }

    #[test]
    fn session_and_agent_conditions() {
        let policy = load(
            r#"
            [[rules]]
            id = "trusted-agent-in-sandbox"
            effect = "allow"
            session = ["sandbox-*", "scratch"]
            agent = "claude-code"

            [[rules]]
            id = "any-codex"
            effect = "allow"
            agent = "codex*"
            "#,
        );
        let input = Map::new();
        let cases = [
            (
                Some("sandbox-42"),
                Some("claude-code"),
                Some("trusted-agent-in-sandbox"),
            ),
            (
                Some("scratch"),
                Some("claude-code"),
                Some("trusted-agent-in-sandbox"),
            ),
            (Some("scratch-2"), Some("claude-code"), None),
            (Some("sandbox-42"), Some("claude-code-2"), None),
            (Some("sandbox-42"), None, None),
            (None, Some("claude-code"), None),
            (None, Some("codex-cli"), Some("any-codex")),
            (Some("prod"), Some("codex"), Some("any-codex")),
            (None, None, None),
        ];
        for (session_id, agent, expected) in cases {
            let action = ActionRef {
                session_id,
                agent,
                ..ActionRef::new("Bash", &input)
            };
            assert_eq!(
                decided_by(&policy, &action).as_deref(),
                expected,
                "session {session_id:?}, agent {agent:?}"
            );
        }
    }

    /// Rules that all match, listed in different file orders: the strongest effect wins, and among
    /// equals the first in the file.
    #[test]
    fn precedence_is_reject_then_pause_then_allow_regardless_of_file_order() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("a", "allow"), ("p", "pause"), ("r", "reject")], "r"),
            (&[("r", "reject"), ("p", "pause"), ("a", "allow")], "r"),
            (&[("p", "pause"), ("r", "reject"), ("a", "allow")], "r"),
            (&[("a", "allow"), ("p", "pause")], "p"),
            (&[("p", "pause"), ("a", "allow")], "p"),
            (&[("a1", "allow"), ("a2", "allow")], "a1"),
            (&[("a2", "allow"), ("a1", "allow")], "a2"),
            (
                &[
                    ("a", "allow"),
                    ("r2", "reject"),
                    ("p", "pause"),
                    ("r1", "reject"),
                ],
                "r2",
            ),
            (&[("p2", "pause"), ("a", "allow"), ("p1", "pause")], "p2"),
        ];
        for (rules, winner) in cases {
            let source: String = rules
                .iter()
                .map(|(id, effect)| format!("[[rules]]\nid = \"{id}\"\neffect = \"{effect}\"\n"))
                .collect();
            let policy = load(&source);
            let input = Map::new();
            let verdict = policy.evaluate(&ActionRef::new("Bash", &input));
            assert_eq!(verdict.rule_id.as_deref(), Some(*winner), "{rules:?}");
            let effect = rules.iter().find(|(id, _)| id == winner).map(|(_, e)| *e);
            assert_eq!(Some(verdict.effect.as_str()), effect, "{rules:?}");
        }
    }

    #[test]
    fn a_stronger_rule_that_does_not_match_does_not_count() {
        let policy = load(
            r#"
            [[rules]]
            id = "reject-rm"
            effect = "reject"
            [[rules.args]]
            pointer = "/command"
            regex = '\brm\b'

            [[rules]]
            id = "allow-all"
            effect = "allow"
            "#,
        );
        let cases = [("rm -r x", Reject, "reject-rm"), ("ls", Allow, "allow-all")];
        for (command, effect, rule) in cases {
            let input = object(json!({ "command": command }));
            let verdict = policy.evaluate(&ActionRef::new("Bash", &input));
            assert_eq!(
                (verdict.effect, verdict.rule_id.as_deref()),
                (effect, Some(rule))
            );
        }
    }

    #[test]
    fn default_effect_decides_when_no_rule_matches() {
        let never = "[[rules]]\nid = \"never\"\neffect = \"reject\"\ntool = \"Nothing\"\n";
        let cases = [
            ("", Pause, "no rule matched; policy default is pause"),
            (
                "default = \"pause\"\n",
                Pause,
                "no rule matched; policy default is pause",
            ),
            (
                "default = \"allow\"\n",
                Allow,
                "no rule matched; policy default is allow",
            ),
            (
                "default = \"reject\"\n",
                Reject,
                "no rule matched; policy default is reject",
            ),
        ];
        for (header, effect, reason) in cases {
            let policy = load(&format!("{header}{never}"));
            assert_eq!(policy.default_effect(), effect);
            assert_eq!(policy.rule_count(), 1);
            let input = Map::new();
            let verdict = policy.evaluate(&ActionRef::new("Bash", &input));
            let expected = Evaluation {
                effect,
                rule_id: None,
                reason: reason.into(),
                observed: None,
                confine: None,
            };
            assert_eq!(verdict, expected, "{header:?}");
        }
    }

    #[test]
    fn reasons_default_to_naming_the_rule() {
        let policy = load(
            r#"
            [[rules]]
            id = "explained"
            effect = "pause"
            reason = "network access needs a human"
            tool = "WebFetch"

            [[rules]]
            id = "terse"
            effect = "pause"
            "#,
        );
        let input = Map::new();
        let cases = [
            ("WebFetch", "explained", "network access needs a human"),
            ("Bash", "terse", "matched rule terse"),
        ];
        for (tool, rule, reason) in cases {
            let verdict = policy.evaluate(&ActionRef::new(tool, &input));
            assert_eq!(verdict.rule_id.as_deref(), Some(rule));
            assert_eq!(&*verdict.reason, reason);
        }
    }

    #[test]
    fn an_empty_policy_pauses_everything() {
        let policy = load("");
        assert_eq!(policy.rule_count(), 0);
        let input = object(json!({"command": "ls"}));
        let verdict = policy.evaluate(&ActionRef::new("Bash", &input));
        assert_eq!((verdict.effect, verdict.rule_id), (Pause, None));
    }

    #[test]
    fn policy_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Policy>();
        assert_send_sync::<Evaluation>();
    }
}
