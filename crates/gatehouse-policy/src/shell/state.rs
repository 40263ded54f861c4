//! What earlier commands of a line change for later ones: the working directory (`cd`, `pushd`,
//! `popd`, `cd -`) and the environment (`export X=1`, `X=1`).
//!
//! The working directory is tracked as the set of directories a command may run in: a `cd` may
//! fail, so after `cd sub; make` the `make` runs in the action's directory or in `sub`, and is
//! judged in both. Subshells, pipeline stages and substitutions do not leak their `cd`. A `cd`
//! to a word that is not literal, `cd -` or `popd` with nothing known to return to, or any `cd`
//! inside a loop or function body makes the directory unknown, and no allow rule applies.

use crate::command::lexical;

/// At most this many possible directories are tracked; past it the directory is unknown.
const MAX_DIRS: usize = 8;

/// Where a command may run, relative to the action's working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cwd {
    /// Each possible directory: `.` (the action's), relative to it, absolute or under `~`.
    Known(Vec<String>),
    /// Why it cannot be known.
    Unknown(String),
}

impl Default for Cwd {
    fn default() -> Cwd {
        Cwd::Known(vec![".".to_owned()])
    }
}

impl Cwd {
    /// After `cd target` (which may fail): the old directories and the new ones.
    fn after_cd(&self, target: &Cwd) -> Cwd {
        let (Cwd::Known(old), Cwd::Known(targets)) = (self, target) else {
            return match (self, target) {
                (Cwd::Unknown(why), _) | (_, Cwd::Unknown(why)) => Cwd::Unknown(why.clone()),
                _ => Cwd::Unknown("the working directory is not known".to_owned()),
            };
        };
        let mut dirs = old.clone();
        for dir in old {
            for target in targets {
                let joined = join(dir, target);
                if !dirs.contains(&joined) {
                    dirs.push(joined);
                }
            }
        }
        if dirs.len() > MAX_DIRS {
            return Cwd::Unknown("too many `cd`s to follow".to_owned());
        }
        Cwd::Known(dirs)
    }

    fn union(&self, other: &Cwd) -> Cwd {
        match (self, other) {
            (Cwd::Known(a), Cwd::Known(b)) => {
                let mut dirs = a.clone();
                for dir in b {
                    if !dirs.contains(dir) {
                        dirs.push(dir.clone());
                    }
                }
                Cwd::Known(dirs)
            }
            (Cwd::Unknown(why), _) | (_, Cwd::Unknown(why)) => Cwd::Unknown(why.clone()),
        }
    }
}

/// `target` as seen from `dir` (both relative to the action's directory, absolute or `~`-based).
fn join(dir: &str, target: &str) -> String {
    if target.starts_with('/') || target == "~" || target.starts_with("~/") || dir == "." {
        return lexical(target, None);
    }
    if target.starts_with('~') {
        return target.to_owned();
    }
    lexical(&format!("{dir}/{target}"), None)
}

/// Joins a relative path to the directory a command runs in.
pub(crate) fn relative_to(dir: &str, path: &str) -> String {
    if dir == "." || path.starts_with('/') || path.starts_with('~') {
        return path.to_owned();
    }
    format!("{dir}/{path}")
}

/// The line's state as the walker reaches each command.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineState {
    pub(crate) cwd: Cwd,
    /// `cd -` goes here; `None` before any `cd` (the shell's OLDPWD is not known).
    oldpwd: Option<Cwd>,
    /// `pushd`'s stack, top last.
    stack: Vec<Cwd>,
    /// Variables assigned or exported earlier in the line (they reach later commands).
    pub(crate) env: Vec<String>,
    /// Inside a loop or a function body: a `cd` there makes every directory unknown.
    pub(crate) in_loop: usize,
    /// A `cd` happened inside a loop or function body.
    pub(crate) poisoned: bool,
    /// Where the last command left the shell if it succeeded, when it was a `cd`: what `&&`
    /// after it may rely on. Any other command clears it.
    pub(crate) succeeded: Option<Cwd>,
}

impl LineState {
    /// `cd`, `pushd`, `popd` with their literal operands (`None`: an operand that is not
    /// literal). Returns the directories the command itself goes to, for judging it.
    pub(crate) fn change_directory(&mut self, program: &str, operands: &[Option<&str>]) -> Cwd {
        if self.in_loop > 0 {
            self.poisoned = true;
        }
        let operand = operands.first().copied();
        let target = match (program, operand) {
            (_, Some(None)) => {
                Cwd::Unknown(format!("`{program}` to a directory that is not literal"))
            }
            ("cd", None) => Cwd::Known(vec!["~".to_owned()]),
            ("cd", Some(Some("-"))) => self.oldpwd.clone().unwrap_or_else(|| {
                Cwd::Unknown("`cd -` returns to a directory the engine does not know".to_owned())
            }),
            ("popd", Some(Some(entry))) => {
                Cwd::Unknown(format!("`popd {entry}` names a directory stack entry"))
            }
            ("pushd", None) | ("popd", _) => match self.stack.pop() {
                Some(dir) => dir,
                None => Cwd::Unknown(format!("`{program}` with nothing pushed in this command")),
            },
            (_, Some(Some(dir)))
                if dir.starts_with('+') || dir.starts_with('-') && dir.len() > 1 =>
            {
                Cwd::Unknown(format!("`{program} {dir}` names a directory stack entry"))
            }
            (_, Some(Some(dir))) => Cwd::Known(vec![dir.to_owned()]),
            _ => Cwd::Unknown(format!(
                "`{program}` goes to a directory the engine does not know"
            )),
        };
        let before = self.cwd.clone();
        // A relative `cd` target is relative to where the `cd` runs; `cd -` and `popd` return to
        // directories already expressed relative to the action's.
        let returns = program == "popd"
            || operand == Some(Some("-"))
            || (program == "pushd" && operand.is_none());
        self.cwd = if returns {
            before.union(&target)
        } else {
            before.after_cd(&target)
        };
        if program == "pushd" {
            self.stack.push(before.clone());
        }
        self.oldpwd = Some(before.clone());
        let went = match target {
            Cwd::Known(targets) if !returns => match &before {
                Cwd::Known(dirs) => Cwd::Known(
                    dirs.iter()
                        .flat_map(|dir| targets.iter().map(move |t| join(dir, t)))
                        .collect(),
                ),
                Cwd::Unknown(why) => Cwd::Unknown(why.clone()),
            },
            other => other,
        };
        self.succeeded = match (&went, returns) {
            (Cwd::Known(_), false) => Some(went.clone()),
            _ => None,
        };
        went
    }

    /// The directory after `left && right` or `left || right`: `right` may not have run.
    pub(crate) fn after_list(&mut self, left_end: &Cwd) {
        self.cwd = left_end.union(&self.cwd);
    }
}
