//! Named people: `/v1/users` (admins add, list and remove them) and `/v1/whoami`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_protocol::{NewUserRequest, NewUserResponse, UserList, WhoAmI};

use crate::api::error::{ApiError, ApiJson, ApiPath};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::auth::Person;

fn person(caller: &ApproverCaller) -> Person {
    // An `ApproverCaller` is never the agent: it always names a person.
    caller.0.person().unwrap_or_else(Person::owner)
}

/// `POST /v1/users` `{"name": "...", "role": "approver"|"reviewer"|"admin"}`: the token is in
/// the answer, once.
pub async fn add(
    State(state): State<AppState>,
    caller: ApproverCaller,
    ApiJson(request): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<NewUserResponse>), ApiError> {
    let added = state.add_user(&person(&caller), request).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// `GET /v1/users`
pub async fn list(
    State(state): State<AppState>,
    caller: ApproverCaller,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(state.users(&person(&caller)).await?))
}

/// `DELETE /v1/users/{name}`: `{"removed": NAME}`.
pub async fn remove(
    State(state): State<AppState>,
    caller: ApproverCaller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.remove_user(&person(&caller), &name).await?;
    Ok(Json(serde_json::json!({ "removed": name })))
}

/// `GET /v1/whoami`: the person behind the credential and their role.
pub async fn whoami(State(state): State<AppState>, caller: ApproverCaller) -> Json<WhoAmI> {
    Json(state.whoami(&person(&caller)))
}
