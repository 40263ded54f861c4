//! 10 000 paused actions at once against the real `gatehouse serve`: memory stays bounded (the
//! daemon's RSS is printed before and after, per paused action and per waiting request), the API
//! stays responsive (health, the paged pending list, a fast-path check, a decision that wakes its
//! long-polling waiter), and the queue caps apply (the next pause is `approval_queue_full`,
//! recorded as a rejection).
//!
//! It holds [`WAITERS`] long-polls open at once (fewer if `RLIMIT_NOFILE` cannot be raised that
//! far; the count is printed), and spreads the actions over [`SESSIONS`] sessions, each at its
//! own cap (`max_pending_per_session` 1 000) when all are parked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use serde_json::Value;
use support::{BIN, POLICY, ServeProcess, spawn_serve};

/// Paused actions parked at once: the global cap.
const PARKED: usize = 10_000;
/// Sessions they are spread over.
const SESSIONS: usize = 10;
/// Long-polling requests held open at once while the actions are parked.
const WAITERS: usize = 3_000;
/// Connections parking the actions in parallel.
const PARKERS: usize = 16;
/// The daemon's whole resident memory with everything parked and every waiter held. Measured
/// (debug build, 2026-11-24): about 18 MiB idle, 44 MiB with 10 000 parked, 165 MiB with 3 000
/// long-polls on top. A design that kept a buffer, a task stack or a connection per paused action
/// would blow through it; generous, so another allocator or machine doesn't fail the test.
const RSS_CEILING: u64 = 256 * 1024 * 1024;
/// What parking may add per paused action (its tracking entry and deadline timer; the ledger
/// holds the rest on disk). Measured: about 2.7 KiB.
const PER_PAUSED_CEILING: u64 = 8 * 1024;
/// What a held long-poll may add. Measured: about 41 KiB — some 18 KiB for the open connection
/// itself, most of the rest from the burst of blocking threads and SQLite read connections the
/// ledger's read pool opens when thousands of long-polls each read their action at once (the
/// daemon goes from 9 to about 200 threads).
const PER_WAITER_CEILING: u64 = 64 * 1024;

const CONFIG: &str = "[approvals]\ndeadline_ms = 600000\nmax_pending = 10000\n\
                      max_pending_per_session = 1000\nmax_pending_per_agent = 10000\n[classifier]\nkind = \"none\"\n";

/// One keep-alive HTTP/1.1 connection to the daemon.
struct Conn {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(70)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
            addr: addr.to_owned(),
        }
    }

    fn send(&mut self, method: &str, path: &str, token: &str, body: &str) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
    }

    /// Reads one response (the daemon frames every body with `Content-Length`).
    fn receive(&mut self) -> (u16, Value) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        (status, body)
    }

    fn call(&mut self, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.send(method, path, token, body);
        self.receive()
    }

    /// True if no byte of a response has arrived (the request is still being held).
    fn still_waiting(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        let stream = self.reader.get_ref();
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let waiting =
            matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        stream.set_nonblocking(false).unwrap();
        waiting
    }
}

/// A number from the daemon's `/proc/PID/status`, e.g. `VmRSS` (in kB) or `Threads`.
fn proc_status(daemon: &ServeProcess, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
}

/// The daemon's resident set size in bytes.
fn rss(daemon: &ServeProcess) -> u64 {
    proc_status(daemon, "VmRSS") * 1024
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// This process's open-file limits (soft, hard), from `/proc/self/limits`.
fn nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/self/limits");
    let mut fields = line.split_whitespace().skip(3);
    let mut next = || match fields.next() {
        Some("unlimited") | None => u64::MAX,
        Some(v) => v.parse().unwrap(),
    };
    (next(), next())
}

/// Raises this process's soft open-file limit (the daemon it starts inherits it) towards `want`,
/// with util-linux's `prlimit` (the workspace forbids `unsafe`, so no `setrlimit` here); returns
/// the soft limit in force.
fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = nofile();
    if soft < want {
        let _ = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={}:", want.min(hard)))
            .status();
    }
    nofile().0
}

fn pause_body(session: usize, n: usize) -> String {
    format!(
        r#"{{"tool":"Bash","input":{{"command":"git push s{session} {n}"}},"session_id":"s{session}","tool_use_id":"t{n}","wait_ms":0}}"#
    )
}

fn token(data_dir: &Path, name: &str) -> String {
    std::fs::read_to_string(data_dir.join(name))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn ten_thousand_paused_actions_keep_memory_bounded_the_api_responsive_and_the_caps() {
    let limit = raise_nofile(WAITERS as u64 + 1_024);
    let waiters = WAITERS.min(limit.saturating_sub(512) as usize);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join("gatehouse.toml"), CONFIG).unwrap();
    let data_dir = dir.path().join("data");
    let mut daemon = spawn_serve(dir.path(), "warn");
    let addr = daemon.addr().to_owned();
    let (agent, approver) = (
        token(&data_dir, "agent.token"),
        token(&data_dir, "approver.token"),
    );

    // Warm the paths used below, then take the idle figure.
    let mut api = Conn::open(&addr);
    let read = r#"{"tool":"Read","input":{"file_path":"/etc/hosts"}}"#;
    for _ in 0..200 {
        let (status, body) = api.call("POST", "/v1/check", &agent, read);
        assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")));
    }
    let rss_idle = rss(&daemon);

    // Park 10 000, spread over the sessions, from parallel keep-alive connections.
    let started = Instant::now();
    let ids: Vec<(usize, String)> = std::thread::scope(|scope| {
        let parkers: Vec<_> = (0..PARKERS)
            .map(|p| {
                let (addr, agent) = (&addr, &agent);
                scope.spawn(move || {
                    let mut conn = Conn::open(addr);
                    let mut ids = Vec::new();
                    for k in (p..PARKED).step_by(PARKERS) {
                        let session = k % SESSIONS;
                        let (status, body) =
                            conn.call("POST", "/v1/check", agent, &pause_body(session, k));
                        assert_eq!(status, 200, "{body}");
                        assert_eq!(body["verdict"], "pending", "pause {k}: {body}");
                        ids.push((session, body["action_id"].as_str().unwrap().to_owned()));
                    }
                    ids
                })
            })
            .collect();
        parkers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    let parked_in = started.elapsed();
    assert_eq!(ids.len(), PARKED);
    let rss_parked = rss(&daemon);

    // Long-polls on the first `waiters` actions, all held open at once.
    let started = Instant::now();
    let mut polls: Vec<Conn> = ids[..waiters]
        .iter()
        .map(|(_, id)| {
            let mut conn = Conn::open(&addr);
            conn.send(
                "GET",
                &format!("/v1/actions/{id}?wait_ms=60000"),
                &agent,
                "",
            );
            conn
        })
        .collect();
    let opened_in = started.elapsed();

    // Responsive with everything parked and waited on.
    let mut api = Conn::open(&addr);
    let (status, health) = api.call("GET", "/healthz", &agent, "");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["pending"], PARKED, "{health}");
    let (status, page) = api.call("GET", "/v1/actions?status=pending&limit=500", &approver, "");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["actions"].as_array().unwrap().len(), 500);
    let next = page["next_before"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, page) = api.call(
        "GET",
        &format!("/v1/actions?status=pending&limit=500&before={next}"),
        &approver,
        "",
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["actions"].as_array().unwrap().len(), 500);
    assert!(
        page["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["verdict"] == "pending")
    );
    let (status, body) = api.call("POST", "/v1/check", &agent, read);
    assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")));
    let rss_waiting = rss(&daemon);
    let threads = proc_status(&daemon, "Threads");

    // Every long-poll is still held: none was answered early or dropped.
    let held = polls.iter().filter(|c| c.still_waiting()).count();
    assert_eq!(held, waiters, "long-polls answered or closed early");

    // A decision on one of the 10 000 wakes its waiter at once.
    let (session, decided) = ids[0].clone();
    let (status, view) = api.call("GET", &format!("/v1/actions/{decided}"), &approver, "");
    assert_eq!(status, 200, "{view}");
    // An approval names the action the person saw, by its hash, where the daemon gives one.
    let mut decision = serde_json::json!({"decision": "approve"});
    if let Some(hash) = view["action_hash"].as_str() {
        decision["action_hash"] = hash.into();
    }
    let (status, body) = api.call(
        "POST",
        &format!("/v1/actions/{decided}/decision"),
        &approver,
        &decision.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, woken) = polls[0].receive();
    assert_eq!(status, 200, "{woken}");
    assert_eq!(woken["action_id"], decided.as_str(), "{woken}");
    assert_eq!(woken["verdict"], "allow", "{woken}");
    assert!(polls[1..].iter().all(Conn::still_waiting));

    // The caps: one more pause fills the queue again, the next is refused and recorded so.
    let (_, body) = api.call("POST", "/v1/check", &agent, &pause_body(session, PARKED));
    assert_eq!(body["verdict"], "pending", "{body}");
    let (status, refused) = api.call("POST", "/v1/check", &agent, &pause_body(SESSIONS, 0));
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["verdict"], "reject", "{refused}");
    assert_eq!(refused["decided_by"], "error", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(reason.contains("approval_queue_full"), "{reason}");
    assert!(reason.contains("approvals.max_pending"), "{reason}");
    let refused_id = refused["action_id"].as_str().unwrap();
    let (status, recorded) = api.call("GET", &format!("/v1/actions/{refused_id}"), &approver, "");
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["verdict"], "reject", "{recorded}");
    assert_eq!(recorded["decided_by"], "error", "{recorded}");
    let (_, health) = api.call("GET", "/healthz", &agent, "");
    assert_eq!(health["pending"], PARKED, "{health}");

    let per_paused = rss_parked.saturating_sub(rss_idle) / PARKED as u64;
    let per_waiter = rss_waiting.saturating_sub(rss_parked) / waiters.max(1) as u64;
    eprintln!(
        "parked {PARKED} in {parked_in:?}, opened {waiters} long-polls in {opened_in:?} \
         (RLIMIT_NOFILE {limit}); daemon RSS idle {}, parked {}, with waiters {}; \
         {per_paused} bytes per paused action, {per_waiter} bytes per waiting request; \
         {threads} threads",
        mib(rss_idle),
        mib(rss_parked),
        mib(rss_waiting)
    );
    assert!(
        rss_waiting < RSS_CEILING,
        "daemon RSS {} with {PARKED} parked",
        mib(rss_waiting)
    );
    assert!(
        per_paused < PER_PAUSED_CEILING,
        "{per_paused} bytes per paused action"
    );
    assert!(
        per_waiter < PER_WAITER_CEILING,
        "{per_waiter} bytes per waiting request"
    );

    // The waiters hang up, the daemon stops cleanly, and the ledger verifies.
    drop(polls.drain(..));
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(daemon.child.wait().unwrap().success());
    let output = Command::new(BIN)
        .args(["ledger", "verify", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
