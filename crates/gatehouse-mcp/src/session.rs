//! One proxied MCP session as a pure state machine: messages and check outcomes in, effects out.
//!
//! The transports (stdio, HTTP) feed every event of a session through one [`Session`], one at a
//! time, and carry out the [`Effect`]s it returns. No IO, no clock, no task: the races between a
//! verdict, a cancel, a server that exits and a client that leaves are orderings of calls here,
//! and are tested as such.
//!
//! The life of one `tools/call` request (keyed by the client's id and a per-process `seq`):
//!
//! ```text
//!   client request ──▶ Checking ──allow──▶ Forwarded ──server response──▶ (done, answered)
//!                         │  └─reject / check failed──▶ (done, answered with isError)
//!                         └─cancel / client gone / server gone──▶ Withdrawing ──verdict──▶ (done, never forwarded)
//! ```
//!
//! *Invariant*: a call is forwarded to the server only by [`Session::check_done`] with
//! [`CheckOutcome::Allow`], only from `Checking`, and the call leaves `Checking` at that moment:
//! no call is forwarded twice, none after its cancel, none after the client left.

use std::collections::HashMap;

use gatehouse_protocol::CheckRequest;
use serde_json::{Map, Value, json};

use crate::message::{self, Malformed, Message, RequestId, code};
use crate::pins::{PinStatus, ToolDefinition};
use crate::tools::{self, DefinitionOutcome, Gate, ServerTools};

/// Longest `context.previous_output` sent with a check, in bytes.
pub const PREVIOUS_OUTPUT_BYTES: usize = 4096;
/// Most client requests in flight at once (checking or forwarded); more are refused.
pub const MAX_IN_FLIGHT: usize = 1024;

/// What the proxy knows about the session before any message.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The server's name in tool names: `mcp__<server>__<tool>`.
    pub server: String,
    /// Sent as the checks' `session_id`.
    pub session_id: String,
    /// Unique to this proxy process: part of every `tool_use_id`, so ids reused across sessions
    /// and restarts never name the same action.
    pub nonce: String,
    /// Sent as the checks' `cwd` (where the server runs).
    pub cwd: Option<String>,
}

/// What the transport must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write these bytes (one line) to the server.
    ToServer(Vec<u8>),
    /// Write these bytes (one line) to the client.
    ToClient(Vec<u8>),
    /// Ask the daemon; report with [`Session::check_paused`] and [`Session::check_done`].
    Check {
        seq: u64,
        request: Box<CheckRequest>,
    },
    /// Stop waiting for the check `seq` (its outcome is ignored from now on).
    StopCheck { seq: u64 },
    /// Withdraw the paused action: its call will never run.
    Withdraw { action_id: String },
    /// A tool definition seen for the first time or changed: record it (a check of
    /// `gatehouse.mcp.tool_definition`) and report with [`Session::definition`].
    RecordDefinition(Box<ToolDefinition>),
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    Allow,
    Reject {
        reason: String,
        rule_id: Option<String>,
    },
    /// Unreachable, slow, confused daemon, or still paused at the deadline: not run.
    Failed {
        message: String,
    },
}

#[derive(Debug)]
enum Phase {
    /// Held before its check until a person decides on the tool's changed definition.
    AwaitingDefinition {
        tool: String,
        progress: u64,
    },
    Checking {
        action_id: Option<String>,
        progress: u64,
    },
    Forwarded,
}

#[derive(Debug)]
struct Call {
    seq: u64,
    raw_id: Value,
    method: String,
    phase: Phase,
    progress_token: Option<Value>,
    /// The request as checked, held until it is allowed (tools/call only).
    held: Option<Value>,
}

/// One session's state.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    agent: Option<String>,
    calls: HashMap<RequestId, Call>,
    next_seq: u64,
    /// Checks of calls that were cancelled while checking, with their action id once known.
    withdrawing: HashMap<u64, Option<String>>,
    previous_output: Option<String>,
    /// The server's tools: pins, annotations, definitions waiting for a person.
    tools: ServerTools,
    client_gone: bool,
    server_gone: bool,
}

impl Session {
    pub fn new(config: SessionConfig, tools: ServerTools) -> Session {
        Session {
            config,
            agent: None,
            calls: HashMap::new(),
            next_seq: 0,
            withdrawing: HashMap::new(),
            previous_output: None,
            tools,
            client_gone: false,
            server_gone: false,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Requests in flight (checking or forwarded).
    pub fn in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Checks still running whose outcome must be waited for (to withdraw or answer).
    pub fn checks_running(&self) -> usize {
        self.withdrawing.len()
            + self
                .calls
                .values()
                .filter(|c| matches!(c.phase, Phase::Checking { .. }))
                .count()
    }

    /// The server's tools (their pins are saved by the transport after a definition is accepted).
    pub fn tools(&self) -> &ServerTools {
        &self.tools
    }

    /// A line from the client.
    pub fn client_line(&mut self, line: &[u8]) -> Vec<Effect> {
        match message::decode(line) {
            Ok(msg) => self.client_message(msg, line),
            Err(Malformed {
                code,
                message,
                raw_id,
            }) => vec![to_client(&message::error_response(&raw_id, code, &message))],
        }
    }

    /// A decoded message from the client; `raw` is forwarded as is when it passes through.
    pub fn client_message(&mut self, msg: Message, raw: &[u8]) -> Vec<Effect> {
        if self.client_gone {
            return Vec::new();
        }
        match msg {
            Message::Request {
                id,
                raw_id,
                method,
                value,
            } => {
                if self.calls.contains_key(&id) {
                    let err = message::error_response(
                        &raw_id,
                        code::INVALID_REQUEST,
                        "this request id is already in use by a request in flight",
                    );
                    return vec![to_client(&err)];
                }
                if self.calls.len() >= MAX_IN_FLIGHT {
                    let err = message::error_response(
                        &raw_id,
                        code::INTERNAL_ERROR,
                        "too many requests in flight through the gatehouse proxy",
                    );
                    return vec![to_client(&err)];
                }
                if self.server_gone {
                    let err = message::error_response(
                        &raw_id,
                        code::INTERNAL_ERROR,
                        "the MCP server has exited",
                    );
                    return vec![to_client(&err)];
                }
                if method == "tools/call" {
                    return self.tool_call(id, raw_id, value);
                }
                if method == "initialize" {
                    self.agent = value
                        .get("params")
                        .and_then(|p| p.pointer("/clientInfo/name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                self.next_seq += 1;
                self.calls.insert(
                    id,
                    Call {
                        seq: self.next_seq,
                        raw_id,
                        method,
                        phase: Phase::Forwarded,
                        progress_token: None,
                        held: None,
                    },
                );
                vec![Effect::ToServer(line_of(raw))]
            }
            Message::Notification { method, value } => {
                if method == "notifications/cancelled"
                    && let Some(id) = value
                        .get("params")
                        .and_then(|p| p.get("requestId"))
                        .and_then(RequestId::from_value)
                    && matches!(
                        self.calls.get(&id).map(|c| &c.phase),
                        Some(Phase::Checking { .. } | Phase::AwaitingDefinition { .. })
                    )
                {
                    // The server never saw the request: the cancel stays here.
                    return self.withdraw_call(&id);
                }
                if self.server_gone {
                    return Vec::new();
                }
                vec![Effect::ToServer(line_of(raw))]
            }
            Message::Response { .. } => {
                if self.server_gone {
                    return Vec::new();
                }
                vec![Effect::ToServer(line_of(raw))]
            }
        }
    }

    fn tool_call(
        &mut self,
        id: RequestId,
        raw_id: Value,
        value: Map<String, Value>,
    ) -> Vec<Effect> {
        let Some(call) = tools::parse_tool_call(&value) else {
            let err = message::error_response(&raw_id, code::INVALID_PARAMS, tools::BAD_TOOL_CALL);
            return vec![to_client(&err)];
        };
        self.next_seq += 1;
        let seq = self.next_seq;
        self.calls.insert(
            id.clone(),
            Call {
                seq,
                raw_id,
                method: "tools/call".into(),
                phase: Phase::AwaitingDefinition {
                    tool: call.name.clone(),
                    progress: 0,
                },
                progress_token: call.progress_token,
                held: Some(Value::Object(value)),
            },
        );
        self.pass_gate(&id)
    }

    /// A call held before its check (new, or waiting for a definition): the tool's gate decides
    /// whether it is checked now, refused, or keeps waiting.
    fn pass_gate(&mut self, id: &RequestId) -> Vec<Effect> {
        let Some(call) = self.calls.get(id) else {
            return Vec::new();
        };
        let Phase::AwaitingDefinition { tool, .. } = &call.phase else {
            return Vec::new();
        };
        let tool = tool.clone();
        match self.tools.gate(&tool) {
            Gate::Open => {
                let arguments = call
                    .held
                    .as_ref()
                    .and_then(|h| h.pointer("/params/arguments"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let seq = call.seq;
                let client_name = call
                    .held
                    .as_ref()
                    .and_then(|h| h.pointer("/params/_meta"))
                    .and_then(|m| m.get(tools::CLIENT_INFO_META_KEY))
                    .and_then(|i| i.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let request = self.check_request(seq, id, &tool, arguments, client_name.as_deref());
                if let Some(call) = self.calls.get_mut(id) {
                    call.phase = Phase::Checking {
                        action_id: None,
                        progress: 0,
                    };
                }
                vec![Effect::Check {
                    seq,
                    request: Box::new(request),
                }]
            }
            Gate::Refuse(text) => match self.calls.remove(id) {
                Some(call) => vec![to_client(&message::tool_error_for(
                    call.held.as_ref(),
                    &call.raw_id,
                    &text,
                ))],
                None => Vec::new(),
            },
            Gate::Wait { record, message } => {
                let mut effects = Vec::new();
                if let Some(record) = record {
                    effects.push(Effect::RecordDefinition(record));
                }
                if let Some(call) = self.calls.get_mut(id)
                    && let Phase::AwaitingDefinition { progress, .. } = &mut call.phase
                    && let Some(token) = &call.progress_token
                {
                    *progress += 1;
                    effects.push(to_client(&message::progress_notification(
                        token, *progress, &message,
                    )));
                }
                effects
            }
        }
    }

    /// News of a tool definition's record (paused, accepted, rejected, failed): calls waiting
    /// for it move on, or are told who they wait for.
    pub fn definition(
        &mut self,
        tool: &str,
        hash: &str,
        outcome: &DefinitionOutcome,
    ) -> Vec<Effect> {
        let settled = self.tools.definition(tool, hash, outcome);
        let waiting: Vec<RequestId> = self
            .calls
            .iter()
            .filter(
                |(_, c)| matches!(&c.phase, Phase::AwaitingDefinition { tool: t, .. } if t == tool),
            )
            .map(|(id, _)| id.clone())
            .collect();
        let mut effects = Vec::new();
        if settled || matches!(outcome, DefinitionOutcome::Paused { .. }) {
            for id in waiting {
                effects.extend(self.pass_gate(&id));
            }
        }
        effects
    }

    /// The check for one `tools/call`.
    fn check_request(
        &self,
        seq: u64,
        id: &RequestId,
        tool: &str,
        arguments: Map<String, Value>,
        client_name: Option<&str>,
    ) -> CheckRequest {
        tool_check(
            &self.config,
            &ToolCallContext {
                agent: self.agent.as_deref().or(client_name),
                previous_output: self.previous_output.as_deref(),
                annotations: self.tools.annotations(tool),
                definition: self.tools.status(tool),
            },
            &format!("{}-{seq}:{}", self.config.nonce, id.as_str()),
            tool,
            arguments,
        )
    }

    /// The check `seq` is paused for a person as `action_id`.
    pub fn check_paused(&mut self, seq: u64, action_id: &str) -> Vec<Effect> {
        if let Some(slot) = self.withdrawing.get_mut(&seq) {
            if slot.is_none() {
                *slot = Some(action_id.to_owned());
                return vec![Effect::Withdraw {
                    action_id: action_id.to_owned(),
                }];
            }
            return Vec::new();
        }
        let Some(call) = self.calls.values_mut().find(|c| c.seq == seq) else {
            return Vec::new();
        };
        let Phase::Checking {
            action_id: slot,
            progress,
        } = &mut call.phase
        else {
            return Vec::new();
        };
        *slot = Some(action_id.to_owned());
        *progress += 1;
        match &call.progress_token {
            Some(token) => vec![to_client(&message::progress_notification(
                token,
                *progress,
                &paused_message(action_id),
            ))],
            None => Vec::new(),
        }
    }

    /// The check `seq` ended.
    pub fn check_done(&mut self, seq: u64, outcome: CheckOutcome) -> Vec<Effect> {
        if self.withdrawing.remove(&seq).is_some() {
            // Cancelled while checking: never forwarded, whatever the verdict.
            return Vec::new();
        }
        let Some(id) = self
            .calls
            .iter()
            .find(|(_, c)| c.seq == seq && matches!(c.phase, Phase::Checking { .. }))
            .map(|(id, _)| id.clone())
        else {
            return Vec::new();
        };
        match outcome {
            CheckOutcome::Allow => {
                let Some(call) = self.calls.get_mut(&id) else {
                    return Vec::new();
                };
                // The tool's definition may have changed while the call was checked: the gate
                // again, and a held call waits for that definition like a new one.
                let tool = call
                    .held
                    .as_ref()
                    .and_then(|h| h.pointer("/params/name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(tool) = tool
                    && !matches!(
                        self.tools.status(&tool),
                        PinStatus::Accepted | PinStatus::Unknown
                    )
                {
                    call.phase = Phase::AwaitingDefinition { tool, progress: 0 };
                    return self.pass_gate(&id);
                }
                let held = call.held.take();
                call.phase = Phase::Forwarded;
                match held {
                    Some(request) => vec![Effect::ToServer(message::to_line(&request))],
                    None => Vec::new(),
                }
            }
            refused => {
                let Some(call) = self.calls.remove(&id) else {
                    return Vec::new();
                };
                let text = refusal_text(&refused).unwrap_or_default();
                vec![to_client(&message::tool_error_for(
                    call.held.as_ref(),
                    &call.raw_id,
                    &text,
                ))]
            }
        }
    }

    /// A line from the server.
    pub fn server_line(&mut self, line: &[u8]) -> Vec<Effect> {
        // A cheap look at `id` and `method` first: most server traffic only passes through, and
        // only the answers to tools/call and tools/list are read whole.
        let Ok(peek) = serde_json::from_slice::<Peek>(line) else {
            // Not ours to judge: the client sees what the server sent.
            return self.pass_to_client(line);
        };
        let (Some(id), None) = (
            peek.id.as_ref().and_then(RequestId::from_value),
            peek.method,
        ) else {
            return self.pass_to_client(line);
        };
        let needs_body = match self.calls.get(&id) {
            Some(call) if matches!(call.phase, Phase::Forwarded) => {
                matches!(call.method.as_str(), "tools/call" | "tools/list")
            }
            // A response to a request the server never received, or to none at all: dropped.
            _ => return Vec::new(),
        };
        if !needs_body {
            self.calls.remove(&id);
            return self.pass_to_client(line);
        }
        match serde_json::from_slice::<Value>(line).map(message::classify) {
            Ok(Ok(Message::Response { id, value })) => self.server_response(&id, &value, line),
            _ => {
                self.calls.remove(&id);
                self.pass_to_client(line)
            }
        }
    }

    fn pass_to_client(&self, line: &[u8]) -> Vec<Effect> {
        if self.client_gone {
            Vec::new()
        } else {
            vec![Effect::ToClient(line_of(line))]
        }
    }

    fn server_response(
        &mut self,
        id: &RequestId,
        value: &Map<String, Value>,
        line: &[u8],
    ) -> Vec<Effect> {
        match self.calls.get(id).map(|c| &c.phase) {
            Some(Phase::Forwarded) => {}
            // A response to a request the server never received, or to none at all: dropped.
            _ => return Vec::new(),
        }
        let Some(call) = self.calls.remove(id) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        match call.method.as_str() {
            "tools/call" => {
                if let Some(result) = value.get("result") {
                    self.previous_output = Some(output_text(result, PREVIOUS_OUTPUT_BYTES));
                }
            }
            "tools/list" => {
                if let Some(tools) = value
                    .get("result")
                    .and_then(|r| r.get("tools"))
                    .and_then(Value::as_array)
                {
                    effects.extend(self.tools_listed(tools));
                }
            }
            _ => {}
        }
        effects.extend(self.pass_to_client(line));
        effects
    }

    fn tools_listed(&mut self, tools: &[Value]) -> Vec<Effect> {
        self.tools
            .listed(tools)
            .into_iter()
            .map(|d| Effect::RecordDefinition(Box::new(d)))
            .collect()
    }

    /// The client cancelled, or is gone: withdraw a call still being checked.
    fn withdraw_call(&mut self, id: &RequestId) -> Vec<Effect> {
        let Some(call) = self.calls.remove(id) else {
            return Vec::new();
        };
        // A call waiting for a definition was never checked: nothing to withdraw.
        let Phase::Checking { action_id, .. } = call.phase else {
            return Vec::new();
        };
        let mut effects = vec![Effect::StopCheck { seq: call.seq }];
        if let Some(action_id) = &action_id {
            effects.push(Effect::Withdraw {
                action_id: action_id.clone(),
            });
        }
        self.withdrawing.insert(call.seq, action_id);
        effects
    }

    /// The client disconnected: nothing more is forwarded for it; checks in flight are withdrawn.
    pub fn client_closed(&mut self) -> Vec<Effect> {
        self.client_gone = true;
        let checking: Vec<RequestId> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                matches!(
                    c.phase,
                    Phase::Checking { .. } | Phase::AwaitingDefinition { .. }
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        checking
            .iter()
            .flat_map(|id| self.withdraw_call(id))
            .collect()
    }

    /// The server exited: every request in flight gets an error; calls being checked are withdrawn.
    pub fn server_closed(&mut self) -> Vec<Effect> {
        self.server_gone = true;
        let ids: Vec<RequestId> = self.calls.keys().cloned().collect();
        let mut effects = Vec::new();
        for id in ids {
            let raw_id = match self.calls.get(&id) {
                Some(call) => call.raw_id.clone(),
                None => continue,
            };
            if matches!(
                self.calls.get(&id).map(|c| &c.phase),
                Some(Phase::Checking { .. } | Phase::AwaitingDefinition { .. })
            ) {
                effects.extend(self.withdraw_call(&id));
            } else {
                self.calls.remove(&id);
            }
            if !self.client_gone {
                effects.push(to_client(&message::error_response(
                    &raw_id,
                    code::INTERNAL_ERROR,
                    "the MCP server exited before answering",
                )));
            }
        }
        effects
    }

    /// The withdrawal of the check `seq` is settled (its task ended).
    pub fn check_stopped(&mut self, seq: u64) {
        self.withdrawing.remove(&seq);
    }
}

/// The progress message of a call paused for a person.
pub fn paused_message(action_id: &str) -> String {
    format!("Paused by Gatehouse: waiting for a person to approve this call (action {action_id})")
}

/// The text of the error result that answers a call not allowed (`None` for an allow).
pub fn refusal_text(outcome: &CheckOutcome) -> Option<String> {
    match outcome {
        CheckOutcome::Allow => None,
        CheckOutcome::Reject { reason, rule_id } => {
            let rule = rule_id
                .as_ref()
                .map(|r| format!(" (rule {r})"))
                .unwrap_or_default();
            Some(format!(
                "Gatehouse rejected this tool call{rule}: {reason}. It was not run."
            ))
        }
        CheckOutcome::Failed { message } => Some(format!(
            "Gatehouse could not check this tool call, so it was not run: {message}"
        )),
    }
}

/// What a session knows around one `tools/call`, sent as the check's `context`.
#[derive(Debug, Clone, Copy)]
pub struct ToolCallContext<'a> {
    /// The client's `clientInfo.name`.
    pub agent: Option<&'a str>,
    /// The last tool output of the session.
    pub previous_output: Option<&'a str>,
    /// The tool's annotations: untrusted hints, never a reason to allow.
    pub annotations: Option<&'a Value>,
    pub definition: PinStatus,
}

/// The check of one `tools/call`: tool `mcp__<server>__<tool>`, the arguments as input.
pub fn tool_check(
    config: &SessionConfig,
    known: &ToolCallContext<'_>,
    tool_use_id: &str,
    tool: &str,
    arguments: Map<String, Value>,
) -> CheckRequest {
    let mut context = Map::new();
    context.insert("mcp_server".into(), json!(config.server));
    if let Some(output) = known.previous_output {
        context.insert("previous_output".into(), json!(output));
    }
    if let Some(annotations) = known.annotations {
        context.insert("annotations".into(), annotations.clone());
    }
    match known.definition {
        PinStatus::Accepted | PinStatus::Unknown => {}
        status => {
            context.insert("tool_definition".into(), json!(status.as_str()));
        }
    }
    CheckRequest {
        tool: format!("mcp__{}__{}", config.server, tool),
        input: arguments,
        session_id: Some(config.session_id.clone()),
        agent: Some(known.agent.unwrap_or("mcp-client").to_owned()),
        tool_use_id: Some(tool_use_id.to_owned()),
        cwd: config.cwd.clone(),
        context: Some(context),
        wait_ms: Some(0),
        can_confine: false,
    }
}

/// The two fields of a server message that decide what the proxy does with it.
#[derive(serde::Deserialize)]
struct Peek {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

fn to_client(value: &Value) -> Effect {
    Effect::ToClient(message::to_line(value))
}

/// `raw` as one line ending in a newline.
fn line_of(raw: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(raw.len() + 1);
    line.extend_from_slice(raw);
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    line
}

/// The text a tool returned (its text content, else its JSON), cut to `limit` bytes.
pub fn output_text(result: &Value, limit: usize) -> String {
    let mut text = String::new();
    if let Some(content) = result.get("content").and_then(Value::as_array) {
        for item in content {
            if let Some(t) = item.get("text").and_then(Value::as_str) {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            if text.len() >= limit {
                break;
            }
        }
    }
    if text.is_empty() {
        text = result.to_string();
    }
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
