//! Standing grants over HTTP (`docs/API.md`, "Standing grants"): the proposal for a paused
//! action, a preview of edited rules, saving (approve and allow similar), the list, revocation,
//! suggestions and the fatigue counts. Thin: the work is in `crate::grants`.

use axum::Json;
use axum::extract::State;
use gatehouse_protocol::grants::{
    GrantCreated, GrantList, GrantPreview, GrantPreviewRequest, GrantProposal, GrantRecord,
    GrantRequest, GrantStats, GrantSuggestions,
};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::auth::Person;
use crate::presence::RequestOptions;

fn person(caller: &ApproverCaller) -> Person {
    caller.0.person().unwrap_or_else(Person::owner)
}

/// `GET /v1/actions/{id}/grant`: the narrowest grant covering the action, or why none.
pub async fn proposal(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GrantProposal>, ApiError> {
    Ok(Json(state.grant_proposal(&id).await?))
}

/// `POST /v1/actions/{id}/grant/preview` with `{"rules": [...], "scope": "project"}`.
pub async fn preview(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<GrantPreviewRequest>,
) -> Result<Json<GrantPreview>, ApiError> {
    Ok(Json(
        state
            .grant_preview(&id, &request.rules, request.scope.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    action_hash: String,
}

/// `POST /v1/actions/{id}/grant/presence`: a challenge to save a grant from an action a person
/// approved before (a suggestion).
pub async fn challenge(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<ChallengeRequest>,
) -> Result<Json<RequestOptions>, ApiError> {
    Ok(Json(
        state
            .grant_presence_challenge(&id, &request.action_hash)
            .await?,
    ))
}

/// `POST /v1/actions/{id}/grant`: approve the action (if pending) and save a grant.
pub async fn create(
    State(state): State<AppState>,
    approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<GrantRequest>,
) -> Result<Json<GrantCreated>, ApiError> {
    Ok(Json(
        state.create_grant(&person(&approver), &id, request).await?,
    ))
}

/// `GET /v1/grants`
pub async fn list(
    State(state): State<AppState>,
    _approver: ApproverCaller,
) -> Result<Json<GrantList>, ApiError> {
    Ok(Json(state.list_grants().await?))
}

/// `POST /v1/grants/{id}/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GrantRecord>, ApiError> {
    Ok(Json(state.revoke_grant(&person(&approver), &id).await?))
}

/// `GET /v1/grants/suggestions`
pub async fn suggestions(
    State(state): State<AppState>,
    _approver: ApproverCaller,
) -> Result<Json<GrantSuggestions>, ApiError> {
    Ok(Json(state.grant_suggestions().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    since_ms: Option<i64>,
}

/// `GET /v1/grants/stats?since_ms=`
pub async fn stats(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<GrantStats>, ApiError> {
    Ok(Json(state.grant_stats(query.since_ms).await?))
}
