//! Reading the PostgreSQL ledger: the same queries and the same `ActionView`s as the SQLite
//! read side (`crate::read`), over a connection or inside the writer's transaction.

use gatehouse_protocol::{
    ActionView, DecidedBy, DecisionRecord, LabelRecord, ObservedEffect, OutcomeFlag, OutcomeRecord,
    ReviewLabel, Tier2Score, Tier2Status, Verdict,
};
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use crate::action_hash;
use crate::{HistoryEntry, LedgerError, ListQuery, StatusFilter};

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

pub(crate) async fn action(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<ActionView>, LedgerError> {
    let sql = format!("{VIEW_SELECT} WHERE a.id = $1");
    let row = client.query_opt(&sql, &[&id]).await?;
    let mut view = row.as_ref().map(view_from_row).transpose()?;
    if let Some(view) = &mut view {
        super::team::attach(client, view).await?;
        super::confinement::attach(client, view).await?;
    }
    Ok(view)
}

/// The views of `rows`, each with its team records (`team::attach`) and confinement.
async fn views(client: &impl GenericClient, rows: &[Row]) -> Result<Vec<ActionView>, LedgerError> {
    let mut views = rows
        .iter()
        .map(view_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for view in &mut views {
        super::team::attach(client, view).await?;
        super::confinement::attach(client, view).await?;
    }
    Ok(views)
}

pub(crate) async fn pending(client: &impl GenericClient) -> Result<Vec<ActionView>, LedgerError> {
    let sql =
        format!("{VIEW_SELECT} WHERE a.verdict = 'pending' AND d.action_id IS NULL ORDER BY a.seq");
    views(client, &client.query(&sql, &[]).await?).await
}

pub(crate) async fn list(
    client: &impl GenericClient,
    query: &ListQuery,
) -> Result<Vec<ActionView>, LedgerError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    match query.status {
        Some(StatusFilter::Pending) => {
            clauses.push("a.verdict = 'pending' AND d.action_id IS NULL".into())
        }
        Some(StatusFilter::Decided) => clauses.push("d.action_id IS NOT NULL".into()),
        Some(StatusFilter::Allowed) => {
            clauses.push("COALESCE(d.verdict, a.verdict) = 'allow'".into())
        }
        Some(StatusFilter::Rejected) => {
            clauses.push("COALESCE(d.verdict, a.verdict) = 'reject'".into())
        }
        None => {}
    }
    if query.disagreements_only {
        clauses.push("a.id IN (SELECT action_id FROM scores WHERE disagreement = 1)".into());
    }
    if let Some(before) = &query.before {
        args.push(Box::new(before.clone()));
        clauses.push(format!(
            "a.seq < COALESCE((SELECT seq FROM actions WHERE id = ${}), -1)",
            args.len()
        ));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    args.push(Box::new(i64::from(query.limit)));
    let sql = format!(
        "{VIEW_SELECT}{filter} ORDER BY a.seq DESC LIMIT ${}",
        args.len()
    );
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|arg| arg.as_ref() as &(dyn ToSql + Sync))
        .collect();
    views(client, &client.query(&sql, &params).await?).await
}

pub(crate) async fn count(client: &impl GenericClient) -> Result<u64, LedgerError> {
    let n: i64 = client
        .query_one("SELECT count(*) FROM actions", &[])
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn history(
    client: &impl GenericClient,
    id: &str,
) -> Result<Vec<HistoryEntry>, LedgerError> {
    let Some(view) = action(client, id).await? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    let row = client
        .query_one(
            "SELECT verdict, decided_by, reason FROM actions WHERE id = $1",
            &[&id],
        )
        .await?;
    let (initial_verdict, initial_by, initial_reason): (String, String, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
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
    for row in client
        .query(
            "SELECT recorded_at_ms, status, score, label, model, error, disagreement FROM scores WHERE action_id = $1 ORDER BY seq",
            &[&id],
        )
        .await?
    {
        entries.push(HistoryEntry {
            at_ms: row.try_get(0)?,
            kind: "scored",
            detail: json!({
                "status": row.try_get::<_, String>(1)?, "score": row.try_get::<_, Option<f64>>(2)?,
                "label": row.try_get::<_, Option<String>>(3)?, "model": row.try_get::<_, Option<String>>(4)?,
                "error": row.try_get::<_, Option<String>>(5)?, "disagreement": row.try_get::<_, i64>(6)? != 0,
            }),
        });
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
                "action_hash": decision.action_hash,
            }),
        });
    }
    for label in labels_for(client, id).await? {
        entries.push(HistoryEntry {
            at_ms: label.recorded_at_ms,
            kind: "labelled",
            detail: json!({
                "label": label.label, "reviewer": label.reviewer, "note": label.note,
            }),
        });
    }
    for outcome in outcomes_where(client, "action_id = $1 ORDER BY seq", &[&id]).await? {
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
    entries.sort_by_key(|entry| entry.at_ms);
    Ok(entries)
}

pub(crate) async fn labels_for(
    client: &impl GenericClient,
    id: &str,
) -> Result<Vec<LabelRecord>, LedgerError> {
    client
        .query(
            "SELECT label, reviewer, note, recorded_at_ms FROM labels WHERE action_id = $1 ORDER BY seq",
            &[&id],
        )
        .await?
        .iter()
        .map(|row| {
            let text: String = row.try_get(0)?;
            let label = ReviewLabel::parse(&text).ok_or_else(|| LedgerError::Corrupt {
                action_id: id.to_owned(),
                what: "label",
                detail: text.clone(),
            })?;
            Ok(LabelRecord {
                label,
                reviewer: row.try_get(1)?,
                note: row.try_get(2)?,
                recorded_at_ms: row.try_get(3)?,
            })
        })
        .collect()
}

pub(crate) async fn outcomes(
    client: &impl GenericClient,
    limit: u32,
    flagged_only: bool,
) -> Result<Vec<OutcomeRecord>, LedgerError> {
    let filter = if flagged_only {
        "flag IS NOT NULL ORDER BY seq DESC LIMIT $1"
    } else {
        "TRUE ORDER BY seq DESC LIMIT $1"
    };
    outcomes_where(client, filter, &[&i64::from(limit)]).await
}

async fn outcomes_where(
    client: &impl GenericClient,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<OutcomeRecord>, LedgerError> {
    let sql = format!(
        "SELECT seq, action_id, tool, session_id, tool_use_id, agent, cwd, ran,
                exit_code, error, duration_ms, findings, flag, recorded_at_ms
         FROM outcomes WHERE {filter}"
    );
    client
        .query(&sql, params)
        .await?
        .iter()
        .map(outcome_from_row)
        .collect()
}

fn outcome_from_row(row: &Row) -> Result<OutcomeRecord, LedgerError> {
    let seq: i64 = row.try_get(0)?;
    let corrupt = |what: &'static str, detail: String| LedgerError::Corrupt {
        action_id: format!("(outcome {seq})"),
        what,
        detail,
    };
    let findings = match row.try_get::<_, Option<String>>(11)? {
        None => Vec::new(),
        Some(text) => {
            serde_json::from_str(&text).map_err(|err| corrupt("findings", err.to_string()))?
        }
    };
    let flag = match row.try_get::<_, Option<String>>(12)? {
        None => None,
        Some(text) => Some(OutcomeFlag::parse(&text).ok_or_else(|| corrupt("flag", text))?),
    };
    Ok(OutcomeRecord {
        outcome_id: seq,
        action_id: row.try_get(1)?,
        tool: row.try_get(2)?,
        session_id: row.try_get(3)?,
        tool_use_id: row.try_get(4)?,
        agent: row.try_get(5)?,
        cwd: row.try_get(6)?,
        ran: row.try_get::<_, i64>(7)? != 0,
        exit_code: row.try_get(8)?,
        error: row.try_get(9)?,
        duration_ms: row.try_get::<_, Option<i64>>(10)?.map(|d| d.max(0) as u64),
        findings,
        flag,
        recorded_at_ms: row.try_get(13)?,
    })
}

fn json_at(
    row: &Row,
    index: usize,
    action_id: &str,
    what: &'static str,
) -> Result<Option<Value>, LedgerError> {
    let text: Option<String> = row.try_get(index)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|err| crate::read::corrupt_column(action_id, what, err.to_string()))
    })
    .transpose()
}

fn hex_at(row: &Row, index: usize) -> Result<Option<String>, LedgerError> {
    let bytes: Option<Vec<u8>> = row.try_get(index)?;
    Ok(
        bytes.map(|bytes| match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(hash) => action_hash::to_hex(&hash),
            Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }),
    )
}

/// The edit approved in place of the action's input (`VIEW_SELECT`'s last three columns).
fn edit_from_row(row: &Row, at: usize, action_id: &str) -> Result<Option<Value>, LedgerError> {
    let Some(edited_input @ Value::Object(_)) = json_at(row, at, action_id, "edited_input")? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "edited_input": edited_input,
        "edited_hash": hex_at(row, at + 1)?.unwrap_or_default(),
        "edited_by": row.try_get::<_, String>(at + 2)?,
    })))
}

/// Turns one `VIEW_SELECT` row into the action as it stands now (as `crate::read` does).
fn view_from_row(row: &Row) -> Result<ActionView, LedgerError> {
    let id: String = row.try_get(0)?;
    let corrupt =
        |what: &'static str, detail: String| crate::read::corrupt_column(&id, what, detail);
    let input = json_at(row, 3, &id, "input")?.unwrap_or(Value::Null);
    let context = json_at(row, 8, &id, "context")?;
    let verdict_text: String = row.try_get(9)?;
    let decided_by_text: String = row.try_get(10)?;
    let initial_verdict =
        Verdict::parse(&verdict_text).ok_or_else(|| corrupt("verdict", verdict_text.clone()))?;
    let initial_by = DecidedBy::parse(&decided_by_text)
        .ok_or_else(|| corrupt("decided_by", decided_by_text.clone()))?;
    let initial_tier2: String = row.try_get(14)?;
    let score_status: Option<String> = row.try_get(15)?;
    let tier2_status_text = score_status.unwrap_or(initial_tier2);
    let tier2_status = Tier2Status::parse(&tier2_status_text)
        .ok_or_else(|| corrupt("tier2_status", tier2_status_text.clone()))?;
    let tier2 = match (
        row.try_get::<_, Option<f64>>(16)?,
        row.try_get::<_, Option<String>>(17)?,
        row.try_get::<_, Option<String>>(18)?,
    ) {
        (Some(score), label, model) => Some(Tier2Score {
            score,
            label: label.unwrap_or_default(),
            model: model.unwrap_or_default(),
        }),
        _ => None,
    };
    let tier2_error: Option<String> = row.try_get(19)?;
    let disagreement = row.try_get::<_, Option<i64>>(20)?.unwrap_or(0) != 0;
    let decision = match row.try_get::<_, Option<String>>(21)? {
        Some(verdict_text) => {
            let by_text: String = row.try_get(22)?;
            let record = json!({
                "verdict": Verdict::parse(&verdict_text)
                    .ok_or_else(|| corrupt("decision verdict", verdict_text.clone()))?,
                "decided_by": DecidedBy::parse(&by_text)
                    .ok_or_else(|| corrupt("decision decided_by", by_text.clone()))?,
                "note": row.try_get::<_, Option<String>>(23)?,
                "decided_at_ms": row.try_get::<_, i64>(24)?,
                "action_hash": hex_at(row, 29)?,
                "edit": edit_from_row(row, 30, &id)?,
            });
            Some(
                serde_json::from_value::<DecisionRecord>(record)
                    .map_err(|err| corrupt("decision", err.to_string()))?,
            )
        }
        None => None,
    };
    let (verdict, decided_by) = match &decision {
        Some(decision) => (decision.verdict, decision.decided_by),
        None => (initial_verdict, initial_by),
    };
    let observed = match row.try_get::<_, Option<String>>(28)? {
        Some(text) => {
            Some(ObservedEffect::parse(&text).ok_or_else(|| corrupt("observed_effect", text))?)
        }
        None => None,
    };
    let reason: String = row.try_get(12)?;
    let reason = match &decision {
        Some(decision) => crate::read::decision_reason(decision, &reason),
        None => reason,
    };
    // Built from its serde form: fields the protocol gains for records this schema does not
    // hold yet (named approvers, edits) take their defaults.
    let view = json!({
        "action_id": id,
        "tool": row.try_get::<_, String>(2)?,
        "input": input,
        "session_id": row.try_get::<_, Option<String>>(4)?,
        "agent": row.try_get::<_, Option<String>>(5)?,
        "tool_use_id": row.try_get::<_, Option<String>>(6)?,
        "cwd": row.try_get::<_, Option<String>>(7)?,
        "context": context,
        "created_at_ms": row.try_get::<_, i64>(1)?,
        "verdict": verdict,
        "decided_by": decided_by,
        "rule_id": row.try_get::<_, Option<String>>(11)?,
        "reason": reason,
        "deadline_ms": row.try_get::<_, Option<i64>>(13)?,
        "tier2": tier2,
        "tier2_status": tier2_status,
        "tier2_error": tier2_error,
        "disagreement": disagreement,
        "decision": decision,
        "action_hash": hex_at(row, 25)?.unwrap_or_default(),
        "peer_uid": row
            .try_get::<_, Option<i64>>(26)?
            .and_then(|v| u32::try_from(v).ok()),
        "peer_pid": row
            .try_get::<_, Option<i64>>(27)?
            .and_then(|v| i32::try_from(v).ok()),
        "observed": observed,
    });
    serde_json::from_value(view).map_err(|err| corrupt("action", err.to_string()))
}
