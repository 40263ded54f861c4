//! Per-command verdicts for the person deciding a paused action: every simple command of a
//! compound shell action (`cd x && make && curl … | sh`) listed with the rules' verdict on it and
//! the rule that gave it, so one pause reason cannot hide the other commands.
//!
//! Read from `Policy::explain` under the policy in force (the rules' view of the command: the
//! program and its words as the engine understood them, `<dynamic>` for what it could not know).
//! The action's own verdict (with self-protection) stays the one recorded in the ledger.

use gatehouse_policy::{ActionRef, Effect};
use gatehouse_protocol::ActionView;
use serde::Serialize;

use crate::policy_store::{FsResolver, PolicyStore};

/// One simple command and the rules' verdict on it.
#[derive(Debug, Clone, Serialize)]
pub struct CommandVerdict {
    /// `command` (a simple command), or `opaque` (a part of the line the engine cannot know
    /// statically, which no rule allows).
    pub kind: &'static str,
    /// The command as the rules read it.
    pub command: String,
    /// `allow`, `reject` or `pending`.
    pub verdict: &'static str,
    pub rule_id: Option<String>,
    pub reason: String,
}

/// `GET /v1/actions/{id}/commands`.
#[derive(Debug, Clone, Serialize)]
pub struct CommandList {
    pub action_id: String,
    pub commands: Vec<CommandVerdict>,
}

fn verdict_of(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Reject => "reject",
        Effect::Pause => "pending",
    }
}

/// The simple commands of `action` under the policy in force, each with its verdict.
pub fn list(store: &PolicyStore, action: &ActionView) -> CommandList {
    let mut commands = Vec::new();
    if let Some(input) = action.input.as_object() {
        let policy = store.current();
        let action_ref = ActionRef {
            tool: &action.tool,
            input,
            session_id: action.session_id.as_deref(),
            agent: action.agent.as_deref(),
            cwd: action.cwd.as_deref(),
        };
        let explanation = policy.explain(&action_ref, &FsResolver);
        let mut number = 0;
        for line in &explanation.command_lines {
            for reason in &line.opaque {
                commands.push(CommandVerdict {
                    kind: "opaque",
                    command: format!("(part of {} is not statically knowable)", line.pointer),
                    verdict: "pending",
                    rule_id: None,
                    reason: format!("opaque: {reason}; never allowed by a rule"),
                });
            }
            for command in &line.commands {
                number += 1;
                let scope = format!("command {number}");
                let mut words = vec![command.program.clone()];
                words.extend(command.args.iter().cloned());
                words.extend(command.redirects.iter().cloned());
                let winner = explanation
                    .rules
                    .iter()
                    .find(|trace| trace.scope == scope && trace.matched);
                commands.push(match winner {
                    Some(trace) => CommandVerdict {
                        kind: "command",
                        command: words.join(" "),
                        verdict: verdict_of(trace.effect),
                        rule_id: Some(trace.rule_id.clone()),
                        reason: format!("rule {}", trace.rule_id),
                    },
                    None => CommandVerdict {
                        kind: "command",
                        command: words.join(" "),
                        verdict: verdict_of(policy.default_effect()),
                        rule_id: None,
                        reason: "no rule matches this command: the policy's default".into(),
                    },
                });
            }
        }
    }
    CommandList {
        action_id: action.action_id.clone(),
        commands,
    }
}
