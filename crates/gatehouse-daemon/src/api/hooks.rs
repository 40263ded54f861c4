//! Agent hooks over HTTP: Claude Code's `http` hook (`POST /v1/hooks/claude-code`, its
//! PreToolUse / PostToolUse payload as it comes, answered in its format), and outcome reports
//! from the `gatehouse hook` command (`POST /v1/outcomes`; `GET /v1/outcomes` for approvers).
//!
//! *Invariant*: the Claude Code endpoint answers every failure — a bad token, a payload it
//! cannot read, a check that fails — with Claude Code's explicit deny in a 200 response, since
//! Claude Code treats a non-2xx answer from a hook without `onFailure: "block"` as "no opinion".
//! The check itself is `App::check_from`, the same fast path as `/v1/check`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use gatehouse_hosts::Host;
use gatehouse_hosts::answer::claude_http;
use gatehouse_hosts::event::{HookEvent, read_event};
use gatehouse_hosts::request::{self, Mapped};
use gatehouse_protocol::{MAX_WAIT_MS, OutcomeList, OutcomeRecord, OutcomeRequest, Verdict};
use serde::Deserialize;
use serde_json::Value;

use crate::api::error::{ApiError, ApiJson, ApiQuery};
use crate::api::guard::{AgentCaller, ApproverCaller};
use crate::app::AppState;
use crate::outcomes::OutcomeError;

/// How long the endpoint waits for a person on a paused call by default (Claude Code's hook
/// timeout is installed 30 s above it).
const DEFAULT_WAIT: Duration = Duration::from_secs(125);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookQuery {
    /// Seconds to wait for a person on a paused call (at most 3600).
    wait: Option<u64>,
    /// `ask`: hand a paused call to Claude Code's own prompt.
    pause: Option<String>,
}

/// `POST /v1/hooks/claude-code`
pub async fn claude_code(
    State(state): State<AppState>,
    caller: Result<AgentCaller, ApiError>,
    query: Result<ApiQuery<HookQuery>, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Json<Value> {
    let deny = |reason: String| Json(claude_http::deny(&reason));
    let peer = match caller {
        Ok(AgentCaller(peer)) => peer,
        Err(err) => return deny(format!("the hook was refused: {}", err.message)),
    };
    let query = match query {
        Ok(ApiQuery(query)) => query,
        Err(err) => return deny(format!("bad hook URL: {}", err.message)),
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => return deny(format!("cannot read the hook payload: {err}")),
    };
    let event = match read_event(Host::ClaudeCode, &body) {
        Ok(event) => event,
        Err(err) => return deny(format!("cannot read the claude-code hook payload: {err}")),
    };
    match event {
        HookEvent::PostTool(outcome) => {
            match state
                .record_outcome(request::outcome_request(&outcome))
                .await
            {
                Ok(_) => Json(Value::Object(Default::default())),
                Err(err) => {
                    tracing::warn!(%err, "an outcome from Claude Code's HTTP hook was not recorded");
                    Json(Value::Object(Default::default()))
                }
            }
        }
        HookEvent::PreTool(call) => {
            let pause_to_host = query.pause.as_deref() == Some("ask");
            let wait = query
                .wait
                .map_or(DEFAULT_WAIT, |s| Duration::from_secs(s.min(3600)));
            let first_wait = if pause_to_host {
                0
            } else {
                wait.min(Duration::from_millis(MAX_WAIT_MS)).as_millis() as u64
            };
            let check = match request::check_request(&call, first_wait, pause_to_host) {
                Ok(check) => check,
                Err(reason) => return deny(reason),
            };
            let started = Instant::now();
            let mut response = match state.check_from(check, peer).await {
                Ok(response) => response,
                Err(err) => return deny(format!("the check failed: {err}")),
            };
            while response.verdict == Verdict::Pending && !pause_to_host {
                let left = (started + wait).saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match state
                    .action(
                        &response.action_id,
                        left.min(Duration::from_millis(MAX_WAIT_MS)),
                    )
                    .await
                {
                    Ok(view) => response = view.to_check_response(),
                    Err(err) => {
                        return deny(format!("the paused call could not be followed: {err}"));
                    }
                }
            }
            // The confinement the check asked for, as the answer carries it.
            let confine = response.confine.as_ref().map(|c| c.profile.as_str());
            Json(
                match request::map_answer(&call, &response, confine, current_exe(), pause_to_host) {
                    Mapped::Allow(input) => claude_http::allow(input),
                    Mapped::Deny(reason) => claude_http::deny(&reason),
                    Mapped::Ask(reason) => claude_http::ask(&reason),
                },
            )
        }
    }
}

/// This binary's path, for a confined call's rewritten command (read once, not per call).
fn current_exe() -> &'static str {
    static EXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// `POST /v1/outcomes` (agent token): one tool call's outcome.
pub async fn record(
    State(state): State<AppState>,
    _agent: AgentCaller,
    ApiJson(request): ApiJson<OutcomeRequest>,
) -> Result<Json<OutcomeRecord>, ApiError> {
    Ok(Json(state.record_outcome(request).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeQuery {
    limit: Option<u32>,
    /// `true`: only outcomes flagged as evidence of a call that ran around the firewall.
    flagged: Option<bool>,
}

/// `GET /v1/outcomes?limit=&flagged=` (approver): recent outcomes, newest first.
pub async fn list(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(query): ApiQuery<OutcomeQuery>,
) -> Result<Json<OutcomeList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > crate::app::MAX_LIST_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let outcomes = state
        .outcomes(limit, query.flagged.unwrap_or(false))
        .await?;
    Ok(Json(OutcomeList { outcomes }))
}

impl From<OutcomeError> for ApiError {
    fn from(err: OutcomeError) -> ApiError {
        match err {
            OutcomeError::Invalid { field, message } => ApiError::invalid(field, message),
            OutcomeError::Ledger(err) => err.into(),
        }
    }
}
