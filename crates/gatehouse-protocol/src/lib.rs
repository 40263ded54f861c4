//! Wire types of the Gatehouse HTTP and WebSocket API (v1).
//!
//! These are the only types that cross the wire between the daemon and its clients
//! (SDKs, hooks, the MCP proxy, the dashboard, the CLI). Field names here are the
//! public contract documented in `docs/API.md`; change them only with a new API version.
//!
//! Times are integers: milliseconds since the Unix epoch, in fields ending `_ms`.

mod console;
pub mod decode;
pub mod grants;
mod outcome;

pub use console::{
    BrowsePage, BrowseRow, ClassifierHealth, DecisionLatency, OutcomeSummary, Overview,
    PolicyState, PromptLoad, SessionList, SessionSummary, TopEntry, VerdictBucket,
};
pub use outcome::{OutcomeFlag, OutcomeList, OutcomeRecord, OutcomeRequest};
mod team;
pub use team::{
    ApprovalRecord, NewUserRequest, NewUserResponse, OWNER, PolicyHistory, PolicyPushRequest,
    PolicyRollbackRequest, PolicyVersionView, Role, UserList, UserView, WhoAmI,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default time a `POST /v1/check` waits for a human decision on a paused action.
pub const DEFAULT_WAIT_MS: u64 = 25_000;
/// Longest time one request may wait for a human decision.
pub const MAX_WAIT_MS: u64 = 60_000;
/// Largest request body the daemon accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `POST /v1/check`: an agent asks whether it may run one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Tool name as the agent knows it (`Bash`, `Write`, `mcp__github__create_issue`).
    pub tool: String,
    /// The tool's arguments.
    pub input: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's id for this call; with `session_id` it makes a re-sent check re-attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Free-form context for the classifier (the user's task, the previous tool output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// How long to wait for a human decision if the action is paused (0 answers at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// The client runs an allowed shell command the way the answer's `confine` says (inside
    /// `gatehouse sandbox run`). Without it, an allow that requires confinement becomes the
    /// rule's fallback verdict (docs/SANDBOX.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub can_confine: bool,
}

/// What the agent is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Reject,
    /// Paused and still waiting for a human; poll `GET /v1/actions/{id}?wait_ms=N`.
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Reject => "reject",
            Verdict::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allow" => Verdict::Allow,
            "reject" => Verdict::Reject,
            "pending" => Verdict::Pending,
            _ => return None,
        })
    }
}

/// Who or what produced the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// A policy rule matched.
    Rule,
    /// No rule matched; the policy's default effect applied.
    Default,
    /// A person approved or denied the paused action.
    Human,
    /// The paused action's deadline passed with no decision: rejected.
    Timeout,
    /// Gatehouse could not decide safely (for example the ledger could not commit): rejected.
    Error,
    /// The agent withdrew the paused action (an MCP client cancelled the call, or left): it
    /// never runs. Always a reject; recorded since ledger schema 7.
    Withdrawn,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Rule => "rule",
            DecidedBy::Default => "default",
            DecidedBy::Human => "human",
            DecidedBy::Timeout => "timeout",
            DecidedBy::Error => "error",
            DecidedBy::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rule" => DecidedBy::Rule,
            "default" => DecidedBy::Default,
            "human" => DecidedBy::Human,
            "timeout" => DecidedBy::Timeout,
            "error" => DecidedBy::Error,
            "withdrawn" => DecidedBy::Withdrawn,
            _ => return None,
        })
    }
}

/// A tier-2 classifier's score for one action. Advisory: it never changes a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier2Score {
    /// How malicious the action looks, 0 (benign) to 1 (malicious).
    pub score: f64,
    pub label: String,
    pub model: String,
}

/// Response of `POST /v1/check` and `GET /v1/actions/{id}` for agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResponse {
    pub action_id: String,
    pub verdict: Verdict,
    pub decided_by: DecidedBy,
    pub rule_id: Option<String>,
    pub reason: String,
    pub tier2: Option<Tier2Score>,
    /// With `verdict: "allow"`: the command may run only confined by this sandbox profile
    /// (`gatehouse sandbox run --profile PROFILE --cwd CWD -- /bin/sh -c COMMAND`). Only sent to
    /// a check with `can_confine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confinement>,
    /// The person's note on their decision (a denial's guidance for the model: "use --dry-run").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// With `verdict: "allow"` after a person edited the input: run *this* input, not the one
    /// asked for (edit then approve, `docs/APPROVALS.md`). A client that cannot substitute it
    /// must not run the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_input: Option<Map<String, Value>>,
}

/// How an allowed command must run: inside `gatehouse sandbox run --profile PROFILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confinement {
    pub profile: String,
}

/// The confinement a rule required of an allowed action, as the ledger records it with the
/// action (chained, in the same transaction): where it ran, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfinementRecord {
    /// The sandbox profile the rule named (`confine = "build"`).
    pub profile: String,
    /// SHA-256 (hex) of the profile as resolved when the action was checked: a later change of
    /// the profile shows as another digest. Absent when the daemon knows no profile by that name
    /// (`gatehouse sandbox run` then refuses to run the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_digest: Option<String>,
    /// What the profile allowed then, in one line (writable places, network, hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub applied: ConfinementApplied,
    /// With `applied: "fallback"`: the rule's fallback verdict (`pause` or `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Whether a required confinement was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfinementApplied {
    /// Allowed, to run inside the profile (the client said it can confine).
    Confined,
    /// The client could not confine it, so the rule's fallback verdict applied instead.
    Fallback,
}

impl ConfinementApplied {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfinementApplied::Confined => "confined",
            ConfinementApplied::Fallback => "fallback",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "confined" => Some(ConfinementApplied::Confined),
            "fallback" => Some(ConfinementApplied::Fallback),
            _ => None,
        }
    }
}

/// A person's decision on a paused action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

/// `POST /v1/actions/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The `action_hash` of the action the person saw (`ActionView::action_hash`, hex).
    /// Required to approve; optional to deny. The decision lands only on the action with this
    /// hash, once: an approval cannot decide another action, nor an edited one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_hash: Option<String>,
    /// The person's presence: a WebAuthn assertion over the challenge the daemon issued for
    /// this action, hash and decision (`POST /v1/actions/{id}/presence`). Required for every
    /// decision unless the daemon runs with `approvals.presence = "off"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceAssertion>,
    /// Edit then approve: the input the person approves instead of the one asked for (an
    /// object, same tool). Only with `approve`; re-checked by the rules, and the approval and
    /// its presence are bound to the edited action's hash (`edited_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
}

/// A WebAuthn assertion (`navigator.credentials.get`), its binary fields base64url-encoded
/// without padding, as the browser returned them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceAssertion {
    /// The credential's id (`PublicKeyCredential.rawId`).
    pub credential_id: String,
    /// `AuthenticatorAssertionResponse.clientDataJSON`.
    pub client_data_json: String,
    /// `AuthenticatorAssertionResponse.authenticatorData`.
    pub authenticator_data: String,
    /// `AuthenticatorAssertionResponse.signature` (ASN.1 DER ECDSA for ES256).
    pub signature: String,
}

/// Where an action's tier-2 scoring stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier2Status {
    /// Scoring was started and has not reported yet.
    Pending,
    Scored,
    /// The classifier failed; the action was not scored (never read as "safe").
    Error,
    /// The classifier did not answer within its budget.
    Timeout,
    /// Detached scoring was at its concurrency cap; this action was not scored.
    Dropped,
    /// No classifier is configured.
    Disabled,
}

impl Tier2Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier2Status::Pending => "pending",
            Tier2Status::Scored => "scored",
            Tier2Status::Error => "error",
            Tier2Status::Timeout => "timeout",
            Tier2Status::Dropped => "dropped",
            Tier2Status::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Tier2Status::Pending,
            "scored" => Tier2Status::Scored,
            "error" => Tier2Status::Error,
            "timeout" => Tier2Status::Timeout,
            "dropped" => Tier2Status::Dropped,
            "disabled" => Tier2Status::Disabled,
            _ => return None,
        })
    }
}

/// The human (or timeout) decision recorded on a paused action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Edit then approve: what was approved instead of the action's `input`, who edited it, and
    /// the edited action's hash (the approval is bound to it). Absent without an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditRecord>,
    /// The final verdict: `allow` or `reject`.
    pub verdict: Verdict,
    pub decided_by: DecidedBy,
    pub note: Option<String>,
    pub decided_at_ms: i64,
    /// The action hash the person approved or denied (lowercase hex); absent for timeouts,
    /// errors, and decisions recorded before the hash existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_hash: Option<String>,
    /// The person whose answer made the decision (`owner` for the approver token); absent for
    /// timeouts, errors, and decisions recorded before named approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

/// A person's edit of a paused action's input, approved in its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditRecord {
    pub edited_input: Map<String, Value>,
    /// SHA-256 of the edited action's canonical JSON (the original's tool, cwd, session and
    /// tool_use_id with the edited input), lowercase hex.
    pub edited_hash: String,
    /// Who edited and approved it (the approver credential, and the authenticator when presence
    /// confirmed it).
    pub edited_by: String,
}

/// In the policy's observe mode the verdict is `allow`; this is what the rules would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedEffect {
    Reject,
    Pause,
}

impl ObservedEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            ObservedEffect::Reject => "reject",
            ObservedEffect::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reject" => ObservedEffect::Reject,
            "pause" => ObservedEffect::Pause,
            _ => return None,
        })
    }
}

/// A reviewer's ground truth about an action (for the review queue and retraining).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewLabel {
    Malicious,
    Benign,
}

impl ReviewLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewLabel::Malicious => "malicious",
            ReviewLabel::Benign => "benign",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "malicious" => ReviewLabel::Malicious,
            "benign" => ReviewLabel::Benign,
            _ => return None,
        })
    }
}

/// One label recorded on an action; an action may be labelled again (the latest counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    pub label: ReviewLabel,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    pub recorded_at_ms: i64,
}

/// `POST /v1/actions/{id}/label`: a reviewer's ground truth about an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    pub label: ReviewLabel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Response of `POST /v1/actions/{id}/label`: the label as recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledAction {
    pub action_id: String,
    pub label: LabelRecord,
}

/// Why an action is in the review queue (`GET /v1/review`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The rules allowed it and the classifier scored it at or above the disagreement threshold.
    Disagreement,
    /// A person approved it though it scored at or above the flag threshold.
    ApprovedFlagged,
    /// A person denied it though it scored below the flag threshold.
    DeniedUnflagged,
    /// It scored at or above the flag threshold (listed only with `include=flagged`).
    Flagged,
}

impl ReviewReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewReason::Disagreement => "disagreement",
            ReviewReason::ApprovedFlagged => "approved_flagged",
            ReviewReason::DeniedUnflagged => "denied_unflagged",
            ReviewReason::Flagged => "flagged",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disagreement" => ReviewReason::Disagreement,
            "approved_flagged" => ReviewReason::ApprovedFlagged,
            "denied_unflagged" => ReviewReason::DeniedUnflagged,
            "flagged" => ReviewReason::Flagged,
            _ => return None,
        })
    }
}

/// One entry of the review queue: the action (with its score and any human decision), why it
/// is there, and its latest label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub action: ActionView,
    pub reason: ReviewReason,
    /// The latest label; `None` while unlabelled.
    pub label: Option<LabelRecord>,
}

/// `GET /v1/review`: a page of the queue, newest first, and how many items it holds in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewList {
    pub items: Vec<ReviewItem>,
    /// Pass as `before` to read the next (older) page; absent on the last page.
    pub next_before: Option<String>,
    /// Items in the whole queue (every page) not yet labelled, and labelled.
    pub unlabelled: u64,
    pub labelled: u64,
    pub classifier: ClassifierInfo,
}

/// `GET /v1/classifier`: the model in force and the thresholds the review queue applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    /// The model name (with its version for the built-in model), or `none`.
    pub model: String,
    /// A score at or above this counts as flagged.
    pub flag_threshold: f64,
    /// A rules-allowed action scored at or above this is a disagreement.
    pub disagreement_threshold: f64,
}

/// One action as the ledger knows it: what was asked, what was decided, how it was scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionView {
    pub action_id: String,
    pub tool: String,
    pub input: Value,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    pub tool_use_id: Option<String>,
    pub cwd: Option<String>,
    pub context: Option<Value>,
    pub created_at_ms: i64,
    /// The current verdict: the rules' verdict, or the decision's once a paused action is decided.
    pub verdict: Verdict,
    pub decided_by: DecidedBy,
    pub rule_id: Option<String>,
    pub reason: String,
    /// When a still-pending action is rejected by timeout.
    pub deadline_ms: Option<i64>,
    pub tier2: Option<Tier2Score>,
    pub tier2_status: Tier2Status,
    pub tier2_error: Option<String>,
    pub disagreement: bool,
    pub decision: Option<DecisionRecord>,
    /// SHA-256 of the action's canonical JSON (tool, input, cwd, session_id, tool_use_id),
    /// lowercase hex: a decision names the action it decides with it (`docs/SECURITY.md`).
    #[serde(default)]
    pub action_hash: String,
    /// The peer credentials of the Unix-socket connection the check arrived on (not over TCP).
    #[serde(default)]
    pub peer_uid: Option<u32>,
    #[serde(default)]
    pub peer_pid: Option<i32>,
    /// In observe mode (verdict `allow`): what the rules would have decided.
    #[serde(default)]
    pub observed: Option<ObservedEffect>,
    /// Each person's answer so far, oldest first (with `approvals = 2`, the first approval
    /// while the action still waits for a second person).
    #[serde(default)]
    pub approvals: Vec<ApprovalRecord>,
    /// The pushed policy version (`gatehouse policy push`) that decided it; absent when the
    /// daemon's policy file or built-in policy did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    /// The confinement its rule required (`confine = "PROFILE"`), as recorded: applied, or
    /// the fallback verdict given to a client that could not confine it. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<ConfinementRecord>,
}

impl ActionView {
    /// The agent-facing view of this action.
    pub fn to_check_response(&self) -> CheckResponse {
        CheckResponse {
            action_id: self.action_id.clone(),
            verdict: self.verdict,
            decided_by: self.decided_by,
            rule_id: self.rule_id.clone(),
            reason: self.reason.clone(),
            tier2: self.tier2.clone(),
            confine: None,
            note: self.decision.as_ref().and_then(|d| d.note.clone()),
            updated_input: self
                .decision
                .as_ref()
                .filter(|d| d.verdict == Verdict::Allow)
                .and_then(|d| d.edit.as_ref())
                .map(|edit| edit.edited_input.clone()),
        }
    }
}

/// `GET /v1/actions` and `GET /v1/disagreements`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionList {
    pub actions: Vec<ActionView>,
    /// Pass as `before` to read the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

/// What `GET /v1/events` pushes to dashboards, one JSON object per WebSocket text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A paused action waits for a person (its score, if any, is already attached).
    #[serde(rename = "action.pending")]
    ActionPending { action: ActionView },
    /// A tier-2 score (or its failure) was recorded for an action.
    #[serde(rename = "action.scored")]
    ActionScored {
        action_id: String,
        tier2_status: Tier2Status,
        tier2: Option<Tier2Score>,
        disagreement: bool,
    },
    /// A paused action was decided (by a person or its deadline).
    #[serde(rename = "action.decided")]
    ActionDecided { action: ActionView },
    /// A reviewer labelled an action (the latest label counts).
    #[serde(rename = "action.labelled")]
    ActionLabelled {
        action_id: String,
        label: LabelRecord,
    },
}

/// The one error envelope every non-2xx response carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code (`invalid_request`, `unauthorized`, ...): see `docs/API.md`.
    pub code: String,
    pub message: String,
    /// The offending request field, as a dotted path, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub version: String,
    pub pending: u64,
    pub classifier: String,
    pub policy: String,
    /// How many times the policy file was reloaded since start-up.
    #[serde(default)]
    pub policy_reloads: u64,
    /// Why the policy file on disk is not in force (the last good policy is), if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<String>,
    /// Why the status is `degraded` (e.g. the ledger failed verification, or cannot commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How a person's decision is confirmed: `webauthn` (their presence) or `off` (the approver
    /// token alone decides: for tests and automation, shown as a warning).
    #[serde(default)]
    pub presence: String,
}

/// `POST /v1/login-codes` (approver token): a fresh one-time dashboard login URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginLink {
    pub url: String,
    pub expires_at_ms: i64,
}

/// `GET /v1/session` (dashboard cookie): the CSRF token the page sends back in `X-Gatehouse-Csrf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub csrf_token: String,
    /// The person the session belongs to (`owner` for a link from the approver token).
    #[serde(default)]
    pub name: String,
    #[serde(default = "team::default_role")]
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_request_accepts_the_minimal_body_and_rejects_unknown_fields() {
        let req: CheckRequest =
            serde_json::from_str(r#"{"tool":"Bash","input":{"command":"ls"}}"#).unwrap();
        assert_eq!(req.tool, "Bash");
        assert_eq!(req.wait_ms, None);
        let err = serde_json::from_str::<CheckRequest>(r#"{"tool":"Bash","input":{},"tol":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("tol"), "{err}");
    }

    #[test]
    fn events_are_tagged_with_their_dotted_type() {
        let ev = Event::ActionScored {
            action_id: "act_1".into(),
            tier2_status: Tier2Status::Scored,
            tier2: Some(Tier2Score {
                score: 0.5,
                label: "benign".into(),
                model: "m".into(),
            }),
            disagreement: false,
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "action.scored");
        assert_eq!(v["tier2_status"], "scored");
    }

    #[test]
    fn tier2_status_round_trips_through_its_name() {
        for s in [
            Tier2Status::Pending,
            Tier2Status::Scored,
            Tier2Status::Error,
            Tier2Status::Timeout,
            Tier2Status::Dropped,
            Tier2Status::Disabled,
        ] {
            assert_eq!(Tier2Status::parse(s.as_str()), Some(s));
        }
    }
}
