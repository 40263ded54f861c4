//! The versioned policy: `/v1/policy/versions` (push, history), `/v1/policy/versions/{n}`,
//! `/v1/policy/rollback`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_protocol::{
    PolicyHistory, PolicyPushRequest, PolicyRollbackRequest, PolicyVersionView,
};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::auth::Person;

fn person(caller: &ApproverCaller) -> Person {
    // An `ApproverCaller` is never the agent: it always names a person.
    caller.0.person().unwrap_or_else(Person::owner)
}

/// `POST /v1/policy/versions` `{"text": "..."}` (an admin).
pub async fn push(
    State(state): State<AppState>,
    caller: ApproverCaller,
    ApiJson(request): ApiJson<PolicyPushRequest>,
) -> Result<(StatusCode, Json<PolicyVersionView>), ApiError> {
    let pushed = state
        .push_policy(&person(&caller), request.text, None)
        .await?;
    Ok((StatusCode::CREATED, Json(pushed)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    diff: Option<bool>,
}

/// `GET /v1/policy/versions?diff=true`
pub async fn history(
    State(state): State<AppState>,
    _caller: ApproverCaller,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<PolicyHistory>, ApiError> {
    Ok(Json(
        state.policy_history(query.diff.unwrap_or(false)).await?,
    ))
}

/// `GET /v1/policy/versions/{version}`: with its text.
pub async fn version(
    State(state): State<AppState>,
    _caller: ApproverCaller,
    ApiPath(version): ApiPath<i64>,
) -> Result<Json<PolicyVersionView>, ApiError> {
    Ok(Json(state.policy_version(version).await?))
}

/// `POST /v1/policy/rollback` `{"version": N}` (an admin).
pub async fn rollback(
    State(state): State<AppState>,
    caller: ApproverCaller,
    ApiJson(request): ApiJson<PolicyRollbackRequest>,
) -> Result<(StatusCode, Json<PolicyVersionView>), ApiError> {
    let pushed = state
        .rollback_policy(&person(&caller), request.version)
        .await?;
    Ok((StatusCode::CREATED, Json(pushed)))
}
