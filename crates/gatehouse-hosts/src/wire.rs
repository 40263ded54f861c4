//! The hosts' hook payloads as they arrive on stdin (or in an HTTP hook's body): foreign JSON,
//! kept apart from the domain types in `event`.
//!
//! Hosts add fields from release to release, so unknown fields are ignored; the fields read
//! here must have the documented type, or the payload is refused (and the call denied).
//! Sources: Claude Code's hooks reference (PreToolUse, PostToolUse, PostToolUseFailure), Codex
//! CLI's hooks (Claude Code's shape plus `turn_id`), Gemini CLI's hooks (BeforeTool, AfterTool;
//! no `tool_use_id`), Cursor's hooks (`beforeShellExecution`, `beforeMCPExecution`,
//! `preToolUse`, and their `after*` counterparts).

use serde::Deserialize;
use serde_json::Value;

/// Claude Code's payload for tool events.
#[derive(Debug, Clone, Deserialize)]
pub struct WireClaudeCode {
    pub hook_event_name: String,
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub cwd: Option<String>,
    pub permission_mode: Option<String>,
    pub tool_name: Option<String>,
    pub tool_input: Option<Value>,
    pub tool_use_id: Option<String>,
    /// PostToolUse: what the tool returned.
    pub tool_response: Option<Value>,
    /// PostToolUseFailure: why the tool failed.
    pub error: Option<Value>,
    pub is_interrupt: Option<bool>,
    /// Set when a subagent made the call.
    pub agent_id: Option<String>,
    pub agent_type: Option<String>,
    pub duration_ms: Option<u64>,
}

/// Codex CLI's payload for tool events: Claude Code's shape, plus the turn and model.
#[derive(Debug, Clone, Deserialize)]
pub struct WireCodex {
    pub hook_event_name: String,
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub cwd: Option<String>,
    pub permission_mode: Option<String>,
    pub tool_name: Option<String>,
    pub tool_input: Option<Value>,
    pub tool_use_id: Option<String>,
    pub tool_response: Option<Value>,
    pub turn_id: Option<String>,
    pub model: Option<String>,
    pub agent_id: Option<String>,
    pub agent_type: Option<String>,
}

/// Gemini CLI's payload for BeforeTool / AfterTool. It carries no `tool_use_id`.
#[derive(Debug, Clone, Deserialize)]
pub struct WireGemini {
    pub hook_event_name: String,
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub cwd: Option<String>,
    pub timestamp: Option<String>,
    pub tool_name: Option<String>,
    pub tool_input: Option<Value>,
    /// AfterTool: `{llmContent, returnDisplay, error?}`.
    pub tool_response: Option<Value>,
    pub mcp_context: Option<Value>,
}

/// Cursor's payload. Shell events carry `command`; MCP and generic tool events carry
/// `tool_name` and `tool_input` (which MCP events may send as a JSON string).
#[derive(Debug, Clone, Deserialize)]
pub struct WireCursor {
    pub hook_event_name: String,
    pub conversation_id: Option<String>,
    pub generation_id: Option<String>,
    pub workspace_roots: Option<Vec<String>>,
    pub command: Option<String>,
    pub cwd: Option<String>,
    pub tool_name: Option<String>,
    pub tool_input: Option<Value>,
    pub tool_use_id: Option<String>,
    pub url: Option<String>,
    /// after* events.
    pub output: Option<Value>,
    pub tool_output: Option<Value>,
    pub duration: Option<u64>,
    pub exit_code: Option<i64>,
}
