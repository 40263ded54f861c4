//! Wire types of team mode: named people (users and their roles), each person's approval of a
//! paused action, and the versions of the policy pushed into the ledger.

use serde::{Deserialize, Serialize};

use crate::Decision;

/// What a named person may do. An `approver` decides and labels, a `reviewer` only labels,
/// an `admin` also manages users and pushes the policy. The data directory's approver token is
/// the `owner`, an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Approver,
    Reviewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "approver" => Role::Approver,
            "reviewer" => Role::Reviewer,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Whether this role may approve or deny a paused action.
    pub fn may_decide(self) -> bool {
        matches!(self, Role::Approver | Role::Admin)
    }

    /// Whether this role may manage users and push or roll back the policy.
    pub fn may_administer(self) -> bool {
        self == Role::Admin
    }
}

/// The name the data directory's approver token decides under.
pub const OWNER: &str = "owner";

/// A user as listed: never the token (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub added_at_ms: i64,
    pub added_by: String,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub name: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

pub(crate) fn default_role() -> Role {
    Role::Approver
}

/// The answer to `POST /v1/users`: the person's token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUserResponse {
    pub user: UserView,
    pub token: String,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `GET /v1/whoami`: who the credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub name: String,
    pub role: Role,
}

/// One person's answer on a paused action, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub approver: String,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub recorded_at_ms: i64,
}

/// A version of the policy as recorded (the text only when asked for one version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersionView {
    pub version: i64,
    /// SHA-256 of the text, lowercase hex.
    pub sha256: String,
    pub pushed_by: String,
    pub pushed_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A unified diff against the previous version (in `history` with `diff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// `POST /v1/policy/versions`: the new policy's whole text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPushRequest {
    pub text: String,
}

/// `POST /v1/policy/rollback`: push version `version`'s text again as a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRollbackRequest {
    pub version: i64,
}

/// `GET /v1/policy/versions`: newest first; `current` is the version in force (none while the
/// daemon's own policy file or built-in policy is in force).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyHistory {
    pub current: Option<i64>,
    pub versions: Vec<PolicyVersionView>,
}
