//! The `path` rule condition: globs and roots over the files an action touches — the paths at
//! the file tools' pointers, or the file arguments and redirections of one shell command.
//!
//! Which fields of which tool hold paths is data: [`FILE_TOOLS`] (Claude Code's, Codex's,
//! Gemini CLI's, Cursor's and the MCP filesystem server's tools); other tools use the policy's
//! `[paths] pointers`. A glob a tool takes (`Glob`'s `pattern`) is judged joined to the directory
//! it searches.
//!
//! Path spelling (`~`, `cwd`, `..`, symlinks) is `command`'s; this module only decides.
//! *Invariant*: a `reject`/`pause` rule matches if the written **or** the canonical spelling
//! matches; an `allow` rule needs the written spelling to match, every spelling inside its roots,
//! and a path an active resolver could not resolve never satisfies it.
//!
//! [`resolve_path`] is the symlink resolution callers with a filesystem use: it follows every
//! link, a dangling one included, to where a write through it would land.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use globset::{Candidate, GlobSet};
use serde_json::{Map, Value};

use crate::command::{Context, Root, Spellings, inside_any, spellings, word_variants};
use crate::effect::Effect;
use crate::matcher::JsonPointer;
use crate::shell::{SimpleCommand, WordKind};

/// Where file tools keep their path unless a policy's `[paths] pointers` says otherwise.
pub(crate) const DEFAULT_PATH_POINTERS: &[&str] = &["/file_path", "/path", "/notebook_path"];

/// How a file tool's field names files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathField {
    /// A path (or an array of paths).
    Path(&'static str),
    /// A glob (or an array of globs), relative to the tool's first `Path` field or the cwd.
    Pattern(&'static str),
    /// A patch whose file headers (`*** Update File: x`, `+++ b/x`) name the files.
    Patch(&'static str),
}

use PathField::{Patch, Path as P, Pattern};

/// The file tools of the agent hosts Gatehouse knows, and the fields that hold their paths
/// (lowercase names; `mcp__SERVER__` prefixes are ignored).
pub const FILE_TOOLS: &[(&str, &[PathField])] = &[
    // Claude Code.
    ("read", &[P("/file_path")]),
    ("write", &[P("/file_path")]),
    ("edit", &[P("/file_path")]),
    ("multiedit", &[P("/file_path")]),
    ("notebookread", &[P("/notebook_path")]),
    ("notebookedit", &[P("/notebook_path")]),
    ("grep", &[P("/path"), Pattern("/glob")]),
    ("glob", &[P("/path"), Pattern("/pattern")]),
    ("ls", &[P("/path")]),
    // Gemini CLI (glob above), Codex, Cursor.
    (
        "read_file",
        &[
            P("/absolute_path"),
            P("/file_path"),
            P("/path"),
            P("/target_file"),
        ],
    ),
    ("write_file", &[P("/file_path"), P("/path")]),
    ("replace", &[P("/file_path")]),
    (
        "list_directory",
        &[P("/path"), P("/dir_path"), P("/absolute_path")],
    ),
    (
        "search_file_content",
        &[P("/path"), P("/dir_path"), Pattern("/include")],
    ),
    ("read_many_files", &[P("/paths"), Pattern("/include")]),
    ("apply_patch", &[Patch("/input"), Patch("/patch")]),
    ("edit_file", &[P("/target_file"), P("/path")]),
    ("list_dir", &[P("/relative_workspace_path"), P("/path")]),
    ("delete_file", &[P("/target_file"), P("/path")]),
    (
        "grep_search",
        &[
            P("/path"),
            P("/relative_workspace_path"),
            Pattern("/include_pattern"),
        ],
    ),
    ("file_search", &[P("/path")]),
    // The MCP filesystem server.
    ("read_text_file", &[P("/path")]),
    ("read_media_file", &[P("/path")]),
    ("read_multiple_files", &[P("/paths")]),
    ("create_directory", &[P("/path")]),
    ("list_directory_with_sizes", &[P("/path")]),
    ("directory_tree", &[P("/path")]),
    ("move_file", &[P("/source"), P("/destination")]),
    ("search_files", &[P("/path"), Pattern("/pattern")]),
    ("get_file_info", &[P("/path")]),
];

/// Search and listing tools that work in the working directory when given no directory.
const SEARCH_TOOLS_IN_CWD: &[&str] = &[
    "grep",
    "glob",
    "ls",
    "list_directory",
    "search_file_content",
    "grep_search",
    "list_dir",
    "file_search",
];

/// A tool's name as [`FILE_TOOLS`] spells it: lowercase, without an `mcp__SERVER__` prefix.
fn tool_name(tool: &str) -> String {
    let lower = tool.to_ascii_lowercase();
    match lower.strip_prefix("mcp__") {
        Some(rest) => rest
            .split_once("__")
            .map_or(rest, |(_, name)| name)
            .to_owned(),
        None => lower,
    }
}

/// The fields of a known file tool, by its name (case-insensitive, `mcp__SERVER__` prefix
/// ignored).
pub fn file_tool_fields(tool: &str) -> Option<&'static [PathField]> {
    let name = tool_name(tool);
    FILE_TOOLS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, fields)| *fields)
}

/// A compiled `path = { ... }` condition.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathCondition {
    /// `glob`: a path matches one of these.
    pub(crate) globs: Option<GlobSet>,
    /// `within`: every path lies inside one of these roots.
    pub(crate) within: Vec<Root>,
    /// `outside`: some path lies outside all of these roots.
    pub(crate) outside: Vec<Root>,
    /// `pointer`: where a non-shell tool's paths are, instead of the policy's `[paths] pointers`.
    pub(crate) pointers: Option<Box<[JsonPointer]>>,
}

/// The paths of one action or simple command; `None` for a word that is not known statically
/// (or a tool's glob that cannot be judged as a path).
pub(crate) struct Paths<'t> {
    pub(crate) items: Vec<Option<Cow<'t, str>>>,
    /// Shell words can also name files as `@file` or `key=file`; tool arguments are paths as is.
    pub(crate) shell: bool,
}

/// The strings at a pointer: a string, or each string of an array (anything else in an array is
/// not known, so it counts as an unknown path).
/// A `file://` URL names the path after it (`file:///etc/shadow` is `/etc/shadow`).
fn strings_at<'t>(pointer: &JsonPointer, input: &'t Map<String, Value>) -> Vec<Option<&'t str>> {
    let path = |text: &'t str| {
        text.strip_prefix("file://")
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(text)
    };
    match pointer.resolve(input) {
        Some(Value::String(text)) => vec![Some(path(text))],
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().map(path)).collect(),
        _ => Vec::new(),
    }
}

impl<'t> Paths<'t> {
    /// The strings (or arrays of strings) at `pointers` in a tool's input (other values are
    /// ignored).
    pub(crate) fn of_input(pointers: &[JsonPointer], input: &'t Map<String, Value>) -> Paths<'t> {
        Paths {
            items: pointers
                .iter()
                .flat_map(|pointer| strings_at(pointer, input))
                .map(|item| item.map(Cow::Borrowed))
                .collect(),
            shell: false,
        }
    }

    /// The paths of a tool's action: its fields in [`FILE_TOOLS`] for a known file tool (with
    /// `pointers`, the policy's, too), else the strings at `pointers`.
    pub(crate) fn of_tool(
        tool: &str,
        pointers: &[JsonPointer],
        input: &'t Map<String, Value>,
    ) -> Paths<'t> {
        let mut paths = Paths::of_input(pointers, input);
        let Some(fields) = file_tool_fields(tool) else {
            return paths;
        };
        let field = |pointer: &str| JsonPointer::parse(pointer).ok();
        let mut base: Option<&'t str> = None;
        for spec in fields {
            let PathField::Path(pointer) = spec else {
                continue;
            };
            let Some(pointer) = field(pointer) else {
                continue;
            };
            if pointers.iter().any(|p| p.text == pointer.text) {
                continue;
            }
            for item in strings_at(&pointer, input) {
                base = base.or(item);
                paths.items.push(item.map(Cow::Borrowed));
            }
        }
        if base.is_none() {
            base = pointers
                .iter()
                .flat_map(|pointer| strings_at(pointer, input))
                .flatten()
                .next();
        }
        if base.is_none() && SEARCH_TOOLS_IN_CWD.contains(&tool_name(tool).as_str()) {
            // A search without a directory searches the working directory.
            paths.items.push(Some(Cow::Borrowed(".")));
        }
        for spec in fields {
            match spec {
                PathField::Path(_) => {}
                PathField::Pattern(pointer) => {
                    let Some(pointer) = field(pointer) else {
                        continue;
                    };
                    for item in strings_at(&pointer, input) {
                        paths
                            .items
                            .push(item.and_then(|glob| pattern_path(base, glob)));
                    }
                }
                PathField::Patch(pointer) => {
                    let Some(pointer) = field(pointer) else {
                        continue;
                    };
                    for text in strings_at(&pointer, input).into_iter().flatten() {
                        paths
                            .items
                            .extend(patch_paths(text).into_iter().map(|p| Some(Cow::Owned(p))));
                    }
                }
            }
        }
        paths
    }

    /// A simple command's operands, option values and redirection targets.
    pub(crate) fn of_command(command: &'t SimpleCommand) -> Paths<'t> {
        Paths {
            items: command
                .words
                .iter()
                .filter(|w| w.kind != WordKind::Flag)
                .map(|w| w.text.as_deref().map(Cow::Borrowed))
                .chain(
                    command
                        .redirects
                        .iter()
                        .map(|r| r.target.as_deref().map(Cow::Borrowed)),
                )
                .collect(),
            shell: true,
        }
    }
}

/// A tool's glob as the path it names, joined to the directory it searches (`None`, the cwd).
/// A glob that climbs (`..`) or expands `~` differently cannot be judged: `None`.
fn pattern_path<'t>(base: Option<&str>, glob: &'t str) -> Option<Cow<'t, str>> {
    if glob.split('/').any(|part| part == "..") || glob.starts_with("~") && !glob.starts_with("~/")
    {
        return None;
    }
    if glob.starts_with('/') || glob.starts_with("~/") {
        return Some(Cow::Borrowed(glob));
    }
    Some(match base {
        Some(base) => Cow::Owned(format!("{}/{glob}", base.trim_end_matches('/'))),
        None => Cow::Borrowed(glob),
    })
}

/// The files a patch names: `*** Add/Update/Delete File: x`, `*** Move to: x`, `+++ b/x`,
/// `--- a/x` (not `/dev/null`).
pub(crate) fn patch_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().take(100_000) {
        let line = line.trim_end();
        for prefix in [
            "*** Add File: ",
            "*** Update File: ",
            "*** Delete File: ",
            "*** Move to: ",
            "+++ ",
            "--- ",
        ] {
            if let Some(path) = line.strip_prefix(prefix) {
                let path = path
                    .strip_prefix("b/")
                    .or_else(|| path.strip_prefix("a/"))
                    .unwrap_or(path);
                let path = path.split('\t').next().unwrap_or(path).trim();
                if !path.is_empty() && path != "/dev/null" && !out.iter().any(|p| p == path) {
                    out.push(path.to_owned());
                }
            }
        }
    }
    out
}

/// What a filesystem says about one absolute path, for [`resolve_path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A symbolic link, and where it points (as stored: relative or absolute).
    Link(PathBuf),
    /// Something that is not a link.
    Present,
    /// Nothing there (or nothing that can be looked at).
    Missing,
}

/// How many links one resolution may follow (Linux's limit), so loops end.
const MAX_LINKS: usize = 40;

/// Resolves every symbolic link of an absolute path, component by component, the way the kernel
/// would when the path is opened for writing: a dangling link is followed to its target even
/// though the target does not exist (a write through it lands there), and the parts below a
/// missing directory are joined lexically. `None` for a relative path or a link loop.
pub fn resolve_path(path: &Path, probe: &mut dyn FnMut(&Path) -> Probe) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(path, &mut pending);
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    let mut missing = false;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        if missing {
            resolved = candidate;
            continue;
        }
        match probe(&candidate) {
            Probe::Present => resolved = candidate,
            Probe::Missing => {
                missing = true;
                resolved = candidate;
            }
            Probe::Link(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                push_components(&target, &mut pending);
            }
        }
    }
    Some(resolved)
}

/// Pushes `path`'s components (not `/` and `.`) so that popping yields them in order.
fn push_components(path: &Path, pending: &mut Vec<std::ffi::OsString>) {
    let parts: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

fn glob_hit(set: &GlobSet, text: &str) -> bool {
    set.is_match_candidate(&Candidate::from_bytes(text.as_bytes()))
}

/// The spellings of each path of an action or simple command, computed once per evaluation and
/// shared by every path rule that judges them.
pub(crate) struct Resolved {
    /// Per path: its variants (`@file`, `key=file` for shell words), each spelled out; `None` for
    /// a word not known statically.
    items: Vec<Option<Vec<Spellings>>>,
    /// For paths that are globs: sensitive paths (from `sensitive`'s sets) the glob can expand
    /// to, spelled out, so `reject`/`pause` globs see `.env*` reach `.env`.
    samples: Vec<String>,
    shell: bool,
}

impl Resolved {
    pub(crate) fn new(paths: &Paths<'_>, cx: &Context<'_>) -> Resolved {
        let items: Vec<Option<Vec<Spellings>>> = paths
            .items
            .iter()
            .map(|item| {
                item.as_deref().map(|text| {
                    let variants = if paths.shell {
                        word_variants(text)
                    } else {
                        vec![text]
                    };
                    variants.into_iter().map(|v| spellings(v, cx)).collect()
                })
            })
            .collect();
        let samples = items
            .iter()
            .flatten()
            .flatten()
            .flat_map(|s| s.written.iter())
            .filter(|w| w.contains(['*', '?', '[', '{']))
            .flat_map(|pattern| glob_samples(pattern))
            .collect();
        Resolved {
            items,
            samples,
            shell: paths.shell,
        }
    }
}

/// The sensitive paths a glob can expand to (`/w/p/.env*` → `/w/p/.env`, `/w/p/.env.x`): each
/// entry of `sensitive`'s sets placed under the glob's literal directory (and one level below
/// for `**`), kept when the glob matches it the shell's way (`*`, `?`, `[...]` never match a
/// leading `.`; `*` stays within one name).
fn glob_samples(pattern: &str) -> Vec<String> {
    // A last name with no literal part (`build/*`, `**/*`) stands for "everything in there":
    // the directory is judged, not what a bare `*` could happen to reach.
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    if last.chars().filter(|c| !"*?[]{}!,".contains(*c)).count() < 2 {
        return Vec::new();
    }
    let Ok(glob) = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
    else {
        return Vec::new();
    };
    let matcher = glob.compile_matcher();
    let literal_dir: String = pattern
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '{']))
        .collect::<Vec<_>>()
        .join("/");
    let concrete = |path: &str| {
        let mut out = String::with_capacity(path.len());
        let mut class = false;
        for c in path.chars() {
            match c {
                '[' => class = true,
                ']' if class => {
                    class = false;
                    out.push('x');
                }
                _ if class => {}
                '*' | '?' => out.push('x'),
                c => out.push(c),
            }
        }
        out
    };
    let mut candidates = Vec::new();
    for (_, entries) in crate::sensitive::NAMED_SETS {
        for entry in *entries {
            let path = concrete(entry.path);
            match entry.place {
                crate::sensitive::Place::Absolute => candidates.push(path),
                _ => {
                    candidates.push(format!("{literal_dir}/{path}"));
                    if pattern.contains("**") {
                        candidates.push(format!("{literal_dir}/x/{path}"));
                    }
                }
            }
        }
    }
    candidates
        .retain(|sample| matcher.is_match(sample.as_str()) && dot_names_reached(pattern, sample));
    candidates
}

/// Whether each `.name` of `sample` is matched by a pattern part that starts with `.` (the
/// shell's and ripgrep's way: wildcards do not reach hidden names).
fn dot_names_reached(pattern: &str, sample: &str) -> bool {
    let parts: Vec<&str> = pattern.split('/').collect();
    let names: Vec<&str> = sample.split('/').collect();
    if pattern.contains("**") {
        // Only the last name is compared: `**/.env` reaches `a/.env`, `**/*` does not.
        return match (parts.last(), names.last()) {
            (Some(p), Some(n)) => !n.starts_with('.') || p.starts_with('.'),
            _ => true,
        };
    }
    parts.len() != names.len()
        || parts
            .iter()
            .zip(&names)
            .all(|(p, n)| !n.starts_with('.') || p.starts_with('.'))
}

impl PathCondition {
    /// Whether the condition holds for these paths; if not, the key of the first test that
    /// failed. `effect` is the rule's: allow rules are stricter (see the module invariant).
    pub(crate) fn check(
        &self,
        paths: &Resolved,
        effect: Effect,
        cx: &Context<'_>,
    ) -> Result<(), &'static str> {
        // A shell command without paths works in its directory; a file tool without one names
        // nothing this condition can judge.
        if paths.items.is_empty()
            && !(paths.shell && self.globs.is_none() && self.outside.is_empty())
        {
            return Err("path");
        }
        let allow = effect == Effect::Allow;
        let resolved = &paths.items;
        if let Some(globs) = &self.globs {
            let holds = if allow {
                // Every path, as written, matches (in some variant), and resolves.
                resolved.iter().all(|item| {
                    item.as_ref().is_some_and(|variants| {
                        variants
                            .iter()
                            .any(|s| !s.unresolved && s.written.iter().any(|w| glob_hit(globs, w)))
                    })
                })
            } else {
                resolved
                    .iter()
                    .flatten()
                    .flatten()
                    .any(|s| s.all().any(|form| glob_hit(globs, form)))
                    || paths.samples.iter().any(|sample| glob_hit(globs, sample))
            };
            if !holds {
                return Err("path.glob");
            }
        }
        if !self.within.is_empty() {
            // Only a path's own text (not its `@`/`=` variants) is judged for roots, as written
            // and canonically both.
            let holds = resolved.iter().all(|item| {
                item.as_ref()
                    .and_then(|variants| variants.first())
                    .is_some_and(|s| {
                        !(allow && s.unresolved)
                            && inside_any(s.written.iter().map(String::as_str), &self.within, cx)
                            && (s.canonical.is_empty()
                                || inside_any(
                                    s.canonical.iter().map(String::as_str),
                                    &self.within,
                                    cx,
                                ))
                    })
            });
            if !holds {
                return Err("path.within");
            }
        }
        if !self.outside.is_empty() {
            let holds = resolved.iter().any(|item| match item {
                // A word not known statically could be anywhere.
                None => true,
                Some(variants) => variants.first().is_some_and(|s| {
                    !inside_any(s.written.iter().map(String::as_str), &self.outside, cx)
                        || (!s.canonical.is_empty()
                            && !inside_any(
                                s.canonical.iter().map(String::as_str),
                                &self.outside,
                                cx,
                            ))
                }),
            });
            if !holds {
                return Err("path.outside");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::command::{NoResolver, PathResolver};
    use crate::matcher::compile_glob;

    fn globs(patterns: &[&str]) -> Option<GlobSet> {
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(compile_glob(pattern).unwrap());
        }
        Some(builder.build().unwrap())
    }

    /// `/w/p/link` leads to `/home/me/.ssh`; `/w/p/broken` cannot be resolved; home is /home/me.
    struct Fake;
    impl PathResolver for Fake {
        fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
            let text = path.to_str()?;
            if text.starts_with("/w/p/broken") {
                return None;
            }
            Some(PathBuf::from(text.replace("/w/p/link", "/home/me/.ssh")))
        }
        fn home(&self) -> Option<PathBuf> {
            Some(PathBuf::from("/home/me/"))
        }
    }

    fn check(
        condition: &PathCondition,
        path: &str,
        effect: Effect,
        resolver: &dyn PathResolver,
    ) -> bool {
        let cx = Context::new(Some("/w/p"), resolver);
        let paths = Paths {
            items: vec![Some(Cow::Borrowed(path))],
            shell: false,
        };
        condition
            .check(&Resolved::new(&paths, &cx), effect, &cx)
            .is_ok()
    }

    #[test]
    fn globs_see_home_cwd_and_dot_dot_resolved() {
        let secrets = PathCondition {
            globs: globs(&["~/.ssh/*", "/etc/shadow"]),
            ..PathCondition::default()
        };
        let cases = [
            ("~/.ssh/id_rsa", false, true),
            ("/home/me/.ssh/id_rsa", true, true),
            ("../../home/me/.ssh/id_rsa", true, true),
            ("/home/me/x/../.ssh/id_rsa", true, true),
            ("link/id_rsa", true, true), // through the symlink
            ("/etc/./shadow", false, true),
            ("src/main.rs", true, false),
            ("/home/me/.sshx/id", true, false),
        ];
        for (path, with_fake, expected) in cases {
            let resolver: &dyn PathResolver = if with_fake { &Fake } else { &NoResolver };
            assert_eq!(
                check(&secrets, path, Effect::Reject, resolver),
                expected,
                "{path}"
            );
        }
        // Without a resolver, `/home/me/...` is not known to be `~/...`.
        assert!(!check(
            &secrets,
            "/home/me/.ssh/id_rsa",
            Effect::Reject,
            &NoResolver
        ));
    }

    #[test]
    fn allow_needs_the_written_form_inside_and_resolved() {
        let project = PathCondition {
            within: vec![Root::Cwd],
            ..PathCondition::default()
        };
        assert!(check(&project, "src/main.rs", Effect::Allow, &Fake));
        assert!(check(
            &project,
            "/w/p/src/../Cargo.toml",
            Effect::Allow,
            &Fake
        ));
        assert!(!check(&project, "../other/x", Effect::Allow, &Fake));
        // Written inside, canonically outside.
        assert!(!check(&project, "link/config", Effect::Allow, &Fake));
        // An active resolver that fails: not allowed; with NoResolver, judged as written.
        assert!(!check(&project, "broken/x", Effect::Allow, &Fake));
        assert!(check(&project, "broken/x", Effect::Allow, &NoResolver));
        let outside = PathCondition {
            outside: vec![Root::Cwd, Root::Dir("/tmp".into())],
            ..PathCondition::default()
        };
        assert!(check(&outside, "link/config", Effect::Pause, &Fake));
        assert!(check(&outside, "~/x", Effect::Pause, &Fake));
        assert!(!check(&outside, "/tmp/x", Effect::Pause, &Fake));
        let allow_glob = PathCondition {
            globs: globs(&["/w/p/docs/*"]),
            ..PathCondition::default()
        };
        assert!(check(&allow_glob, "docs/a.md", Effect::Allow, &Fake));
        assert!(!check(
            &allow_glob,
            "docs/../src/a.rs",
            Effect::Allow,
            &Fake
        ));
    }

    /// A fake filesystem for [`resolve_path`]: links, and what exists.
    fn probe_of<'a>(
        links: &'a [(&'a str, &'a str)],
        present: &'a [&'a str],
    ) -> impl FnMut(&Path) -> Probe + 'a {
        move |path: &Path| {
            let text = path.to_str().unwrap_or_default();
            if let Some((_, to)) = links.iter().find(|(from, _)| *from == text) {
                return Probe::Link(PathBuf::from(to));
            }
            if present.contains(&text) {
                Probe::Present
            } else {
                Probe::Missing
            }
        }
    }

    #[test]
    fn resolution_follows_links_dangling_ones_included() {
        let links = [
            ("/w/p/up", "../../home/me"),
            ("/w/p/dangling", "/home/me/.bashrc"),
            ("/w/p/dir", "/opt/real"),
            ("/w/p/loop", "/w/p/loop"),
            ("/w/p/rel", "sub/x"),
        ];
        let present = [
            "/w",
            "/w/p",
            "/home",
            "/home/me",
            "/opt",
            "/opt/real",
            "/w/p/sub",
        ];
        let mut probe = probe_of(&links, &present);
        let cases = [
            ("/w/p/up/.ssh/id_rsa", Some("/home/me/.ssh/id_rsa")),
            ("/w/p/dangling", Some("/home/me/.bashrc")),
            ("/w/p/dir/../x", Some("/opt/x")),
            ("/w/p/new/dir/file", Some("/w/p/new/dir/file")),
            ("/w/p/rel", Some("/w/p/sub/x")),
            ("/w/p/./a//b", Some("/w/p/a/b")),
            ("/w/p/loop", None),
            ("relative", None),
        ];
        for (path, expected) in cases {
            assert_eq!(
                resolve_path(Path::new(path), &mut probe),
                expected.map(PathBuf::from),
                "{path}"
            );
        }
    }

    fn tool_paths(tool: &str, input: serde_json::Value) -> Vec<Option<String>> {
        let serde_json::Value::Object(input) = input else {
            panic!("object")
        };
        let pointers: Vec<JsonPointer> = DEFAULT_PATH_POINTERS
            .iter()
            .map(|p| JsonPointer::parse(p).unwrap())
            .collect();
        Paths::of_tool(tool, &pointers, &input)
            .items
            .into_iter()
            .map(|item| item.map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn file_tools_name_their_paths_by_the_table() {
        use serde_json::json;
        let some = |text: &str| Some(text.to_owned());
        assert_eq!(
            tool_paths("Read", json!({"file_path": "a"})),
            vec![some("a")]
        );
        assert_eq!(
            tool_paths("Glob", json!({"pattern": "**/*.rs", "path": "/w/p/src"})),
            vec![some("/w/p/src"), some("/w/p/src/**/*.rs")]
        );
        assert_eq!(
            tool_paths("Glob", json!({"pattern": "src/*.rs"})),
            vec![some("."), some("src/*.rs")]
        );
        assert_eq!(
            tool_paths("Glob", json!({"pattern": "../../**/.ssh/*"})),
            vec![some("."), None]
        );
        assert_eq!(
            tool_paths("Grep", json!({"pattern": "fn main"})),
            vec![some(".")]
        );
        assert_eq!(
            tool_paths("Read", json!({"file_path": "file:///etc/shadow"})),
            vec![some("/etc/shadow")]
        );
        assert_eq!(
            tool_paths("read_file", json!({"absolute_path": "/etc/shadow"})),
            vec![some("/etc/shadow")]
        );
        assert_eq!(
            tool_paths(
                "mcp__filesystem__read_multiple_files",
                json!({"paths": ["a", "~/.npmrc", 3]})
            ),
            vec![some("a"), some("~/.npmrc"), None]
        );
        assert_eq!(
            tool_paths(
                "apply_patch",
                json!({"input": "*** Begin Patch\n*** Update File: .git/config\n*** End Patch"})
            ),
            vec![some(".git/config")]
        );
        assert_eq!(
            tool_paths(
                "mcp__fs__move_file",
                json!({"source": "a", "destination": "/etc/x"})
            ),
            vec![some("a"), some("/etc/x")]
        );
        // Unknown tools: the policy's pointers.
        assert_eq!(
            tool_paths("Frobnicate", json!({"path": "x"})),
            vec![some("x")]
        );
    }

    #[test]
    fn globs_are_judged_by_the_sensitive_paths_they_reach() {
        let samples = glob_samples("/w/p/.env*");
        assert!(samples.contains(&"/w/p/.env".to_owned()), "{samples:?}");
        assert!(glob_samples("/w/p/*").is_empty());
        assert!(glob_samples("/w/p/build/**/*").is_empty());
        assert!(glob_samples("/w/p/src/*.rs").is_empty());
        assert!(
            glob_samples("~/.ssh/id_*")
                .iter()
                .any(|s| s.starts_with("~/.ssh/id_"))
        );
        let dotenv = PathCondition {
            globs: globs(&["*/.env"]),
            ..PathCondition::default()
        };
        assert!(check(&dotenv, ".en?", Effect::Pause, &NoResolver));
        assert!(!check(&dotenv, "src/*", Effect::Pause, &NoResolver));
    }

    #[test]
    fn no_paths_hold_only_for_shell_roots() {
        let cx = Context::new(Some("/w/p"), &NoResolver);
        let within = PathCondition {
            within: vec![Root::Cwd],
            ..PathCondition::default()
        };
        let none_shell = Paths {
            items: Vec::new(),
            shell: true,
        };
        let none_tool = Paths {
            items: Vec::new(),
            shell: false,
        };
        let check =
            |paths: &Paths<'_>| within.check(&Resolved::new(paths, &cx), Effect::Allow, &cx);
        assert!(check(&none_shell).is_ok());
        assert_eq!(check(&none_tool), Err("path"));
        let unknown = Paths {
            items: vec![None],
            shell: true,
        };
        assert_eq!(check(&unknown), Err("path.within"));
    }
}
