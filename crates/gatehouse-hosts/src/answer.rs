//! What each host is told: a verdict mapped to the host's own answer (stdout, stderr, exit
//! status), the one deny every failure becomes, and the JSON body of Claude Code's HTTP hook.
//!
//! | verdict            | Claude Code                         | Codex CLI                         | Gemini CLI              | Cursor                            |
//! |--------------------|-------------------------------------|-----------------------------------|-------------------------|-----------------------------------|
//! | allow              | exit 0, no output (its own permission flow goes on) | exit 0, no output | exit 0, no output | `{"permission":"allow"}`          |
//! | allow + confine    | `permissionDecision: allow` + `updatedInput` | same                     | (cannot rewrite)        | `permission: allow` + `updated_input` |
//! | reject             | deny: `{"decision":"block","reason":R}`, R on stderr, exit 2 (all three) |  |  | `{"permission":"deny",...}`, exit 2 |
//! | pause → ask option | `permissionDecision: ask`           | (unsupported: waits)              | (waits)                 | `permission: ask`                 |
//!
//! *Invariant*: an answer is produced whole before anything is written, and written in one
//! write: a host that reads a truncated answer on exit 0 may run the tool.

use serde_json::{Map, Value, json};

use crate::Host;

/// Why an allow rewrites the input: confined by the sandbox, or edited by the person who
/// approved it (edit then approve).
const REWRITTEN_REASON: &str = "Gatehouse: allowed with a rewritten input (confined by the sandbox, or as edited by the person who approved it)";

/// The hook process's whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAnswer {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit_code: u8,
}

impl HostAnswer {
    /// Whether this answer lets the tool run (as far as Gatehouse is concerned).
    pub fn lets_run(&self) -> bool {
        self.exit_code == 0 && !self.is_ask()
    }

    fn is_ask(&self) -> bool {
        serde_json::from_slice::<Value>(&self.stdout).is_ok_and(|v| {
            v.pointer("/hookSpecificOutput/permissionDecision") == Some(&json!("ask"))
                || v.get("permission") == Some(&json!("ask"))
        })
    }
}

/// A deny reason as the model and the person will read it: one paragraph, no control
/// characters (a reason can quote an agent's input), at most 2 KiB.
pub fn clean_reason(reason: &str) -> String {
    let mut out: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 2048 {
        let mut cut = 2048;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// `host`'s explicit deny. For Claude Code, Codex and Gemini it is the one answer measured to
/// block in all three (stdout `{"decision":"block","reason":R}`, R on stderr, exit 2), so it
/// also holds when the payload could not even be read to know which event it was.
pub fn deny(host: Host, reason: &str) -> HostAnswer {
    let reason = format!("Gatehouse: {}", clean_reason(reason));
    let body = match host {
        Host::Cursor => json!({
            "permission": "deny",
            "user_message": reason,
            "agent_message": reason,
        }),
        Host::ClaudeCode | Host::Codex | Host::Gemini => json!({
            "decision": "block",
            "reason": reason,
        }),
    };
    HostAnswer {
        stdout: line(&body),
        stderr: format!("{reason}\n"),
        exit_code: 2,
    }
}

/// `host`'s allow. `updated_input` (a confined command) is sent only to hosts that take one;
/// without it, hosts that have a neutral answer get it, so their own permission flow goes on.
pub fn allow(host: Host, event: &str, updated_input: Option<Map<String, Value>>) -> HostAnswer {
    let stdout = match (host, updated_input) {
        (Host::ClaudeCode | Host::Codex, Some(input)) => line(&json!({
            "hookSpecificOutput": {
                "hookEventName": event,
                "permissionDecision": "allow",
                "permissionDecisionReason": REWRITTEN_REASON,
                "updatedInput": input,
            }
        })),
        (Host::Cursor, Some(input)) => line(&json!({
            "permission": "allow",
            "updated_input": input,
        })),
        (Host::Cursor, None) => line(&json!({ "permission": "allow" })),
        // Codex reports "allow" without updatedInput as a failed hook: say nothing.
        (Host::ClaudeCode | Host::Codex | Host::Gemini, _) => Vec::new(),
    };
    HostAnswer {
        stdout,
        stderr: String::new(),
        exit_code: 0,
    }
}

/// The host's own prompt for a paused call, where it has one (Claude Code `ask`, Cursor
/// `ask`); `None` for hosts without one.
pub fn ask(host: Host, event: &str, reason: &str) -> Option<HostAnswer> {
    let reason = format!("Gatehouse: {}", clean_reason(reason));
    let body = match host {
        Host::ClaudeCode => json!({
            "hookSpecificOutput": {
                "hookEventName": event,
                "permissionDecision": "ask",
                "permissionDecisionReason": reason,
            }
        }),
        Host::Cursor => json!({
            "permission": "ask",
            "user_message": reason,
            "agent_message": reason,
        }),
        Host::Codex | Host::Gemini => return None,
    };
    Some(HostAnswer {
        stdout: line(&body),
        stderr: String::new(),
        exit_code: 0,
    })
}

/// The answer to an outcome event (the tool already ran: nothing to decide).
pub fn outcome_recorded(host: Host, warning: Option<&str>) -> HostAnswer {
    HostAnswer {
        stdout: match host {
            Host::Cursor => line(&json!({})),
            _ => Vec::new(),
        },
        stderr: warning
            .map(|w| format!("Gatehouse: {}\n", clean_reason(w)))
            .unwrap_or_default(),
        exit_code: 0,
    }
}

/// Claude Code HTTP hook answers (no exit status: the body decides).
pub mod claude_http {
    use super::*;

    pub fn deny(reason: &str) -> Value {
        json!({
            "decision": "block",
            "reason": format!("Gatehouse: {}", clean_reason(reason)),
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": format!("Gatehouse: {}", clean_reason(reason)),
            }
        })
    }

    pub fn allow(updated_input: Option<Map<String, Value>>) -> Value {
        match updated_input {
            Some(input) => json!({
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "allow",
                    "permissionDecisionReason": REWRITTEN_REASON,
                    "updatedInput": input,
                }
            }),
            None => json!({}),
        }
    }

    pub fn ask(reason: &str) -> Value {
        json!({
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "ask",
                "permissionDecisionReason": format!("Gatehouse: {}", clean_reason(reason)),
            }
        })
    }
}

fn line(value: &Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deny_exits_2_with_the_reason_on_stderr_and_whole_json_on_stdout() {
        for host in Host::ALL {
            let answer = deny(host, "no\nway\u{1b}[31m");
            assert_eq!(answer.exit_code, 2);
            assert_eq!(answer.stderr, "Gatehouse: no way [31m\n");
            let body: Value = serde_json::from_slice(&answer.stdout).unwrap();
            match host {
                Host::Cursor => assert_eq!(body["permission"], "deny"),
                _ => assert_eq!(body["decision"], "block"),
            }
            assert!(!answer.lets_run());
        }
    }

    #[test]
    fn allow_is_silent_unless_the_host_needs_json_or_a_rewrite() {
        assert!(allow(Host::Codex, "PreToolUse", None).stdout.is_empty());
        assert!(
            allow(Host::ClaudeCode, "PreToolUse", None)
                .stdout
                .is_empty()
        );
        let cursor: Value =
            serde_json::from_slice(&allow(Host::Cursor, "preToolUse", None).stdout).unwrap();
        assert_eq!(cursor, json!({"permission": "allow"}));
        let mut input = Map::new();
        input.insert("command".into(), json!("confined"));
        let codex: Value =
            serde_json::from_slice(&allow(Host::Codex, "PreToolUse", Some(input)).stdout).unwrap();
        assert_eq!(
            codex["hookSpecificOutput"]["updatedInput"]["command"],
            "confined"
        );
    }

    #[test]
    fn ask_exists_only_where_the_host_has_a_prompt() {
        assert!(ask(Host::Codex, "PreToolUse", "r").is_none());
        assert!(ask(Host::Gemini, "BeforeTool", "r").is_none());
        let claude = ask(Host::ClaudeCode, "PreToolUse", "r").unwrap();
        assert!(!claude.lets_run());
    }
}
