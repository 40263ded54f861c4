//! The life of one check: validate, evaluate the rules, commit the action, then either answer
//! at once (fast path, scoring detached) or park it for a person (paused path, scoring awaited).
//!
//! *Invariant*: the agent is told a verdict only after the action is committed to the ledger;
//! if the ledger cannot commit, the answer is `reject` with `decided_by: "error"` (fail closed).

use std::time::{Duration, Instant};

use gatehouse_classifier::ScoreRequest;
use gatehouse_ledger::{LedgerError, NewAction, Recorded};
use gatehouse_policy::{ActionRef, Effect, Evaluation};
use gatehouse_protocol::{
    ActionView, CheckRequest, CheckResponse, Confinement, ConfinementApplied, ConfinementRecord,
    DEFAULT_WAIT_MS, DecidedBy, Event, MAX_WAIT_MS, Tier2Status, Verdict,
};
use serde_json::Value;

use crate::app::App;
use crate::clock::now_ms;
use crate::scoring::{DetachedSlot, describe};

/// Who asked, as the kernel vouches for it: the peer credentials of a Unix-socket connection
/// (`SO_PEERCRED`), recorded with the action. Checks over TCP have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    /// `None` where the platform does not report it.
    pub pid: Option<i32>,
}

/// Why a check was refused before anything was recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The `session_id` + `tool_use_id` were already used for a different action.
    #[error("{0}")]
    ToolUseConflict(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

const MAX_TOOL_LEN: usize = 256;
const MAX_ID_LEN: usize = 512;
const MAX_CWD_LEN: usize = 4096;

fn validate(request: &CheckRequest) -> Result<Duration, CheckError> {
    let invalid = |field, message: &str| CheckError::Invalid {
        field,
        message: message.to_owned(),
    };
    if request.tool.trim().is_empty() {
        return Err(invalid("tool", "tool must be a non-empty string"));
    }
    if request.tool.len() > MAX_TOOL_LEN {
        return Err(invalid("tool", "tool is longer than 256 bytes"));
    }
    for (field, value) in [
        ("session_id", &request.session_id),
        ("agent", &request.agent),
        ("tool_use_id", &request.tool_use_id),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_ID_LEN) {
            return Err(invalid(field, "longer than 512 bytes"));
        }
    }
    if request.cwd.as_ref().is_some_and(|c| c.len() > MAX_CWD_LEN) {
        return Err(invalid("cwd", "cwd is longer than 4096 bytes"));
    }
    // Names and paths are shown to people and matched by rules: a NUL, newline or escape in
    // one is never legitimate (a C program would see `Bash\0x` as `Bash`). Inputs may hold them.
    for (field, value) in [
        ("tool", Some(&request.tool)),
        ("session_id", request.session_id.as_ref()),
        ("agent", request.agent.as_ref()),
        ("tool_use_id", request.tool_use_id.as_ref()),
        ("cwd", request.cwd.as_ref()),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(invalid(
                field,
                "must not contain control characters (NUL, newlines, escapes)",
            ));
        }
    }
    let wait_ms = request.wait_ms.unwrap_or(DEFAULT_WAIT_MS);
    if wait_ms > MAX_WAIT_MS {
        return Err(invalid("wait_ms", "wait_ms is at most 60000"));
    }
    Ok(Duration::from_millis(wait_ms))
}

/// Observe mode: what the rules would have decided (the verdict itself is allow), for the ledger.
fn observed_effect(observed: Option<Effect>) -> Option<gatehouse_protocol::ObservedEffect> {
    match observed? {
        Effect::Reject => Some(gatehouse_protocol::ObservedEffect::Reject),
        Effect::Pause => Some(gatehouse_protocol::ObservedEffect::Pause),
        Effect::Allow => None,
    }
}

/// An allow by a rule with `confine` (docs/SANDBOX.md): it stands, with the profile to run in,
/// for a client that can confine the command; for any other client the rule's fallback verdict
/// applies (pause by default) — never an unconfined allow. Returns the evaluation to record, the
/// confinement to send, and the confinement record the ledger keeps with the action.
fn confinement(
    mut evaluation: Evaluation,
    can_confine: bool,
) -> (Evaluation, Option<Confinement>, Option<ConfinementRecord>) {
    let Some(confine) = evaluation.confine.take() else {
        return (evaluation, None, None);
    };
    if evaluation.effect != Effect::Allow {
        return (evaluation, None, None);
    }
    let fingerprint = gatehouse_sandbox::profile::builtin_fingerprint(&confine.profile);
    let mut record = ConfinementRecord {
        profile: confine.profile.to_string(),
        profile_digest: fingerprint.map(|f| {
            f.digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        }),
        summary: fingerprint.map(|f| f.summary.clone()),
        applied: ConfinementApplied::Confined,
        fallback: None,
    };
    if can_confine {
        evaluation.reason = format!(
            "{} (runs confined: sandbox profile {})",
            evaluation.reason, confine.profile
        )
        .into();
        let profile = confine.profile.to_string();
        (evaluation, Some(Confinement { profile }), Some(record))
    } else {
        evaluation.effect = confine.fallback;
        evaluation.reason = format!(
            "{}; the rule allows it only confined (sandbox profile {}) and this client cannot confine it, so the rule's fallback applies: {}",
            evaluation.reason, confine.profile, confine.fallback
        )
        .into();
        record.applied = ConfinementApplied::Fallback;
        record.fallback = Some(confine.fallback.to_string());
        (evaluation, None, Some(record))
    }
}

fn new_action_id() -> String {
    format!("act_{}", ulid::Ulid::new())
}

impl App {
    /// A check whose caller the kernel did not vouch for (TCP).
    pub async fn check(&self, request: CheckRequest) -> Result<CheckResponse, CheckError> {
        self.check_from(request, None).await
    }

    /// A check, recording `peer` (the Unix-socket caller's credentials) with the action.
    pub async fn check_from(
        &self,
        request: CheckRequest,
        peer: Option<Peer>,
    ) -> Result<CheckResponse, CheckError> {
        // OTLP export (telemetry.rs): a record queued without waiting, after the answer is known.
        let exported = self.telemetry.enabled().then(|| {
            (
                request.tool.clone(),
                request.session_id.clone(),
                request.agent.clone(),
            )
        });
        let answered = self.check_recorded(request, peer).await;
        if let (Some((tool, session_id, agent)), Ok(response)) = (exported, &answered) {
            self.telemetry.verdict(tool, session_id, agent, response);
        }
        answered
    }

    async fn check_recorded(
        &self,
        request: CheckRequest,
        peer: Option<Peer>,
    ) -> Result<CheckResponse, CheckError> {
        let wait = validate(&request)?;
        let started = Instant::now();
        // This check finishes on the policy it starts with, whatever a reload does meanwhile.
        // ...and records the pushed version it is, if one is in force (read in the same load).
        let in_force = self.policy.in_force();
        let policy = std::sync::Arc::clone(&in_force.policy);
        let policy_version = in_force.version;
        let action = ActionRef {
            tool: &request.tool,
            input: &request.input,
            session_id: request.session_id.as_deref(),
            agent: request.agent.as_deref(),
            cwd: request.cwd.as_deref(),
        };
        // The policy's verdict, overridden by self-protection (which no policy can switch off).
        // A standing grant may turn its pause (only a pause) into an allow.
        let evaluation = self
            .policy
            .evaluate_granted(&policy, &self.grants.current(), &action);
        let (evaluation, confine, confinement_record) =
            confinement(evaluation, request.can_confine);
        let unconfinable = confinement_record
            .as_ref()
            .is_some_and(|r| r.applied == ConfinementApplied::Fallback);
        let verdict = match evaluation.effect {
            Effect::Allow => Verdict::Allow,
            Effect::Reject => Verdict::Reject,
            Effect::Pause => Verdict::Pending,
        };
        let mut decided_by = if evaluation.rule_id.is_some() {
            DecidedBy::Rule
        } else {
            DecidedBy::Default
        };
        let mut reason = evaluation.reason.to_string();
        let mut verdict = verdict;
        // A place in the approval queue, taken atomically before the action is recorded.
        let mut reservation = None;
        if verdict == Verdict::Pending {
            match self
                .approvals
                .admit(request.session_id.as_deref(), peer.map(|peer| peer.uid))
            {
                Ok(place) => reservation = Some(place),
                Err(full) => {
                    // No silent queueing: the agent is told now, and the ledger says why.
                    verdict = Verdict::Reject;
                    decided_by = DecidedBy::Error;
                    reason = format!("{full}; the rules wanted a person to decide ({reason})");
                }
            }
        }
        let created_at_ms = now_ms();
        let (slot, tier2_status) = match verdict {
            Verdict::Pending if self.scoring.enabled() => {
                (DetachedSlot::Disabled, Tier2Status::Pending)
            }
            Verdict::Pending => (DetachedSlot::Disabled, Tier2Status::Disabled),
            _ => {
                let slot = self.scoring.reserve_detached();
                let status = slot.status();
                (slot, status)
            }
        };
        // The classifier needs its own copy only when it will be asked.
        let wants_score =
            matches!(slot, DetachedSlot::Reserved(_)) || tier2_status == Tier2Status::Pending;
        let id = new_action_id();
        let score_request = wants_score.then(|| ScoreRequest {
            action_id: id.clone(),
            tool: request.tool.clone(),
            input: Value::Object(request.input.clone()),
            context: request.context.clone().map(Value::Object),
            session_id: request.session_id.clone(),
            agent: request.agent.clone(),
            cwd: request.cwd.clone(),
            history: None,
            deadline: Duration::ZERO,
        });
        let action = NewAction {
            id: id.clone(),
            created_at_ms,
            tool: request.tool,
            input: request.input,
            session_id: request.session_id,
            agent: request.agent,
            tool_use_id: request.tool_use_id,
            cwd: request.cwd,
            context: request.context,
            verdict,
            decided_by,
            rule_id: evaluation.rule_id.as_deref().map(str::to_owned),
            reason: reason.clone(),
            deadline_ms: (verdict == Verdict::Pending)
                .then(|| created_at_ms + self.deadline.as_millis() as i64),
            tier2_status,
            peer_uid: peer.map(|peer| peer.uid),
            peer_pid: peer.and_then(|peer| peer.pid),
            observed_effect: observed_effect(evaluation.observed),
        };
        let deadline_ms = action.deadline_ms;
        // Observe mode allows what the rules would stop: the deployment memory learns only
        // what the rules themselves allowed.
        let learn = verdict == Verdict::Allow && action.observed_effect.is_none();
        let paused_session = deadline_ms.and(action.session_id.clone());
        match self
            .ledger
            .record_action_confined(action, policy_version, confinement_record)
            .await
        {
            Ok(Recorded::Inserted) => {}
            Ok(Recorded::Existing {
                action,
                same_action,
            }) => {
                return self
                    .reattach(*action, same_action, wait, confine, unconfinable)
                    .await;
            }
            Err(err) => return Ok(self.ledger_failure(id, err)),
        }

        let response = if let Some(deadline_ms) = deadline_ms {
            match reservation {
                Some(place) => place.track(&id, deadline_ms),
                None => self.approvals.track(
                    &id,
                    deadline_ms,
                    paused_session.as_deref(),
                    peer.map(|p| p.uid),
                ),
            }
            self.park(&id, score_request, wait).await?
        } else {
            let response = CheckResponse {
                action_id: id,
                verdict,
                decided_by,
                rule_id: evaluation.rule_id.as_deref().map(str::to_owned),
                reason,
                tier2: None,
                confine,
                note: None,
                updated_input: None,
            };
            if let (DetachedSlot::Reserved(permit), Some(score_request)) = (slot, score_request) {
                self.scoring.spawn_detached(
                    permit,
                    score_request,
                    verdict == Verdict::Allow,
                    learn,
                );
            }
            self.metrics.fast_path_latency(started.elapsed());
            response
        };
        self.metrics.check_answered(response.verdict);
        Ok(response)
    }

    /// The paused path, after the action is committed: score it within the budget, record the
    /// score, show it to the dashboards, then wait for a person up to `wait`.
    async fn park(
        &self,
        id: &str,
        score_request: Option<ScoreRequest>,
        wait: Duration,
    ) -> Result<CheckResponse, CheckError> {
        if let Some(request) = score_request {
            let outcome = self.scoring.score_paused(request).await;
            if let (Tier2Status::Timeout, _, _) = describe(&outcome) {
                tracing::info!(
                    action_id = id,
                    "paused action goes on without a score: the classifier's budget ran out"
                );
            }
        }
        let view = self
            .ledger
            .action(id)
            .await?
            .ok_or_else(|| LedgerError::Corrupt {
                action_id: id.to_owned(),
                what: "action",
                detail: "committed but not readable".into(),
            })?;
        if view.verdict == Verdict::Pending {
            self.events.publish(&Event::ActionPending {
                action: view.clone(),
            });
        }
        let decided = self.approvals.wait(id, wait).await?.unwrap_or(view);
        Ok(decided.to_check_response())
    }

    /// A re-sent check for an action already recorded: answer with that action.
    async fn reattach(
        &self,
        existing: ActionView,
        same_action: bool,
        wait: Duration,
        confine: Option<Confinement>,
        unconfinable: bool,
    ) -> Result<CheckResponse, CheckError> {
        if !same_action {
            return Err(CheckError::ToolUseConflict(format!(
                "tool_use_id {:?} in session {:?} was already used for a different action ({})",
                existing.tool_use_id.as_deref().unwrap_or_default(),
                existing.session_id.as_deref().unwrap_or_default(),
                existing.action_id
            )));
        }
        let view = if existing.verdict == Verdict::Pending {
            // The check that recorded it may not have started tracking it yet: without an
            // entry to wait on, this re-send would answer "pending" at once.
            if let Some(deadline_ms) = existing.deadline_ms {
                let session_id = existing.session_id.as_deref();
                self.approvals.track(
                    &existing.action_id,
                    deadline_ms,
                    session_id,
                    existing.peer_uid,
                );
            }
            self.approvals
                .wait(&existing.action_id, wait)
                .await?
                .unwrap_or(existing)
        } else {
            existing
        };
        let mut response = view.to_check_response();
        // An allowed action re-sent: it still runs only as the rules in force confine it.
        if response.verdict == Verdict::Allow && view.decided_by != DecidedBy::Human {
            if unconfinable {
                response.verdict = Verdict::Reject;
                response.reason = format!(
                    "{}; re-sent by a client that cannot confine it, as the rules require",
                    response.reason
                );
            } else {
                response.confine = confine;
            }
        }
        self.metrics.check_answered(response.verdict);
        Ok(response)
    }

    /// Fail closed: the ledger could not take the action, so the agent may not run it.
    fn ledger_failure(&self, action_id: String, err: LedgerError) -> CheckResponse {
        tracing::error!(action_id, %err, "ledger could not record a check; rejecting it");
        self.metrics.ledger_failure();
        self.metrics.check_answered(Verdict::Reject);
        CheckResponse {
            action_id,
            verdict: Verdict::Reject,
            decided_by: DecidedBy::Error,
            rule_id: None,
            reason: format!("rejected: the action could not be recorded in the ledger ({err})"),
            tier2: None,
            confine: None,
            note: None,
            updated_input: None,
        }
    }
}
