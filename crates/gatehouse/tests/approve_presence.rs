//! `gatehouse approve` with person presence on (the default): the CLI — which an agent can run
//! as well as a person — cannot decide. It says where to confirm (the dashboard on localhost,
//! with the authenticator) and waits; nothing is decided by a human. And `gatehouse serve`
//! started without a terminal prints neither the login link nor an enrolment code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{BIN, POLICY};

#[test]
fn the_cli_cannot_decide_without_presence_and_says_where_to_confirm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    // A short deadline: the wait ends when the deadline rejects the action.
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "[approvals]\ndeadline_ms = 3000\npresence = \"webauthn\"\n[classifier]\nkind = \"none\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    // setsid(1): no controlling terminal, as under a service manager or an agent's shell tool.
    let mut serve = Command::new("setsid")
        .arg(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--policy"])
        .arg(dir.path().join("policy.toml"))
        .arg("--config")
        .arg(dir.path().join("gatehouse.toml"))
        .arg("--data-dir")
        .arg(&data)
        .env("GATEHOUSE_LOG", "info")
        .env_remove("GATEHOUSE_APPROVALS_PRESENCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut stderr = serve.stderr.take().unwrap();
    let serve = Kill(serve);
    let mut printed = Vec::new();
    let url = loop {
        let line = lines.next().expect("a line").unwrap();
        printed.push(line.clone());
        if line.starts_with("dashboard login:") {
            break printed[0]
                .strip_prefix("gatehouse listening on ")
                .unwrap()
                .to_owned();
        }
    };
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("GATEHOUSE_URL", &url)
            .env("GATEHOUSE_DATA_DIR", &data)
            .output()
            .unwrap()
    };

    let check = Command::new(BIN)
        .args([
            "check",
            "--tool",
            "Bash",
            "--input",
            r#"{"command":"git push"}"#,
        ])
        .args(["--timeout", "30"])
        .env("GATEHOUSE_URL", &url)
        .env("GATEHOUSE_DATA_DIR", &data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let id = loop {
        let pending = String::from_utf8_lossy(&cli(&["pending"]).stdout).into_owned();
        if let Some(id) = pending.split_whitespace().find(|w| w.starts_with("act_")) {
            break id.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never paused");
        std::thread::sleep(Duration::from_millis(50));
    };

    let approve = cli(&["approve", &id]);
    let said = String::from_utf8_lossy(&approve.stderr);
    let port = url.rsplit(':').next().unwrap();
    assert!(
        said.contains(&format!("http://localhost:{port}/#action={id}")),
        "{said}"
    );
    assert!(said.contains("presence"), "{said}");
    // It waited until the deadline decided: a rejection by timeout, not an approval.
    let shown = String::from_utf8_lossy(&approve.stdout).to_lowercase();
    assert!(
        shown.contains("reject") && shown.contains("timeout"),
        "{shown}"
    );
    assert_eq!(approve.status.code(), Some(4), "not approved: {approve:?}");
    let out = check.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["decided_by"], "timeout", "{verdict}");

    let ledger = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
    let human: i64 = ledger
        .query_row(
            "SELECT count(*) FROM decisions WHERE decided_by = 'human'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(human, 0);

    // Without a terminal, no secret went to stdout or the log.
    drop(serve);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let everything = format!("{}\n{}\n{log}", printed.join("\n"), rest.join("\n"));
    assert!(!everything.contains("login?code="), "{everything}");
    assert!(!everything.contains("enrolment code:"), "{everything}");
    assert!(
        everything.contains("no authenticator enrolled"),
        "it says how to enrol: {everything}"
    );
}
