//! The API's boundary: credentials, the dashboard's cookie session and its CSRF token, response
//! headers, decisions, routes and query strings, and the helpers the attack tests share (one
//! module per attack class in `attacks/`). Each test would fail if its defence were removed, and
//! a refused request records nothing in the ledger.

use std::fmt::Display;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Setup, TestDaemon, allowed, paused};

/// Every wait on the daemon in this module is bounded by this.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

pub(crate) const CSRF: &str = "x-gatehouse-csrf";

pub(crate) fn get(daemon: &TestDaemon, path: &str) -> RequestBuilder {
    daemon.http.get(daemon.url(path))
}

pub(crate) fn post(daemon: &TestDaemon, path: &str) -> RequestBuilder {
    daemon.http.post(daemon.url(path))
}

/// One whole response; a body that is not JSON is kept as a JSON string.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

pub(crate) async fn send(request: RequestBuilder) -> Reply {
    let response = tokio::time::timeout(LIMIT, request.send())
        .await
        .expect("response in time")
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// The one error envelope: `{"error":{"code","message"[,"field"]}}` and nothing else.
#[track_caller]
pub(crate) fn assert_envelope(body: &Value) {
    let outer = body.as_object();
    let keys: Vec<&String> = outer.iter().flat_map(|o| o.keys()).collect();
    assert_eq!(keys, ["error"], "not the error envelope: {body}");
    let error = body["error"].as_object().expect("`error` is an object");
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "unexpected keys: {body}"
    );
    for key in ["code", "message"] {
        let value = error.get(key).and_then(Value::as_str);
        assert!(value.is_some_and(|s| !s.is_empty()), "no `{key}`: {body}");
    }
    if let Some(field) = error.get("field") {
        assert!(field.is_string(), "`field` is a string: {body}");
    }
}

/// The reply is the envelope with this status and code, served as JSON; `case` names the row
/// of a table.
#[track_caller]
pub(crate) fn assert_refused(case: impl Display, reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.body);
    assert_envelope(&reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{case}: {}", reply.body);
    let content_type = reply.headers.get(header::CONTENT_TYPE);
    assert_eq!(
        content_type.and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{case}"
    );
}

#[track_caller]
pub(crate) fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_refused("", reply, status, code);
}

/// A 400 `invalid_request` naming `field`.
#[track_caller]
pub(crate) fn assert_invalid(case: impl Display, reply: &Reply, field: &str) {
    assert_refused(&case, reply, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        reply.body["error"]["field"], field,
        "{case}: {}",
        reply.body
    );
}

pub(crate) fn actions(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM actions")
}

/// Actions the ledger holds as allowed: after any attack, this must not have grown.
pub(crate) fn allowed_actions(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM actions WHERE verdict = 'allow'")
}

pub(crate) fn decisions(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM decisions")
}

pub(crate) fn id_of(body: &Value) -> String {
    body["action_id"].as_str().expect("action_id").to_owned()
}

/// A paused action, answered at once with `pending`.
pub(crate) async fn park(daemon: &TestDaemon) -> String {
    let (status, body) = daemon.check(paused(0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pending");
    id_of(&body)
}

pub(crate) async fn assert_pending(daemon: &TestDaemon, id: &str) {
    let action = daemon.action(id).await;
    assert_eq!(action["verdict"], "pending", "{action}");
    assert_eq!(action["decision"], Value::Null, "{action}");
}

/// A raw HTTP exchange on one connection, for requests `reqwest` will not send (no Host).
/// The request must make the server close the connection (HTTP/1.0 or `Connection: close`).
pub(crate) async fn raw_http(port: u16, request: &str) -> (u16, Value) {
    raw_http_bytes(port, request.as_bytes()).await
}

/// [`raw_http`] with a request that need not be UTF-8.
pub(crate) async fn raw_http_bytes(port: u16, request: &[u8]) -> (u16, Value) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("raw exchange in time");
    let text = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    (status.expect("a status line"), body)
}

/// A dashboard session: its cookie (`name=value`) and the CSRF token it echoes on changes.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// Follows a one-time login URL and returns the `name=value` part of its session cookie.
pub(crate) async fn redeem(daemon: &TestDaemon, login_url: &str) -> String {
    let reply = send(daemon.http.get(login_url)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let set_cookie = reply.headers.get(header::SET_COOKIE).expect("Set-Cookie");
    let set_cookie = set_cookie.to_str().expect("ASCII cookie");
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

pub(crate) async fn log_in(daemon: &TestDaemon, login_url: &str) -> Session {
    let cookie = redeem(daemon, login_url).await;
    let reply = send(get(daemon, "/v1/session").header(header::COOKIE, &cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let csrf = reply.body["csrf_token"].as_str().expect("csrf_token");
    Session {
        cookie,
        csrf: csrf.to_owned(),
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Extra request headers, by name.
pub(crate) type Headers = Vec<(&'static str, String)>;

/// Opens `/v1/events` with these headers; a refused handshake gives its status and body.
pub(crate) async fn ws_connect(
    daemon: &TestDaemon,
    headers: Headers,
) -> Result<Socket, (u16, Value)> {
    let url = format!("ws://127.0.0.1:{}/v1/events", daemon.port);
    let mut request = url.into_client_request().expect("ws request");
    for (name, value) in headers {
        let value = value.parse().expect("header value");
        request.headers_mut().insert(name, value);
    }
    let connected = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time");
    match connected {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let body = serde_json::from_slice(body).unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(err) => panic!("handshake failed without an HTTP answer: {err}"),
    }
}

/// The next event the socket pushes, within the limit.
pub(crate) async fn next_event(socket: &mut Socket) -> Value {
    let message = tokio::time::timeout(LIMIT, socket.next())
        .await
        .expect("an event in time")
        .expect("the socket is open")
        .expect("a message");
    serde_json::from_str(message.to_text().expect("text")).expect("JSON event")
}

// ---------------------------------------------------------------------------------------------
// Credentials and roles
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_without_a_valid_credential_is_unauthorized_and_records_nothing() {
    let daemon = TestDaemon::start().await;
    let agent = &daemon.agent;
    let shorter = &agent[..agent.len() - 1];
    let authorizations = [
        ("wrong token", "Bearer nope".to_owned()),
        ("agent token plus a byte", format!("Bearer {agent}0")),
        ("agent token less a byte", format!("Bearer {shorter}")),
        ("basic scheme", "Basic x".to_owned()),
        ("basic scheme, agent token", format!("Basic {agent}")),
        ("bearer with nothing", "Bearer".to_owned()),
        ("bearer with a blank", "Bearer ".to_owned()),
        ("token without a scheme", agent.clone()),
    ];
    let check = || post(&daemon, "/v1/check").json(&allowed());
    for (case, authorization) in authorizations {
        let reply = send(check().header(header::AUTHORIZATION, authorization)).await;
        assert_refused(case, &reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let reply = send(check()).await;
    assert_refused("none", &reply, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = check().header(header::COOKIE, "gatehouse_session=0123abcd");
    let reply = send(forged).await;
    assert_refused(
        "forged cookie",
        &reply,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // The same refusals on an approver route.
    let reply = send(get(&daemon, "/v1/actions")).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    let reply = send(get(&daemon, "/v1/actions").bearer_auth("nope")).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(actions(&daemon), 0, "a refused check records nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_the_envelope() {
    let daemon = TestDaemon::start().await;
    for path in ["/v1/nope", "/v2/check", "/v1/actions/x/y/z"] {
        let reply = send(get(&daemon, path).bearer_auth(&daemon.approver)).await;
        assert_refused(path, &reply, StatusCode::NOT_FOUND, "not_found");
    }
    for (method, path) in [
        (Method::GET, "/v1/check"),
        (Method::PUT, "/v1/check"),
        (Method::DELETE, "/v1/actions"),
        (Method::GET, "/v1/login-codes"),
        (Method::POST, "/healthz"),
    ] {
        let request = daemon.http.request(method.clone(), daemon.url(path));
        let reply = send(request.bearer_auth(&daemon.agent)).await;
        let (status, code) = (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_refused(format!("{method} {path}"), &reply, status, code);
    }
}

/// axum's own extractor rejections are plain text unless the daemon maps them: a GET of the
/// event stream that is not a WebSocket upgrade must still get the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_get_of_the_event_stream_gets_the_envelope() {
    let daemon = TestDaemon::start().await;
    let reply = send(get(&daemon, "/v1/events").bearer_auth(&daemon.approver)).await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    assert_envelope(&reply.body);
}

/// An action id that is not UTF-8 once percent-decoded is axum's `Path` rejection: it must get
/// the envelope too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_utf8_action_id_gets_the_envelope() {
    let daemon = TestDaemon::start().await;
    for path in ["/v1/actions/%FF", "/v1/actions/%FF/history"] {
        let reply = send(get(&daemon, path).bearer_auth(&daemon.approver)).await;
        assert!(reply.status.is_client_error(), "{path}: {}", reply.status);
        assert_envelope(&reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_name_their_parameter() {
    let daemon = TestDaemon::start().await;
    let id = park(&daemon).await;
    let cases = [
        ("/v1/actions?status=bogus".to_owned(), "status"),
        ("/v1/actions?limit=0".to_owned(), "limit"),
        ("/v1/actions?limit=501".to_owned(), "limit"),
        ("/v1/actions?limit=ten".to_owned(), "limit"),
        ("/v1/actions?colour=red".to_owned(), "colour"),
        ("/v1/disagreements?status=pending".to_owned(), "status"),
        (format!("/v1/actions/{id}?wait_ms=60001"), "wait_ms"),
        (format!("/v1/actions/{id}?wait=5"), "wait"),
    ];
    for (path, field) in &cases {
        let reply = send(get(&daemon, path).bearer_auth(&daemon.approver)).await;
        assert_invalid(path, &reply, field);
    }
    // The agent's long poll is held to the same bound.
    let path = format!("/v1/actions/{id}?wait_ms=60001");
    let reply = send(get(&daemon, &path).bearer_auth(&daemon.agent)).await;
    assert_invalid("agent", &reply, "wait_ms");
    let reply = send(get(&daemon, "/v1/actions/act_nope").bearer_auth(&daemon.agent)).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
}

// ---------------------------------------------------------------------------------------------
// The dashboard session
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_link_starts_one_strict_http_only_session() {
    let daemon = TestDaemon::start().await;
    let prefix = format!("{}/login?code=", daemon.base);
    assert!(
        daemon.login_url.starts_with(&prefix),
        "{}",
        daemon.login_url
    );
    let reply = send(daemon.http.get(&daemon.login_url)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.headers[header::LOCATION], "/");
    let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    let (name, value) = attributes[0].split_once('=').unwrap();
    assert_eq!(name, "gatehouse_session");
    assert!(value.len() >= 32, "a long random session id: {set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&attribute), "{set_cookie}");
    }
    // The code is spent; a made-up one never worked.
    let bogus = format!("/login?code={}", "0".repeat(64));
    for reply in [
        send(daemon.http.get(&daemon.login_url)).await,
        send(get(&daemon, &bogus)).await,
    ] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert!(reply.headers.get(header::SET_COOKIE).is_none());
    }
    assert_invalid("no code", &send(get(&daemon, "/login")).await, "code");
    // The session works and has a CSRF token; the approver token has none.
    let reply = send(get(&daemon, "/v1/session").header(header::COOKIE, attributes[0])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["csrf_token"].as_str().unwrap().len() >= 32);
    let reply = send(get(&daemon, "/v1/session").bearer_auth(&daemon.approver)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
}

/// With lifetimes of zero, a login link is expired when issued and a session when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_login_links_and_sessions_are_refused() {
    let daemon = Setup::default()
        .config(|c| c.approvals.login_link_ttl_secs = 0)
        .start()
        .await;
    let reply = send(daemon.http.get(&daemon.login_url)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(reply.headers.get(header::SET_COOKIE).is_none());

    let daemon = Setup::default()
        .config(|c| c.approvals.session_ttl_secs = 0)
        .start()
        .await;
    let cookie = redeem(&daemon, &daemon.login_url).await;
    let reply = send(get(&daemon, "/v1/session").header(header::COOKIE, &cookie)).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_session_decides_only_with_its_csrf_token_from_its_own_origin() {
    let daemon = TestDaemon::start().await;
    let session = log_in(&daemon, &daemon.login_url).await;
    let (_, link) = daemon
        .post(&daemon.approver.clone(), "/v1/login-codes", json!({}))
        .await;
    let other = log_in(&daemon, link["url"].as_str().unwrap()).await;
    assert_ne!(session.csrf, other.csrf);
    let id = park(&daemon).await;

    // Reading is a safe request: no CSRF token needed, but our own origin is.
    let list =
        || get(&daemon, "/v1/actions?status=pending").header(header::COOKIE, &session.cookie);
    let reply = send(list()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["actions"][0]["action_id"], id.as_str());
    let reply = send(list().header(header::ORIGIN, "http://evil.com")).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden_origin");

    let action_hash = daemon.action(&id).await["action_hash"].clone();
    let decide = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = post(&daemon, &format!("/v1/actions/{id}/decision"))
            .header(header::COOKIE, &session.cookie)
            .json(&json!({"decision": "approve", "action_hash": action_hash}));
        if let Some(csrf) = csrf {
            request = request.header(CSRF, csrf);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        send(request)
    };
    let ours = Some(daemon.base.as_str());
    let right = Some(session.csrf.as_str());
    let lookalike = format!("http://127.0.0.1:{}.evil.com", daemon.port);
    let refused = [
        ("no CSRF header", None, None, "csrf"),
        ("no CSRF header, our origin", None, ours, "csrf"),
        ("empty CSRF header", Some(""), ours, "csrf"),
        ("wrong CSRF token", Some("0123abcd"), ours, "csrf"),
        (
            "another session's token",
            Some(other.csrf.as_str()),
            ours,
            "csrf",
        ),
        (
            "foreign origin",
            right,
            Some("http://evil.com"),
            "forbidden_origin",
        ),
        (
            "lookalike origin",
            right,
            Some(lookalike.as_str()),
            "forbidden_origin",
        ),
        (
            "https origin",
            right,
            Some(&daemon.base.replace("http:", "https:")),
            "forbidden_origin",
        ),
        ("null origin", right, Some("null"), "forbidden_origin"),
    ];
    for (case, csrf, origin, code) in refused {
        let reply = decide(csrf, origin).await;
        assert_refused(case, &reply, StatusCode::FORBIDDEN, code);
        assert_pending(&daemon, &id).await;
    }
    assert_eq!(decisions(&daemon), 0);

    let reply = decide(right, ours).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["verdict"], "allow");
    assert_eq!(reply.body["decided_by"], "human");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_links_are_issued_to_the_approver_token_only() {
    let daemon = TestDaemon::start().await;
    let reply = send(post(&daemon, "/v1/login-codes").bearer_auth(&daemon.approver)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let url = reply.body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/login?code=", daemon.base)),
        "{url}"
    );
    assert_ne!(url, daemon.login_url, "a fresh code each time");
    let expires = reply.body["expires_at_ms"].as_i64().unwrap();
    assert!(expires > gatehouse_daemon::now_ms());
    let session = log_in(&daemon, url).await;
    // A session cannot mint more sessions, even with its CSRF token from our own origin.
    let request = post(&daemon, "/v1/login-codes")
        .header(header::COOKIE, &session.cookie)
        .header(CSRF, &session.csrf)
        .header(header::ORIGIN, &daemon.base);
    let reply = send(request).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    // The start-up link is independent and still unspent.
    log_in(&daemon, &daemon.login_url).await;
}

// ---------------------------------------------------------------------------------------------
// Response headers
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_nosniff_and_the_page_a_strict_csp() {
    let daemon = TestDaemon::start().await;
    let page = send(get(&daemon, "/")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY);
    let csp = csp
        .and_then(|v| v.to_str().ok())
        .expect("the page has a CSP");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"script-src 'self'"), "{csp}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-"), "{csp}");

    let check = post(&daemon, "/v1/check").json(&allowed());
    let replies = [
        ("page", page),
        ("script", send(get(&daemon, "/assets/js/main.js")).await),
        ("health", send(get(&daemon, "/healthz")).await),
        ("metrics", send(get(&daemon, "/metrics")).await),
        (
            "check",
            send(check.try_clone().unwrap().bearer_auth(&daemon.agent)).await,
        ),
        ("401", send(check).await),
        ("404", send(get(&daemon, "/nope")).await),
        ("failed login", send(get(&daemon, "/login?code=x")).await),
        (
            "foreign host",
            send(get(&daemon, "/healthz").header(header::HOST, "evil.com")).await,
        ),
    ];
    for (case, reply) in &replies {
        let nosniff = reply.headers.get("x-content-type-options");
        let nosniff = nosniff.and_then(|v| v.to_str().ok());
        assert_eq!(nosniff, Some("nosniff"), "{case} ({})", reply.status);
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_land_once_and_only_on_paused_actions() {
    let daemon = TestDaemon::start().await;
    let decide = |id: &str, body: Value| {
        let request = post(&daemon, &format!("/v1/actions/{id}/decision"));
        send(request.bearer_auth(&daemon.approver).json(&body))
    };
    let approve = |action_hash: &Value| json!({"decision": "approve", "action_hash": action_hash});
    let deny = json!({"decision": "deny"});
    let reply = decide(
        "act_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        approve(&json!("0".repeat(64))),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
    let history = get(&daemon, "/v1/actions/act_nope/history");
    let reply = send(history.bearer_auth(&daemon.approver)).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");

    // A fast-path verdict is final.
    let (_, fast) = daemon.check(allowed()).await;
    let fast = id_of(&fast);
    let reply = decide(&fast, deny.clone()).await;
    assert_error(&reply, StatusCode::CONFLICT, "already_decided");
    assert_eq!(daemon.action(&fast).await["verdict"], "allow");

    // A paused action: bad decisions are refused and leave it pending.
    let id = park(&daemon).await;
    let bad = [
        (json!({"decision": "maybe"}), "decision"),
        (json!({"decision": "Approve"}), "decision"),
        (json!({}), "decision"),
        (json!({"decision": "approve", "by": "me"}), "by"),
        (
            json!({"decision": "approve", "note": "n".repeat(4097)}),
            "note",
        ),
    ];
    for (body, field) in bad {
        let case = body.to_string();
        assert_invalid(case, &decide(&id, body).await, field);
        assert_pending(&daemon, &id).await;
    }
    // The first decision stands; the second is a conflict.
    let reply = decide(&id, deny).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["verdict"], "reject");
    let reply = decide(&id, approve(&daemon.action(&id).await["action_hash"])).await;
    assert_error(&reply, StatusCode::CONFLICT, "already_decided");
    let stored = daemon.action(&id).await;
    assert_eq!(stored["verdict"], "reject", "the first decision stands");
    assert_eq!(stored["decision"]["decided_by"], "human");
    assert_eq!(decisions(&daemon), 1, "exactly one decision was recorded");
}

// ---------------------------------------------------------------------------------------------
// Operations endpoints
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_without_credentials() {
    let daemon = TestDaemon::start().await;
    park(&daemon).await;
    daemon.check(allowed()).await;
    let health = send(get(&daemon, "/healthz")).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["pending"], 1);
    assert!(health.body["version"].is_string());
    let policy = health.body["policy"].as_str().unwrap();
    assert!(policy.ends_with("policy.toml"), "{policy}");

    let metrics = send(get(&daemon, "/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let content_type = metrics.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = metrics.body.as_str().expect("Prometheus text");
    for line in [
        "gatehouse_checks_total{verdict=\"allow\"} 1",
        "gatehouse_checks_total{verdict=\"pending\"} 1",
        "gatehouse_fast_path_seconds_bucket{le=\"+Inf\"} 1",
        "gatehouse_classifier_scorings_total{outcome=\"scored\"} 0",
        "gatehouse_pending_actions 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}
