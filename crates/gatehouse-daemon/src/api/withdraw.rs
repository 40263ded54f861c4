//! `POST /v1/actions/{id}/withdraw` (agent credential): the agent will not run a paused action
//! after all (its MCP client cancelled the call, or disconnected), so no person should be asked.
//!
//! The withdrawal is the action's one decision: a deny, `decided_by: "withdrawn"` (its own state
//! since ledger schema 7: never a person's decision, nor a failure of Gatehouse), with the note
//! `withdrawn by the agent: …`. Only a pending action can be withdrawn; a decided one answers
//! `409 already_decided`, so a person's approval and a withdrawal can never both land.

use axum::Json;
use axum::extract::State;
use gatehouse_protocol::{CheckResponse, DecidedBy, Verdict};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath};
use crate::api::guard::AgentCaller;
use crate::app::{ActionError, App, AppState};
use crate::approvals::DecideOutcome;

/// Longest `reason` kept in the note.
const MAX_REASON_BYTES: usize = 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// Why the agent withdraws it (`the MCP client cancelled the call`).
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/actions/{id}/withdraw`
pub async fn withdraw(
    State(state): State<AppState>,
    _agent: AgentCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<WithdrawRequest>,
) -> Result<Json<CheckResponse>, ApiError> {
    let view = state.withdraw(&id, request.reason).await?;
    Ok(Json(view.to_check_response()))
}

impl App {
    /// Withdraws a paused action for the agent: a deny lands as its one decision.
    pub async fn withdraw(
        &self,
        action_id: &str,
        reason: Option<String>,
    ) -> Result<gatehouse_protocol::ActionView, ActionError> {
        let reason = reason.unwrap_or_else(|| "the call was cancelled".into());
        if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
            return Err(ActionError::Invalid {
                field: "reason",
                message: format!(
                    "reason is at most {MAX_REASON_BYTES} bytes, without control characters"
                ),
            });
        }
        let note = format!("withdrawn by the agent: {reason}");
        match self
            .approvals
            .decide(
                action_id,
                Verdict::Reject,
                DecidedBy::Withdrawn,
                Some(note),
                None,
            )
            .await?
        {
            DecideOutcome::Decided(view) => Ok(view),
            DecideOutcome::AlreadyDecided(view) | DecideOutcome::ActionMismatch(view) => {
                Err(ActionError::AlreadyDecided(Box::new(view)))
            }
            DecideOutcome::NotFound => Err(ActionError::NotFound(action_id.to_owned())),
        }
    }
}
