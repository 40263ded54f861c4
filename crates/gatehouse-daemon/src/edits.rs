//! Edit then approve: a person changes a paused action's input (fixes a path, drops a flag) and
//! approves the edited action in its place (`POST /v1/actions/{id}/decision` with `input`).
//!
//! *Invariant*: an edit never widens what the rules let through. The edited input is evaluated
//! by the policy in force and self-protection, as a check would be; one the rules reject, or one
//! self-protection guards, is refused (`422 edit_refused`) and nothing is decided. The approval
//! lands only on the action the person saw (its `action_hash`, compare-and-set), and its person
//! presence is bound to the *edited* action's hash, so an assertion for one edit cannot approve
//! another. The ledger keeps the original input, the edited one, its hash and who edited.

use std::time::Duration;

use gatehouse_ledger::{ActionIdentity, EditFact, action_hash};
use gatehouse_policy::{ActionRef, Effect, Evaluation};
use gatehouse_protocol::{ActionView, Decision, PresenceAssertion, Verdict};
use serde_json::{Map, Value};

use crate::app::{ActionError, App};
use crate::approvals::DecideOutcome;
use crate::auth::Person;
use crate::presence::{PresenceMode, RequestOptions};

/// Largest edited input (its JSON text), like a check's input in practice.
pub const MAX_EDITED_INPUT_BYTES: usize = 256 * 1024;

/// The re-check of an edited input that the rules and self-protection accept (the dashboard
/// shows it before the person approves the edit).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EditPreview {
    /// The edited action's hash: what a presence assertion for this edit is bound to.
    pub edited_hash: String,
    /// The edit is the action's own input (approving it is a plain approval).
    pub unchanged: bool,
    /// What the rules alone would say of the edited action: `allow` or `pause`.
    pub verdict: &'static str,
    pub rule_id: Option<String>,
    pub reason: String,
}

/// The hash of `view` with `input` in place of its own (tool, cwd, session and tool_use_id stay).
pub fn edited_hash(view: &ActionView, input: &Map<String, Value>) -> [u8; 32] {
    ActionIdentity {
        tool: &view.tool,
        input,
        cwd: view.cwd.as_deref(),
        session_id: view.session_id.as_deref(),
        tool_use_id: view.tool_use_id.as_deref(),
    }
    .hash()
}

impl App {
    /// A person's approval of `input` in place of the paused action's input.
    /// `action_hash` names the action the person saw (required); `presence`, when required, is
    /// an assertion over the challenge issued for the edited hash (`edit_presence_challenge`).
    /// An input equal to the action's own is a plain approval.
    #[expect(
        clippy::too_many_arguments,
        reason = "one decision's parts, as the API hands them over; a struct would only rename them"
    )]
    pub async fn decide_edited(
        &self,
        person: &Person,
        via: &str,
        action_id: &str,
        input: Map<String, Value>,
        note: Option<String>,
        action_hash: Option<&str>,
        presence: Option<&PresenceAssertion>,
    ) -> Result<ActionView, ActionError> {
        if !person.role.may_decide() {
            return Err(ActionError::Forbidden(format!(
                "{} is a reviewer: a reviewer may label actions but not approve or deny them",
                person.name
            )));
        }
        let (view, hash) = self.editable(action_id, action_hash, &input).await?;
        if Some(&input) == view.input.as_object() {
            return self
                .decide_by(
                    person,
                    action_id,
                    Decision::Approve,
                    note,
                    action_hash,
                    presence,
                )
                .await;
        }
        // An action that needs several people's approvals is not one person's to rewrite.
        let required = view
            .rule_id
            .as_deref()
            .map_or(1, |rule| self.policy.current().required_approvals(rule));
        if required > 1 {
            return Err(ActionError::EditRefused(format!(
                "this action needs {required} people's approvals: it can be approved or denied as asked, not edited"
            )));
        }
        if note.as_ref().is_some_and(|n| n.len() > 4096) {
            return Err(ActionError::Invalid {
                field: "note",
                message: "a note is at most 4096 bytes".into(),
            });
        }
        self.recheck_edit(&view, &input)?;
        let edited = edited_hash(&view, &input);
        self.presence.verify_decision_by(
            &person.name,
            action_id,
            Some(&action_hash::to_hex(&edited)),
            Decision::Approve,
            presence,
        )?;
        let edited_by = match presence {
            Some(assertion) => format!(
                "{} ({via}, authenticator {})",
                person.name,
                assertion.credential_id.chars().take(16).collect::<String>()
            ),
            None => format!("{} ({via})", person.name),
        };
        let edit = EditFact {
            edited_input: input,
            edited_hash: edited,
            edited_by,
        };
        match self
            .approvals
            .decide_edited(action_id, note, hash, edit)
            .await?
        {
            DecideOutcome::Decided(view) => {
                self.scoring.learn_decided(&view);
                Ok(view)
            }
            DecideOutcome::AlreadyDecided(view) => Err(ActionError::AlreadyDecided(Box::new(view))),
            DecideOutcome::ActionMismatch(view) => Err(ActionError::ActionMismatch(Box::new(view))),
            DecideOutcome::NotFound => Err(ActionError::NotFound(action_id.to_owned())),
        }
    }

    /// A presence challenge for approving `input` in place of the action's input: bound to the
    /// action, the edited action's hash and `approve`.
    pub async fn edit_presence_challenge(
        &self,
        action_id: &str,
        action_hash: &str,
        input: &Map<String, Value>,
    ) -> Result<RequestOptions, ActionError> {
        let (view, _) = self.editable(action_id, Some(action_hash), input).await?;
        self.recheck_edit(&view, input)?;
        let edited = action_hash::to_hex(&edited_hash(&view, input));
        if self.presence.mode() == PresenceMode::Off {
            return Err(ActionError::Invalid {
                field: "decision",
                message: "presence is off (approvals.presence = \"off\"): decide without it".into(),
            });
        }
        Ok(self
            .presence
            .decision_challenge(action_id, &edited, Decision::Approve)?)
    }

    /// What the rules say of `input` in place of the paused action's input, before a person
    /// approves it (`POST /v1/actions/{id}/edit/check`): refused as a decision would be
    /// (`422 edit_refused`) or the edited action's hash and the verdict it would get from the
    /// rules alone (`allow` or `pause`; either way it is the person's approval that lets it run).
    pub async fn preview_edit(
        &self,
        action_id: &str,
        action_hash: &str,
        input: &Map<String, Value>,
    ) -> Result<EditPreview, ActionError> {
        let (view, _) = self.editable(action_id, Some(action_hash), input).await?;
        let required = view
            .rule_id
            .as_deref()
            .map_or(1, |rule| self.policy.current().required_approvals(rule));
        if required > 1 {
            return Err(ActionError::EditRefused(format!(
                "this action needs {required} people's approvals: it can be approved or denied as asked, not edited"
            )));
        }
        let evaluation = self.recheck_edit(&view, input)?;
        Ok(EditPreview {
            edited_hash: action_hash::to_hex(&edited_hash(&view, input)),
            unchanged: Some(input) == view.input.as_object(),
            verdict: match evaluation.observed.unwrap_or(evaluation.effect) {
                Effect::Allow => "allow",
                _ => "pause",
            },
            rule_id: evaluation.rule_id.as_deref().map(str::to_owned),
            reason: evaluation.reason.to_string(),
        })
    }

    /// The paused action `action_id` if `action_hash` names it and `input` may stand in for
    /// its input (size); its hash, parsed.
    async fn editable(
        &self,
        action_id: &str,
        action_hash: Option<&str>,
        input: &Map<String, Value>,
    ) -> Result<(ActionView, [u8; 32]), ActionError> {
        let hash = action_hash
            .and_then(action_hash::from_hex)
            .ok_or_else(|| ActionError::Invalid {
                field: "action_hash",
                message: "an approval of an edited input must name the action it edits: its action_hash (64 hex digits)".into(),
            })?;
        let size = serde_json::to_string(input).map_or(usize::MAX, |text| text.len());
        if size > MAX_EDITED_INPUT_BYTES {
            return Err(ActionError::Invalid {
                field: "input",
                message: format!(
                    "an edited input is at most {MAX_EDITED_INPUT_BYTES} bytes of JSON"
                ),
            });
        }
        let view = self.action(action_id, Duration::ZERO).await?;
        if view.verdict != Verdict::Pending {
            return Err(ActionError::AlreadyDecided(Box::new(view)));
        }
        if action_hash::from_hex(&view.action_hash) != Some(hash) {
            return Err(ActionError::ActionMismatch(Box::new(view)));
        }
        Ok((view, hash))
    }

    /// The rules' verdict on the edited action: refused if they would reject it (in observe
    /// mode too) or self-protection guards it; a pause is fine (a person is approving it).
    fn recheck_edit(
        &self,
        view: &ActionView,
        input: &Map<String, Value>,
    ) -> Result<Evaluation, ActionError> {
        let policy = self.policy.current();
        let action = ActionRef {
            tool: &view.tool,
            input,
            session_id: view.session_id.as_deref(),
            agent: view.agent.as_deref(),
            cwd: view.cwd.as_deref(),
        };
        if let Some(guarded) = self.policy.protection_verdict(&policy, &action) {
            return Err(ActionError::EditRefused(format!(
                "the edited input touches what self-protection guards ({}: {}): nothing was decided",
                guarded.rule_id.as_deref().unwrap_or("self-protection"),
                guarded.reason
            )));
        }
        let evaluation = self.policy.evaluate(&policy, &action);
        if evaluation.effect == Effect::Reject || evaluation.observed == Some(Effect::Reject) {
            return Err(ActionError::EditRefused(format!(
                "the rules reject the edited input ({}: {}): nothing was decided; deny the action, or edit it into something the rules allow or pause",
                evaluation.rule_id.as_deref().unwrap_or("default"),
                evaluation.reason
            )));
        }
        Ok(evaluation)
    }
}
