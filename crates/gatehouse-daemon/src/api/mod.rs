//! The HTTP API (v1, documented in `docs/API.md`): routes, and thin handlers that extract,
//! call the `App`, and convert. Every error is an `ApiError` with the one JSON envelope.

mod actions;
mod dashboard;
mod edit_check;
pub mod error;
mod events;
mod grants;
pub mod guard;
mod hooks;
mod ledger_browse;
mod notify;
mod ops;
mod overview;
mod policy_replay;
mod policy_versions;
mod presence;
mod review;
mod users;
mod withdraw;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use gatehouse_protocol::{CheckRequest, CheckResponse, MAX_BODY_BYTES};

use crate::app::AppState;
use error::{ApiError, ApiJson};
use guard::AgentCaller;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/hooks/claude-code", post(hooks::claude_code))
        .route("/v1/outcomes", post(hooks::record).get(hooks::list))
        .route("/v1/actions", get(actions::list))
        .route("/v1/actions/{id}", get(actions::get))
        .route("/v1/actions/{id}/history", get(actions::history))
        .route("/v1/actions/{id}/decision", post(actions::decide))
        .route("/v1/actions/{id}/withdraw", post(withdraw::withdraw))
        .route("/v1/actions/{id}/presence", post(presence::challenge))
        .route("/v1/actions/{id}/edit/check", post(edit_check::check))
        .route("/v1/actions/{id}/commands", get(actions::commands))
        .route(
            "/v1/actions/{id}/grant",
            get(grants::proposal).post(grants::create),
        )
        .route("/v1/actions/{id}/grant/preview", post(grants::preview))
        .route("/v1/actions/{id}/grant/presence", post(grants::challenge))
        .route("/v1/grants", get(grants::list))
        .route("/v1/grants/suggestions", get(grants::suggestions))
        .route("/v1/grants/stats", get(grants::stats))
        .route("/v1/grants/{id}/revoke", post(grants::revoke))
        .route("/v1/presence", get(presence::status))
        .route(
            "/v1/presence/credentials/challenge",
            post(presence::add_credential_challenge),
        )
        .route("/v1/presence/enrol", post(presence::begin_enrolment))
        .route(
            "/v1/presence/enrol/finish",
            post(presence::finish_enrolment),
        )
        .route("/v1/disagreements", get(actions::disagreements))
        .route("/v1/actions/{id}/label", post(review::label))
        .route("/v1/review", get(review::queue))
        .route("/v1/classifier", get(review::classifier))
        .route("/v1/events", get(events::subscribe))
        .route("/v1/ledger/actions", get(ledger_browse::browse))
        .route("/v1/ledger/export", get(ledger_browse::export))
        .route("/v1/ledger/sessions", get(ledger_browse::sessions))
        .route("/v1/ledger/overview", get(overview::overview))
        .route("/v1/users", post(users::add).get(users::list))
        .route("/v1/users/{name}", axum::routing::delete(users::remove))
        .route("/v1/whoami", get(users::whoami))
        .route(
            "/v1/policy/versions",
            post(policy_versions::push).get(policy_versions::history),
        )
        .route(
            "/v1/policy/versions/{version}",
            get(policy_versions::version),
        )
        .route("/v1/policy/rollback", post(policy_versions::rollback))
        .route("/v1/policy/replay", post(policy_replay::replay))
        .route("/v1/session", get(dashboard::session))
        .route("/v1/login-codes", post(dashboard::login_code))
        .route("/", get(dashboard::index))
        .route("/assets/{*path}", get(dashboard::asset_file))
        .route("/login", get(dashboard::login))
        .route(
            "/confirm/{secret}",
            get(notify::confirm_page).post(notify::confirm),
        )
        .route(
            "/confirm/{secret}/presence",
            post(notify::confirm_challenge),
        )
        .route("/healthz", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::require_own_host,
        ))
        // Outermost, so even the Host check's refusals carry the security headers.
        .layer(middleware::from_fn(guard::security_headers))
        .with_state(state)
}

/// The check socket's routes (hardened mode): the agent's check, its poll of a paused action
/// (answered with the check response only), and health. Approvals, the ledger, the dashboard
/// and its event stream are not served here. No Host check: browsers cannot reach a Unix socket.
pub fn socket_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/actions/{id}", get(actions::get))
        .route("/healthz", get(ops::health))
        .fallback(|| async {
            ApiError::not_found(
                "no such route on the check socket (approvals, the ledger and the dashboard are served over HTTP only)",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(guard::security_headers))
        .with_state(state)
}

/// `POST /v1/check`: may the agent run this tool call?
async fn check(
    state: axum::extract::State<AppState>,
    AgentCaller(peer): AgentCaller,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Result<Json<CheckResponse>, ApiError> {
    Ok(Json(state.check_from(request, peer).await?))
}
