//! Team records (schema 9): named people and their roles, each person's answer on a paused
//! action, and the versions of the policy. All are chained records appended by the single
//! writer, like actions and decisions.
//!
//! *Invariant*: a person's approval counts once per action, and an action needing `approvals =
//! N` is decided when N different people approved it; a denial by anyone decides at once. The
//! approval that completes the count and the decision commit in one transaction, so the
//! decision is still the action's only one (`decisions` primary key).

use gatehouse_protocol::{ActionView, ApprovalRecord, DecidedBy, Decision, Role, Verdict};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::chain::Kind;
use crate::writer::{self, Cursor};
use crate::{DecisionFact, DecisionOutcome, LedgerError, SqliteLedger};

/// A person to add; `token_hash` is the SHA-256 of the token handed to them once.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub token_hash: [u8; 32],
    /// Who adds them.
    pub actor: String,
    pub recorded_at_ms: i64,
}

/// A current user, as the fold of the `users` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub token_hash: [u8; 32],
    pub added_by: String,
    pub added_at_ms: i64,
}

/// What adding or removing a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    Added(UserRecord),
    Removed,
    /// `add`: a user with that name exists already; nothing was appended.
    Exists,
    /// `remove`: no such user; nothing was appended.
    Unknown,
}

/// One person's answer on a paused action.
#[derive(Debug, Clone)]
pub struct PersonDecision {
    pub action_id: String,
    pub approver: String,
    pub decision: Decision,
    /// The action hash the person saw (required to approve; compare-and-set as for decisions).
    pub action_hash: Option<[u8; 32]>,
    pub note: Option<String>,
    /// How many different people must approve (the rule's `approvals`, at least 1).
    pub required: u32,
    pub recorded_at_ms: i64,
}

/// What a person's answer did.
#[derive(Debug, Clone)]
pub enum PersonOutcome {
    /// It decided the action (a denial, or the last approval needed).
    Decided(Box<ActionView>),
    /// The approval is recorded; the action waits for `required - approvals` more people.
    Awaiting {
        action: Box<ActionView>,
        approvals: u32,
        required: u32,
    },
    /// This person already approved this action: nothing was appended.
    AlreadyApproved(Box<ActionView>),
    AlreadyDecided(Box<ActionView>),
    ActionMismatch(Box<ActionView>),
    NotFound,
}

/// A policy text to record as the next version.
#[derive(Debug, Clone)]
pub struct NewPolicyVersion {
    pub text: String,
    pub pushed_by: String,
    pub rollback_of: Option<i64>,
    pub recorded_at_ms: i64,
}

/// A recorded policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: i64,
    pub text: String,
    pub sha256: [u8; 32],
    pub pushed_by: String,
    pub rollback_of: Option<i64>,
    pub recorded_at_ms: i64,
}

pub(crate) enum TeamCommand {
    AddUser(NewUser),
    RemoveUser {
        name: String,
        actor: String,
        recorded_at_ms: i64,
    },
    Decide(PersonDecision),
    PushPolicy(NewPolicyVersion),
}

pub(crate) enum TeamOutcome {
    User(UserChange),
    Person(PersonOutcome),
    Policy(PolicyVersion),
}

fn unexpected() -> LedgerError {
    LedgerError::CommitFailed("the ledger writer answered another kind of command".into())
}

impl SqliteLedger {
    /// Appends an action decided by the pushed policy `version` (`record_action` with the
    /// version chained beside it).
    pub async fn record_versioned_action(
        &self,
        action: crate::NewAction,
        version: i64,
    ) -> Result<crate::Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::VersionedAction(Box::new((action, version)), reply))
            .await
    }

    async fn team(&self, command: TeamCommand) -> Result<TeamOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Team(Box::new(command), reply))
            .await
    }

    /// Adds a person (a chained `user` record); `Exists` if the name is taken.
    pub async fn add_user(&self, user: NewUser) -> Result<UserChange, LedgerError> {
        match self.team(TeamCommand::AddUser(user)).await? {
            TeamOutcome::User(change) => Ok(change),
            _ => Err(unexpected()),
        }
    }

    /// Removes a person: their token stops working; their past answers stay.
    pub async fn remove_user(
        &self,
        name: &str,
        actor: &str,
        recorded_at_ms: i64,
    ) -> Result<UserChange, LedgerError> {
        let command = TeamCommand::RemoveUser {
            name: name.to_owned(),
            actor: actor.to_owned(),
            recorded_at_ms,
        };
        match self.team(command).await? {
            TeamOutcome::User(change) => Ok(change),
            _ => Err(unexpected()),
        }
    }

    /// Records a person's approval or denial, deciding the action when it completes.
    pub async fn record_person_decision(
        &self,
        decision: PersonDecision,
    ) -> Result<PersonOutcome, LedgerError> {
        match self.team(TeamCommand::Decide(decision)).await? {
            TeamOutcome::Person(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    /// Records the next policy version and returns it.
    pub async fn push_policy(
        &self,
        version: NewPolicyVersion,
    ) -> Result<PolicyVersion, LedgerError> {
        match self.team(TeamCommand::PushPolicy(version)).await? {
            TeamOutcome::Policy(version) => Ok(version),
            _ => Err(unexpected()),
        }
    }

    /// The current users, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, LedgerError> {
        self.inner.reads.run(users).await
    }

    /// Every policy version, oldest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, LedgerError> {
        self.inner.reads.run(policy_versions).await
    }
}

pub(crate) fn apply(
    tx: &Connection,
    command: TeamCommand,
    cursor: &mut Cursor,
) -> Result<TeamOutcome, LedgerError> {
    Ok(match command {
        TeamCommand::AddUser(user) => TeamOutcome::User(add_user(tx, &user, cursor)?),
        TeamCommand::RemoveUser {
            name,
            actor,
            recorded_at_ms,
        } => TeamOutcome::User(remove_user(tx, &name, &actor, recorded_at_ms, cursor)?),
        TeamCommand::Decide(decision) => TeamOutcome::Person(decide(tx, &decision, cursor)?),
        TeamCommand::PushPolicy(version) => TeamOutcome::Policy(push(tx, version, cursor)?),
    })
}

/// A `users` row: event, role, token hash, actor, time.
pub(crate) type UserEvent = (String, Option<String>, Option<Vec<u8>>, String, i64);

fn current_user(conn: &Connection, name: &str) -> rusqlite::Result<Option<UserRecord>> {
    let last: Option<UserEvent> = conn
        .prepare_cached(
            "SELECT event, role, token_hash, actor, recorded_at_ms FROM users
             WHERE name = ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([name], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    Ok(last.and_then(|event| user_from_event(name, event)))
}

/// The user a name's last `users` event leaves (`None` after a removal, or a damaged row):
/// the one decoding of a user record, for both backends.
pub(crate) fn user_from_event(name: &str, last: UserEvent) -> Option<UserRecord> {
    match last {
        (event, Some(role), Some(hash), actor, at) if event == "add" => {
            match (Role::parse(&role), <[u8; 32]>::try_from(hash.as_slice())) {
                (Some(role), Ok(token_hash)) => Some(UserRecord {
                    name: name.to_owned(),
                    role,
                    token_hash,
                    added_by: actor,
                    added_at_ms: at,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A person's answer as the `approvals.decision` column holds it.
pub(crate) fn decision_text(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "approve",
        Decision::Deny => "deny",
    }
}

/// The `approvals.decision` column as a person's answer (anything but `approve` denies).
pub(crate) fn decision_from_text(text: &str) -> Decision {
    if text == "approve" {
        Decision::Approve
    } else {
        Decision::Deny
    }
}

/// The decision a person's answer makes when it decides the action.
pub(crate) fn decision_fact(answer: &PersonDecision) -> DecisionFact {
    DecisionFact {
        action_id: answer.action_id.clone(),
        decided_at_ms: answer.recorded_at_ms,
        verdict: match answer.decision {
            Decision::Approve => Verdict::Allow,
            Decision::Deny => Verdict::Reject,
        },
        decided_by: DecidedBy::Human,
        note: answer.note.clone(),
        action_hash: answer.action_hash,
    }
}

/// What a decision's outcome is as a person's outcome.
pub(crate) fn person_outcome(decided: DecisionOutcome) -> PersonOutcome {
    match decided {
        DecisionOutcome::Decided(view) => PersonOutcome::Decided(view),
        DecisionOutcome::AlreadyDecided(view) => PersonOutcome::AlreadyDecided(view),
        DecisionOutcome::ActionMismatch(view) => PersonOutcome::ActionMismatch(view),
        DecisionOutcome::NotFound => PersonOutcome::NotFound,
    }
}

/// Whether `answer` may be recorded on `current`: `Some(outcome)` when it may not (decided
/// already, another action's hash, this person approved already). Both backends ask it under
/// their write serialisation.
pub(crate) fn refuse_answer(
    current: ActionView,
    answer: &PersonDecision,
) -> Result<ActionView, PersonOutcome> {
    if current.verdict != Verdict::Pending {
        return Err(PersonOutcome::AlreadyDecided(Box::new(current)));
    }
    if let Some(named) = &answer.action_hash
        && crate::action_hash::from_hex(&current.action_hash).as_ref() != Some(named)
    {
        return Err(PersonOutcome::ActionMismatch(Box::new(current)));
    }
    if answer.decision == Decision::Approve
        && current
            .approvals
            .iter()
            .any(|a| a.approver == answer.approver && a.decision == Decision::Approve)
    {
        return Err(PersonOutcome::AlreadyApproved(Box::new(current)));
    }
    Ok(current)
}

/// The SHA-256 a policy version records of its text.
pub(crate) fn policy_sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn add_user(
    conn: &Connection,
    user: &NewUser,
    cursor: &mut Cursor,
) -> Result<UserChange, LedgerError> {
    if current_user(conn, &user.name)?.is_some() {
        return Ok(UserChange::Exists);
    }
    conn.prepare_cached(
        "INSERT INTO users (name, event, role, token_hash, actor, recorded_at_ms)
         VALUES (?1, 'add', ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        user.name,
        user.role.as_str(),
        &user.token_hash[..],
        user.actor,
        user.recorded_at_ms
    ])?;
    writer::chain_record(conn, cursor, Kind::User, conn.last_insert_rowid())?;
    Ok(UserChange::Added(UserRecord {
        name: user.name.clone(),
        role: user.role,
        token_hash: user.token_hash,
        added_by: user.actor.clone(),
        added_at_ms: user.recorded_at_ms,
    }))
}

fn remove_user(
    conn: &Connection,
    name: &str,
    actor: &str,
    at_ms: i64,
    cursor: &mut Cursor,
) -> Result<UserChange, LedgerError> {
    if current_user(conn, name)?.is_none() {
        return Ok(UserChange::Unknown);
    }
    conn.prepare_cached(
        "INSERT INTO users (name, event, role, token_hash, actor, recorded_at_ms)
         VALUES (?1, 'remove', NULL, NULL, ?2, ?3)",
    )?
    .execute(params![name, actor, at_ms])?;
    writer::chain_record(conn, cursor, Kind::User, conn.last_insert_rowid())?;
    Ok(UserChange::Removed)
}

fn decide(
    conn: &Connection,
    answer: &PersonDecision,
    cursor: &mut Cursor,
) -> Result<PersonOutcome, LedgerError> {
    let Some(current) = crate::read::action(conn, &answer.action_id)? else {
        return Ok(PersonOutcome::NotFound);
    };
    let current = match refuse_answer(current, answer) {
        Ok(current) => current,
        Err(refused) => return Ok(refused),
    };
    conn.prepare_cached(
        "INSERT INTO approvals (action_id, approver, decision, action_hash, note, recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        answer.action_id,
        answer.approver,
        decision_text(answer.decision),
        answer.action_hash.as_ref().map(|hash| &hash[..]),
        answer.note,
        answer.recorded_at_ms,
    ])?;
    writer::chain_record(conn, cursor, Kind::Approval, conn.last_insert_rowid())?;
    let approvals: u32 = conn
        .prepare_cached(
            "SELECT count(DISTINCT approver) FROM approvals
             WHERE action_id = ?1 AND decision = 'approve'",
        )?
        .query_row([&answer.action_id], |row| row.get(0))?;
    let required = answer.required.max(1);
    if answer.decision == Decision::Approve && approvals < required {
        let action = crate::read::action(conn, &answer.action_id)?.unwrap_or(current);
        return Ok(PersonOutcome::Awaiting {
            action: Box::new(action),
            approvals,
            required,
        });
    }
    let fact = decision_fact(answer);
    // The approval is already written: if its decision cannot be, neither may commit.
    let decided = writer::insert_decision(conn, &fact, cursor).inspect_err(|err| {
        cursor.break_batch(format!(
            "cannot record the decision after its approval: {err}"
        ));
    })?;
    Ok(person_outcome(decided))
}

fn push(
    conn: &Connection,
    version: NewPolicyVersion,
    cursor: &mut Cursor,
) -> Result<PolicyVersion, LedgerError> {
    let sha256 = policy_sha256(&version.text);
    let number: i64 = conn
        .prepare_cached("SELECT coalesce(max(version), 0) + 1 FROM policy_versions")?
        .query_row([], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO policy_versions (version, text, sha256, pushed_by, rollback_of, recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        number,
        version.text,
        &sha256[..],
        version.pushed_by,
        version.rollback_of,
        version.recorded_at_ms
    ])?;
    writer::chain_record(conn, cursor, Kind::Policy, number)?;
    Ok(PolicyVersion {
        version: number,
        text: version.text,
        sha256,
        pushed_by: version.pushed_by,
        rollback_of: version.rollback_of,
        recorded_at_ms: version.recorded_at_ms,
    })
}

/// Records an action (`writer::insert_action`) and, if it was inserted, the policy version that
/// decided it, chained in the same transaction.
pub(crate) fn insert_versioned_action(
    conn: &Connection,
    action: &crate::NewAction,
    version: i64,
    cursor: &mut Cursor,
) -> Result<crate::Recorded, LedgerError> {
    let recorded = writer::insert_action(conn, action, cursor)?;
    if matches!(recorded, crate::Recorded::Inserted) {
        let written = conn
            .prepare_cached(
                "INSERT INTO action_policy (action_id, version, recorded_at_ms) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute(params![action.id, version, action.created_at_ms]))
            .map_err(LedgerError::from)
            .and_then(|_| {
                writer::chain_record(conn, cursor, Kind::ActionPolicy, conn.last_insert_rowid())
            });
        // The action is written: without its version it must not commit either.
        if let Err(err) = written {
            cursor.break_batch(format!("cannot record the action's policy version: {err}"));
            return Err(err);
        }
    }
    Ok(recorded)
}

/// Whether the file has schema 9's tables (a ledger read without migrating it may not).
pub(crate) fn has_team_tables(conn: &Connection) -> rusqlite::Result<bool> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(version >= 9)
}

pub(crate) fn users(conn: &Connection) -> Result<Vec<UserRecord>, LedgerError> {
    if !has_team_tables(conn)? {
        return Ok(Vec::new());
    }
    let names: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT name FROM users ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut users = Vec::with_capacity(names.len());
    for name in names {
        if let Some(user) = current_user(conn, &name)? {
            users.push(user);
        }
    }
    Ok(users)
}

pub(crate) fn policy_versions(conn: &Connection) -> Result<Vec<PolicyVersion>, LedgerError> {
    if !has_team_tables(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT version, text, sha256, pushed_by, rollback_of, recorded_at_ms
         FROM policy_versions ORDER BY version",
    )?;
    let rows = stmt.query_map([], |row| {
        let sha: Vec<u8> = row.get(2)?;
        Ok(PolicyVersion {
            version: row.get(0)?,
            text: row.get(1)?,
            sha256: sha.try_into().unwrap_or([0; 32]),
            pushed_by: row.get(3)?,
            rollback_of: row.get(4)?,
            recorded_at_ms: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Each person's answer on one action, oldest first (none on a file from before schema 9).
pub(crate) fn approvals_for(
    conn: &Connection,
    action_id: &str,
) -> Result<Vec<ApprovalRecord>, LedgerError> {
    if !has_team_tables(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT approver, decision, note, recorded_at_ms FROM approvals
         WHERE action_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([action_id], |row| {
        let decision: String = row.get(1)?;
        Ok(ApprovalRecord {
            approver: row.get(0)?,
            decision: decision_from_text(&decision),
            note: row.get(2)?,
            recorded_at_ms: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Fills in the view's approvals and, when a person decided it, who; and the pushed policy
/// version that decided it.
pub(crate) fn attach_approvals(
    conn: &Connection,
    view: &mut ActionView,
) -> Result<(), LedgerError> {
    view.approvals = approvals_for(conn, &view.action_id)?;
    if has_team_tables(conn)? {
        view.policy_version = conn
            .prepare_cached("SELECT version FROM action_policy WHERE action_id = ?1")?
            .query_row([&view.action_id], |row| row.get(0))
            .optional()?;
    }
    if let Some(decision) = &mut view.decision
        && decision.decided_by == DecidedBy::Human
    {
        decision.approver = view.approvals.last().map(|a| a.approver.clone());
    }
    Ok(())
}

/// How many team records the file holds (for the verifier's count of unchained records).
pub(crate) fn record_count(conn: &Connection) -> rusqlite::Result<i64> {
    if !has_team_tables(conn)? {
        return Ok(0);
    }
    conn.query_row(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM approvals)
              + (SELECT count(*) FROM policy_versions) + (SELECT count(*) FROM action_policy)",
        [],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use gatehouse_protocol::Tier2Status;
    use serde_json::json;

    use super::*;
    use crate::{
        ExportFilter, ExportFormat, Ledger, LedgerConfig, NewAction, export_file, verify_export,
    };

    fn paused(id: &str) -> NewAction {
        NewAction {
            id: id.to_owned(),
            created_at_ms: 1_000,
            tool: "Deploy".into(),
            input: json!({"target": "prod"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            session_id: None,
            agent: None,
            tool_use_id: None,
            cwd: None,
            context: None,
            verdict: Verdict::Pending,
            decided_by: DecidedBy::Rule,
            rule_id: Some("two-person".into()),
            reason: "needs two".into(),
            deadline_ms: Some(i64::MAX / 2),
            tier2_status: Tier2Status::Disabled,
            peer_uid: None,
            peer_pid: None,
            observed_effect: None,
        }
    }

    fn answer(id: &str, who: &str, decision: Decision, hash: [u8; 32]) -> PersonDecision {
        PersonDecision {
            action_id: id.into(),
            approver: who.into(),
            decision,
            action_hash: Some(hash),
            note: None,
            required: 2,
            recorded_at_ms: 2_000,
        }
    }

    #[tokio::test]
    async fn two_approvals_decide_and_an_export_verifies_offline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut config = LedgerConfig::new(&path);
        config.signing_key = Some(dir.path().join("ledger.key"));
        let ledger = Ledger::open(config).unwrap();
        let version = ledger
            .push_policy(NewPolicyVersion {
                text: "default = \"pause\"\n".into(),
                pushed_by: "owner".into(),
                rollback_of: None,
                recorded_at_ms: 500,
            })
            .await
            .unwrap();
        assert_eq!(version.version, 1);
        ledger
            .record_action_under(paused("act_1"), Some(1))
            .await
            .unwrap();
        let view = ledger.action("act_1").await.unwrap().unwrap();
        assert_eq!(view.policy_version, Some(1));
        let hash = crate::action_hash::from_hex(&view.action_hash).unwrap();

        let first = ledger
            .record_person_decision(answer("act_1", "alice", Decision::Approve, hash))
            .await
            .unwrap();
        assert!(matches!(
            first,
            PersonOutcome::Awaiting {
                approvals: 1,
                required: 2,
                ..
            }
        ));
        let again = ledger
            .record_person_decision(answer("act_1", "alice", Decision::Approve, hash))
            .await
            .unwrap();
        assert!(matches!(again, PersonOutcome::AlreadyApproved(_)));
        let PersonOutcome::Decided(decided) = ledger
            .record_person_decision(answer("act_1", "bob", Decision::Approve, hash))
            .await
            .unwrap()
        else {
            panic!("the second person's approval decides");
        };
        assert_eq!(decided.verdict, Verdict::Allow);
        assert_eq!(decided.decision.unwrap().approver.as_deref(), Some("bob"));
        ledger.sign_checkpoint().await.unwrap();
        ledger
            .verify(crate::VerifyOptions::default())
            .await
            .unwrap();

        let mut out = Vec::new();
        let summary = export_file(
            &path,
            &ExportFilter::default(),
            ExportFormat::Jsonl,
            &mut out,
        )
        .unwrap();
        assert_eq!(summary.actions, 1);
        let report = verify_export(out.as_slice(), None).unwrap();
        assert_eq!(report.actions, 1);
        assert!(report.signed_through.is_some(), "{report:?}");
        let text = String::from_utf8(out).unwrap();
        let tampered = text.replacen(r#"{"t":"bob"}"#, r#"{"t":"eve"}"#, 1);
        assert_ne!(tampered, text);
        let failure = verify_export(tampered.as_bytes(), None).unwrap_err();
        assert!(
            failure.detail.contains("does not match its hash"),
            "{failure}"
        );
        let wrong_key = verify_export(text.as_bytes(), Some([7; 32])).unwrap_err();
        assert!(wrong_key.detail.contains("another key"), "{wrong_key}");
    }
}
