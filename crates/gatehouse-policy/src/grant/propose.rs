//! The narrowest grant covering one paused action, in the engine's own terms: for a shell
//! command, each simple command's program, subcommand, the options it carried and its path
//! arguments (inside the project, or the exact paths) and hosts; for a file tool, the exact
//! paths; for a network tool, the hosts; for any other tool (MCP...), each argument's value.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::command::{PathResolver, lexical};
use crate::network::{Host, endpoints_of_command};
use crate::paths::{PathField, file_tool_fields};
use crate::policy::{ActionRef, Policy};
use crate::protect::SelfProtection;
use crate::shell::{SimpleCommand, WordKind};

use super::{GrantScope, Ineligible, eligibility, rules_toml};

/// A grant offered for one paused action, for the person to edit and save.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// Allow rules as JSON objects (policy-file keys).
    pub rules: Vec<Map<String, Value>>,
    /// The same rules as a policy file would hold them.
    pub toml: String,
    /// The hosts the action reaches (a grant allows no other).
    pub hosts: Vec<String>,
    /// The scopes that make sense for this action, narrowest first.
    pub scopes: Vec<GrantScope>,
}

/// Longest argument value a proposal matches by `equals`; longer ones are matched by `exists`.
const MAX_EQUALS_BYTES: usize = 256;

/// The narrowest grant covering `action`, or why none is offered.
pub fn propose(
    policy: &Policy,
    protection: &SelfProtection,
    action: &ActionRef<'_>,
    resolver: &dyn PathResolver,
    known_host: &dyn Fn(&str) -> bool,
) -> Result<Proposal, Ineligible> {
    let hosts = eligibility(policy, protection, action, resolver, known_host)?;
    let mut rules: Vec<Map<String, Value>> = Vec::new();
    let command_text = crate::protect::shell_command(policy, action)
        .filter(|_| policy.shell.tools.matches(action.tool));
    if let Some(text) = command_text {
        let parsed = crate::shell::parse(text);
        for command in &parsed.commands {
            let rule = command_rule(action, command);
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    } else {
        rules.push(tool_rule(action, &hosts));
    }
    if rules.is_empty() {
        return Err(Ineligible::Opaque {
            reason: "the command runs nothing a rule can name".into(),
        });
    }
    let toml = rules_toml("grant", &rules).map_err(|err| Ineligible::Opaque {
        reason: err.to_string(),
    })?;
    let mut scopes = Vec::new();
    if let Some(session_id) = action.session_id {
        scopes.push(GrantScope::Session {
            session_id: session_id.to_owned(),
        });
    }
    if let Some(cwd) = action.cwd.filter(|cwd| cwd.starts_with('/')) {
        scopes.push(GrantScope::Project {
            root: cwd.to_owned(),
        });
    }
    scopes.push(GrantScope::Everywhere);
    Ok(Proposal {
        rules,
        toml,
        hosts,
        scopes,
    })
}

/// Why an allow rule would not apply to this simple command (the positive model), if so.
pub(super) fn not_understood(command: &SimpleCommand) -> Option<String> {
    if !command.is_static {
        return Some(format!(
            "`{}` has a word that is not literal",
            command.program
        ));
    }
    if !command.trusted_path {
        return Some(format!(
            "`{}` is named by a path outside the system directories",
            command.program
        ));
    }
    if command.args_from_input {
        return Some(format!("`{}` takes arguments at run time", command.program));
    }
    command.not_understood().map(str::to_owned)
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Domain(domain) => domain.clone(),
        Host::Ip(ip) => ip.to_string(),
    }
}

/// One simple command: its program, subcommand, options, paths and hosts.
fn command_rule(action: &ActionRef<'_>, command: &SimpleCommand) -> Map<String, Value> {
    let mut condition = Map::new();
    condition.insert("program".into(), json!(command.program));
    // The grammar's name is the program and its subcommands (`git fetch`, `cargo publish`).
    let subcommands: Vec<&str> = command
        .analysis
        .grammar
        .as_deref()
        .map(|name| name.split_whitespace().skip(1).collect())
        .unwrap_or_default();
    let prefix: Vec<String> = command
        .positionals()
        .zip(&subcommands)
        .filter_map(|(word, sub)| word.text.as_deref().filter(|text| text == sub))
        .map(glob_literal)
        .collect();
    if !prefix.is_empty() {
        condition.insert("args_prefix".into(), json!(prefix));
    }
    let mut flags: Vec<String> = Vec::new();
    for word in &command.words {
        if word.kind == WordKind::Flag
            && let Some(text) = &word.text
            && !flags.contains(text)
        {
            flags.push(text.clone());
        }
    }
    if !flags.is_empty() {
        condition.insert("has_all_flags".into(), json!(flags));
    }
    let cwd = match (&command.cwd, action.cwd) {
        (Some(own), Some(base)) => Some(lexical(own, Some(base))),
        (Some(own), None) => Some(own.clone()),
        (None, base) => base.map(str::to_owned),
    };
    let paths: Vec<String> = command
        .analysis
        .paths
        .iter()
        .map(|path| lexical(&path.path, cwd.as_deref()))
        .collect();
    let mut rule = Map::new();
    rule.insert("tool".into(), json!(action.tool));
    if !paths.is_empty() {
        let inside = action.cwd.is_some_and(|root| {
            paths
                .iter()
                .all(|path| super::within(path, root) && !path.contains(".."))
        });
        if inside {
            condition.insert("args_within".into(), json!("$CWD"));
        } else {
            let globs: Vec<String> = paths.iter().map(|p| glob_literal(p)).collect();
            rule.insert("path".into(), json!({ "glob": globs }));
        }
    }
    rule.insert("command".into(), Value::Object(condition));
    let hosts: Vec<String> = endpoints_of_command(command)
        .iter()
        .filter_map(|endpoint| endpoint.host.as_ref().map(host_text))
        .fold(Vec::new(), |mut hosts, host| {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
            hosts
        });
    if !hosts.is_empty() {
        rule.insert("host".into(), json!(hosts));
    }
    rule
}

/// A tool call that is not a shell command.
fn tool_rule(action: &ActionRef<'_>, hosts: &[String]) -> Map<String, Value> {
    let mut rule = Map::new();
    rule.insert("tool".into(), json!(glob_literal(action.tool)));
    if let Some(fields) = file_tool_fields(action.tool) {
        let mut globs = Vec::new();
        for field in fields {
            let PathField::Path(pointer) = field else {
                continue;
            };
            let name = pointer.trim_start_matches('/');
            let values: Vec<&str> = match action.input.get(name) {
                Some(Value::String(text)) => vec![text.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for value in values {
                globs.push(glob_literal(&lexical(value, action.cwd)));
            }
        }
        if !globs.is_empty() {
            rule.insert("path".into(), json!({ "glob": globs }));
            return rule;
        }
    }
    if !hosts.is_empty() {
        rule.insert("url".into(), json!({ "host": hosts }));
        return rule;
    }
    let mut args = Vec::new();
    for (key, value) in action.input {
        let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
        let test = match value {
            Value::Null => continue,
            Value::String(text) if text.len() > MAX_EQUALS_BYTES => json!({ "exists": true }),
            Value::Bool(_) | Value::Number(_) | Value::String(_) => json!({ "equals": value }),
            Value::Array(_) | Value::Object(_) => json!({ "exists": true }),
        };
        let mut matcher = Map::new();
        matcher.insert("pointer".into(), json!(pointer));
        if let Value::Object(test) = test {
            matcher.extend(test);
        }
        args.push(Value::Object(matcher));
    }
    if !args.is_empty() {
        rule.insert("args".into(), Value::Array(args));
    }
    rule
}

/// `text` as a glob that matches only itself.
fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
