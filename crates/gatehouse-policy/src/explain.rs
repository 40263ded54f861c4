//! `policy explain`: every rule considered for one action, whether it matched and, if not, the
//! first condition that failed; the parsed command tree; and the verdict.
//!
//! *Invariant*: the verdict is [`Policy::evaluate_with`]'s own, computed by the same call; the
//! rule listing re-runs the same per-rule checks the hot path uses (`whole_check`,
//! `command_check`), only without stopping at the first match.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::command::{Context, PathResolver};
use crate::effect::Effect;
use crate::grammar::Access;
use crate::network::endpoints_of_command;
use crate::policy::{ActionRef, Condition, Facts, Failed, Policy, Rule, Subject};
use crate::shell::{SimpleCommand, WordKind};

/// What `policy explain` shows about one action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub tool: String,
    /// `enforce` or `observe`.
    pub mode: &'static str,
    /// Whether the tool is one of the policy's shell tools.
    pub shell_tool: bool,
    /// Whether the input is over `max_input_bytes` (its commands are then not parsed).
    pub too_long: bool,
    /// Each command text the rules read, parsed.
    pub command_lines: Vec<ExplainedLine>,
    /// Every rule that was a candidate, in precedence order per scope.
    pub rules: Vec<RuleTrace>,
    pub verdict: ExplainedVerdict,
}

/// One parsed command text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedLine {
    /// Where the text is in the input, e.g. `/command`.
    pub pointer: String,
    /// Why the line cannot be known statically; empty when it can.
    pub opaque: Vec<String>,
    pub commands: Vec<ExplainedCommand>,
}

/// One simple command after normalisation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedCommand {
    pub program: String,
    /// The words after the program: flags in canonical spelling, `=VALUE` for an option's value,
    /// `<dynamic>` for a word not known statically.
    pub args: Vec<String>,
    /// `>FILE`, `<FILE`, `<>FILE`.
    pub redirects: Vec<String>,
    pub is_static: bool,
    pub trusted_path: bool,
    pub args_from_input: bool,
    /// Where it connects to (`url`/`host` rules), e.g. `https://github.com`.
    pub endpoints: Vec<String>,
    /// The option grammar that read it (`git commit`), if any.
    pub grammar: Option<String>,
    /// Why no allow rule applies to it (the word, option or setting that stopped it).
    pub not_understood: Option<String>,
    /// The files it names, as `read:PATH`, `write:PATH`, `cwd:PATH`, `code:PATH`.
    pub paths: Vec<String>,
    /// The directory an earlier `cd` moved it to, if any.
    pub cwd: Option<String>,
    /// Environment variables the line gives it.
    pub env: Vec<String>,
}

/// One rule considered in one scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleTrace {
    pub rule_id: String,
    pub effect: Effect,
    pub priority: i64,
    /// `action` (the whole action) or `command N` (the N-th simple command, 1-based, of the
    /// listing in `command_lines`).
    pub scope: String,
    pub matched: bool,
    /// Why it did not match: the first condition that failed.
    pub failed: Option<String>,
}

/// The verdict, as [`Policy::evaluate_with`] gives it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedVerdict {
    pub effect: Effect,
    pub rule_id: Option<String>,
    pub reason: String,
    pub observed: Option<Effect>,
    /// With an allow by a rule with `confine`: the sandbox profile it runs in, and the verdict
    /// a client that cannot confine it gets instead (docs/SANDBOX.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confine: Option<ExplainedConfine>,
}

/// The confinement an allow requires.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedConfine {
    pub profile: String,
    pub fallback: Effect,
}

impl Policy {
    /// Explains how the policy decides one action: see [`Explanation`]. Its verdict is exactly
    /// what [`Policy::evaluate_with`] returns for the same action and resolver.
    pub fn explain(&self, action: &ActionRef<'_>, resolver: &dyn PathResolver) -> Explanation {
        let evaluation = self.evaluate_with(action, resolver);
        let tool_hits = self.tools.rules_matching(action.tool);
        let is_shell = self.shell.tools.matches(action.tool);
        let too_long = crate::policy::input_exceeds(action.input, self.max_input_bytes);
        let mut sets = self.new_set_hits();
        let subject = Subject {
            action,
            is_shell,
            tool_hits: &tool_hits,
            cx: Context::new(action.cwd, resolver),
        };
        let mut rules = Vec::new();
        let mut facts = Facts::default();
        for i in self.whole_candidates(&tool_hits, is_shell) {
            let Some(rule) = self.rules.get(i) else {
                continue;
            };
            let result = self.whole_check(rule, action, &mut sets, &subject.cx, &mut facts);
            rules.push(trace(rule, "action".to_owned(), result, action, is_shell));
        }
        let mut command_lines = Vec::new();
        if !too_long {
            let mut number = 0;
            for (pointer, parsed) in self.command_texts(action, is_shell, &tool_hits, None) {
                let pointer_text = pointer.unwrap_or(&self.shell.pointer).text.to_string();
                let mut commands = Vec::new();
                for command in &parsed.commands {
                    number += 1;
                    let mut facts = Facts::default();
                    for i in self.command_candidates(command, pointer, is_shell, &tool_hits) {
                        let Some(rule) = self.rules.get(i) else {
                            continue;
                        };
                        let result = self
                            .command_check(rule, command, pointer, &subject, &mut sets, &mut facts);
                        let mut traced =
                            trace(rule, format!("command {number}"), result, action, is_shell);
                        if result == Err(Failed::Key("understood"))
                            && let Some(problem) = command.not_understood()
                        {
                            traced.failed = Some(format!("not fully understood: {problem}"));
                        }
                        rules.push(traced);
                    }
                    commands.push(explain_command(command));
                }
                command_lines.push(ExplainedLine {
                    pointer: pointer_text,
                    opaque: parsed.opaque.clone(),
                    commands,
                });
            }
        }
        Explanation {
            tool: action.tool.to_owned(),
            mode: if self.is_observe() {
                "observe"
            } else {
                "enforce"
            },
            shell_tool: is_shell,
            too_long,
            command_lines,
            rules,
            verdict: ExplainedVerdict {
                effect: evaluation.effect,
                rule_id: evaluation.rule_id.as_deref().map(str::to_owned),
                reason: evaluation.reason.to_string(),
                observed: evaluation.observed,
                confine: evaluation
                    .confine
                    .as_ref()
                    .filter(|_| evaluation.effect == Effect::Allow)
                    .map(|c| ExplainedConfine {
                        profile: c.profile.to_string(),
                        fallback: c.fallback,
                    }),
            },
        }
    }
}

fn trace(
    rule: &Rule,
    scope: String,
    result: Result<(), Failed>,
    action: &ActionRef<'_>,
    is_shell: bool,
) -> RuleTrace {
    RuleTrace {
        rule_id: rule.id.to_string(),
        effect: rule.effect,
        priority: rule.priority,
        scope,
        matched: result.is_ok(),
        failed: result
            .err()
            .map(|failed| describe_failure(rule, failed, action, is_shell)),
    }
}

fn describe_failure(rule: &Rule, failed: Failed, action: &ActionRef<'_>, is_shell: bool) -> String {
    match failed {
        Failed::Condition(index) => match rule.conditions.get(index) {
            Some(Condition::Session(_)) => match action.session_id {
                Some(id) => format!("session: `{id}` is not one the rule names"),
                None => "session: the action has no session id".to_owned(),
            },
            Some(Condition::Agent(_)) => match action.agent {
                Some(agent) => format!("agent: `{agent}` is not one the rule names"),
                None => "agent: the action names no agent".to_owned(),
            },
            Some(Condition::Arg(matcher))
            | Some(Condition::ArgSet {
                fallback: matcher, ..
            }) => {
                let found = match matcher.pointer.resolve(action.input) {
                    None => "absent".to_owned(),
                    Some(value) => summary(value),
                };
                format!(
                    "args {}: {found} fails `{}`",
                    matcher.pointer.text,
                    matcher.test.describe()
                )
            }
            None => "a condition failed".to_owned(),
        },
        Failed::Key("tool") if !rule.tool_filtered && !is_shell => {
            "tool: not a shell tool (the rule reads shell commands)".to_owned()
        }
        Failed::Key("tool") => format!("tool: `{}` is not one the rule names", action.tool),
        Failed::Key("text") => "reads another command text (its own `command.pointer`)".to_owned(),
        Failed::Key("allow") => {
            "allow rules need a static command run from a trusted path, without run-time arguments"
                .to_owned()
        }
        Failed::Key("path") => "path: no path to judge".to_owned(),
        Failed::Key("path.glob") if rule.effect == Effect::Allow => {
            "path.glob: not every path matches as written (or one could not be resolved)".to_owned()
        }
        Failed::Key("path.glob") => "path.glob: no path matches".to_owned(),
        Failed::Key("path.within") => {
            "path.within: a path is outside the roots (or unknown, or could not be resolved)"
                .to_owned()
        }
        Failed::Key("path.outside") => "path.outside: every path is inside the roots".to_owned(),
        Failed::Key("url") if rule.effect == Effect::Allow => {
            "url: no endpoint, or not every endpoint matches".to_owned()
        }
        Failed::Key("url") => "url: no endpoint matches".to_owned(),
        Failed::Key(key) => format!("command.{key} does not hold"),
    }
}

/// A short rendering of a JSON value for a failure message.
fn summary(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn explain_command(command: &SimpleCommand) -> ExplainedCommand {
    let word = |text: Option<&str>| text.unwrap_or("<dynamic>").to_owned();
    ExplainedCommand {
        program: command.program.clone(),
        args: command
            .words
            .iter()
            .map(|w| match w.kind {
                WordKind::Value => format!("={}", word(w.text.as_deref())),
                _ => word(w.text.as_deref()),
            })
            .collect(),
        redirects: command
            .redirects
            .iter()
            .map(|r| {
                let arrow = match (r.read, r.write) {
                    (true, true) => "<>",
                    (true, false) => "<",
                    _ => ">",
                };
                format!("{arrow}{}", word(r.target.as_deref()))
            })
            .collect(),
        is_static: command.is_static,
        trusted_path: command.trusted_path,
        args_from_input: command.args_from_input,
        endpoints: endpoints_of_command(command)
            .iter()
            .map(|e| e.describe())
            .collect(),
        grammar: command.analysis.grammar.clone(),
        not_understood: command.not_understood().map(str::to_owned),
        paths: command
            .analysis
            .paths
            .iter()
            .map(|p| {
                let access = match p.access {
                    Access::Read => "read",
                    Access::Write => "write",
                    Access::Cwd => "cwd",
                    Access::Code => "code",
                };
                format!("{access}:{}", p.path)
            })
            .collect(),
        cwd: command.cwd.clone(),
        env: command.env.clone(),
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tool {}{} (mode {})",
            self.tool,
            if self.shell_tool {
                ", a shell tool"
            } else {
                ""
            },
            self.mode
        )?;
        if self.too_long {
            writeln!(f, "input over the size cap: commands not parsed")?;
        }
        let mut number = 0;
        for line in &self.command_lines {
            writeln!(f, "command text at {}:", line.pointer)?;
            for why in &line.opaque {
                writeln!(f, "  opaque: {why}")?;
            }
            for command in &line.commands {
                number += 1;
                let mut notes = Vec::new();
                if !command.is_static {
                    notes.push("not static");
                }
                if !command.trusted_path {
                    notes.push("untrusted path");
                }
                if command.args_from_input {
                    notes.push("arguments at run time");
                }
                write!(f, "  {number}. {}", command.program)?;
                for arg in &command.args {
                    write!(f, " {arg}")?;
                }
                for redirect in &command.redirects {
                    write!(f, " {redirect}")?;
                }
                if !command.endpoints.is_empty() {
                    write!(f, "  -> {}", command.endpoints.join(", "))?;
                }
                if !notes.is_empty() {
                    write!(f, "  [{}]", notes.join(", "))?;
                }
                writeln!(f)?;
                if let Some(cwd) = &command.cwd {
                    writeln!(f, "       runs in: {cwd}")?;
                }
                if !command.paths.is_empty() {
                    writeln!(f, "       paths: {}", command.paths.join(", "))?;
                }
                if let Some(why) = &command.not_understood {
                    writeln!(
                        f,
                        "       not fully understood (no allow rule applies): {why}"
                    )?;
                }
            }
        }
        writeln!(f, "rules considered:")?;
        if self.rules.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for rule in &self.rules {
            let priority = if rule.priority == 0 {
                String::new()
            } else {
                format!(" priority {}", rule.priority)
            };
            match &rule.failed {
                None => writeln!(
                    f,
                    "  [{}] {} ({}{priority}): MATCHED",
                    rule.scope, rule.rule_id, rule.effect
                )?,
                Some(why) => writeln!(
                    f,
                    "  [{}] {} ({}{priority}): no, {why}",
                    rule.scope, rule.rule_id, rule.effect
                )?,
            }
        }
        let verdict = &self.verdict;
        write!(
            f,
            "verdict: {} by {}: {}",
            verdict.effect,
            verdict.rule_id.as_deref().unwrap_or("the default"),
            verdict.reason
        )?;
        if let Some(observed) = verdict.observed {
            write!(f, " (observe mode; would {observed})")?;
        }
        if let Some(confine) = &verdict.confine {
            write!(
                f,
                "\nconfined: runs only inside sandbox profile {} (a client that cannot confine it gets {})",
                confine.profile, confine.fallback
            )?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::command::NoResolver;

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("object expected, got {other}"),
        }
    }

    #[test]
    fn lists_candidates_with_the_first_failed_condition() {
        let policy = Policy::from_toml(
            r#"
            [[rules]]
            id = "no-force"
            effect = "reject"
            command = { program = "git", args_prefix = ["push"], has_flag = ["--force"] }

            [[rules]]
            id = "git-ok"
            effect = "allow"
            command = { program = "git", args_prefix = ["{status,push}"] }

            [[rules]]
            id = "big-payments"
            effect = "pause"
            tool = "pay"
            [[rules.args]]
            pointer = "/amount"
            gt = 500
            "#,
        )
        .unwrap();
        let command = input(json!({"command": "git push origin main && ls"}));
        let mut action = ActionRef::new("Bash", &command);
        action.cwd = Some("/w");
        let explanation = policy.explain(&action, &NoResolver);
        let traces: Vec<(&str, &str, bool, Option<&str>)> = explanation
            .rules
            .iter()
            .map(|r| {
                (
                    r.scope.as_str(),
                    r.rule_id.as_str(),
                    r.matched,
                    r.failed.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            traces,
            vec![
                (
                    "command 1",
                    "no-force",
                    false,
                    Some("command.has_flag does not hold")
                ),
                (
                    "command 1",
                    "git-ok",
                    false,
                    Some(
                        "not fully understood: `git push` reaches the network or decides where a connection goes"
                    )
                ),
            ]
        );
        assert_eq!(explanation.command_lines.len(), 1);
        let programs: Vec<&str> = explanation.command_lines[0]
            .commands
            .iter()
            .map(|c| c.program.as_str())
            .collect();
        assert_eq!(programs, ["git", "ls"]);
        assert_eq!(explanation.verdict.effect, Effect::Pause); // `ls` matched nothing
        assert_eq!(explanation.verdict.rule_id, None);

        let payment = input(json!({"amount": 120}));
        let explanation = policy.explain(&ActionRef::new("pay", &payment), &NoResolver);
        assert_eq!(
            explanation.rules[0].failed.as_deref(),
            Some("args /amount: 120 fails `gt 500`")
        );
        let text = explanation.to_string();
        assert!(
            text.contains("[action] big-payments (pause): no, args /amount"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "verdict: pause by the default: no rule matched; policy default is pause\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_allow_that_must_run_confined_names_its_profile_and_fallback() {
        let policy = Policy::from_toml(
            r#"
            [[rules]]
            id = "cargo-confined"
            effect = "allow"
            command = { program = "cargo", args_within = ["$CWD"] }
            confine = "build"
            confine_fallback = "reject"
            "#,
        )
        .unwrap();
        let command = input(json!({"command": "cargo test"}));
        let mut action = ActionRef::new("Bash", &command);
        action.cwd = Some("/w");
        let explanation = policy.explain(&action, &NoResolver);
        assert_eq!(explanation.verdict.effect, Effect::Allow);
        assert_eq!(
            explanation.verdict.confine,
            Some(ExplainedConfine {
                profile: "build".into(),
                fallback: Effect::Reject
            })
        );
        let text = explanation.to_string();
        assert!(
            text.contains("confined: runs only inside sandbox profile build (a client that cannot confine it gets reject)"),
            "{text}"
        );
        let json = serde_json::to_value(&explanation).unwrap();
        assert_eq!(json["verdict"]["confine"]["profile"], "build");

        let ls = input(json!({"command": "ls"}));
        let explanation = policy.explain(&ActionRef::new("Bash", &ls), &NoResolver);
        assert_eq!(explanation.verdict.confine, None);
    }
}
