//! `gatehouse approve ID --input JSON|@FILE` (edit then approve) and `gatehouse deny ID --note`
//! against a real `gatehouse serve`: the waiting `gatehouse check` gets the edited input (or the
//! note), an edit the rules reject is refused and decides nothing, and the ledger keeps the
//! original input, the edited one and the note.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{BIN, POLICY, ServeProcess, spawn_serve};

struct Served {
    process: ServeProcess,
    data_dir: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        let process = spawn_serve(dir.path(), "warn");
        Served {
            data_dir: dir.path().join("data"),
            process,
            dir,
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--url", &self.process.url])
            .env("GATEHOUSE_DATA_DIR", &self.data_dir);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().unwrap()
    }

    /// `gatehouse check` of a Bash command that pauses, waiting in the background.
    fn paused_check(&self, command: &str) -> (Waiting, String) {
        let input = serde_json::json!({ "command": command }).to_string();
        let child = Waiting(
            self.cli(&[
                "check",
                "--tool",
                "Bash",
                "--input",
                &input,
                "--timeout",
                "30",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        );
        let started = Instant::now();
        loop {
            let listed = self.run(&["pending", "--json"]);
            let pending: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
            let found = pending
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["input"]["command"] == command && a["verdict"] == "pending");
            if let Some(action) = found {
                return (child, action["action_id"].as_str().unwrap().to_owned());
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the paused check never showed up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ledger(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir.join("ledger.db")).unwrap()
    }
}

/// A background `gatehouse check`, killed and reaped if a test fails before it ends.
struct Waiting(Child);

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The waiting check's exit code and stdout.
fn finish(mut waiting: Waiting) -> (Option<i32>, String) {
    let child = &mut waiting.0;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the waiting check never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    (status.code(), out)
}

#[test]
fn approve_with_input_runs_the_edited_input_and_a_rejected_edit_decides_nothing() {
    let served = Served::start();
    let (waiting, id) = served.paused_check("git push --force origin main");

    // An edit the rules reject (`no-rm-rf`) is refused; the action stays pending.
    let refused = served.run(&["approve", &id, "--input", r#"{"command":"rm -rf build"}"#]);
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("edit_refused") && said.contains("no-rm-rf"),
        "{said}"
    );
    let still: serde_json::Value =
        serde_json::from_slice(&served.run(&["pending", "--json"]).stdout).unwrap();
    assert_eq!(still.as_array().unwrap().len(), 1, "{still}");

    // Not an object, not JSON: refused by the CLI before anything is sent.
    let not_object = served.run(&["approve", &id, "--input", r#"["git push"]"#]);
    assert!(!not_object.status.success());
    assert!(String::from_utf8_lossy(&not_object.stderr).contains("JSON object"));

    // The edit from a file: approved, and the waiting check gets the edited input, not the
    // original (exit 3: `gatehouse check` does not run anything itself).
    let file = served.dir.path().join("edited.json");
    std::fs::write(&file, r#"{"command":"git push origin main"}"#).unwrap();
    let approved = served.run(&[
        "approve",
        &id[..12],
        "--input",
        &format!("@{}", file.display()),
        "--note",
        "no force push",
        "--json",
    ]);
    assert!(approved.status.success(), "{approved:?}");
    let view: serde_json::Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert_eq!(view["verdict"], "allow");
    assert_eq!(
        view["decision"]["edit"]["edited_input"]["command"],
        "git push origin main"
    );
    let (code, out) = finish(waiting);
    assert_eq!(code, Some(3), "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer["updated_input"]["command"], "git push origin main",
        "{out}"
    );

    let (original, edited, by): (String, String, String) = served
        .ledger()
        .query_row(
            "SELECT original_input, edited_input, edited_by FROM edits WHERE action_id = ?1",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(original.contains("--force"), "{original}");
    assert!(edited.contains("git push origin main") && !edited.contains("--force"));
    assert!(by.contains("token"), "{by}");
}

#[test]
fn deny_with_a_note_reaches_the_waiting_check_and_the_ledger() {
    let served = Served::start();
    let (waiting, id) = served.paused_check("cargo publish");
    let denied = served.run(&["deny", &id, "--note", "run cargo publish --dry-run first"]);
    assert!(denied.status.success(), "{denied:?}");
    let (code, out) = finish(waiting);
    assert_eq!(code, Some(3), "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["verdict"], "reject", "{out}");
    assert_eq!(answer["note"], "run cargo publish --dry-run first", "{out}");
    let note: String = served
        .ledger()
        .query_row(
            "SELECT note FROM decisions WHERE action_id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(note, "run cargo publish --dry-run first");
}
