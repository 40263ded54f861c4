//! Standing grants on the wire: `/v1/grants…` and `/v1/actions/{id}/grant`.
//!
//! A grant is a person's "approve, and allow similar": allow rules in the policy file's terms
//! (JSON objects), a scope (this session, this project, everywhere) and an expiry. It only ever
//! turns a pause into an allow (docs/POLICY.md, "Standing grants").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PresenceAssertion;

/// Whether a grant applies now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    #[default]
    Active,
    Expired,
    Revoked,
}

/// A grant as recorded, with its state and how many actions it allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub id: String,
    pub created_at_ms: i64,
    /// `null`: until revoked.
    pub expires_at_ms: Option<i64>,
    /// `{"kind":"session","session_id":..}`, `{"kind":"project","root":..}` or `{"kind":"everywhere"}`.
    pub scope: Value,
    /// Allow rules, as policy-file rule tables without `id`/`effect`.
    pub rules: Vec<Value>,
    /// The hosts it lets actions reach (those of the action it was made from).
    pub hosts: Vec<String>,
    /// The paused action it was made from.
    pub action_id: Option<String>,
    pub created_by: String,
    pub note: Option<String>,
    pub revoked_at_ms: Option<i64>,
    pub revoked_by: Option<String>,
    /// Actions it allowed (each records `rule_id: "grant:ID"`).
    pub allowed: u64,
    pub status: GrantStatus,
}

/// `GET /v1/grants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantList {
    pub grants: Vec<GrantRecord>,
}

/// Why no grant is offered for an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRefusal {
    /// `rejected`, `self_protection`, `secrets`, `persistence`, `new_host`, `not_understood`,
    /// `opaque`, `needs_confinement`, `not_paused`, `observe`.
    pub code: String,
    pub message: String,
}

/// `GET /v1/actions/{id}/grant`: the narrowest grant covering a paused action, or why none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantProposal {
    pub action_id: String,
    pub action_hash: String,
    pub offered: bool,
    pub refused: Option<GrantRefusal>,
    /// The proposed allow rules (edit them, then save).
    pub rules: Vec<Value>,
    /// The same as a policy file's `[[rules]]`.
    pub toml: String,
    pub hosts: Vec<String>,
    /// `session`, `project`, `everywhere` — those that apply to this action.
    pub scopes: Vec<String>,
    /// How many recently paused actions (see `previewed`) these rules would have allowed.
    pub would_allow: u64,
    /// How many recently paused actions were replayed.
    pub previewed: u64,
}

/// `POST /v1/actions/{id}/grant/preview`: how many past pauses edited rules would allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantPreviewRequest {
    pub rules: Vec<Value>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The answer to a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantPreview {
    /// Whether the rules allow the action the grant is made from.
    pub covers_action: bool,
    pub would_allow: u64,
    pub previewed: u64,
    /// Up to 10 of the actions it would have allowed: id, tool and what it was about.
    pub examples: Vec<Value>,
}

/// `POST /v1/actions/{id}/grant`: approve the paused action (when it is still pending) and save
/// a grant for similar ones; or save a grant from an action a person approved before (a
/// suggestion). Goes through the same person-presence rules as any decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The action's hash, as shown to the person.
    pub action_hash: String,
    /// The (edited) rules; absent: the proposal's.
    #[serde(default)]
    pub rules: Option<Vec<Value>>,
    /// `session`, `project` or `everywhere`.
    pub scope: String,
    /// `1h`, `today` or `always`; or give `expires_at_ms`.
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub presence: Option<PresenceAssertion>,
}

/// The answer to a saved grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantCreated {
    pub grant: GrantRecord,
    /// The action as it stands (approved, when it was pending).
    pub action: crate::ActionView,
}

/// One grant to review: people kept approving the same kind of action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantSuggestion {
    /// The latest approved action of the kind (save the grant from it).
    pub action_id: String,
    pub action_hash: String,
    pub tool: String,
    /// What was approved, in a line (may hold any character: escape it before printing).
    pub summary: String,
    /// How many times a person approved this kind of action in the window.
    pub approvals: u64,
    pub project: Option<String>,
    pub last_approved_at_ms: i64,
    pub rules: Vec<Value>,
    pub toml: String,
}

/// `GET /v1/grants/suggestions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantSuggestions {
    pub since_ms: i64,
    /// Fewest approvals a suggestion needs.
    pub min_approvals: u64,
    pub suggestions: Vec<GrantSuggestion>,
}

/// `GET /v1/grants/stats`: the approval-fatigue figures since a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantStats {
    pub since_ms: i64,
    pub actions: u64,
    /// Paused by the rules: a person was asked.
    pub paused: u64,
    /// Allowed by a standing grant instead of pausing.
    pub granted: u64,
    pub decided_by_people: u64,
    /// `granted / (granted + paused)`: the share of would-be prompts grants answered (0 when none).
    pub share_answered_by_grants: f64,
    pub grants_active: u64,
}
