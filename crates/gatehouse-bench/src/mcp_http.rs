//! The `mcp-http` scenario: what `gatehouse mcp http` adds in front of a Streamable HTTP MCP
//! server, measured against calling the same server directly in the same run.
//!
//! The server is an in-process axum MCP echo server (JSON answers, an `Mcp-Session-Id` per
//! `initialize`), so the figures are the proxy's cost and not a Node or Python server's. The
//! client is a blocking HTTP/1.1 keep-alive client over `std::net`. Three figures, each with its
//! target and PASS/FAIL:
//! * added latency of an allowed `tools/call` (sequential calls; p50, through − direct);
//! * pass-through throughput: `resources/read` from 8 connections at once, through ÷ direct;
//! * memory per proxied session: the proxy's RSS growth over 200 sessions, each initialized and
//!   with one tool call (so the proxy keeps its agent and `previous_output`), divided by 200.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

use crate::http::parse_response;
use crate::servers;

/// Sequential `tools/call` round trips per side (after a tenth as warm-up).
const CALLS: usize = 2_000;
/// Connections reading at once in the throughput figure, and how long each side is measured.
const READERS: usize = 8;
const READ_WINDOW: Duration = Duration::from_secs(3);
/// Sessions opened for the memory figure.
const SESSIONS: usize = 200;

const POLICY: &str = r#"
default = "pause"
[[rules]]
id = "bench-echo"
effect = "allow"
tool = "mcp__bench__echo"
"#;

/// One line per figure, ready to print.
#[derive(Debug, Default)]
pub struct McpHttpResult {
    pub lines: Vec<String>,
}

/// The in-process Streamable HTTP echo server; returns its address (it serves until exit).
fn start_echo_server() -> Result<SocketAddr> {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    static SESSION: AtomicU64 = AtomicU64::new(0);
    async fn mcp(body: axum::body::Bytes) -> axum::response::Response {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let Some(id) = msg.get("id") else {
            return StatusCode::ACCEPTED.into_response();
        };
        let mut headers = HeaderMap::new();
        let result = match msg.get("method").and_then(|m| m.as_str()) {
            Some("initialize") => {
                let n = SESSION.fetch_add(1, Ordering::Relaxed);
                if let Ok(value) = HeaderValue::from_str(&format!("bench-session-{n}")) {
                    headers.insert("mcp-session-id", value);
                }
                serde_json::json!({
                    "protocolVersion": "2025-11-25", "capabilities": {"tools": {}, "resources": {}},
                    "serverInfo": {"name": "bench", "version": "1"}})
            }
            Some("tools/call") => serde_json::json!({"content": [{"type": "text", "text": "ok"}]}),
            Some("resources/read") => {
                serde_json::json!({"contents": [{"uri": "bench://r", "text": "resource body"}]})
            }
            _ => serde_json::json!({}),
        };
        let answer = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result});
        (headers, axum::Json(answer)).into_response()
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let app = axum::Router::new().route("/mcp", axum::routing::post(mcp));
            let _ = axum::serve(listener, app).await;
        });
    });
    Ok(addr)
}

/// A keep-alive HTTP/1.1 connection speaking MCP to one endpoint.
struct Conn {
    stream: TcpStream,
    host: String,
    path: String,
    token: Option<String>,
    session: Option<String>,
    buf: Vec<u8>,
    body: Vec<u8>,
    next_id: u64,
}

impl Conn {
    fn open(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            stream,
            host: addr.to_string(),
            path: path.to_owned(),
            token: token.map(str::to_owned),
            session: None,
            buf: Vec::new(),
            body: Vec::new(),
            next_id: 0,
        })
    }

    /// A session: `initialize`, its session id kept for the following requests.
    fn session(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Conn> {
        let mut conn = Conn::open(addr, path, token)?;
        conn.request(
            "initialize",
            r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}"#,
        )?;
        Ok(conn)
    }

    fn request(&mut self, method: &str, params: &str) -> Result<serde_json::Value> {
        self.next_id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            self.next_id
        );
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.path,
            self.host,
            body.len()
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(session) = &self.session {
            head.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body.as_bytes())?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match parse_response(&self.buf, &mut self.body) {
                Ok(Some(parsed)) => {
                    if parsed.status != 200 {
                        bail!(
                            "HTTP {} for {method}: {}",
                            parsed.status,
                            String::from_utf8_lossy(&self.body)
                        );
                    }
                    if method == "initialize" {
                        self.session = session_header(&self.buf);
                    }
                    return Ok(serde_json::from_slice(&self.body)?);
                }
                Ok(None) => {}
                Err(err) => bail!("bad response to {method}: {err}"),
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The `Mcp-Session-Id` of a response head.
fn session_header(response: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(response);
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("mcp-session-id")
            .then(|| value.trim().to_owned())
    })
}

/// Sequential tools/call latencies, in microseconds.
fn call_latency(conn: &mut Conn) -> Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    let params = r#"{"name":"echo","arguments":{"text":"hello"}}"#;
    for _ in 0..CALLS / 10 {
        conn.request("tools/call", params)?; // warm-up
    }
    for _ in 0..CALLS {
        let start = Instant::now();
        let answer = conn.request("tools/call", params)?;
        if answer.pointer("/result/isError") == Some(&serde_json::Value::Bool(true)) {
            bail!("the call was not allowed: {answer}");
        }
        hist.record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(hist)
}

/// resources/read answers per second from READERS connections at once.
fn read_throughput(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<f64> {
    let mut conns = (0..READERS)
        .map(|_| Conn::session(addr, path, token))
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .iter_mut()
            .map(|conn| {
                scope.spawn(move || -> Result<u64> {
                    let mut n = 0;
                    while start.elapsed() < READ_WINDOW {
                        conn.request("resources/read", r#"{"uri":"bench://r"}"#)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a reader panicked"))?)
            .collect::<Result<Vec<u64>>>()
    })?;
    Ok(counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64())
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// The proxy process: killed when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "FAIL" }
}

/// Runs the scenario with the `gatehouse` binary `bin`.
pub fn run(bin: &Path) -> Result<McpHttpResult> {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-bench-mcp-http-")
        .tempdir()?;
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY)?;
    let daemon = servers::start_gatehouse(bin, &policy, "")?;
    let data_dir = dir.path().join("proxy-data");
    std::fs::create_dir_all(&data_dir)?;
    let upstream = start_echo_server()?;

    let mut cmd = Command::new(bin);
    cmd.args(["mcp", "http", "--name", "bench", "--listen", "127.0.0.1:0"])
        .arg("--upstream")
        .arg(format!("http://{upstream}/mcp"))
        .arg("--url")
        .arg(format!("http://{}", daemon.addr))
        .arg("--data-dir")
        .arg(&data_dir)
        .env("GATEHOUSE_TOKEN", daemon.token.clone().unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut proxy = Proxy(cmd.spawn().context("starting gatehouse mcp http")?);
    let stdout = proxy.0.stdout.take().context("the proxy's stdout")?;
    let mut line = String::new();
    // Kept open to the end: the proxy prints more, and a closed pipe would fail its prints.
    let mut proxy_out = BufReader::new(stdout);
    proxy_out.read_line(&mut line)?;
    let listen: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.trim().strip_suffix("/mcp"))
        .context("the proxy did not print its address")?
        .parse()?;
    let token = std::fs::read_to_string(data_dir.join("mcp-http.token"))?
        .trim()
        .to_owned();
    let token = Some(token.as_str());

    let mut direct = Conn::session(upstream, "/mcp", None)?;
    let mut proxied = Conn::session(listen, "/mcp", token)?;
    // Interleaved halves, so a noisy moment hurts both sides alike.
    let mut direct_calls = Histogram::<u64>::new(3)?;
    let mut proxied_calls = Histogram::<u64>::new(3)?;
    for _ in 0..2 {
        direct_calls.add(call_latency(&mut direct)?)?;
        proxied_calls.add(call_latency(&mut proxied)?)?;
    }
    let mut direct_reads = Vec::new();
    let mut proxied_reads = Vec::new();
    for _ in 0..2 {
        direct_reads.push(read_throughput(upstream, "/mcp", None)?);
        proxied_reads.push(read_throughput(listen, "/mcp", token)?);
    }
    let pid = proxy.0.id();
    let before = rss_bytes(pid).unwrap_or(0);
    let mut sessions = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let mut conn = Conn::session(listen, "/mcp", token)?;
        conn.request(
            "tools/call",
            r#"{"name":"echo","arguments":{"text":"hello"}}"#,
        )?;
        sessions.push(conn);
    }
    let after = rss_bytes(pid).unwrap_or(0);
    drop(sessions);

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (dr, pr) = (mean(&direct_reads), mean(&proxied_reads));
    let ms = |us: u64| us as f64 / 1000.0;
    let added_p50 =
        ms(proxied_calls.value_at_quantile(0.5)) - ms(direct_calls.value_at_quantile(0.5));
    let per_session = after.saturating_sub(before) as f64 / SESSIONS as f64;
    let mut result = McpHttpResult::default();
    result.lines.push(format!(
        "MCP HTTP tools/call (allowed), {} sequential calls: direct p50 {:.3} ms p99 {:.3} ms; through gatehouse mcp http p50 {:.3} ms p99 {:.3} ms; added p50 {:.3} ms (target <= 0.5 ms: {})",
        direct_calls.len(),
        ms(direct_calls.value_at_quantile(0.5)),
        ms(direct_calls.value_at_quantile(0.99)),
        ms(proxied_calls.value_at_quantile(0.5)),
        ms(proxied_calls.value_at_quantile(0.99)),
        added_p50,
        verdict(added_p50 <= 0.5),
    ));
    result.lines.push(format!(
        "MCP HTTP pass-through resources/read, {READERS} connections for {} s: direct {dr:.0}/s, through {pr:.0}/s, ratio {:.2} (target >= 0.90: {})",
        READ_WINDOW.as_secs(),
        pr / dr,
        verdict(pr / dr >= 0.9),
    ));
    result.lines.push(format!(
        "MCP HTTP memory per proxied session ({SESSIONS} sessions, one call each): {:.1} KiB (proxy RSS {:.1} -> {:.1} MiB)",
        per_session / 1024.0,
        before as f64 / (1024.0 * 1024.0),
        after as f64 / (1024.0 * 1024.0),
    ));
    drop(proxy);
    drop(proxy_out);
    drop(daemon);
    Ok(result)
}
