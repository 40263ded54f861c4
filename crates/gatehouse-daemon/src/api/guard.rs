//! Who may call what: the Host check that runs before routing (DNS-rebinding defence), the
//! Origin check for browsers, and the extractors that authenticate agents and approvers.

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::auth::{CSRF_HEADER, Caller, SESSION_COOKIE, secrets_match};
use crate::check::Peer;
use crate::listen::SocketPeer;

/// Refuses, before routing, any request not addressed to one of this daemon's own names (DNS
/// rebinding), and any request a browser sends from another origin (CSRF).
pub async fn require_own_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !addressed_to_us(&state, &request) {
        return ApiError::forbidden(
            "forbidden_host",
            "the Host header does not name this daemon (requests must be addressed to 127.0.0.1, localhost or [::1] with its port)",
        )
        .into_response();
    }
    if !origin_allowed(&state, request.headers()) {
        return ApiError::forbidden(
            "forbidden_origin",
            "requests from other origins are refused",
        )
        .into_response();
    }
    next.run(request).await
}

/// Exactly one Host header naming us; and an absolute-form request target
/// (`POST http://evil.com/v1/check`), whose authority HTTP says overrides Host, must name us too.
fn addressed_to_us(state: &AppState, request: &Request) -> bool {
    let ours = |name: &str| {
        state
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
    };
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        (None, _) => None,
        (Some(_), Some(_)) => return false,
    };
    let authority = request.uri().authority().map(|a| a.as_str());
    match (host, authority) {
        (Some(host), Some(authority)) => ours(host) && ours(authority),
        (Some(name), None) | (None, Some(name)) => ours(name),
        (None, None) => false,
    }
}

/// Security headers every response carries.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A browser's Origin must be the daemon's own, with its scheme (or absent, for non-browser
/// clients).
pub fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|origin| {
            state
                .allowed_origins
                .iter()
                .any(|ours| origin.eq_ignore_ascii_case(ours))
        }),
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Authenticates the request: a bearer token, else the dashboard's session cookie. On the check
/// socket every caller is an agent (see `socket_agent`).
fn authenticate(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketPeer>>() {
        return socket_agent(state, parts, *peer).map(|_| Caller::Agent);
    }
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
        return state
            .auth
            .bearer(token.trim())
            .ok_or_else(|| ApiError::unauthorized("the token is not valid"));
    }
    if let Some(cookie) = session_cookie(&parts.headers) {
        return state.auth.session(cookie).ok_or_else(|| {
            ApiError::unauthorized(
                "the dashboard session has expired; open a new login link (`gatehouse dashboard`)",
            )
        });
    }
    Err(ApiError::unauthorized(
        "missing credentials: send `Authorization: Bearer <token>` (tokens are in the data directory)",
    ))
}

/// A caller on the check socket. The kernel vouches for the peer, and the socket file's mode
/// says who may connect, so no token is needed; a token sent anyway must be the agent token.
/// The approver token is refused here: approvals never travel over the agents' socket.
fn socket_agent(state: &AppState, parts: &Parts, peer: SocketPeer) -> Result<Peer, ApiError> {
    let SocketPeer(Some(peer)) = peer else {
        return Err(ApiError::forbidden(
            "forbidden",
            "the check socket could not identify the connecting process",
        ));
    };
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(peer);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
    match state.auth.bearer(token.trim()) {
        Some(Caller::Agent) => Ok(peer),
        Some(_) => Err(ApiError::forbidden(
            "forbidden",
            "approver credentials are not accepted on the check socket; approve over HTTP",
        )),
        None => Err(ApiError::unauthorized("the token is not valid")),
    }
}

/// Any authenticated caller; handlers that serve both agents and approvers look at which.
#[derive(Debug)]
pub struct AnyCaller(pub Caller);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(state, parts)?;
        if let Caller::Dashboard { csrf, .. } = &caller {
            check_dashboard_request(state, parts, csrf)?;
        }
        Ok(AnyCaller(caller))
    }
}

/// The agent token, or a process on the check socket: may check actions, and nothing an
/// approver does. Carries the socket peer's credentials, which are recorded with the action.
#[derive(Debug)]
pub struct AgentCaller(pub Option<Peer>);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketPeer>>() {
            return socket_agent(state, parts, *peer).map(|peer| AgentCaller(Some(peer)));
        }
        match authenticate(state, parts)? {
            Caller::Agent => Ok(AgentCaller(None)),
            _ => Err(ApiError::forbidden(
                "forbidden",
                "only the agent token may check actions; approver credentials cannot act for an agent",
            )),
        }
    }
}

/// The approver token or a dashboard session: may decide and read the ledger.
#[derive(Debug)]
pub struct ApproverCaller(pub Caller);

impl FromRequestParts<AppState> for ApproverCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(state, parts)? {
            Caller::Agent => Err(ApiError::forbidden(
                "forbidden",
                "the agent token cannot approve, deny or read the ledger",
            )),
            caller => {
                if let Caller::Dashboard { csrf, .. } = &caller {
                    check_dashboard_request(state, parts, csrf)?;
                }
                Ok(ApproverCaller(caller))
            }
        }
    }
}

/// A cookie-authenticated browser request must come from our own origin, and a state change
/// must carry the session's CSRF token.
fn check_dashboard_request(state: &AppState, parts: &Parts, csrf: &str) -> Result<(), ApiError> {
    if !origin_allowed(state, &parts.headers) {
        return Err(ApiError::forbidden(
            "forbidden_origin",
            "requests from other origins are refused",
        ));
    }
    let safe = matches!(parts.method, Method::GET | Method::HEAD);
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !safe && !secrets_match(sent, csrf) {
        return Err(ApiError::forbidden(
            "csrf",
            "missing or wrong X-Gatehouse-Csrf header (get it from GET /v1/session)",
        ));
    }
    Ok(())
}
