//! Ledger reads and decisions: `/v1/actions…` and `/v1/disagreements`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_protocol::{ActionList, ActionView, DecisionRequest, MAX_WAIT_MS};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::api::guard::{AnyCaller, ApproverCaller};
use crate::app::AppState;
use crate::auth::Caller;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    wait_ms: Option<u64>,
}

/// `GET /v1/actions/{id}?wait_ms=N`: agents get the check response (and long-poll a pending
/// one); approvers get the whole action.
pub async fn get(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let wait_ms = query.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(ApiError::invalid("wait_ms", "wait_ms is at most 60000"));
    }
    let view = state.action(&id, Duration::from_millis(wait_ms)).await?;
    Ok(match caller {
        Caller::Agent => Json(view.to_check_response()).into_response(),
        _ => Json(view).into_response(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
    before: Option<String>,
}

/// `GET /v1/actions?status=&limit=&before=`
pub async fn list(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ActionList>, ApiError> {
    Ok(Json(
        state
            .list(query.status.as_deref(), query.limit, query.before, false)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<u32>,
    before: Option<String>,
}

/// `GET /v1/disagreements`: actions the rules allowed and the classifier flagged.
pub async fn disagreements(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ActionList>, ApiError> {
    Ok(Json(
        state.list(None, query.limit, query.before, true).await?,
    ))
}

/// `GET /v1/actions/{id}/history`: the facts recorded about one action, in order.
pub async fn history(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let history = state.ledger.history(&id).await?;
    if history.is_empty() {
        return Err(ApiError::not_found(format!("no action with id {id}")));
    }
    Ok(Json(
        serde_json::json!({ "action_id": id, "history": history }),
    ))
}

/// `GET /v1/actions/{id}/commands`: each simple command of the action with the rules' verdict
/// on it, for the person deciding.
pub async fn commands(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<crate::commands::CommandList>, ApiError> {
    let view = state.action(&id, Duration::ZERO).await?;
    Ok(Json(crate::commands::list(&state.policy, &view)))
}

/// `POST /v1/actions/{id}/decision` (with `input`: edit then approve, `crate::edits`)
pub async fn decide(
    State(state): State<AppState>,
    approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> Result<Json<ActionView>, ApiError> {
    if let Some(input) = request.input {
        if request.decision != gatehouse_protocol::Decision::Approve {
            return Err(ApiError::invalid(
                "input",
                "only an approval carries an edited input (a denial's guidance goes in `note`)",
            ));
        }
        let via = match approver.0 {
            Caller::Dashboard { .. } => "dashboard",
            _ => "token",
        };
        let person = approver
            .0
            .person()
            .unwrap_or_else(crate::auth::Person::owner);
        let view = state
            .decide_edited(
                &person,
                via,
                &id,
                input,
                request.note,
                request.action_hash.as_deref(),
                request.presence.as_ref(),
            )
            .await?;
        return Ok(Json(view));
    }
    let person = approver
        .0
        .person()
        .unwrap_or_else(crate::auth::Person::owner);
    Ok(Json(
        state
            .decide_by(
                &person,
                &id,
                request.decision,
                request.note,
                request.action_hash.as_deref(),
                request.presence.as_ref(),
            )
            .await?,
    ))
}
