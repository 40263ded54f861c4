//! The console's reads: the ledger browser's filtered, keyset-paged search; the session list;
//! and the overview's figures over a time window. Read-only, on the read pool, never on the
//! writer: a person browsing the ledger cannot slow a check.
//!
//! *Bound*: a search that no index narrows (a word in the inputs, a score range) reads at most
//! `SCAN_ROWS` ledger rows per page and says where it stopped (`next_cursor`), so one request
//! costs the same on a ledger of a thousand actions or ten million.
//!
//! *Why not FTS5*: a full-text index is updated inside every check's commit (the fast path) and
//! doubles the input's storage, while the bounded scan costs nothing until someone searches;
//! `q` is a substring match (LIKE, wildcards escaped), which a word tokenizer would not give.
//! Migration 12 adds only plain indexes (time, session) that the filters and the overview use.

use gatehouse_protocol::{
    BrowsePage, BrowseRow, ClassifierHealth, DecidedBy, DecisionLatency, OutcomeSummary, Overview,
    PromptLoad, SessionList, SessionSummary, TopEntry, Verdict, VerdictBucket,
};
use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value as SqlValue};

use crate::{LedgerError, SqliteLedger, read};

/// Most ledger rows one browse page reads when no index narrows the search.
pub const SCAN_ROWS: i64 = 50_000;
/// Most rows one browse page returns.
pub const MAX_BROWSE_LIMIT: u32 = 500;
/// The session list covers sessions active among this many latest actions.
pub const SESSION_WINDOW_ROWS: i64 = 200_000;
/// How many entries the overview's top lists hold.
pub const TOP_N: usize = 10;

/// What the ledger browser asks for. Every filter narrows (they combine with AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrowseQuery {
    /// The verdict as it stands: `allow`, `reject`, or `pending` (still waiting).
    pub verdict: Option<Verdict>,
    /// Who produced the verdict as it stands (`human` for a person's decision).
    pub decided_by: Option<DecidedBy>,
    /// Only actions that paused for a person (`Some(true)`), or only those that did not.
    pub paused: Option<bool>,
    pub tool: Option<String>,
    pub agent: Option<String>,
    pub session_id: Option<String>,
    /// This project: actions whose working directory is this directory or below it.
    pub cwd: Option<String>,
    pub rule_id: Option<String>,
    /// Created at or after (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Created before.
    pub until_ms: Option<i64>,
    /// The latest classifier score at least / at most this (unscored actions never match).
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Words in the input (as typed or as JSON-escaped), the reason, or the action id;
    /// case-insensitive for ASCII.
    pub text: Option<String>,
    /// Oldest first (a session's timeline) instead of newest first.
    pub ascending: bool,
    /// Continue after this row (`BrowsePage::next_cursor`).
    pub cursor: Option<i64>,
    pub limit: u32,
    /// The most ledger rows this page reads when no index narrows it; `SCAN_ROWS` when `None`.
    pub scan_rows: Option<i64>,
}

impl BrowseQuery {
    /// How many rows this page may read: unbounded when the session index narrows the search
    /// (one session's actions), else the scan bound.
    fn scan_bound(&self) -> Option<i64> {
        match self.session_id {
            Some(_) => None,
            None => Some(self.scan_rows.unwrap_or(SCAN_ROWS).max(1)),
        }
    }
}

/// The SQL conditions and their arguments for a query's filters (not its cursor).
pub(crate) fn conditions(query: &BrowseQuery) -> (Vec<String>, Vec<SqlValue>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    match query.verdict {
        Some(Verdict::Pending) => {
            clauses.push("a.verdict = 'pending' AND d.action_id IS NULL".into())
        }
        Some(verdict) => {
            clauses.push("COALESCE(d.verdict, a.verdict) = ?".into());
            args.push(SqlValue::Text(verdict.as_str().into()));
        }
        None => {}
    }
    if let Some(by) = query.decided_by {
        clauses.push("COALESCE(d.decided_by, a.decided_by) = ?".into());
        args.push(SqlValue::Text(by.as_str().into()));
    }
    match query.paused {
        Some(true) => clauses.push("a.verdict = 'pending'".into()),
        Some(false) => clauses.push("a.verdict <> 'pending'".into()),
        None => {}
    }
    for (column, value) in [
        ("a.tool", &query.tool),
        ("a.agent", &query.agent),
        ("a.session_id", &query.session_id),
        ("a.rule_id", &query.rule_id),
    ] {
        if let Some(value) = value {
            clauses.push(format!("{column} = ?"));
            args.push(SqlValue::Text(value.clone()));
        }
    }
    if let Some(cwd) = &query.cwd {
        let dir = cwd.trim_end_matches('/');
        if dir.is_empty() {
            clauses.push("a.cwd LIKE '/%'".into());
        } else {
            clauses.push("(a.cwd = ? OR a.cwd LIKE ? ESCAPE '\\')".into());
            args.push(SqlValue::Text(dir.into()));
            args.push(SqlValue::Text(format!("{}/%", like_escape(dir))));
        }
    }
    if let Some(since) = query.since_ms {
        clauses.push("a.created_at_ms >= ?".into());
        args.push(SqlValue::Integer(since));
    }
    if let Some(until) = query.until_ms {
        clauses.push("a.created_at_ms < ?".into());
        args.push(SqlValue::Integer(until));
    }
    if let Some(min) = query.min_score {
        clauses.push("s.score >= ?".into());
        args.push(SqlValue::Real(min));
    }
    if let Some(max) = query.max_score {
        clauses.push("s.score <= ?".into());
        args.push(SqlValue::Real(max));
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        // The input is stored as JSON: `echo "hi"` is there as `echo \"hi\"`.
        let escaped = serde_json::to_string(text).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(text);
        clauses.push(
            "(a.input LIKE ?1x ESCAPE '\\' OR a.input LIKE ?2x ESCAPE '\\' \
             OR a.reason LIKE ?1x ESCAPE '\\' OR a.id LIKE ?1x ESCAPE '\\')"
                .into(),
        );
        args.push(SqlValue::Text(format!("%{}%", like_escape(text))));
        args.push(SqlValue::Text(format!("%{}%", like_escape(escaped))));
    }
    (clauses, args)
}

/// `text` with LIKE's wildcards (and the escape character) escaped by `\`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Numbers the `?1x`/`?2x` placeholders of the text clause (which repeat an argument) after
/// the arguments before them, and every plain `?` in order.
pub(crate) fn number_placeholders(clauses: &[String]) -> String {
    let mut out = String::new();
    let mut next = 1;
    for (i, clause) in clauses.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        if clause.contains("?1x") {
            let first = next;
            let second = next + 1;
            out.push_str(
                &clause
                    .replace("?1x", &format!("?{first}"))
                    .replace("?2x", &format!("?{second}")),
            );
            next += 2;
        } else {
            let mut rest = clause.as_str();
            while let Some(at) = rest.find('?') {
                out.push_str(&rest[..at]);
                out.push_str(&format!("?{next}"));
                next += 1;
                rest = &rest[at + 1..];
            }
            out.push_str(rest);
        }
    }
    out
}

/// The stretch of seq a page may read, `[from, to]` (walked in the query's order), within the
/// ledger's `[lowest, highest]` as the time range narrowed it; `None`: nothing to read.
pub(crate) fn stretch(query: &BrowseQuery, lowest: i64, highest: i64) -> Option<(i64, i64)> {
    let (from, to) = if query.ascending {
        let start = query.cursor.map_or(lowest, |c| c + 1).max(lowest);
        let end = match query.scan_bound() {
            Some(rows) => start.saturating_add(rows - 1).min(highest),
            None => highest,
        };
        (start, end)
    } else {
        let start = query.cursor.map_or(highest, |c| c - 1).min(highest);
        let end = match query.scan_bound() {
            Some(rows) => start.saturating_sub(rows - 1).max(lowest),
            None => lowest,
        };
        (end, start)
    };
    (from <= to).then_some((from, to))
}

/// Where the next page starts and how many rows this one read: after the last row if the page
/// is `full`, else after the stretch read (if the ledger goes on past it).
pub(crate) fn next_page(
    query: &BrowseQuery,
    full: bool,
    last: Option<i64>,
    (from, to): (i64, i64),
    (lowest, highest): (i64, i64),
) -> (Option<i64>, u64) {
    match (full, last) {
        (true, Some(last)) => {
            let read_from = if query.ascending { from } else { to };
            (Some(last), (last - read_from).unsigned_abs() + 1)
        }
        _ => {
            let more = if query.ascending {
                to < highest
            } else {
                from > lowest
            };
            let edge = if query.ascending { to } else { from };
            (more.then_some(edge), (to - from + 1).unsigned_abs())
        }
    }
}

pub(crate) const FROM_JOINED: &str = "
FROM actions a
LEFT JOIN decisions d ON d.action_id = a.id
LEFT JOIN scores s ON s.seq = (SELECT max(seq) FROM scores WHERE action_id = a.id)";

pub(crate) fn browse(conn: &Connection, query: &BrowseQuery) -> Result<BrowsePage, LedgerError> {
    let (mut clauses, mut args) = conditions(query);
    let (lowest, highest): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(seq), max(seq) FROM actions", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let empty = || BrowsePage {
        rows: Vec::new(),
        next_cursor: None,
        scanned: 0,
    };
    let (Some(mut lowest), Some(mut highest)) = (lowest, highest) else {
        return Ok(empty());
    };
    // A time range narrows the stretch of seq through the time index (seq follows time, but
    // for a clock stepped back: the time conditions still decide which rows match).
    if let Some(since) = query.since_ms {
        let first: Option<i64> = conn
            .query_row(
                "SELECT seq FROM actions WHERE created_at_ms >= ?1 ORDER BY created_at_ms, seq LIMIT 1",
                [since],
                |row| row.get(0),
            )
            .optional()?;
        match first {
            Some(seq) => lowest = lowest.max(seq),
            None => return Ok(empty()),
        }
    }
    if let Some(until) = query.until_ms {
        let last: Option<i64> = conn
            .query_row(
                "SELECT seq FROM actions WHERE created_at_ms < ?1 \
                 ORDER BY created_at_ms DESC, seq DESC LIMIT 1",
                [until],
                |row| row.get(0),
            )
            .optional()?;
        match last {
            Some(seq) => highest = highest.min(seq),
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
    let sql = format!(
        "SELECT a.seq, a.id {FROM_JOINED} WHERE {} ORDER BY a.seq {order} LIMIT ?{}",
        number_placeholders(&clauses),
        args.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let found: Vec<(i64, String)> = stmt
        .query_map(params_from_iter(args), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(found.len());
    for (seq, id) in &found {
        let Some(action) = read::action(conn, id)? else {
            continue;
        };
        rows.push(BrowseRow {
            action,
            seq: *seq,
            outcome: latest_outcome(conn, id)?,
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

fn latest_outcome(conn: &Connection, id: &str) -> Result<Option<OutcomeSummary>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ran, exit_code, duration_ms, COALESCE(json_array_length(findings), 0), recorded_at_ms
         FROM outcomes WHERE action_id = ?1 ORDER BY seq DESC LIMIT 1",
    )?;
    Ok(stmt
        .query_row([id], |row| {
            Ok(OutcomeSummary {
                ran: row.get::<_, i64>(0)? != 0,
                exit_code: row.get(1)?,
                duration_ms: row.get(2)?,
                findings: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                recorded_at_ms: row.get(4)?,
            })
        })
        .optional()?)
}

/// Sessions active among the latest `SESSION_WINDOW_ROWS` actions, most recently active first;
/// `cursor` is the previous page's last `last_ms`/session pair.
pub(crate) fn sessions(
    conn: &Connection,
    limit: u32,
    cursor: Option<(i64, String)>,
) -> Result<SessionList, LedgerError> {
    let limit = limit.clamp(1, MAX_BROWSE_LIMIT);
    let sql = "
        WITH recent AS (
            SELECT a.session_id, a.agent, a.cwd, a.created_at_ms, a.verdict AS asked,
                   COALESCE(d.verdict, a.verdict) AS verdict,
                   a.verdict = 'pending' AND d.action_id IS NULL AS waiting, a.seq
            FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
            WHERE a.seq > (SELECT COALESCE(max(seq), 0) FROM actions) - ?1
              AND a.session_id IS NOT NULL
        ),
        grouped AS (
            SELECT session_id,
                   (SELECT agent FROM recent r2 WHERE r2.session_id = r.session_id
                      ORDER BY seq DESC LIMIT 1) AS agent,
                   (SELECT cwd FROM recent r2 WHERE r2.session_id = r.session_id
                      ORDER BY seq DESC LIMIT 1) AS cwd,
                   min(created_at_ms) AS first_ms, max(created_at_ms) AS last_ms, count(*) AS n,
                   sum(verdict = 'allow') AS allowed, sum(verdict = 'reject') AS rejected,
                   sum(asked = 'pending') AS paused, sum(waiting) AS pending
            FROM recent r GROUP BY session_id
        )
        SELECT session_id, agent, cwd, first_ms, last_ms, n, allowed, rejected, paused, pending
        FROM grouped
        WHERE ?2 IS NULL OR last_ms < ?2 OR (last_ms = ?2 AND session_id < ?3)
        ORDER BY last_ms DESC, session_id DESC
        LIMIT ?4";
    let (cursor_ms, cursor_id) = match cursor {
        Some((ms, id)) => (Some(ms), Some(id)),
        None => (None, None),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let sessions: Vec<SessionSummary> = stmt
        .query_map(
            rusqlite::params![SESSION_WINDOW_ROWS, cursor_ms, cursor_id, i64::from(limit)],
            |row| {
                Ok(SessionSummary {
                    session_id: row.get(0)?,
                    agent: row.get(1)?,
                    cwd: row.get(2)?,
                    first_ms: row.get(3)?,
                    last_ms: row.get(4)?,
                    actions: row.get::<_, i64>(5)?.unsigned_abs(),
                    allowed: row.get::<_, i64>(6)?.unsigned_abs(),
                    rejected: row.get::<_, i64>(7)?.unsigned_abs(),
                    paused: row.get::<_, i64>(8)?.unsigned_abs(),
                    pending: row.get::<_, i64>(9)?.unsigned_abs(),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
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

/// The overview's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket_ms: i64,
}

/// Most buckets one overview holds.
pub const MAX_BUCKETS: i64 = 500;

pub(crate) fn overview(conn: &Connection, q: OverviewQuery) -> Result<Overview, LedgerError> {
    let bucket_ms = q.bucket_ms.max(1);
    let mut buckets = empty_buckets(q);
    let window = "a.created_at_ms >= ?1 AND a.created_at_ms < ?2";
    let mut total = 0u64;
    let mut granted = 0u64;
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT (a.created_at_ms - ?1) / ?3, a.verdict, a.decided_by, d.verdict, d.decided_by,
                    COALESCE(a.rule_id LIKE 'grant:%', 0), count(*)
             FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE {window} GROUP BY 1, 2, 3, 4, 5, 6"
        ))?;
        let mut rows = stmt.query(rusqlite::params![q.since_ms, q.until_ms, bucket_ms])?;
        while let Some(row) = rows.next()? {
            let index: i64 = row.get(0)?;
            let asked: String = row.get(1)?;
            let decided_by: String = row.get(2)?;
            let final_verdict: Option<String> = row.get(3)?;
            let final_by: Option<String> = row.get(4)?;
            let by_grant: i64 = row.get(5)?;
            let n = row.get::<_, i64>(6)?.unsigned_abs();
            total += n;
            if by_grant != 0 || decided_by == "grant" {
                granted += n;
            }
            let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) else {
                continue;
            };
            *bucket_slot(
                bucket,
                &asked,
                final_by.as_deref(),
                final_verdict.as_deref(),
            ) += n;
        }
    }
    let pending_now: i64 = conn.query_row(
        "SELECT count(*) FROM actions a WHERE a.verdict = 'pending'
           AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.action_id = a.id)",
        [],
        |row| row.get(0),
    )?;
    let latency = {
        let mut stmt = conn.prepare_cached(
            "SELECT d.decided_at_ms - a.created_at_ms FROM decisions d JOIN actions a ON a.id = d.action_id
             WHERE d.decided_by = 'human' AND a.created_at_ms >= ?1 AND a.created_at_ms < ?2",
        )?;
        let waits: Vec<i64> = stmt
            .query_map(rusqlite::params![q.since_ms, q.until_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        decision_latency(waits)
    };
    let top_rules = top(
        conn,
        &format!(
            "SELECT COALESCE(a.rule_id, '(policy default)'), count(*),
                    sum(COALESCE(d.verdict, a.verdict) = 'allow'),
                    sum(COALESCE(d.verdict, a.verdict) = 'reject'), sum(a.verdict = 'pending')
             FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE {window} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        q,
    )?;
    let top_paused = top(
        conn,
        &format!(
            "SELECT a.tool || ': ' || substr(COALESCE(json_extract(a.input, '$.command'),
                        json_extract(a.input, '$.file_path'), json_extract(a.input, '$.url'),
                        json_extract(a.input, '$.path'), a.input), 1, 200), count(*),
                    sum(COALESCE(d.verdict, a.verdict) = 'allow'),
                    sum(COALESCE(d.verdict, a.verdict) = 'reject'), count(*)
             FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
             WHERE {window} AND a.verdict = 'pending' AND json_valid(a.input)
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        q,
    )?;
    let classifier = classifier_health(conn, q)?;
    let outside = paused_outside_buckets(&buckets, conn, q)?;
    Ok(assemble(
        q,
        OverviewCounts {
            buckets,
            total,
            granted,
            pending_now: pending_now.unsigned_abs(),
            paused_outside: outside,
        },
        latency,
        (top_rules, top_paused),
        classifier,
    ))
}

/// The overview's counts, as the backend's queries found them.
pub(crate) struct OverviewCounts {
    pub(crate) buckets: Vec<VerdictBucket>,
    pub(crate) total: u64,
    pub(crate) granted: u64,
    pub(crate) pending_now: u64,
    /// Paused actions in the window past the last bucket (`paused_outside_buckets`).
    pub(crate) paused_outside: u64,
}

/// The window's empty buckets (at most `MAX_BUCKETS`).
pub(crate) fn empty_buckets(q: OverviewQuery) -> Vec<VerdictBucket> {
    let bucket_ms = q.bucket_ms.max(1);
    let count = ((q.until_ms - q.since_ms + bucket_ms - 1) / bucket_ms).clamp(0, MAX_BUCKETS);
    (0..count)
        .map(|i| VerdictBucket {
            start_ms: q.since_ms + i * bucket_ms,
            ..VerdictBucket::default()
        })
        .collect()
}

/// The count an action goes to in its bucket: by what the rules said (`asked`) and, for a
/// pause, by its decision as it stands.
pub(crate) fn bucket_slot<'a>(
    bucket: &'a mut VerdictBucket,
    asked: &str,
    final_by: Option<&str>,
    final_verdict: Option<&str>,
) -> &'a mut u64 {
    match (asked, final_by, final_verdict) {
        ("allow", _, _) => &mut bucket.allowed,
        ("reject", _, _) => &mut bucket.rejected,
        (_, None, _) => &mut bucket.pending,
        (_, Some("human"), Some("allow")) => &mut bucket.approved,
        (_, Some("human"), _) => &mut bucket.denied,
        (_, Some("timeout"), _) => &mut bucket.timed_out,
        (_, _, Some("allow")) => &mut bucket.allowed,
        _ => &mut bucket.rejected,
    }
}

/// The median and p99 of people's decision waits.
pub(crate) fn decision_latency(mut waits: Vec<i64>) -> DecisionLatency {
    waits.sort_unstable();
    DecisionLatency {
        decisions: waits.len() as u64,
        median_ms: nearest_rank(&waits, 50),
        p99_ms: nearest_rank(&waits, 99),
    }
}

/// The classifier-health count an action goes to: its latest score's status, else what the
/// check recorded.
pub(crate) fn classifier_slot<'a>(
    health: &'a mut ClassifierHealth,
    status: Option<&str>,
    asked: &str,
) -> &'a mut u64 {
    match (status, asked) {
        (Some("scored"), _) => &mut health.scored,
        (Some("error"), _) => &mut health.errors,
        (Some("timeout"), _) => &mut health.timeouts,
        (Some(_), _) | (None, "dropped") => &mut health.dropped,
        (None, "disabled") => &mut health.disabled,
        (None, _) => &mut health.waiting,
    }
}

/// The overview from its parts (both backends).
pub(crate) fn assemble(
    q: OverviewQuery,
    counts: OverviewCounts,
    latency: DecisionLatency,
    (top_rules, top_paused): (Vec<TopEntry>, Vec<TopEntry>),
    classifier: ClassifierHealth,
) -> Overview {
    let OverviewCounts {
        buckets,
        total,
        granted,
        pending_now,
        paused_outside,
    } = counts;
    let bucket_ms = q.bucket_ms.max(1);
    let prompts: u64 = buckets
        .iter()
        .map(|b| b.approved + b.denied + b.timed_out + b.pending)
        .sum::<u64>()
        + paused_outside;
    let hours = (q.until_ms - q.since_ms).max(1) as f64 / 3_600_000.0;
    let asked_or_granted = prompts + granted;
    Overview {
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        bucket_ms,
        total,
        buckets,
        pending_now,
        latency,
        top_rules,
        top_paused,
        classifier,
        prompts: PromptLoad {
            prompts,
            granted,
            prompts_per_hour: prompts as f64 / hours,
            granted_share: if asked_or_granted == 0 {
                0.0
            } else {
                granted as f64 / asked_or_granted as f64
            },
        },
        policy: Default::default(),
    }
}

/// Paused actions in the window that fell past the last bucket (only when the window held more
/// than `MAX_BUCKETS` buckets): counted in the prompt load all the same.
fn paused_outside_buckets(
    buckets: &[VerdictBucket],
    conn: &Connection,
    q: OverviewQuery,
) -> Result<u64, LedgerError> {
    let covered_until = buckets
        .last()
        .map_or(q.since_ms, |b| b.start_ms + q.bucket_ms.max(1));
    if covered_until >= q.until_ms {
        return Ok(0);
    }
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM actions WHERE created_at_ms >= ?1 AND created_at_ms < ?2
           AND verdict = 'pending'",
        rusqlite::params![covered_until, q.until_ms],
        |row| row.get(0),
    )?;
    Ok(n.unsigned_abs())
}

/// The `pct`th percentile of sorted `values` by nearest rank.
fn nearest_rank(sorted: &[i64], pct: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn top(conn: &Connection, sql: &str, q: OverviewQuery) -> Result<Vec<TopEntry>, LedgerError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let entries = stmt
        .query_map(rusqlite::params![q.since_ms, q.until_ms], |row| {
            Ok(TopEntry {
                key: row.get(0)?,
                count: row.get::<_, i64>(1)?.unsigned_abs(),
                allowed: row.get::<_, Option<i64>>(2)?.unwrap_or(0).unsigned_abs(),
                rejected: row.get::<_, Option<i64>>(3)?.unwrap_or(0).unsigned_abs(),
                paused: row.get::<_, Option<i64>>(4)?.unwrap_or(0).unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

fn classifier_health(conn: &Connection, q: OverviewQuery) -> Result<ClassifierHealth, LedgerError> {
    let mut health = ClassifierHealth::default();
    let mut stmt = conn.prepare_cached(
        "SELECT s.status, a.tier2_status, COALESCE(s.disagreement, 0), count(*)
         FROM actions a
         LEFT JOIN scores s ON s.seq = (SELECT max(seq) FROM scores WHERE action_id = a.id)
         WHERE a.created_at_ms >= ?1 AND a.created_at_ms < ?2
         GROUP BY 1, 2, 3",
    )?;
    let mut rows = stmt.query(rusqlite::params![q.since_ms, q.until_ms])?;
    while let Some(row) = rows.next()? {
        let status: Option<String> = row.get(0)?;
        let asked: String = row.get(1)?;
        let disagreement: i64 = row.get(2)?;
        let n = row.get::<_, i64>(3)?.unsigned_abs();
        *classifier_slot(&mut health, status.as_deref(), &asked) += n;
        if disagreement != 0 {
            health.disagreements += n;
        }
    }
    let latest = |sql: &str| -> Result<Option<(Option<String>, i64)>, LedgerError> {
        Ok(conn
            .query_row(sql, rusqlite::params![q.since_ms, q.until_ms], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?)
    };
    if let Some((model, at)) = latest(
        "SELECT s.model, s.recorded_at_ms FROM scores s JOIN actions a ON a.id = s.action_id
         WHERE a.created_at_ms >= ?1 AND a.created_at_ms < ?2 AND s.status = 'scored'
         ORDER BY s.seq DESC LIMIT 1",
    )? {
        health.model = model;
        health.last_scored_ms = Some(at);
    }
    if let Some((error, _)) = latest(
        "SELECT s.error, s.recorded_at_ms FROM scores s JOIN actions a ON a.id = s.action_id
         WHERE a.created_at_ms >= ?1 AND a.created_at_ms < ?2 AND s.status = 'error'
         ORDER BY s.seq DESC LIMIT 1",
    )? {
        health.last_error = error;
    }
    Ok(health)
}

impl SqliteLedger {
    /// A page of the ledger browser (see `BrowseQuery`).
    pub async fn browse(&self, query: BrowseQuery) -> Result<BrowsePage, LedgerError> {
        self.inner.reads.run(move |conn| browse(conn, &query)).await
    }

    /// Recently active sessions, most recent first.
    pub async fn sessions(
        &self,
        limit: u32,
        cursor: Option<(i64, String)>,
    ) -> Result<SessionList, LedgerError> {
        self.inner
            .reads
            .run(move |conn| sessions(conn, limit, cursor))
            .await
    }

    /// The overview's figures over a window (the policy part is the daemon's to fill).
    pub async fn overview(&self, query: OverviewQuery) -> Result<Overview, LedgerError> {
        self.inner
            .reads
            .run(move |conn| overview(conn, query))
            .await
    }
}
