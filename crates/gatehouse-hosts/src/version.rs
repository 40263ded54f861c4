//! Host versions: parsed from `claude --version` (`2.1.328 (Claude Code)`), `codex --version`
//! (`codex-cli 0.169.0`), `gemini --version` (`0.61.0`), and the features each version has.

use std::fmt;
use std::str::FromStr;

use crate::Host;

/// A `major.minor.patch` version (pre-release and build suffixes are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The first `N.N.N` (or `N.N`) word of a `--version` line.
    pub fn find_in(text: &str) -> Option<Version> {
        text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .map(|word| word.trim_start_matches('v'))
            .find_map(|word| word.parse().ok())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a version (expected MAJOR.MINOR.PATCH)")]
pub struct BadVersion(pub String);

impl FromStr for Version {
    type Err = BadVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let core = s.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<&str> = core.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(BadVersion(s.to_owned()));
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadVersion(s.to_owned()));
            }
            *slot = part.parse().map_err(|_| BadVersion(s.to_owned()))?;
        }
        Ok(Version::new(numbers[0], numbers[1], numbers[2]))
    }
}

/// What a host version supports, as far as installing Gatehouse goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Hooks exist at all (and are on by default).
    pub hooks: bool,
    /// Claude Code `onFailure: "block"`: a failing hook blocks instead of letting the call run.
    pub on_failure_block: bool,
    /// Claude Code `type: "http"` hooks.
    pub http_hooks: bool,
}

/// Claude Code gained `onFailure` in 2.1.295.
pub const CLAUDE_ON_FAILURE: Version = Version::new(2, 1, 295);
/// Claude Code HTTP hooks (present in every version that has `onFailure`).
pub const CLAUDE_HTTP_HOOKS: Version = Version::new(2, 1, 295);
/// Codex CLI runs hooks by default from 0.124.0.
pub const CODEX_HOOKS: Version = Version::new(0, 124, 0);

pub fn features(host: Host, version: Option<Version>) -> Features {
    match (host, version) {
        (Host::ClaudeCode, Some(v)) => Features {
            hooks: true,
            on_failure_block: v >= CLAUDE_ON_FAILURE,
            http_hooks: v >= CLAUDE_HTTP_HOOKS,
        },
        (Host::Codex, Some(v)) => Features {
            hooks: v >= CODEX_HOOKS,
            on_failure_block: false,
            http_hooks: false,
        },
        (Host::Gemini, Some(_)) => Features {
            hooks: true,
            on_failure_block: false,
            http_hooks: false,
        },
        // Cursor has no CLI to ask; its documented hooks.json (version 1) has failClosed.
        (Host::Cursor, _) => Features {
            hooks: true,
            on_failure_block: true,
            http_hooks: false,
        },
        (_, None) => Features {
            hooks: false,
            on_failure_block: false,
            http_hooks: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_each_hosts_version_line() {
        assert_eq!(
            Version::find_in("2.1.328 (Claude Code)"),
            Some(Version::new(2, 1, 328))
        );
        assert_eq!(
            Version::find_in("codex-cli 0.169.0"),
            Some(Version::new(0, 169, 0))
        );
        assert_eq!(Version::find_in("0.61.0\n"), Some(Version::new(0, 61, 0)));
        assert_eq!(
            Version::find_in("v1.2.3-beta.1"),
            Some(Version::new(1, 2, 3))
        );
        assert_eq!(Version::find_in("no version here"), None);
        assert!("1.x.3".parse::<Version>().is_err());
        assert!("1".parse::<Version>().is_err());
    }

    #[test]
    fn claude_code_fail_closed_starts_at_2_1_295() {
        let old = features(Host::ClaudeCode, Some(Version::new(2, 1, 294)));
        let new = features(Host::ClaudeCode, Some(Version::new(2, 1, 295)));
        assert!(!old.on_failure_block);
        assert!(new.on_failure_block);
        assert!(!features(Host::Codex, Some(Version::new(0, 123, 9))).hooks);
    }
}
