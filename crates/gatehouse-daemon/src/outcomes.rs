//! Outcomes: what happened to a tool call after the agent's host ran it, reported by its hook
//! (`POST /v1/outcomes`, or Claude Code's PostToolUse on the HTTP hook). Validated here, then
//! appended to the ledger as a chained record; the ledger links it to the checked action and
//! flags one that has none (evidence that something ran around the firewall).

use gatehouse_ledger::{LedgerError, NewOutcome};
use gatehouse_protocol::{OutcomeRecord, OutcomeRequest};

use crate::app::App;
use crate::clock::now_ms;

/// Why an outcome was refused before anything was recorded.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

const MAX_NAME: usize = 512;
const MAX_ERROR: usize = 4096;
const MAX_FINDINGS: usize = 32;
const MAX_FINDING: usize = 512;

fn validate(request: &OutcomeRequest) -> Result<(), OutcomeError> {
    let invalid = |field, message| Err(OutcomeError::Invalid { field, message });
    if request.tool.trim().is_empty() {
        return invalid("tool", "tool must be a non-empty string");
    }
    for (field, value) in [
        ("tool", Some(&request.tool)),
        ("session_id", request.session_id.as_ref()),
        ("tool_use_id", request.tool_use_id.as_ref()),
        ("agent", request.agent.as_ref()),
    ] {
        if value.is_some_and(|v| v.len() > MAX_NAME) {
            return invalid(field, "longer than 512 bytes");
        }
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return invalid(field, "must not contain control characters");
        }
    }
    if request.cwd.as_ref().is_some_and(|c| c.len() > 4096) {
        return invalid("cwd", "cwd is longer than 4096 bytes");
    }
    if request.error.as_ref().is_some_and(|e| e.len() > MAX_ERROR) {
        return invalid("error", "error is longer than 4096 bytes");
    }
    if request.findings.len() > MAX_FINDINGS {
        return invalid("findings", "at most 32 findings");
    }
    if request.findings.iter().any(|f| f.len() > MAX_FINDING) {
        return invalid("findings", "a finding is at most 512 bytes");
    }
    Ok(())
}

impl App {
    /// Records one outcome (committed before this returns).
    pub async fn record_outcome(
        &self,
        request: OutcomeRequest,
    ) -> Result<OutcomeRecord, OutcomeError> {
        validate(&request)?;
        let record = self
            .ledger
            .record_outcome(NewOutcome {
                session_id: request.session_id,
                tool_use_id: request.tool_use_id,
                tool: request.tool,
                agent: request.agent,
                cwd: request.cwd,
                ran: request.ran,
                exit_code: request.exit_code,
                error: request.error,
                duration_ms: request.duration_ms,
                findings: request.findings,
                recorded_at_ms: now_ms(),
            })
            .await?;
        if let Some(flag) = record.flag {
            tracing::warn!(
                outcome_id = record.outcome_id,
                flag = flag.as_str(),
                agent = record.agent.as_deref().unwrap_or(""),
                "a tool call ran that Gatehouse did not allow"
            );
        }
        Ok(record)
    }

    /// Recent outcomes, newest first.
    pub async fn outcomes(
        &self,
        limit: u32,
        flagged_only: bool,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        self.ledger.outcomes(limit, flagged_only).await
    }
}
