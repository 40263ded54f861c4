//! The Streamable HTTP transport: `gatehouse mcp http --upstream URL` listens on loopback and
//! forwards every request to the upstream MCP server, checking each `tools/call` first.
//!
//! Guards, in order, before anything is forwarded: the `Host` header must name this listener
//! (`127.0.0.1`, `localhost` or `[::1]` with its port) and an `Origin`, when sent, must be a
//! loopback one (else `403`: DNS rebinding); the client must present the proxy's token
//! (`Authorization: Bearer T`, or `?gatehouse_token=T` for clients that cannot set headers; else
//! `401`). The client's `Authorization` is never forwarded; the upstream's credentials
//! (`--upstream-header`) are added here and never shown to the client.
//!
//! Protocol revisions: 2025-06-18 and 2025-11-25 (`initialize`, `Mcp-Session-Id`,
//! `MCP-Protocol-Version`, JSON or SSE responses streamed through as they come) and the
//! stateless 2026-07-28 shape (`server/discover`, `Mcp-Method`/`Mcp-Name` headers, which must
//! agree with the body: a `tools/call` whose `Mcp-Name` names another tool is refused).
//! A client that closes its request while the call is paused withdraws the action.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::checker::{CheckEvent, DaemonChecker};
use crate::message::{self, Message, RequestId, code};
use crate::pins::PinStatus;
use crate::session::{self, CheckOutcome, SessionConfig, ToolCallContext};

/// Largest request body accepted from a client.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Request headers passed to the upstream (besides the upstream's own credentials).
const FORWARD_REQUEST: [&str; 7] = [
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
];
/// Response headers passed back to the client.
const FORWARD_RESPONSE: [&str; 5] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "cache-control",
    "allow",
];
/// How much of a `tools/call` response is kept to read its output for the next check.
const TAP_BYTES: usize = 256 * 1024;

/// How the HTTP proxy is set up.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub upstream: reqwest::Url,
    /// Name, nonce and cwd for the checks (`session_id` gets the MCP session appended).
    pub session: SessionConfig,
    /// The token clients present.
    pub token: String,
    /// Added to every upstream request (credentials): never sent to the client.
    pub upstream_headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Default)]
struct SessionState {
    agent: Option<String>,
    previous_output: Option<String>,
}

struct Proxy {
    config: HttpConfig,
    port: u16,
    http: reqwest::Client,
    checker: Arc<DaemonChecker>,
    sessions: Mutex<HashMap<String, SessionState>>,
    /// Calls being checked, by (session, request id): a `notifications/cancelled` fires it.
    checking: Mutex<HashMap<(String, RequestId), oneshot::Sender<()>>>,
    seq: AtomicU64,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: HttpConfig,
    checker: Arc<DaemonChecker>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let proxy = Arc::new(Proxy {
        config,
        port,
        http,
        checker,
        sessions: Mutex::new(HashMap::new()),
        checking: Mutex::new(HashMap::new()),
        seq: AtomicU64::new(0),
    });
    let app = Router::new().fallback(handle).with_state(proxy);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = message::error_response(&Value::Null, code::INVALID_REQUEST, message);
    (status, axum::Json(body)).into_response()
}

/// Whether `host` (a `Host` header, or an `Origin`'s host[:port]) is this listener on loopback.
fn loopback_host(host: &str, port: Option<u16>) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, p)) if !name.ends_with(':') && !p.contains(']') => (name, p.parse().ok()),
        _ => (host, None),
    };
    let loopback = matches!(
        name.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "[::1]"
    );
    loopback && (port.is_none() || given_port == port)
}

fn origin_ok(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match rest {
        Some(host) if !host.contains('/') => loopback_host(host, None),
        _ => false,
    }
}

impl Proxy {
    fn guard(&self, request: &Request) -> Result<(), Box<Response>> {
        let headers = request.headers();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !loopback_host(host, Some(self.port)) {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "the Host header does not name this loopback proxy",
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN)
            && !origin.to_str().is_ok_and(origin_ok)
        {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "requests from this Origin are not allowed",
            )));
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let query = request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("gatehouse_token="))
        });
        let expected = self.config.token.as_bytes();
        let given = bearer.or(query).unwrap_or("");
        if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected)) {
            return Err(Box::new(refuse(
                StatusCode::UNAUTHORIZED,
                "present the gatehouse MCP proxy token (Authorization: Bearer, or ?gatehouse_token=)",
            )));
        }
        Ok(())
    }

    fn session_key(headers: &HeaderMap) -> String {
        headers
            .get("mcp-session-id")
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| "stateless".to_owned(), short_hash)
    }
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    if let Err(refused) = proxy.guard(&request) {
        return *refused;
    }
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return forward(&proxy, &parts.method, &parts.headers, Bytes::new(), None).await;
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is over {MAX_BODY_BYTES} bytes or was cut"),
            );
        }
    };
    let msg = match message::decode(&bytes) {
        Ok(msg) => msg,
        Err(bad) => {
            let body = message::error_response(&bad.raw_id, bad.code, &bad.message);
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    if let Some(method) = parts.headers.get("mcp-method")
        && msg
            .method()
            .is_none_or(|m| method.as_bytes() != m.as_bytes())
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the Mcp-Method header does not match the body's method",
        );
    }
    let key = Proxy::session_key(&parts.headers);
    match msg {
        Message::Request {
            method,
            raw_id,
            id,
            value,
        } if method == "tools/call" => {
            let params = value.get("params").and_then(Value::as_object);
            let name = params.and_then(|p| p.get("name")).and_then(Value::as_str);
            let arguments = match params.and_then(|p| p.get("arguments")) {
                None | Some(Value::Null) => Some(serde_json::Map::new()),
                Some(Value::Object(a)) => Some(a.clone()),
                Some(_) => None,
            };
            let (Some(name), Some(arguments)) = (name, arguments) else {
                let body = message::error_response(
                    &raw_id,
                    code::INVALID_PARAMS,
                    "tools/call needs params.name (a string) and params.arguments (an object)",
                );
                return axum::Json(body).into_response();
            };
            if let Some(header_name) = parts.headers.get("mcp-name")
                && header_name.as_bytes() != name.as_bytes()
            {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "the Mcp-Name header does not match the tool called",
                );
            }
            let seq = proxy.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let request = {
                let sessions = proxy.sessions.lock().unwrap_or_else(|e| e.into_inner());
                let state = sessions.get(&key);
                let mut config = proxy.config.session.clone();
                config.session_id = format!("{}-{key}", config.session_id);
                session::tool_check(
                    &config,
                    &ToolCallContext {
                        agent: state.and_then(|s| s.agent.as_deref()),
                        previous_output: state.and_then(|s| s.previous_output.as_deref()),
                        annotations: None,
                        definition: PinStatus::Unknown,
                    },
                    &format!("{}-{seq}:{}", proxy.config.session.nonce, id.as_str()),
                    name,
                    arguments,
                )
            };
            let (cancel_tx, cancel) = oneshot::channel();
            let slot = (key.clone(), id.clone());
            proxy
                .checking
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slot.clone(), cancel_tx);
            let outcome = check_cancellable(&proxy.checker, seq, request, cancel).await;
            proxy
                .checking
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&slot);
            match outcome {
                CheckOutcome::Allow => {
                    // Forward exactly what was checked.
                    let body =
                        Bytes::from(serde_json::to_vec(&Value::Object(value)).unwrap_or_default());
                    forward(&proxy, &parts.method, &parts.headers, body, Some(key)).await
                }
                CheckOutcome::Reject { reason, rule_id } => {
                    let rule = rule_id.map(|r| format!(" (rule {r})")).unwrap_or_default();
                    let text = format!(
                        "Gatehouse rejected this tool call{rule}: {reason}. It was not run."
                    );
                    axum::Json(message::tool_error_result(&raw_id, &text)).into_response()
                }
                CheckOutcome::Failed { message } => {
                    let text = format!(
                        "Gatehouse could not check this tool call, so it was not run: {message}"
                    );
                    axum::Json(message::tool_error_result(&raw_id, &text)).into_response()
                }
            }
        }
        Message::Notification { method, value } if method == "notifications/cancelled" => {
            let target = value
                .get("params")
                .and_then(|p| p.get("requestId"))
                .and_then(RequestId::from_value);
            let cancel = target.and_then(|id| {
                proxy
                    .checking
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(key.clone(), id))
            });
            match cancel {
                // The server never saw the call: the cancel stays here.
                Some(cancel) => {
                    let _ = cancel.send(());
                    StatusCode::ACCEPTED.into_response()
                }
                None => forward(&proxy, &parts.method, &parts.headers, bytes, None).await,
            }
        }
        msg => {
            if let Message::Request { method, value, .. } = &msg
                && method == "initialize"
            {
                let agent = value
                    .get("params")
                    .and_then(|p| p.pointer("/clientInfo/name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                // The session id comes with the answer; remembered under "stateless" until then.
                let mut sessions = proxy.sessions.lock().unwrap_or_else(|e| e.into_inner());
                sessions.entry("pending-init".into()).or_default().agent = agent;
            }
            forward(&proxy, &parts.method, &parts.headers, bytes, None).await
        }
    }
}

/// Runs a check; if the client's request is dropped (it closed the stream) while the check is
/// paused, the action is withdrawn once the daemon has named it.
async fn check_cancellable(
    checker: &Arc<DaemonChecker>,
    seq: u64,
    request: gatehouse_protocol::CheckRequest,
    mut cancel: oneshot::Receiver<()>,
) -> CheckOutcome {
    let (tx, rx) = mpsc::unbounded_channel();
    let task_checker = Arc::clone(checker);
    tokio::spawn(async move { task_checker.run(seq, request, tx).await });
    let mut guard = WithdrawOnDrop {
        checker: Arc::clone(checker),
        events: Some(rx),
        action_id: None,
    };
    loop {
        let Some(events) = guard.events.as_mut() else {
            return CheckOutcome::Failed {
                message: "the check ended without a verdict".into(),
            };
        };
        let event = tokio::select! {
            event = events.recv() => event,
            Ok(()) = &mut cancel => {
                // Dropping the guard withdraws the action (now, or once it is named).
                drop(guard);
                return CheckOutcome::Failed { message: "cancelled by the client".into() };
            }
        };
        match event {
            Some(CheckEvent::Paused { action_id, .. }) => guard.action_id = Some(action_id),
            Some(CheckEvent::Done { outcome, .. }) => {
                guard.events = None;
                return outcome;
            }
            Some(CheckEvent::DefinitionAccepted { .. }) => {}
            None => {
                guard.events = None;
                return CheckOutcome::Failed {
                    message: "the check ended without a verdict".into(),
                };
            }
        }
    }
}

struct WithdrawOnDrop {
    checker: Arc<DaemonChecker>,
    /// `Some` while the check runs.
    events: Option<mpsc::UnboundedReceiver<CheckEvent>>,
    action_id: Option<String>,
}

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        let Some(mut events) = self.events.take() else {
            return;
        };
        let checker = Arc::clone(&self.checker);
        let known = self.action_id.take();
        tokio::spawn(async move {
            let action_id = match known {
                Some(id) => Some(id),
                None => loop {
                    match events.recv().await {
                        Some(CheckEvent::Paused { action_id, .. }) => break Some(action_id),
                        Some(CheckEvent::Done { .. }) | None => break None,
                        Some(_) => {}
                    }
                },
            };
            if let Some(action_id) = action_id
                && let Err(err) = checker.withdraw(&action_id).await
            {
                tracing::warn!(%action_id, error = %err, "could not withdraw a paused MCP call");
            }
        });
    }
}

/// Sends the request upstream and streams the answer back. `tap`: the session whose
/// `previous_output` the answer of a `tools/call` becomes.
async fn forward(
    proxy: &Arc<Proxy>,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
    tap: Option<String>,
) -> Response {
    let Ok(upstream_method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "unsupported method");
    };
    let mut request = proxy
        .http
        .request(upstream_method, proxy.config.upstream.clone());
    for name in FORWARD_REQUEST {
        for value in headers.get_all(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    for (name, value) in &proxy.config.upstream_headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    if !body.is_empty() {
        request = request.body(body.to_vec());
    }
    let upstream = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(error = %err, "the upstream MCP server is unreachable");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "the upstream MCP server is unreachable",
            );
        }
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for name in FORWARD_RESPONSE {
        for value in upstream.headers().get_all(name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                out = out.header(name, value);
            }
        }
    }
    let session_from_answer = upstream
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(short_hash);
    if let Some(key) = session_from_answer {
        // The agent named at `initialize` belongs to the session the server just opened.
        let mut sessions = proxy.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pending) = sessions.remove("pending-init") {
            sessions.entry(key).or_default().agent = pending.agent;
        }
    }
    let proxy = Arc::clone(proxy);
    let stream = futures::stream::unfold(
        (upstream, Vec::<u8>::new(), tap, proxy),
        |(mut upstream, mut seen, tap, proxy)| async move {
            match upstream.chunk().await {
                Ok(Some(chunk)) => {
                    if tap.is_some() && seen.len() < TAP_BYTES {
                        seen.extend_from_slice(&chunk[..chunk.len().min(TAP_BYTES - seen.len())]);
                    }
                    Some((
                        Ok::<Bytes, std::io::Error>(chunk),
                        (upstream, seen, tap, proxy),
                    ))
                }
                Ok(None) => {
                    if let Some(key) = &tap {
                        remember_output(&proxy, key, &seen);
                    }
                    None
                }
                Err(err) => Some((
                    Err(std::io::Error::other(err)),
                    (upstream, seen, None, proxy),
                )),
            }
        },
    );
    out.body(Body::from_stream(stream.fuse()))
        .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "bad upstream response"))
}

/// The output of a `tools/call` answer (JSON, or the SSE event that holds the response).
fn remember_output(proxy: &Proxy, key: &str, seen: &[u8]) {
    let text = String::from_utf8_lossy(seen);
    let mut candidates: Vec<Value> = Vec::new();
    if let Ok(value) = serde_json::from_str::<Value>(text.trim()) {
        candidates.push(value);
    } else {
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(value) = serde_json::from_str::<Value>(data.trim())
            {
                candidates.push(value);
            }
        }
    }
    let Some(result) = candidates
        .iter()
        .rev()
        .find_map(|v| v.get("result").filter(|_| v.get("id").is_some()))
    else {
        return;
    };
    let output = session::output_text(result, session::PREVIOUS_OUTPUT_BYTES);
    let mut sessions = proxy.sessions.lock().unwrap_or_else(|e| e.into_inner());
    sessions.entry(key.to_owned()).or_default().previous_output = Some(output);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_loopback_listener_is_a_good_host() {
        assert!(loopback_host("127.0.0.1:8080", Some(8080)));
        assert!(loopback_host("localhost:8080", Some(8080)));
        assert!(loopback_host("[::1]:8080", Some(8080)));
        assert!(!loopback_host("127.0.0.1:8081", Some(8080)));
        assert!(!loopback_host("evil.example.com:8080", Some(8080)));
        assert!(!loopback_host("evil.example.com", Some(8080)));
        assert!(!loopback_host("localhost.evil.com:8080", Some(8080)));
        assert!(!loopback_host("", Some(8080)));
    }

    #[test]
    fn only_loopback_origins_are_allowed() {
        assert!(origin_ok("http://localhost:3000"));
        assert!(origin_ok("http://127.0.0.1"));
        assert!(!origin_ok("http://evil.example.com"));
        assert!(!origin_ok("http://localhost.evil.com"));
        assert!(!origin_ok("null"));
        assert!(!origin_ok("http://localhost:3000/x"));
    }
}
