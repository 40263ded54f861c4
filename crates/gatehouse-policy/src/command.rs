//! The `command` condition of a rule: structural matching on one parsed simple command, and the
//! path reasoning it needs (`~`, `cwd`, `..`, symlinks through a caller-supplied resolver).

use std::path::{Path, PathBuf};

use globset::{Candidate, GlobMatcher, GlobSet};

use crate::effect::Effect;
use crate::grammar::Access;
use crate::matcher::JsonPointer;
use crate::shell::{SimpleCommand, WordKind};

/// Resolves symlinks for path rules. The engine does no IO; the daemon supplies one that asks the
/// filesystem (resolving through the nearest existing ancestor), tests a fake.
pub trait PathResolver {
    /// The canonical form of an absolute path, or `None` when it cannot be resolved.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;

    /// The user's home directory, so `~/x` and `/home/me/x` are known to be the same path.
    /// `None` (the default): `~` stays `~`, and `~/x` never counts as inside an absolute root.
    fn home(&self) -> Option<PathBuf> {
        None
    }

    /// Whether this resolver resolves anything at all. `path` allow rules treat a path an active
    /// resolver could not resolve as unknown (never allowed); [`NoResolver`] says `false`, so
    /// paths are judged as written.
    fn is_active(&self) -> bool {
        true
    }
}

/// Resolves nothing: paths are judged as written (lexically normalised).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResolver;

impl PathResolver for NoResolver {
    fn canonicalize(&self, _path: &Path) -> Option<PathBuf> {
        None
    }

    fn is_active(&self) -> bool {
        false
    }
}

/// A root for `args_within` / `args_outside`.
#[derive(Clone, Debug)]
pub(crate) enum Root {
    /// The action's working directory (`"$CWD"` in policy files).
    Cwd,
    /// A fixed directory, absolute or under `~`, without trailing `/`.
    Dir(String),
}

/// A compiled `command = { ... }` condition.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandCondition {
    /// Where the command text is; `None` = the policy's `[shell] pointer`.
    pub(crate) pointer: Option<JsonPointer>,
    pub(crate) program: Option<GlobSet>,
    pub(crate) args_prefix: Vec<GlobMatcher>,
    pub(crate) has_flag: Vec<Box<str>>,
    pub(crate) has_all_flags: Vec<Box<str>>,
    pub(crate) arg: Option<GlobSet>,
    pub(crate) args_all: Option<GlobSet>,
    pub(crate) within: Vec<Root>,
    pub(crate) outside: Vec<Root>,
    pub(crate) writes: Option<GlobSet>,
    pub(crate) reads: Option<GlobSet>,
    /// Some redirection's file lies outside every root (a non-literal file counts as outside).
    pub(crate) redirects_outside: Vec<Root>,
}

/// What a command condition may look at besides the command.
pub(crate) struct Context<'a> {
    pub(crate) cwd: Option<&'a str>,
    pub(crate) resolver: &'a dyn PathResolver,
    /// The resolver's home directory (absolute, no trailing `/`), asked once per evaluation.
    pub(crate) home: Option<String>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(cwd: Option<&'a str>, resolver: &'a dyn PathResolver) -> Context<'a> {
        let home = resolver
            .home()
            .and_then(|path| path.to_str().map(|text| lexical(text, None)))
            .filter(|home| home.starts_with('/') && home != "/");
        Context {
            cwd,
            resolver,
            home,
        }
    }
}

fn glob_hit(set: &GlobSet, text: &str) -> bool {
    set.is_match_candidate(&Candidate::from_bytes(text.as_bytes()))
}

impl CommandCondition {
    /// Whether the condition holds; if not, the key of the first test that failed (`allow` when
    /// an allow rule's extra strictness refused the command).
    pub(crate) fn check(
        &self,
        command: &SimpleCommand,
        effect: Effect,
        cx: &Context<'_>,
    ) -> Result<(), &'static str> {
        if let Some(program) = &self.program
            && !glob_hit(program, &command.program)
        {
            return Err("program");
        }
        if effect == Effect::Allow {
            if !command.trusted_path || !command.is_static {
                return Err("allow");
            }
            if command.not_understood().is_some() {
                return Err("understood");
            }
            if command.args_from_input && (self.args_all.is_some() || !self.within.is_empty()) {
                return Err("allow");
            }
        }
        if !self.args_prefix.is_empty() {
            let mut positionals = command.positionals();
            for glob in &self.args_prefix {
                let hit = positionals
                    .next()
                    .and_then(|w| w.text.as_deref())
                    .is_some_and(|text| glob.is_match(text));
                if !hit {
                    return Err("args_prefix");
                }
            }
        }
        if !self.has_flag.is_empty() && !self.has_flag.iter().any(|f| command.has_flag(f)) {
            return Err("has_flag");
        }
        if !self.has_all_flags.iter().all(|f| command.has_flag(f)) {
            return Err("has_all_flags");
        }
        if let Some(set) = &self.arg {
            let hit = command
                .words
                .iter()
                .filter(|w| w.kind != WordKind::Flag)
                .filter_map(|w| w.text.as_deref())
                .any(|text| word_forms(text, cx).iter().any(|form| glob_hit(set, form)));
            if !hit {
                return Err("arg");
            }
        }
        if let Some(set) = &self.args_all {
            let mut any = false;
            for word in command.positionals() {
                any = true;
                let Some(text) = word.text.as_deref() else {
                    return Err("args_all");
                };
                let trimmed = text.trim_start_matches("./").trim_end_matches('/');
                if !(glob_hit(set, text) || glob_hit(set, trimmed)) {
                    return Err("args_all");
                }
            }
            if !any {
                return Err("args_all");
            }
        }
        if !self.within.is_empty() {
            if !command.is_static {
                return Err("args_within");
            }
            // The paths the grammar found (operands and option values that name files).
            for path in &command.analysis.paths {
                let text = path.path.as_str();
                // Code (or configuration that is code) from a directory every local user can
                // write is never allowed, whatever the roots.
                if path.access == Access::Code
                    && path_forms(text, cx).iter().any(|form| world_writable(form))
                {
                    return Err("args_within");
                }
                if !path_forms(text, cx)
                    .iter()
                    .all(|form| self.within.iter().any(|root| inside(form, root, cx)))
                {
                    return Err("args_within");
                }
            }
        }
        if !self.outside.is_empty() {
            let hit = command
                .words
                .iter()
                .filter(|w| w.kind != WordKind::Flag)
                .filter_map(|w| w.text.as_deref())
                .any(|text| {
                    path_forms(text, cx)
                        .iter()
                        .any(|form| !self.outside.iter().any(|root| inside(form, root, cx)))
                });
            if !hit {
                return Err("args_outside");
            }
        }
        if !self.redirects_outside.is_empty() {
            let hit = command.redirects.iter().any(|r| match r.target.as_deref() {
                None => true,
                Some(target) => path_forms(target, cx).iter().any(|form| {
                    !self
                        .redirects_outside
                        .iter()
                        .any(|root| inside(form, root, cx))
                }),
            });
            if !hit {
                return Err("redirects_outside");
            }
        }
        for (set, want_write, key) in [
            (&self.writes, true, "writes"),
            (&self.reads, false, "reads"),
        ] {
            let Some(set) = set else { continue };
            let hit = command
                .redirects
                .iter()
                .filter(|r| if want_write { r.write } else { r.read })
                .filter_map(|r| r.target.as_deref())
                .any(|target| {
                    word_forms(target, cx)
                        .iter()
                        .any(|form| glob_hit(set, form))
                });
            if !hit {
                return Err(key);
            }
        }
        Ok(())
    }
}

/// `/tmp`, `/var/tmp`, `/dev/shm`: directories any local user can write to.
fn world_writable(path: &str) -> bool {
    ["/tmp", "/var/tmp", "/dev/shm"].iter().any(|dir| {
        path == *dir
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The spellings a word is matched under: as written, after a leading `@` (curl's `-d @file`),
/// after the first `=` (dd's `of=/dev/sda`), and each of those as a normalised path.
fn word_forms(text: &str, cx: &Context<'_>) -> Vec<String> {
    let mut forms: Vec<String> = word_variants(text).into_iter().map(str::to_owned).collect();
    let written = forms.clone();
    for form in written {
        for path in path_forms(&form, cx) {
            if !forms.contains(&path) {
                forms.push(path);
            }
        }
    }
    forms
}

/// The texts a word may name a file by: as written, after a leading `@` (curl's `-d @file`) or a
/// `name@` (`--data-urlencode name@file`), after the first `=` (dd's `of=/dev/sda`) and after `=@` /
/// `=<`.
pub(crate) fn word_variants(text: &str) -> Vec<&str> {
    let mut variants = vec![text];
    if let Some(rest) = text.strip_prefix('@') {
        variants.push(rest);
    } else if let Some((name, rest)) = text.split_once('@')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        // curl's `--data-urlencode name@file`, `-F name@file`.
        variants.push(rest);
    }
    if let Some((_, rest)) = text.split_once('=') {
        variants.push(rest);
        if let Some(file) = rest.strip_prefix('@').or_else(|| rest.strip_prefix('<')) {
            variants.push(file);
        }
    }
    variants
}

/// A path as normalised lexically against `cwd`, plus its canonical form when the resolver knows
/// it. A relative path without a `cwd` is kept relative (`..` preserved at its start).
fn path_forms(text: &str, cx: &Context<'_>) -> Vec<String> {
    let mut forms = Vec::with_capacity(2);
    let lexical = lexical(text, cx.cwd);
    if lexical.starts_with('/')
        && let Some(canonical) = cx.resolver.canonicalize(Path::new(&lexical))
        && let Some(canonical) = canonical.to_str()
        && canonical != lexical
    {
        forms.push(canonical.to_owned());
    }
    forms.insert(0, lexical);
    forms
}

/// One path as path rules see it.
#[derive(Debug, Default)]
pub(crate) struct Spellings {
    /// The path as written, lexically normalised, and its twin under `~` or the home directory
    /// (`~/x` and `/home/me/x`) when the resolver knows the home.
    pub(crate) written: Vec<String>,
    /// The canonical (symlink-resolved) path and its twin, when it differs from the written one.
    pub(crate) canonical: Vec<String>,
    /// An active resolver could not resolve the absolute path.
    pub(crate) unresolved: bool,
}

impl Spellings {
    /// Every spelling, written first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &str> {
        self.written
            .iter()
            .chain(&self.canonical)
            .map(String::as_str)
    }
}

/// The spellings of one path (see [`Spellings`]): `~` and `cwd` resolved, `.` and `..` removed,
/// symlinks resolved through the caller's [`PathResolver`].
pub(crate) fn spellings(text: &str, cx: &Context<'_>) -> Spellings {
    let lexical = lexical(text, cx.cwd);
    let mut out = Spellings::default();
    if let Some(twin) = home_twin(&lexical, cx) {
        out.written.push(twin);
    }
    out.written.insert(0, lexical);
    let Some(absolute) = out.written.iter().find(|w| w.starts_with('/')) else {
        return out;
    };
    match cx.resolver.canonicalize(Path::new(absolute)) {
        Some(canonical) => match canonical.to_str() {
            Some(canonical) if canonical != absolute => {
                let canonical = lexical_absolute(canonical);
                if let Some(twin) = home_twin(&canonical, cx) {
                    out.canonical.push(twin);
                }
                out.canonical.insert(0, canonical);
            }
            Some(_) => {}
            None => out.unresolved = true,
        },
        None => out.unresolved = cx.resolver.is_active(),
    }
    out
}

fn lexical_absolute(path: &str) -> String {
    lexical(path, None)
}

/// The same path spelled the other way round: `~/x` as `/home/me/x` and back, when the home
/// directory is known.
fn home_twin(path: &str, cx: &Context<'_>) -> Option<String> {
    let home = cx.home.as_deref()?;
    if path == "~" {
        return Some(home.to_owned());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return Some(format!("{home}/{rest}"));
    }
    if path == home {
        return Some("~".to_owned());
    }
    path.strip_prefix(home)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| format!("~/{rest}"))
}

/// Whether some spelling in `forms` lies inside one of `roots`.
pub(crate) fn inside_any<'f>(
    mut forms: impl Iterator<Item = &'f str>,
    roots: &[Root],
    cx: &Context<'_>,
) -> bool {
    forms.any(|form| roots.iter().any(|root| inside(form, root, cx)))
}

/// Joins `text` to `cwd` when relative and resolves `.` and `..` without touching the disk.
pub(crate) fn lexical(text: &str, cwd: Option<&str>) -> String {
    let (root, rest): (&str, String) = if let Some(rest) = text.strip_prefix('/') {
        ("/", rest.to_owned())
    } else if text == "~" || text.starts_with("~/") {
        ("~/", text.get(2..).unwrap_or("").to_owned())
    } else if text.starts_with('~') {
        // `~user/...`: another user's home, never relative to the working directory.
        return text.to_owned();
    } else if let Some(cwd) = cwd.filter(|c| c.starts_with('/')) {
        ("/", format!("{}/{text}", cwd.trim_start_matches('/')))
    } else {
        ("", text.to_owned())
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if root.is_empty() {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match root {
        "~/" if joined.is_empty() => "~".to_owned(),
        "/" if joined.is_empty() => "/".to_owned(),
        "" if joined.is_empty() => ".".to_owned(),
        _ => format!("{root}{joined}"),
    }
}

fn inside(path: &str, root: &Root, cx: &Context<'_>) -> bool {
    let root = match root {
        Root::Cwd => match cx.cwd {
            Some(cwd) => lexical(cwd, None),
            // Without a cwd, a relative path that does not climb out counts as inside.
            None => {
                return !path.starts_with('/')
                    && !path.starts_with('~')
                    && path != ".."
                    && !path.starts_with("../");
            }
        },
        Root::Dir(dir) => dir.clone(),
    };
    if root == "/" {
        return path.starts_with('/');
    }
    path == root
        || path
            .strip_prefix(root.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths() {
        let cases = [
            ("a/b", Some("/w/p"), "/w/p/a/b"),
            ("../../etc", Some("/w/p"), "/etc"),
            ("../../../../..", Some("/w/p"), "/"),
            ("~/.ssh/../.ssh/id", None, "~/.ssh/id"),
            ("~", None, "~"),
            ("~root/.ssh", Some("/w/p"), "~root/.ssh"),
            ("$HOME", None, "$HOME"),
            ("../x", None, "../x"),
            ("./target/", None, "target"),
            ("/a/./b/../c", None, "/a/c"),
            (".", None, "."),
        ];
        for (text, cwd, expected) in cases {
            assert_eq!(lexical(text, cwd), expected, "{text} in {cwd:?}");
        }
    }

    struct Links;
    impl PathResolver for Links {
        fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
            let text = path.to_str()?;
            text.strip_prefix("/w/p/link")
                .map(|rest| PathBuf::from(format!("/home/me/.ssh{rest}")))
        }
    }

    #[test]
    fn within_and_outside_use_lexical_and_canonical_forms() {
        let cx = Context::new(Some("/w/p"), &Links);
        let forms = path_forms("link/id_rsa", &cx);
        assert_eq!(forms, vec!["/w/p/link/id_rsa", "/home/me/.ssh/id_rsa"]);
        assert!(inside("/w/p/x", &Root::Cwd, &cx));
        assert!(!inside("/w/px", &Root::Cwd, &cx));
        assert!(inside("/tmp/a", &Root::Dir("/tmp".into()), &cx));
        let none = Context::new(None, &NoResolver);
        assert!(inside("src/x", &Root::Cwd, &none));
        assert!(!inside("../x", &Root::Cwd, &none));
        assert!(!inside("~/x", &Root::Cwd, &none));
    }
}
