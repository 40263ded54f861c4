//! The dashboard console's reads on PostgreSQL: the ledger browser (the filters, the stretch of
//! the ledger a page reads and its cursor are `crate::browse`'s, shared with SQLite) and the
//! session list (the same window, grouping and paging as SQLite's), and the overview (the same
//! buckets, counts and assembly as SQLite's, `crate::browse`'s; the SQL in PostgreSQL's terms).

use gatehouse_protocol::{
    BrowsePage, BrowseRow, ClassifierHealth, OutcomeSummary, Overview, SessionList, SessionSummary,
    TopEntry,
};
use rusqlite::types::Value as SqlValue;
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::read;
use crate::browse::{
    FROM_JOINED, OverviewCounts, SESSION_WINDOW_ROWS, TOP_N, assemble, bucket_slot,
    classifier_slot, conditions, decision_latency, empty_buckets, next_page, number_placeholders,
    stretch,
};
use crate::{BrowseQuery, LedgerError, MAX_BROWSE_LIMIT, OverviewQuery};

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

fn count_at(row: &tokio_postgres::Row, i: usize) -> Result<u64, LedgerError> {
    Ok(row
        .try_get::<_, Option<i64>>(i)?
        .unwrap_or(0)
        .unsigned_abs())
}

/// The console overview's figures over a window, as SQLite's `crate::browse::overview`.
pub(crate) async fn overview(
    client: &impl GenericClient,
    q: OverviewQuery,
) -> Result<Overview, LedgerError> {
    let bucket_ms = q.bucket_ms.max(1);
    let window = "a.created_at_ms >= $1 AND a.created_at_ms < $2";
    let mut buckets = empty_buckets(q);
    let (mut total, mut granted) = (0u64, 0u64);
    let rows = client
        .query(
            &format!(
                "SELECT (a.created_at_ms - $1) / $3, a.verdict, a.decided_by, d.verdict, d.decided_by,
                        COALESCE(a.rule_id LIKE 'grant:%', FALSE), count(*)
                 FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
                 WHERE {window} GROUP BY 1, 2, 3, 4, 5, 6"
            ),
            &[&q.since_ms, &q.until_ms, &bucket_ms],
        )
        .await?;
    for row in &rows {
        let index: i64 = row.try_get(0)?;
        let asked: String = row.try_get(1)?;
        let decided_by: String = row.try_get(2)?;
        let final_verdict: Option<String> = row.try_get(3)?;
        let final_by: Option<String> = row.try_get(4)?;
        let by_grant: bool = row.try_get(5)?;
        let n = count_at(row, 6)?;
        total += n;
        if by_grant || decided_by == "grant" {
            granted += n;
        }
        if let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
            *bucket_slot(
                bucket,
                &asked,
                final_by.as_deref(),
                final_verdict.as_deref(),
            ) += n;
        }
    }
    let pending_now = count_at(
        &client
            .query_one(
                "SELECT count(*) FROM actions a WHERE a.verdict = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.action_id = a.id)",
                &[],
            )
            .await?,
        0,
    )?;
    let waits = client
        .query(
            "SELECT d.decided_at_ms - a.created_at_ms FROM decisions d JOIN actions a ON a.id = d.action_id
             WHERE d.decided_by = 'human' AND a.created_at_ms >= $1 AND a.created_at_ms < $2",
            &[&q.since_ms, &q.until_ms],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?;
    let top_rules = top(
        client,
        &format!(
            "SELECT COALESCE(a.rule_id, '(policy default)'), count(*),
                    count(*) FILTER (WHERE COALESCE(d.verdict, a.verdict) = 'allow'),
                    count(*) FILTER (WHERE COALESCE(d.verdict, a.verdict) = 'reject'),
                    count(*) FILTER (WHERE a.verdict = 'pending')
             FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE {window} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        q,
    )
    .await?;
    // The input is a JSON object (the ledger writes it so); `->>` reads its fields.
    let top_paused = top(
        client,
        &format!(
            "SELECT a.tool || ': ' || substr(COALESCE(a.input::jsonb ->> 'command',
                        a.input::jsonb ->> 'file_path', a.input::jsonb ->> 'url',
                        a.input::jsonb ->> 'path', a.input), 1, 200), count(*),
                    count(*) FILTER (WHERE COALESCE(d.verdict, a.verdict) = 'allow'),
                    count(*) FILTER (WHERE COALESCE(d.verdict, a.verdict) = 'reject'), count(*)
             FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE {window} AND a.verdict = 'pending'
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        q,
    )
    .await?;
    let classifier = classifier_health(client, q).await?;
    let covered_until = buckets
        .last()
        .map_or(q.since_ms, |b| b.start_ms + bucket_ms);
    let paused_outside = if covered_until >= q.until_ms {
        0
    } else {
        count_at(
            &client
                .query_one(
                    "SELECT count(*) FROM actions WHERE created_at_ms >= $1 AND created_at_ms < $2
                       AND verdict = 'pending'",
                    &[&covered_until, &q.until_ms],
                )
                .await?,
            0,
        )?
    };
    Ok(assemble(
        q,
        OverviewCounts {
            buckets,
            total,
            granted,
            pending_now,
            paused_outside,
        },
        decision_latency(waits),
        (top_rules, top_paused),
        classifier,
    ))
}

async fn top(
    client: &impl GenericClient,
    sql: &str,
    q: OverviewQuery,
) -> Result<Vec<TopEntry>, LedgerError> {
    client
        .query(sql, &[&q.since_ms, &q.until_ms])
        .await?
        .iter()
        .map(|row| {
            Ok(TopEntry {
                key: row.try_get(0)?,
                count: count_at(row, 1)?,
                allowed: count_at(row, 2)?,
                rejected: count_at(row, 3)?,
                paused: count_at(row, 4)?,
            })
        })
        .collect()
}

async fn classifier_health(
    client: &impl GenericClient,
    q: OverviewQuery,
) -> Result<ClassifierHealth, LedgerError> {
    let mut health = ClassifierHealth::default();
    let rows = client
        .query(
            "SELECT s.status, a.tier2_status, COALESCE(s.disagreement, 0), count(*)
             FROM actions a
             LEFT JOIN scores s ON s.seq = (SELECT max(seq) FROM scores WHERE action_id = a.id)
             WHERE a.created_at_ms >= $1 AND a.created_at_ms < $2
             GROUP BY 1, 2, 3",
            &[&q.since_ms, &q.until_ms],
        )
        .await?;
    for row in &rows {
        let status: Option<String> = row.try_get(0)?;
        let asked: String = row.try_get(1)?;
        let disagreement: i64 = row.try_get(2)?;
        let n = count_at(row, 3)?;
        *classifier_slot(&mut health, status.as_deref(), &asked) += n;
        if disagreement != 0 {
            health.disagreements += n;
        }
    }
    let latest = |status: &'static str| async move {
        client
            .query_opt(
                "SELECT s.model, s.error, s.recorded_at_ms FROM scores s
                 JOIN actions a ON a.id = s.action_id
                 WHERE a.created_at_ms >= $1 AND a.created_at_ms < $2 AND s.status = $3
                 ORDER BY s.seq DESC LIMIT 1",
                &[&q.since_ms, &q.until_ms, &status],
            )
            .await
    };
    if let Some(row) = latest("scored").await? {
        health.model = row.try_get(0)?;
        health.last_scored_ms = Some(row.try_get(2)?);
    }
    if let Some(row) = latest("error").await? {
        health.last_error = row.try_get(1)?;
    }
    Ok(health)
}
