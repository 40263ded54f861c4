//! Rust client for the Gatehouse daemon: checks that wait through pauses and fail closed.
//!
//! The CLI, the agent hooks and the MCP proxy talk to the daemon through this crate. An agent asks
//! with [`Client::check`] before running a tool call; the answer is `allow` or `reject`, or, when
//! the action is paused for a person, the client polls until it is decided or the deadline passes.
//! Approvers use [`Client::decide`], [`Client::action`], [`Client::actions`] and friends.
//!
//! **Fail closed**: treat every `Err` as "do not run the action". `check` never returns a
//! `pending` verdict, and never turns a failure into an `allow`.
//!
//! ```no_run
//! use gatehouse_client::protocol::{CheckRequest, Verdict};
//! use gatehouse_client::{CheckOptions, Client};
//!
//! async fn may_run(client: &Client, request: &CheckRequest) -> bool {
//!     match client.check(request, &CheckOptions::default()).await {
//!         Ok(response) => response.verdict == Verdict::Allow,
//!         Err(_) => false,
//!     }
//! }
//! ```

mod check;
mod client;
mod error;
mod grants;
mod team;

pub use check::CheckOptions;
pub use client::{
    ActionQuery, CA_FILE_ENV, Client, DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES, ReviewQuery,
};
pub use error::{ClientError, UNKNOWN_API_CODE};
/// The wire types this client sends and returns.
pub use gatehouse_protocol as protocol;
