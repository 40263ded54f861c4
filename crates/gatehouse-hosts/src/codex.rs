//! Codex CLI's `config.toml`: Gatehouse's hooks as inline `[[hooks.<Event>]]` tables, and the
//! trust Codex requires before it runs a non-managed hook, recorded the way Codex records it.
//!
//! Codex keeps trust in the user's `config.toml` as
//! `[hooks.state."<source path>:<event label>:<group index>:<handler index>"]
//! trusted_hash = "sha256:<hex>"`, where the hash is SHA-256 over the canonical JSON (sorted
//! keys, no spaces) of the hook's normalised identity
//! `{"event_name": "pre_tool_use", "matcher"?: …, "hooks": [{"type": "command", "command": …,
//! "timeout": N, "async": false}]}` (codex-rs/hooks `discovery.rs`, `command_hook_hash` and
//! `version_for_toml`). A hook whose hash does not match — untrusted, or edited after it was
//! trusted — is skipped silently, so `doctor` recomputes and compares it.
//!
//! Edits go through `toml_edit`, so comments, order and formatting of everything else stay.

use sha2::{Digest, Sha256};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::Host;
use crate::event::canonical_json;
use crate::settings::{SettingsError, is_ours};

/// One hook Gatehouse installs into Codex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexHook {
    /// `PreToolUse` or `PostToolUse`.
    pub event: &'static str,
    pub command: String,
    pub timeout_sec: u64,
}

/// A trust entry to record in the user's `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEntry {
    pub key: String,
    pub trusted_hash: String,
}

/// Codex's key label for an event (`PreToolUse` → `pre_tool_use`).
pub fn event_label(event: &str) -> String {
    let mut label = String::with_capacity(event.len() + 4);
    for (i, c) in event.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            label.push('_');
        }
        label.extend(c.to_lowercase());
    }
    label
}

/// The hash Codex computes for a command hook with no matcher and no status message.
pub fn trusted_hash(event: &str, matcher: Option<&str>, command: &str, timeout_sec: u64) -> String {
    let mut handler = serde_json::Map::new();
    handler.insert("type".into(), "command".into());
    handler.insert("command".into(), command.into());
    handler.insert("timeout".into(), timeout_sec.max(1).into());
    handler.insert("async".into(), false.into());
    let mut identity = serde_json::Map::new();
    identity.insert("event_name".into(), event_label(event).into());
    if let Some(matcher) = matcher {
        identity.insert("matcher".into(), matcher.into());
    }
    identity.insert(
        "hooks".into(),
        serde_json::Value::Array(vec![serde_json::Value::Object(handler)]),
    );
    let canonical = canonical_json(&serde_json::Value::Object(identity));
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The trust key of one handler.
pub fn trust_key(source: &str, event: &str, group: usize, handler: usize) -> String {
    format!("{source}:{}:{group}:{handler}", event_label(event))
}

fn parse(path: &str, text: Option<&str>) -> Result<DocumentMut, SettingsError> {
    text.unwrap_or("")
        .parse::<DocumentMut>()
        .map_err(|err| SettingsError::NotToml {
            path: path.to_owned(),
            message: err.to_string().trim().to_owned(),
        })
}

fn shape(path: &str, key: &str, expected: &'static str) -> SettingsError {
    SettingsError::Shape {
        path: path.to_owned(),
        key: key.to_owned(),
        expected,
    }
}

fn hooks_table<'a>(path: &str, doc: &'a mut DocumentMut) -> Result<&'a mut Table, SettingsError> {
    let root = doc.as_table_mut();
    if !root.contains_key("hooks") {
        let mut table = Table::new();
        table.set_implicit(true);
        root.insert("hooks", Item::Table(table));
    }
    root.get_mut("hooks")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| shape(path, "hooks", "a table"))
}

/// The highest position of any table in `table` (headers are rendered in position order).
fn max_position(table: &Table) -> isize {
    let mut max = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        match item {
            Item::Table(t) => max = max.max(max_position(t)),
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    max = max.max(max_position(t));
                }
            }
            _ => {}
        }
    }
    max
}

/// Whether a `[[hooks.<Event>]]` group holds a Gatehouse handler.
fn group_is_ours(group: &Table) -> bool {
    let Some(handlers) = group.get("hooks") else {
        return false;
    };
    let commands: Vec<String> = match handlers {
        Item::ArrayOfTables(tables) => tables
            .iter()
            .filter_map(|t| t.get("command").and_then(Item::as_str).map(str::to_owned))
            .collect(),
        Item::Value(v) => v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_inline_table())
                    .filter_map(|t| t.get("command").and_then(|c| c.as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    commands
        .iter()
        .any(|c| is_ours(Host::Codex, &serde_json::json!({ "command": c })))
}

/// `text` (a Codex `config.toml`) with Gatehouse's hooks replaced by `hooks`, appended after
/// every other group. Returns the new text and the trust entries for them, keyed by
/// `source` (the absolute path of this file, as Codex names it).
pub fn merge(
    path: &str,
    source: &str,
    text: Option<&str>,
    hooks: &[CodexHook],
) -> Result<(String, Vec<TrustEntry>), SettingsError> {
    let mut doc = parse(path, text)?;
    remove_ours(path, &mut doc)?;
    // New tables get explicit positions after every existing one, so a re-install renders
    // exactly as the first install did.
    let mut next = max_position(doc.as_table()) + 1;
    let table = hooks_table(path, &mut doc)?;
    let mut trust = Vec::new();
    for hook in hooks {
        if !table.contains_key(hook.event) {
            table.insert(hook.event, Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let groups = table
            .get_mut(hook.event)
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| {
                shape(
                    path,
                    &format!("hooks.{}", hook.event),
                    "an array of tables ([[hooks.Event]])",
                )
            })?;
        let mut handler = Table::new();
        handler.insert("type", value("command"));
        handler.insert("command", value(hook.command.clone()));
        handler.insert("timeout", value(hook.timeout_sec as i64));
        handler.set_position(Some(next + 1));
        let mut handlers = ArrayOfTables::new();
        handlers.push(handler);
        let mut group = Table::new();
        group.set_position(Some(next));
        next += 2;
        group.insert("hooks", Item::ArrayOfTables(handlers));
        groups.push(group);
        let index = groups.len() - 1;
        trust.push(TrustEntry {
            key: trust_key(source, hook.event, index, 0),
            trusted_hash: trusted_hash(hook.event, None, &hook.command, hook.timeout_sec),
        });
    }
    Ok((doc.to_string(), trust))
}

/// Records trust entries in the user's `config.toml` (`[hooks.state."key"]`).
pub fn record_trust(
    path: &str,
    text: Option<&str>,
    entries: &[TrustEntry],
) -> Result<String, SettingsError> {
    let mut doc = parse(path, text)?;
    if let Some(state) = doc
        .get_mut("hooks")
        .and_then(|h| h.get_mut("state"))
        .and_then(Item::as_table_mut)
    {
        for entry in entries {
            state.remove(&entry.key);
        }
    }
    let first = max_position(doc.as_table()) + 1;
    let hooks = hooks_table(path, &mut doc)?;
    if !hooks.contains_key("state") {
        let mut state = Table::new();
        state.set_implicit(true);
        hooks.insert("state", Item::Table(state));
    }
    let state = hooks
        .get_mut("state")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| shape(path, "hooks.state", "a table"))?;
    for (position, entry) in (first..).zip(entries) {
        let mut record = Table::new();
        record.set_position(Some(position));
        record.insert("trusted_hash", value(entry.trusted_hash.clone()));
        state.insert(&entry.key, Item::Table(record));
    }
    Ok(doc.to_string())
}

/// `text` without Gatehouse's hook groups and without the trust entries under `keys`.
pub fn unmerge(path: &str, text: &str, keys: &[String]) -> Result<String, SettingsError> {
    let mut doc = parse(path, Some(text))?;
    remove_ours(path, &mut doc)?;
    if let Some(state) = doc
        .get_mut("hooks")
        .and_then(Item::as_table_mut)
        .and_then(|h| h.get_mut("state"))
        .and_then(Item::as_table_mut)
    {
        for key in keys {
            state.remove(key);
        }
    }
    if let Some(hooks) = doc.get_mut("hooks").and_then(Item::as_table_mut) {
        if hooks
            .get("state")
            .and_then(Item::as_table)
            .is_some_and(Table::is_empty)
        {
            hooks.remove("state");
        }
        if hooks.is_empty() {
            doc.as_table_mut().remove("hooks");
        }
    }
    Ok(doc.to_string())
}

fn remove_ours(path: &str, doc: &mut DocumentMut) -> Result<(), SettingsError> {
    let Some(hooks) = doc.get_mut("hooks") else {
        return Ok(());
    };
    let hooks = hooks
        .as_table_mut()
        .ok_or_else(|| shape(path, "hooks", "a table"))?;
    let mut emptied = Vec::new();
    for (event, item) in hooks.iter_mut() {
        if let Some(groups) = item.as_array_of_tables_mut() {
            let before = groups.len();
            groups.retain(|group| !group_is_ours(group));
            if groups.is_empty() && before > 0 {
                emptied.push(event.get().to_owned());
            }
        }
    }
    for event in emptied {
        hooks.remove(&event);
    }
    Ok(())
}

/// One Gatehouse hook found in a Codex `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHook {
    pub event: String,
    pub key: String,
    pub command: String,
    pub timeout_sec: u64,
    /// The hash Codex will compute for it now.
    pub current_hash: String,
}

/// Gatehouse's hooks in a Codex `config.toml` (whose absolute path is `source`), and whether
/// the file turns hooks off (`[features] hooks = false`).
pub fn inspect(
    path: &str,
    source: &str,
    text: &str,
) -> Result<(Vec<FoundHook>, Option<String>), SettingsError> {
    let doc = parse(path, Some(text))?;
    let mut disabled = None;
    for feature in ["hooks", "codex_hooks"] {
        if doc
            .get("features")
            .and_then(|f| f.get(feature))
            .and_then(Item::as_bool)
            == Some(false)
        {
            disabled = Some(format!("{path}: [features] {feature} = false"));
        }
    }
    let mut found = Vec::new();
    let Some(hooks) = doc.get("hooks").and_then(Item::as_table) else {
        return Ok((found, disabled));
    };
    for (event, item) in hooks.iter() {
        let Some(groups) = item.as_array_of_tables() else {
            continue;
        };
        for (group_index, group) in groups.iter().enumerate() {
            if group.get("matcher").is_some() || !group_is_ours(group) {
                continue;
            }
            let Some(handlers) = group.get("hooks").and_then(Item::as_array_of_tables) else {
                continue;
            };
            for (handler_index, handler) in handlers.iter().enumerate() {
                let Some(command) = handler.get("command").and_then(Item::as_str) else {
                    continue;
                };
                let timeout_sec = handler
                    .get("timeout")
                    .and_then(Item::as_integer)
                    .map_or(600, |t| t.max(1) as u64);
                found.push(FoundHook {
                    event: event.to_owned(),
                    key: trust_key(source, event, group_index, handler_index),
                    command: command.to_owned(),
                    timeout_sec,
                    current_hash: trusted_hash(event, None, command, timeout_sec),
                });
            }
        }
    }
    Ok((found, disabled))
}

/// Whether Codex trusts `project` (`[projects."<dir>"] trust_level = "trusted"` in the user's
/// `config.toml`): Codex loads a project's `.codex/config.toml`, and so its hooks, only then —
/// a project install in an untrusted project protects nothing. The directory is matched as
/// written and as canonicalised by the caller.
pub fn project_trusted(user_config: &str, projects: &[&std::path::Path]) -> bool {
    let Ok(doc) = user_config.parse::<DocumentMut>() else {
        return false;
    };
    let Some(table) = doc.get("projects").and_then(Item::as_table_like) else {
        return false;
    };
    projects.iter().any(|project| {
        let key = project.to_string_lossy();
        table
            .get(&key)
            .and_then(Item::as_table_like)
            .and_then(|entry| entry.get("trust_level"))
            .and_then(Item::as_str)
            == Some("trusted")
    })
}

/// The trusted hash recorded for `key` in the user's `config.toml`, if any.
pub fn recorded_trust(path: &str, text: &str, key: &str) -> Result<Option<String>, SettingsError> {
    let doc = parse(path, Some(text))?;
    Ok(doc
        .get("hooks")
        .and_then(|h| h.get("state"))
        .and_then(|s| s.get(key))
        .and_then(|e| e.get("trusted_hash"))
        .and_then(Item::as_str)
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_project_is_trusted_only_by_its_own_trusted_entry() {
        let config = r#"
model = "x"
[projects."/work/app"]
trust_level = "trusted"
[projects."/work/other"]
trust_level = "untrusted"
"#;
        let app = std::path::Path::new("/work/app");
        let other = std::path::Path::new("/work/other");
        let elsewhere = std::path::Path::new("/work/elsewhere");
        assert!(project_trusted(config, &[app]));
        assert!(!project_trusted(config, &[other]));
        assert!(!project_trusted(config, &[elsewhere]));
        assert!(
            project_trusted(config, &[elsewhere, app]),
            "any spelling of the directory"
        );
        assert!(!project_trusted("not toml [", &[app]));
        assert!(!project_trusted("", &[app]));
    }
    use super::*;

    fn hooks() -> Vec<CodexHook> {
        vec![
            CodexHook {
                event: "PreToolUse",
                command: "/bin/gatehouse hook codex".into(),
                timeout_sec: 150,
            },
            CodexHook {
                event: "PostToolUse",
                command: "/bin/gatehouse hook codex".into(),
                timeout_sec: 30,
            },
        ]
    }

    #[test]
    fn the_trust_hash_matches_codex_for_a_known_hook() {
        // Canonical identity as Codex hashes it, spelled out: sorted keys, no spaces.
        let expected = {
            let text = r#"{"event_name":"pre_tool_use","hooks":[{"async":false,"command":"echo hello","timeout":600,"type":"command"}]}"#;
            let digest = Sha256::digest(text.as_bytes());
            format!(
                "sha256:{}",
                digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        };
        assert_eq!(
            trusted_hash("PreToolUse", None, "echo hello", 600),
            expected
        );
        assert_eq!(event_label("PostToolUse"), "post_tool_use");
    }

    #[test]
    fn merge_appends_after_the_users_hooks_keeps_comments_and_trusts_by_position() {
        let original = "# my codex config\nmodel = \"o4\" # keep me\n\n[[hooks.PreToolUse]]\nmatcher = \"Bash\"\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"mine\"\n";
        let (merged, trust) =
            merge("c.toml", "/h/.codex/config.toml", Some(original), &hooks()).unwrap();
        assert!(
            merged.starts_with("# my codex config\nmodel = \"o4\" # keep me\n"),
            "{merged}"
        );
        assert_eq!(trust[0].key, "/h/.codex/config.toml:pre_tool_use:1:0");
        assert_eq!(trust[1].key, "/h/.codex/config.toml:post_tool_use:0:0");
        let (again, trust_again) =
            merge("c.toml", "/h/.codex/config.toml", Some(&merged), &hooks()).unwrap();
        assert_eq!(again, merged, "idempotent");
        assert_eq!(trust_again, trust);

        let trusted = record_trust("c.toml", Some(&merged), &trust).unwrap();
        let (remerged, retrust) =
            merge("c.toml", "/h/.codex/config.toml", Some(&trusted), &hooks()).unwrap();
        assert_eq!(
            record_trust("c.toml", Some(&remerged), &retrust).unwrap(),
            trusted,
            "installing over an install (with its trust) changes nothing"
        );
        let (found, disabled) = inspect("c.toml", "/h/.codex/config.toml", &trusted).unwrap();
        assert_eq!(disabled, None);
        assert_eq!(found.len(), 2);
        for hook in &found {
            assert_eq!(
                recorded_trust("c.toml", &trusted, &hook.key)
                    .unwrap()
                    .as_deref(),
                Some(hook.current_hash.as_str())
            );
        }
        let keys: Vec<String> = trust.iter().map(|t| t.key.clone()).collect();
        let back = unmerge("c.toml", &trusted, &keys).unwrap();
        assert_eq!(back.parse::<DocumentMut>().unwrap().to_string(), back);
        assert!(back.contains("command = \"mine\""));
        assert!(!back.contains("gatehouse"));
        assert!(!back.contains("state"));
    }

    #[test]
    fn features_hooks_false_is_reported() {
        let (_, disabled) = inspect("c.toml", "/c", "[features]\nhooks = false\n").unwrap();
        assert!(disabled.is_some());
        assert!(merge("c.toml", "/c", Some("hooks = 3\n"), &hooks()).is_err());
        assert!(merge("c.toml", "/c", Some("[oops\n"), &hooks()).is_err());
    }
}
