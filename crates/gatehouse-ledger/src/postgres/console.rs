//! The dashboard console's reads on PostgreSQL: the session list (as SQLite's
//! `crate::browse::sessions`, the same window, grouping and paging). The ledger browser and the
//! overview are SQLite only so far (their SQL leans on SQLite's JSON functions): PostgreSQL
//! answers `Unsupported` for them.

use gatehouse_protocol::{SessionList, SessionSummary};
use tokio_postgres::GenericClient;

use crate::browse::SESSION_WINDOW_ROWS;
use crate::{LedgerError, MAX_BROWSE_LIMIT};

/// Sessions active among the latest `SESSION_WINDOW_ROWS` actions, most recently active first;
/// `cursor` is the previous page's last `last_ms`/session pair.
pub(crate) async fn sessions(
    client: &impl GenericClient,
    limit: u32,
    cursor: Option<(i64, String)>,
) -> Result<SessionList, LedgerError> {
    let limit = limit.clamp(1, MAX_BROWSE_LIMIT);
    let sql = "
        WITH recent AS (
            SELECT a.session_id, a.agent, a.cwd, a.created_at_ms, a.verdict AS asked,
                   COALESCE(d.verdict, a.verdict) AS verdict,
                   (a.verdict = 'pending' AND d.action_id IS NULL) AS waiting, a.seq
            FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
            WHERE a.seq > (SELECT COALESCE(max(seq), 0) FROM actions) - $1::BIGINT
              AND a.session_id IS NOT NULL
        ),
        grouped AS (
            SELECT session_id,
                   (SELECT agent FROM recent r2 WHERE r2.session_id = r.session_id
                      ORDER BY seq DESC LIMIT 1) AS agent,
                   (SELECT cwd FROM recent r2 WHERE r2.session_id = r.session_id
                      ORDER BY seq DESC LIMIT 1) AS cwd,
                   min(created_at_ms) AS first_ms, max(created_at_ms) AS last_ms, count(*) AS n,
                   count(*) FILTER (WHERE verdict = 'allow') AS allowed,
                   count(*) FILTER (WHERE verdict = 'reject') AS rejected,
                   count(*) FILTER (WHERE asked = 'pending') AS paused,
                   count(*) FILTER (WHERE waiting) AS pending
            FROM recent r GROUP BY session_id
        )
        SELECT session_id, agent, cwd, first_ms, last_ms, n, allowed, rejected, paused, pending
        FROM grouped
        WHERE $2::BIGINT IS NULL OR last_ms < $2::BIGINT
              OR (last_ms = $2::BIGINT AND session_id < $3::TEXT)
        ORDER BY last_ms DESC, session_id DESC
        LIMIT $4::BIGINT";
    let (cursor_ms, cursor_id) = match cursor {
        Some((ms, id)) => (Some(ms), Some(id)),
        None => (None, None),
    };
    let rows = client
        .query(
            sql,
            &[
                &SESSION_WINDOW_ROWS,
                &cursor_ms,
                &cursor_id,
                &i64::from(limit),
            ],
        )
        .await?;
    let count = |row: &tokio_postgres::Row, i: usize| -> Result<u64, LedgerError> {
        Ok(row.try_get::<_, i64>(i)?.unsigned_abs())
    };
    let sessions = rows
        .iter()
        .map(|row| {
            Ok(SessionSummary {
                session_id: row.try_get(0)?,
                agent: row.try_get(1)?,
                cwd: row.try_get(2)?,
                first_ms: row.try_get(3)?,
                last_ms: row.try_get(4)?,
                actions: count(row, 5)?,
                allowed: count(row, 6)?,
                rejected: count(row, 7)?,
                paused: count(row, 8)?,
                pending: count(row, 9)?,
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    let next_cursor = (sessions.len() == limit as usize)
        .then(|| {
            sessions
                .last()
                .map(|s| format!("{}:{}", s.last_ms, s.session_id))
        })
        .flatten();
    Ok(SessionList {
        sessions,
        next_cursor,
    })
}
