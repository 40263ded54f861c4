//! The `mcp` scenario: what `gatehouse mcp stdio` adds in front of a stdio MCP server, measured
//! against calling the same server directly in the same run.
//!
//! The server is this binary's hidden `mcp-echo-server` (a minimal stdio MCP server answering
//! `tools/call` and `resources/read` at once), so the figures are the proxy's cost and not a
//! Node or Python server's. Three figures:
//! * added latency of an allowed `tools/call` (sequential calls; p50/p99, through − direct);
//! * pass-through throughput: pipelined `resources/read` (64 in flight), through ÷ direct;
//! * memory per proxied session: the proxy process's RSS (one process per stdio session).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

use crate::servers;

/// Sequential `tools/call` round trips per side.
const CALLS: usize = 2_000;
/// Pipelined `resources/read` requests per side, and how many are in flight at once.
const READS: usize = 20_000;
const WINDOW: usize = 64;

const POLICY: &str = r#"
default = "pause"
[[rules]]
id = "bench-echo"
effect = "allow"
tool = "mcp__bench__echo"
"#;

/// One line per figure, ready to print.
#[derive(Debug, Default)]
pub struct McpResult {
    pub lines: Vec<String>,
}

/// The stdio MCP server the scenario measures against: answers every request at once.
pub fn echo_server() -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id") else { continue };
        let result = match msg.get("method").and_then(|m| m.as_str()) {
            Some("initialize") => serde_json::json!({
                "protocolVersion": "2025-06-18", "capabilities": {"tools": {}, "resources": {}},
                "serverInfo": {"name": "bench", "version": "1"}}),
            Some("tools/call") => serde_json::json!({"content": [{"type": "text", "text": "ok"}]}),
            Some("resources/read") => {
                serde_json::json!({"contents": [{"uri": "bench://r", "text": "resource body"}]})
            }
            _ => serde_json::json!({}),
        };
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}),
        )?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Peer {
    fn spawn(cmd: &mut Command) -> Result<Peer> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            next_id: 0,
        };
        peer.request("initialize", r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}"#)?;
        writeln!(
            peer.stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )?;
        Ok(peer)
    }

    fn send(&mut self, method: &str, params: &str) -> Result<u64> {
        self.next_id += 1;
        writeln!(
            self.stdin,
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            self.next_id
        )?;
        Ok(self.next_id)
    }

    fn read_answer(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("the peer closed its stdout");
            }
            let msg: serde_json::Value = serde_json::from_str(&line)?;
            if msg.get("id").is_some() {
                return Ok(msg);
            }
        }
    }

    fn request(&mut self, method: &str, params: &str) -> Result<serde_json::Value> {
        self.send(method, params)?;
        self.stdin.flush()?;
        self.read_answer()
    }

    fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sequential tools/call latencies, in microseconds.
fn call_latency(peer: &mut Peer) -> Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    let params = r#"{"name":"echo","arguments":{"text":"hello"}}"#;
    for _ in 0..CALLS / 10 {
        peer.request("tools/call", params)?; // warm-up
    }
    for _ in 0..CALLS {
        let start = Instant::now();
        let answer = peer.request("tools/call", params)?;
        if answer.pointer("/result/isError") == Some(&serde_json::Value::Bool(true)) {
            bail!("the call was not allowed: {answer}");
        }
        hist.record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(hist)
}

/// Pipelined resources/read: answers per second.
fn read_throughput(peer: &mut Peer) -> Result<f64> {
    let params = r#"{"uri":"bench://r"}"#;
    let start = Instant::now();
    let mut sent = 0;
    let mut answered = 0;
    while answered < READS {
        while sent < READS && sent - answered < WINDOW {
            peer.send("resources/read", params)?;
            sent += 1;
        }
        peer.stdin.flush()?;
        peer.read_answer()?;
        answered += 1;
    }
    Ok(READS as f64 / start.elapsed().as_secs_f64())
}

/// Runs the scenario with the `gatehouse` binary `bin`.
pub fn run(bin: &Path) -> Result<McpResult> {
    let me = std::env::current_exe().context("locating this binary")?;
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-bench-mcp-")
        .tempdir()?;
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY)?;
    let daemon = servers::start_gatehouse(bin, &policy, "")?;
    let data_dir = dir.path().join("proxy-data");
    std::fs::create_dir_all(&data_dir)?;

    let mut direct = Peer::spawn(Command::new(&me).arg("mcp-echo-server"))?;
    let mut proxied = Peer::spawn(
        Command::new(bin)
            .args(["mcp", "stdio", "--name", "bench", "--url"])
            .arg(format!("http://{}", daemon.addr))
            .arg("--data-dir")
            .arg(&data_dir)
            .env("GATEHOUSE_TOKEN", daemon.token.clone().unwrap_or_default())
            .arg("--")
            .arg(&me)
            .arg("mcp-echo-server"),
    )?;

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
        direct_reads.push(read_throughput(&mut direct)?);
        proxied_reads.push(read_throughput(&mut proxied)?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (dr, pr) = (mean(&direct_reads), mean(&proxied_reads));
    let ms = |us: u64| us as f64 / 1000.0;
    let added_p50 =
        ms(proxied_calls.value_at_quantile(0.5)) - ms(direct_calls.value_at_quantile(0.5));
    let rss = proxied.rss_bytes().unwrap_or(0);
    let mut result = McpResult::default();
    result.lines.push(format!(
        "MCP tools/call (allowed), {} sequential calls: direct p50 {:.3} ms p99 {:.3} ms; through gatehouse mcp stdio p50 {:.3} ms p99 {:.3} ms; added p50 {:.3} ms (target <= 0.5 ms: {})",
        direct_calls.len(),
        ms(direct_calls.value_at_quantile(0.5)),
        ms(direct_calls.value_at_quantile(0.99)),
        ms(proxied_calls.value_at_quantile(0.5)),
        ms(proxied_calls.value_at_quantile(0.99)),
        added_p50,
        if added_p50 <= 0.5 { "PASS" } else { "FAIL" },
    ));
    result.lines.push(format!(
        "MCP pass-through resources/read, {READS} pipelined ({WINDOW} in flight): direct {dr:.0}/s, through {pr:.0}/s, ratio {:.2} (target >= 0.90: {})",
        pr / dr,
        if pr / dr >= 0.9 { "PASS" } else { "FAIL" },
    ));
    result.lines.push(format!(
        "MCP memory per proxied stdio session (the proxy process's RSS after {} calls): {:.1} MiB",
        2 * (CALLS + CALLS / 10) + 2 * READS,
        rss as f64 / (1024.0 * 1024.0)
    ));
    drop(proxied);
    drop(direct);
    drop(daemon);
    Ok(result)
}
