//! A Claude Code `settings.json` permission list as Gatehouse policy TOML
//! (`gatehouse policy import-claude`).
//!
//! [`import`] reads `permissions.allow` / `ask` / `deny` (and `defaultMode`) and writes one rule
//! per entry: deny → `reject`, ask → `pause`, allow → `allow` (Claude Code's precedence, deny
//! before ask before allow, is Gatehouse's too). Pure: text in, TOML and warnings out.
//!
//! Translations, each erring on the side of the effect (a reject or pause may match more than
//! Claude Code did, an allow never more):
//! - `Bash(npm run test:*)` / `Bash(npm run test *)`: a `command` rule on the parsed command —
//!   program, first operands, flags in normalised spelling — so wrappers, absolute paths and
//!   chaining do not slip past a deny, and an allow covers each simple command only.
//! - `Bash(git push)` (exact): an allow matches the whole command text exactly; a deny or ask is
//!   the structural prefix rule (it also catches `git push --force`).
//! - `Read(...)`, `Edit(...)`, `Write(...)`: `path` rules for the file tools (gitignore-style
//!   patterns: `//abs`, `~/home`, `/project-root`, `relative`); deny and ask also cover the paths
//!   shell commands name.
//! - `WebFetch(domain:x)`: a `host` rule; bare tool names and `mcp__server__tool` are tool rules.
//!
//! Anything else is never dropped silently: it is written as `# not imported: ... (why)` and
//! returned as a warning.

use std::fmt::Write as _;

use serde_json::Value;

use crate::Policy;
use crate::shell::{self, WordKind};

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Start the policy from `builtin:developer` (`include = ["builtin:developer"]`).
    pub include_builtin: bool,
    /// The project root, for Claude Code's `/path` patterns (relative to the settings file's
    /// project); without it they match at any depth.
    pub project_root: Option<String>,
    /// Named in the header comment.
    pub source_name: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            include_builtin: true,
            project_root: None,
            source_name: "settings.json".into(),
        }
    }
}

/// The imported policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Policy TOML; it loads with [`Policy::from_toml`].
    pub toml: String,
    /// One line per entry that was not imported, or imported with a caveat.
    pub warnings: Vec<String>,
    /// How many rules were written.
    pub rules: usize,
}

/// Why a settings file could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// The file tools Claude Code's `Read` rules apply to.
const READ_TOOLS: &[&str] = &["Read", "Glob", "Grep", "LS", "NotebookRead"];
/// The file tools Claude Code's `Edit` rules apply to.
const EDIT_TOOLS: &[&str] = &["Edit", "Write", "MultiEdit", "NotebookEdit"];
/// Shell tools a deny or ask also covers.
const SHELL_TOOL: &str = "Bash";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Deny,
    Ask,
    Allow,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Deny => "deny",
            List::Ask => "ask",
            List::Allow => "allow",
        }
    }

    fn effect(self) -> &'static str {
        match self {
            List::Deny => "reject",
            List::Ask => "pause",
            List::Allow => "allow",
        }
    }
}

/// One rule's body: TOML key/value lines after `id`, `effect` and `reason`.
type Body = Vec<String>;

/// Converts a Claude Code settings file into policy TOML.
pub fn import(settings: &str, options: &ImportOptions) -> Result<Import, ImportError> {
    let value: Value = serde_json::from_str(settings)?;
    let Value::Object(root) = value else {
        return Err(ImportError::Shape(
            "a settings file is a JSON object".into(),
        ));
    };
    let permissions = match root.get("permissions") {
        Some(Value::Object(permissions)) => permissions.clone(),
        Some(_) => {
            return Err(ImportError::Shape(
                "`permissions` must be an object with allow/ask/deny arrays".into(),
            ));
        }
        None => Default::default(),
    };

    let mut out = String::new();
    let mut warnings = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let _ = writeln!(
        out,
        "# Imported from {} by `gatehouse policy import-claude`.\n\
         # Claude Code deny -> reject, ask -> pause, allow -> allow; as in Claude Code, a deny\n\
         # beats an ask, which beats an allow. Shell rules match the parsed command, so wrappers,\n\
         # absolute paths and chaining do not slip past them.",
        one_line(&options.source_name)
    );
    if options.include_builtin {
        out.push_str("include = [\"builtin:developer\"]\n");
    }

    let mut extra_rules: Vec<(String, &'static str, String, Body)> = Vec::new();
    match permissions.get("defaultMode").and_then(Value::as_str) {
        None | Some("default") => {}
        Some("acceptEdits") => extra_rules.push((
            "claude-accept-edits".into(),
            "allow",
            "Claude Code defaultMode acceptEdits: file edits inside the project".into(),
            vec![
                format!("tool = {}", toml_array(EDIT_TOOLS)),
                "path = { within = \"$CWD\" }".into(),
            ],
        )),
        Some(mode @ ("plan" | "bypassPermissions" | "dontAsk")) => skipped.push(format!(
            "defaultMode {mode} (Gatehouse keeps its own default, `pause` unless set; \
             set `default` yourself if you mean it)"
        )),
        Some(other) => skipped.push(format!("defaultMode {other} (unknown mode)")),
    }
    for key in permissions.keys() {
        if !matches!(key.as_str(), "allow" | "ask" | "deny" | "defaultMode") {
            skipped.push(format!(
                "permissions.{key} (no Gatehouse equivalent; paths go in `path` conditions)"
            ));
        }
    }

    let mut rules = 0usize;
    let mut bodies: Vec<(String, &'static str, String, Body)> = Vec::new();
    for list in [List::Deny, List::Ask, List::Allow] {
        let entries = match permissions.get(list.key()) {
            None => continue,
            Some(Value::Array(entries)) => entries,
            Some(_) => {
                skipped.push(format!("permissions.{} (not an array)", list.key()));
                continue;
            }
        };
        for (index, entry) in entries.iter().enumerate() {
            let Some(text) = entry.as_str() else {
                skipped.push(format!(
                    "permissions.{}[{index}] (not a string: {entry})",
                    list.key()
                ));
                continue;
            };
            match translate(text, list, options) {
                Ok((body, caveat)) => {
                    if let Some(caveat) = caveat {
                        warnings.push(format!("{text}: {caveat}"));
                    }
                    bodies.push((
                        format!("claude-{}-{}", list.key(), index + 1),
                        list.effect(),
                        format!("Claude Code {}: {text}", list.key()),
                        body,
                    ));
                }
                Err(why) => skipped.push(format!("{} {text} ({why})", list.key())),
            }
        }
    }
    bodies.extend(extra_rules);

    for (id, effect, reason, body) in bodies {
        let mut rule = String::new();
        let _ = writeln!(rule, "\n[[rules]]");
        let _ = writeln!(rule, "id = {}", toml_string(&id));
        let _ = writeln!(rule, "effect = \"{effect}\"");
        let _ = writeln!(rule, "reason = {}", toml_string(&reason));
        for line in &body {
            let _ = writeln!(rule, "{line}");
        }
        // Each rule must load on its own; one that does not is reported, never written broken.
        match Policy::from_toml(&rule) {
            Ok(_) => {
                out.push_str(&rule);
                rules += 1;
            }
            Err(error) => skipped.push(format!(
                "{reason} (the translation did not load: {})",
                one_line(&error.to_string())
            )),
        }
    }

    if !skipped.is_empty() {
        out.push('\n');
        for line in &skipped {
            let _ = writeln!(out, "# not imported: {}", one_line(line));
        }
    }
    warnings.extend(skipped.into_iter().map(|s| format!("not imported: {s}")));
    Ok(Import {
        toml: out,
        warnings,
        rules,
    })
}

/// One permission rule → the body of a Gatehouse rule, and a caveat worth telling the user.
fn translate(
    text: &str,
    list: List,
    options: &ImportOptions,
) -> Result<(Body, Option<String>), String> {
    let text = text.trim();
    let (tool, spec) = match text.split_once('(') {
        Some((tool, rest)) => {
            let spec = rest.strip_suffix(')').ok_or("unbalanced parentheses")?;
            (tool.trim(), Some(spec))
        }
        None => (text, None),
    };
    if tool.is_empty()
        || !tool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.*".contains(c))
    {
        return Err("not a tool name".into());
    }
    match (tool, spec) {
        (_, Some("")) => Err("empty specifier".into()),
        ("Bash", Some(spec)) => bash(spec, list),
        ("Read", Some(spec)) => path_rule(spec, READ_TOOLS, list, options),
        ("Edit" | "Write" | "MultiEdit" | "NotebookEdit", Some(spec)) => {
            path_rule(spec, EDIT_TOOLS, list, options)
        }
        ("WebFetch", Some(spec)) => {
            let domain = spec
                .strip_prefix("domain:")
                .ok_or("WebFetch rules name a domain: WebFetch(domain:example.com)")?
                .trim();
            if domain.is_empty() || domain.contains(char::is_whitespace) {
                return Err("empty or invalid domain".into());
            }
            let tools: &[&str] = match list {
                List::Allow => &["WebFetch"],
                _ => &["WebFetch", SHELL_TOOL],
            };
            Ok((
                vec![
                    format!("tool = {}", toml_array(tools)),
                    format!("host = {}", toml_array(&[domain])),
                ],
                (list != List::Allow).then(|| {
                    "also covers shell commands that connect to it (curl, wget, ...)".to_owned()
                }),
            ))
        }
        (_, Some(_)) => Err(format!(
            "Gatehouse has no equivalent for {tool}(...) specifiers"
        )),
        ("Read", None) => Ok((vec![format!("tool = {}", toml_array(READ_TOOLS))], None)),
        ("Edit" | "Write", None) => Ok((vec![format!("tool = {}", toml_array(EDIT_TOOLS))], None)),
        (name, None) => {
            // `mcp__server` names every tool of the server.
            let glob = match name.strip_prefix("mcp__") {
                Some(rest) if !rest.contains("__") => format!("{name}__*"),
                _ => name.to_owned(),
            };
            Ok((vec![format!("tool = {}", toml_string(&glob))], None))
        }
    }
}

/// `Bash(...)`: prefix (`cmd:*`, `cmd *`), exact, or with wildcards inside.
fn bash(spec: &str, list: List) -> Result<(Body, Option<String>), String> {
    let spec = spec.trim();
    let (body, prefix) = if let Some(body) = spec.strip_suffix(":*") {
        (body.trim_end(), true)
    } else if let Some(body) = spec.strip_suffix(" *").filter(|b| !b.contains('*')) {
        (body.trim_end(), true)
    } else {
        (spec, false)
    };
    if body.is_empty() || body == "*" {
        return Ok((vec![format!("tool = {}", toml_string(SHELL_TOOL))], None));
    }
    let words: Vec<&str> = body.split_whitespace().collect();
    let wild_at = words.iter().position(|w| w.contains('*'));
    if wild_at == Some(0) {
        return match list {
            List::Allow => Err("an allow whose program is a wildcard cannot be made safe".into()),
            // No `tool`: any tool whose `/command` matches.
            _ => Ok((
                vec![
                    "[[rules.args]]".into(),
                    "pointer = \"/command\"".into(),
                    format!("regex = {}", toml_string(&wildcard_regex(&words))),
                ],
                Some("matched on the command text, as Claude Code does".into()),
            )),
        };
    }
    let literal_words = words.get(..wild_at.unwrap_or(words.len())).unwrap_or(&[]);
    let rest = words.get(wild_at.unwrap_or(words.len())..).unwrap_or(&[]);
    let literal = literal_words.join(" ");

    let parsed = shell::parse(&literal);
    let [command] = parsed.commands.as_slice() else {
        // A compound (`cd x && make`): only an exact allow can be matched, on the text.
        if list == List::Allow && !prefix && wild_at.is_none() {
            return Ok((exact_text(&words), None));
        }
        return Err("a compound command (&&, ;, |) cannot be matched per command".into());
    };
    if parsed.is_opaque() {
        return Err(format!(
            "the command cannot be analysed statically ({})",
            parsed.opaque.join("; ")
        ));
    }
    if list == List::Allow && !prefix && wild_at.is_none() {
        // Exactly this command line, nothing appended.
        return Ok((exact_text(&words), None));
    }
    if list == List::Allow && !command.trusted_path {
        return Ok((
            prefix_text(literal_words),
            Some(format!(
                "`{}` is named by a path; allowed on the command text, without shell operators",
                literal_words.first().copied().unwrap_or_default()
            )),
        ));
    }

    let mut condition = vec![format!(
        "program = {}",
        toml_string(&glob_escape(&command.program))
    )];
    let mut prefix_globs = Vec::new();
    let mut flags = Vec::new();
    let mut args = Vec::new();
    let mut in_prefix = true;
    for word in &command.words {
        let Some(text) = word.text.as_deref() else {
            return Err("a word is not static".into());
        };
        match word.kind {
            WordKind::Positional if in_prefix => prefix_globs.push(glob_escape(text)),
            WordKind::Positional | WordKind::Value => {
                in_prefix = false;
                args.push(glob_escape(text));
            }
            WordKind::Flag => {
                in_prefix = false;
                if text != "--" {
                    flags.push(text.to_owned());
                }
            }
        }
    }
    // Words after a wildcard: flags must be there, other words somewhere.
    for word in rest {
        if word.contains('*') && word.chars().all(|c| c == '*') {
            continue;
        }
        if word.starts_with('-') && !word.contains('*') {
            let normalised = shell::parse(&format!("{} {word}", command.program));
            for w in normalised
                .commands
                .first()
                .map(|c| c.words.as_slice())
                .unwrap_or(&[])
            {
                if w.kind == WordKind::Flag
                    && let Some(text) = &w.text
                {
                    flags.push(text.clone());
                }
            }
        } else {
            args.push(word.replace(['[', ']', '{', '}', '?'], ""));
        }
    }
    let mut caveat = None;
    if args.len() > 1 && list == List::Allow {
        return Err(
            "an allow with several arguments after the prefix cannot be matched exactly".into(),
        );
    }
    if !prefix_globs.is_empty() {
        condition.push(format!("args_prefix = {}", toml_array(&prefix_globs)));
    }
    if !flags.is_empty() {
        condition.push(format!("has_all_flags = {}", toml_array(&flags)));
    }
    if !args.is_empty() {
        condition.push(format!("arg = {}", toml_array(&args)));
        if args.len() > 1 {
            caveat = Some("matches when any one of the later words is present".to_owned());
        }
    }
    if !prefix && list != List::Allow {
        caveat =
            Some("also matches the command with more arguments (safer for a deny or ask)".into());
    }
    // No `tool`: a command rule applies to every shell tool of the policy.
    Ok((
        vec![format!("command = {{ {} }}", condition.join(", "))],
        caveat,
    ))
}

/// An allow of exactly this command text (any spacing, nothing appended).
fn exact_text(words: &[&str]) -> Body {
    let pattern = format!(
        "^\\s*{}\\s*$",
        words
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("\\s+")
    );
    vec![
        format!("tool = {}", toml_string(SHELL_TOOL)),
        "[[rules.args]]".into(),
        "pointer = \"/command\"".into(),
        format!("regex = {}", toml_string(&pattern)),
    ]
}

/// An allow of a command text prefix followed by plain words (no shell operators, quotes,
/// substitutions or redirections), for programs named by a path.
fn prefix_text(words: &[&str]) -> Body {
    let pattern = format!(
        "^\\s*{}(\\s+[A-Za-z0-9_./:=,+@%-]+)*\\s*$",
        words
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("\\s+")
    );
    vec![
        format!("tool = {}", toml_string(SHELL_TOOL)),
        "[[rules.args]]".into(),
        "pointer = \"/command\"".into(),
        format!("regex = {}", toml_string(&pattern)),
    ]
}

/// Claude Code's `*` (any characters, spaces included) over the whole command text.
fn wildcard_regex(words: &[&str]) -> String {
    let text = words.join(" ");
    let parts: Vec<String> = text.split('*').map(regex::escape).collect();
    format!("^\\s*{}\\s*$", parts.join(".*").replace(' ', "\\s+"))
}

/// `Read(...)` / `Edit(...)`: a gitignore-style pattern as a `path` rule.
fn path_rule(
    spec: &str,
    tools: &[&str],
    list: List,
    options: &ImportOptions,
) -> Result<(Body, Option<String>), String> {
    let spec = spec.trim();
    let mut caveat = None;
    let (pattern, anchored) = if let Some(abs) = spec.strip_prefix("//") {
        (format!("/{abs}"), true)
    } else if spec == "~" || spec.starts_with("~/") {
        (spec.to_owned(), true)
    } else if let Some(rooted) = spec.strip_prefix('/') {
        match &options.project_root {
            Some(root) => (format!("{}/{rooted}", root.trim_end_matches('/')), true),
            None => {
                caveat = Some(
                    "relative to the project root in Claude Code; without --project-root it \
                     matches at any depth"
                        .to_owned(),
                );
                (rooted.to_owned(), false)
            }
        }
    } else {
        (spec.trim_start_matches("./").to_owned(), false)
    };
    if pattern.is_empty() {
        return Err("empty path".into());
    }
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern,
    };
    let mut globs = vec![if anchored {
        pattern.clone()
    } else {
        format!("**/{pattern}")
    }];
    // `secrets/**` names the directory too (LS and Grep on it).
    if let Some(dir) = globs.first().and_then(|g| g.strip_suffix("/**")) {
        globs.push(dir.to_owned());
    }
    let mut tool_list: Vec<&str> = tools.to_vec();
    let mut path = format!("glob = {}", toml_array(&globs));
    match list {
        List::Allow if !anchored => {
            path.push_str(", within = \"$CWD\"");
        }
        List::Allow => {}
        List::Deny | List::Ask => {
            tool_list.push(SHELL_TOOL);
            caveat.get_or_insert_with(|| {
                "also covers the files shell commands name (cat, cp, sed, ...)".to_owned()
            });
        }
    }
    Ok((
        vec![
            format!("tool = {}", toml_array(&tool_list)),
            format!("path = {{ {path} }}"),
        ],
        caveat,
    ))
}

fn glob_escape(text: &str) -> String {
    globset::escape(text)
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn toml_array<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Text safe inside a one-line comment.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
