//! `App`: the daemon's services wired together, and the operations the HTTP layer calls.
//! Nothing here knows about HTTP.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_ledger::{
    Ledger, LedgerError, LedgerHealth, ListQuery, PersonDecision, PersonOutcome, StatusFilter,
    action_hash,
};
use gatehouse_protocol::{ActionList, ActionView, Decision, Health, PresenceAssertion, Verdict};

use crate::approvals::Approvals;
use crate::auth::{Auth, Person};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::policy_store::PolicyStore;
use crate::presence::{Presence, PresenceError, PresenceMode, RequestOptions};
use crate::scoring::Scoring;

/// Shared state handed to every handler.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

#[derive(Debug)]
pub struct App {
    pub(crate) policy: Arc<PolicyStore>,
    /// Keeps the policy file watched for hot reload while the daemon runs.
    pub(crate) _policy_watcher: Option<std::sync::Mutex<notify::RecommendedWatcher>>,
    /// The built-in model from the data directory's versioned store, when that is the
    /// classifier; `None` for other classifiers and explicit weights files.
    pub(crate) live_model: Option<Arc<crate::live_model::LiveModel>>,
    /// Keeps the models directory watched so a newly installed version is put in force.
    pub(crate) _model_watcher: Option<std::sync::Mutex<notify::RecommendedWatcher>>,
    pub(crate) ledger: Ledger,
    pub(crate) approvals: Arc<Approvals>,
    /// Standing grants in force: read on every check, swapped whole.
    pub(crate) grants: crate::grants::Grants,
    pub(crate) scoring: Arc<Scoring>,
    pub(crate) events: Events,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth: Auth,
    /// Person presence: who may decide (`approvals.presence`), enrolled authenticators.
    pub(crate) presence: Presence,
    /// How long a paused action waits for a person.
    pub(crate) deadline: Duration,
    /// Host headers this daemon answers to (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`).
    pub(crate) allowed_hosts: Vec<String>,
    /// Browser origins accepted (`http://` + each allowed host; over TLS `https://`; with
    /// `tls.public_url`, that origin only).
    pub(crate) allowed_origins: Vec<String>,
    /// Session cookies carry `Secure` (the dashboard is served over https).
    pub(crate) secure_cookies: bool,
    /// OTLP export of verdicts and decisions (a no-op without `telemetry.otlp_endpoint`).
    pub(crate) telemetry: crate::telemetry::Telemetry,
    /// Remote approvals: the links sent to ntfy / the webhook, and their delivery counts.
    pub(crate) notify: Arc<crate::notify::Notifier>,
    /// The origin the dashboard is served from, for login links.
    pub(crate) origin: String,
}

/// Why a request about one action could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no action with id {0}")]
    NotFound(String),
    #[error("action {} was already decided", .0.action_id)]
    AlreadyDecided(Box<ActionView>),
    #[error(
        "the action_hash does not name action {} as recorded (another action, or an edited one): nothing was decided",
        .0.action_id
    )]
    ActionMismatch(Box<ActionView>),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The person's role does not allow it (a reviewer deciding, an approver adding users).
    #[error("{0}")]
    Forbidden(String),
    /// It clashes with what is recorded (a user name taken, a second approval by the same person).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Something other than an action is not there (a user, a policy version).
    #[error("{0}")]
    Missing(String),
    /// Edit then approve: the edited input is one the rules reject or self-protection guards.
    #[error("{0}")]
    EditRefused(String),
    #[error(transparent)]
    Presence(#[from] PresenceError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Most actions one listing returns.
pub const MAX_LIST_LIMIT: u32 = 500;

impl App {
    /// The action as it stands, after waiting up to `wait` for a pending one to be decided.
    pub async fn action(&self, action_id: &str, wait: Duration) -> Result<ActionView, ActionError> {
        self.approvals
            .wait(action_id, wait)
            .await?
            .ok_or_else(|| ActionError::NotFound(action_id.to_owned()))
    }

    /// The owner's decision on a paused action (see [`App::decide_by`]).
    pub async fn decide(
        &self,
        action_id: &str,
        decision: Decision,
        note: Option<String>,
        action_hash: Option<&str>,
        presence: Option<&PresenceAssertion>,
    ) -> Result<ActionView, ActionError> {
        self.decide_by(
            &Person::owner(),
            action_id,
            decision,
            note,
            action_hash,
            presence,
        )
        .await
    }

    /// A person's decision on a paused action, recorded under their name.
    /// `action_hash` names the action the person saw: required to approve, checked when given
    /// to deny. The decision lands only on that action, and only once. With presence on
    /// (`approvals.presence = "webauthn"`, the default) both an approval and a denial need
    /// `presence`: an assertion over the challenge issued for this action, hash and decision.
    /// A reviewer may not decide. A rule with `approvals = N` needs N different people to
    /// approve: until then an approval is recorded and the action stays pending (its view
    /// lists the approvals); a denial by anyone decides.
    pub async fn decide_by(
        &self,
        person: &Person,
        action_id: &str,
        decision: Decision,
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
        if note.as_ref().is_some_and(|n| n.len() > 4096) {
            return Err(ActionError::Invalid {
                field: "note",
                message: "a note is at most 4096 bytes".into(),
            });
        }
        let action_hash = match action_hash {
            Some(text) => Some(action_hash::from_hex(text).ok_or_else(|| ActionError::Invalid {
                field: "action_hash",
                message: "action_hash must be 64 hex digits: the action_hash of the action being decided".into(),
            })?),
            None => None,
        };
        let verdict = match decision {
            Decision::Approve => Verdict::Allow,
            Decision::Deny => Verdict::Reject,
        };
        if verdict == Verdict::Allow && action_hash.is_none() {
            return Err(ActionError::Invalid {
                field: "action_hash",
                message: "missing field `action_hash`: an approval must name the action it approves (its action_hash)".into(),
            });
        }
        // Before anything is written: a bearer secret alone (the approver token, a dashboard
        // cookie) is not a person.
        let hash_hex = action_hash
            .as_ref()
            .map(gatehouse_ledger::action_hash::to_hex);
        self.presence.verify_decision_by(
            &person.name,
            action_id,
            hash_hex.as_deref(),
            decision,
            presence,
        )?;
        let required = self.required_approvals(action_id).await?;
        let answer = PersonDecision {
            action_id: action_id.to_owned(),
            approver: person.name.clone(),
            decision,
            action_hash,
            note,
            required,
            recorded_at_ms: crate::clock::now_ms(),
        };
        match self.approvals.decide_as(answer).await? {
            PersonOutcome::Decided(view) => {
                self.scoring.learn_decided(&view);
                Ok(*view)
            }
            PersonOutcome::Awaiting { action, .. } => Ok(*action),
            PersonOutcome::AlreadyApproved(view) => Err(ActionError::Conflict {
                code: "already_approved",
                message: format!(
                    "{} already approved action {}: it needs another person's approval",
                    person.name, view.action_id
                ),
            }),
            PersonOutcome::AlreadyDecided(view) => Err(ActionError::AlreadyDecided(view)),
            PersonOutcome::ActionMismatch(view) => Err(ActionError::ActionMismatch(view)),
            PersonOutcome::NotFound => Err(ActionError::NotFound(action_id.to_owned())),
        }
    }

    /// How many different people must approve the action: its pausing rule's `approvals` in
    /// the policy in force now (1 for an action no rule paused).
    async fn required_approvals(&self, action_id: &str) -> Result<u32, ActionError> {
        let view = self.action(action_id, Duration::ZERO).await?;
        Ok(match &view.rule_id {
            Some(rule) => self.policy.current().required_approvals(rule),
            None => 1,
        })
    }

    /// A challenge for the person's authenticator to confirm `decision` on the paused action
    /// `action_id`, whose hash must be `action_hash` (the one the person is shown).
    pub async fn presence_challenge(
        &self,
        action_id: &str,
        decision: Decision,
        action_hash: &str,
    ) -> Result<RequestOptions, ActionError> {
        if self.presence.mode() == PresenceMode::Off {
            return Err(ActionError::Invalid {
                field: "decision",
                message: "presence is off (approvals.presence = \"off\"): decide without it".into(),
            });
        }
        let view = self.action(action_id, Duration::ZERO).await?;
        if view.verdict != Verdict::Pending {
            return Err(ActionError::AlreadyDecided(Box::new(view)));
        }
        if !view.action_hash.eq_ignore_ascii_case(action_hash) {
            return Err(ActionError::ActionMismatch(Box::new(view)));
        }
        Ok(self
            .presence
            .decision_challenge(action_id, &view.action_hash, decision)?)
    }

    /// Person presence: its mode, enrolled authenticators, enrolment.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// A page of the ledger, newest first.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: Option<u32>,
        before: Option<String>,
        disagreements_only: bool,
    ) -> Result<ActionList, ActionError> {
        let status = match status {
            None | Some("") | Some("all") => None,
            Some(s) => Some(StatusFilter::parse(s).ok_or_else(|| ActionError::Invalid {
                field: "status",
                message: format!("`{s}` is not one of pending, decided, allow, reject, all"),
            })?),
        };
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(ActionError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_LIST_LIMIT}"),
            });
        }
        let actions = self
            .ledger
            .list(ListQuery {
                status,
                limit,
                before,
                disagreements_only,
            })
            .await?;
        let next_before = (actions.len() == limit as usize)
            .then(|| actions.last().map(|a| a.action_id.clone()))
            .flatten();
        Ok(ActionList {
            actions,
            next_before,
        })
    }

    pub fn health(&self) -> Health {
        let policy = self.policy.status();
        let (status, reason) = match (self.ledger.health(), &policy.error) {
            (LedgerHealth::Degraded(reason), _) => ("degraded", Some(reason)),
            (LedgerHealth::Ok, Some(error)) => (
                "degraded",
                Some(format!(
                    "the policy file was not reloaded (the last good policy is in force): {error}"
                )),
            ),
            (LedgerHealth::Ok, None) => ("ok", None),
        };
        // A classifier version that did not load is not a threat to verdicts (tier 2 is
        // advisory), but the operator must see it: reported like a refused policy file.
        let model_error = self
            .live_model
            .as_ref()
            .and_then(|live| live.status().error);
        let (status, reason) = match (status, reason, model_error) {
            ("ok", None, Some(error)) => (
                "degraded",
                Some(format!(
                    "the classifier model version was not put in force (the previous model scores): {error}"
                )),
            ),
            other => (other.0, other.1),
        };
        Health {
            status: status.into(),
            reason,
            version: env!("CARGO_PKG_VERSION").into(),
            pending: self.approvals.pending_count() as u64,
            classifier: self.scoring.model().to_owned(),
            policy: self.policy.name(),
            policy_reloads: policy.reloads,
            policy_error: policy.error,
            presence: self.presence.mode().as_str().into(),
        }
    }

    /// The ledger (tests reach it to change its limits, tools to verify it).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn metrics_text(&self) -> String {
        let mut text = self.metrics.render(
            self.approvals.pending_count(),
            self.scoring.classifier_restarts(),
        );
        let healthy = u8::from(self.ledger.health() == LedgerHealth::Ok);
        text.push_str(&format!(
            "# HELP gatehouse_ledger_healthy 1 while the ledger records, 0 while it refuses appends (untrusted, or commits failing).\n\
             # TYPE gatehouse_ledger_healthy gauge\ngatehouse_ledger_healthy {healthy}\n"
        ));
        text.push_str(&self.telemetry.metrics_text());
        text.push_str(&self.notify.metrics_text());
        text
    }

    /// A fresh one-time dashboard login URL for `person` and when it expires. With presence
    /// on, on `http://localhost:PORT`: WebAuthn needs a domain (not an IP address) as its RP id.
    pub fn login_link(&self, person: Person) -> (String, Duration) {
        let (code, ttl) = self.auth.issue_login_code(person);
        let origin = match self.presence.mode() {
            PresenceMode::WebAuthn
                if self.origin.starts_with("http://127.0.0.1:")
                    || self.origin.starts_with("https://127.0.0.1:") =>
            {
                self.presence.origin()
            }
            _ => &self.origin,
        };
        (format!("{origin}/login?code={code}"), ttl)
    }
}
