//! Standing grants: a person's "approve, and allow similar" turned into allow rules in the
//! engine's own terms, scoped (one session, one project, everywhere) and expiring.
//!
//! A grant is one or more `[[rules]]` tables (as JSON objects: `tool`, `command`, `path`, `url`,
//! `host`, `args`...), compiled into a small [`Policy`] of its own whose default is `pause`, so
//! its allow rules obey everything an allow rule obeys: the positive model (unknown options,
//! non-literal words, unlisted environment variables are never allowed), opaque commands, the
//! input size cap, paths resolved through symlinks.
//!
//! *Invariant*: a grant only turns a **pause** into an allow. [`evaluate`] applies grants only
//! when the policy and self-protection together paused the action, self-protection did not touch
//! it, no simple command needed confinement, nothing in it is a secret or a persistence file, it
//! reaches no host the grant was not made for, and the pause was not one of Gatehouse's own
//! (`builtin:*`: opaque, too long). A reject, self-protection and "not fully understood" stand.
//!
//! `propose` (in [`propose`](self::propose)) builds the narrowest grant covering one paused action,
//! or says why none is offered ([`Ineligible`]).

mod propose;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::PathResolver;
use crate::effect::Effect;
use crate::policy::{ActionRef, Evaluation, Policy};
use crate::protect::{self, SelfProtection};
use crate::shell::{self, ParsedCommand};

pub use propose::{Proposal, propose};

/// Where a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GrantScope {
    /// Only actions of this agent session.
    Session { session_id: String },
    /// Only actions whose working directory is this directory or below it.
    Project { root: String },
    /// Any session, any project.
    Everywhere,
}

impl GrantScope {
    /// Whether an action with this session and working directory is in scope.
    pub fn covers(&self, session_id: Option<&str>, cwd: Option<&str>) -> bool {
        match self {
            GrantScope::Session { session_id: own } => session_id == Some(own.as_str()),
            GrantScope::Project { root } => cwd.is_some_and(|cwd| within(cwd, root)),
            GrantScope::Everywhere => true,
        }
    }
}

/// Whether `path` is `root` or below it (lexically; both absolute).
fn within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return path.starts_with('/');
    }
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A grant as recorded: what it allows, where, until when, and the hosts it was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantSpec {
    pub id: String,
    /// Allow rules as JSON objects (policy-file keys; no `id`, `effect` or `priority`).
    pub rules: Vec<Map<String, Value>>,
    pub scope: GrantScope,
    /// Milliseconds since the epoch; `None`: until revoked.
    pub expires_at_ms: Option<i64>,
    /// The hosts the action it was made from connected to (all known to the deployment then):
    /// an action reaching any other host is never allowed by this grant.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// Why a grant's rules cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("a grant needs at least one rule")]
    NoRules,
    #[error("a grant has at most {MAX_RULES} rules")]
    TooManyRules,
    #[error("rule {index}: `{key}` is not allowed in a grant ({why})")]
    ForbiddenKey {
        index: usize,
        key: String,
        why: &'static str,
    },
    #[error("rule {index}: a grant's rule must name its `tool`")]
    NoTool { index: usize },
    #[error("rule {index}: {message}")]
    NotToml { index: usize, message: String },
    #[error("the grant's rules are not a valid policy: {0}")]
    Invalid(String),
}

/// Most rules in one grant (a compound command gets one per simple command).
pub const MAX_RULES: usize = 16;

/// Keys a grant's rule may carry: the conditions of a policy rule.
const RULE_KEYS: &[&str] = &[
    "tool", "session", "agent", "args", "command", "path", "url", "host", "reason",
];

/// The policy TOML of a grant's rules: `default = "pause"` and each rule as an allow rule named
/// `ID` (or `ID#N` for the N-th after the first).
pub fn rules_toml(id: &str, rules: &[Map<String, Value>]) -> Result<String, GrantError> {
    if rules.is_empty() {
        return Err(GrantError::NoRules);
    }
    if rules.len() > MAX_RULES {
        return Err(GrantError::TooManyRules);
    }
    let mut tables = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        for key in rule.keys() {
            if !RULE_KEYS.contains(&key.as_str()) {
                let why = match key.as_str() {
                    "id" => "the grant's id names it",
                    "effect" => "a grant only allows",
                    "priority" | "confine" | "confine_fallback" => {
                        "a grant's allow has no priority or confinement"
                    }
                    _ => "not a rule condition",
                };
                return Err(GrantError::ForbiddenKey {
                    index,
                    key: key.clone(),
                    why,
                });
            }
        }
        if !rule.contains_key("tool") {
            return Err(GrantError::NoTool { index });
        }
        let mut table = toml::Table::new();
        let rule_id = if index == 0 {
            id.to_owned()
        } else {
            format!("{id}#{index}")
        };
        table.insert("id".into(), toml::Value::String(rule_id));
        table.insert("effect".into(), toml::Value::String("allow".into()));
        for (key, value) in rule {
            let value = toml::Value::try_from(value).map_err(|err| GrantError::NotToml {
                index,
                message: format!("`{key}` cannot be written as TOML ({err}); null is not allowed"),
            })?;
            table.insert(key.clone(), value);
        }
        tables.push(toml::Value::Table(table));
    }
    let mut document = toml::Table::new();
    document.insert("default".into(), toml::Value::String("pause".into()));
    document.insert("rules".into(), toml::Value::Array(tables));
    toml::to_string(&document).map_err(|err| GrantError::Invalid(err.to_string()))
}

/// A grant's rules compiled into a policy of their own.
pub fn compile_rules(id: &str, rules: &[Map<String, Value>]) -> Result<Policy, GrantError> {
    let text = rules_toml(id, rules)?;
    Policy::from_toml(&text).map_err(|err| GrantError::Invalid(err.to_string()))
}

/// One grant, compiled.
#[derive(Debug, Clone)]
struct CompiledGrant {
    id: Arc<str>,
    scope: GrantScope,
    expires_at_ms: Option<i64>,
    hosts: Vec<String>,
    policy: Policy,
}

/// The grants in force, compiled; swapped whole when one is added, revoked or expires.
#[derive(Debug, Clone, Default)]
pub struct GrantSet {
    grants: Vec<CompiledGrant>,
}

impl GrantSet {
    /// The set of `specs`; a spec whose rules no longer compile is left out and returned with
    /// its error (the grant then allows nothing: fail closed).
    pub fn compile(specs: &[GrantSpec]) -> (GrantSet, Vec<(String, GrantError)>) {
        let mut grants = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for spec in specs {
            match compile_rules(&spec.id, &spec.rules) {
                Ok(policy) => grants.push(CompiledGrant {
                    id: spec.id.as_str().into(),
                    scope: spec.scope.clone(),
                    expires_at_ms: spec.expires_at_ms,
                    hosts: spec.hosts.clone(),
                    policy,
                }),
                Err(err) => errors.push((spec.id.clone(), err)),
            }
        }
        (GrantSet { grants }, errors)
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// The first grant in force at `now_ms` that allows the action, if any. The caller has
    /// checked the action is eligible ([`eligible`]).
    fn allowing(
        &self,
        action: &ActionRef<'_>,
        parsed: Option<&ParsedCommand>,
        hosts: &[String],
        resolver: &dyn PathResolver,
        now_ms: i64,
    ) -> Option<&CompiledGrant> {
        self.grants.iter().find(|grant| {
            grant.expires_at_ms.is_none_or(|at| now_ms < at)
                && grant.scope.covers(action.session_id, action.cwd)
                && hosts.iter().all(|host| grant.hosts.contains(host))
                && grant_allows(&grant.policy, action, parsed, resolver)
        })
    }
}

fn grant_allows(
    policy: &Policy,
    action: &ActionRef<'_>,
    parsed: Option<&ParsedCommand>,
    resolver: &dyn PathResolver,
) -> bool {
    let evaluation = match parsed {
        Some(parsed) => policy.evaluate_parsed(action, parsed, resolver),
        None => policy.evaluate_with(action, resolver),
    };
    evaluation.effect == Effect::Allow && evaluation.confine.is_none()
}

/// Whether one grant's rules (compiled with [`compile_rules`]) allow this action on their own,
/// ignoring scope and expiry: what "the grant covers the action it was made from" and the
/// preview over past actions ask.
pub fn rules_allow(
    grant_policy: &Policy,
    policy: &Policy,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
) -> bool {
    let parsed = protect::shell_command(policy, action).map(shell::parse);
    grant_allows(grant_policy, action, parsed.as_ref(), resolver)
}

/// Why no grant is offered for (or may apply to) an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Ineligible {
    /// The rules did not pause it (an allow needs no grant).
    NotPaused { effect: Effect },
    /// A reject rule (or self-protection's reject) decided it.
    Rejected { rule_id: Option<String> },
    /// Gatehouse's self-protection paused or rejected it.
    SelfProtection { rule_id: Option<String> },
    /// It touches a secret (`@secrets`, `@project-secrets`).
    Secrets { rule_id: String },
    /// It writes or touches a file that runs by itself (`@persistence`, `@home-persistence`, `@hooks`).
    Persistence { rule_id: String },
    /// It connects to a host this deployment was never allowed to reach.
    NewHost { host: String },
    /// Part of it is not fully understood (an unknown option, a non-literal word, an unlisted
    /// environment variable, a program named by a path, arguments arriving at run time).
    NotUnderstood { reason: String },
    /// Part of it cannot be known statically, or its input is over the size cap.
    Opaque { reason: String },
    /// A simple command in it is allowed only confined: a grant cannot allow it unconfined.
    NeedsConfinement,
    /// Observe mode allows everything already.
    Observe,
}

impl Ineligible {
    /// One sentence for the person.
    pub fn message(&self) -> String {
        match self {
            Ineligible::NotPaused { effect } => {
                format!(
                    "the rules did not pause this action ({effect}): only a pause can become a grant"
                )
            }
            Ineligible::Rejected { rule_id } => format!(
                "a reject rule decided this action ({}): grants never override a reject",
                rule_id.as_deref().unwrap_or("the default")
            ),
            Ineligible::SelfProtection { rule_id } => format!(
                "Gatehouse's self-protection touched this action ({}): never granted",
                rule_id.as_deref().unwrap_or("builtin:protect")
            ),
            Ineligible::Secrets { rule_id } => {
                format!("the action touches a secret ({rule_id}): never granted")
            }
            Ineligible::Persistence { rule_id } => {
                format!("the action touches a file that runs by itself ({rule_id}): never granted")
            }
            Ineligible::NewHost { host } => format!(
                "the action connects to {host}, a host this deployment was never allowed to reach: approve it once first"
            ),
            Ineligible::NotUnderstood { reason } => {
                format!("not fully understood ({reason}): grants never allow it")
            }
            Ineligible::Opaque { reason } => {
                format!("not statically knowable ({reason}): never granted")
            }
            Ineligible::NeedsConfinement => {
                "part of the action is allowed only confined: a grant cannot allow it unconfined"
                    .into()
            }
            Ineligible::Observe => "the policy is in observe mode: nothing is paused".into(),
        }
    }
}

/// The secrets and persistence sets as pause rules, to see whether an action touches them
/// (writes or reads, by any tool and any simple command). Loaded once.
fn sensitive_policy() -> Option<&'static Policy> {
    static POLICY: OnceLock<Option<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            Policy::from_toml(
                r#"default = "allow"
[[rules]]
id = "@secrets"
effect = "pause"
path = { glob = ["@secrets", "@project-secrets"] }
[[rules]]
id = "@secrets-arg"
effect = "pause"
command = { arg = ["@secrets", "@project-secrets"] }
[[rules]]
id = "@persistence"
effect = "pause"
path = { glob = ["@persistence", "@home-persistence", "@hooks"] }
[[rules]]
id = "@persistence-write"
effect = "pause"
command = { writes = ["@persistence", "@home-persistence", "@hooks"] }
"#,
            )
            .ok()
        })
        .as_ref()
}

/// The verdict of the policy and self-protection, each apart, over one parse of the command.
struct Parts {
    parsed: Option<ParsedCommand>,
    policy: Evaluation,
    protection: Option<Evaluation>,
}

fn parts(
    policy: &Policy,
    protection: &SelfProtection,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
) -> Parts {
    let text = protect::shell_command(policy, action);
    let parsed = text
        .filter(|text| text.len() <= protect::MAX_PROTECTED_COMMAND_BYTES)
        .map(shell::parse);
    let evaluation = match &parsed {
        Some(parsed) => policy.evaluate_parsed(action, parsed, resolver),
        None => policy.evaluate_with(action, resolver),
    };
    let command = text.zip(parsed.as_ref());
    let protection = protection.check(action, command, resolver);
    Parts {
        parsed,
        policy: evaluation,
        protection,
    }
}

/// Whether a grant may allow this action at all (the rules and self-protection having decided
/// `combined`); `known_host` says whether the deployment was ever allowed to reach a host
/// (asked only when offering a grant; when applying one, the grant's own hosts decide).
fn eligible(
    policy: &Policy,
    parts: &Parts,
    combined: &Evaluation,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
    known_host: Option<&dyn Fn(&str) -> bool>,
) -> Result<Vec<String>, Ineligible> {
    if combined.observed.is_some() || (policy.is_observe() && combined.effect == Effect::Allow) {
        return Err(Ineligible::Observe);
    }
    let rule_id = combined.rule_id.as_deref().map(str::to_owned);
    match combined.effect {
        Effect::Pause => {}
        Effect::Reject => {
            if parts
                .protection
                .as_ref()
                .is_some_and(|p| p.effect == Effect::Reject)
            {
                return Err(Ineligible::SelfProtection { rule_id });
            }
            return Err(Ineligible::Rejected { rule_id });
        }
        effect => return Err(Ineligible::NotPaused { effect }),
    }
    if let Some(protection) = &parts.protection
        && protection.effect != Effect::Allow
    {
        return Err(Ineligible::SelfProtection {
            rule_id: protection.rule_id.as_deref().map(str::to_owned),
        });
    }
    if let Some(id) = combined.rule_id.as_deref()
        && id.starts_with("builtin:")
    {
        return Err(Ineligible::Opaque {
            reason: combined.reason.to_string(),
        });
    }
    if let Some(parsed) = &parts.parsed {
        if let Some(reason) = parsed.opaque.first() {
            return Err(Ineligible::Opaque {
                reason: reason.clone(),
            });
        }
        for command in &parsed.commands {
            if let Some(reason) = propose::not_understood(command) {
                return Err(Ineligible::NotUnderstood { reason });
            }
            let alone = ParsedCommand {
                commands: vec![command.clone()],
                opaque: Vec::new(),
            };
            let verdict = policy.evaluate_parsed(action, &alone, resolver);
            if verdict.effect == Effect::Reject {
                return Err(Ineligible::Rejected {
                    rule_id: verdict.rule_id.as_deref().map(str::to_owned),
                });
            }
            if verdict.confine.is_some() {
                return Err(Ineligible::NeedsConfinement);
            }
        }
    }
    match sensitive_policy() {
        Some(sensitive) => {
            let verdict = match &parts.parsed {
                Some(parsed) => sensitive.evaluate_parsed(action, parsed, resolver),
                None => sensitive.evaluate_with(action, resolver),
            };
            if verdict.effect != Effect::Allow {
                let rule_id = verdict.rule_id.as_deref().unwrap_or("@secrets").to_owned();
                return Err(if rule_id.starts_with("@persistence") {
                    Ineligible::Persistence { rule_id }
                } else if rule_id.starts_with("@secrets") {
                    Ineligible::Secrets { rule_id }
                } else {
                    Ineligible::Opaque {
                        reason: verdict.reason.to_string(),
                    }
                });
            }
        }
        // The sets did not load: nothing can be shown not to touch them.
        None => {
            return Err(Ineligible::Secrets {
                rule_id: "@secrets (the sets did not load)".into(),
            });
        }
    }
    let hosts = crate::network::hosts_of_input(action.input);
    if let Some(known_host) = known_host
        && let Some(host) = hosts.iter().find(|host| !known_host(host))
    {
        return Err(Ineligible::NewHost { host: host.clone() });
    }
    Ok(hosts)
}

/// Whether no grant can ever be offered for this action, and why; `Ok` with the hosts it
/// reaches when one can.
pub fn eligibility(
    policy: &Policy,
    protection: &SelfProtection,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
    known_host: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, Ineligible> {
    let parts = parts(policy, protection, action, resolver);
    let combined = protect::combine(parts.policy.clone(), parts.protection.clone());
    eligible(
        policy,
        &parts,
        &combined,
        action,
        resolver,
        Some(known_host),
    )
}

/// Tier 1 with grants, as the daemon runs it: [`protect::evaluate`]'s verdict, then, for a pause
/// a grant may turn into an allow, the first grant in force that allows the action. The
/// returned evaluation names the grant (`rule_id` `grant:ID`).
pub fn evaluate(
    policy: &Policy,
    protection: &SelfProtection,
    grants: &GrantSet,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
    now_ms: i64,
) -> Evaluation {
    if grants.is_empty() {
        return protect::evaluate(policy, protection, action, resolver);
    }
    let parts = parts(policy, protection, action, resolver);
    let combined = protect::combine(parts.policy.clone(), parts.protection.clone());
    if combined.effect != Effect::Pause || combined.observed.is_some() {
        return combined;
    }
    let Ok(hosts) = eligible(policy, &parts, &combined, action, resolver, None) else {
        return combined;
    };
    match grants.allowing(action, parts.parsed.as_ref(), &hosts, resolver, now_ms) {
        Some(grant) => Evaluation {
            effect: Effect::Allow,
            rule_id: Some(format!("grant:{}", grant.id).into()),
            reason: format!(
                "allowed by standing grant {} (the rules paused it: {})",
                grant.id, combined.reason
            )
            .into(),
            observed: None,
            confine: None,
        },
        None => combined,
    }
}

/// The grant id an evaluation's `rule_id` names, if a grant decided it.
pub fn granted_by(rule_id: Option<&str>) -> Option<&str> {
    rule_id?.strip_prefix("grant:")
}
