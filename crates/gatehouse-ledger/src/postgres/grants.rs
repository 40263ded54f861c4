//! Standing grants on PostgreSQL (schema 5, `migrations-postgres/0005_grants_and_edits.sql`):
//! the same chained `grant` and `grant_revoked` records as SQLite's `crate::grants`, decoded by
//! the same functions, and each grant or revocation announced to every replica (`grant` NOTIFY)
//! so a grant made on one replica applies on all.

use gatehouse_protocol::grants::GrantRecord;
use tokio_postgres::{GenericClient, Row};

use super::chain;
use super::write::announce;
use crate::chain::{ChainHead, Kind};
use crate::grants::{
    ACTION_COLUMNS, ActionRow, GRANT_LIST_SQL, GrantCommand, GrantOutcome, grant_from_row,
    recorded_from,
};
use crate::{Approved, GrantCounts, LedgerError, RecordedAction, Revoked};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) async fn apply(
    tx: &impl GenericClient,
    command: &GrantCommand,
    head: &mut ChainHead,
    replica: &str,
) -> Result<GrantOutcome, LedgerError> {
    match command {
        GrantCommand::Add(grant) => {
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO grants (id, created_at_ms, expires_at_ms, scope, rules, hosts,
                                         action_id, created_by, note)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
                    &[
                        &grant.id,
                        &grant.created_at_ms,
                        &grant.expires_at_ms,
                        &json(&grant.scope),
                        &json(&grant.rules),
                        &json(&grant.hosts),
                        &grant.action_id,
                        &grant.created_by,
                        &grant.note,
                    ],
                )
                .await?
                .try_get(0)?;
            *head = chain::append(tx, *head, Kind::Grant, seq).await?;
            announce(tx, "grant", replica, &grant.id).await?;
            Ok(GrantOutcome::Added)
        }
        GrantCommand::Revoke {
            grant_id,
            revoked_at_ms,
            revoked_by,
        } => {
            let exists = tx
                .query_opt("SELECT seq FROM grants WHERE id = $1", &[grant_id])
                .await?;
            if exists.is_none() {
                return Ok(GrantOutcome::Revoked(Revoked::NotFound));
            }
            let row = tx
                .query_opt(
                    "INSERT INTO grant_revocations (grant_id, revoked_at_ms, revoked_by)
                     SELECT $1::TEXT, $2::BIGINT, $3::TEXT
                     WHERE NOT EXISTS (SELECT 1 FROM grant_revocations WHERE grant_id = $1::TEXT)
                     RETURNING seq",
                    &[grant_id, revoked_at_ms, revoked_by],
                )
                .await?;
            let Some(row) = row else {
                return Ok(GrantOutcome::Revoked(Revoked::Already));
            };
            *head = chain::append(tx, *head, Kind::GrantRevoked, row.try_get(0)?).await?;
            announce(tx, "grant", replica, grant_id).await?;
            Ok(GrantOutcome::Revoked(Revoked::Revoked))
        }
    }
}

fn action_row(row: &Row) -> Result<ActionRow, LedgerError> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
        row.try_get(8)?,
        row.try_get(9)?,
        row.try_get(10)?,
        row.try_get(11)?,
    ))
}

pub(crate) async fn list(client: &impl GenericClient) -> Result<Vec<GrantRecord>, LedgerError> {
    client
        .query(GRANT_LIST_SQL, &[])
        .await?
        .iter()
        .map(|row| {
            grant_from_row((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
                row.try_get(6)?,
                row.try_get(7)?,
                row.try_get(8)?,
                row.try_get(9)?,
                row.try_get(10)?,
                row.try_get(11)?,
            ))
        })
        .collect()
}

pub(crate) async fn paused(
    client: &impl GenericClient,
    limit: u32,
) -> Result<Vec<RecordedAction>, LedgerError> {
    let sql = format!(
        "SELECT {ACTION_COLUMNS} FROM actions a WHERE a.deadline_ms IS NOT NULL
         ORDER BY a.seq DESC LIMIT $1"
    );
    client
        .query(&sql, &[&i64::from(limit)])
        .await?
        .iter()
        .map(|row| recorded_from(action_row(row)?).map(|(action, _)| action))
        .collect()
}

pub(crate) async fn approved(
    client: &impl GenericClient,
    since_ms: i64,
    limit: u32,
) -> Result<Vec<Approved>, LedgerError> {
    let sql = format!(
        "SELECT {ACTION_COLUMNS}, d.decided_at_ms FROM decisions d JOIN actions a ON a.id = d.action_id
         WHERE d.decided_by = 'human' AND d.verdict = 'allow' AND d.decided_at_ms >= $1
         ORDER BY d.decided_at_ms DESC LIMIT $2"
    );
    client
        .query(&sql, &[&since_ms, &i64::from(limit)])
        .await?
        .iter()
        .map(|row| {
            let (action, action_hash) = recorded_from(action_row(row)?)?;
            Ok(Approved {
                action,
                action_hash,
                decided_at_ms: row.try_get(12)?,
            })
        })
        .collect()
}

pub(crate) async fn counts(
    client: &impl GenericClient,
    since_ms: i64,
) -> Result<GrantCounts, LedgerError> {
    let row = client
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE deadline_ms IS NOT NULL),
                    count(*) FILTER (WHERE rule_id LIKE 'grant:%'),
                    (SELECT count(*) FROM decisions WHERE decided_by = 'human' AND decided_at_ms >= $1)
             FROM actions WHERE created_at_ms >= $1",
            &[&since_ms],
        )
        .await?;
    let count =
        |i: usize| -> Result<u64, LedgerError> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    Ok(GrantCounts {
        actions: count(0)?,
        paused: count(1)?,
        granted: count(2)?,
        decided_by_people: count(3)?,
    })
}
