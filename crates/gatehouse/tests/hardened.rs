//! Hardened mode with the real binary: `serve --hardened` refuses a data directory other users
//! could write, and (as root) an agent running as another user checks over the socket, is
//! recorded with its own uid, and cannot read the approver token nor approve.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use support::{BIN, POLICY};

/// The unprivileged user the cross-user test runs the agent as.
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `gatehouse serve --hardened` over `dir` (policy.toml, data/, check.sock).
fn serve_hardened(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--hardened", "--listen", "127.0.0.1:0"])
        .arg("--policy")
        .arg(dir.join("policy.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--socket")
        .arg(dir.join("check.sock"))
        .env("GATEHOUSE_LOG", "warn")
        // Approvals here are by the daemon's user with the token (presence has its own tests).
        .env("GATEHOUSE_APPROVALS_PRESENCE", "off")
        .env_remove("GATEHOUSE_CONFIG");
    command
}

/// A daemon that started: it is killed when dropped.
struct Hardened {
    child: Child,
    url: String,
    socket: PathBuf,
}

impl Drop for Hardened {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve --hardened` (with `dir/gatehouse.toml` if there is one) and reads where it
/// listens and where its socket is (no sleeping).
fn start(dir: &Path) -> Hardened {
    let mut command = serve_hardened(dir);
    if dir.join("gatehouse.toml").exists() {
        command.arg("--config").arg(dir.join("gatehouse.toml"));
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("gatehouse serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("a line");
    let url = next()
        .strip_prefix("gatehouse listening on ")
        .expect("listening line")
        .to_owned();
    let socket = next()
        .strip_prefix("check socket: ")
        .expect("socket line")
        .into();
    std::thread::spawn(move || for _ in lines {});
    Hardened { child, url, socket }
}

/// A test directory: policy.toml (0644) in a directory others may enter (0755), so another
/// user can reach the socket; the data directory is made by the daemon (0700).
fn test_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    chmod(&dir.path().join("policy.toml"), 0o644);
    chmod(dir.path(), 0o755);
    dir
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn serve_hardened_refuses_a_data_dir_other_users_can_write() {
    for mode in [0o770, 0o707] {
        let dir = test_dir();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        chmod(&data, mode);
        let output = serve_hardened(dir.path()).output().unwrap();
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains("refusing to start in hardened mode"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("writable by other users (mode {mode:04o})")),
            "{shown}"
        );
        assert_eq!(
            std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            mode,
            "the directory is not quietly changed"
        );
        assert!(!data.join("approver.token").exists(), "nothing was created");
        assert!(!dir.path().join("check.sock").exists(), "no socket");
    }
}

#[test]
fn serve_hardened_refuses_a_policy_file_other_users_can_write() {
    let dir = test_dir();
    chmod(&dir.path().join("policy.toml"), 0o666);
    let output = serve_hardened(dir.path()).output().unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("policy file") && shown.contains("(mode 0666)"),
        "{shown}"
    );
}

#[test]
fn another_users_agent_checks_over_the_socket_but_cannot_read_the_approver_token() {
    let dir = test_dir();
    if std::fs::metadata(dir.path()).unwrap().uid() != 0 {
        eprintln!("skipped: the cross-user test needs root (to run the agent as uid {NOBODY})");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    };
    let daemon = start(dir.path());
    let data = dir.path().join("data");
    let agent_bin = reachable_binary(dir.path());
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let as_nobody = |program: &Path| {
        let mut command = Command::new(&setpriv);
        command
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(program)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent");
        command
    };

    // The agent asks over the socket; it has no token, and needs none.
    let output = as_nobody(&agent_bin)
        .args([
            "check",
            "--tool",
            "Read",
            "--input",
            r#"{"file_path":"/etc/hostname"}"#,
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("GATEHOUSE_SOCKET", &daemon.socket)
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect(&shown);
    assert_eq!(answer["verdict"], "allow", "{shown}");
    let id = answer["action_id"].as_str().unwrap();
    let ledger = rusqlite::Connection::open(data.join("ledger.db")).unwrap();
    let (uid, pid): (i64, Option<i64>) = ledger
        .query_row(
            "SELECT peer_uid, peer_pid FROM actions WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(uid, i64::from(NOBODY), "recorded as the agent's user");
    assert!(pid.is_some_and(|pid| pid > 0), "its pid is recorded");

    // The same through `--url unix:PATH`; a rejection is an answer too (exit 3).
    let output = as_nobody(&agent_bin)
        .args([
            "check",
            "--tool",
            "Bash",
            "--input",
            r#"{"command":"rm -rf /"}"#,
        ])
        .arg("--url")
        .arg(format!("unix:{}", daemon.socket.display()))
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    let peers: i64 = ledger
        .query_row(
            "SELECT count(*) FROM actions WHERE peer_uid = ?1",
            [NOBODY],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(peers, 2, "both checks are recorded as uid {NOBODY}");

    // That user cannot read the approver token...
    let output = as_nobody(Path::new("cat"))
        .arg(data.join("approver.token"))
        .output()
        .unwrap();
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("Permission denied"), "{shown}");

    // ...so it cannot approve.
    let paused_id = paused_action(&daemon);
    let output = as_nobody(&agent_bin)
        .args(["approve", &paused_id, "--url", &daemon.url])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("approver.token") && shown.contains("Permission denied"),
        "{shown}"
    );
    let verdict: String = ledger
        .query_row(
            "SELECT a.verdict || coalesce(d.verdict, '') FROM actions a
             LEFT JOIN decisions d ON d.action_id = a.id WHERE a.id = ?1",
            [&paused_id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(verdict, "pending", "nothing decided the paused action");
}

#[test]
fn a_user_the_socket_mode_leaves_out_cannot_ask() {
    let dir = test_dir();
    if std::fs::metadata(dir.path()).unwrap().uid() != 0 {
        eprintln!("skipped: the cross-user test needs root (to run the agent as uid {NOBODY})");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    };
    // Only the daemon's user and group (root here) may connect.
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "[hardened]\nsocket_mode = \"0660\"\n",
    )
    .unwrap();
    chmod(&dir.path().join("gatehouse.toml"), 0o644);
    let daemon = start(dir.path());
    let agent_bin = reachable_binary(dir.path());
    let output = Command::new(setpriv)
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(&agent_bin)
        .args([
            "check",
            "--tool",
            "Read",
            "--input",
            r#"{"file_path":"/etc/hostname"}"#,
        ])
        .env_clear()
        .env("GATEHOUSE_SOCKET", &daemon.socket)
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "fails closed: {shown}");
    assert!(shown.contains("Permission denied"), "{shown}");
    let ledger = rusqlite::Connection::open(dir.path().join("data/ledger.db")).unwrap();
    let actions: i64 = ledger
        .query_row("SELECT count(*) FROM actions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(actions, 0, "nothing was asked");
}

/// A paused action, checked over the socket and answered `pending` at once.
fn paused_action(daemon: &Hardened) -> String {
    let request = gatehouse_client::protocol::CheckRequest {
        tool: "Bash".into(),
        input: serde_json::json!({"command": "git push"})
            .as_object()
            .unwrap()
            .clone(),
        session_id: None,
        agent: None,
        tool_use_id: None,
        cwd: None,
        context: None,
        wait_ms: Some(0),
        can_confine: false,
    };
    let client = gatehouse_client::Client::unix(&daemon.socket, "").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime.block_on(client.check_once(&request)).unwrap();
    assert_eq!(
        response.verdict,
        gatehouse_client::protocol::Verdict::Pending
    );
    response.action_id
}

/// The binary at a path the agent's user can reach (the build's may be under a private home):
/// a hard link beside the test directory's files, or a copy.
fn reachable_binary(dir: &Path) -> PathBuf {
    let path = dir.join("gatehouse");
    if std::fs::hard_link(BIN, &path).is_err() {
        std::fs::copy(BIN, &path).unwrap();
        chmod(&path, 0o755);
    }
    path
}

fn which(program: &str) -> Result<PathBuf, ()> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.exists())
        .ok_or(())
}
