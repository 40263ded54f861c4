//! Domain events read from a host's hook payload: a tool call about to run (`ToolCall`), or
//! what happened to one (`ToolOutcome`). Identity is filled in here: the host's session and
//! `tool_use_id`, or a stable derived id where the host sends none.

use gatehouse_protocol::decode::{DecodeError, decode_json};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::Host;
use crate::wire::{WireClaudeCode, WireCodex, WireCursor, WireGemini};

/// Largest payload a hook reads: the daemon's own body limit.
pub const MAX_PAYLOAD_BYTES: usize = gatehouse_protocol::MAX_BODY_BYTES;

/// Prefix of the lines the sandbox prints on stderr when it denies something.
pub const SANDBOX_DENIAL_PREFIX: &str = "gatehouse sandbox: denied ";
/// Most sandbox findings kept from one tool output, and the longest kept line.
const MAX_FINDINGS: usize = 32;
const MAX_FINDING_LEN: usize = 512;

/// One tool call about to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub host: Host,
    /// The host's event name (`PreToolUse`, `BeforeTool`, `beforeShellExecution`, ...).
    pub event: String,
    pub tool: String,
    pub input: Map<String, Value>,
    pub session_id: Option<String>,
    pub tool_use_id: String,
    /// The host sent no id: `tool_use_id` was derived from the call (see `derive_tool_use_id`).
    pub tool_use_id_derived: bool,
    pub cwd: Option<String>,
    /// What the classifier and people may want to see: subagent, permission mode, turn.
    pub context: Map<String, Value>,
    /// The input field holding a shell command, for a shell tool whose input the host lets a
    /// hook rewrite (so the call can be confined).
    pub rewritable_shell_field: Option<&'static str>,
}

/// What happened to a tool call after the host ran it (or tried to).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub host: Host,
    pub event: String,
    pub tool: String,
    pub session_id: Option<String>,
    pub tool_use_id: String,
    pub cwd: Option<String>,
    /// The tool ran (it may still have failed: see `exit_code` and `error`).
    pub ran: bool,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    /// Lines the sandbox printed when it denied something (`gatehouse sandbox: denied ...`).
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HookEvent {
    PreTool(ToolCall),
    PostTool(ToolOutcome),
}

/// Why a payload could not be read; every one of them means deny.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("the payload is empty")]
    Empty,
    #[error("the payload is not the host's JSON: {0}")]
    Decode(#[from] DecodeError),
    #[error("the payload has no `{0}`")]
    Missing(&'static str),
    #[error("`{field}` is not valid: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error("the hook event `{0}` is not one Gatehouse handles")]
    UnsupportedEvent(String),
}

/// Reads one hook payload from `host`.
pub fn read_event(host: Host, bytes: &[u8]) -> Result<HookEvent, PayloadError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::Empty);
    }
    match host {
        Host::ClaudeCode => claude_code(decode_json(bytes)?),
        Host::Codex => codex(decode_json(bytes)?),
        Host::Gemini => gemini(decode_json(bytes)?),
        Host::Cursor => cursor(decode_json(bytes)?),
    }
}

fn claude_code(wire: WireClaudeCode) -> Result<HookEvent, PayloadError> {
    let tool = required_tool(wire.tool_name)?;
    let input = input_object(wire.tool_input)?;
    let mut context = Map::new();
    insert_some(&mut context, "agent_id", wire.agent_id);
    insert_some(&mut context, "agent_type", wire.agent_type);
    insert_some(&mut context, "permission_mode", wire.permission_mode);
    let (tool_use_id, derived) = identity(
        Host::ClaudeCode,
        wire.tool_use_id,
        wire.session_id.as_deref(),
        &tool,
        &input,
        None,
    )?;
    match wire.hook_event_name.as_str() {
        "PreToolUse" => Ok(HookEvent::PreTool(ToolCall {
            host: Host::ClaudeCode,
            rewritable_shell_field: (tool == "Bash").then_some("command"),
            event: wire.hook_event_name,
            tool,
            input,
            session_id: wire.session_id,
            tool_use_id,
            tool_use_id_derived: derived,
            cwd: wire.cwd,
            context,
        })),
        "PostToolUse" | "PostToolUseFailure" => {
            let failed = wire.hook_event_name == "PostToolUseFailure";
            let error =
                wire.error.as_ref().map(text_of).or_else(|| {
                    (wire.is_interrupt == Some(true)).then(|| "interrupted".to_owned())
                });
            let mut exit_code = wire.tool_response.as_ref().and_then(exit_code_in);
            if exit_code.is_none() {
                exit_code = error.as_deref().and_then(exit_code_in_text);
            }
            let mut findings = Vec::new();
            for value in [&wire.tool_response, &wire.error].into_iter().flatten() {
                collect_findings(value, &mut findings);
            }
            Ok(HookEvent::PostTool(ToolOutcome {
                host: Host::ClaudeCode,
                event: wire.hook_event_name,
                tool,
                session_id: wire.session_id,
                tool_use_id,
                cwd: wire.cwd,
                ran: !(failed && wire.is_interrupt == Some(true)),
                exit_code,
                error: error.or_else(|| failed.then(|| "the tool failed".to_owned())),
                duration_ms: wire.duration_ms,
                findings,
            }))
        }
        _ => Err(PayloadError::UnsupportedEvent(wire.hook_event_name)),
    }
}

fn codex(wire: WireCodex) -> Result<HookEvent, PayloadError> {
    let tool = required_tool(wire.tool_name)?;
    let input = input_object(wire.tool_input)?;
    let mut context = Map::new();
    insert_some(&mut context, "agent_id", wire.agent_id);
    insert_some(&mut context, "agent_type", wire.agent_type);
    insert_some(&mut context, "permission_mode", wire.permission_mode);
    insert_some(&mut context, "turn_id", wire.turn_id.clone());
    insert_some(&mut context, "model", wire.model);
    let (tool_use_id, derived) = identity(
        Host::Codex,
        wire.tool_use_id,
        wire.session_id.as_deref(),
        &tool,
        &input,
        wire.turn_id.as_deref(),
    )?;
    let shell = matches!(
        tool.as_str(),
        "Bash" | "shell" | "exec_command" | "local_shell"
    ) && input.get("command").is_some_and(Value::is_string);
    match wire.hook_event_name.as_str() {
        "PreToolUse" => Ok(HookEvent::PreTool(ToolCall {
            host: Host::Codex,
            rewritable_shell_field: shell.then_some("command"),
            event: wire.hook_event_name,
            tool,
            input,
            session_id: wire.session_id,
            tool_use_id,
            tool_use_id_derived: derived,
            cwd: wire.cwd,
            context,
        })),
        "PostToolUse" => {
            let mut findings = Vec::new();
            if let Some(response) = &wire.tool_response {
                collect_findings(response, &mut findings);
            }
            Ok(HookEvent::PostTool(ToolOutcome {
                host: Host::Codex,
                event: wire.hook_event_name,
                tool,
                session_id: wire.session_id,
                tool_use_id,
                cwd: wire.cwd,
                ran: true,
                exit_code: wire.tool_response.as_ref().and_then(exit_code_in),
                error: wire.tool_response.as_ref().and_then(error_in),
                duration_ms: None,
                findings,
            }))
        }
        _ => Err(PayloadError::UnsupportedEvent(wire.hook_event_name)),
    }
}

fn gemini(wire: WireGemini) -> Result<HookEvent, PayloadError> {
    let tool = required_tool(wire.tool_name)?;
    let input = input_object(wire.tool_input)?;
    let mut context = Map::new();
    if let Some(mcp) = wire.mcp_context {
        context.insert("mcp_context".into(), mcp);
    }
    // No tool_use_id: derived from the call, so BeforeTool and AfterTool of one call agree.
    let (tool_use_id, derived) = identity(
        Host::Gemini,
        None,
        wire.session_id.as_deref(),
        &tool,
        &input,
        None,
    )?;
    match wire.hook_event_name.as_str() {
        "BeforeTool" => Ok(HookEvent::PreTool(ToolCall {
            host: Host::Gemini,
            rewritable_shell_field: None,
            event: wire.hook_event_name,
            tool,
            input,
            session_id: wire.session_id,
            tool_use_id,
            tool_use_id_derived: derived,
            cwd: wire.cwd,
            context,
        })),
        "AfterTool" => {
            let mut findings = Vec::new();
            if let Some(response) = &wire.tool_response {
                collect_findings(response, &mut findings);
            }
            Ok(HookEvent::PostTool(ToolOutcome {
                host: Host::Gemini,
                event: wire.hook_event_name,
                tool,
                session_id: wire.session_id,
                tool_use_id,
                cwd: wire.cwd,
                ran: true,
                exit_code: wire.tool_response.as_ref().and_then(exit_code_in),
                error: wire.tool_response.as_ref().and_then(error_in),
                duration_ms: None,
                findings,
            }))
        }
        _ => Err(PayloadError::UnsupportedEvent(wire.hook_event_name)),
    }
}

fn cursor(wire: WireCursor) -> Result<HookEvent, PayloadError> {
    let event = wire.hook_event_name.clone();
    let (tool, input, shell_field) = match event.as_str() {
        "beforeShellExecution" | "afterShellExecution" => {
            let command = wire
                .command
                .clone()
                .ok_or(PayloadError::Missing("command"))?;
            let mut input = Map::new();
            input.insert("command".into(), Value::String(command));
            ("Shell".to_owned(), input, None)
        }
        "beforeMCPExecution" | "afterMCPExecution" | "preToolUse" | "postToolUse" => {
            let tool = required_tool(wire.tool_name.clone())?;
            // MCP events may carry the arguments as a JSON string.
            let input = match wire.tool_input.clone() {
                Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        return Err(PayloadError::Invalid {
                            field: "tool_input",
                            message: "a string that is not a JSON object",
                        });
                    }
                },
                other => input_object(other)?,
            };
            let shell = event == "preToolUse"
                && matches!(
                    tool.as_str(),
                    "Shell" | "Bash" | "run_terminal_cmd" | "terminal"
                )
                && input.get("command").is_some_and(Value::is_string);
            (tool, input, shell.then_some("command"))
        }
        _ => return Err(PayloadError::UnsupportedEvent(event)),
    };
    let mut context = Map::new();
    if let Some(url) = wire.url.clone() {
        context.insert("mcp_url".into(), Value::String(url));
    }
    if let Some(roots) = wire.workspace_roots.clone() {
        context.insert("workspace_roots".into(), json!(roots));
    }
    let cwd = wire.cwd.clone().or_else(|| {
        wire.workspace_roots
            .as_ref()
            .and_then(|r| r.first().cloned())
    });
    let (tool_use_id, derived) = identity(
        Host::Cursor,
        wire.tool_use_id.clone(),
        wire.conversation_id.as_deref(),
        &tool,
        &input,
        wire.generation_id.as_deref(),
    )?;
    if event.starts_with("before") || event == "preToolUse" {
        return Ok(HookEvent::PreTool(ToolCall {
            host: Host::Cursor,
            event,
            tool,
            input,
            session_id: wire.conversation_id,
            tool_use_id,
            tool_use_id_derived: derived,
            cwd,
            context,
            rewritable_shell_field: shell_field,
        }));
    }
    let output = wire.output.as_ref().or(wire.tool_output.as_ref());
    let mut findings = Vec::new();
    if let Some(output) = output {
        collect_findings(output, &mut findings);
    }
    Ok(HookEvent::PostTool(ToolOutcome {
        host: Host::Cursor,
        event,
        tool,
        session_id: wire.conversation_id,
        tool_use_id,
        cwd,
        ran: true,
        exit_code: wire.exit_code,
        error: None,
        duration_ms: wire.duration,
        findings,
    }))
}

fn required_tool(tool: Option<String>) -> Result<String, PayloadError> {
    match tool {
        Some(tool) if !tool.trim().is_empty() => Ok(tool),
        Some(_) => Err(PayloadError::Invalid {
            field: "tool_name",
            message: "empty",
        }),
        None => Err(PayloadError::Missing("tool_name")),
    }
}

/// The tool's input as an object. A missing input is an empty one (tools without
/// arguments); any other JSON value is refused: a rule cannot judge what it cannot name.
fn input_object(input: Option<Value>) -> Result<Map<String, Value>, PayloadError> {
    match input {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(PayloadError::Invalid {
            field: "tool_input",
            message: "not a JSON object",
        }),
    }
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), Value::String(value));
    }
}

/// The host's `tool_use_id`, or one derived from the call.
fn identity(
    host: Host,
    sent: Option<String>,
    session_id: Option<&str>,
    tool: &str,
    input: &Map<String, Value>,
    turn: Option<&str>,
) -> Result<(String, bool), PayloadError> {
    match sent {
        Some(id) if !id.is_empty() => Ok((id, false)),
        Some(_) => Err(PayloadError::Invalid {
            field: "tool_use_id",
            message: "empty",
        }),
        None => Ok((
            derive_tool_use_id(host, session_id, tool, input, turn),
            true,
        )),
    }
}

/// A stable id for a call whose host sends none: a hash of the host, session, tool, input
/// (canonical JSON) and turn. The same call re-sent in the same session and turn gets the same
/// id (so it re-attaches to its action instead of making a second one), and its outcome
/// event finds it.
pub fn derive_tool_use_id(
    host: Host,
    session_id: Option<&str>,
    tool: &str,
    input: &Map<String, Value>,
    turn: Option<&str>,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        host.as_str(),
        session_id.unwrap_or(""),
        tool,
        &canonical_json(&Value::Object(input.clone())),
        turn.unwrap_or(""),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("gh_{hex}")
}

/// JSON with object keys sorted at every depth and no whitespace.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::String(key.clone()),
                        canonical_json(&map[key.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An exit status a tool response states (`exit_code`, `exitCode`, `returnCode`), or an
/// `Exit Code: N` line in its text (Gemini's shell tool).
fn exit_code_in(response: &Value) -> Option<i64> {
    if let Value::Object(map) = response {
        for key in ["exit_code", "exitCode", "returnCode", "return_code"] {
            if let Some(code) = map.get(key).and_then(Value::as_i64) {
                return Some(code);
            }
        }
        for key in ["llmContent", "output", "stdout"] {
            if let Some(code) = map
                .get(key)
                .and_then(Value::as_str)
                .and_then(exit_code_in_text)
            {
                return Some(code);
            }
        }
        None
    } else {
        response.as_str().and_then(exit_code_in_text)
    }
}

fn exit_code_in_text(text: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("Exit Code:")
            .or_else(|| line.strip_prefix("Exit code"))
            .or_else(|| line.strip_prefix("exit code"))?;
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    })
}

fn error_in(response: &Value) -> Option<String> {
    match response.get("error")? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => Some(
            map.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| Value::Object(map.clone()).to_string()),
        ),
        other => Some(other.to_string()),
    }
}

/// The sandbox's denial lines in any string of a tool's response. Nothing else of the output
/// is kept.
pub fn collect_findings(value: &Value, findings: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            for line in text.lines() {
                if findings.len() >= MAX_FINDINGS {
                    return;
                }
                if let Some(at) = line.find(SANDBOX_DENIAL_PREFIX) {
                    let mut finding: String = line[at..].trim_end().to_owned();
                    if finding.len() > MAX_FINDING_LEN {
                        let mut cut = MAX_FINDING_LEN;
                        while !finding.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        finding.truncate(cut);
                    }
                    if !findings.contains(&finding) {
                        findings.push(finding);
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_findings(v, findings)),
        Value::Object(map) => map.values().for_each(|v| collect_findings(v, findings)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_depend_on_every_part() {
        let input: Map<String, Value> =
            serde_json::from_str(r#"{"command":"ls","b":{"y":1,"x":2}}"#).unwrap();
        let reordered: Map<String, Value> =
            serde_json::from_str(r#"{"b":{"x":2,"y":1},"command":"ls"}"#).unwrap();
        let a = derive_tool_use_id(Host::Gemini, Some("s"), "run_shell_command", &input, None);
        assert_eq!(
            a,
            derive_tool_use_id(
                Host::Gemini,
                Some("s"),
                "run_shell_command",
                &reordered,
                None
            )
        );
        assert_ne!(
            a,
            derive_tool_use_id(Host::Gemini, Some("t"), "run_shell_command", &input, None)
        );
        assert_ne!(
            a,
            derive_tool_use_id(
                Host::Gemini,
                Some("s"),
                "run_shell_command",
                &input,
                Some("1")
            )
        );
        // Length-prefixed parts: moving a character between parts changes the id.
        assert_ne!(
            derive_tool_use_id(Host::Gemini, Some("ab"), "c", &Map::new(), None),
            derive_tool_use_id(Host::Gemini, Some("a"), "bc", &Map::new(), None)
        );
    }

    #[test]
    fn findings_are_only_the_sandbox_denial_lines() {
        let response = json!({
            "stdout": "secret output\nmore",
            "stderr": "warning\ngatehouse sandbox: denied write /etc/passwd\ngatehouse sandbox: denied connect 1.2.3.4:443\n",
        });
        let mut findings = Vec::new();
        collect_findings(&response, &mut findings);
        assert_eq!(
            findings,
            vec![
                "gatehouse sandbox: denied write /etc/passwd",
                "gatehouse sandbox: denied connect 1.2.3.4:443"
            ]
        );
    }

    #[test]
    fn exit_codes_are_read_from_fields_and_text() {
        assert_eq!(exit_code_in(&json!({"exit_code": 3})), Some(3));
        assert_eq!(
            exit_code_in(&json!({"llmContent": "Command: false\nExit Code: 1\n"})),
            Some(1)
        );
        assert_eq!(exit_code_in_text("Exit code 127\nnot found"), Some(127));
        assert_eq!(exit_code_in(&json!({"stdout": "fine"})), None);
    }
}
