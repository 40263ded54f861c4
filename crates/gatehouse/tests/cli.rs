//! The `gatehouse` binary as a user runs it: `serve` as a real process, the CLI subcommands
//! against it, a signal to stop it, and start-up refusals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{BIN, POLICY, ServeProcess, spawn_serve};

/// A `gatehouse serve` process over its own temporary directory.
struct Served {
    process: ServeProcess,
    url: String,
    data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        let process = spawn_serve(dir.path(), "warn");
        Served {
            url: process.url.clone(),
            data_dir: dir.path().join("data"),
            process,
            _dir: dir,
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--url", &self.url])
            .env("GATEHOUSE_DATA_DIR", &self.data_dir);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().unwrap()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.process.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        wait_with_limit(&mut self.process.child, Duration::from_secs(15))
    }
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_paused_check_from_the_cli_is_approved_from_the_cli() {
    let mut served = Served::start();
    let allowed = served.run(&[
        "check",
        "--tool",
        "Read",
        "--input",
        r#"{"file_path":"README.md"}"#,
    ]);
    assert!(allowed.status.success(), "{allowed:?}");
    assert!(stdout(&allowed).contains(r#""verdict": "allow""#));

    let mut waiting = served
        .cli(&[
            "check",
            "--tool",
            "Bash",
            "--input",
            r#"{"command":"git push\u001b[2J"}"#,
            "--timeout",
            "30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the paused action is listed, then approve it by id.
    let started = Instant::now();
    let id = loop {
        let pending = stdout(&served.run(&["pending"]));
        if let Some(id) = pending.split_whitespace().find(|w| w.starts_with("act_")) {
            assert!(
                !pending.contains('\u{1b}'),
                "terminal escapes in inputs are escaped: {pending:?}"
            );
            assert!(pending.contains("\\u{1b}[2J"), "{pending}");
            break id.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the paused check never showed up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let approved = served.run(&["approve", &id, "--note", "ok from the cli"]);
    assert!(approved.status.success(), "{approved:?}");
    // It shows the action it approves (escaped), and approves that one by its hash.
    let shown = String::from_utf8_lossy(&approved.stderr);
    assert!(
        shown.contains("approving: ") && shown.contains(&id) && !shown.contains('\u{1b}'),
        "{shown}"
    );
    let bound: bool = rusqlite::Connection::open(served.data_dir.join("ledger.db"))
        .unwrap()
        .query_row(
            "SELECT d.action_hash IS NOT NULL AND d.action_hash = a.action_hash
             FROM decisions d JOIN actions a ON a.id = d.action_id WHERE a.id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    assert!(bound, "the decision carries the action's own hash");
    let status = wait_with_limit(&mut waiting, Duration::from_secs(10));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        status.success(),
        "the waiting check exits 0 once approved: {out}"
    );
    assert!(out.contains(r#""decided_by": "human""#), "{out}");

    let again = served.run(&["deny", &id]);
    assert!(!again.status.success(), "a second decision is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already_decided"),
        "{again:?}"
    );

    let ledger = stdout(&served.run(&["ledger", "--limit", "5"]));
    assert!(ledger.contains(&id) && ledger.contains("ALLOW"), "{ledger}");
    let login = stdout(&served.run(&["dashboard"]));
    assert!(
        login.starts_with(&format!("{}/login?code=", served.url)),
        "{login}"
    );

    let exit = served.terminate();
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit:?}");
}

#[test]
fn a_rejected_check_exits_3_and_an_undecided_one_fails_closed() {
    let served = Served::start();
    let rejected = served.run(&[
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"rm -rf /"}"#,
    ]);
    assert_eq!(rejected.status.code(), Some(3), "{rejected:?}");
    assert!(stdout(&rejected).contains(r#""rule_id": "no-rm-rf""#));
    // Paused with no one to decide: the CLI gives up at its deadline and fails closed.
    let undecided = served.run(&[
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"ls"}"#,
        "--timeout",
        "1",
    ]);
    assert_eq!(undecided.status.code(), Some(1), "{undecided:?}");
    assert!(
        String::from_utf8_lossy(&undecided.stderr)
            .to_lowercase()
            .contains("time"),
        "{undecided:?}"
    );
}

fn serve_refuses(args: &[&str], dir: &Path) -> String {
    let output = Command::new(BIN)
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("GATEHOUSE_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success(), "serve should refuse {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_refuses_a_remote_address_without_allow_remote_and_a_broken_policy() {
    let dir = tempfile::tempdir().unwrap();
    let err = serve_refuses(&["--listen", "0.0.0.0:0"], dir.path());
    assert!(err.contains("--allow-remote"), "{err}");

    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "default = \"maybe\"\n[[rules]]\nid = \"x\"\neffect = \"allow\"\ntool = \"[\"\n",
    )
    .unwrap();
    let err = serve_refuses(
        &[
            "--listen",
            "127.0.0.1:0",
            "--policy",
            policy.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        err.contains("line 1") && err.contains("line 5"),
        "every error with its line: {err}"
    );
}

#[test]
fn config_print_default_is_a_valid_config_file() {
    let output = Command::new(BIN)
        .args(["config", "print-default"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("durability = \"crash-safe\""), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, &text).unwrap();
    let config = gatehouse_daemon::Config::load(Some(&path), std::iter::empty()).unwrap();
    // The same settings; `load` also remembers the file, which the daemon protects.
    assert_eq!(
        config,
        gatehouse_daemon::Config {
            config_file: Some(path.clone()),
            ..gatehouse_daemon::Config::default()
        }
    );
}

#[test]
fn policy_check_and_test_guard_a_policy_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let ok = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).contains("2 rules"), "{}", stdout(&ok));

    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "default = \"maybe\"\n[[rules]]\nid = \"x\"\neffect = \"sometimes\"\n",
    )
    .unwrap();
    let bad = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("line 1") && err.contains("line 4"),
        "every error with its line: {err}"
    );

    let cases = dir.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        concat!(
            "# comments and blank lines are skipped\n\n",
            r#"{"name":"reads","tool":"Read","input":{"file_path":"x"},"expect":"allow"}"#,
            "\n",
            r#"{"name":"wipe","tool":"Bash","input":{"command":"rm -rf /"},"expect":"reject"}"#,
            "\n"
        ),
    )
    .unwrap();
    let pass = Command::new(BIN)
        .args(["policy", "test"])
        .arg(&policy)
        .arg(&cases)
        .output()
        .unwrap();
    assert!(pass.status.success(), "{}", stdout(&pass));
    assert!(stdout(&pass).contains("2 passed, 0 failed"));

    std::fs::write(
        &cases,
        r#"{"name":"wipe","tool":"Bash","input":{"command":"rm -rf /"},"expect":"allow"}"#,
    )
    .unwrap();
    let fail = Command::new(BIN)
        .args(["policy", "test"])
        .arg(&policy)
        .arg(&cases)
        .output()
        .unwrap();
    assert!(!fail.status.success());
    assert!(
        stdout(&fail).contains("FAIL wipe: expected allow, got reject (no-rm-rf"),
        "{}",
        stdout(&fail)
    );
}

#[test]
fn policy_import_claude_turns_a_settings_file_into_a_policy_that_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    std::fs::create_dir_all(project.join(".claude")).unwrap();
    let settings = project.join(".claude/settings.json");
    std::fs::write(
        &settings,
        r#"{"permissions": {
            "allow": ["Bash(docker ps:*)", "mcp__github__get_issue"],
            "ask": ["Bash(git push:*)"],
            "deny": ["Bash(curl:*)", "Edit(/.github/workflows/**)", "Task(Explore)"]
        }}"#,
    )
    .unwrap();

    // To stdout: the policy, starting from builtin:developer; warnings on stderr.
    let printed = Command::new(BIN)
        .args(["policy", "import-claude"])
        .arg(&settings)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    assert!(stdout(&printed).contains("include = [\"builtin:developer\"]"));
    let warnings = String::from_utf8_lossy(&printed.stderr);
    assert!(
        warnings.contains("warning: not imported: deny Task(Explore)"),
        "{warnings}"
    );

    let policy = dir.path().join("imported.toml");
    let written = Command::new(BIN)
        .args(["policy", "import-claude"])
        .arg(&settings)
        .arg("--output")
        .arg(&policy)
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), stdout(&printed));
    let check = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let workflow = project.join(".github/workflows/ci.yml");
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        [
            json_line(
                "docker ps",
                "Bash",
                serde_json::json!({"command": "docker ps -a"}),
                "allow",
            ),
            json_line(
                "issue",
                "mcp__github__get_issue",
                serde_json::json!({"number": 1}),
                "allow",
            ),
            json_line(
                "push",
                "Bash",
                serde_json::json!({"command": "git push"}),
                "pause",
            ),
            json_line(
                "curl",
                "Bash",
                serde_json::json!({"command": "sudo curl -s x.example"}),
                "reject",
            ),
            json_line(
                "workflow",
                "Edit",
                serde_json::json!({"file_path": workflow}),
                "reject",
            ),
        ]
        .join("\n"),
    )
    .unwrap();
    let test = Command::new(BIN)
        .args(["policy", "test"])
        .arg(&policy)
        .arg(&cases)
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(test.status.success(), "{}", stdout(&test));
    assert!(
        stdout(&test).contains("5 passed, 0 failed"),
        "{}",
        stdout(&test)
    );
}

fn json_line(name: &str, tool: &str, input: serde_json::Value, expect: &str) -> String {
    serde_json::json!({"name": name, "tool": tool, "input": input, "expect": expect}).to_string()
}

#[test]
fn classifier_eval_prints_held_out_figures() {
    let output = Command::new(BIN)
        .args(["classifier", "eval"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("model builtin-"), "{text}");
    let auc: f64 = text
        .lines()
        .find(|l| l.starts_with("all"))
        .and_then(|l| l.split("AUC ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no overall AUC in {text}"));
    assert!(auc > 0.95, "held-out AUC {auc}");
}

#[test]
fn ledger_follow_prints_actions_as_they_are_paused_and_decided() {
    let served = Served::start();
    let mut follow = served
        .cli(&["ledger", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line_with = |needle: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    // The follower may connect after the first check is sent; keep sending until it sees one.
    // Each check waits out its 1 s timeout, by which time its events have been printed.
    let started = Instant::now();
    let paused_line = loop {
        let output = served.run(&[
            "check",
            "--tool",
            "Bash",
            "--input",
            r#"{"command":"git push"}"#,
            "--timeout",
            "1",
        ]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "nobody decides in time: {output:?}"
        );
        if let Some(line) = lines.try_iter().find(|line| line.starts_with("paused")) {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the follower never printed a paused action"
        );
    };
    let id = paused_line
        .split_whitespace()
        .find(|w| w.starts_with("act_"))
        .unwrap()
        .to_owned();
    assert!(served.run(&["deny", &id]).status.success());
    let decided = next_line_with(&format!("decided  {id}"));
    assert!(decided.contains("REJECT"), "{decided}");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn review_lists_a_disagreement_and_label_records_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    // Every action scores 0.9: an allowed Read is a disagreement.
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "[classifier]\nkind = \"fixed\"\nscore = 0.9\nlabel = \"malicious\"\n",
    )
    .unwrap();
    let process = spawn_serve(dir.path(), "warn");
    let served = Served {
        url: process.url.clone(),
        data_dir: dir.path().join("data"),
        process,
        _dir: dir,
    };
    let allowed = served.run(&[
        "check",
        "--tool",
        "Read",
        "--input",
        r#"{"file_path":"notes.txt"}"#,
    ]);
    assert!(allowed.status.success(), "{allowed:?}");
    // The score is recorded after the verdict: wait until the queue lists the action.
    let started = Instant::now();
    let (id, listed) = loop {
        let listed = stdout(&served.run(&["review"]));
        if let Some(id) = listed.split_whitespace().find(|w| w.starts_with("act_")) {
            break (id.to_owned(), listed);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the disagreement never reached the queue: {listed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(listed.starts_with("1 unlabelled, 0 labelled"), "{listed}");
    assert!(
        listed.contains("flag >= 0.50, disagreement >= 0.80"),
        "{listed}"
    );
    assert!(listed.contains("disagreement     -"), "{listed}");

    let labelled = served.run(&[
        "review",
        "label",
        &id,
        "malicious",
        "--note",
        "reads secrets",
    ]);
    assert!(labelled.status.success(), "{labelled:?}");
    assert!(stdout(&labelled).contains(&format!("{id}  labelled malicious")));
    let bad = served.run(&["review", "label", &id, "suspicious"]);
    assert!(!bad.status.success(), "only malicious or benign: {bad:?}");

    let listed = stdout(&served.run(&["review", "--status", "labelled"]));
    assert!(listed.starts_with("0 unlabelled, 1 labelled"), "{listed}");
    assert!(
        listed.contains("malicious") && listed.contains(&id),
        "{listed}"
    );
    let (label, reviewer, note): (String, String, String) =
        rusqlite::Connection::open(served.data_dir.join("ledger.db"))
            .unwrap()
            .query_row(
                "SELECT label, reviewer, note FROM labels WHERE action_id = ?1",
                [&id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
    assert_eq!(
        (label.as_str(), reviewer.as_str(), note.as_str()),
        ("malicious", "owner", "reads secrets")
    );
}

#[test]
fn policy_explain_shows_rules_commands_and_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        concat!(
            "[[rules]]\nid = \"no-force-push\"\neffect = \"reject\"\n",
            "command = { program = \"git\", args_prefix = [\"push\"], has_flag = [\"--force\"] }\n",
            "[[rules]]\nid = \"git-ok\"\neffect = \"allow\"\n",
            "command = { program = \"git\", args_prefix = [\"{status,push}\"] }\n",
        ),
    )
    .unwrap();
    let action =
        r#"{"tool":"Bash","input":{"command":"sudo git push -f origin main"},"cwd":"/work/app"}"#;
    let text = Command::new(BIN)
        .args(["policy", "explain"])
        .arg(&policy)
        .arg(action)
        .output()
        .unwrap();
    assert!(text.status.success(), "{text:?}");
    let out = stdout(&text);
    for needle in [
        "1. sudo",
        "2. git push --force origin main",
        "[command 2] no-force-push (reject): MATCHED",
        // The positive model: `git push` reaches the network, so the allow rule does not apply
        // to it, and explain says which part stopped it.
        "[command 2] git-ok (allow): no, not fully understood: `git push` reaches the network",
        "verdict: reject by no-force-push",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }

    // `-` reads the action from stdin; --json is machine-readable and names the first failure.
    let mut child = Command::new(BIN)
        .args(["policy", "explain", "--json"])
        .arg(&policy)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        br#"{"tool":"Bash","input":{"command":"git status"}}"#,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["verdict"]["effect"], "allow");
    assert_eq!(json["verdict"]["rule_id"], "git-ok");
    assert_eq!(json["rules"][0]["rule_id"], "no-force-push");
    assert_eq!(
        json["rules"][0]["failed"],
        "command.args_prefix does not hold"
    );
    assert_eq!(json["command_lines"][0]["commands"][0]["program"], "git");

    // A builtin name works as FILE; a malformed action is a clear error.
    let builtin = Command::new(BIN)
        .args(["policy", "explain", "builtin:observe"])
        .arg(r#"{"tool":"Bash","input":{"command":"rm -rf ~"}}"#)
        .output()
        .unwrap();
    assert!(
        stdout(&builtin).contains("(observe mode; would reject)"),
        "{}",
        stdout(&builtin)
    );
    let bad = Command::new(BIN)
        .args(["policy", "explain"])
        .arg(&policy)
        .arg(r#"{"tool":"Bash"}"#)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the action must be JSON"));
}

/// Issue 11: `ledger show` prints the confinement the ledger recorded for an action: here a
/// client that cannot confine (the CLI's `check`) got the confined rule's fallback (pause).
#[test]
fn ledger_show_prints_the_confinement_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        concat!(
            "default = \"reject\"\n[[rules]]\nid = \"cargo-confined\"\neffect = \"allow\"\n",
            "command = { program = \"cargo\", args_within = [\"$CWD\"] }\nconfine = \"build\"\n",
        ),
    )
    .unwrap();
    let process = spawn_serve(dir.path(), "warn");
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .args(["--url", &process.url])
            .env("GATEHOUSE_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap()
    };
    // Paused (the fallback) and not decided within a second: the CLI fails closed.
    let checked = cli(&[
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"cargo test"}"#,
        "--cwd",
        "/tmp",
        "--timeout",
        "1",
    ]);
    assert!(!checked.status.success(), "{checked:?}");
    let listed = cli(&["ledger", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed[0]["action_id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["confinement"]["applied"], "fallback", "{listed}");
    let shown = cli(&["ledger", "show", &id]);
    assert!(shown.status.success(), "{shown:?}");
    let out = stdout(&shown);
    assert!(
        out.contains("sandbox  required profile build, profile sha256 ")
            && out.contains("the rule's fallback applied: pause"),
        "{out}"
    );
    assert!(out.contains("writes only {project}"), "{out}");
    let json = cli(&["ledger", "show", "--json", &id]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["confinement"]["profile"], "build", "{json}");
}

/// Issue 11: for a command allowed confined, `policy explain` names the sandbox profile and
/// prints what it allows — the same text as `gatehouse sandbox explain PROFILE`.
#[test]
fn policy_explain_shows_the_sandbox_profile_of_a_confined_allow() {
    let builtin = Command::new(BIN)
        .args(["policy", "explain", "builtin:developer"])
        .arg(r#"{"tool":"Bash","input":{"command":"cargo test"},"cwd":"/work/app"}"#)
        .output()
        .unwrap();
    assert!(builtin.status.success(), "{builtin:?}");
    let out = stdout(&builtin);
    assert!(out.contains("verdict: allow"), "{out}");
    let profile = out
        .lines()
        .find_map(|l| l.strip_prefix("confined: runs only inside sandbox profile "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no confinement in:\n{out}"))
        .to_owned();
    let sandbox = Command::new(BIN)
        .args(["sandbox", "explain", &profile])
        .output()
        .unwrap();
    assert!(sandbox.status.success(), "{sandbox:?}");
    let summary = stdout(&sandbox);
    assert!(
        summary.contains("  allows:  writes only {project}"),
        "{summary}"
    );
    assert!(
        out.contains(&summary),
        "policy explain:\n{out}\nsandbox explain:\n{summary}"
    );

    let json = Command::new(BIN)
        .args(["policy", "explain", "--json", "builtin:developer"])
        .arg(r#"{"tool":"Bash","input":{"command":"cargo test"},"cwd":"/work/app"}"#)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["verdict"]["confine"]["profile"], profile.as_str());
    assert!(
        json["verdict"]["confine"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("writes only")),
        "{json}"
    );
    let unknown = Command::new(BIN)
        .args(["sandbox", "explain", "no-such-profile"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn a_second_daemon_on_the_same_data_directory_refuses_to_start_and_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), support::POLICY).unwrap();
    let first = support::spawn_serve(dir.path(), "off");
    let err = serve_refuses(&["--listen", "127.0.0.1:0"], dir.path());
    assert!(
        err.contains("in use by another gatehouse daemon")
            && err.contains(&format!("pid {}", first.child.id())),
        "the refusal names the daemon holding the directory: {err}"
    );
    // The first daemon is untouched: it still records and answers checks.
    let token = std::fs::read_to_string(dir.path().join("data/agent.token")).unwrap();
    let output = Command::new(BIN)
        .args(["check", "--tool", "Read", "--input", r#"{"file_path":"x"}"#])
        .env("GATEHOUSE_URL", &first.url)
        .env("GATEHOUSE_TOKEN", token.trim())
        .env("GATEHOUSE_LOG", "off")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("allow"), "{}", stdout(&output));
}

#[test]
fn ledger_verify_on_a_directory_without_a_ledger_says_it_cannot_check() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["ledger", "verify", "--data-dir"])
        .arg(dir.path().join("nowhere"))
        .env("GATEHOUSE_LOG", "off")
        .output()
        .unwrap();
    // 1 ("cannot check"), not the tampered code: nothing was ever recorded there.
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("cannot check") && err.contains("no ledger"),
        "{err}"
    );
}

#[test]
fn policy_print_and_check_accept_every_builtin_name() {
    for name in [
        "developer",
        "strict",
        "observe",
        "default",
        "builtin:observe",
    ] {
        let printed = Command::new(BIN)
            .args(["policy", "print", name])
            .output()
            .unwrap();
        assert!(printed.status.success(), "policy print {name}");
        assert!(stdout(&printed).contains("[[rules]]") || stdout(&printed).contains("include"));
    }
    let unknown = Command::new(BIN)
        .args(["policy", "print", "lenient"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("builtin:developer"));
    for name in ["builtin:developer", "builtin:strict", "builtin:observe"] {
        let checked = Command::new(BIN)
            .args(["policy", "check", name])
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "policy check {name}: {}",
            stdout(&checked)
        );
    }
}

/// `policy replay` over a ledger written by a real daemon: each recorded action is evaluated
/// under the candidate and every change is counted and shown (hand-checked below).
#[test]
fn policy_replay_reports_what_a_candidate_would_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), support::POLICY).unwrap();
    let daemon = support::spawn_serve(dir.path(), "off");
    let token = std::fs::read_to_string(dir.path().join("data/agent.token")).unwrap();
    let check = |tool: &str, input: &str| {
        Command::new(BIN)
            .args(["check", "--tool", tool, "--input", input, "--timeout", "1"])
            .env("GATEHOUSE_URL", &daemon.url)
            .env("GATEHOUSE_TOKEN", token.trim())
            .env("GATEHOUSE_LOG", "off")
            .output()
            .unwrap()
    };
    // Recorded: allow (Read), reject (rm -rf), pause (make), pause (git push).
    assert!(check("Read", r#"{"file_path":"a.txt"}"#).status.success());
    assert_eq!(
        check("Bash", r#"{"command":"rm -rf build"}"#).status.code(),
        Some(3)
    );
    assert!(!check("Bash", r#"{"command":"make"}"#).status.success());
    assert!(!check("Bash", r#"{"command":"git push"}"#).status.success());
    drop(daemon);

    // The candidate allows make, rejects git push, pauses Read, and still rejects rm -rf.
    let candidate = dir.path().join("candidate.toml");
    std::fs::write(
        &candidate,
        r#"
default = "pause"
[[rules]]
id = "allow-make"
effect = "allow"
command = { program = "make" }

[[rules]]
id = "no-push"
effect = "reject"
command = { program = "git", args_prefix = ["push"] }

[[rules]]
id = "no-rm-rf"
effect = "reject"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "rm -rf"
"#,
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["policy", "replay"])
        .arg(&candidate)
        .args(["--json", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["replayed"], 4, "{report}");
    assert_eq!(report["matrix"]["reject"]["reject"], 1, "{report}");
    assert_eq!(report["newly_allowed"]["count"], 1, "{report}");
    assert_eq!(report["newly_allowed"]["examples"][0]["summary"], "make");
    assert_eq!(
        report["newly_allowed"]["examples"][0]["now_rule"],
        "allow-make"
    );
    assert_eq!(report["newly_rejected"]["count"], 1, "{report}");
    assert_eq!(
        report["newly_rejected"]["examples"][0]["summary"],
        "git push"
    );
    assert_eq!(report["newly_paused"]["count"], 1, "{report}");
    assert_eq!(report["newly_paused"]["examples"][0]["was"], "allow");

    // The table says the same for a person, newly allowed first.
    let table = Command::new(BIN)
        .args(["policy", "replay"])
        .arg(&candidate)
        .args(["--since", "1d", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let text = stdout(&table);
    assert!(
        text.contains("replayed 4 recorded action(s) from the last 1 d"),
        "{text}"
    );
    let allowed_at = text.find("NEWLY ALLOWED").expect(&text);
    assert!(
        allowed_at < text.find("newly rejected").expect(&text),
        "{text}"
    );
}

#[test]
fn a_daemon_that_is_not_running_gets_a_hint_not_just_a_socket_error() {
    // Port 1 on loopback: nothing listens there.
    let output = Command::new(BIN)
        .args(["pending", "--url", "http://127.0.0.1:1"])
        .env("GATEHOUSE_APPROVER_TOKEN", "t")
        .env("GATEHOUSE_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("unreachable"), "{err}");
    assert!(
        err.contains("hint: no gatehouse daemon answered there: start one with `gatehouse serve`"),
        "{err}"
    );
}

#[test]
fn an_unknown_gatehouse_variable_is_warned_about_and_config_env_lists_the_known_ones() {
    let output = Command::new(BIN)
        .args(["config", "env"])
        .env("GATEHOUSE_DATADIR", "/tmp/x")
        .output()
        .unwrap();
    assert!(output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("warning: GATEHOUSE_DATADIR is not a variable gatehouse reads"),
        "{err}"
    );
    let listed = stdout(&output);
    for name in [
        "GATEHOUSE_URL",
        "GATEHOUSE_DATA_DIR",
        "GATEHOUSE_APPROVALS_PRESENCE",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    assert!(!listed.contains("GATEHOUSE_DATADIR"));
}
