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
use tokio::sync::{mpsc, oneshot, watch};

use crate::checker::{CheckEvent, DaemonChecker};
use crate::message::{self, Message, RequestId, code};
use crate::pins::{PinStatus, Pins, ToolDefinition};
use crate::session::{self, CheckOutcome, SessionConfig, ToolCallContext};
use crate::sse::{self, MessageScan};
use crate::stdio::PinStore;
use crate::tools::{self, DefinitionOutcome, Gate, OnChanged, ServerTools, ToolCall};

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
/// How much of a `tools/call` answer is read for its output (the next check's context).
const TAP_OUTPUT_BYTES: usize = 256 * 1024;

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
    /// Where the tool pins are kept (`None`: in memory only).
    pub pins: Option<PinStore>,
    /// What a call to a tool whose changed definition no one accepted does.
    pub on_changed: OnChanged,
}

#[derive(Debug, Default)]
struct SessionState {
    agent: Option<String>,
    previous_output: Option<String>,
}

/// A call in flight: its session key and its JSON-RPC id.
type CallSlot = (String, RequestId);

struct Proxy {
    config: HttpConfig,
    port: u16,
    http: reqwest::Client,
    checker: Arc<DaemonChecker>,
    sessions: Mutex<HashMap<String, SessionState>>,
    /// Calls being checked, by (session, request id): a `notifications/cancelled` fires it.
    /// Each with its own number, so a late cleanup never removes a newer call's slot.
    checking: Mutex<HashMap<CallSlot, (u64, oneshot::Sender<()>)>>,
    seq: AtomicU64,
    /// The upstream server's tools (one server: pins and annotations are the server's).
    tools: Mutex<ServerTools>,
    /// Bumped at every news of a definition record: calls waiting at the gate look again.
    definitions: watch::Sender<u64>,
    /// Where definition records report.
    definition_events: mpsc::UnboundedSender<CheckEvent>,
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
    let stored = config
        .pins
        .as_ref()
        .map(|store| store.load().server(&config.session.server))
        .unwrap_or_default();
    let tools = ServerTools::new(&config.session.server, Pins::new(stored), config.on_changed);
    let (definition_events, mut definition_news) = mpsc::unbounded_channel();
    let proxy = Arc::new(Proxy {
        config,
        port,
        http,
        checker,
        sessions: Mutex::new(HashMap::new()),
        checking: Mutex::new(HashMap::new()),
        seq: AtomicU64::new(0),
        tools: Mutex::new(tools),
        definitions: watch::Sender::new(0),
        definition_events,
    });
    let news_proxy = Arc::downgrade(&proxy);
    tokio::spawn(async move {
        while let Some(event) = definition_news.recv().await {
            let Some(proxy) = news_proxy.upgrade() else {
                return;
            };
            if let CheckEvent::Definition {
                tool,
                hash,
                outcome,
            } = event
            {
                proxy.definition(&tool, &hash, &outcome);
            }
        }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Proxy {
    /// News of a definition record: the tools learn it, the pins are saved when it was
    /// accepted, and calls waiting at the gate look again.
    fn definition(&self, tool: &str, hash: &str, outcome: &DefinitionOutcome) {
        {
            let mut tools = lock(&self.tools);
            tools.definition(tool, hash, outcome);
            if *outcome == DefinitionOutcome::Accepted
                && let Some(store) = &self.config.pins
            {
                store.save(&tools);
            }
        }
        self.definitions.send_modify(|n| *n += 1);
    }

    /// Records definitions (first sight, changed, new) in the ledger; first sights are pinned.
    fn record(&self, definitions: Vec<ToolDefinition>) {
        if definitions.iter().any(|d| d.change == "first_sight")
            && let Some(store) = &self.config.pins
        {
            store.save(&lock(&self.tools));
        }
        for definition in definitions {
            let checker = Arc::clone(&self.checker);
            let events = self.definition_events.clone();
            tokio::spawn(async move { checker.record_definition(definition, events).await });
        }
    }

    /// A `tools/list` answer seen on its way to the client.
    fn listed(&self, answer: &Value) {
        let Some(list) = answer
            .get("result")
            .and_then(|r| r.get("tools"))
            .and_then(Value::as_array)
        else {
            return;
        };
        let definitions = lock(&self.tools).listed(list);
        if !definitions.is_empty() {
            self.record(definitions);
        }
        // A call waiting for a definition the server replaced looks again.
        self.definitions.send_modify(|n| *n += 1);
    }
}

/// What the proxy reads of an upstream answer on its way to the client.
#[derive(Debug, Clone)]
enum Tap {
    /// A `tools/call`'s output: the next check's `previous_output` in this session.
    Output(String),
    /// A `tools/list`: the tools' pins and annotations.
    List,
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
            let Some(call) = tools::parse_tool_call(&value) else {
                let body =
                    message::error_response(&raw_id, code::INVALID_PARAMS, tools::BAD_TOOL_CALL);
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            };
            if let Some(header_name) = parts.headers.get("mcp-name")
                && header_name.as_bytes() != call.name.as_bytes()
            {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "the Mcp-Name header does not match the tool called",
                );
            }
            tool_call(proxy, parts.headers, key, id, raw_id, value, call).await
        }
        Message::Notification { method, value } if method == "notifications/cancelled" => {
            let target = value
                .get("params")
                .and_then(|p| p.get("requestId"))
                .and_then(RequestId::from_value);
            let cancel = target.and_then(|id| lock(&proxy.checking).remove(&(key.clone(), id)));
            match cancel {
                // The server never saw the call: the cancel stays here.
                Some((_, cancel)) => {
                    let _ = cancel.send(());
                    StatusCode::ACCEPTED.into_response()
                }
                None => forward(&proxy, &parts.method, &parts.headers, bytes, None).await,
            }
        }
        msg => {
            let mut tap = None;
            if let Message::Request { method, value, .. } = &msg {
                if method == "initialize" {
                    let agent = value
                        .get("params")
                        .and_then(|p| p.pointer("/clientInfo/name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    // The session id comes with the answer; kept here until then.
                    lock(&proxy.sessions)
                        .entry("pending-init".into())
                        .or_default()
                        .agent = agent;
                }
                if method == "tools/list" {
                    tap = Some(Tap::List);
                }
            }
            forward(&proxy, &parts.method, &parts.headers, bytes, tap).await
        }
    }
}

/// How a `tools/call` was settled before anything reached the server.
enum Settled {
    Allow,
    /// The text of the error result.
    Refuse(String),
}

/// One `tools/call`: the gate, the check, then the upstream. With a `progressToken` and a
/// client that takes SSE, a call that pauses is answered as an SSE stream: progress
/// notifications while it waits, then the server's answer.
async fn tool_call(
    proxy: Arc<Proxy>,
    headers: HeaderMap,
    key: String,
    id: RequestId,
    raw_id: Value,
    value: serde_json::Map<String, Value>,
    call: ToolCall,
) -> Response {
    // One call per (session, id) at a time: a colliding id would confuse cancels.
    let (cancel_tx, cancel) = oneshot::channel();
    let slot = (key.clone(), id.clone());
    let number = proxy.seq.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut checking = lock(&proxy.checking);
        if checking.contains_key(&slot) {
            let body = message::error_response(
                &raw_id,
                code::INVALID_REQUEST,
                "this request id is already in use by a request in flight",
            );
            return (StatusCode::CONFLICT, axum::Json(body)).into_response();
        }
        checking.insert(slot.clone(), (number, cancel_tx));
    }
    let forget = RemoveOnDrop {
        proxy: Arc::clone(&proxy),
        slot,
        number,
    };
    let sse = call.progress_token.is_some() && accepts_sse(&headers);
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Value>();
    let token = call.progress_token.clone();
    let count = AtomicU64::new(0);
    let progress = move |text: &str| {
        if let Some(token) = &token {
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = progress_tx.send(message::progress_notification(token, n, text));
        }
    };
    let work = {
        let proxy = Arc::clone(&proxy);
        let raw_id = raw_id.clone();
        let request = Value::Object(value.clone());
        async move {
            let settled = settle(&proxy, &key, &id, &call, cancel, progress).await;
            drop(forget);
            match settled {
                Settled::Allow => {
                    // Forward exactly what was checked.
                    let body =
                        Bytes::from(serde_json::to_vec(&Value::Object(value)).unwrap_or_default());
                    forward(
                        &proxy,
                        &Method::POST,
                        &headers,
                        body,
                        Some(Tap::Output(key)),
                    )
                    .await
                }
                Settled::Refuse(text) => {
                    axum::Json(message::tool_error_for(Some(&request), &raw_id, &text))
                        .into_response()
                }
            }
        }
    };
    if !sse {
        // The client closing its request drops this future: a paused action is withdrawn.
        return work.await;
    }
    let mut task = AbortOnDrop(tokio::spawn(work));
    let first = tokio::select! {
        done = &mut task.0 => {
            return done.unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "the call failed"));
        }
        Some(first) = progress_rx.recv() => first,
    };
    // Paused: from now on the answer is an SSE stream.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut task = task;
        if tx.send(Ok(Bytes::from(sse::event(&first)))).await.is_err() {
            return;
        }
        let response = loop {
            tokio::select! {
                done = &mut task.0 => break done.ok(),
                Some(next) = progress_rx.recv() => {
                    if tx.send(Ok(Bytes::from(sse::event(&next)))).await.is_err() {
                        return;
                    }
                }
                // The client left: dropping the task withdraws a paused action.
                () = tx.closed() => return,
            }
        };
        let Some(response) = response else {
            let err = message::error_response(&raw_id, code::INTERNAL_ERROR, "the call failed");
            let _ = tx.send(Ok(Bytes::from(sse::event(&err)))).await;
            return;
        };
        pipe_as_sse(response, &raw_id, &tx).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "bad response"))
}

/// The answer to a call, after progress events: an SSE answer's events go through as they
/// are; a JSON answer becomes one event.
async fn pipe_as_sse(
    response: Response,
    raw_id: &Value,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let status = response.status();
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut body = response.into_body().into_data_stream();
    if is_sse {
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { return };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        return;
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let event = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.is_object() => sse::event(&value),
        _ if status.is_success() && !bytes.is_empty() => sse::raw_event(&bytes),
        _ => sse::event(&message::error_response(
            raw_id,
            code::INTERNAL_ERROR,
            &format!("the upstream MCP server answered HTTP {}", status.as_u16()),
        )),
    };
    let _ = tx.send(Ok(Bytes::from(event))).await;
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// Aborts its task when dropped (the client left).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The gate and the check of one call, until it may be forwarded or must be refused. A
/// `notifications/cancelled` for it ends it (refused: the client no longer waits).
async fn settle(
    proxy: &Arc<Proxy>,
    key: &str,
    id: &RequestId,
    call: &ToolCall,
    mut cancel: oneshot::Receiver<()>,
    progress: impl Fn(&str),
) -> Settled {
    let mut news = proxy.definitions.subscribe();
    loop {
        news.borrow_and_update();
        let gate = lock(&proxy.tools).gate(&call.name);
        match gate {
            Gate::Open => {}
            Gate::Refuse(text) => return Settled::Refuse(text),
            Gate::Wait { record, message } => {
                if let Some(record) = record {
                    proxy.record(vec![*record]);
                }
                progress(&message);
                tokio::select! {
                    changed = news.changed() => {
                        if changed.is_err() {
                            return Settled::Refuse("Gatehouse could not check this tool call, so it was not run: the proxy is stopping".into());
                        }
                    }
                    Ok(()) = &mut cancel => {
                        return Settled::Refuse("cancelled by the client; it was not run".into());
                    }
                }
                continue;
            }
        }
        let seq = proxy.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let request = {
            let sessions = lock(&proxy.sessions);
            let state = sessions.get(key);
            let tools = lock(&proxy.tools);
            let mut config = proxy.config.session.clone();
            config.session_id = format!("{}-{key}", config.session_id);
            session::tool_check(
                &config,
                &ToolCallContext {
                    agent: state
                        .and_then(|s| s.agent.as_deref())
                        .or(call.client_name.as_deref()),
                    previous_output: state.and_then(|s| s.previous_output.as_deref()),
                    annotations: tools.annotations(&call.name),
                    definition: tools.status(&call.name),
                },
                &format!("{}-{seq}:{}", proxy.config.session.nonce, id.as_str()),
                &call.name,
                call.arguments.clone(),
            )
        };
        let outcome = check_cancellable(&proxy.checker, seq, request, &mut cancel, &progress).await;
        if let Some(text) = session::refusal_text(&outcome) {
            return Settled::Refuse(text);
        }
        // Allowed; the definition may have changed while it was checked: the gate again.
        if matches!(
            lock(&proxy.tools).status(&call.name),
            PinStatus::Accepted | PinStatus::Unknown
        ) {
            return Settled::Allow;
        }
    }
}

/// Forgets a call's cancel slot when its settling ends (or the client left).
struct RemoveOnDrop {
    proxy: Arc<Proxy>,
    slot: (String, RequestId),
    number: u64,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let mut checking = lock(&self.proxy.checking);
        if checking
            .get(&self.slot)
            .is_some_and(|(n, _)| *n == self.number)
        {
            checking.remove(&self.slot);
        }
    }
}

/// Runs a check; if the client's request is dropped (it closed the stream) or cancelled while
/// the check is paused, the action is withdrawn once the daemon has named it.
async fn check_cancellable(
    checker: &Arc<DaemonChecker>,
    seq: u64,
    request: gatehouse_protocol::CheckRequest,
    cancel: &mut oneshot::Receiver<()>,
    progress: &impl Fn(&str),
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
            Ok(()) = &mut *cancel => {
                // Dropping the guard withdraws the action (now, or once it is named).
                drop(guard);
                return CheckOutcome::Failed { message: "cancelled by the client".into() };
            }
        };
        match event {
            Some(CheckEvent::Paused { action_id, .. }) => {
                progress(&session::paused_message(&action_id));
                guard.action_id = Some(action_id);
            }
            Some(CheckEvent::Done { outcome, .. }) => {
                guard.events = None;
                return outcome;
            }
            Some(CheckEvent::Definition { .. }) => {}
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

/// Sends the request upstream and streams the answer back, reading what `tap` says on the way.
async fn forward(
    proxy: &Arc<Proxy>,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
    tap: Option<Tap>,
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
        let mut sessions = lock(&proxy.sessions);
        if let Some(pending) = sessions.remove("pending-init") {
            sessions.entry(key).or_default().agent = pending.agent;
        }
    }
    let content_type = upstream
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let reader = tap.map(|tap| {
        let limit = match tap {
            Tap::Output(_) => TAP_OUTPUT_BYTES,
            Tap::List => MAX_BODY_BYTES,
        };
        (tap, MessageScan::new(content_type.as_deref(), limit))
    });
    let proxy = Arc::clone(proxy);
    let stream = futures::stream::unfold(
        (upstream, reader, proxy),
        |(mut upstream, mut reader, proxy)| async move {
            match upstream.chunk().await {
                Ok(Some(chunk)) => {
                    if let Some((tap, scan)) = &mut reader {
                        // Read before the client gets the chunk: a listing is known first.
                        for answer in scan.push(&chunk) {
                            tapped(&proxy, tap, &answer);
                        }
                    }
                    Some((
                        Ok::<Bytes, std::io::Error>(chunk),
                        (upstream, reader, proxy),
                    ))
                }
                Ok(None) => {
                    if let Some((tap, scan)) = &mut reader {
                        for answer in scan.finish() {
                            tapped(&proxy, tap, &answer);
                        }
                        if scan.overflowed() && matches!(tap, Tap::List) {
                            tracing::warn!(
                                "a tools/list answer over {MAX_BODY_BYTES} bytes was not read for pinning"
                            );
                        }
                    }
                    None
                }
                Err(err) => Some((Err(std::io::Error::other(err)), (upstream, None, proxy))),
            }
        },
    );
    out.body(Body::from_stream(stream.fuse()))
        .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "bad upstream response"))
}

/// One message of a tapped answer: only the response (an `id` and a `result`) counts.
fn tapped(proxy: &Proxy, tap: &Tap, answer: &Value) {
    let Some(result) = answer.get("result").filter(|_| answer.get("id").is_some()) else {
        return;
    };
    match tap {
        Tap::Output(key) => {
            let output = session::output_text(result, session::PREVIOUS_OUTPUT_BYTES);
            lock(&proxy.sessions)
                .entry(key.clone())
                .or_default()
                .previous_output = Some(output);
        }
        Tap::List => proxy.listed(answer),
    }
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
