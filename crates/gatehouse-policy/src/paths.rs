//! The `path` rule condition: globs and roots over the files an action touches — the paths at
//! the file tools' pointers, or the file arguments and redirections of one shell command.
//!
//! Path spelling (`~`, `cwd`, `..`, symlinks) is `command`'s; this module only decides.
//! *Invariant*: a `reject`/`pause` rule matches if the written **or** the canonical spelling
//! matches; an `allow` rule needs the written spelling to match, every spelling inside its roots,
//! and a path an active resolver could not resolve never satisfies it.

use globset::{Candidate, GlobSet};
use serde_json::{Map, Value};

use crate::command::{Context, Root, Spellings, inside_any, spellings, word_variants};
use crate::effect::Effect;
use crate::matcher::JsonPointer;
use crate::shell::{SimpleCommand, WordKind};

/// Where file tools keep their path unless a policy's `[paths] pointers` says otherwise.
pub(crate) const DEFAULT_PATH_POINTERS: &[&str] = &["/file_path", "/path", "/notebook_path"];

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

/// The paths of one action or simple command; `None` for a word that is not known statically.
pub(crate) struct Paths<'t> {
    pub(crate) items: Vec<Option<&'t str>>,
    /// Shell words can also name files as `@file` or `key=file`; tool arguments are paths as is.
    pub(crate) shell: bool,
}

impl<'t> Paths<'t> {
    /// The strings at `pointers` in a tool's input (non-strings are ignored).
    pub(crate) fn of_input(pointers: &[JsonPointer], input: &'t Map<String, Value>) -> Paths<'t> {
        Paths {
            items: pointers
                .iter()
                .filter_map(|pointer| match pointer.resolve(input) {
                    Some(Value::String(text)) => Some(Some(text.as_str())),
                    _ => None,
                })
                .collect(),
            shell: false,
        }
    }

    /// A simple command's operands, option values and redirection targets.
    pub(crate) fn of_command(command: &'t SimpleCommand) -> Paths<'t> {
        Paths {
            items: command
                .words
                .iter()
                .filter(|w| w.kind != WordKind::Flag)
                .map(|w| w.text.as_deref())
                .chain(command.redirects.iter().map(|r| r.target.as_deref()))
                .collect(),
            shell: true,
        }
    }
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
    shell: bool,
}

impl Resolved {
    pub(crate) fn new(paths: &Paths<'_>, cx: &Context<'_>) -> Resolved {
        Resolved {
            items: paths
                .items
                .iter()
                .map(|item| {
                    item.map(|text| {
                        let variants = if paths.shell {
                            word_variants(text)
                        } else {
                            vec![text]
                        };
                        variants.into_iter().map(|v| spellings(v, cx)).collect()
                    })
                })
                .collect(),
            shell: paths.shell,
        }
    }
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
            items: vec![Some(path)],
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
