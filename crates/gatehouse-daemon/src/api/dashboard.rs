//! The dashboard: its embedded page and assets, the one-time login link that starts a cookie
//! session, and the CSRF token the page echoes on every state change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_protocol::{LoginLink, SessionInfo};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::auth::Caller;
use crate::clock::now_ms;

const INDEX_HTML: &str = include_str!("../../assets/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `js!("name")`: the ES module `assets/js/name.js`, served at `/assets/js/name.js`.
macro_rules! js {
    ($name:literal) => {
        (
            concat!("js/", $name, ".js"),
            JS,
            include_str!(concat!("../../assets/js/", $name, ".js")),
        )
    };
}

/// Every asset the page loads, by its path under `/assets/`: nothing else is served from there.
/// The dashboard is ES modules under `js/` (`main.js` imports the rest); a feature adds its
/// module file and one `js!` line here.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../../assets/app.css")),
    js!("main"),
    js!("state"),
    js!("dom"),
    js!("format"),
    js!("api"),
    js!("page"),
    js!("events"),
    js!("pending"),
    js!("modal"),
    js!("presence"),
    js!("review"),
    js!("console"),
    js!("ledger"),
    js!("sessions"),
    js!("overview"),
    js!("policy"),
    js!("grants"),
    js!("edit"),
    js!("confirm"),
];

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

/// `GET /assets/{path}`: one of the page's assets, or 404 for any path not in the table.
pub async fn asset_file(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => asset(content_type, body),
        None => ApiError::not_found("no such asset").into_response(),
    }
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
    match state.redeem_login(&query.code).await {
        Some(session) => {
            let cookie = crate::auth::session_set_cookie(
                &session,
                state.auth.session_ttl(),
                state.secure_cookies,
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
        Caller::Dashboard { csrf, person } => Ok(Json(SessionInfo {
            csrf_token: csrf,
            name: person.name,
            role: person.role,
        })),
        _ => Err(ApiError::forbidden(
            "forbidden",
            "only a dashboard session has a CSRF token",
        )),
    }
}

/// `POST /v1/login-codes`: a fresh one-time login URL for the token's person (the approver
/// token or a person's own token, not a session): the session it opens is theirs.
pub async fn login_code(
    State(state): State<AppState>,
    ApproverCaller(caller): ApproverCaller,
) -> Result<Json<LoginLink>, ApiError> {
    let person = match caller {
        Caller::Approver => crate::auth::Person::owner(),
        Caller::Person(person) => person,
        _ => {
            return Err(ApiError::forbidden(
                "forbidden",
                "login links are issued to a token (the approver token or a person's), not a session",
            ));
        }
    };
    let (url, ttl) = state.login_link_shared(person).await;
    Ok(Json(LoginLink {
        url,
        expires_at_ms: now_ms() + ttl.as_millis() as i64,
    }))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A module file the table forgets would be a 404 and a dead page: every file under
    /// assets/js/ is served, and the table names nothing that is not there.
    #[test]
    fn every_module_on_disk_is_in_the_asset_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/js");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| format!("js/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|name| name.ends_with(".js"))
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS
            .iter()
            .map(|(name, _, _)| (*name).to_owned())
            .filter(|name| name.starts_with("js/"))
            .collect();
        served.sort();
        assert_eq!(served, on_disk);
    }
}
