//! JSON settings files (Claude Code `settings.json`, Gemini CLI `settings.json`, Cursor
//! `hooks.json`): Gatehouse's hook entries merged in, taken out, and inspected — keeping every
//! other key, entry and the order of both.
//!
//! Layouts: Claude Code and Gemini hold `hooks.<Event>: [{matcher, hooks: [handler]}]`; Cursor
//! holds `{"version": 1, "hooks": {"<event>": [handler]}}`. A handler is Gatehouse's when it
//! runs `gatehouse … hook <host>` or posts to `/v1/hooks/<host>`.

use serde_json::{Map, Value};

use crate::Host;

/// One hook handler Gatehouse installs, under one host event.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedHook {
    /// The host's event name (`PreToolUse`, `BeforeTool`, `beforeShellExecution`, ...).
    pub event: String,
    /// Claude Code / Gemini matcher (`*`, `.*`); Cursor has none.
    pub matcher: Option<String>,
    /// The handler object as the host reads it.
    pub handler: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: not valid JSON ({message}); fix or move it, then install again")]
    NotJson { path: String, message: String },
    #[error("{path}: `{key}` is not {expected}; fix it, then install again")]
    Shape {
        path: String,
        key: String,
        expected: &'static str,
    },
    #[error("{path}: not valid TOML ({message}); fix or move it, then install again")]
    NotToml { path: String, message: String },
}

/// Whether `handler` is one Gatehouse installed for `host`.
pub fn is_ours(host: Host, handler: &Value) -> bool {
    let marker = format!(" hook {}", host.as_str());
    let command_is_ours = handler
        .get("command")
        .and_then(Value::as_str)
        .is_some_and(|c| c.contains("gatehouse") && command_has_marker(c, &marker));
    let url_is_ours = handler
        .get("url")
        .and_then(Value::as_str)
        .is_some_and(|u| u.contains(&format!("/v1/hooks/{}", host.as_str())));
    command_is_ours || url_is_ours
}

fn command_has_marker(command: &str, marker: &str) -> bool {
    command.match_indices(marker).any(|(at, _)| {
        command[at + marker.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\'')
    })
}

fn parse_object(path: &str, text: Option<&str>) -> Result<Map<String, Value>, SettingsError> {
    let text = text.unwrap_or("");
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SettingsError::Shape {
            path: path.to_owned(),
            key: "(top level)".into(),
            expected: "an object",
        }),
        Err(err) => Err(SettingsError::NotJson {
            path: path.to_owned(),
            message: err.to_string(),
        }),
    }
}

fn hooks_object<'a>(
    path: &str,
    settings: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, SettingsError> {
    let hooks = settings
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    hooks.as_object_mut().ok_or_else(|| SettingsError::Shape {
        path: path.to_owned(),
        key: "hooks".into(),
        expected: "an object",
    })
}

fn event_array<'a>(
    path: &str,
    hooks: &'a mut Map<String, Value>,
    event: &str,
) -> Result<&'a mut Vec<Value>, SettingsError> {
    hooks
        .entry(event.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| SettingsError::Shape {
            path: path.to_owned(),
            key: format!("hooks.{event}"),
            expected: "an array",
        })
}

/// `text` with Gatehouse's previous entries for `host` replaced by `planned` (idempotent).
pub fn merge(
    host: Host,
    path: &str,
    text: Option<&str>,
    planned: &[PlannedHook],
) -> Result<String, SettingsError> {
    let mut settings = parse_object(path, text)?;
    if host == Host::Cursor {
        match settings.get("version") {
            None => {
                settings.insert("version".into(), Value::from(1));
            }
            Some(v) if v == &Value::from(1) => {}
            Some(_) => {
                return Err(SettingsError::Shape {
                    path: path.to_owned(),
                    key: "version".into(),
                    expected: "1 (the hooks.json format Gatehouse knows)",
                });
            }
        }
    }
    remove_ours(host, path, &mut settings)?;
    let hooks = hooks_object(path, &mut settings)?;
    for hook in planned {
        let entries = event_array(path, hooks, &hook.event)?;
        match host {
            Host::Cursor => entries.push(hook.handler.clone()),
            _ => {
                let mut group = Map::new();
                if let Some(matcher) = &hook.matcher {
                    group.insert("matcher".into(), Value::String(matcher.clone()));
                }
                group.insert("hooks".into(), Value::Array(vec![hook.handler.clone()]));
                entries.push(Value::Object(group));
            }
        }
    }
    Ok(render(&settings))
}

/// `text` without Gatehouse's entries for `host`; groups and events left empty by that go too.
pub fn unmerge(host: Host, path: &str, text: &str) -> Result<String, SettingsError> {
    let mut settings = parse_object(path, Some(text))?;
    remove_ours(host, path, &mut settings)?;
    if settings
        .get("hooks")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        settings.remove("hooks");
    }
    Ok(render(&settings))
}

fn remove_ours(
    host: Host,
    path: &str,
    settings: &mut Map<String, Value>,
) -> Result<(), SettingsError> {
    let Some(hooks) = settings.get_mut("hooks") else {
        return Ok(());
    };
    let hooks = hooks.as_object_mut().ok_or_else(|| SettingsError::Shape {
        path: path.to_owned(),
        key: "hooks".into(),
        expected: "an object",
    })?;
    let mut emptied = Vec::new();
    for (event, entries) in hooks.iter_mut() {
        let Some(entries) = entries.as_array_mut() else {
            continue;
        };
        let before = entries.len();
        match host {
            Host::Cursor => entries.retain(|handler| !is_ours(host, handler)),
            _ => {
                for group in entries.iter_mut() {
                    if let Some(handlers) = group.get_mut("hooks").and_then(Value::as_array_mut) {
                        handlers.retain(|handler| !is_ours(host, handler));
                    }
                }
                entries.retain(|group| {
                    group
                        .get("hooks")
                        .and_then(Value::as_array)
                        .is_none_or(|handlers| !handlers.is_empty())
                });
            }
        }
        if entries.is_empty() && before > 0 {
            emptied.push(event.clone());
        }
    }
    for event in emptied {
        hooks.remove(&event);
    }
    Ok(())
}

/// Pretty JSON with two-space indents and a final newline.
pub fn render(settings: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(&Value::Object(settings.clone()))
        .unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// What a settings file says about Gatehouse's hooks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inspection {
    /// Gatehouse's handlers, with their event.
    pub ours: Vec<(String, Value)>,
    /// A setting in this file that switches hooks off (`disableAllHooks`, ...).
    pub hooks_disabled: Option<String>,
}

impl Inspection {
    /// Events Gatehouse has a handler for.
    pub fn events(&self) -> Vec<&str> {
        self.ours.iter().map(|(event, _)| event.as_str()).collect()
    }

    /// Every Gatehouse handler under a before-tool event fails closed (Claude Code
    /// `onFailure: "block"`, Cursor `failClosed: true`).
    pub fn fail_closed(&self, host: Host) -> bool {
        let before: Vec<&Value> = self
            .ours
            .iter()
            .filter(|(event, _)| is_before_event(host, event))
            .map(|(_, handler)| handler)
            .collect();
        !before.is_empty()
            && before.iter().all(|handler| match host {
                Host::ClaudeCode => handler.get("onFailure") == Some(&Value::from("block")),
                Host::Cursor => handler.get("failClosed") == Some(&Value::Bool(true)),
                // Gemini and Codex have no such option: only an explicit deny blocks.
                Host::Gemini | Host::Codex => false,
            })
    }
}

/// The host's event(s) that run before a tool.
pub fn is_before_event(host: Host, event: &str) -> bool {
    match host {
        Host::ClaudeCode | Host::Codex => event == "PreToolUse",
        Host::Gemini => event == "BeforeTool",
        Host::Cursor => event.starts_with("before") || event == "preToolUse",
    }
}

/// Inspects one JSON settings file.
pub fn inspect(host: Host, path: &str, text: &str) -> Result<Inspection, SettingsError> {
    let settings = parse_object(path, Some(text))?;
    let mut inspection = Inspection::default();
    match host {
        Host::ClaudeCode => {
            if settings.get("disableAllHooks") == Some(&Value::Bool(true)) {
                inspection.hooks_disabled = Some(format!("{path}: \"disableAllHooks\": true"));
            }
        }
        Host::Gemini => {
            let settings = Value::Object(settings.clone());
            if settings.pointer("/hooksConfig/enabled") == Some(&Value::Bool(false)) {
                inspection.hooks_disabled =
                    Some(format!("{path}: \"hooksConfig\": {{\"enabled\": false}}"));
            } else if settings.pointer("/tools/enableHooks") == Some(&Value::Bool(false)) {
                inspection.hooks_disabled =
                    Some(format!("{path}: \"tools\": {{\"enableHooks\": false}}"));
            }
        }
        Host::Cursor | Host::Codex => {}
    }
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return Ok(inspection);
    };
    for (event, entries) in hooks {
        let Some(entries) = entries.as_array() else {
            continue;
        };
        for entry in entries {
            let handlers: Vec<&Value> = match host {
                Host::Cursor => vec![entry],
                _ => entry
                    .get("hooks")
                    .and_then(Value::as_array)
                    .map(|h| h.iter().collect())
                    .unwrap_or_default(),
            };
            for handler in handlers {
                if is_ours(host, handler) {
                    inspection.ours.push((event.clone(), handler.clone()));
                }
            }
        }
    }
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned() -> Vec<PlannedHook> {
        vec![
            PlannedHook {
                event: "PreToolUse".into(),
                matcher: Some("*".into()),
                handler: json!({"type": "command", "command": "/bin/gatehouse hook claude-code", "timeout": 150, "onFailure": "block"}),
            },
            PlannedHook {
                event: "PostToolUse".into(),
                matcher: Some("*".into()),
                handler: json!({"type": "command", "command": "/bin/gatehouse hook claude-code", "timeout": 30}),
            },
        ]
    }

    #[test]
    fn merge_keeps_everything_else_and_is_idempotent() {
        let original = r#"{
  "model": "opus",
  "hooks": {
    "PreToolUse": [
      {"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --check"}]}
    ]
  },
  "permissions": {"allow": ["Bash(ls)"]}
}"#;
        let once = merge(Host::ClaudeCode, "s.json", Some(original), &planned()).unwrap();
        let twice = merge(Host::ClaudeCode, "s.json", Some(&once), &planned()).unwrap();
        assert_eq!(once, twice);
        let v: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(v["permissions"]["allow"][0], "Bash(ls)");
        assert_eq!(v["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
            "prettier --check"
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "hooks", "permissions"], "key order kept");
        let inspection = inspect(Host::ClaudeCode, "s.json", &once).unwrap();
        assert_eq!(inspection.events(), ["PreToolUse", "PostToolUse"]);
        assert!(inspection.fail_closed(Host::ClaudeCode));

        let back = unmerge(Host::ClaudeCode, "s.json", &once).unwrap();
        let back: Value = serde_json::from_str(&back).unwrap();
        let original: Value = serde_json::from_str(original).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn a_hook_of_another_host_or_tool_is_not_ours() {
        assert!(is_ours(
            Host::Codex,
            &json!({"command": "'/x/gatehouse' hook codex --data-dir /d"})
        ));
        assert!(!is_ours(
            Host::Codex,
            &json!({"command": "/x/gatehouse hook codexx"})
        ));
        assert!(!is_ours(
            Host::Codex,
            &json!({"command": "/x/gatehouse hook claude-code"})
        ));
        assert!(!is_ours(
            Host::Codex,
            &json!({"command": "other hook codex"})
        ));
    }

    #[test]
    fn shapes_we_do_not_understand_are_refused_not_overwritten() {
        for text in [
            "[1]",
            "{\"hooks\": []}",
            "{\"hooks\": {\"PreToolUse\": {}}}",
            "{oops",
        ] {
            assert!(
                merge(Host::ClaudeCode, "s.json", Some(text), &planned()).is_err(),
                "{text}"
            );
        }
        assert!(merge(Host::Cursor, "h.json", Some("{\"version\": 2}"), &[]).is_err());
    }

    #[test]
    fn disable_all_hooks_is_reported() {
        let inspection =
            inspect(Host::ClaudeCode, "p.json", r#"{"disableAllHooks": true}"#).unwrap();
        assert!(inspection.hooks_disabled.is_some());
    }
}
