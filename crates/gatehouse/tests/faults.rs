//! Process-level faults: the real `gatehouse serve` is killed with SIGKILL again and again
//! while clients send checks at full speed. Every verdict a client received must be in the
//! ledger afterwards, the hash chain must verify, and no action may have two decisions.
//!
//! `GATEHOUSE_KILL_ROUNDS` (default 20) sets how many kills; a soak runs hundreds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::{BIN, POLICY, ServeProcess, spawn_serve};

/// Paused actions time out quickly, so deadline timers and the start-up sweep decide them
/// while the daemon is being killed.
const CONFIG: &str = "[approvals]\ndeadline_ms = 150\n[ledger]\nsign_interval_secs = 1\n";

/// A verdict a client received: action id, verdict.
type Received = (String, String);

fn serve(dir: &Path) -> ServeProcess {
    spawn_serve(dir, "error")
}

/// One HTTP/1.1 request on its own connection; `None` if the daemon died before answering.
fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

fn check_body(client: usize, n: usize) -> String {
    match n % 5 {
        0..=2 => format!(r#"{{"tool":"Read","input":{{"file_path":"/c{client}/{n}"}}}}"#),
        3 => format!(r#"{{"tool":"Bash","input":{{"command":"rm -rf /{client}/{n}"}}}}"#),
        _ => format!(
            r#"{{"tool":"Bash","input":{{"command":"git push {client} {n}"}},"wait_ms":0}}"#
        ),
    }
}

/// Sends checks until the daemon stops answering; records every verdict received.
fn client(
    id: usize,
    addr: String,
    token: String,
    received: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let Some((status, body)) = request(&addr, "POST", "/v1/check", &token, &check_body(id, n))
        else {
            return;
        };
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_ne!(
            answer["decided_by"], "error",
            "the ledger failed after a kill: {answer}"
        );
        let action_id = answer["action_id"].as_str().unwrap().to_owned();
        let verdict = answer["verdict"].as_str().unwrap().to_owned();
        received.lock().unwrap().push((action_id, verdict));
        count.fetch_add(1, Ordering::AcqRel);
    }
}

fn verify(data_dir: &Path) -> String {
    let output = Command::new(BIN)
        .args(["ledger", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "verify failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn kill_9_under_load_loses_no_verdict_and_keeps_the_chain() {
    let rounds: usize = std::env::var("GATEHOUSE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join("gatehouse.toml"), CONFIG).unwrap();
    let data_dir = dir.path().join("data");
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    for round in 0..rounds {
        let mut daemon = serve(dir.path());
        let token = std::fs::read_to_string(data_dir.join("agent.token")).unwrap();
        let token = token.trim().to_owned();
        let (_, health) = request(daemon.addr(), "GET", "/healthz", &token, "").unwrap();
        assert!(
            health.contains(r#""status":"ok""#),
            "round {round}: {health}"
        );
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let (addr, token) = (daemon.addr().to_owned(), token.clone());
                let (received, count, stop) = (received.clone(), count.clone(), stop.clone());
                std::thread::spawn(move || {
                    client(round * 10 + i, addr, token, received, count, stop)
                })
            })
            .collect();
        // Kill at a different point each round: after 5 to ~300 verdicts.
        let target = 5 + (round * 97) % 300;
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::Acquire) < target && Instant::now() < deadline {
            std::thread::yield_now();
        }
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        stop.store(true, Ordering::Release);
        for client in clients {
            client.join().expect("a client saw a broken answer");
        }
        assert!(
            count.load(Ordering::Acquire) > 0,
            "round {round} got no verdicts"
        );
    }
    let killed_in = started.elapsed();

    // One clean start after the last kill: it must trust the ledger and sweep expired pauses.
    let final_start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut daemon = serve(dir.path());
    let token = std::fs::read_to_string(data_dir.join("agent.token")).unwrap();
    let (_, health) = request(daemon.addr(), "GET", "/healthz", token.trim(), "").unwrap();
    assert!(health.contains(r#""status":"ok""#), "{health}");
    verify(&data_dir);
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(daemon.child.wait().unwrap().success());

    let report = verify(&data_dir);
    let ledger = rusqlite::Connection::open(data_dir.join("ledger.db")).unwrap();
    let received = received.lock().unwrap();
    for (action_id, verdict) in received.iter() {
        let recorded: String = ledger
            .query_row(
                "SELECT verdict FROM actions WHERE id = ?1",
                [action_id],
                |row| row.get(0),
            )
            .unwrap_or_else(|err| {
                panic!("{action_id} ({verdict}) was answered but not recorded: {err}")
            });
        assert_eq!(&recorded, verdict, "{action_id}");
    }
    let twice: i64 = ledger
        .query_row(
            "SELECT count(*) FROM (SELECT action_id FROM decisions GROUP BY action_id HAVING count(*) > 1)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(twice, 0, "an action has two decisions");
    let undecided: i64 = ledger
        .query_row(
            "SELECT count(*) FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE a.verdict = 'pending' AND d.action_id IS NULL AND a.deadline_ms < ?1",
            [final_start_ms],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        undecided, 0,
        "the restart decides every paused action past its deadline"
    );
    // The shutdown signed a checkpoint covering the whole chain; export it.
    let export = dir.path().join("checkpoint.json");
    let status = Command::new(BIN)
        .args(["ledger", "checkpoint", "--data-dir"])
        .arg(&data_dir)
        .arg("--export")
        .arg(&export)
        .status()
        .unwrap();
    assert!(status.success());
    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let entries: i64 = ledger
        .query_row("SELECT max(seq) FROM chain", [], |row| row.get(0))
        .unwrap();
    assert_eq!(checkpoint["chain_seq"], entries, "{checkpoint}");
    eprintln!(
        "{rounds} kills in {killed_in:?}, {} verdicts received, {entries} chain entries; {report}",
        received.len()
    );
}

#[test]
fn ledger_verify_exits_4_on_a_tampered_ledger_and_checks_anchors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(dir.path().join("gatehouse.toml"), CONFIG).unwrap();
    let data_dir = dir.path().join("data");
    let mut daemon = serve(dir.path());
    let token = std::fs::read_to_string(data_dir.join("agent.token")).unwrap();
    for n in 0..10 {
        let (status, _) = request(
            daemon.addr(),
            "POST",
            "/v1/check",
            token.trim(),
            &check_body(0, n * 5),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(daemon.child.wait().unwrap().success());
    let anchor = dir.path().join("anchor.json");
    let export = Command::new(BIN)
        .args(["ledger", "checkpoint", "--export"])
        .arg(&anchor)
        .arg("--data-dir")
        .arg(&data_dir)
        .status()
        .unwrap();
    assert!(export.success());
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["ledger", "verify", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let anchor_arg = anchor.to_str().unwrap();
    assert!(run(&["--anchor", anchor_arg]).status.success());

    // Truncate: drop the last record (whatever its kind) and its chain entry, and the stored
    // checkpoints.
    let raw = rusqlite::Connection::open(data_dir.join("ledger.db")).unwrap();
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DROP TRIGGER actions_append_only_delete; DROP TRIGGER scores_append_only_delete;
         DROP TRIGGER chain_append_only_delete; DROP TRIGGER checkpoints_append_only_delete;",
    )
    .unwrap();
    let (kind, record): (String, i64) = raw
        .query_row(
            "SELECT kind, record FROM chain ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    let table = if kind == "score" { "scores" } else { "actions" };
    raw.execute(&format!("DELETE FROM {table} WHERE seq = ?1"), [record])
        .unwrap();
    raw.execute_batch(
        "DELETE FROM chain WHERE seq = (SELECT max(seq) FROM chain); DELETE FROM checkpoints;",
    )
    .unwrap();
    drop(raw);
    assert!(
        run(&[]).status.success(),
        "a clean cut is invisible without an anchor"
    );
    let output = run(&["--anchor", anchor_arg]);
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stdout).contains("truncated"));

    // Edit a record in the middle: the chain names it.
    let raw = rusqlite::Connection::open(data_dir.join("ledger.db")).unwrap();
    raw.execute_batch(
        "DROP TRIGGER actions_append_only_update;
         UPDATE actions SET reason = 'edited' WHERE seq = 2",
    )
    .unwrap();
    let entry: i64 = raw
        .query_row(
            "SELECT seq FROM chain WHERE kind = 'action' AND record = 2",
            [],
            |row| row.get(0),
        )
        .unwrap();
    drop(raw);
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("chain entry {entry}: its action record")),
        "{stdout}"
    );
}

#[test]
fn a_paused_action_survives_kill_9_and_is_decided_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "[approvals]\ndeadline_ms = 60000\n",
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let paused = r#"{"tool":"Bash","input":{"command":"git push"},"session_id":"s1","tool_use_id":"t1","wait_ms":0}"#;
    let mut daemon = serve(dir.path());
    let agent = std::fs::read_to_string(data_dir.join("agent.token")).unwrap();
    let approver = std::fs::read_to_string(data_dir.join("approver.token")).unwrap();
    let (agent, approver) = (agent.trim(), approver.trim());
    let (_, body) = request(daemon.addr(), "POST", "/v1/check", agent, paused).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["verdict"], "pending", "{answer}");
    let id = answer["action_id"].as_str().unwrap().to_owned();
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();

    let daemon = serve(dir.path());
    let (status, body) = request(
        daemon.addr(),
        "GET",
        &format!("/v1/actions/{id}"),
        approver,
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""verdict":"pending""#),
        "still pending: {body}"
    );
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    let approval = serde_json::json!({"decision": "approve", "action_hash": shown["action_hash"]});
    let (status, body) = request(
        daemon.addr(),
        "POST",
        &format!("/v1/actions/{id}/decision"),
        approver,
        &approval.to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // The agent re-sends its check after the restart and re-attaches to the decided action.
    let (_, body) = request(daemon.addr(), "POST", "/v1/check", agent, paused).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["action_id"], id.as_str(), "{answer}");
    assert_eq!(answer["verdict"], "allow", "{answer}");
    // A second approval is refused: one decision per action.
    let (status, _) = request(
        daemon.addr(),
        "POST",
        &format!("/v1/actions/{id}/decision"),
        approver,
        r#"{"decision":"deny"}"#,
    )
    .unwrap();
    assert_eq!(status, 409);
    drop(daemon);
    verify(&data_dir);
}
