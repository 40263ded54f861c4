//! The dashboard: its embedded page and assets, the one-time login link that starts a cookie
//! session, and the CSRF token the page echoes on every state change.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_protocol::{LoginLink, SessionInfo};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::auth::{Caller, SESSION_COOKIE};
use crate::clock::now_ms;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    code: String,
}

/// `GET /login?code=…`: spends the one-time code and starts a session.
pub async fn login(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LoginQuery>,
) -> Response {
    match state.auth.redeem_login_code(&query.code) {
        Some(session) => {
            let cookie = format!(
                "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                state.auth.session_ttl().as_secs()
            );
            let mut response = Redirect::to("/").into_response();
            *response.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This login link is not valid: it expired or was already used.\n\
             Run `gatehouse dashboard` for a new one.\n",
        )
            .into_response(),
    }
}

/// `GET /v1/session`: the dashboard page's CSRF token.
pub async fn session(
    ApproverCaller(caller): ApproverCaller,
) -> Result<Json<SessionInfo>, ApiError> {
    match caller {
        Caller::Dashboard { csrf } => Ok(Json(SessionInfo { csrf_token: csrf })),
        _ => Err(ApiError::forbidden(
            "forbidden",
            "only a dashboard session has a CSRF token",
        )),
    }
}

/// `POST /v1/login-codes`: a fresh one-time login URL (approver token only, not a session).
pub async fn login_code(
    State(state): State<AppState>,
    ApproverCaller(caller): ApproverCaller,
) -> Result<Json<LoginLink>, ApiError> {
    if caller != Caller::Approver {
        return Err(ApiError::forbidden(
            "forbidden",
            "login links are issued to the approver token only",
        ));
    }
    let (url, ttl) = state.login_link();
    Ok(Json(LoginLink {
        url,
        expires_at_ms: now_ms() + ttl.as_millis() as i64,
    }))
}
