//! Outcomes: what happened to a tool call after the agent's host ran it (or tried to), as its
//! hook reports it after the fact (Claude Code / Codex `PostToolUse`, Gemini `AfterTool`,
//! Cursor `after*`). Recorded in the ledger as chained records beside the action they follow.

use serde::{Deserialize, Serialize};

/// `POST /v1/outcomes` (agent token): one tool call's outcome. The output itself is never sent:
/// only whether it ran, its exit status or error, its duration, and the sandbox's denial lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// With `session_id`, names the checked action this outcome follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The tool ran (it may still have failed).
    pub ran: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Lines the sandbox printed when it denied something (`gatehouse sandbox: denied ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

/// Why an outcome is evidence that something ran around the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFlag {
    /// No action was ever checked for this tool call.
    Unchecked,
    /// It ran, though its action's verdict is not `allow` (rejected, or still paused).
    NotAllowed,
}

impl OutcomeFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFlag::Unchecked => "unchecked",
            OutcomeFlag::NotAllowed => "not_allowed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unchecked" => Some(OutcomeFlag::Unchecked),
            "not_allowed" => Some(OutcomeFlag::NotAllowed),
            _ => None,
        }
    }
}

/// An outcome as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The outcome's sequence number in the ledger.
    pub outcome_id: i64,
    /// The checked action it follows; `None` when no check was ever made (`flag: unchecked`).
    pub action_id: Option<String>,
    pub tool: String,
    pub session_id: Option<String>,
    pub tool_use_id: Option<String>,
    pub agent: Option<String>,
    pub cwd: Option<String>,
    pub ran: bool,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub findings: Vec<String>,
    pub flag: Option<OutcomeFlag>,
    pub recorded_at_ms: i64,
}

/// `GET /v1/outcomes` (approver): recent outcomes, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeList {
    pub outcomes: Vec<OutcomeRecord>,
}
