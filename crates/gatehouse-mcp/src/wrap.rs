//! `gatehouse mcp wrap|unwrap`: rewriting an MCP client's server list so every stdio server
//! starts through `gatehouse mcp stdio` (keeping its command, arguments and environment), and
//! back. Pure: text in, text out; the binary reads, backs up and writes the files.
//!
//! A wrapped entry: `command` = the gatehouse binary, `args` = `["mcp", "stdio", "--name",
//! NAME, "--", <original command>, <original args>...]`, every other key (env, cwd, type...)
//! unchanged. Wrapping is idempotent (a wrapped entry is left alone); remote servers (`url`,
//! `httpUrl`, `serverUrl`) are listed as skipped (front them with `gatehouse mcp http`).
//! Unwrap is byte-exact when the file is still what wrap wrote (the backup is restored);
//! otherwise each wrapped entry is turned back into its original command.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// MCP clients whose server list can be wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpClient {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Codex,
    Gemini,
}

impl McpClient {
    pub fn parse(name: &str) -> Option<McpClient> {
        Some(match name {
            "claude-code" => McpClient::ClaudeCode,
            "claude-desktop" => McpClient::ClaudeDesktop,
            "cursor" => McpClient::Cursor,
            "codex" => McpClient::Codex,
            "gemini" => McpClient::Gemini,
            _ => return None,
        })
    }

    /// The user-level file holding the client's MCP servers, under `home`.
    pub fn config_path(self, home: &Path) -> PathBuf {
        match self {
            McpClient::ClaudeCode => home.join(".claude.json"),
            McpClient::ClaudeDesktop => home.join(".config/Claude/claude_desktop_config.json"),
            McpClient::Cursor => home.join(".cursor/mcp.json"),
            McpClient::Codex => home.join(".codex/config.toml"),
            McpClient::Gemini => home.join(".gemini/settings.json"),
        }
    }

    fn is_toml(self) -> bool {
        self == McpClient::Codex
    }
}

/// What a rewrite did, per server name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Not stdio (remote), or not understood: `(name, why)`.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("the config is not valid {format}: {message}")]
    Parse {
        format: &'static str,
        message: String,
    },
    #[error("`{key}` is not a table/object of servers")]
    Shape { key: &'static str },
}

/// The name given to `--name`: letters, digits, `-` and `_`, no `__`.
pub fn proxy_name(server: &str) -> String {
    let mut name: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    if name.is_empty() {
        name.push_str("server");
    }
    name
}

fn wrapped_args(name: &str, command: &str, args: &[String]) -> Vec<String> {
    let mut out = vec![
        "mcp".to_owned(),
        "stdio".to_owned(),
        "--name".to_owned(),
        proxy_name(name),
        "--".to_owned(),
        command.to_owned(),
    ];
    out.extend(args.iter().cloned());
    out
}

/// The original command line of a wrapped entry's args, if they are wrapped.
fn original(args: &[String]) -> Option<(String, Vec<String>)> {
    if args.first().map(String::as_str) != Some("mcp")
        || args.get(1).map(String::as_str) != Some("stdio")
    {
        return None;
    }
    let dash = args.iter().position(|a| a == "--")?;
    let command = args.get(dash + 1)?.clone();
    Some((command, args[dash + 2..].to_vec()))
}

fn is_gatehouse(command: &str, gatehouse: &str) -> bool {
    command == gatehouse
        || Path::new(command)
            .file_name()
            .is_some_and(|n| n == "gatehouse")
}

/// Wraps every stdio server of `text` (the client's config) through `gatehouse`.
pub fn wrap(client: McpClient, text: &str, gatehouse: &str) -> Result<(String, Report), WrapError> {
    rewrite(client, text, gatehouse, true)
}

/// Turns every wrapped server of `text` back into its original command.
pub fn unwrap(
    client: McpClient,
    text: &str,
    gatehouse: &str,
) -> Result<(String, Report), WrapError> {
    rewrite(client, text, gatehouse, false)
}

/// Unwrap with the backup wrap made: the backup's bytes when `current` is still exactly what
/// wrapping the backup gives, else [`unwrap`].
pub fn unwrap_with_backup(
    client: McpClient,
    current: &str,
    backup: Option<&str>,
    gatehouse: &str,
) -> Result<(String, Report), WrapError> {
    if let Some(backup) = backup
        && let Ok((wrapped, report)) = wrap(client, backup, gatehouse)
        && wrapped == current
    {
        let restored = Report {
            changed: report.changed,
            unchanged: report.unchanged,
            skipped: report.skipped,
        };
        return Ok((backup.to_owned(), restored));
    }
    unwrap(client, current, gatehouse)
}

fn rewrite(
    client: McpClient,
    text: &str,
    gatehouse: &str,
    wrapping: bool,
) -> Result<(String, Report), WrapError> {
    if client.is_toml() {
        rewrite_toml(text, gatehouse, wrapping)
    } else {
        rewrite_json(text, gatehouse, wrapping)
    }
}

fn rewrite_json(
    text: &str,
    gatehouse: &str,
    wrapping: bool,
) -> Result<(String, Report), WrapError> {
    let mut root: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(text).map_err(|e| WrapError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?
    };
    let mut report = Report::default();
    let Some(servers) = root.get_mut("mcpServers") else {
        return Ok((text.to_owned(), report));
    };
    let servers = servers
        .as_object_mut()
        .ok_or(WrapError::Shape { key: "mcpServers" })?;
    for (name, entry) in servers.iter_mut() {
        let Some(entry) = entry.as_object_mut() else {
            report.skipped.push((name.clone(), "not an object".into()));
            continue;
        };
        let Some(command) = entry
            .get("command")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            let why = if ["url", "httpUrl", "serverUrl"]
                .iter()
                .any(|k| entry.contains_key(*k))
            {
                "a remote server: front it with `gatehouse mcp http`"
            } else {
                "no command"
            };
            report.skipped.push((name.clone(), why.into()));
            continue;
        };
        let args: Option<Vec<String>> = match entry.get("args") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => None,
        };
        let Some(args) = args else {
            report
                .skipped
                .push((name.clone(), "args are not strings".into()));
            continue;
        };
        let wrapped = is_gatehouse(&command, gatehouse) && original(&args).is_some();
        match (wrapping, wrapped) {
            (true, false) => {
                entry.insert("command".into(), Value::String(gatehouse.to_owned()));
                let new: Vec<Value> = wrapped_args(name, &command, &args)
                    .into_iter()
                    .map(Value::String)
                    .collect();
                entry.insert("args".into(), Value::Array(new));
                report.changed.push(name.clone());
            }
            (false, true) => {
                if let Some((command, args)) = original(&args) {
                    entry.insert("command".into(), Value::String(command));
                    entry.insert(
                        "args".into(),
                        Value::Array(args.into_iter().map(Value::String).collect()),
                    );
                    report.changed.push(name.clone());
                }
            }
            _ => report.unchanged.push(name.clone()),
        }
    }
    if report.changed.is_empty() {
        return Ok((text.to_owned(), report));
    }
    let mut out = serde_json::to_string_pretty(&root).unwrap_or_default();
    out.push('\n');
    Ok((out, report))
}

fn rewrite_toml(
    text: &str,
    gatehouse: &str,
    wrapping: bool,
) -> Result<(String, Report), WrapError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| WrapError::Parse {
                format: "TOML",
                message: e.to_string(),
            })?;
    let mut report = Report::default();
    let Some(servers) = doc.get_mut("mcp_servers") else {
        return Ok((text.to_owned(), report));
    };
    let servers = servers
        .as_table_like_mut()
        .ok_or(WrapError::Shape { key: "mcp_servers" })?;
    for (name, entry) in servers.iter_mut() {
        let name = name.get().to_owned();
        let Some(entry) = entry.as_table_like_mut() else {
            report.skipped.push((name, "not a table".into()));
            continue;
        };
        let Some(command) = entry
            .get("command")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
        else {
            let why = if entry.contains_key("url") {
                "a remote server: front it with `gatehouse mcp http`"
            } else {
                "no command"
            };
            report.skipped.push((name, why.into()));
            continue;
        };
        let args: Option<Vec<String>> = match entry.get("args") {
            None => Some(Vec::new()),
            Some(item) => item
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect()),
        };
        let Some(args) = args else {
            report.skipped.push((name, "args are not strings".into()));
            continue;
        };
        let wrapped = is_gatehouse(&command, gatehouse) && original(&args).is_some();
        let new = match (wrapping, wrapped) {
            (true, false) => Some((gatehouse.to_owned(), wrapped_args(&name, &command, &args))),
            (false, true) => original(&args),
            _ => None,
        };
        match new {
            Some((command, args)) => {
                entry.insert("command", toml_edit::value(command));
                let mut array = toml_edit::Array::new();
                for arg in args {
                    array.push(arg);
                }
                entry.insert("args", toml_edit::value(array));
                report.changed.push(name);
            }
            None => report.unchanged.push(name),
        }
    }
    if report.changed.is_empty() {
        return Ok((text.to_owned(), report));
    }
    Ok((doc.to_string(), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GH: &str = "/usr/local/bin/gatehouse";
    const CLAUDE: &str = r#"{
    "numStartups": 3,
    "mcpServers": {
        "fs": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/p"], "env": {"A": "1"}},
        "remote": {"type": "http", "url": "https://example.com/mcp"},
        "my.git": {"command": "uvx", "args": ["mcp-server-git"]}
    },
    "zzz": true
}"#;

    #[test]
    fn wrap_keeps_command_args_env_and_other_keys_and_is_idempotent() {
        let (wrapped, report) = wrap(McpClient::ClaudeCode, CLAUDE, GH).unwrap();
        assert_eq!(report.changed, ["fs", "my.git"]);
        assert_eq!(report.skipped.len(), 1);
        let v: Value = serde_json::from_str(&wrapped).unwrap();
        let fs = &v["mcpServers"]["fs"];
        assert_eq!(fs["command"], GH);
        assert_eq!(
            fs["args"],
            serde_json::json!([
                "mcp",
                "stdio",
                "--name",
                "fs",
                "--",
                "npx",
                "-y",
                "@modelcontextprotocol/server-filesystem",
                "/p"
            ])
        );
        assert_eq!(fs["env"]["A"], "1");
        assert_eq!(fs["type"], "stdio");
        assert_eq!(v["mcpServers"]["my.git"]["args"][3], "my-git");
        assert_eq!(v["numStartups"], 3);
        let (again, report) = wrap(McpClient::ClaudeCode, &wrapped, GH).unwrap();
        assert_eq!(again, wrapped);
        assert!(report.changed.is_empty());
    }

    #[test]
    fn unwrap_is_byte_exact_with_the_backup_and_semantic_without() {
        let (wrapped, _) = wrap(McpClient::ClaudeCode, CLAUDE, GH).unwrap();
        let (restored, _) =
            unwrap_with_backup(McpClient::ClaudeCode, &wrapped, Some(CLAUDE), GH).unwrap();
        assert_eq!(restored, CLAUDE);
        // Edited since: each entry is unwrapped instead.
        let edited = wrapped.replace("\"zzz\": true", "\"zzz\": false");
        let (unwrapped, report) =
            unwrap_with_backup(McpClient::ClaudeCode, &edited, Some(CLAUDE), GH).unwrap();
        assert_eq!(report.changed.len(), 2);
        let v: Value = serde_json::from_str(&unwrapped).unwrap();
        assert_eq!(v["mcpServers"]["fs"]["command"], "npx");
        assert_eq!(v["mcpServers"]["fs"]["args"][2], "/p");
        assert_eq!(v["zzz"], false);
    }

    #[test]
    fn codex_toml_keeps_its_formatting() {
        let codex = "# my codex config\nmodel = \"o4\"\n\n[mcp_servers.fs]\ncommand = \"npx\"\nargs = [\"-y\", \"server-filesystem\"]\nenv = { \"A\" = \"1\" }\n\n[mcp_servers.remote]\nurl = \"https://x\"\n";
        let (wrapped, report) = wrap(McpClient::Codex, codex, GH).unwrap();
        assert_eq!(report.changed, ["fs"]);
        assert!(wrapped.starts_with("# my codex config\nmodel = \"o4\"\n"));
        assert!(wrapped.contains(r#"command = "/usr/local/bin/gatehouse""#));
        assert!(wrapped.contains(r#"env = { "A" = "1" }"#));
        let (same, _) = wrap(McpClient::Codex, &wrapped, GH).unwrap();
        assert_eq!(same, wrapped);
        let (back, _) = unwrap_with_backup(McpClient::Codex, &wrapped, Some(codex), GH).unwrap();
        assert_eq!(back, codex);
        let (semantic, _) = unwrap(McpClient::Codex, &wrapped, GH).unwrap();
        assert!(semantic.contains(r#"command = "npx""#));
    }

    #[test]
    fn a_config_without_servers_is_left_alone() {
        let (out, report) = wrap(McpClient::Cursor, "{\"x\": 1}", GH).unwrap();
        assert_eq!(out, "{\"x\": 1}");
        assert_eq!(report, Report::default());
        assert!(wrap(McpClient::Cursor, "{not json", GH).is_err());
    }
}
