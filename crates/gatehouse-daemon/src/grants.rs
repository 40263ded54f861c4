//! Standing grants in the daemon: the set in force (compiled, swapped atomically, read on every
//! check without waiting), and the operations around it — propose the narrowest grant for a
//! paused action with a preview over recently paused actions, save one (approving the action
//! through the same person-presence rules as any decision), revoke, list, suggest grants from
//! people's repeated approvals, and the counts behind "share answered by grants".
//!
//! *Invariant*: a grant only ever turns a pause into an allow (`gatehouse_policy::grant`), and
//! nothing is granted without a person: a grant is saved only with an approval of its action
//! (or, from a suggestion, an action a person approved before) that passed presence.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use gatehouse_ledger::{Ledger, LedgerError, ListQuery, NewGrant, Revoked, StatusFilter};
use gatehouse_policy::grant::{self, GrantScope, GrantSet, GrantSpec, Ineligible};
use gatehouse_policy::{ActionRef, Effect, Policy};
use gatehouse_protocol::grants::{
    GrantCreated, GrantList, GrantPreview, GrantProposal, GrantRecord, GrantRefusal, GrantRequest,
    GrantStats, GrantStatus, GrantSuggestion, GrantSuggestions,
};
use gatehouse_protocol::{ActionView, DecidedBy, Decision, Verdict};
use serde_json::{Map, Value};

use crate::app::{ActionError, App};
use crate::auth::Person;
use crate::clock::now_ms;
use crate::policy_store::FsResolver;
use crate::presence::RequestOptions;

/// How many recently paused actions a grant is previewed against.
pub const PREVIEW_ACTIONS: u32 = 2_000;
/// How many recent allowed actions tell which hosts the deployment already reaches.
const KNOWN_HOST_ACTIONS: u32 = 2_000;
/// Suggestions look back this far.
pub const SUGGESTION_WINDOW_MS: i64 = 30 * 24 * 3_600_000;
/// Fewest approvals of one kind of action before a grant is suggested.
pub const SUGGESTION_MIN_APPROVALS: u64 = 3;
/// Most grants in force at once (each is evaluated on a paused action's path).
pub const MAX_ACTIVE_GRANTS: usize = 200;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The grants in force, compiled.
#[derive(Debug, Default)]
pub struct Grants {
    set: ArcSwap<GrantSet>,
    /// Serialises rebuilds, so an older rebuild never replaces a newer one.
    rebuild: tokio::sync::Mutex<()>,
}

impl Grants {
    /// The set a check evaluates (lock-free).
    pub fn current(&self) -> Arc<GrantSet> {
        self.set.load_full()
    }

    /// Rebuilds the set from the ledger: every grant neither revoked nor expired. A grant whose
    /// rules no longer compile is left out (it allows nothing) and logged.
    pub async fn reload(&self, ledger: &Ledger) -> Result<usize, LedgerError> {
        let _one = self.rebuild.lock().await;
        let records = match ledger.grants().await {
            Ok(records) => records,
            Err(LedgerError::Unsupported(_)) => Vec::new(),
            Err(err) => return Err(err),
        };
        let now = now_ms();
        let specs: Vec<GrantSpec> = records
            .iter()
            .filter(|record| status(record, now) == GrantStatus::Active)
            .filter_map(spec_of)
            .take(MAX_ACTIVE_GRANTS)
            .collect();
        let (set, errors) = GrantSet::compile(&specs);
        for (id, error) in errors {
            tracing::error!(grant_id = id, %error, "a recorded grant does not compile; it allows nothing");
        }
        let active = set.len();
        self.set.store(Arc::new(set));
        Ok(active)
    }
}

fn spec_of(record: &GrantRecord) -> Option<GrantSpec> {
    let scope: GrantScope = serde_json::from_value(record.scope.clone()).ok()?;
    let rules = record
        .rules
        .iter()
        .map(|rule| rule.as_object().cloned())
        .collect::<Option<Vec<_>>>()?;
    Some(GrantSpec {
        id: record.id.clone(),
        rules,
        scope,
        expires_at_ms: record.expires_at_ms,
        hosts: record.hosts.clone(),
    })
}

fn status(record: &GrantRecord, now: i64) -> GrantStatus {
    if record.revoked_at_ms.is_some() {
        GrantStatus::Revoked
    } else if record.expires_at_ms.is_some_and(|at| at <= now) {
        GrantStatus::Expired
    } else {
        GrantStatus::Active
    }
}

fn refusal(ineligible: &Ineligible) -> GrantRefusal {
    let code = serde_json::to_value(ineligible)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "refused".into());
    GrantRefusal {
        code,
        message: ineligible.message(),
    }
}

fn action_ref(view: &ActionView) -> Option<ActionRef<'_>> {
    Some(ActionRef {
        tool: &view.tool,
        input: view.input.as_object()?,
        session_id: view.session_id.as_deref(),
        agent: view.agent.as_deref(),
        cwd: view.cwd.as_deref(),
    })
}

fn invalid(field: &'static str, message: impl Into<String>) -> ActionError {
    ActionError::Invalid {
        field,
        message: message.into(),
    }
}

/// The scope named `name` for this action.
fn scope_for(name: &str, view: &ActionView) -> Result<GrantScope, ActionError> {
    match name {
        "session" => view
            .session_id
            .clone()
            .map(|session_id| GrantScope::Session { session_id })
            .ok_or_else(|| invalid("scope", "the action has no session_id: no session scope")),
        "project" => view
            .cwd
            .clone()
            .filter(|cwd| cwd.starts_with('/'))
            .map(|root| GrantScope::Project { root })
            .ok_or_else(|| invalid("scope", "the action has no absolute cwd: no project scope")),
        "everywhere" => Ok(GrantScope::Everywhere),
        other => Err(invalid(
            "scope",
            format!("`{other}` is not one of session, project, everywhere"),
        )),
    }
}

fn scope_name(scope: &GrantScope) -> &'static str {
    match scope {
        GrantScope::Session { .. } => "session",
        GrantScope::Project { .. } => "project",
        GrantScope::Everywhere => "everywhere",
    }
}

/// When a grant saved now with `expires` / `expires_at_ms` ends (`None`: until revoked).
fn expiry(request: &GrantRequest, now: i64) -> Result<Option<i64>, ActionError> {
    match (request.expires.as_deref(), request.expires_at_ms) {
        (Some(_), Some(_)) => Err(invalid(
            "expires_at_ms",
            "give `expires` or `expires_at_ms`, not both",
        )),
        (None, Some(at)) if at <= now => Err(invalid("expires_at_ms", "is in the past")),
        (None, Some(at)) if at > now + 366 * DAY_MS => Err(invalid(
            "expires_at_ms",
            "is more than a year away: use `expires: \"always\"` for a grant until revoked",
        )),
        (None, Some(at)) => Ok(Some(at)),
        (Some("1h"), None) => Ok(Some(now + HOUR_MS)),
        // The end of the day in UTC; the dashboard sends the person's local midnight instead.
        (Some("today"), None) => Ok(Some((now / DAY_MS + 1) * DAY_MS)),
        (Some("always"), None) => Ok(None),
        (Some(other), None) => Err(invalid(
            "expires",
            format!("`{other}` is not one of 1h, today, always"),
        )),
        (None, None) => Err(invalid(
            "expires",
            "missing field `expires`: 1h, today or always (or `expires_at_ms`)",
        )),
    }
}

fn rule_objects(rules: &[Value]) -> Result<Vec<Map<String, Value>>, ActionError> {
    rules
        .iter()
        .map(|rule| {
            rule.as_object()
                .cloned()
                .ok_or_else(|| invalid("rules", "every rule is a JSON object"))
        })
        .collect()
}

/// What the action was about, in a line.
fn summary(tool: &str, input: &Map<String, Value>) -> String {
    let text = ["command", "file_path", "path", "url", "host"]
        .iter()
        .find_map(|key| input.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| Value::Object(input.clone()).to_string());
    let mut line: String = text.chars().take(200).collect();
    if line.len() < text.len() {
        line.push('…');
    }
    format!("{tool}: {line}")
}

impl App {
    /// Hosts this deployment's recent allowed actions reached (rules or people).
    async fn known_hosts(&self) -> Result<HashSet<String>, ActionError> {
        let allowed = self
            .ledger
            .list(ListQuery {
                status: Some(StatusFilter::Allowed),
                limit: KNOWN_HOST_ACTIONS,
                before: None,
                disagreements_only: false,
            })
            .await?;
        Ok(allowed
            .iter()
            .filter(|view| view.observed.is_none())
            .filter_map(|view| view.input.as_object())
            .flat_map(gatehouse_policy::hosts_of_input)
            .collect())
    }

    async fn view(&self, action_id: &str) -> Result<ActionView, ActionError> {
        self.ledger
            .action(action_id)
            .await?
            .ok_or_else(|| ActionError::NotFound(action_id.to_owned()))
    }

    /// How many of the recently paused actions (other than `except`) `spec` would have allowed.
    async fn preview(
        &self,
        policy: &Policy,
        spec: GrantSpec,
        except: &str,
    ) -> Result<GrantPreview, ActionError> {
        let (set, errors) = GrantSet::compile(std::slice::from_ref(&spec));
        if let Some((_, error)) = errors.first() {
            return Err(invalid("rules", error.to_string()));
        }
        let paused = self.ledger.paused_actions(PREVIEW_ACTIONS).await?;
        let protection = self.policy.protection();
        let now = now_ms();
        let mut preview = GrantPreview {
            covers_action: false,
            would_allow: 0,
            previewed: 0,
            examples: Vec::new(),
        };
        let decides = format!("grant:{}", spec.id);
        for action in paused.iter().filter(|action| action.id != except) {
            preview.previewed += 1;
            let action_ref = ActionRef {
                tool: &action.tool,
                input: &action.input,
                session_id: action.session_id.as_deref(),
                agent: action.agent.as_deref(),
                cwd: action.cwd.as_deref(),
            };
            let evaluation =
                grant::evaluate(policy, &protection, &set, &action_ref, &FsResolver, now);
            if evaluation.rule_id.as_deref() == Some(decides.as_str()) {
                preview.would_allow += 1;
                if preview.examples.len() < 10 {
                    preview.examples.push(serde_json::json!({
                        "action_id": action.id,
                        "created_at_ms": action.created_at_ms,
                        "summary": summary(&action.tool, &action.input),
                    }));
                }
            }
        }
        Ok(preview)
    }

    /// The narrowest grant covering the action, or why none is offered, with how many recently
    /// paused actions it would have allowed.
    pub async fn grant_proposal(&self, action_id: &str) -> Result<GrantProposal, ActionError> {
        let view = self.view(action_id).await?;
        let policy = self.policy.current();
        let known = self.known_hosts().await?;
        let mut proposal = GrantProposal {
            action_id: view.action_id.clone(),
            action_hash: view.action_hash.clone(),
            offered: false,
            refused: None,
            rules: Vec::new(),
            toml: String::new(),
            hosts: Vec::new(),
            scopes: Vec::new(),
            would_allow: 0,
            previewed: 0,
        };
        let Some(action) = action_ref(&view) else {
            return Err(invalid("input", "the recorded input is not an object"));
        };
        let offered = grant::propose(
            &policy,
            &self.policy.protection(),
            &action,
            &FsResolver,
            &|host: &str| known.contains(host),
        );
        let offered = match offered {
            Ok(offered) => offered,
            Err(ineligible) => {
                proposal.refused = Some(refusal(&ineligible));
                return Ok(proposal);
            }
        };
        let preview = self
            .preview(
                &policy,
                GrantSpec {
                    id: "preview".into(),
                    rules: offered.rules.clone(),
                    scope: GrantScope::Everywhere,
                    expires_at_ms: None,
                    hosts: offered.hosts.clone(),
                },
                action_id,
            )
            .await?;
        proposal.offered = true;
        proposal.rules = offered.rules.into_iter().map(Value::Object).collect();
        proposal.toml = offered.toml;
        proposal.hosts = offered.hosts;
        proposal.scopes = offered
            .scopes
            .iter()
            .map(|s| scope_name(s).to_owned())
            .collect();
        proposal.would_allow = preview.would_allow;
        proposal.previewed = preview.previewed;
        Ok(proposal)
    }

    /// Edited rules, previewed: do they cover the action, and what else would they allow.
    pub async fn grant_preview(
        &self,
        action_id: &str,
        rules: &[Value],
        scope: Option<&str>,
    ) -> Result<GrantPreview, ActionError> {
        let view = self.view(action_id).await?;
        let policy = self.policy.current();
        let rules = rule_objects(rules)?;
        let scope = scope_for(scope.unwrap_or("everywhere"), &view)?;
        let compiled = grant::compile_rules("preview", &rules)
            .map_err(|err| invalid("rules", err.to_string()))?;
        let covers = action_ref(&view)
            .is_some_and(|action| grant::rules_allow(&compiled, &policy, &action, &FsResolver));
        let hosts = view
            .input
            .as_object()
            .map(gatehouse_policy::hosts_of_input)
            .unwrap_or_default();
        let spec = GrantSpec {
            id: "preview".into(),
            rules,
            scope,
            expires_at_ms: None,
            hosts,
        };
        let mut preview = self.preview(&policy, spec, action_id).await?;
        preview.covers_action = covers;
        Ok(preview)
    }

    /// A presence challenge to save a grant from an action a person approved before (from a
    /// pending action, the decision's own challenge serves: `POST /v1/actions/{id}/presence`).
    pub async fn grant_presence_challenge(
        &self,
        action_id: &str,
        action_hash: &str,
    ) -> Result<RequestOptions, ActionError> {
        let view = self.view(action_id).await?;
        if !view.action_hash.eq_ignore_ascii_case(action_hash) {
            return Err(ActionError::ActionMismatch(Box::new(view)));
        }
        Ok(self
            .presence
            .decision_challenge(action_id, &view.action_hash, Decision::Approve)?)
    }

    /// Saves a grant made from `action_id`: approves the action when it is still pending (the
    /// decision's presence rules apply), or, for an action a person approved before (a
    /// suggestion), verifies presence for it; then records the grant and puts it in force.
    pub async fn create_grant(
        &self,
        person: &Person,
        action_id: &str,
        request: GrantRequest,
    ) -> Result<GrantCreated, ActionError> {
        if !person.role.may_decide() {
            return Err(ActionError::Forbidden(format!(
                "{} is a reviewer: a reviewer may not approve actions or grant them",
                person.name
            )));
        }
        if request.note.as_ref().is_some_and(|n| n.len() > 4096) {
            return Err(invalid("note", "a note is at most 4096 bytes"));
        }
        let view = self.view(action_id).await?;
        if !view.action_hash.eq_ignore_ascii_case(&request.action_hash) {
            return Err(ActionError::ActionMismatch(Box::new(view)));
        }
        let now = now_ms();
        let expires_at_ms = expiry(&request, now)?;
        let scope = scope_for(&request.scope, &view)?;
        let policy = self.policy.current();
        let known = self.known_hosts().await?;
        let action = action_ref(&view).ok_or_else(|| invalid("input", "not an object"))?;
        // Never granted (even when the request is forced): re-checked here, whatever the page said.
        let proposal = grant::propose(
            &policy,
            &self.policy.protection(),
            &action,
            &FsResolver,
            &|host: &str| known.contains(host),
        )
        .map_err(|ineligible| {
            let refused = refusal(&ineligible);
            ActionError::Conflict {
                code: "grant_refused",
                message: format!(
                    "no grant for this action ({}): {}",
                    refused.code, refused.message
                ),
            }
        })?;
        let rules = match &request.rules {
            Some(rules) => rule_objects(rules)?,
            None => proposal.rules.clone(),
        };
        let id = format!("grt_{}", ulid::Ulid::new());
        let compiled =
            grant::compile_rules(&id, &rules).map_err(|err| invalid("rules", err.to_string()))?;
        if !grant::rules_allow(&compiled, &policy, &action, &FsResolver) {
            return Err(invalid(
                "rules",
                "the rules do not allow the action the grant is made from (every simple command must be allowed, and only what the engine fully understands is)",
            ));
        }
        if self.grants.current().len() >= MAX_ACTIVE_GRANTS {
            return Err(ActionError::Conflict {
                code: "too_many_grants",
                message: format!("{MAX_ACTIVE_GRANTS} grants are in force: revoke some first"),
            });
        }
        let view = match view.verdict {
            Verdict::Pending => {
                self.decide_by(
                    person,
                    action_id,
                    Decision::Approve,
                    request.note.clone(),
                    Some(&request.action_hash),
                    request.presence.as_ref(),
                )
                .await?
            }
            Verdict::Allow if view.decided_by == DecidedBy::Human => {
                self.presence.verify_decision_by(
                    &person.name,
                    action_id,
                    Some(&view.action_hash),
                    Decision::Approve,
                    request.presence.as_ref(),
                )?;
                view
            }
            _ => {
                return Err(ActionError::Conflict {
                    code: "grant_refused",
                    message: "a grant is made from a paused action, or from one a person approved"
                        .into(),
                });
            }
        };
        if view.verdict != Verdict::Allow {
            // An approval that needs more people is recorded, not decided: no grant yet.
            return Err(ActionError::Conflict {
                code: "grant_refused",
                message: "the approval was recorded but the action is not approved yet (it needs more approvers): no grant".into(),
            });
        }
        let scope_json = serde_json::to_value(&scope).unwrap_or(Value::Null);
        self.ledger
            .record_grant(NewGrant {
                id: id.clone(),
                created_at_ms: now,
                expires_at_ms,
                scope: scope_json,
                rules: rules.into_iter().map(Value::Object).collect(),
                hosts: proposal.hosts,
                action_id: Some(action_id.to_owned()),
                created_by: person.name.clone(),
                note: request.note,
            })
            .await?;
        self.grants.reload(&self.ledger).await?;
        tracing::info!(
            grant_id = id,
            action_id,
            scope = scope_name(&scope),
            "grant saved"
        );
        let grant = self.grant(&id).await?;
        Ok(GrantCreated {
            grant,
            action: view,
        })
    }

    async fn grant(&self, id: &str) -> Result<GrantRecord, ActionError> {
        self.list_grants()
            .await?
            .grants
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| ActionError::Missing(format!("no grant with id {id}")))
    }

    /// Every grant, newest first, with its state now.
    pub async fn list_grants(&self) -> Result<GrantList, ActionError> {
        let now = now_ms();
        let mut grants = self.ledger.grants().await?;
        for record in &mut grants {
            record.status = status(record, now);
        }
        Ok(GrantList { grants })
    }

    /// Revokes a grant (it stops applying at once). Revoking only tightens: no presence needed.
    pub async fn revoke_grant(
        &self,
        person: &Person,
        id: &str,
    ) -> Result<GrantRecord, ActionError> {
        match self.ledger.revoke_grant(id, now_ms(), &person.name).await? {
            Revoked::Revoked | Revoked::Already => {}
            Revoked::NotFound => {
                return Err(ActionError::Missing(format!("no grant with id {id}")));
            }
        }
        self.grants.reload(&self.ledger).await?;
        tracing::info!(grant_id = id, "grant revoked");
        self.grant(id).await
    }

    /// Grants to review: kinds of action people approved at least [`SUGGESTION_MIN_APPROVALS`]
    /// times in the window, that a grant could cover and none does yet. Nothing is applied.
    pub async fn grant_suggestions(&self) -> Result<GrantSuggestions, ActionError> {
        let since_ms = now_ms() - SUGGESTION_WINDOW_MS;
        let approved = self
            .ledger
            .approvals_since(since_ms, PREVIEW_ACTIONS)
            .await?;
        let policy = self.policy.current();
        let protection = self.policy.protection();
        let known = self.known_hosts().await?;
        let grants = self.grants.current();
        let now = now_ms();
        // Newest first: the first of each kind is its latest approval.
        let mut kinds: BTreeMap<String, GrantSuggestion> = BTreeMap::new();
        for approval in &approved {
            let action = &approval.action;
            let action_ref = ActionRef {
                tool: &action.tool,
                input: &action.input,
                session_id: action.session_id.as_deref(),
                agent: action.agent.as_deref(),
                cwd: action.cwd.as_deref(),
            };
            let Ok(proposal) = grant::propose(
                &policy,
                &protection,
                &action_ref,
                &FsResolver,
                &|host: &str| known.contains(host),
            ) else {
                continue;
            };
            if !grants.is_empty() {
                let now_decided =
                    grant::evaluate(&policy, &protection, &grants, &action_ref, &FsResolver, now);
                if now_decided.effect == Effect::Allow {
                    continue;
                }
            }
            let key = format!(
                "{}\u{0}{}",
                action.cwd.as_deref().unwrap_or_default(),
                Value::Array(proposal.rules.iter().cloned().map(Value::Object).collect())
            );
            kinds
                .entry(key)
                .and_modify(|s| s.approvals += 1)
                .or_insert_with(|| GrantSuggestion {
                    action_id: action.id.clone(),
                    action_hash: approval.action_hash.clone(),
                    tool: action.tool.clone(),
                    summary: summary(&action.tool, &action.input),
                    approvals: 1,
                    project: action.cwd.clone(),
                    last_approved_at_ms: approval.decided_at_ms,
                    rules: proposal.rules.into_iter().map(Value::Object).collect(),
                    toml: proposal.toml,
                });
        }
        let mut suggestions: Vec<GrantSuggestion> = kinds
            .into_values()
            .filter(|s| s.approvals >= SUGGESTION_MIN_APPROVALS)
            .collect();
        suggestions.sort_by(|a, b| {
            b.approvals
                .cmp(&a.approvals)
                .then(b.last_approved_at_ms.cmp(&a.last_approved_at_ms))
        });
        suggestions.truncate(20);
        Ok(GrantSuggestions {
            since_ms,
            min_approvals: SUGGESTION_MIN_APPROVALS,
            suggestions,
        })
    }

    /// The approval-fatigue figures since `since_ms` (default: the last 24 hours).
    pub async fn grant_stats(&self, since_ms: Option<i64>) -> Result<GrantStats, ActionError> {
        let since_ms = since_ms.unwrap_or_else(|| now_ms() - DAY_MS);
        let counts = self.ledger.grant_counts(since_ms).await?;
        let asked = counts.granted + counts.paused;
        Ok(GrantStats {
            since_ms,
            actions: counts.actions,
            paused: counts.paused,
            granted: counts.granted,
            decided_by_people: counts.decided_by_people,
            share_answered_by_grants: if asked == 0 {
                0.0
            } else {
                counts.granted as f64 / asked as f64
            },
            grants_active: self.grants.current().len() as u64,
        })
    }
}
