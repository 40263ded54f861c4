//! The CLI's output for people and for scripts, against a real `gatehouse serve`: `--json` on the
//! listing and decision commands, tables with timestamps and ages and no escape codes in a pipe,
//! `check` saying what it waits for, short id prefixes, and `ledger --follow` showing every
//! verdict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{BIN, POLICY, ServeProcess, spawn_serve};

struct Served {
    process: ServeProcess,
    url: String,
    data_dir: std::path::PathBuf,
    dir: tempfile::TempDir,
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
            dir,
        }
    }

    /// The CLI with a temporary HOME and this daemon's URL and data directory.
    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--url", &self.url])
            .env("GATEHOUSE_DATA_DIR", &self.data_dir)
            .env("HOME", self.dir.path())
            .env_remove("NO_COLOR");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().unwrap()
    }

    /// A `check` left waiting in the background for a person's decision on `command`.
    fn paused_check(&self, command: &str) -> Child {
        let input = serde_json::json!({ "command": command }).to_string();
        self.cli(&[
            "check",
            "--tool",
            "Bash",
            "--input",
            &input,
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    }

    /// The pending actions, as `pending --json` prints them, once there are `count` of them.
    fn wait_pending(&self, count: usize) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            let output = self.run(&["pending", "--json"]);
            assert!(output.status.success(), "{output:?}");
            let list: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
            if list.len() >= count {
                return list;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{count} paused action(s) never showed up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn id_of(action: &serde_json::Value) -> String {
    action["action_id"].as_str().unwrap().to_owned()
}

/// Lines of a child's pipe, as they come.
fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn next_line_with(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn listings_are_tables_for_people_and_json_for_scripts() {
    let served = Served::start();
    let mut waiting = served.paused_check("git push \u{1b}[2J");
    let pending = served.wait_pending(1);
    let id = id_of(&pending[0]);
    assert_eq!(pending[0]["verdict"], "pending");
    assert_eq!(pending[0]["input"]["command"], "git push \u{1b}[2J");

    // The table, into a pipe even with colour not switched off: a header, the id, a UTC
    // timestamp, an age, the escaped command, and not one escape code.
    let table = served.run(&["pending"]);
    let table = text(&table.stdout);
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("AGE"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).expect(&table);
    assert!(row.contains(" s ago") || row.contains(" min ago"), "{row}");
    assert!(row.contains("Z "), "a UTC timestamp: {row}");
    assert!(
        row.contains("PENDING") && row.contains("git push \\u{1b}[2J"),
        "{row}"
    );

    let ledger: Vec<serde_json::Value> =
        serde_json::from_slice(&served.run(&["ledger", "--json"]).stdout).unwrap();
    assert!(ledger.iter().any(|a| id_of(a) == id), "{ledger:?}");
    let review: serde_json::Value =
        serde_json::from_slice(&served.run(&["review", "--json", "--flagged"]).stdout).unwrap();
    assert!(review["items"].is_array(), "{review}");
    assert!(review["classifier"]["model"].is_string(), "{review}");

    // Deny by a short unique prefix, as JSON.
    let prefix = &id[..id.len() - 3];
    let denied = served.run(&["deny", prefix, "--json"]);
    assert!(denied.status.success(), "{denied:?}");
    let denied: serde_json::Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(id_of(&denied), id);
    assert_eq!(denied["verdict"], "reject");
    assert_eq!(denied["decided_by"], "human");
    assert_eq!(waiting.wait().unwrap().code(), Some(3), "the check is told");
}

#[test]
fn check_says_what_it_waits_for_and_that_it_is_still_pending_at_its_timeout() {
    let served = Served::start();
    let output = served.run(&[
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"git push"}"#,
        "--timeout",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1), "fails closed: {output:?}");
    let stderr = text(&output.stderr);
    let id = stderr
        .split(|c: char| c.is_whitespace() || c == '`')
        .find(|w| w.starts_with("act_"))
        .expect(&stderr)
        .to_owned();
    assert!(
        stderr.contains(&format!("`gatehouse approve {id}`")),
        "{stderr}"
    );
    assert!(stderr.contains("dashboard"), "{stderr}");
    assert!(stderr.contains("git push"), "{stderr}");
    assert!(
        stderr.contains(&format!("action {id} is still pending")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no verdict printed: {output:?}");

    // An action the rules decide at once says nothing on stderr.
    let allowed = served.run(&[
        "check",
        "--tool",
        "Read",
        "--input",
        r#"{"file_path":"README.md"}"#,
    ]);
    assert!(allowed.status.success(), "{allowed:?}");
    assert!(allowed.stderr.is_empty(), "{allowed:?}");
}

#[test]
fn an_ambiguous_id_prefix_is_refused_with_its_candidates_and_a_unique_one_approves() {
    let served = Served::start();
    let mut first = served.paused_check("git push origin one");
    let mut second = served.paused_check("git push origin two");
    let pending = served.wait_pending(2);
    // The two checks run concurrently: tell their actions apart by command, not by list order.
    let of = |command: &str| {
        pending
            .iter()
            .find(|action| action["input"]["command"] == command)
            .map(id_of)
            .unwrap_or_else(|| panic!("{command} is not pending: {pending:?}"))
    };
    let (a, b) = (of("git push origin one"), of("git push origin two"));
    // ULIDs made within seconds share their leading (time) characters.
    let common: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    assert!(common.len() >= "act_".len() + 4, "{a} {b}");
    let ambiguous = served.run(&["approve", &common]);
    assert_eq!(ambiguous.status.code(), Some(1), "{ambiguous:?}");
    let stderr = text(&ambiguous.stderr);
    assert!(stderr.contains("ambiguous"), "{stderr}");
    assert!(stderr.contains(&a) && stderr.contains(&b), "{stderr}");
    assert_eq!(served.wait_pending(2).len(), 2, "nothing was decided");

    let too_short = served.run(&["approve", "act_0"]);
    assert_eq!(too_short.status.code(), Some(1), "{too_short:?}");
    assert!(
        text(&too_short.stderr).contains("at least"),
        "{too_short:?}"
    );

    let unique = &a[..a.len() - 2];
    let approved = served.run(&["approve", unique]);
    assert!(approved.status.success(), "{approved:?}");
    assert!(text(&approved.stdout).contains(&a), "{approved:?}");
    let denied = served.run(&["deny", &b[..b.len() - 1]]);
    assert!(denied.status.success(), "{denied:?}");
    assert_eq!(first.wait().unwrap().code(), Some(0), "approved");
    assert_eq!(second.wait().unwrap().code(), Some(3), "denied");
}

#[test]
fn ledger_follow_shows_every_verdict_with_its_command_as_text_and_json_lines() {
    let served = Served::start();
    let mut people = served
        .cli(&["ledger", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut scripts = served
        .cli(&["ledger", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let people_lines = lines_of(people.stdout.take().unwrap());
    let script_lines = lines_of(scripts.stdout.take().unwrap());
    // The followers may connect after the first checks; keep sending allowed reads (each a
    // new action) until both have printed one.
    let started = Instant::now();
    let mut seen_people = None;
    let mut seen_scripts = None;
    let mut n = 0;
    while seen_people.is_none() || seen_scripts.is_none() {
        n += 1;
        let input = serde_json::json!({ "file_path": format!("notes-{n}.md\u{1b}[2J") });
        let output = served.run(&["check", "--tool", "Read", "--input", &input.to_string()]);
        assert!(output.status.success(), "{output:?}");
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && (seen_people.is_none() || seen_scripts.is_none()) {
            if seen_people.is_none() {
                seen_people = people_lines
                    .recv_timeout(Duration::from_millis(50))
                    .ok()
                    .filter(|l| l.starts_with("checked "));
            }
            if seen_scripts.is_none() {
                seen_scripts = script_lines
                    .recv_timeout(Duration::from_millis(50))
                    .ok()
                    .filter(|l| l.contains("\"action.checked\""));
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the followers never showed an allowed action"
        );
    }
    let checked = seen_people.unwrap();
    assert!(
        checked.contains("ALLOW") && checked.contains("notes-"),
        "{checked}"
    );
    assert!(
        checked.contains("\\u{1b}[2J") && !checked.contains('\u{1b}'),
        "{checked:?}"
    );
    let event: serde_json::Value = serde_json::from_str(&seen_scripts.unwrap()).unwrap();
    assert_eq!(event["action"]["verdict"], "allow");

    // A pause and its decision, in both.
    let mut waiting = served.paused_check("git push");
    let paused = next_line_with(&script_lines, "\"action.pending\"");
    let paused: serde_json::Value = serde_json::from_str(&paused).unwrap();
    let id = id_of(&paused["action"]);
    assert!(next_line_with(&people_lines, "paused ").contains(&id));
    assert!(served.run(&["deny", &id]).status.success());
    assert!(next_line_with(&people_lines, &format!("decided  {id}")).contains("REJECT"));
    let decided: serde_json::Value =
        serde_json::from_str(&next_line_with(&script_lines, "\"action.decided\"")).unwrap();
    assert_eq!(decided["action"]["verdict"], "reject");
    assert_eq!(waiting.wait().unwrap().code(), Some(3));
    for child in [&mut people, &mut scripts] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn the_cli_finds_a_daemon_on_another_port_through_its_url_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut served = Served::start();
    let url_file = served.data_dir.join("daemon.url");
    let written = std::fs::read_to_string(&url_file).unwrap();
    assert_eq!(written.trim(), served.url);
    assert_eq!(
        std::fs::metadata(&url_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Neither --url nor GATEHOUSE_URL: the URL file says where the daemon is.
    let without_url = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("GATEHOUSE_DATA_DIR", &served.data_dir)
            .env("HOME", served.dir.path())
            .env_remove("GATEHOUSE_URL")
            .output()
            .unwrap()
    };
    let listed = without_url(&["pending"]);
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(text(&listed.stdout).trim(), "no pending actions");

    // A URL file others could have written is not trusted with the approver token.
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(&url_file, "http://127.0.0.1:9/\n").unwrap();
    let refused = without_url(&["pending"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("127.0.0.1:7400"),
        "falls back to the default URL: {refused:?}"
    );
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&url_file, format!("{}\n", served.url)).unwrap();

    // A clean shutdown removes it.
    let pid = served.process.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let started = Instant::now();
    while served.process.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!url_file.exists(), "daemon.url is removed at shutdown");
}

/// A tmux server on its own socket in the test's directory, killed when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "watch"]).stdout)
    }

    /// The screen once it shows every one of `needles`.
    fn wait_for(&self, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the screen never showed {needles:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn watch_lists_a_pause_live_and_denies_it_from_the_keyboard_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        // scripts/test.sh installs tmux and sets this: there, a missing tmux is a failure.
        assert!(
            std::env::var_os("GATEHOUSE_REQUIRE_TMUX").is_none(),
            "tmux is not installed but GATEHOUSE_REQUIRE_TMUX is set (scripts/install-test-deps.sh installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (scripts/install-test-deps.sh installs it)");
        return;
    }
    let served = Served::start();
    let tmux = Tmux {
        socket: served.dir.path().join("tmux.sock"),
    };
    let home = format!("HOME={}", served.dir.path().display());
    let data = format!("GATEHOUSE_DATA_DIR={}", served.data_dir.display());
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "watch",
        "-x",
        "200",
        "-y",
        "30",
        "env",
        &home,
        &data,
        "TERM=xterm-256color",
        BIN,
        "watch",
        "--url",
        &served.url,
    ]);
    assert!(started.status.success(), "{started:?}");
    tmux.wait_for(&["gatehouse watch: 0 pending", "q quit"]);

    let mut waiting = served.paused_check("git push origin watch \u{1b}[2J");
    let screen = tmux.wait_for(&["gatehouse watch: 1 pending", "git push origin watch"]);
    assert!(
        screen.contains("\\u{1b}[2J"),
        "escaped on screen:\n{screen}"
    );
    assert!(
        screen.contains("Bash") && screen.contains(" ago"),
        "{screen}"
    );
    let id = id_of(&served.wait_pending(1)[0]);

    assert!(
        tmux.run(&["send-keys", "-t", "watch", "d"])
            .status
            .success()
    );
    assert_eq!(
        waiting.wait().unwrap().code(),
        Some(3),
        "denied from the TUI"
    );
    tmux.wait_for(&["gatehouse watch: 0 pending", "denied"]);
    let ledger: Vec<serde_json::Value> =
        serde_json::from_slice(&served.run(&["ledger", "--json"]).stdout).unwrap();
    let decided = ledger.iter().find(|a| id_of(a) == id).unwrap();
    assert_eq!(decided["verdict"], "reject");
    assert_eq!(decided["decided_by"], "human");

    assert!(
        tmux.run(&["send-keys", "-t", "watch", "q"])
            .status
            .success()
    );
    let quit = Instant::now();
    while tmux.run(&["has-session", "-t", "watch"]).status.success() {
        assert!(quit.elapsed() < Duration::from_secs(10), "q did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
