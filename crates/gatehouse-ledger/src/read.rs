//! Reading the ledger: a pool of read-only connections, and the queries that turn rows back
//! into `ActionView`s (an action's row, its latest score, its decision).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gatehouse_protocol::{
    ActionView, DecidedBy, DecisionRecord, EditRecord, LabelRecord, ObservedEffect, OutcomeFlag,
    OutcomeRecord, ReviewLabel, Tier2Score, Tier2Status, Verdict,
};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, params_from_iter, types::Value as SqlValue,
};
use serde_json::{Value, json};

use crate::action_hash::{self, ActionIdentity};
use crate::{HistoryEntry, LabelledExample, LedgerError, ListQuery, ReviewedAction, StatusFilter};

/// Read-only connections handed out to blocking tasks. At most `keep` reads run at once (the
/// rest queue on a semaphore), so thousands of concurrent readers, such as long-polling agents,
/// cost neither a blocking thread nor a SQLite connection each.
#[derive(Clone)]
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    keep: usize,
    running: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    pub(crate) fn open(path: &Path, keep: usize) -> Result<ReadPool, LedgerError> {
        let pool = ReadPool {
            path: path.to_owned(),
            idle: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
            running: Arc::new(tokio::sync::Semaphore::new(keep.max(1))),
        };
        let first = pool.connect()?;
        pool.put_back(first);
        Ok(pool)
    }

    fn connect(&self) -> Result<Connection, LedgerError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, LedgerError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push(conn);
        }
    }

    /// Runs a read on a blocking thread with a pooled connection.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let pool = self.clone();
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| LedgerError::CommitFailed("the ledger's read pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.take()?;
            let outcome = read(&conn);
            pool.put_back(conn);
            outcome
        })
        .await
        .map_err(|err| LedgerError::CommitFailed(format!("ledger read task failed: {err}")))?
    }
}

const VIEW_SELECT: &str = "
SELECT a.id, a.created_at_ms, a.tool, a.input, a.session_id, a.agent, a.tool_use_id, a.cwd, a.context,
       a.verdict, a.decided_by, a.rule_id, a.reason, a.deadline_ms, a.tier2_status,
       s.status, s.score, s.label, s.model, s.error, s.disagreement,
       d.verdict, d.decided_by, d.note, d.decided_at_ms,
       a.action_hash, a.peer_uid, a.peer_pid, a.observed_effect, d.action_hash,
       e.edited_input, e.edited_hash, e.edited_by
FROM actions a
LEFT JOIN scores s ON s.seq = (SELECT max(seq) FROM scores WHERE action_id = a.id)
LEFT JOIN decisions d ON d.action_id = a.id
LEFT JOIN edits e ON e.action_id = a.id";

pub(crate) fn action(conn: &Connection, id: &str) -> Result<Option<ActionView>, LedgerError> {
    let sql = format!("{VIEW_SELECT} WHERE a.id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = stmt
        .query_row([id], |row| Ok(view_from_row(row)))
        .optional()?;
    let mut view = row.transpose()?;
    if let Some(view) = &mut view {
        crate::team::attach_approvals(conn, view)?;
        crate::confinement::attach(conn, view)?;
    }
    Ok(view)
}

pub(crate) fn pending(conn: &Connection) -> Result<Vec<ActionView>, LedgerError> {
    let sql =
        format!("{VIEW_SELECT} WHERE a.verdict = 'pending' AND d.action_id IS NULL ORDER BY a.seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |row| Ok(view_from_row(row)))?;
    with_approvals(conn, rows.map(|row| row?).collect())
}

/// Fills in each view's approvals (`team::attach_approvals`).
fn with_approvals(
    conn: &Connection,
    views: Result<Vec<ActionView>, LedgerError>,
) -> Result<Vec<ActionView>, LedgerError> {
    let mut views = views?;
    for view in &mut views {
        crate::team::attach_approvals(conn, view)?;
        crate::confinement::attach(conn, view)?;
    }
    Ok(views)
}

pub(crate) fn list(conn: &Connection, query: &ListQuery) -> Result<Vec<ActionView>, LedgerError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    match query.status {
        Some(StatusFilter::Pending) => {
            clauses.push("a.verdict = 'pending' AND d.action_id IS NULL")
        }
        Some(StatusFilter::Decided) => clauses.push("d.action_id IS NOT NULL"),
        Some(StatusFilter::Allowed) => clauses.push("COALESCE(d.verdict, a.verdict) = 'allow'"),
        Some(StatusFilter::Rejected) => clauses.push("COALESCE(d.verdict, a.verdict) = 'reject'"),
        None => {}
    }
    if query.disagreements_only {
        clauses.push("a.id IN (SELECT action_id FROM scores WHERE disagreement = 1)");
    }
    if let Some(before) = &query.before {
        clauses.push("a.seq < COALESCE((SELECT seq FROM actions WHERE id = ?), -1)");
        args.push(SqlValue::Text(before.clone()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    args.push(SqlValue::Integer(i64::from(query.limit)));
    let sql = format!("{VIEW_SELECT}{filter} ORDER BY a.seq DESC LIMIT ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |row| Ok(view_from_row(row)))?;
    with_approvals(conn, rows.map(|row| row?).collect())
}

pub(crate) fn count(conn: &Connection) -> Result<u64, LedgerError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM actions", [], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

pub(crate) fn history(conn: &Connection, id: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
    let Some(view) = action(conn, id)? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    // The row as recorded: the view's verdict and reason are the decision's once decided.
    let (initial_verdict, initial_by, initial_reason): (String, String, String) = conn.query_row(
        "SELECT verdict, decided_by, reason FROM actions WHERE id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    entries.push(HistoryEntry {
        at_ms: view.created_at_ms,
        kind: "recorded",
        detail: json!({
            "verdict": initial_verdict, "decided_by": initial_by,
            "rule_id": view.rule_id, "reason": initial_reason, "deadline_ms": view.deadline_ms,
            "action_hash": view.action_hash, "observed": view.observed,
            "peer_uid": view.peer_uid, "peer_pid": view.peer_pid,
        }),
    });
    let mut scores = conn.prepare_cached(
        "SELECT recorded_at_ms, status, score, label, model, error, disagreement FROM scores WHERE action_id = ?1 ORDER BY seq",
    )?;
    let rows = scores.query_map([id], |row| {
        Ok(HistoryEntry {
            at_ms: row.get(0)?,
            kind: "scored",
            detail: json!({
                "status": row.get::<_, String>(1)?, "score": row.get::<_, Option<f64>>(2)?,
                "label": row.get::<_, Option<String>>(3)?, "model": row.get::<_, Option<String>>(4)?,
                "error": row.get::<_, Option<String>>(5)?, "disagreement": row.get::<_, bool>(6)?,
            }),
        })
    })?;
    for row in rows {
        entries.push(row?);
    }
    for approval in &view.approvals {
        entries.push(HistoryEntry {
            at_ms: approval.recorded_at_ms,
            kind: "answered",
            detail: json!({
                "approver": approval.approver, "decision": approval.decision, "note": approval.note,
            }),
        });
    }
    if let Some(edit) = view.decision.as_ref().and_then(|d| d.edit.as_ref()) {
        entries.push(HistoryEntry {
            at_ms: view.decision.as_ref().map_or(0, |d| d.decided_at_ms),
            kind: "edited",
            detail: json!({
                "original_input": view.input, "edited_input": edit.edited_input,
                "edited_hash": edit.edited_hash, "edited_by": edit.edited_by,
            }),
        });
    }
    if let Some(decision) = &view.decision {
        entries.push(HistoryEntry {
            at_ms: decision.decided_at_ms,
            kind: "decided",
            detail: json!({
                "verdict": decision.verdict, "decided_by": decision.decided_by, "note": decision.note,
                "action_hash": decision.action_hash, "approver": decision.approver,
            }),
        });
    }
    for label in labels_for(conn, id)? {
        entries.push(HistoryEntry {
            at_ms: label.recorded_at_ms,
            kind: "labelled",
            detail: json!({
                "label": label.label, "reviewer": label.reviewer, "note": label.note,
            }),
        });
    }
    for outcome in outcomes_for(conn, id)? {
        entries.push(HistoryEntry {
            at_ms: outcome.recorded_at_ms,
            kind: "outcome",
            detail: json!({
                "outcome_id": outcome.outcome_id, "ran": outcome.ran,
                "exit_code": outcome.exit_code, "error": outcome.error,
                "duration_ms": outcome.duration_ms, "findings": outcome.findings,
                "flag": outcome.flag, "agent": outcome.agent,
            }),
        });
    }
    // Stable: facts recorded in the same millisecond keep their recording order.
    entries.sort_by_key(|entry| entry.at_ms);
    Ok(entries)
}

/// A value in the ledger that cannot be read back: names the action and the column.
pub(crate) fn corrupt_column(action_id: &str, what: &'static str, detail: String) -> LedgerError {
    LedgerError::Corrupt {
        action_id: action_id.to_owned(),
        what,
        detail,
    }
}

/// A JSON text column of an action's row, parsed (`None` when NULL).
fn json_at(
    row: &Row<'_>,
    index: usize,
    action_id: &str,
    what: &'static str,
) -> Result<Option<Value>, LedgerError> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|err| corrupt_column(action_id, what, err.to_string()))
    })
    .transpose()
}

/// The edit approved in place of the action's input (`VIEW_SELECT`'s last three columns).
fn edit_from_row(
    row: &Row<'_>,
    at: usize,
    action_id: &str,
) -> Result<Option<EditRecord>, LedgerError> {
    let Some(Value::Object(edited_input)) = json_at(row, at, action_id, "edited_input")? else {
        return Ok(None);
    };
    Ok(Some(EditRecord {
        edited_input,
        edited_hash: hex_column(row, at + 1)?.unwrap_or_default(),
        edited_by: row.get(at + 2)?,
    }))
}

/// Turns one `VIEW_SELECT` row into the action as it stands now.
fn view_from_row(row: &Row<'_>) -> Result<ActionView, LedgerError> {
    let id: String = row.get(0)?;
    let corrupt = |what: &'static str, detail: String| corrupt_column(&id, what, detail);
    let json_column = |index: usize, what: &'static str| json_at(row, index, &id, what);
    let input = json_column(3, "input")?.unwrap_or(Value::Null);
    let context = json_column(8, "context")?;
    let verdict_text: String = row.get(9)?;
    let decided_by_text: String = row.get(10)?;
    let initial_verdict =
        Verdict::parse(&verdict_text).ok_or_else(|| corrupt("verdict", verdict_text.clone()))?;
    let initial_by = DecidedBy::parse(&decided_by_text)
        .ok_or_else(|| corrupt("decided_by", decided_by_text.clone()))?;
    let initial_tier2: String = row.get(14)?;

    let score_status: Option<String> = row.get(15)?;
    let tier2_status_text = score_status.unwrap_or(initial_tier2);
    let tier2_status = Tier2Status::parse(&tier2_status_text)
        .ok_or_else(|| corrupt("tier2_status", tier2_status_text.clone()))?;
    let tier2 = match (
        row.get::<_, Option<f64>>(16)?,
        row.get::<_, Option<String>>(17)?,
        row.get::<_, Option<String>>(18)?,
    ) {
        (Some(score), label, model) => Some(Tier2Score {
            score,
            label: label.unwrap_or_default(),
            model: model.unwrap_or_default(),
        }),
        _ => None,
    };
    let tier2_error: Option<String> = row.get(19)?;
    let disagreement = row.get::<_, Option<bool>>(20)?.unwrap_or(false);

    let decision = match row.get::<_, Option<String>>(21)? {
        Some(verdict_text) => {
            let by_text: String = row.get(22)?;
            Some(DecisionRecord {
                verdict: Verdict::parse(&verdict_text)
                    .ok_or_else(|| corrupt("decision verdict", verdict_text.clone()))?,
                decided_by: DecidedBy::parse(&by_text)
                    .ok_or_else(|| corrupt("decision decided_by", by_text.clone()))?,
                note: row.get(23)?,
                decided_at_ms: row.get(24)?,
                action_hash: hex_column(row, 29)?,
                edit: edit_from_row(row, 30, &id)?,
                approver: None,
            })
        }
        None => None,
    };
    let (verdict, decided_by) = match &decision {
        Some(decision) => (decision.verdict, decision.decided_by),
        None => (initial_verdict, initial_by),
    };
    let tool: String = row.get(2)?;
    let cwd: Option<String> = row.get(7)?;
    let session_id: Option<String> = row.get(4)?;
    let tool_use_id: Option<String> = row.get(6)?;
    let action_hash = match hex_column(row, 25)? {
        Some(hash) => hash,
        // Recorded before schema 3: the hash of the row as it stands.
        None => match &input {
            Value::Object(input) => action_hash::to_hex(
                &ActionIdentity {
                    tool: &tool,
                    input,
                    cwd: cwd.as_deref(),
                    session_id: session_id.as_deref(),
                    tool_use_id: tool_use_id.as_deref(),
                }
                .hash(),
            ),
            _ => return Err(corrupt("input", "not a JSON object".into())),
        },
    };
    let observed = match row.get::<_, Option<String>>(28)? {
        Some(text) => {
            Some(ObservedEffect::parse(&text).ok_or_else(|| corrupt("observed_effect", text))?)
        }
        None => None,
    };
    let reason: String = row.get(12)?;
    let reason = match &decision {
        Some(decision) => decision_reason(decision, &reason),
        None => reason,
    };
    Ok(ActionView {
        action_id: id.clone(),
        tool,
        input,
        session_id,
        agent: row.get(5)?,
        tool_use_id,
        cwd,
        context,
        created_at_ms: row.get(1)?,
        verdict,
        decided_by,
        rule_id: row.get(11)?,
        reason,
        deadline_ms: row.get(13)?,
        tier2,
        tier2_status,
        tier2_error,
        disagreement,
        decision,
        action_hash,
        peer_uid: row.get(26)?,
        peer_pid: row.get(27)?,
        observed,
        approvals: Vec::new(),
        policy_version: None,
        confinement: None,
    })
}

/// A 32-byte hash column as lowercase hex.
fn hex_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    let bytes: Option<Vec<u8>> = row.get(index)?;
    Ok(
        bytes.map(|bytes| match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(hash) => action_hash::to_hex(&hash),
            // The schema's CHECK keeps it 32 bytes; anything else still shows, never matches.
            Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }),
    )
}

pub(crate) fn labels_for(conn: &Connection, id: &str) -> Result<Vec<LabelRecord>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT label, reviewer, note, recorded_at_ms FROM labels WHERE action_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id], |row| Ok(label_from_row(row, 0)))?;
    rows.map(|row| row?).collect()
}

/// A `label, reviewer, note, recorded_at_ms` run of columns starting at `at`.
fn label_from_row(row: &Row<'_>, at: usize) -> Result<LabelRecord, LedgerError> {
    let text: String = row.get(at)?;
    let label = ReviewLabel::parse(&text).ok_or_else(|| LedgerError::Corrupt {
        action_id: String::new(),
        what: "label",
        detail: text.clone(),
    })?;
    Ok(LabelRecord {
        label,
        reviewer: row.get(at + 1)?,
        note: row.get(at + 2)?,
        recorded_at_ms: row.get(at + 3)?,
    })
}

pub(crate) fn labelled_examples(conn: &Connection) -> Result<Vec<LabelledExample>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.created_at_ms, a.tool, a.input, a.context, a.cwd, a.session_id, a.agent,
                a.verdict, l.label, l.reviewer, l.note, l.recorded_at_ms,
                CASE WHEN d.decided_by = 'human' THEN d.verdict END, s.score
         FROM labels l
         JOIN actions a ON a.id = l.action_id
         LEFT JOIN decisions d ON d.action_id = a.id
         LEFT JOIN scores s ON s.seq = (SELECT max(seq) FROM scores
                                        WHERE action_id = a.id AND status = 'scored')
         WHERE l.seq = (SELECT max(seq) FROM labels WHERE action_id = a.id)
         ORDER BY a.seq",
    )?;
    let rows = stmt.query_map([], |row| Ok(example_from_row(row)))?;
    rows.map(|row| row?).collect()
}

pub(crate) fn reviewed_actions(conn: &Connection) -> Result<Vec<ReviewedAction>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.tool, a.input, a.context,
                (SELECT label FROM labels WHERE action_id = a.id ORDER BY seq DESC LIMIT 1),
                CASE WHEN d.decided_by = 'human' THEN d.verdict END
         FROM actions a
         LEFT JOIN decisions d ON d.action_id = a.id
         WHERE a.id IN (SELECT action_id FROM labels) OR d.decided_by = 'human'
         ORDER BY a.seq",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((|| {
            let id: String = row.get(0)?;
            let corrupt = |what: &'static str, detail: String| corrupt_column(&id, what, detail);
            let json = |index: usize, what: &'static str| json_at(row, index, &id, what);
            let label = match row.get::<_, Option<String>>(4)? {
                Some(text) => {
                    Some(ReviewLabel::parse(&text).ok_or_else(|| corrupt("label", text))?)
                }
                None => None,
            };
            let human_decision = match row.get::<_, Option<String>>(5)? {
                Some(text) => {
                    Some(Verdict::parse(&text).ok_or_else(|| corrupt("decision verdict", text))?)
                }
                None => None,
            };
            Ok(ReviewedAction {
                tool: row.get(1)?,
                input: json(2, "input")?.unwrap_or(Value::Null),
                context: json(3, "context")?,
                label,
                human_decision,
                action_id: id.clone(),
            })
        })())
    })?;
    rows.map(|row| row?).collect()
}

fn example_from_row(row: &Row<'_>) -> Result<LabelledExample, LedgerError> {
    let id: String = row.get(0)?;
    let corrupt = |what: &'static str, detail: String| corrupt_column(&id, what, detail);
    let json_column = |index: usize, what: &'static str| json_at(row, index, &id, what);
    let verdict_text: String = row.get(8)?;
    let human_decision = match row.get::<_, Option<String>>(13)? {
        Some(text) => Some(Verdict::parse(&text).ok_or_else(|| corrupt("decision verdict", text))?),
        None => None,
    };
    Ok(LabelledExample {
        created_at_ms: row.get(1)?,
        tool: row.get(2)?,
        input: json_column(3, "input")?.unwrap_or(Value::Null),
        context: json_column(4, "context")?,
        cwd: row.get(5)?,
        session_id: row.get(6)?,
        agent: row.get(7)?,
        rules_verdict: Verdict::parse(&verdict_text)
            .ok_or_else(|| corrupt("verdict", verdict_text.clone()))?,
        label: label_from_row(row, 9)?,
        human_decision,
        score: row.get(14)?,
        action_id: id.clone(),
    })
}

/// The reason an agent is given once a person or the deadline has decided a paused action.
pub(crate) fn decision_reason(decision: &DecisionRecord, paused_because: &str) -> String {
    let what = match (decision.decided_by, decision.verdict) {
        (DecidedBy::Human, Verdict::Allow) => "approved by a person",
        (DecidedBy::Human, _) => "denied by a person",
        (DecidedBy::Timeout, _) => "no decision before the deadline",
        (DecidedBy::Withdrawn, _) => "withdrawn by the agent",
        (_, Verdict::Allow) => "allowed",
        _ => "rejected",
    };
    match decision.note.as_deref().filter(|n| !n.is_empty()) {
        Some(note) => format!("{what}: {note} (paused: {paused_because})"),
        None => format!("{what} (paused: {paused_because})"),
    }
}

const OUTCOME_COLUMNS: &str = "seq, action_id, tool, session_id, tool_use_id, agent, cwd, ran,
     exit_code, error, duration_ms, findings, flag, recorded_at_ms";

fn outcome_from_row(row: &Row<'_>) -> Result<OutcomeRecord, LedgerError> {
    let seq: i64 = row.get(0)?;
    let corrupt = |what: &'static str, detail: String| LedgerError::Corrupt {
        action_id: format!("(outcome {seq})"),
        what,
        detail,
    };
    let findings = match row.get::<_, Option<String>>(11)? {
        None => Vec::new(),
        Some(text) => {
            serde_json::from_str(&text).map_err(|err| corrupt("findings", err.to_string()))?
        }
    };
    let flag = match row.get::<_, Option<String>>(12)? {
        None => None,
        Some(text) => Some(OutcomeFlag::parse(&text).ok_or_else(|| corrupt("flag", text))?),
    };
    Ok(OutcomeRecord {
        outcome_id: seq,
        action_id: row.get(1)?,
        tool: row.get(2)?,
        session_id: row.get(3)?,
        tool_use_id: row.get(4)?,
        agent: row.get(5)?,
        cwd: row.get(6)?,
        ran: row.get(7)?,
        exit_code: row.get(8)?,
        error: row.get(9)?,
        duration_ms: row.get::<_, Option<i64>>(10)?.map(|d| d.max(0) as u64),
        findings,
        flag,
        recorded_at_ms: row.get(13)?,
    })
}

/// The outcomes recorded for one action, oldest first.
pub(crate) fn outcomes_for(conn: &Connection, id: &str) -> Result<Vec<OutcomeRecord>, LedgerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE action_id = ?1 ORDER BY seq"
    ))?;
    let mut rows = stmt.query([id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(outcome_from_row(row)?);
    }
    Ok(out)
}

/// Recent outcomes, newest first.
pub(crate) fn outcomes(
    conn: &Connection,
    limit: u32,
    flagged_only: bool,
) -> Result<Vec<OutcomeRecord>, LedgerError> {
    let filter = if flagged_only {
        "WHERE flag IS NOT NULL"
    } else {
        ""
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {OUTCOME_COLUMNS} FROM outcomes {filter} ORDER BY seq DESC LIMIT ?1"
    ))?;
    let mut rows = stmt.query([limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(outcome_from_row(row)?);
    }
    Ok(out)
}
