//! Agent hosts — Claude Code, Codex CLI, Gemini CLI and Cursor — as Gatehouse sees them: their
//! hook payloads (`wire`), the domain events read from them (`event`), the answer each host
//! understands for a verdict (`answer`), the command rewrite that confines an allowed shell call
//! (`confine`), their settings files merged and unmerged (`settings`, `codex`), and version
//! parsing (`version`).
//!
//! Everything here is pure except `install`, which reads and writes the hosts' settings files.
//!
//! *Invariant*: every path out of this crate that answers a host for a tool call about to run
//! is either the verdict the daemon gave or that host's explicit deny; there is no "no opinion"
//! answer for a payload that could not be understood.

pub mod answer;
pub mod codex;
pub mod confine;
pub mod event;
pub mod install;
pub mod request;
pub mod settings;
pub mod version;
pub mod wire;

use std::fmt;
use std::str::FromStr;

/// An agent host Gatehouse installs into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    ClaudeCode,
    Codex,
    Gemini,
    Cursor,
}

impl Host {
    pub const ALL: [Host; 4] = [Host::ClaudeCode, Host::Codex, Host::Gemini, Host::Cursor];

    /// The name used on the command line, in hook URLs and as the action's `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Host::ClaudeCode => "claude-code",
            Host::Codex => "codex",
            Host::Gemini => "gemini",
            Host::Cursor => "cursor",
        }
    }

    /// The host's own command-line program, to read its version (`None`: no CLI, e.g. Cursor).
    pub fn program(self) -> Option<&'static str> {
        match self {
            Host::ClaudeCode => Some("claude"),
            Host::Codex => Some("codex"),
            Host::Gemini => Some("gemini"),
            Host::Cursor => None,
        }
    }

    /// Whether the host accepts a rewritten tool input from a hook (so an allowed shell call
    /// can be confined by the sandbox instead of paused).
    pub fn can_rewrite_input(self) -> bool {
        matches!(self, Host::ClaudeCode | Host::Codex | Host::Cursor)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agent host `{0}` (expected claude-code, codex, gemini or cursor)")]
pub struct UnknownHost(pub String);

impl FromStr for Host {
    type Err = UnknownHost;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "claude-code" | "claude" => Host::ClaudeCode,
            "codex" => Host::Codex,
            "gemini" => Host::Gemini,
            "cursor" => Host::Cursor,
            other => return Err(UnknownHost(other.to_owned())),
        })
    }
}
