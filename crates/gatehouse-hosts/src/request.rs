//! From a host's event to Gatehouse's API and back: the `POST /v1/check` body for a tool call,
//! the `POST /v1/outcomes` body for an outcome, and what a check's answer means for the host
//! (`Mapped`). Shared by the hook command and the daemon's HTTP hook endpoint, so both map a
//! verdict the same way.

use gatehouse_protocol::{CheckRequest, CheckResponse, OutcomeRequest, Verdict};
use serde_json::{Map, Value, json};

use crate::answer;
use crate::confine;
use crate::event::{ToolCall, ToolOutcome};

/// Whether this build's check API has `can_confine` (the sandbox's confinement): probed on the
/// protocol type itself, so a request never carries a field the daemon would refuse.
pub fn protocol_has_confine() -> bool {
    serde_json::from_value::<CheckRequest>(json!({"tool": "t", "input": {}, "can_confine": true}))
        .is_ok()
}

/// The check for `call`, as JSON (only fields this build's protocol knows).
/// `pause_to_host`: a pause will be handed to the host's own prompt (recorded in the context).
pub fn check_body(call: &ToolCall, wait_ms: u64, pause_to_host: bool) -> Result<Value, String> {
    let mut context = call.context.clone();
    context.insert("hook_event".into(), Value::String(call.event.clone()));
    if call.tool_use_id_derived {
        context.insert("tool_use_id_derived".into(), Value::Bool(true));
    }
    if pause_to_host {
        context.insert("pause_maps_to".into(), Value::String("host_ask".into()));
    }
    let mut body = Map::new();
    body.insert("tool".into(), Value::String(call.tool.clone()));
    body.insert("input".into(), Value::Object(call.input.clone()));
    if let Some(session) = &call.session_id {
        body.insert("session_id".into(), Value::String(session.clone()));
    }
    body.insert("agent".into(), Value::String(call.host.as_str().to_owned()));
    body.insert(
        "tool_use_id".into(),
        Value::String(call.tool_use_id.clone()),
    );
    if let Some(cwd) = &call.cwd {
        body.insert("cwd".into(), Value::String(cwd.clone()));
    }
    body.insert("context".into(), Value::Object(context));
    body.insert("wait_ms".into(), json!(wait_ms));
    if call.host.can_rewrite_input()
        && call.rewritable_shell_field.is_some()
        && protocol_has_confine()
    {
        body.insert("can_confine".into(), Value::Bool(true));
    }
    let body = Value::Object(body);
    serde_json::from_value::<CheckRequest>(body.clone())
        .map_err(|err| format!("internal error building the check: {err}"))?;
    Ok(body)
}

/// The check for `call` as the protocol type (for in-process callers such as the daemon).
pub fn check_request(
    call: &ToolCall,
    wait_ms: u64,
    pause_to_host: bool,
) -> Result<CheckRequest, String> {
    serde_json::from_value(check_body(call, wait_ms, pause_to_host)?)
        .map_err(|err| format!("internal error building the check: {err}"))
}

/// The outcome report for `outcome`.
pub fn outcome_request(outcome: &ToolOutcome) -> OutcomeRequest {
    OutcomeRequest {
        tool: outcome.tool.clone(),
        session_id: outcome.session_id.clone(),
        tool_use_id: Some(outcome.tool_use_id.clone()),
        agent: Some(outcome.host.as_str().to_owned()),
        cwd: outcome.cwd.clone(),
        ran: outcome.ran,
        exit_code: outcome.exit_code,
        error: outcome.error.clone(),
        duration_ms: outcome.duration_ms,
        findings: outcome.findings.clone(),
    }
}

/// The confinement profile a check answer carries (`confine.profile`), read from its JSON.
pub fn confine_profile(body: &Value) -> Option<String> {
    body.get("confine")?
        .get("profile")?
        .as_str()
        .map(str::to_owned)
}

/// What a final check answer means for the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Let it run; with a rewritten (confined) input when the daemon asked for confinement.
    Allow(Option<Map<String, Value>>),
    Deny(String),
    /// Hand it to the host's own prompt (pause, with the option on, where the host has one).
    Ask(String),
}

/// Maps a check answer (with its confinement, if any) for `call`. `gatehouse` is the binary
/// the confined command runs (`gatehouse sandbox run`).
pub fn map_answer(
    call: &ToolCall,
    response: &CheckResponse,
    confine: Option<&str>,
    gatehouse: &str,
    pause_to_host: bool,
) -> Mapped {
    match response.verdict {
        Verdict::Allow if response.updated_input.is_some() => {
            edited(call, response, confine, gatehouse)
        }
        Verdict::Allow => match confine {
            None => Mapped::Allow(None),
            Some(profile) => match confine::rewrite_input(call, gatehouse, profile) {
                Ok(input) => Mapped::Allow(Some(input)),
                Err(err) => Mapped::Deny(format!(
                    "allowed only inside the sandbox profile `{profile}`, and {err}"
                )),
            },
        },
        Verdict::Reject
            if response
                .note
                .as_deref()
                .is_some_and(|n| !n.trim().is_empty()) =>
        {
            Mapped::Deny(format!(
                "a person denied this call (action {}) and says: {}. Do not retry it as it was; follow their guidance. ({})",
                response.action_id,
                response.note.as_deref().unwrap_or_default().trim(),
                response.reason
            ))
        }
        Verdict::Reject => Mapped::Deny(format!(
            "rejected ({}; action {}): {}",
            response.decided_by.as_str(),
            response.action_id,
            response.reason
        )),
        Verdict::Pending if pause_to_host && answer::ask(call.host, &call.event, "").is_some() => {
            Mapped::Ask(format!(
                "a person must decide this call (action {}): {}",
                response.action_id, response.reason
            ))
        }
        Verdict::Pending => Mapped::Deny(format!(
            "this call is paused for a person to decide (action {id}: {reason}). Approve it in the dashboard or with `gatehouse approve {id}`, then retry the same call.",
            id = response.action_id,
            reason = response.reason
        )),
    }
}

/// An allow of an input a person edited (edit then approve): hosts that let a hook rewrite the
/// input run the edited one (confined as well, if the answer says so); a host that cannot (Gemini
/// CLI) is told no, with the edited call to make instead — never the original.
fn edited(
    call: &ToolCall,
    response: &CheckResponse,
    confine: Option<&str>,
    gatehouse: &str,
) -> Mapped {
    let Some(input) = response.updated_input.clone() else {
        return Mapped::Deny("internal error: an edited allow without its input".into());
    };
    let note = response
        .note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(|n| format!(" They say: {}.", n.trim()))
        .unwrap_or_default();
    if !call.host.can_rewrite_input() {
        return Mapped::Deny(format!(
            "a person approved this call (action {}) only with an edited input, which {} cannot substitute: make this call instead: {} {}.{note}",
            response.action_id,
            call.host,
            call.tool,
            Value::Object(input)
        ));
    }
    match confine {
        None => Mapped::Allow(Some(input)),
        Some(profile) => {
            let edited_call = ToolCall {
                input,
                ..call.clone()
            };
            match confine::rewrite_input(&edited_call, gatehouse, profile) {
                Ok(input) => Mapped::Allow(Some(input)),
                Err(err) => Mapped::Deny(format!(
                    "the edited call is allowed only inside the sandbox profile `{profile}`, and {err}"
                )),
            }
        }
    }
}

/// The host's answer for a mapped check (command hooks).
pub fn host_answer(call: &ToolCall, mapped: Mapped) -> answer::HostAnswer {
    match mapped {
        Mapped::Allow(input) => answer::allow(call.host, &call.event, input),
        Mapped::Deny(reason) => answer::deny(call.host, &reason),
        Mapped::Ask(reason) => answer::ask(call.host, &call.event, &reason)
            .unwrap_or_else(|| answer::deny(call.host, &reason)),
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_protocol::DecidedBy;

    use super::*;
    use crate::Host;

    fn call(host: Host) -> ToolCall {
        let mut input = Map::new();
        input.insert("command".into(), json!("rm -rf build"));
        ToolCall {
            host,
            event: "PreToolUse".into(),
            tool: "Bash".into(),
            input,
            session_id: Some("s".into()),
            tool_use_id: "t".into(),
            tool_use_id_derived: false,
            cwd: Some("/w".into()),
            context: Map::new(),
            rewritable_shell_field: host.can_rewrite_input().then_some("command"),
        }
    }

    fn decided(verdict: Verdict, note: Option<&str>, edited: Option<&str>) -> CheckResponse {
        CheckResponse {
            action_id: "act_1".into(),
            verdict,
            decided_by: DecidedBy::Human,
            rule_id: None,
            reason: "denied by a person (paused: deletes files)".into(),
            tier2: None,
            confine: None,
            note: note.map(str::to_owned),
            updated_input: edited.map(|command| {
                let mut input = Map::new();
                input.insert("command".into(), json!(command));
                input
            }),
        }
    }

    #[test]
    fn an_edited_approval_runs_the_edited_input_where_the_host_can_take_it() {
        let response = decided(Verdict::Allow, None, Some("rm -rf build/tmp"));
        for host in [Host::ClaudeCode, Host::Codex, Host::Cursor] {
            let mapped = map_answer(&call(host), &response, None, "gatehouse", false);
            let Mapped::Allow(Some(input)) = &mapped else {
                panic!("{host}: {mapped:?}");
            };
            assert_eq!(input["command"], "rm -rf build/tmp");
            let answer = host_answer(&call(host), mapped);
            assert!(answer.lets_run());
            let body: Value = serde_json::from_slice(&answer.stdout).unwrap();
            let edited = match host {
                Host::Cursor => &body["updated_input"]["command"],
                _ => &body["hookSpecificOutput"]["updatedInput"]["command"],
            };
            assert_eq!(edited, "rm -rf build/tmp", "{host}: {body}");
        }
    }

    #[test]
    fn a_host_that_cannot_take_the_edit_is_told_no_with_the_edited_call() {
        let response = decided(
            Verdict::Allow,
            Some("only the tmp dir"),
            Some("rm -rf build/tmp"),
        );
        let mapped = map_answer(&call(Host::Gemini), &response, None, "gatehouse", false);
        let Mapped::Deny(reason) = &mapped else {
            panic!("{mapped:?}");
        };
        assert!(reason.contains("rm -rf build/tmp"), "{reason}");
        assert!(reason.contains("only the tmp dir"), "{reason}");
        assert!(!host_answer(&call(Host::Gemini), mapped).lets_run());
    }

    #[test]
    fn an_edited_and_confined_approval_confines_the_edited_command() {
        let response = decided(Verdict::Allow, None, Some("make test"));
        let mapped = map_answer(
            &call(Host::ClaudeCode),
            &response,
            Some("build"),
            "/usr/bin/gatehouse",
            false,
        );
        let Mapped::Allow(Some(input)) = mapped else {
            panic!("not allowed");
        };
        let command = input["command"].as_str().unwrap();
        assert!(
            command.contains("sandbox run --profile 'build'"),
            "{command}"
        );
        assert!(command.ends_with("-c 'make test'"), "{command}");
    }

    #[test]
    fn a_denial_note_leads_the_reason_every_host_shows_the_model() {
        let response = decided(Verdict::Reject, Some("use --dry-run first"), None);
        for host in Host::ALL {
            let mapped = map_answer(&call(host), &response, None, "gatehouse", false);
            let answer = host_answer(&call(host), mapped);
            assert!(!answer.lets_run());
            assert!(
                answer.stderr.contains("and says: use --dry-run first."),
                "{host}: {}",
                answer.stderr
            );
            let body = String::from_utf8(answer.stdout).unwrap();
            assert!(body.contains("use --dry-run first"), "{host}: {body}");
        }
        let plain = map_answer(
            &call(Host::Codex),
            &decided(Verdict::Reject, None, None),
            None,
            "gatehouse",
            false,
        );
        assert!(matches!(plain, Mapped::Deny(reason) if reason.starts_with("rejected (human")));
    }
}
