//! Issue 10, the hook command as hosts run it: `gatehouse hook <host>` as a real process with a
//! host's payload on stdin, against a real `gatehouse serve`, a stopped one, a hanging one and
//! ones that answer garbage; `gatehouse install` / `uninstall` on a temporary HOME (byte-for-byte
//! restore); `gatehouse doctor` finding an untrusted Codex hook, a missing fail-closed option
//! and a stopped daemon. The hosts' CLIs are not needed here (`--host-version`); the real CLIs
//! run in tests/agents.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

use support::{BIN, ServeProcess, spawn_serve};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../gatehouse-hosts/tests/fixtures"
);

struct Served {
    process: ServeProcess,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
}

/// Reads allowed, `rm -rf` rejected in every host's shell tool, everything else paused.
const HOOK_POLICY: &str = r#"
default = "pause"
[[rules]]
id = "allow-read"
effect = "allow"
tool = "Read"

[[rules]]
id = "no-rm-rf"
effect = "reject"
tool = ["Bash", "run_shell_command", "Shell"]
[[rules.args]]
pointer = "/command"
regex = "rm -rf"
"#;

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), HOOK_POLICY).unwrap();
        let process = spawn_serve(dir.path(), "warn");
        Served {
            data_dir: dir.path().join("data"),
            process,
            dir,
        }
    }

    fn url(&self) -> &str {
        &self.process.url
    }
}

struct HookRun {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn hook(host: &str, args: &[&str], payload: &[u8], home: &Path) -> HookRun {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("hook")
        .arg(host)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let payload = payload.to_vec();
    // Written from a thread: a hook may answer (and close stdin) before reading it all.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&payload);
    });
    let output = child.wait_with_output().unwrap();
    let _ = writer.join();
    HookRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        took: started.elapsed(),
    }
}

/// The host's explicit deny: exit 2, whole JSON on stdout, the reason on stderr.
fn assert_denied(host: &str, run: &HookRun, why: &str) {
    assert_eq!(
        run.code, 2,
        "{why}: exit {} stdout {} stderr {}",
        run.code, run.stdout, run.stderr
    );
    let body: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{why}: stdout is not whole JSON ({e}): {:?}", run.stdout));
    if host == "cursor" {
        assert_eq!(body["permission"], "deny", "{why}: {body}");
    } else {
        assert_eq!(body["decision"], "block", "{why}: {body}");
    }
    assert!(
        run.stderr.starts_with("Gatehouse: "),
        "{why}: stderr {:?}",
        run.stderr
    );
}

fn fixture(host: &str, name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(host).join(name)).unwrap()
}

fn fixture_with(host: &str, name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture(host, name)).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn target(served: &Served) -> Vec<String> {
    vec![
        "--url".into(),
        served.url().to_owned(),
        "--data-dir".into(),
        served.data_dir.display().to_string(),
    ]
}

#[test]
fn real_payloads_of_each_host_get_the_verdict_the_policy_gives() {
    let served = Served::start();
    let args = target(&served);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let home = served.dir.path();
    // Reads are allowed by the policy: each host's allow.
    let read = hook(
        "claude-code",
        &args,
        &fixture("claude-code", "PreToolUse-Read.json"),
        home,
    );
    assert_eq!(
        (read.code, read.stdout.as_str()),
        (0, ""),
        "{}",
        read.stderr
    );
    // A rejected command: the host's deny, with the rule's reason for the model.
    for (host, name) in [
        ("claude-code", "PreToolUse-Bash.json"),
        ("codex", "PreToolUse-Bash.json"),
        ("gemini", "BeforeTool-run_shell_command.json"),
    ] {
        let payload = fixture_with(host, name, |v| {
            v["tool_input"]["command"] = json!("rm -rf /tmp/x");
        });
        let run = hook(
            host,
            &[&args[..], &["--wait", "1"]].concat(),
            &payload,
            home,
        );
        assert_denied(host, &run, &format!("{host} rejected"));
        assert!(run.stderr.contains("rejected (rule"), "{}", run.stderr);
    }
    // Paused, and nobody decides within the hook's wait: a deny that says how to approve.
    let run = hook(
        "codex",
        &[&args[..], &["--wait", "1"]].concat(),
        &fixture("codex", "PreToolUse-apply_patch.json"),
        home,
    );
    assert_denied("codex", &run, "paused");
    assert!(
        run.stderr.contains("gatehouse approve act_"),
        "{}",
        run.stderr
    );
    // Gemini sends no tool_use_id: the derived one is stable, so its AfterTool finds the action.
    let quick = [&args[..], &["--wait", "0"]].concat();
    let before = hook(
        "gemini",
        &quick,
        &fixture("gemini", "BeforeTool-read_file.json"),
        home,
    );
    assert_denied(
        "gemini",
        &before,
        "gemini read_file is paused by this policy",
    );
    let after = hook(
        "gemini",
        &args,
        &fixture("gemini", "AfterTool-read_file.json"),
        home,
    );
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(
        after.stderr.is_empty(),
        "outcome recorded: {}",
        after.stderr
    );
    let ledger = rusqlite::Connection::open(served.data_dir.join("ledger.db")).unwrap();
    let (linked, flag): (Option<String>, Option<String>) = ledger
        .query_row(
            "SELECT o.action_id, o.flag FROM outcomes o WHERE o.agent = 'gemini'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(
        linked.is_some_and(|id| id.starts_with("act_")),
        "linked to its action"
    );
    assert_eq!(
        flag.as_deref(),
        Some("not_allowed"),
        "it ran while still paused"
    );
}

#[test]
fn a_paused_call_approved_while_the_hook_waits_runs() {
    let served = Served::start();
    let args = target(&served);
    let mut with_wait: Vec<String> = args.clone();
    with_wait.extend(["--wait".into(), "60".into()]);
    let home = served.dir.path().to_owned();
    let payload = fixture("claude-code", "PreToolUse-Bash.json");
    let waiting = std::thread::spawn(move || {
        let args: Vec<&str> = with_wait.iter().map(String::as_str).collect();
        hook("claude-code", &args, &payload, &home)
    });
    // Find the paused action with the CLI a person uses, and approve it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let out = Command::new(BIN)
            .args(["pending", "--url", served.url(), "--data-dir"])
            .arg(&served.data_dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(id) = text.split_whitespace().find(|w| w.starts_with("act_")) {
            break id.trim_end_matches(':').to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the call never showed as pending: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let approved = Command::new(BIN)
        .args(["approve", &id, "--url", served.url(), "--data-dir"])
        .arg(&served.data_dir)
        .env("GATEHOUSE_APPROVALS_PRESENCE", "off")
        .output()
        .unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let run = waiting.join().unwrap();
    assert_eq!(
        run.code, 0,
        "approved: the host may run it ({})",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

/// A listener that answers every connection with `answer` (or never, with `None`).
fn fake_daemon(answer: Option<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 65536];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buf);
            match answer {
                Some(bytes) => {
                    let _ = stream.write_all(bytes);
                }
                // Hanging: keep the connection open, say nothing.
                None => held.push(stream),
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn daemon_down_hanging_or_answering_garbage_is_always_the_hosts_deny() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("agent.token"), "t0ken\n").unwrap();
    let data = home.path().display().to_string();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let daemons: Vec<(&str, String)> = vec![
        ("stopped", closed),
        ("not HTTP", fake_daemon(Some(b"SSH-2.0-OpenSSH\r\n"))),
        ("empty answer", fake_daemon(Some(b""))),
        ("500", fake_daemon(Some(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}"))),
        ("200 not JSON", fake_daemon(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nallow"))),
        ("200 truncated", fake_daemon(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n{\"verdict\":\"allow\""))),
        ("200 without the fields", fake_daemon(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 19\r\n\r\n{\"verdict\":\"allow\"}"))),
        ("200 unknown verdict", fake_daemon(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 96\r\n\r\n{\"action_id\":\"a\",\"verdict\":\"maybe\",\"decided_by\":\"rule\",\"rule_id\":null,\"reason\":\"r\",\"tier2\":null}"))),
        ("401", fake_daemon(Some(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n"))),
    ];
    for host in ["claude-code", "codex", "gemini"] {
        let payload = match host {
            "gemini" => fixture("gemini", "BeforeTool-run_shell_command.json"),
            _ => fixture(host, "PreToolUse-Bash.json"),
        };
        for (name, url) in &daemons {
            let run = hook(
                host,
                &["--url", url, "--data-dir", &data, "--wait", "1"],
                &payload,
                home.path(),
            );
            assert_denied(host, &run, &format!("{host}, daemon {name}"));
        }
    }
    // Hanging: the hook gives up before the host's timeout (wait + 10 s), with a deny.
    let hanging = fake_daemon(None);
    let run = hook(
        "claude-code",
        &["--url", &hanging, "--data-dir", &data, "--wait", "0"],
        &fixture("claude-code", "PreToolUse-Bash.json"),
        home.path(),
    );
    assert_denied("claude-code", &run, "hanging daemon");
    assert!(run.took < Duration::from_secs(25), "took {:?}", run.took);
}

#[test]
fn payloads_and_options_the_hook_cannot_read_are_the_hosts_deny() {
    let home = tempfile::tempdir().unwrap();
    let good = fixture("claude-code", "PreToolUse-Bash.json");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("not JSON".into(), b"rm -rf /".to_vec()),
        ("oversized".into(), vec![b' '; 1024 * 1024 + 10]),
        ("array".into(), b"[]".to_vec()),
        ("no tool".into(), br#"{"hook_event_name":"PreToolUse"}"#.to_vec()),
        ("duplicate key".into(), br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls","command":"rm -rf /"}}"#.to_vec()),
        ("input a string".into(), br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"rm -rf /"}"#.to_vec()),
        ("unknown event".into(), br#"{"hook_event_name":"Elsewhere","tool_name":"Bash","tool_input":{}}"#.to_vec()),
        ("cwd a number".into(), br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{},"cwd":7}"#.to_vec()),
        ("invalid UTF-8".into(), b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"B\xff\"}".to_vec()),
    ];
    // Every truncation of a real payload.
    for cut in (1..good.len()).step_by(97) {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    // No daemon is needed to refuse these: the URL points nowhere.
    for (name, payload) in &cases {
        let run = hook(
            "claude-code",
            &["--url", "http://127.0.0.1:9"],
            payload,
            home.path(),
        );
        assert_denied("claude-code", &run, name);
        assert!(
            !run.stderr.contains("cannot connect"),
            "{name}: refused before asking: {}",
            run.stderr
        );
    }
    for (name, args) in [
        ("unknown option", vec!["--frobnicate"]),
        ("bad wait", vec!["--wait", "soon"]),
        ("bad url", vec!["--url", "https://example.com"]),
    ] {
        let run = hook("codex", &args, &good, home.path());
        assert_denied("codex", &run, name);
    }
    let run = hook("no-such-host", &[], &good, home.path());
    assert_denied("claude-code", &run, "unknown host");
    let cursor = hook(
        "cursor",
        &["--url", "http://127.0.0.1:9"],
        b"{}",
        home.path(),
    );
    assert_denied("cursor", &cursor, "cursor");
}

fn gatehouse(home: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CODEX_HOME")
        .env_remove("GEMINI_CLI_HOME")
        .env_remove("GATEHOUSE_DATA_DIR")
        .env("GATEHOUSE_MANAGED_ROOT", home.join("managed"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn install_is_idempotent_and_uninstall_restores_every_hosts_settings_byte_for_byte() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = h.join("gh-data").display().to_string();
    let originals: Vec<(&str, &str, &str, &str)> = vec![
        (
            "claude-code",
            "2.1.328",
            ".claude/settings.json",
            "{\n    \"model\": \"opus\",\n  \"hooks\": {\"PreToolUse\": [{\"matcher\": \"Write\", \"hooks\": [{\"type\": \"command\", \"command\": \"prettier\"}]}]}\n}\n",
        ),
        (
            "codex",
            "0.169.0",
            ".codex/config.toml",
            "# my settings\nmodel = \"o3\"   # keep this comment\n\n[[hooks.PreToolUse]]\nmatcher = \"Bash\"\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"mine\"\n",
        ),
        (
            "gemini",
            "0.61.0",
            ".gemini/settings.json",
            "{\"security\":{\"auth\":{\"selectedType\":\"gemini-api-key\"}}}",
        ),
        ("cursor", "1.0.0", ".cursor/hooks.json", ""),
    ];
    for (host, version, rel, original) in &originals {
        let path = h.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if !original.is_empty() {
            std::fs::write(&path, original).unwrap();
        }
        let install = [
            "install",
            host,
            "--host-version",
            version,
            "--data-dir",
            &data,
        ];
        let (code, out) = gatehouse(h, &[&install[..], &["--dry-run"]].concat());
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            *original,
            "dry run writes nothing"
        );
        let (code, out) = gatehouse(h, &install);
        assert_eq!(code, 0, "{host}: {out}");
        let once = std::fs::read(&path).unwrap();
        let text = String::from_utf8(once.clone()).unwrap();
        assert!(
            text.contains(&format!(" hook {host} --data-dir ")),
            "{text}"
        );
        let (code, out) = gatehouse(h, &install);
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            once,
            "{host}: installing twice changes nothing"
        );
        match *host {
            "claude-code" => {
                assert!(text.contains("\"onFailure\": \"block\""), "{text}");
                assert!(text.contains("prettier"), "the user's hook stays");
            }
            "codex" => {
                assert!(text.contains("# keep this comment"), "{text}");
                assert!(text.contains("trusted_hash = \"sha256:"), "{text}");
            }
            "cursor" => assert!(text.contains("\"failClosed\": true"), "{text}"),
            _ => {}
        }
        let (code, out) = gatehouse(h, &["uninstall", host, "--data-dir", &data]);
        assert_eq!(code, 0, "{out}");
        if original.is_empty() {
            assert!(!path.exists(), "{host}: a file install created is removed");
        } else {
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                *original,
                "{host}: restored byte for byte"
            );
        }
    }
    // A file changed after the install: only Gatehouse's entries go, the change stays.
    let path = h.join(".claude/settings.json");
    gatehouse(
        h,
        &[
            "install",
            "claude-code",
            "--host-version",
            "2.1.328",
            "--data-dir",
            &data,
        ],
    );
    let mut settings: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    settings["theme"] = json!("dark");
    std::fs::write(&path, serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
    let (code, out) = gatehouse(h, &["uninstall", "claude-code", "--data-dir", &data]);
    assert_eq!(code, 0, "{out}");
    let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(after["theme"], "dark");
    assert!(!after.to_string().contains("gatehouse"), "{after}");
    // An old Claude Code without onFailure, or no version at all: refused or warned, never silent.
    let (code, out) = gatehouse(h, &["install", "claude-code", "--data-dir", &data]);
    assert_ne!(code, 0, "no version: {out}");
    assert!(out.contains("--host-version"), "{out}");
    let (code, out) = gatehouse(
        h,
        &[
            "install",
            "claude-code",
            "--host-version",
            "2.1.200",
            "--data-dir",
            &data,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING") && out.contains("onFailure"),
        "{out}"
    );
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("onFailure"),
        "never a key the version rejects"
    );
}

#[test]
fn doctor_reports_an_untrusted_codex_hook_a_missing_fail_closed_option_and_a_stopped_daemon() {
    let served = Served::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = served.data_dir.display().to_string();
    let url = served.url().to_owned();
    let versions = [
        "--host-version",
        "claude-code=2.1.328",
        "--host-version",
        "codex=0.169.0",
    ];
    for (host, version) in [("claude-code", "2.1.328"), ("codex", "0.169.0")] {
        let (code, out) = gatehouse(
            h,
            &[
                "install",
                host,
                "--host-version",
                version,
                "--url",
                &url,
                "--data-dir",
                &data,
            ],
        );
        assert_eq!(code, 0, "{out}");
    }
    let doctor = |h: &Path, url: &str| {
        gatehouse(
            h,
            &[
                &[
                    "doctor",
                    "--url",
                    url,
                    "--data-dir",
                    &data,
                    "--project",
                    &h.display().to_string(),
                ][..],
                &versions[..],
            ]
            .concat(),
        )
    };
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 0, "healthy: {out}");
    assert!(
        out.contains("round trip: a harmless read was answered `allow`"),
        "{out}"
    );

    // Codex trust removed: Codex would skip the hook silently.
    let codex = h.join(".codex/config.toml");
    let trusted = std::fs::read_to_string(&codex).unwrap();
    let untrusted: String = trusted
        .split("\n\n")
        .filter(|block| !block.starts_with("[hooks.state."))
        .collect::<Vec<_>>()
        .join("\n\n");
    std::fs::write(&codex, &untrusted).unwrap();
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not trusted: Codex skips it silently"),
        "{out}"
    );
    // The hook edited after it was trusted is reported too.
    std::fs::write(&codex, trusted.replace("--wait 125", "--wait 126")).unwrap();
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("was changed after it was trusted"), "{out}");
    std::fs::write(&codex, &trusted).unwrap();

    // Claude Code's onFailure removed.
    let claude = h.join(".claude/settings.json");
    let text = std::fs::read_to_string(&claude).unwrap();
    std::fs::write(
        &claude,
        text.replace(",\n            \"onFailure\": \"block\"", ""),
    )
    .unwrap();
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("fail-closed option (\"onFailure\": \"block\") is missing"),
        "{out}"
    );
    std::fs::write(&claude, &text).unwrap();
    // A project that switches hooks off.
    std::fs::create_dir_all(h.join(".claude")).unwrap();
    std::fs::write(
        h.join(".claude/settings.local.json"),
        r#"{"disableAllHooks": true}"#,
    )
    .unwrap();
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("disableAllHooks"), "{out}");
    std::fs::remove_file(h.join(".claude/settings.local.json")).unwrap();

    // The daemon stopped.
    drop(served);
    let (code, out) = doctor(h, &url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("daemon: not reachable"), "{out}");
    assert!(out.contains("gatehouse serve"), "{out}");
}

/// Issue 11's contract: an allow rule with `confine` reaches a host that can rewrite as the
/// command wrapped in `gatehouse sandbox run` (quoted so the shell reads the original exactly),
/// and a host that cannot (Gemini) gets the rule's fallback, never an unconfined allow.
#[test]
fn a_confined_allow_rewrites_the_command_for_hosts_that_can_and_pauses_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        r#"
default = "reject"
[[rules]]
id = "build-tools"
effect = "allow"
command = { program = ["make"] }
confine = "build"
"#,
    )
    .unwrap();
    let process = spawn_serve(dir.path(), "warn");
    let data = dir.path().join("data").display().to_string();
    let args = [
        "--url",
        process.url.as_str(),
        "--data-dir",
        &data,
        "--wait",
        "0",
    ];
    // Literal words only (a `$(…)` would be opaque, never allowed), but every quote kind.
    let hostile = r#"make 'it'\''s' "a \"b\"" 'semi;colon' 'new
line'"#;
    for host in ["claude-code", "codex"] {
        let payload = fixture_with(host, "PreToolUse-Bash.json", |v| {
            v["tool_input"]["command"] = json!(hostile);
        });
        let run = hook(host, &args, &payload, dir.path());
        assert_eq!(run.code, 0, "{host}: {}", run.stderr);
        let answer: Value = serde_json::from_str(&run.stdout).unwrap();
        let out = &answer["hookSpecificOutput"];
        assert_eq!(out["permissionDecision"], "allow", "{answer}");
        let rewritten = out["updatedInput"]["command"].as_str().unwrap();
        let expected_prefix = format!("'{BIN}' sandbox run --profile 'build' --cwd ");
        assert!(rewritten.starts_with(&expected_prefix), "{rewritten}");
        // The words a shell makes of it: the original command comes back as one argument.
        let listed = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {}", &rewritten[BIN.len() + 3..]))
            .output()
            .unwrap();
        let words: Vec<String> = String::from_utf8(listed.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_owned)
            .collect();
        assert_eq!(words.last().map(String::as_str), Some(hostile), "{words:?}");
        assert_eq!(&words[..4], ["sandbox", "run", "--profile", "build"]);
        assert_eq!(words[words.len() - 3..words.len() - 1], ["/bin/sh", "-c"]);
    }
    let payload = fixture_with("gemini", "BeforeTool-run_shell_command.json", |v| {
        v["tool_input"]["command"] = json!("make test");
    });
    let run = hook("gemini", &args, &payload, dir.path());
    assert_denied(
        "gemini",
        &run,
        "gemini cannot confine: the fallback (pause), not an allow",
    );
    assert!(run.stderr.contains("paused"), "{}", run.stderr);
}
