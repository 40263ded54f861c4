//! The dashboard console's reads on PostgreSQL: the ledger browser (the filters, the stretch of
//! the ledger a page reads and its cursor are `crate::browse`'s, shared with SQLite) and the
//! session list (the same window, grouping and paging as SQLite's). The overview is SQLite only
//! so far (its SQL leans on SQLite's JSON functions): PostgreSQL answers `Unsupported`.

use gatehouse_protocol::{BrowsePage, BrowseRow, OutcomeSummary, SessionList, SessionSummary};
use rusqlite::types::Value as SqlValue;
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::read;
use crate::browse::{
    FROM_JOINED, SESSION_WINDOW_ROWS, conditions, next_page, number_placeholders, stretch,
};
use crate::{BrowseQuery, LedgerError, MAX_BROWSE_LIMIT};

/// `?N` placeholders (SQLite's) as `$N` (PostgreSQL's).
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_value(value: SqlValue) -> Box<dyn ToSql + Sync + Send> {
    match value {
        SqlValue::Integer(n) => Box::new(n),
        SqlValue::Real(x) => Box::new(x),
        SqlValue::Text(text) => Box::new(text),
        SqlValue::Blob(bytes) => Box::new(bytes),
        SqlValue::Null => Box::new(None::<String>),
    }
}

/// A page of the ledger browser, as SQLite's `crate::browse::browse` reads it.
pub(crate) async fn browse(
    client: &impl GenericClient,
    query: &BrowseQuery,
) -> Result<BrowsePage, LedgerError> {
    let empty = || BrowsePage {
        rows: Vec::new(),
        next_cursor: None,
        scanned: 0,
    };
    let (mut clauses, mut args) = conditions(query);
    // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does.
    for clause in &mut clauses {
        *clause = clause
            .replace("a.input LIKE", "a.input ILIKE")
            .replace("a.reason LIKE", "a.reason ILIKE")
            .replace("a.id LIKE", "a.id ILIKE");
    }
    let row = client
        .query_one("SELECT min(seq), max(seq) FROM actions", &[])
        .await?;
    let (Some(mut lowest), Some(mut highest)) = (
        row.try_get::<_, Option<i64>>(0)?,
        row.try_get::<_, Option<i64>>(1)?,
    ) else {
        return Ok(empty());
    };
    if let Some(since) = query.since_ms {
        let first = client
            .query_opt(
                "SELECT seq FROM actions WHERE created_at_ms >= $1 ORDER BY created_at_ms, seq LIMIT 1",
                &[&since],
            )
            .await?;
        match first {
            Some(row) => lowest = lowest.max(row.try_get(0)?),
            None => return Ok(empty()),
        }
    }
    if let Some(until) = query.until_ms {
        let last = client
            .query_opt(
                "SELECT seq FROM actions WHERE created_at_ms < $1
                 ORDER BY created_at_ms DESC, seq DESC LIMIT 1",
                &[&until],
            )
            .await?;
        match last {
            Some(row) => highest = highest.min(row.try_get(0)?),
            None => return Ok(empty()),
        }
    }
    let Some((from, to)) = stretch(query, lowest, highest) else {
        return Ok(empty());
    };
    clauses.push("a.seq >= ?".into());
    args.push(SqlValue::Integer(from));
    clauses.push("a.seq <= ?".into());
    args.push(SqlValue::Integer(to));
    let limit = query.limit.clamp(1, MAX_BROWSE_LIMIT);
    args.push(SqlValue::Integer(i64::from(limit)));
    let order = if query.ascending { "ASC" } else { "DESC" };
    let sql = dollar_placeholders(&format!(
        "SELECT a.seq, a.id {FROM_JOINED} WHERE {} ORDER BY a.seq {order} LIMIT ?{}",
        number_placeholders(&clauses),
        args.len()
    ));
    let args: Vec<Box<dyn ToSql + Sync + Send>> = args.into_iter().map(pg_value).collect();
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|arg| arg.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let found: Vec<(i64, String)> = client
        .query(&sql, &params)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, LedgerError>>()?;
    let mut rows = Vec::with_capacity(found.len());
    for (seq, id) in &found {
        let Some(action) = read::action(client, id).await? else {
            continue;
        };
        rows.push(BrowseRow {
            action,
            seq: *seq,
            outcome: latest_outcome(client, id).await?,
        });
    }
    let full = found.len() == limit as usize;
    let (next_cursor, scanned) = next_page(
        query,
        full,
        found.last().map(|(seq, _)| *seq),
        (from, to),
        (lowest, highest),
    );
    Ok(BrowsePage {
        rows,
        next_cursor: next_cursor.map(|seq| seq.to_string()),
        scanned,
    })
}

async fn latest_outcome(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<OutcomeSummary>, LedgerError> {
    let row = client
        .query_opt(
            "SELECT ran, exit_code, duration_ms,
                    COALESCE(json_array_length(findings::json), 0)::BIGINT, recorded_at_ms
             FROM outcomes WHERE action_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&id],
        )
        .await?;
    row.map(|row| {
        Ok(OutcomeSummary {
            ran: row.try_get::<_, i64>(0)? != 0,
            exit_code: row.try_get(1)?,
            duration_ms: row.try_get(2)?,
            findings: u32::try_from(row.try_get::<_, i64>(3)?).unwrap_or(u32::MAX),
            recorded_at_ms: row.try_get(4)?,
        })
    })
    .transpose()
}

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
