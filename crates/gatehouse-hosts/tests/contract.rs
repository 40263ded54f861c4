//! Contract tests: the payloads the real CLIs send (captured by tests/agents into
//! `tests/fixtures/<host>/`; Cursor's written from its documentation — it has no CLI that runs
//! here) read as the right tool call or outcome, and every malformed, truncated, oversized or
//! hostile variant is refused (which the hook turns into the host's deny).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use std::path::Path;

use gatehouse_hosts::Host;
use gatehouse_hosts::event::{HookEvent, MAX_PAYLOAD_BYTES, read_event};
use gatehouse_hosts::install::{
    self, HookCommand, HostEnv, InstallRequest, Scope, Transport, Undone,
};
use gatehouse_hosts::version::Version;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixtures(host: Host) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(FIXTURES).join(host.as_str());
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().into_owned(),
                        std::fs::read(&p).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Cursor has no CLI that runs here: its payloads as its hooks documentation describes them.
fn cursor_payloads() -> Vec<(String, Vec<u8>)> {
    [
        json!({"hook_event_name": "beforeShellExecution", "conversation_id": "c1", "generation_id": "g1",
               "workspace_roots": ["/w"], "command": "npm test", "cwd": "/w"}),
        json!({"hook_event_name": "beforeMCPExecution", "conversation_id": "c1", "generation_id": "g2",
               "workspace_roots": ["/w"], "tool_name": "create_issue", "tool_input": "{\"title\":\"x\"}",
               "url": "https://mcp.example"}),
        json!({"hook_event_name": "preToolUse", "conversation_id": "c1", "generation_id": "g3",
               "tool_name": "Shell", "tool_input": {"command": "ls"}, "tool_use_id": "t3", "cwd": "/w"}),
        json!({"hook_event_name": "afterShellExecution", "conversation_id": "c1", "generation_id": "g1",
               "command": "npm test", "output": "ok\ngatehouse sandbox: denied connect 1.2.3.4:443", "duration": 812}),
    ]
    .into_iter()
    .map(|v| (v["hook_event_name"].as_str().unwrap().to_owned(), v.to_string().into_bytes()))
    .collect()
}

fn payloads(host: Host) -> Vec<(String, Vec<u8>)> {
    match host {
        Host::Cursor => cursor_payloads(),
        _ => fixtures(host),
    }
}

#[test]
fn every_captured_payload_reads_with_its_identity() {
    let mut seen = 0;
    for host in Host::ALL {
        let payloads = payloads(host);
        assert!(!payloads.is_empty(), "{host}: no fixtures");
        for (name, bytes) in payloads {
            let raw: Value = serde_json::from_slice(&bytes).unwrap();
            let event = read_event(host, &bytes).unwrap_or_else(|e| panic!("{host} {name}: {e}"));
            seen += 1;
            match event {
                HookEvent::PreTool(call) => {
                    assert_eq!(call.host, host);
                    assert!(!call.tool.is_empty());
                    match raw.get("tool_use_id").and_then(Value::as_str) {
                        Some(id) => {
                            assert_eq!(call.tool_use_id, id, "{name}");
                            assert!(!call.tool_use_id_derived);
                        }
                        None => {
                            assert!(call.tool_use_id.starts_with("gh_"), "{name}");
                            assert!(call.tool_use_id_derived);
                        }
                    }
                    if let Some(session) = raw.get("session_id").and_then(Value::as_str) {
                        assert_eq!(call.session_id.as_deref(), Some(session));
                    }
                    if let Some(agent) = raw.get("agent_id").and_then(Value::as_str) {
                        assert_eq!(call.context["agent_id"], agent, "{name}: subagent kept");
                        assert_eq!(call.context["agent_type"], raw["agent_type"]);
                    }
                    if host != Host::Cursor
                        && let Some(input) = raw.get("tool_input")
                    {
                        assert_eq!(&Value::Object(call.input.clone()), input, "{name}");
                    }
                }
                HookEvent::PostTool(outcome) => {
                    assert!(outcome.ran, "{name}");
                    let text = String::from_utf8_lossy(&bytes);
                    if text.contains("gatehouse sandbox: denied") {
                        assert!(!outcome.findings.is_empty(), "{name}");
                    }
                }
            }
        }
    }
    assert!(seen >= 20, "only {seen} payloads");
}

#[test]
fn a_hosts_before_and_after_events_of_one_call_share_its_id() {
    for host in [Host::ClaudeCode, Host::Codex, Host::Gemini] {
        let payloads = fixtures(host);
        for (name, bytes) in &payloads {
            let Some(tool) = name
                .strip_prefix("PreToolUse-")
                .or_else(|| name.strip_prefix("BeforeTool-"))
            else {
                continue;
            };
            let after_name = if host == Host::Gemini {
                format!("AfterTool-{tool}")
            } else {
                format!("PostToolUse-{tool}")
            };
            let Some((_, after)) = payloads.iter().find(|(n, _)| *n == after_name) else {
                continue;
            };
            let (HookEvent::PreTool(call), HookEvent::PostTool(outcome)) = (
                read_event(host, bytes).unwrap(),
                read_event(host, after).unwrap(),
            ) else {
                panic!("{host} {name}: wrong event kinds");
            };
            assert_eq!(call.tool_use_id, outcome.tool_use_id, "{host} {name}");
            assert_eq!(call.session_id, outcome.session_id);
        }
    }
}

#[test]
fn malformed_truncated_oversized_and_hostile_payloads_are_refused() {
    for host in Host::ALL {
        for (name, bytes) in payloads(host) {
            for cut in 0..bytes.len() {
                // Every strict prefix is refused; whitespace-trimmed complete JSON is not a prefix.
                if bytes[..cut].iter().all(u8::is_ascii_whitespace) || cut + 2 >= bytes.len() {
                    continue;
                }
                assert!(
                    read_event(host, &bytes[..cut]).is_err(),
                    "{host} {name} cut at {cut} was accepted"
                );
            }
        }
        let hostile: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("whitespace", b"  \n".to_vec()),
            ("not JSON", b"allow".to_vec()),
            ("null", b"null".to_vec()),
            ("array", b"[{}]".to_vec()),
            ("oversized", {
                let mut big = br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":""#.to_vec();
                big.extend(std::iter::repeat_n(b'a', MAX_PAYLOAD_BYTES));
                big.extend(br#""}}"#);
                big
            }),
            ("duplicate key", br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_name":"Read","tool_input":{}}"#.to_vec()),
            ("duplicate input key", br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls","command":"rm -rf /"}}"#.to_vec()),
            ("NUL in a key", b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{\"comm\\u0000and\":\"x\"}}".to_vec()),
            ("input is a string", br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"rm -rf /"}"#.to_vec()),
            ("input is an array", br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":["rm"]}"#.to_vec()),
            ("tool is a number", br#"{"hook_event_name":"PreToolUse","tool_name":7,"tool_input":{}}"#.to_vec()),
            ("empty tool", br#"{"hook_event_name":"PreToolUse","tool_name":" ","tool_input":{}}"#.to_vec()),
            ("no event", br#"{"tool_name":"Bash","tool_input":{}}"#.to_vec()),
            ("unknown event", br#"{"hook_event_name":"SessionStart","tool_name":"Bash","tool_input":{}}"#.to_vec()),
            ("empty tool_use_id", br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{},"tool_use_id":""}"#.to_vec()),
            ("deep nesting", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
            ("invalid UTF-8", b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"\xc3\x28\"}".to_vec()),
        ];
        for (name, bytes) in hostile {
            if host == Host::Gemini && name == "empty tool_use_id" {
                continue; // Gemini sends no tool_use_id; its id is always derived.
            }
            // Cursor names its events differently; the shapes are refused all the same.
            let bytes = match (host, String::from_utf8(bytes.clone())) {
                (Host::Gemini, Ok(text)) => text.replace("PreToolUse", "BeforeTool").into_bytes(),
                _ => bytes,
            };
            assert!(
                read_event(host, &bytes).is_err(),
                "{host}: {name} was accepted"
            );
        }
    }
}

fn env(root: &Path) -> HostEnv {
    HostEnv {
        home: root.join("home"),
        claude_config_dir: None,
        codex_home: None,
        gemini_cli_home: None,
        managed_root: root.join("managed"),
    }
}

fn request(
    host: Host,
    scope: Scope,
    project: Option<&Path>,
    version: Option<&str>,
) -> InstallRequest {
    InstallRequest {
        host,
        scope,
        project: project.map(Path::to_path_buf),
        command: HookCommand {
            gatehouse: "/opt/gatehouse/bin/gatehouse".into(),
            url: Some("http://127.0.0.1:7400".into()),
            data_dir: Some("/var/lib/gatehouse".into()),
            wait_secs: 125,
            pause_ask: false,
        },
        transport: Transport::Command,
        version: version.map(|v| v.parse::<Version>().unwrap()),
    }
}

#[test]
fn project_and_managed_scopes_write_where_each_host_reads_and_undo_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let env = env(root.path());
    let project = root.path().join("proj");
    let state = root.path().join("state");
    // Codex, project scope: hooks in the project's config.toml, trust in the user's.
    let user_config = env.home.join(".codex/config.toml");
    std::fs::create_dir_all(user_config.parent().unwrap()).unwrap();
    std::fs::write(&user_config, "model = \"o3\"\n").unwrap();
    let plan = install::plan(
        &request(Host::Codex, Scope::Project, Some(&project), Some("0.169.0")),
        &env,
    )
    .unwrap();
    assert_eq!(plan.changes.len(), 2);
    assert_eq!(plan.changes[0].path, project.join(".codex/config.toml"));
    assert_eq!(plan.changes[1].path, user_config);
    assert!(
        plan.notes.iter().any(|n| n.contains("trust_level")),
        "{:?}",
        plan.notes
    );
    install::apply(&plan, &state).unwrap();
    let trust = std::fs::read_to_string(&user_config).unwrap();
    assert!(
        trust.contains(&format!(
            "{}:pre_tool_use:0:0",
            project.join(".codex/config.toml").display()
        )),
        "{trust}"
    );
    let undone =
        install::uninstall(Host::Codex, Scope::Project, Some(&project), &env, &state).unwrap();
    assert_eq!(
        undone,
        vec![
            Undone::Removed(project.join(".codex/config.toml")),
            Undone::Restored(user_config.clone())
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&user_config).unwrap(),
        "model = \"o3\"\n"
    );

    // Managed Claude Code settings, and Cursor's documented hooks.json with failClosed.
    for (host, version, path) in [
        (
            Host::ClaudeCode,
            Some("2.1.328"),
            root.path()
                .join("managed/etc/claude-code/managed-settings.json"),
        ),
        (
            Host::Cursor,
            None,
            root.path().join("managed/etc/cursor/hooks.json"),
        ),
        (
            Host::Gemini,
            Some("0.61.0"),
            root.path().join("managed/etc/gemini-cli/settings.json"),
        ),
    ] {
        let plan = install::plan(&request(host, Scope::Managed, None, version), &env).unwrap();
        assert_eq!(plan.changes[0].path, path);
        install::apply(&plan, &state).unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        match host {
            Host::Cursor => {
                assert_eq!(written["version"], 1);
                for event in ["beforeShellExecution", "beforeMCPExecution", "preToolUse"] {
                    assert_eq!(written["hooks"][event][0]["failClosed"], true, "{event}");
                }
            }
            Host::Gemini => {
                assert_eq!(
                    written["hooks"]["BeforeTool"][0]["hooks"][0]["timeout"], 155_000,
                    "milliseconds"
                );
            }
            _ => assert_eq!(
                written["hooks"]["PreToolUse"][0]["hooks"][0]["timeout"],
                155
            ),
        }
        install::uninstall(host, Scope::Managed, None, &env, &state).unwrap();
        assert!(!path.exists());
    }
    assert!(matches!(
        install::plan(
            &request(Host::Codex, Scope::Managed, None, Some("0.169.0")),
            &env
        ),
        Err(install::InstallError::ScopeUnsupported { .. })
    ));
    assert!(matches!(
        install::plan(
            &request(Host::Codex, Scope::User, None, Some("0.100.0")),
            &env
        ),
        Err(install::InstallError::TooOld { .. })
    ));
    assert!(matches!(
        install::plan(
            &request(Host::Gemini, Scope::Project, None, Some("0.61.0")),
            &env
        ),
        Err(install::InstallError::NoProject)
    ));
}
