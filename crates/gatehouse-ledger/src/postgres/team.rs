//! Team records on PostgreSQL (schema 3, `migrations-postgres/0003_team.sql`): named people,
//! each person's answer on a paused action, the policy's versions and the version that decided
//! each action — the same chained records as SQLite's `crate::team`, decoded by the same
//! functions, written by the replica's writer under the chain's advisory lock.
//!
//! *Invariant* (as in SQLite): a person's approval counts once per action; the approval that
//! completes the count and the decision commit in one transaction; versions are numbered 1, 2,
//! 3... across every replica (numbered under the lock), and each push, and each user added or
//! removed, is announced to every replica (`pg_notify`, delivered at commit).

use gatehouse_protocol::{ActionView, ApprovalRecord, DecidedBy, Decision};
use tokio_postgres::GenericClient;

use super::write::{announce, insert_action, insert_decision};
use super::{chain, read};
use crate::chain::{ChainHead, Kind};
use crate::team::{
    self, NewPolicyVersion, NewUser, PersonDecision, PersonOutcome, PolicyVersion, TeamCommand,
    TeamOutcome, UserChange, UserEvent, UserRecord,
};
use crate::{LedgerError, NewAction, Recorded};

pub(crate) async fn apply(
    tx: &impl GenericClient,
    command: &TeamCommand,
    head: &mut ChainHead,
    replica: &str,
) -> Result<TeamOutcome, LedgerError> {
    Ok(match command {
        TeamCommand::AddUser(user) => {
            let change = add_user(tx, user, head).await?;
            if matches!(change, UserChange::Added(_)) {
                announce(tx, "user", replica, &user.name).await?;
            }
            TeamOutcome::User(change)
        }
        TeamCommand::RemoveUser {
            name,
            actor,
            recorded_at_ms,
        } => {
            let change = remove_user(tx, name, actor, *recorded_at_ms, head).await?;
            if change == UserChange::Removed {
                announce(tx, "user", replica, name).await?;
            }
            TeamOutcome::User(change)
        }
        TeamCommand::Decide(answer) => {
            TeamOutcome::Person(decide(tx, answer, head, replica).await?)
        }
        TeamCommand::PushPolicy(version) => {
            TeamOutcome::Policy(push(tx, version, head, replica).await?)
        }
    })
}

async fn current_user(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<UserRecord>, LedgerError> {
    let row = client
        .query_opt(
            "SELECT event, role, token_hash, actor, recorded_at_ms FROM users
             WHERE name = $1 ORDER BY seq DESC LIMIT 1",
            &[&name],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let event: UserEvent = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
    );
    Ok(team::user_from_event(name, event))
}

async fn add_user(
    tx: &impl GenericClient,
    user: &NewUser,
    head: &mut ChainHead,
) -> Result<UserChange, LedgerError> {
    if current_user(tx, &user.name).await?.is_some() {
        return Ok(UserChange::Exists);
    }
    let seq: i64 = tx
        .query_one(
            "INSERT INTO users (name, event, role, token_hash, actor, recorded_at_ms)
             VALUES ($1, 'add', $2, $3, $4, $5) RETURNING seq",
            &[
                &user.name,
                &user.role.as_str(),
                &&user.token_hash[..],
                &user.actor,
                &user.recorded_at_ms,
            ],
        )
        .await?
        .try_get(0)?;
    *head = chain::append(tx, *head, Kind::User, seq).await?;
    Ok(UserChange::Added(UserRecord {
        name: user.name.clone(),
        role: user.role,
        token_hash: user.token_hash,
        added_by: user.actor.clone(),
        added_at_ms: user.recorded_at_ms,
    }))
}

async fn remove_user(
    tx: &impl GenericClient,
    name: &str,
    actor: &str,
    at_ms: i64,
    head: &mut ChainHead,
) -> Result<UserChange, LedgerError> {
    if current_user(tx, name).await?.is_none() {
        return Ok(UserChange::Unknown);
    }
    let seq: i64 = tx
        .query_one(
            "INSERT INTO users (name, event, role, token_hash, actor, recorded_at_ms)
             VALUES ($1, 'remove', NULL, NULL, $2, $3) RETURNING seq",
            &[&name, &actor, &at_ms],
        )
        .await?
        .try_get(0)?;
    *head = chain::append(tx, *head, Kind::User, seq).await?;
    Ok(UserChange::Removed)
}

async fn decide(
    tx: &impl GenericClient,
    answer: &PersonDecision,
    head: &mut ChainHead,
    replica: &str,
) -> Result<PersonOutcome, LedgerError> {
    let Some(current) = read::action(tx, &answer.action_id).await? else {
        return Ok(PersonOutcome::NotFound);
    };
    let current = match team::refuse_answer(current, answer) {
        Ok(current) => current,
        Err(refused) => return Ok(refused),
    };
    let seq: i64 = tx
        .query_one(
            "INSERT INTO approvals (action_id, approver, decision, action_hash, note, recorded_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            &[
                &answer.action_id,
                &answer.approver,
                &team::decision_text(answer.decision),
                &answer.action_hash.as_ref().map(|hash| &hash[..]),
                &answer.note,
                &answer.recorded_at_ms,
            ],
        )
        .await?
        .try_get(0)?;
    *head = chain::append(tx, *head, Kind::Approval, seq).await?;
    let approvals: i64 = tx
        .query_one(
            "SELECT count(DISTINCT approver) FROM approvals
             WHERE action_id = $1 AND decision = 'approve'",
            &[&answer.action_id],
        )
        .await?
        .try_get(0)?;
    let approvals = u32::try_from(approvals).unwrap_or(u32::MAX);
    let required = answer.required.max(1);
    if answer.decision == Decision::Approve && approvals < required {
        let action = read::action(tx, &answer.action_id)
            .await?
            .unwrap_or(current);
        return Ok(PersonOutcome::Awaiting {
            action: Box::new(action),
            approvals,
            required,
        });
    }
    // In the approval's transaction: if the decision fails, the approval is not committed
    // either (PostgreSQL aborts the whole transaction).
    let decided = insert_decision(tx, &team::decision_fact(answer), head, replica).await?;
    Ok(team::person_outcome(decided))
}

async fn push(
    tx: &impl GenericClient,
    version: &NewPolicyVersion,
    head: &mut ChainHead,
    replica: &str,
) -> Result<PolicyVersion, LedgerError> {
    let sha256 = team::policy_sha256(&version.text);
    let number: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM policy_versions",
            &[],
        )
        .await?
        .try_get(0)?;
    tx.execute(
        "INSERT INTO policy_versions (version, text, sha256, pushed_by, rollback_of, recorded_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &number,
            &version.text,
            &&sha256[..],
            &version.pushed_by,
            &version.rollback_of,
            &version.recorded_at_ms,
        ],
    )
    .await?;
    *head = chain::append(tx, *head, Kind::Policy, number).await?;
    announce(tx, "policy", replica, &number.to_string()).await?;
    Ok(PolicyVersion {
        version: number,
        text: version.text.clone(),
        sha256,
        pushed_by: version.pushed_by.clone(),
        rollback_of: version.rollback_of,
        recorded_at_ms: version.recorded_at_ms,
    })
}

/// Records an action and, if it was inserted, the policy version that decided it, chained in
/// the same transaction (both or neither).
pub(crate) async fn insert_versioned_action(
    tx: &impl GenericClient,
    action: &NewAction,
    version: i64,
    head: &mut ChainHead,
    replica: &str,
) -> Result<Recorded, LedgerError> {
    let recorded = insert_action(tx, action, head, replica).await?;
    if matches!(recorded, Recorded::Inserted) {
        let seq: i64 = tx
            .query_one(
                "INSERT INTO action_policy (action_id, version, recorded_at_ms)
                 VALUES ($1, $2, $3) RETURNING seq",
                &[&action.id, &version, &action.created_at_ms],
            )
            .await?
            .try_get(0)?;
        *head = chain::append(tx, *head, Kind::ActionPolicy, seq).await?;
    }
    Ok(recorded)
}

pub(crate) async fn users(client: &impl GenericClient) -> Result<Vec<UserRecord>, LedgerError> {
    let names = client
        .query("SELECT DISTINCT name FROM users ORDER BY name", &[])
        .await?;
    let mut users = Vec::with_capacity(names.len());
    for row in names {
        let name: String = row.try_get(0)?;
        if let Some(user) = current_user(client, &name).await? {
            users.push(user);
        }
    }
    Ok(users)
}

pub(crate) async fn policy_versions(
    client: &impl GenericClient,
) -> Result<Vec<PolicyVersion>, LedgerError> {
    client
        .query(
            "SELECT version, text, sha256, pushed_by, rollback_of, recorded_at_ms
             FROM policy_versions ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            let sha: Vec<u8> = row.try_get(2)?;
            Ok(PolicyVersion {
                version: row.try_get(0)?,
                text: row.try_get(1)?,
                sha256: sha.try_into().unwrap_or([0; 32]),
                pushed_by: row.try_get(3)?,
                rollback_of: row.try_get(4)?,
                recorded_at_ms: row.try_get(5)?,
            })
        })
        .collect()
}

/// Fills in the view's approvals, who decided it (the last person to answer) and the pushed
/// policy version that decided it (as SQLite's `team::attach_approvals`).
pub(crate) async fn attach(
    client: &impl GenericClient,
    view: &mut ActionView,
) -> Result<(), LedgerError> {
    let rows = client
        .query(
            "SELECT approver, decision, note, recorded_at_ms FROM approvals
             WHERE action_id = $1 ORDER BY seq",
            &[&view.action_id],
        )
        .await?;
    view.approvals = rows
        .iter()
        .map(|row| {
            let decision: String = row.try_get(1)?;
            Ok(ApprovalRecord {
                approver: row.try_get(0)?,
                decision: team::decision_from_text(&decision),
                note: row.try_get(2)?,
                recorded_at_ms: row.try_get(3)?,
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    view.policy_version = client
        .query_opt(
            "SELECT version FROM action_policy WHERE action_id = $1",
            &[&view.action_id],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    if let Some(decision) = &mut view.decision
        && decision.decided_by == DecidedBy::Human
    {
        decision.approver = view.approvals.last().map(|a| a.approver.clone());
    }
    Ok(())
}
