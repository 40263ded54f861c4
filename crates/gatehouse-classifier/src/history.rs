//! Deployment-memory facts about one action: what it does that this deployment has not done
//! before. The daemon computes them (its `memory` module); the built-in model only reads them.
//!
//! Facts are plain data, relative to the actions this deployment *allowed* before (by its rules
//! or by a person): a host an agent was once refused is still "new". They are absent
//! (`ScoreRequest::history` is `None`) when nobody computed them — a sidecar, an eval row without
//! them, a test — and then the model scores exactly as it would without this module.

use serde::{Deserialize, Serialize};

/// What is new about an action, relative to this deployment's allowed history.
///
/// The `known_*` and `new_*` pairs are three states: an action that names no host has both
/// `new_host` and `known_host` false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryFacts {
    /// The action's session had not used this tool before (false when the action names no
    /// session: there is nothing to compare with).
    pub first_tool_in_session: bool,
    /// The action connects to at least one host (a URL or host field, or a host named by a shell
    /// command: `curl`, `wget`, `ssh`, `scp`, `nc`, git remotes, ...) that no allowed action
    /// connected to before.
    pub new_host: bool,
    /// The action connects to at least one host, and every one of them was contacted before.
    pub known_host: bool,
    /// The action names at least one recipient (an email address in `to`/`cc`/`bcc`, a payee in
    /// `recipient`/`payee`, an account in `iban`/`account`/`wallet`/...) that no allowed action
    /// named before.
    pub new_recipient: bool,
    /// The action names at least one recipient, and every one of them was named before.
    pub known_recipient: bool,
}
