//! Integration tests of `gatehouse-client` against stand-ins for the daemon.
//!
//! The daemon is written concurrently, so nothing here starts it. Each test binds its own server on
//! `127.0.0.1:0` before spawning it (no sleeping for readiness): small axum apps that answer as the
//! daemon's contract says (`POST /v1/check`, long-polls on `GET /v1/actions/{id}?wait_ms=N`, the
//! approver routes, the error envelope), and raw TCP servers that fail the ways a daemon can fail
//! (refuse, accept and never answer, drop the connection mid-request, answer garbage). They are
//! stand-ins for the daemon's failure modes; the daemon's own integration tests cover the client
//! against the real server. Every test runs under a time limit.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gatehouse_client::protocol::{
    ActionList, ActionView, CheckRequest, CheckResponse, DecidedBy, Decision, Health, LoginLink,
    Tier2Status, Verdict,
};
use gatehouse_client::{ActionQuery, CheckOptions, Client, ClientError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TEST_LIMIT: Duration = Duration::from_secs(10);
const AGENT_TOKEN: &str = "agent-token";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Fails a test that runs past [`TEST_LIMIT`] instead of letting it hang.
async fn bounded(test: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .map_err(|_| anyhow!("test ran past {TEST_LIMIT:?}"))?
}

/// The error of a call that must fail.
fn must_fail<T: std::fmt::Debug>(result: Result<T, ClientError>) -> anyhow::Result<ClientError> {
    match result {
        Ok(value) => bail!("expected an error, got {value:?}"),
        Err(err) => Ok(err),
    }
}

/// One request as a stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: HashMap<String, String>,
    auth: Option<String>,
    body: Option<Value>,
}

impl Seen {
    fn wait_ms(&self) -> Option<u64> {
        self.query.get("wait_ms").and_then(|v| v.parse().ok())
    }
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn push(&self, seen: Seen) -> usize {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.push(seen);
        log.len() - 1
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a stand-in answers: a status and a body, after a delay (a long-poll holding).
struct Reply {
    status: StatusCode,
    body: String,
    delay: Duration,
    location: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply::text(status, body.to_string())
    }

    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            body: body.into(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    fn redirect(status: u16, location: &str) -> Reply {
        Reply {
            location: Some(location.to_owned()),
            ..Reply::text(status, "")
        }
    }

    fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A server task, stopped when dropped.
struct Server {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An axum stand-in: every request is logged, then `respond(request, index)` answers it.
async fn stand_in<F>(respond: F) -> anyhow::Result<(Server, Log)>
where
    F: Fn(&Seen, usize) -> Reply + Clone + Send + Sync + 'static,
{
    let log = Log::default();
    let handler_log = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = handler_log.clone();
            let respond = respond.clone();
            async move {
                let seen = Seen {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    query: parse_query(uri.query().unwrap_or("")),
                    auth: headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body: serde_json::from_slice(&body).ok(),
                };
                let index = log.push(seen.clone());
                let reply = respond(&seen, index);
                tokio::time::sleep(reply.delay).await;
                let mut response: Response = (reply.status, reply.body).into_response();
                if let Some(location) = reply.location
                    && let Ok(location) = header::HeaderValue::from_str(&location)
                {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                response
            }
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((Server { url, task }, log))
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect()
}

/// What a raw TCP stand-in does with each connection, in order (the last step repeats).
#[derive(Clone)]
enum Step {
    /// Read the request, then close without a response.
    Drop,
    /// Read the request, then hold the connection open without answering.
    Hang,
    /// Read the request, then answer with this status and body.
    Answer(u16, String),
}

/// A hand-written HTTP/1.1 server, one request per connection, that logs each request's head and
/// body as text.
async fn raw_server(script: Vec<Step>) -> anyhow::Result<(Server, Arc<Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut steps = script.into_iter().peekable();
        let mut last = Step::Drop;
        while let Ok((mut stream, _)) = listener.accept().await {
            let step = match steps.next() {
                Some(step) => {
                    last = step.clone();
                    step
                }
                None => last.clone(),
            };
            let Ok(request) = read_request(&mut stream).await else {
                continue;
            };
            task_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(request);
            match step {
                Step::Drop => drop(stream),
                Step::Hang => held.push(stream),
                Step::Answer(status, body) => {
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            }
        }
    });
    Ok((Server { url, task }, log))
}

async fn read_request(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "client closed before a whole request");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
        }
        ensure!(buf.len() < 1 << 20, "request too large");
    }
}

fn request(tool: &str) -> CheckRequest {
    let mut input = serde_json::Map::new();
    input.insert("command".into(), json!("rm -rf build"));
    CheckRequest {
        tool: tool.into(),
        input,
        session_id: None,
        agent: Some("claude-code".into()),
        tool_use_id: None,
        cwd: None,
        context: None,
        wait_ms: None,
        can_confine: false,
    }
}

fn reattachable(mut req: CheckRequest) -> CheckRequest {
    req.session_id = Some("sess_1".into());
    req.tool_use_id = Some("toolu_1".into());
    req
}

fn verdict(action_id: &str, verdict: Verdict, decided_by: DecidedBy) -> Value {
    json!({
        "action_id": action_id,
        "verdict": verdict,
        "decided_by": decided_by,
        "rule_id": null,
        "reason": format!("{} by {}", verdict.as_str(), decided_by.as_str()),
        "tier2": null,
    })
}

fn action_view(action_id: &str) -> ActionView {
    ActionView {
        action_id: action_id.into(),
        tool: "Bash".into(),
        input: json!({"command": "rm -rf build"}),
        session_id: Some("sess_1".into()),
        agent: None,
        tool_use_id: None,
        cwd: None,
        context: None,
        created_at_ms: 1_700_000_000_000,
        verdict: Verdict::Allow,
        decided_by: DecidedBy::Human,
        rule_id: None,
        reason: "approved".into(),
        deadline_ms: None,
        tier2: None,
        tier2_status: Tier2Status::Disabled,
        tier2_error: None,
        disagreement: false,
        decision: None,
        action_hash: String::new(),
        peer_uid: None,
        peer_pid: None,
        observed: None,
        approvals: Vec::new(),
        policy_version: None,
        confinement: None,
    }
}

fn agent(url: &str) -> anyhow::Result<Client> {
    Ok(Client::new(url, AGENT_TOKEN)?)
}

fn quick(total_ms: u64, poll_ms: u64) -> CheckOptions {
    CheckOptions {
        total_deadline: Duration::from_millis(total_ms),
        poll_wait: Duration::from_millis(poll_ms),
        ..CheckOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Verdicts the daemon gives
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allow_passes_through_with_the_token_and_a_bounded_wait() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) =
            stand_in(|_, _| Reply::json(200, verdict("act_1", Verdict::Allow, DecidedBy::Rule)))
                .await?;
        let response = agent(&server.url)?
            .check(&request("Bash"), &CheckOptions::default())
            .await?;
        assert_eq!(response.verdict, Verdict::Allow);
        assert_eq!(response.action_id, "act_1");
        let seen = log.all();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("POST", "/v1/check")
        );
        assert_eq!(seen[0].auth.as_deref(), Some("Bearer agent-token"));
        let body = seen[0].body.as_ref().context("check body is JSON")?;
        assert_eq!(body["tool"], "Bash");
        assert_eq!(body["input"]["command"], "rm -rf build");
        // No wait_ms in the request: the client asks for its poll_wait (25 s by default).
        assert_eq!(body["wait_ms"], 25_000);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn reject_passes_through_as_a_verdict_not_an_error() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = stand_in(|_, _| {
            let mut body = verdict("act_2", Verdict::Reject, DecidedBy::Rule);
            body["rule_id"] = json!("no-rm-rf");
            Reply::json(200, body)
        })
        .await?;
        let response = agent(&server.url)?
            .check(&request("Bash"), &CheckOptions::default())
            .await?;
        assert_eq!(response.verdict, Verdict::Reject);
        assert_eq!(response.decided_by, DecidedBy::Rule);
        assert_eq!(response.rule_id.as_deref(), Some("no-rm-rf"));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn pending_then_allow_polls_the_action_with_wait_ms() -> anyhow::Result<()> {
    bounded(async {
        // A long-polling daemon: holds each poll for wait_ms, then says pending once, then allow.
        let (server, log) = stand_in(|seen, index| match (seen.method.as_str(), index) {
            ("POST", _) => Reply::json(200, verdict("act_7", Verdict::Pending, DecidedBy::Rule)),
            (_, 1) => Reply::json(200, verdict("act_7", Verdict::Pending, DecidedBy::Rule))
                .after(Duration::from_millis(seen.wait_ms().unwrap_or(0))),
            _ => Reply::json(200, verdict("act_7", Verdict::Allow, DecidedBy::Human)),
        })
        .await?;
        let response = agent(&server.url)?
            .check(&request("Bash"), &quick(5_000, 40))
            .await?;
        assert_eq!(response.verdict, Verdict::Allow);
        assert_eq!(response.decided_by, DecidedBy::Human);
        let seen = log.all();
        assert_eq!(seen.len(), 3, "{seen:?}");
        for poll in &seen[1..] {
            assert_eq!(
                (poll.method.as_str(), poll.path.as_str()),
                ("GET", "/v1/actions/act_7")
            );
            assert_eq!(poll.wait_ms(), Some(40), "{poll:?}");
            assert_eq!(poll.auth.as_deref(), Some("Bearer agent-token"));
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn pending_forever_times_out_at_the_total_deadline() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) = stand_in(|seen, _| {
            Reply::json(200, verdict("act_9", Verdict::Pending, DecidedBy::Rule))
                .after(Duration::from_millis(seen.wait_ms().unwrap_or(0)))
        })
        .await?;
        let client = agent(&server.url)?;
        // The request's own 60 s wait is cut to the time left.
        let mut req = request("Bash");
        req.wait_ms = Some(60_000);
        let started = Instant::now();
        let err = must_fail(client.check(&req, &quick(300, 100)).await)?;
        let elapsed = started.elapsed();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let seen = log.all();
        let first = seen[0].body.as_ref().and_then(|b| b["wait_ms"].as_u64());
        assert!(first.is_some_and(|w| w <= 300), "{first:?}");

        // Without one, the check and every poll ask for at most poll_wait.
        let started = Instant::now();
        let err = must_fail(client.check(&request("Bash"), &quick(300, 100)).await)?;
        let elapsed = started.elapsed();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let seen = &log.all()[seen.len()..];
        let first = seen[0].body.as_ref().and_then(|b| b["wait_ms"].as_u64());
        assert_eq!(first, Some(100));
        ensure!(seen.len() >= 2, "never polled: {seen:?}");
        for poll in &seen[1..] {
            assert_eq!(poll.path, "/v1/actions/act_9");
            assert!(poll.wait_ms().is_some_and(|w| w <= 100), "{poll:?}");
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn pending_answers_that_ignore_wait_ms_are_spaced_out() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) =
            stand_in(|_, _| Reply::json(200, verdict("act_3", Verdict::Pending, DecidedBy::Rule)))
                .await?;
        let err = must_fail(
            agent(&server.url)?
                .check(&request("Bash"), &quick(1_000, 25_000))
                .await,
        )?;
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        // At most one poll per 100 ms, not a busy loop.
        let polls = log.all().len() - 1;
        assert!((1..=11).contains(&polls), "{polls} polls in 1 s");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn check_once_and_poll_action_return_pending_as_is() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) =
            stand_in(|_, _| Reply::json(200, verdict("act_4", Verdict::Pending, DecidedBy::Rule)))
                .await?;
        let client = agent(&server.url)?;
        let mut req = request("Bash");
        req.wait_ms = Some(0);
        assert_eq!(client.check_once(&req).await?.verdict, Verdict::Pending);
        let polled = client
            .poll_action("act_4", Duration::from_millis(1_500))
            .await?;
        assert_eq!(polled.verdict, Verdict::Pending);
        let seen = log.all();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(
            seen[0].body.as_ref().map(|b| b["wait_ms"].clone()),
            Some(json!(0))
        );
        assert_eq!(seen[1].path, "/v1/actions/act_4");
        assert_eq!(seen[1].wait_ms(), Some(1_500));
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Failing closed
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connection_refused_is_unreachable_at_once() -> anyhow::Result<()> {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        drop(listener);
        let client = agent(&url)?;
        let started = Instant::now();
        // Even a re-attachable check is not re-sent to a daemon that was never reached.
        let err = must_fail(
            client
                .check(&reattachable(request("Bash")), &CheckOptions::default())
                .await,
        )?;
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let err = must_fail(client.health().await)?;
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_at_the_deadline() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) = raw_server(vec![Step::Hang]).await?;
        let started = Instant::now();
        let err = must_fail(
            agent(&server.url)?
                .check(&request("Bash"), &quick(300, 100))
                .await,
        )?;
        let elapsed = started.elapsed();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(log.lock().map(|l| l.len()).unwrap_or(0), 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn request_timeout_bounds_one_attempt_within_a_long_deadline() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = raw_server(vec![Step::Hang]).await?;
        let opts = CheckOptions {
            total_deadline: Duration::from_secs(60),
            request_timeout: Duration::from_millis(200),
            poll_wait: Duration::from_secs(25),
        };
        let started = Instant::now();
        let err = must_fail(agent(&server.url)?.check(&request("Bash"), &opts).await)?;
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn garbage_bodies_are_bad_responses() -> anyhow::Result<()> {
    bounded(async {
        let misspelled = verdict("act_5", Verdict::Allow, DecidedBy::Rule)
            .to_string()
            .replace("\"allow\"", "\"alow\"");
        ensure!(misspelled.contains("alow"), "{misspelled}");
        let capitalised = misspelled.replace("\"alow\"", "\"Allow\"");
        let cases = [
            ("not json", "not json".to_owned()),
            ("empty", String::new()),
            ("wrong shape", json!({"ok": true}).to_string()),
            ("verdict misspelled", misspelled),
            ("verdict capitalised", capitalised),
            ("verdict missing", json!({"action_id": "act_5"}).to_string()),
        ];
        for (name, body) in cases {
            let (server, _log) = stand_in(move |_, _| Reply::text(200, body.clone())).await?;
            let err = must_fail(
                agent(&server.url)?
                    .check(&request("Bash"), &CheckOptions::default())
                    .await,
            )?;
            assert!(
                matches!(err, ClientError::BadResponse(_)),
                "{name}: {err:?}"
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn garbage_while_polling_is_a_bad_response() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = stand_in(|seen, _| match seen.method.as_str() {
            "POST" => Reply::json(200, verdict("act_6", Verdict::Pending, DecidedBy::Rule)),
            _ => Reply::text(200, "<html>gateway</html>"),
        })
        .await?;
        let err = must_fail(
            agent(&server.url)?
                .check(&request("Bash"), &quick(5_000, 20))
                .await,
        )?;
        assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_poll_answered_for_another_action_is_a_bad_response() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = stand_in(|seen, _| match seen.method.as_str() {
            "POST" => Reply::json(200, verdict("act_mine", Verdict::Pending, DecidedBy::Rule)),
            _ => Reply::json(200, verdict("act_other", Verdict::Allow, DecidedBy::Human)),
        })
        .await?;
        let err = must_fail(
            agent(&server.url)?
                .check(&request("Bash"), &quick(5_000, 20))
                .await,
        )?;
        assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn error_envelopes_become_api_errors_with_their_code() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = stand_in(|seen, _| match seen.body.as_ref().map(|b| b["tool"].clone()) {
            Some(Value::String(tool)) if tool.is_empty() => Reply::json(
                400,
                json!({"error": {"code": "invalid_request", "message": "tool is empty", "field": "tool"}}),
            ),
            _ => Reply::json(500, json!({"error": {"code": "internal", "message": "ledger down"}})),
        })
        .await?;
        let client = agent(&server.url)?;
        let err = must_fail(client.check(&request("Bash"), &CheckOptions::default()).await)?;
        match err {
            ClientError::Api { status: 500, code, message, field: None } => {
                assert_eq!((code.as_str(), message.as_str()), ("internal", "ledger down"));
            }
            other => bail!("expected Api 500, got {other:?}"),
        }
        let err = must_fail(client.check(&request(""), &CheckOptions::default()).await)?;
        match err {
            ClientError::Api { status: 400, code, field, .. } => {
                assert_eq!(code, "invalid_request");
                assert_eq!(field.as_deref(), Some("tool"));
            }
            other => bail!("expected Api 400, got {other:?}"),
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn unauthorized_is_an_api_error_with_or_without_the_envelope() -> anyhow::Result<()> {
    bounded(async {
        let (server, _log) = stand_in(|seen, _| match seen.auth.as_deref() {
            Some("Bearer agent-token") => Reply::text(401, "go away"),
            _ => Reply::json(
                401,
                json!({"error": {"code": "unauthorized", "message": "missing or wrong token"}}),
            ),
        })
        .await?;
        let opts = CheckOptions::default();
        let err = must_fail(
            Client::new(&server.url, "wrong")?
                .check(&request("Bash"), &opts)
                .await,
        )?;
        assert!(
            matches!(&err, ClientError::Api { status: 401, code, .. } if code == "unauthorized"),
            "{err:?}"
        );
        let err = must_fail(agent(&server.url)?.check(&request("Bash"), &opts).await)?;
        assert!(
            matches!(&err, ClientError::Api { status: 401, code, message, .. }
                if code == gatehouse_client::UNKNOWN_API_CODE && message.contains("go away")),
            "{err:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed() -> anyhow::Result<()> {
    bounded(async {
        let (elsewhere, elsewhere_log) =
            stand_in(|_, _| Reply::json(200, verdict("act_x", Verdict::Allow, DecidedBy::Rule)))
                .await?;
        let target = format!("{}/v1/check", elsewhere.url);
        let (server, _log) = stand_in(move |_, _| Reply::redirect(307, &target)).await?;
        let err = must_fail(
            agent(&server.url)?
                .check(&request("Bash"), &CheckOptions::default())
                .await,
        )?;
        assert!(
            matches!(err, ClientError::Api { status: 307, .. }),
            "{err:?}"
        );
        assert!(elsewhere_log.all().is_empty(), "the token went elsewhere");
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_lost_check_is_resent_only_when_the_daemon_can_reattach_it() -> anyhow::Result<()> {
    bounded(async {
        let allow = verdict("act_8", Verdict::Allow, DecidedBy::Rule).to_string();
        let script = vec![Step::Drop, Step::Answer(200, allow)];

        // session_id + tool_use_id: re-sent after the dropped connection, and answered.
        let (server, log) = raw_server(script.clone()).await?;
        let response = agent(&server.url)?
            .check(&reattachable(request("Bash")), &CheckOptions::default())
            .await?;
        assert_eq!(response.verdict, Verdict::Allow);
        let seen = log.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen.iter()
                .all(|r| r.starts_with("POST /v1/check ") && r.contains("toolu_1"))
        );

        // Without both ids: one POST, then Unreachable, though the server would answer a second.
        for (session, tool_use) in [
            (None, None),
            (Some("sess_1"), None),
            (None, Some("toolu_1")),
        ] {
            let (server, log) = raw_server(script.clone()).await?;
            let mut req = request("Bash");
            req.session_id = session.map(str::to_owned);
            req.tool_use_id = tool_use.map(str::to_owned);
            let err = must_fail(
                agent(&server.url)?
                    .check(&req, &CheckOptions::default())
                    .await,
            )?;
            assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
            assert_eq!(
                log.lock().map(|l| l.len()).unwrap_or(0),
                1,
                "{session:?} {tool_use:?}"
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn resending_gives_up_after_a_few_lost_connections() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) = raw_server(vec![Step::Drop]).await?;
        let err = must_fail(
            agent(&server.url)?
                .check(&reattachable(request("Bash")), &CheckOptions::default())
                .await,
        )?;
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        let sent = log.lock().map(|l| l.len()).unwrap_or(0);
        assert!((2..=5).contains(&sent), "{sent} attempts");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_poll_that_loses_its_connection_is_retried() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) = raw_server(vec![
            Step::Answer(
                200,
                verdict("act_p", Verdict::Pending, DecidedBy::Rule).to_string(),
            ),
            Step::Drop,
            Step::Answer(
                200,
                verdict("act_p", Verdict::Reject, DecidedBy::Human).to_string(),
            ),
        ])
        .await?;
        let response = agent(&server.url)?
            .check(&request("Bash"), &quick(5_000, 20))
            .await?;
        assert_eq!(response.verdict, Verdict::Reject);
        let seen = log.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[1..]
                .iter()
                .all(|r| r.starts_with("GET /v1/actions/act_p?wait_ms=20 "))
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Approver calls
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn approver_calls_use_the_documented_routes() -> anyhow::Result<()> {
    bounded(async {
        let view = serde_json::to_value(action_view("act a/1"))?;
        let list = serde_json::to_value(ActionList {
            actions: vec![action_view("act_2")],
            next_before: Some("act_2".into()),
        })?;
        let health = serde_json::to_value(Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            pending: 2,
            classifier: "disabled".into(),
            policy: "default".into(),
            policy_reloads: 0,
            policy_error: None,
            reason: None,
            presence: "webauthn".into(),
        })?;
        let link = serde_json::to_value(LoginLink {
            url: "http://127.0.0.1:7400/login?code=x".into(),
            expires_at_ms: 1,
        })?;
        let (server, log) = stand_in(move |seen, _| {
            let body = match (seen.method.as_str(), seen.path.as_str()) {
                (_, "/healthz") => health.clone(),
                ("POST", "/v1/login-codes") => link.clone(),
                (_, "/v1/actions" | "/v1/disagreements") => list.clone(),
                _ => view.clone(),
            };
            Reply::json(200, body)
        })
        .await?;
        let client = Client::new(&server.url, "approver-token\n")?;

        let decided = client
            .decide(
                "act a/1",
                Decision::Approve,
                Some("looks fine"),
                Some(&"ab".repeat(32)),
            )
            .await?;
        assert_eq!(decided.action_id, "act a/1");
        assert_eq!(client.action("act a/1").await?.verdict, Verdict::Allow);
        let page = client
            .actions(&ActionQuery {
                status: Some("pending".into()),
                limit: Some(20),
                before: Some("act_9".into()),
            })
            .await?;
        assert_eq!(page.next_before.as_deref(), Some("act_2"));
        client.actions(&ActionQuery::default()).await?;
        client.disagreements(Some(5)).await?;
        assert_eq!(client.health().await?.pending, 2);
        assert!(client.login_link().await?.url.contains("code="));

        let seen = log.all();
        let routes: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            routes,
            [
                ("POST", "/v1/actions/act%20a%2F1/decision"),
                ("GET", "/v1/actions/act%20a%2F1"),
                ("GET", "/v1/actions"),
                ("GET", "/v1/actions"),
                ("GET", "/v1/disagreements"),
                ("GET", "/healthz"),
                ("POST", "/v1/login-codes"),
            ]
        );
        assert_eq!(
            seen[0].body,
            Some(
                json!({"decision": "approve", "note": "looks fine", "action_hash": "ab".repeat(32)})
            )
        );
        assert!(seen[1].query.is_empty(), "{:?}", seen[1].query);
        let query = &seen[2].query;
        assert_eq!(
            (query.get("status"), query.get("limit"), query.get("before")),
            (
                Some(&"pending".to_owned()),
                Some(&"20".to_owned()),
                Some(&"act_9".to_owned())
            )
        );
        assert!(seen[3].query.is_empty(), "{:?}", seen[3].query);
        assert_eq!(seen[4].query.get("limit").map(String::as_str), Some("5"));
        assert_eq!(seen[6].body, Some(json!({})));
        for (i, s) in seen.iter().enumerate() {
            let expected = (s.path != "/healthz").then_some("Bearer approver-token");
            assert_eq!(s.auth.as_deref(), expected, "request {i}: {s:?}");
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_agent_shaped_answer_to_an_approver_call_is_a_bad_response() -> anyhow::Result<()> {
    bounded(async {
        // The daemon shows the agent token a CheckResponse on GET /v1/actions/{id}.
        let (server, _log) =
            stand_in(|_, _| Reply::json(200, verdict("act_1", Verdict::Allow, DecidedBy::Rule)))
                .await?;
        let client = agent(&server.url)?;
        let err = must_fail(client.action("act_1").await)?;
        assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
        // ... which poll_action reads as what it is.
        let polled: CheckResponse = client.poll_action("act_1", Duration::ZERO).await?;
        assert_eq!(polled.verdict, Verdict::Allow);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn ids_that_are_not_one_path_segment_are_refused_before_sending() -> anyhow::Result<()> {
    bounded(async {
        let (server, log) = stand_in(|_, _| Reply::text(200, "{}")).await?;
        let client = agent(&server.url)?;
        for id in ["", ".", ".."] {
            let err = must_fail(client.action(id).await)?;
            assert!(matches!(err, ClientError::InvalidUrl(_)), "{id:?}: {err:?}");
            let err = must_fail(client.poll_action(id, Duration::ZERO).await)?;
            assert!(matches!(err, ClientError::InvalidUrl(_)), "{id:?}: {err:?}");
        }
        assert!(log.all().is_empty());
        Ok(())
    })
    .await
}
