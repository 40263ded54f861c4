//! Tier-1 rules engine: pure, synchronous, no IO, no tokio, no clock.
//!
//! A [`Policy`] is loaded once from TOML ([`Policy::from_toml`], or the embedded
//! [`Policy::builtin_default`]) and then evaluates actions ([`Policy::evaluate`]) in microseconds.
//! Loading reports every problem in the file at once, each with a line and column; evaluating
//! cannot fail. The file format is documented in `docs/POLICY.md`.
//!
//! Code map:
//! - `effect`: [`Effect`], the three verdicts and their precedence.
//! - `load`: TOML to [`Policy`], with [`Diagnostic`]s; `include` of builtin policies.
//! - `matcher`: precompiled globs, JSON pointers and argument tests.
//! - `shell`: shell command lines parsed with tree-sitter-bash into normalised simple commands,
//!   what makes a line opaque, and the working directory and environment each command gets.
//! - `grammar`: per-program option grammars (data in `grammars/*.toml`): what each word of a
//!   command does, the files it names, and why an allow rule may not apply.
//! - `command`: the `command` rule condition, path reasoning, [`PathResolver`].
//! - `paths`: the `path` rule condition (globs and roots over file tools' paths and shell file
//!   arguments; written and canonical forms).
//! - `network`: the `url`/`host` rule condition (URLs and hosts of network tools and of `curl`,
//!   `ssh`, `git` remotes...; domain suffixes, IP/CIDR, IPv4 spellings, schemes).
//! - `explain`: [`Policy::explain`], every rule considered for one action and why.
//! - `policy`: [`Policy`], [`ActionRef`], [`Evaluation`] and the evaluation hot path (per simple
//!   command, most restrictive wins; glob/regex tests compiled into sets).
//! - `diagnostic`: [`Diagnostic`], [`PolicyError`] and byte-offset to line/column mapping.
//! - `builtin`: the embedded `builtin:developer` (the default), `builtin:strict` and
//!   `builtin:observe` policies.
//! - `protect`: [`protect::SelfProtection`], the built-in protected set no policy can switch off.
//! - `sensitive`: the secrets, project-secrets and persistence sets, as data (`"@secrets"` in
//!   policy globs; [`sensitive::secret_paths`] for the sandbox).
//! - `claude`: [`claude::import`], a Claude Code `settings.json` permission list as policy TOML.
//! - `grant`: standing grants, a person's "allow similar" as scoped, expiring allow rules that
//!   only ever turn a pause into an allow ([`grant::evaluate`], [`grant::propose`]).
//!
//! *Boundary*: no IO, no clock, no async. Symlink resolution is the caller's, through
//! [`PathResolver`].

mod builtin;
pub mod claude;
mod command;
mod diagnostic;
mod effect;
mod explain;
mod grammar;
pub mod grant;
mod load;
mod matcher;
mod network;
mod paths;
mod policy;
pub mod protect;
pub mod sensitive;
pub mod shell;

pub use builtin::{
    BUILTIN_DEFAULT_TOML, BUILTIN_DEVELOPER_TOML, BUILTIN_OBSERVE_TOML, BUILTIN_STRICT_TOML,
    NAMES as BUILTIN_NAMES, source as builtin_source,
};
pub use command::{NoResolver, PathResolver};
pub use diagnostic::{Diagnostic, PolicyError};
pub use effect::Effect;
pub use explain::{
    ExplainedCommand, ExplainedConfine, ExplainedLine, ExplainedVerdict, Explanation, RuleTrace,
};
pub use grammar::{Access, Analysis, PathUse};
pub use network::hosts_of_input;
pub use paths::{FILE_TOOLS, PathField, Probe, file_tool_fields, resolve_path};
pub use policy::{ActionRef, Confine, Evaluation, Policy};

impl Policy {
    /// Loads and validates a policy, reporting every problem in the file at once.
    pub fn from_toml(source: &str) -> Result<Policy, PolicyError> {
        load::load(source)
    }
}
