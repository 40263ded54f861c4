//! `POST /v1/actions/{id}/edit/check`: the rules' re-check of an edited input before a person
//! approves it (the dashboard's "Check" in its edit panel). Decides nothing.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiJson, ApiPath};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::edits::EditPreview;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditCheckRequest {
    /// The hash of the action as shown (the edit is of that action only).
    action_hash: String,
    /// The edited input.
    input: Map<String, Value>,
}

/// `200` with the edited hash and the rules' verdict (`allow`/`pause`), or `422 edit_refused`
/// when the rules reject the edit or self-protection guards it, as the decision would be.
pub async fn check(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<EditCheckRequest>,
) -> Result<Json<EditPreview>, ApiError> {
    Ok(Json(
        state
            .preview_edit(&id, &request.action_hash, &request.input)
            .await?,
    ))
}
