//! Shared by the binary's integration tests: a real `gatehouse serve` child process over a test
//! directory (`policy.toml`, optional `gatehouse.toml`, `data/`), killed when dropped.
#![allow(dead_code, reason = "each test binary uses a different part of it")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Reads allowed, `rm -rf` rejected, everything else paused.
pub const POLICY: &str = r#"
default = "pause"
[[rules]]
id = "allow-read"
effect = "allow"
tool = "Read"

[[rules]]
id = "no-rm-rf"
effect = "reject"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "rm -rf"
"#;

pub struct ServeProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, as the daemon printed it.
    pub url: String,
}

impl ServeProcess {
    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

/// Starts `gatehouse serve` on an ephemeral port over `dir` and waits for the line that says
/// where it listens (no sleeping). Uses `dir/gatehouse.toml` as its config if it exists.
pub fn spawn_serve(dir: &Path, log: &str) -> ServeProcess {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--policy"])
        .arg(dir.join("policy.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"));
    if dir.join("gatehouse.toml").exists() {
        command.arg("--config").arg(dir.join("gatehouse.toml"));
    }
    let mut child = command
        .env("GATEHOUSE_LOG", log)
        // The CLI tests decide with the approver token alone (person presence has its own
        // tests in gatehouse-daemon and tests/e2e).
        .env("GATEHOUSE_APPROVALS_PRESENCE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("gatehouse serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines
        .next()
        .expect("serve prints where it listens")
        .expect("a line");
    let url = first
        .strip_prefix("gatehouse listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    // Keep draining stdout so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServeProcess { child, url }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // A failed test must not leave a daemon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
