//! The `hooks` scenario (issue 10): what an agent host's hook costs, measured against a baseline
//! in the same run.
//! * Claude Code's HTTP hook (`POST /v1/hooks/claude-code` with its PreToolUse payload) against a
//!   plain `POST /v1/check` of the same action, alternating on one keep-alive connection each:
//!   p50/p99 and the p50 ratio (target ≤ 1.2×).
//! * `gatehouse hook claude-code` as a process (spawn, read the payload, check, answer, exit)
//!   beside a `curl` process doing the same check, and a bare `/bin/true` spawn as the floor:
//!   p50/p99 (target ≤ 3 ms; a published peer's hook takes about 22 ms).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

use crate::servers;

/// Round trips per side over HTTP, and process runs per side.
const ROUND_TRIPS: usize = 2_000;
const PROCESSES: usize = 200;

const POLICY: &str = r#"
default = "pause"
[[rules]]
id = "allow-ls"
effect = "allow"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "^ls( |$)"
"#;

/// One line per figure, ready to print.
#[derive(Debug, Default)]
pub struct HooksResult {
    pub lines: Vec<String>,
}

fn check_body(n: usize) -> String {
    format!(
        r#"{{"tool":"Bash","input":{{"command":"ls -la","description":"list"}},"session_id":"bench-hooks","tool_use_id":"check-{n}","cwd":"/tmp","agent":"claude-code"}}"#
    )
}

fn hook_body(n: usize) -> String {
    format!(
        r#"{{"session_id":"bench-hooks","transcript_path":"/tmp/t.jsonl","cwd":"/tmp","permission_mode":"default","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{{"command":"ls -la","description":"list"}},"tool_use_id":"hook-{n}"}}"#
    )
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
    token: String,
}

impl Conn {
    fn open(addr: SocketAddr, host: &str, token: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: host.to_owned(),
            token: token.to_owned(),
        })
    }

    /// Posts `body` to `path` and returns the answer's body.
    fn post(&mut self, path: &str, body: &str) -> Result<String> {
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        )?;
        self.writer.flush()?;
        let mut length = 0usize;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("{path}: {}", line.trim());
        }
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(String::from_utf8(body)?)
    }
}

fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn pct(hist: &Histogram<u64>, q: f64) -> f64 {
    hist.value_at_quantile(q) as f64
}

/// Runs `command` with `stdin` `runs` times; wall time per run in microseconds.
fn process_runs(make: impl Fn() -> Command, stdin: &[u8], runs: usize) -> Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..runs + runs / 10 {
        let start = Instant::now();
        let mut child = make()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin)?;
        }
        let output = child.wait_with_output()?;
        let took = micros(start);
        if !output.status.success() {
            bail!(
                "{:?} failed: {}",
                make().get_program(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if i >= runs / 10 {
            hist.record(took)?;
        }
    }
    Ok(hist)
}

/// Runs the scenario with the `gatehouse` binary `bin`.
pub fn run(bin: &Path) -> Result<HooksResult> {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-bench-hooks-")
        .tempdir()?;
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY)?;
    let daemon = servers::start_gatehouse(bin, &policy, "")?;
    let token = daemon.token.clone().unwrap_or_default();
    let mut result = HooksResult::default();

    // HTTP: the hook endpoint and the plain check, alternating so drift hits both alike.
    let mut check_conn = Conn::open(daemon.addr, &daemon.host, &token)?;
    let mut hook_conn = Conn::open(daemon.addr, &daemon.host, &token)?;
    let mut check = Histogram::<u64>::new(3)?;
    let mut hook = Histogram::<u64>::new(3)?;
    let warmup = ROUND_TRIPS / 10;
    for n in 0..ROUND_TRIPS + warmup {
        let start = Instant::now();
        let answer = check_conn.post("/v1/check", &check_body(n))?;
        let took = micros(start);
        if !answer.contains(r#""verdict":"allow""#) {
            bail!("the check was not allowed: {answer}");
        }
        if n >= warmup {
            check.record(took)?;
        }
        let start = Instant::now();
        let answer = hook_conn.post("/v1/hooks/claude-code", &hook_body(n))?;
        let took = micros(start);
        if answer != "{}" {
            bail!("the hook did not allow: {answer}");
        }
        if n >= warmup {
            hook.record(took)?;
        }
    }
    let ratio = pct(&hook, 0.5) / pct(&check, 0.5).max(1.0);
    result.lines.push(format!(
        "hooks: Claude Code HTTP hook round trip p50 {:.0} µs, p99 {:.0} µs; plain /v1/check of the same action p50 {:.0} µs, p99 {:.0} µs; p50 ratio {ratio:.2}x (target <= 1.2x) [{ROUND_TRIPS} each, alternating]",
        pct(&hook, 0.5),
        pct(&hook, 0.99),
        pct(&check, 0.5),
        pct(&check, 0.99),
    ));

    // Processes: `gatehouse hook` beside curl doing the same round trip, and a bare spawn.
    let url = format!("http://{}", daemon.addr);
    let payload = hook_body(usize::MAX);
    let hook_runs = {
        let make = || {
            let mut cmd = Command::new(bin);
            cmd.args(["hook", "claude-code", "--url", &url])
                .env("GATEHOUSE_TOKEN", &token);
            cmd
        };
        // Every run re-sends the same tool_use_id: it re-attaches (one action), as a host's
        // retry does; the check path is the same up to the ledger's lookup.
        process_runs(make, payload.as_bytes(), PROCESSES)?
    };
    let curl_runs = match servers::run_quietly(Command::new("curl").arg("--version")) {
        Ok(()) => {
            let body = check_body(usize::MAX);
            let make = || {
                let mut cmd = Command::new("curl");
                cmd.args(["-sS", "-f", "-o", "/dev/null", "--data-binary", "@-"])
                    .args(["-H", "Content-Type: application/json"])
                    .args(["-H", &format!("Authorization: Bearer {token}")])
                    .arg(format!("{url}/v1/check"));
                cmd
            };
            Some(process_runs(make, body.as_bytes(), PROCESSES)?)
        }
        Err(_) => None,
    };
    let true_runs = process_runs(|| Command::new("/bin/true"), b"", PROCESSES)?;
    let ms = |h: &Histogram<u64>, q| pct(h, q) / 1000.0;
    result.lines.push(format!(
        "hooks: `gatehouse hook claude-code` process (spawn, check, answer) p50 {:.2} ms, p99 {:.2} ms (target <= 3 ms; a published peer's hook takes about 22 ms)",
        ms(&hook_runs, 0.5),
        ms(&hook_runs, 0.99)
    ));
    match curl_runs {
        Some(curl) => result.lines.push(format!(
            "hooks: curl doing the same check as a process p50 {:.2} ms, p99 {:.2} ms; gatehouse hook / curl p50 ratio {:.2}x; bare /bin/true spawn p50 {:.2} ms [{PROCESSES} runs each]",
            ms(&curl, 0.5),
            ms(&curl, 0.99),
            pct(&hook_runs, 0.5) / pct(&curl, 0.5).max(1.0),
            ms(&true_runs, 0.5)
        )),
        None => result.lines.push(format!(
            "hooks: curl not found, no process baseline; bare /bin/true spawn p50 {:.2} ms",
            ms(&true_runs, 0.5)
        )),
    }
    Ok(result)
}
