//! Team mode from the CLI against a real `gatehouse serve`: `user add|list|remove|whoami`, a
//! person's approval under their own token (a reviewer's refused), `policy push|history|
//! rollback`, and `ledger export` verified offline by `ledger verify --export` (and a tampered
//! export refused).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{BIN, POLICY, spawn_serve};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Team {
    process: support::ServeProcess,
    data_dir: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Team {
    fn cli(&self, token: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--url", &self.process.url])
            .env("GATEHOUSE_DATA_DIR", &self.data_dir)
            .env_remove("GATEHOUSE_APPROVER_TOKEN");
        if let Some(token) = token {
            command.env("GATEHOUSE_APPROVER_TOKEN", token);
        }
        command
    }

    fn run(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.cli(token, args).output().unwrap()
    }

    fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let output = self.run(token, args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        text(&output.stdout)
    }
}

#[test]
fn people_policy_versions_and_a_verified_export_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let process = spawn_serve(dir.path(), "warn");
    let team = Team {
        process,
        data_dir: dir.path().join("data"),
        dir,
    };

    // People: the owner adds them; each gets a token, shown once.
    let alice = team.ok(None, &["user", "add", "alice"]).trim().to_owned();
    let rita = team
        .ok(None, &["user", "add", "rita", "--role", "reviewer"])
        .trim()
        .to_owned();
    assert_eq!(alice.len(), 64, "{alice}");
    let list = team.ok(None, &["user", "list"]);
    assert!(
        list.contains("alice") && list.contains("reviewer"),
        "{list}"
    );
    assert!(!list.contains(&alice), "tokens are never listed");
    assert_eq!(
        team.ok(Some(&alice), &["user", "whoami"]).trim(),
        "alice (approver)"
    );
    let refused = team.run(Some(&alice), &["user", "add", "mallory"]);
    assert!(!refused.status.success(), "only an admin adds users");

    // A paused check, refused to the reviewer, approved by alice under her name.
    let mut waiting = team
        .cli(
            None,
            &[
                "check",
                "--tool",
                "Bash",
                "--input",
                r#"{"command":"git push"}"#,
                "--timeout",
                "30",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let id = loop {
        let pending = team.ok(None, &["pending"]);
        if let Some(id) = pending.split_whitespace().find(|w| w.starts_with("act_")) {
            break id.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never paused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let by_reviewer = team.run(Some(&rita), &["approve", &id]);
    assert!(!by_reviewer.status.success(), "{by_reviewer:?}");
    assert!(
        text(&by_reviewer.stderr).contains("forbidden_role"),
        "{by_reviewer:?}"
    );
    team.ok(Some(&alice), &["approve", &id, "--json"]);
    assert!(waiting.wait().unwrap().success(), "the agent is released");
    let history = team.ok(None, &["ledger", "--json", "--limit", "5"]);
    assert!(history.contains(r#""approver": "alice""#), "{history}");

    // Policy versions: push, history with who and the diff, rollback.
    let v2 = team.dir.path().join("v2.toml");
    std::fs::write(
        &v2,
        format!("{POLICY}\n[[rules]]\nid = \"allow-glob\"\neffect = \"allow\"\ntool = \"Glob\"\n"),
    )
    .unwrap();
    let pushed = team.ok(
        None,
        &[
            "policy",
            "push",
            &team.dir.path().join("policy.toml").to_string_lossy(),
        ],
    );
    assert!(
        pushed.contains("policy version 1 pushed by owner"),
        "{pushed}"
    );
    let pushed = team.ok(None, &["policy", "push", &v2.to_string_lossy()]);
    assert!(pushed.contains("policy version 2"), "{pushed}");
    let bad = team.dir.path().join("bad.toml");
    std::fs::write(&bad, "default = \"maybe\"\n").unwrap();
    let refused = team.run(None, &["policy", "push", &bad.to_string_lossy()]);
    assert!(!refused.status.success(), "{refused:?}");
    let history = team.ok(Some(&alice), &["policy", "history"]);
    assert!(
        history.contains("version 2 (in force): pushed by owner"),
        "{history}"
    );
    assert!(history.contains("+id = \"allow-glob\""), "{history}");
    let rolled = team.ok(None, &["policy", "rollback", "1"]);
    assert!(
        rolled.contains("version 1's policy is in force again as version 3"),
        "{rolled}"
    );

    // Removing a person ends their token.
    team.ok(None, &["user", "remove", "rita"]);
    assert!(!team.run(Some(&rita), &["user", "whoami"]).status.success());

    // Stop the daemon (it signs a checkpoint on the way out), then export and verify offline.
    let pid = team.process.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let Team {
        mut process,
        data_dir,
        dir,
    } = team;
    assert!(process.child.wait().unwrap().success());
    let export = dir.path().join("export.jsonl");
    let exporter = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("GATEHOUSE_DATA_DIR", &data_dir)
            .output()
            .unwrap()
    };
    let written = exporter(&[
        "ledger",
        "export",
        "--format",
        "jsonl",
        "-o",
        &export.to_string_lossy(),
    ]);
    assert!(written.status.success(), "{written:?}");
    let verified = exporter(&["ledger", "verify", "--export", &export.to_string_lossy()]);
    assert!(verified.status.success(), "{verified:?}");
    let report = text(&verified.stdout);
    assert!(
        report.contains("export intact: 1 action(s)") && report.contains("signed through entry"),
        "{report}"
    );
    let csv = exporter(&["ledger", "export", "--format", "csv", "--verdict", "allow"]);
    let csv = text(&csv.stdout);
    assert!(
        csv.starts_with("action_id,created_at_ms,tool,input"),
        "{csv}"
    );
    assert!(csv.contains(&id) && csv.contains(",alice,"), "{csv}");
    let none = exporter(&["ledger", "export", "--format", "csv", "--tool", "Nothing"]);
    assert_eq!(text(&none.stdout).lines().count(), 1, "only the header");

    // A tampered export is refused: an edited action, an edited proof entry, a cut tail.
    let original = std::fs::read_to_string(&export).unwrap();
    for (what, tampered) in [
        ("edited input", original.replacen("git push", "git pull", 1)),
        (
            "edited approver",
            original.replacen(r#"{"t":"alice"}"#, r#"{"t":"mallory"}"#, 1),
        ),
        (
            "cut tail",
            original.lines().take(3).collect::<Vec<_>>().join("\n"),
        ),
    ] {
        assert_ne!(tampered, original, "{what}: the tampering changed nothing");
        std::fs::write(&export, tampered).unwrap();
        let verified = exporter(&["ledger", "verify", "--export", &export.to_string_lossy()]);
        assert_eq!(verified.status.code(), Some(4), "{what}: {verified:?}");
        assert!(
            text(&verified.stdout).contains("EXPORT VERIFICATION FAILED"),
            "{what}"
        );
    }
}
