//! Confinement for allowed commands: a profile (data: what a command may read, write and reach)
//! becomes a Landlock ruleset, private user/PID/network namespaces and seccomp filters, applied
//! by `gatehouse sandbox run` to itself before it starts the command.
//!
//! The launch has three processes: the supervisor and two forks of it, made while it is still
//! single-threaded (the binary calls `run` before any async runtime; the fork refuses
//! otherwise), so the binary is loaded once:
//!
//! ```text
//! supervisor (sandbox run) ── outside: resolves the Plan, runs the filtering proxy, reads the
//!   │                          seccomp listener and prints `gatehouse sandbox: denied …` lines
//!   └─ inner stage ── unshare(user, pid[, net]); maps its uid; dies with the supervisor
//!        └─ init stage (PID 1 of the new PID namespace) ── Landlock + no_new_privs + seccomp,
//!             sends the listener to the supervisor, closes other descriptors, runs the
//!             command, reaps orphans, and exits with the command's status (which kills
//!             everything left in the namespace)
//! ```
//!
//! Fail closed: any step that cannot be applied ends the launch before the command runs
//! (exit 125 and the reason on stderr). `probe()` says ahead of time whether this kernel can.

mod confine;
mod launch;
pub mod plan;
mod probe;
pub mod profile;
mod proxy;
mod supervise;
mod sys;

pub use launch::{EXIT_SETUP, RunRequest, command, run};
pub use plan::Plan;
pub use probe::{Support, UNSUPPORTED_ENV, probe};
pub use profile::{Network, Profile, ProfileFile};

/// The prefix of every denial line the supervisor prints on stderr (the hooks extract them).
pub const DENIAL_PREFIX: &str = "gatehouse sandbox: denied ";

/// Why a confined launch did not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A profile (builtin or from a file) is invalid or unknown.
    #[error("profile: {0}")]
    Profile(String),
    /// The kernel (or platform) lacks something the sandbox needs.
    #[error("this system cannot confine commands: {0}")]
    Unsupported(String),
    /// Setting up the sandbox failed.
    #[error("cannot confine: {0}")]
    Setup(String),
}
