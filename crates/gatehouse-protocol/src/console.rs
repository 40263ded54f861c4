//! Wire types of the dashboard console's read-only views: the ledger browser
//! (`GET /v1/ledger/actions`, `/v1/ledger/sessions`), and the overview (`GET /v1/ledger/overview`).

use serde::{Deserialize, Serialize};

use crate::ActionView;

/// One row of the ledger browser: the action as it stands, and what happened after it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowseRow {
    #[serde(flatten)]
    pub action: ActionView,
    /// The ledger's insertion number: the rows' order, and what a cursor names.
    pub seq: i64,
    /// The latest outcome reported for it (`POST /v1/outcomes`), if any.
    #[serde(default)]
    pub outcome: Option<OutcomeSummary>,
}

/// The gist of an action's latest reported outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeSummary {
    pub ran: bool,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
    /// How many sandbox denials it reported.
    pub findings: u32,
    pub recorded_at_ms: i64,
}

/// `GET /v1/ledger/actions`: a page of the ledger browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowsePage {
    pub rows: Vec<BrowseRow>,
    /// Pass as `cursor` (with the same filters) for the next page; absent when the ledger was
    /// read to its end in this order.
    pub next_cursor: Option<String>,
    /// How many ledger rows this page looked at: a search reads a bounded stretch of the ledger
    /// per page, so a page may hold fewer rows than asked for and still have a `next_cursor`.
    pub scanned: u64,
}

/// One agent session, for the session list and a session's timeline header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub agent: Option<String>,
    pub cwd: Option<String>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub actions: u64,
    pub allowed: u64,
    pub rejected: u64,
    /// Actions that paused for a person (whatever became of them).
    pub paused: u64,
    /// Paused and still waiting.
    pub pending: u64,
}

/// `GET /v1/ledger/sessions`: sessions, most recently active first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Counts of one time bucket of the overview.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictBucket {
    /// The bucket's start (inclusive).
    pub start_ms: i64,
    /// Allowed by a rule or the default (no person asked).
    pub allowed: u64,
    /// Rejected by a rule, the default, or an error.
    pub rejected: u64,
    /// Paused, then approved by a person.
    pub approved: u64,
    /// Paused, then denied by a person.
    pub denied: u64,
    /// Paused, then rejected when its deadline passed.
    pub timed_out: u64,
    /// Paused and still waiting.
    pub pending: u64,
}

/// A rule, or a paused command, and how often it came up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopEntry {
    /// The rule id; or for a paused command, the tool and what it ran (`Bash: cargo publish`).
    pub key: String,
    pub count: u64,
    pub allowed: u64,
    pub rejected: u64,
    /// Of these, how many paused for a person.
    pub paused: u64,
}

/// Tier 2 over the window: how many actions got a score, and why the others did not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifierHealth {
    pub scored: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Not scored because the scoring queue was full.
    pub dropped: u64,
    /// No classifier configured when they were checked.
    pub disabled: u64,
    /// Still waiting for a score.
    pub waiting: u64,
    pub disagreements: u64,
    /// The model of the latest score in the window.
    pub model: Option<String>,
    /// The latest score's time, whichever its status.
    pub last_scored_ms: Option<i64>,
    /// The latest classifier error's message in the window.
    pub last_error: Option<String>,
}

/// Time from a pause to its human decision, over the window's human decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionLatency {
    /// How many human decisions were measured.
    pub decisions: u64,
    pub median_ms: Option<i64>,
    pub p99_ms: Option<i64>,
}

/// Approval fatigue over the window: how often a person was asked, and how often a standing
/// grant answered instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptLoad {
    /// Actions that paused for a person.
    pub prompts: u64,
    /// Actions a standing grant allowed without asking (0 until grants exist).
    pub granted: u64,
    /// `prompts` per hour of the window.
    pub prompts_per_hour: f64,
    /// `granted / (granted + prompts)`, 0 when both are 0.
    pub granted_share: f64,
}

/// The policy in force, as the daemon reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Short SHA-256 of the policy in force (or its version number in team mode).
    pub version: Option<String>,
    /// How many times the policy file was reloaded since the daemon started.
    pub reloads: u64,
    /// Why the last reload was refused (the last good policy still decides).
    pub reload_error: Option<String>,
}

/// `GET /v1/ledger/overview`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket_ms: i64,
    /// Every action checked in the window.
    pub total: u64,
    pub buckets: Vec<VerdictBucket>,
    /// Paused actions waiting now (whenever they were asked).
    pub pending_now: u64,
    pub latency: DecisionLatency,
    pub top_rules: Vec<TopEntry>,
    pub top_paused: Vec<TopEntry>,
    pub classifier: ClassifierHealth,
    pub prompts: PromptLoad,
    pub policy: PolicyState,
}
