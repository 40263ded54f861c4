//! `POST /v1/policy/replay`: a candidate policy replayed over the recorded actions, for the
//! dashboard to show what a push would change before it is pushed (`gatehouse policy replay`
//! over HTTP; `crate::replay` does the evaluating).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_policy::Policy;
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::policy_versions::MAX_POLICY_BYTES;
use crate::replay::{DEFAULT_EXAMPLES, Replay, ReplayReport};

/// The most examples of each change one replay returns.
pub const MAX_EXAMPLES: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The candidate policy's TOML text.
    policy: String,
    /// Replay only actions recorded at or after this time (ms since the epoch); all by default.
    since_ms: Option<i64>,
    /// Examples kept for each change (default 10, at most 100).
    examples: Option<usize>,
}

/// `POST /v1/policy/replay` `{"policy": "...", "since_ms": N, "examples": N}` (an approver or
/// an admin): the `ReplayReport` of the candidate combined with this daemon's self-protection.
pub async fn replay(
    State(state): State<AppState>,
    caller: ApproverCaller,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<Json<ReplayReport>, ApiError> {
    // An `ApproverCaller` is never the agent; of the people, a reviewer labels and no more.
    if let Some(person) = caller.0.person()
        && !person.role.may_decide()
    {
        return Err(ApiError::forbidden(
            "forbidden_role",
            format!(
                "{} has role {}: only an approver or an admin replays a policy",
                person.name,
                person.role.as_str()
            ),
        ));
    }
    if request.policy.len() > MAX_POLICY_BYTES {
        return Err(ApiError::invalid(
            "policy",
            format!("a policy is at most {MAX_POLICY_BYTES} bytes"),
        ));
    }
    let examples = request.examples.unwrap_or(DEFAULT_EXAMPLES);
    if examples > MAX_EXAMPLES {
        return Err(ApiError::invalid(
            "examples",
            format!("at most {MAX_EXAMPLES} examples of each change"),
        ));
    }
    let policy = Policy::from_toml(&request.policy).map_err(|errors| {
        ApiError::invalid("policy", format!("the policy does not load:\n{errors}"))
    })?;
    let Some(ledger) = state.0.ledger.path().map(std::path::Path::to_path_buf) else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            "policy replay reads an SQLite ledger file; this daemon's ledger is on PostgreSQL",
        ));
    };
    // The daemon's own store: its self-protection is combined with the candidate, as the CLI
    // combines it for this data directory.
    let store = Arc::clone(&state.0.policy);
    let since_ms = request.since_ms.unwrap_or(0);
    let report = tokio::task::spawn_blocking(move || {
        let mut replay = Replay::new(&store, Arc::new(policy), examples);
        gatehouse_ledger::for_each_recorded_action_in_file(&ledger, since_ms, |action| {
            replay.add(&action);
            true
        })
        .map(|_| replay.finish())
    })
    .await
    .map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the replay stopped: {err}"),
        )
    })??;
    Ok(Json(report))
}
