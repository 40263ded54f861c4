//! `gatehouse ledger export`: actions streamed as JSON lines or CSV, and — in JSON lines — the
//! proof that lets anyone verify the export offline (`gatehouse ledger verify --export FILE`)
//! without the ledger: every chain entry from the first exported action to the chain's head,
//! each with the values its hash covers, and the latest signed checkpoint.
//!
//! JSON lines, one object each, by `type`:
//! `header` (format, filter) · `action` (the action as the API shows it, its chain seq and hash)
//! · `entry` (seq, kind, record, prev_hash, hash, values) · `checkpoint` · `end` (counts).
//! A value is `null`, `{"i": n}`, `{"r": bits}` (an f64's bits), `{"t": "text"}` or
//! `{"b": "hex"}`, exactly as SQLite stores it, so the verifier recomputes each hash.
//!
//! *What verifies*: each entry's hash from its values and the previous hash; the entries form
//! one unbroken run; each exported action is the action its entry hashes (id, tool, input,
//! time) and its decision and approver are in the run; the checkpoint is validly signed and its
//! head is in the run. Entries after the checkpoint are reported as not yet signed.

use std::io::{BufRead, Write};
use std::path::Path;

use gatehouse_protocol::{ActionView, Verdict};
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::{self, VerifyFailure};
use crate::signing::{self, Checkpoint};
use crate::{LedgerError, read};

/// The export's format name, in its header.
pub const EXPORT_FORMAT: &str = "gatehouse.ledger.export.v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text {
            "jsonl" => Some(ExportFormat::Jsonl),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }
}

/// Which actions to export (all when empty).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportFilter {
    /// Actions recorded at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// The action's current verdict (the decision's once decided).
    pub verdict: Option<Verdict>,
    /// The tool's exact name.
    pub tool: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub actions: u64,
    pub entries: u64,
    /// The chain entries the proof holds, first and last (none without actions).
    pub from_seq: Option<i64>,
    pub to_seq: Option<i64>,
    /// The signed checkpoint's chain seq, when there is one.
    pub checkpoint_seq: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        exported_at_ms: i64,
        filter: Value,
    },
    Action {
        chain_seq: i64,
        chain_hash: String,
        action: Box<ActionView>,
    },
    Entry {
        seq: i64,
        kind: String,
        record: i64,
        prev_hash: String,
        hash: String,
        values: Vec<Value>,
    },
    Checkpoint {
        checkpoint: Checkpoint,
    },
    End {
        actions: u64,
        entries: u64,
    },
}

fn value_json(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!({ "i": i }),
        SqlValue::Real(f) => json!({ "r": f.to_bits() }),
        SqlValue::Text(t) => json!({ "t": t }),
        SqlValue::Blob(b) => json!({ "b": signing::hex(b) }),
    }
}

fn value_sql(value: &Value) -> Option<SqlValue> {
    match value {
        Value::Null => Some(SqlValue::Null),
        Value::Object(map) if map.len() == 1 => {
            let (tag, inner) = map.iter().next()?;
            match tag.as_str() {
                "i" => inner.as_i64().map(SqlValue::Integer),
                "r" => inner
                    .as_u64()
                    .map(|bits| SqlValue::Real(f64::from_bits(bits))),
                "t" => inner.as_str().map(|t| SqlValue::Text(t.to_owned())),
                "b" => unhex(inner.as_str()?).map(SqlValue::Blob),
                _ => None,
            }
        }
        _ => None,
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hash32(text: &str) -> Option<[u8; 32]> {
    unhex(text)?.try_into().ok()
}

fn write_line(out: &mut dyn Write, line: &Line) -> Result<(), LedgerError> {
    serde_json::to_writer(&mut *out, line).map_err(|err| LedgerError::Io(err.into()))?;
    out.write_all(b"\n")?;
    Ok(())
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

const CSV_HEADER: &str = "action_id,created_at_ms,tool,input,cwd,session_id,agent,verdict,decided_by,approver,rule_id,reason,chain_seq,chain_hash\n";

fn csv_row(action: &ActionView, seq: i64, hash: &str) -> String {
    let fields = [
        action.action_id.clone(),
        action.created_at_ms.to_string(),
        action.tool.clone(),
        action.input.to_string(),
        action.cwd.clone().unwrap_or_default(),
        action.session_id.clone().unwrap_or_default(),
        action.agent.clone().unwrap_or_default(),
        action.verdict.as_str().to_owned(),
        action.decided_by.as_str().to_owned(),
        action
            .decision
            .as_ref()
            .and_then(|d| d.approver.clone())
            .unwrap_or_default(),
        action.rule_id.clone().unwrap_or_default(),
        action.reason.clone(),
        seq.to_string(),
        hash.to_owned(),
    ];
    let mut row = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    row.push('\n');
    row
}

/// Streams the ledger file's matching actions (oldest first) to `out`, read-only and in one
/// read transaction (safe while the daemon runs); in JSON lines, with the proof.
pub fn export_file(
    path: &Path,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<ExportSummary, LedgerError> {
    let conn = crate::open_read_only(path)?;
    let snapshot = conn.unchecked_transaction()?;
    let mut summary = ExportSummary::default();
    if format == ExportFormat::Jsonl {
        write_line(
            out,
            &Line::Header {
                format: EXPORT_FORMAT.into(),
                exported_at_ms: crate::now_ms(),
                filter: serde_json::to_value(filter).unwrap_or(Value::Null),
            },
        )?;
    } else {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut stmt = snapshot.prepare(
        "SELECT a.id, c.seq, c.hash FROM actions a
         JOIN chain c ON c.kind = 'action' AND c.record = a.seq
         LEFT JOIN decisions d ON d.action_id = a.id
         WHERE (?1 IS NULL OR a.created_at_ms >= ?1)
           AND (?2 IS NULL OR coalesce(d.verdict, a.verdict) = ?2)
           AND (?3 IS NULL OR a.tool = ?3)
         ORDER BY a.seq",
    )?;
    let mut rows = stmt.query(rusqlite::params![
        filter.since_ms,
        filter.verdict.map(Verdict::as_str),
        filter.tool
    ])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let hash: Vec<u8> = row.get(2)?;
        let hash = signing::hex(&hash);
        let Some(action) = read::action(&snapshot, &id)? else {
            continue;
        };
        summary.from_seq.get_or_insert(seq);
        summary.actions += 1;
        match format {
            ExportFormat::Jsonl => write_line(
                out,
                &Line::Action {
                    chain_seq: seq,
                    chain_hash: hash,
                    action: Box::new(action),
                },
            )?,
            ExportFormat::Csv => out.write_all(csv_row(&action, seq, &hash).as_bytes())?,
        }
    }
    if format == ExportFormat::Csv {
        return Ok(summary);
    }
    let checkpoint = signing::latest(&snapshot)?;
    if let Some(from) = summary.from_seq {
        let mut entries = snapshot.prepare(
            "SELECT seq, kind, record, prev_hash, hash FROM chain WHERE seq >= ?1 ORDER BY seq",
        )?;
        let mut rows = entries.query([from])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let kind: String = row.get(1)?;
            let record: i64 = row.get(2)?;
            let values = chain::record_values(&snapshot, &kind, record)?.ok_or_else(|| {
                LedgerError::Corrupt {
                    action_id: String::new(),
                    what: "chain entry",
                    detail: format!("the {kind} record of chain entry {seq} is missing"),
                }
            })?;
            write_line(
                out,
                &Line::Entry {
                    seq,
                    kind,
                    record,
                    prev_hash: signing::hex(&row.get::<_, Vec<u8>>(3)?),
                    hash: signing::hex(&row.get::<_, Vec<u8>>(4)?),
                    values: values.iter().map(value_json).collect(),
                },
            )?;
            summary.entries += 1;
            summary.to_seq = Some(seq);
        }
    }
    if let Some(checkpoint) = checkpoint {
        summary.checkpoint_seq = Some(checkpoint.chain_seq);
        write_line(out, &Line::Checkpoint { checkpoint })?;
    }
    write_line(
        out,
        &Line::End {
            actions: summary.actions,
            entries: summary.entries,
        },
    )?;
    out.flush()?;
    Ok(summary)
}

/// What an offline verification of an export established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerified {
    pub actions: u64,
    pub entries: u64,
    pub from_seq: Option<i64>,
    pub to_seq: Option<i64>,
    /// The signed checkpoint that anchors the run, by its chain seq; entries after it are not
    /// covered by a signature yet.
    pub signed_through: Option<i64>,
    /// The key that signed it, hex.
    pub public_key: Option<String>,
}

fn fail(line: usize, detail: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        chain_seq: None,
        detail: format!("export line {line}: {}", detail.into()),
    }
}

/// Verifies an export (JSON lines) without the ledger; with `public_key`, the checkpoint must
/// be signed by it.
pub fn verify_export(
    input: impl BufRead,
    public_key: Option<[u8; 32]>,
) -> Result<ExportVerified, VerifyFailure> {
    let mut actions: Vec<(usize, i64, String, Box<ActionView>)> = Vec::new();
    // seq -> (kind, values, hash)
    let mut entries: Vec<(i64, String, Vec<SqlValue>, [u8; 32])> = Vec::new();
    let mut checkpoint: Option<Checkpoint> = None;
    let mut ended: Option<(u64, u64)> = None;
    let mut header = false;
    let mut prev: Option<[u8; 32]> = None;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|err| fail(number, format!("unreadable: {err}")))?;
        if line.trim().is_empty() {
            continue;
        }
        if ended.is_some() {
            return Err(fail(number, "a line after the end line"));
        }
        let parsed: Line = serde_json::from_str(&line)
            .map_err(|err| fail(number, format!("not an export line: {err}")))?;
        match parsed {
            Line::Header { format, .. } => {
                if format != EXPORT_FORMAT || header {
                    return Err(fail(number, format!("not a {EXPORT_FORMAT} header")));
                }
                header = true;
            }
            _ if !header => return Err(fail(number, "the export does not start with its header")),
            Line::Action {
                chain_seq,
                chain_hash,
                action,
            } => actions.push((number, chain_seq, chain_hash, action)),
            Line::Entry {
                seq,
                kind,
                record,
                prev_hash,
                hash,
                values,
            } => {
                let values: Vec<SqlValue> = values
                    .iter()
                    .map(value_sql)
                    .collect::<Option<_>>()
                    .ok_or_else(|| fail(number, "an entry value is malformed"))?;
                let prev_hash = hash32(&prev_hash).ok_or_else(|| fail(number, "bad prev_hash"))?;
                let hash = hash32(&hash).ok_or_else(|| fail(number, "bad hash"))?;
                if let Some((last_seq, ..)) = entries.last()
                    && *last_seq + 1 != seq
                {
                    return Err(VerifyFailure {
                        chain_seq: Some(seq),
                        detail: format!("the export skips from entry {last_seq} to {seq}"),
                    });
                }
                if prev.is_some_and(|p| p != prev_hash) {
                    return Err(VerifyFailure {
                        chain_seq: Some(seq),
                        detail: "does not follow the entry before it".into(),
                    });
                }
                let computed = chain::hash_of_values(seq, &prev_hash, &kind, record, &values)
                    .ok_or_else(|| fail(number, format!("unknown record kind {kind:?}")))?;
                if computed != hash {
                    return Err(VerifyFailure {
                        chain_seq: Some(seq),
                        detail: format!("its {kind} record does not match its hash: edited"),
                    });
                }
                prev = Some(hash);
                entries.push((seq, kind, values, hash));
            }
            Line::Checkpoint { checkpoint: c } => checkpoint = Some(c),
            Line::End { actions, entries } => ended = Some((actions, entries)),
        }
    }
    let Some((action_count, entry_count)) = ended else {
        return Err(fail(0, "the export has no end line: it was cut short"));
    };
    if action_count != actions.len() as u64 || entry_count != entries.len() as u64 {
        return Err(fail(
            0,
            "the end line's counts do not match the lines: lines were removed or added",
        ));
    }
    let first = entries.first().map(|e| e.0);
    let entry_at = |seq: i64| first.and_then(|f| entries.get(usize::try_from(seq - f).ok()?));
    for (number, seq, hash, action) in &actions {
        let Some((_, kind, values, entry_hash)) = entry_at(*seq) else {
            return Err(fail(
                *number,
                format!("action {} is not in the proof", action.action_id),
            ));
        };
        let text = |i: usize| match values.get(i) {
            Some(SqlValue::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        let input_matches = text(4)
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .is_some_and(|input| input == action.input);
        let same = kind == "action"
            && hash32(hash) == Some(*entry_hash)
            && text(0) == Some(action.action_id.as_str())
            && text(3) == Some(action.tool.as_str())
            && matches!(values.get(2), Some(SqlValue::Integer(t)) if *t == action.created_at_ms)
            && input_matches;
        if !same {
            return Err(fail(
                *number,
                format!(
                    "action {} is not the action its chain entry hashes: edited",
                    action.action_id
                ),
            ));
        }
        let initial =
            matches!(values.get(10), Some(SqlValue::Text(v)) if v == action.verdict.as_str());
        if action.decision.is_none() && !initial {
            return Err(fail(
                *number,
                format!(
                    "action {}'s verdict is not the one its chain records",
                    action.action_id
                ),
            ));
        }
        if let Some(decision) = &action.decision {
            if decision.verdict != action.verdict {
                return Err(fail(*number, "the action's verdict is not its decision's"));
            }
            let decided = entries.iter().any(|(_, kind, values, _)| {
                kind == "decision"
                    && matches!(values.first(), Some(SqlValue::Text(id)) if *id == action.action_id)
                    && matches!(values.get(3), Some(SqlValue::Text(v)) if v == decision.verdict.as_str())
            });
            let approver_ok = decision.approver.as_ref().is_none_or(|name| {
                entries.iter().any(|(_, kind, values, _)| {
                    kind == "approval"
                        && matches!(values.first(), Some(SqlValue::Text(id)) if *id == action.action_id)
                        && matches!(values.get(3), Some(SqlValue::Text(who)) if who == name)
                })
            });
            if !decided || !approver_ok {
                return Err(fail(
                    *number,
                    format!(
                        "action {}'s decision is not the one its chain records",
                        action.action_id
                    ),
                ));
            }
        }
        if !crate::confinement::export_matches(action, &entries) {
            return Err(fail(
                *number,
                format!(
                    "action {}'s confinement is not the one its chain records",
                    action.action_id
                ),
            ));
        }
    }
    let mut signed_through = None;
    let mut key = None;
    if let Some(checkpoint) = &checkpoint {
        checkpoint
            .verify_signature()
            .map_err(|err| fail(0, format!("the checkpoint's signature is bad: {err}")))?;
        if public_key.is_some_and(|k| k != checkpoint.public_key) {
            return Err(fail(0, "the checkpoint was signed with another key"));
        }
        let last = entries.last().map(|e| e.0);
        if last.is_some_and(|last| checkpoint.chain_seq > last) {
            return Err(fail(
                0,
                "the checkpoint vouches for entries the export does not hold: it was cut short",
            ));
        }
        if let Some((_, _, _, hash)) = entry_at(checkpoint.chain_seq) {
            if *hash != checkpoint.head_hash {
                return Err(VerifyFailure {
                    chain_seq: Some(checkpoint.chain_seq),
                    detail: "does not match the signed checkpoint: rewritten".into(),
                });
            }
            signed_through = Some(checkpoint.chain_seq);
        }
        key = Some(signing::hex(&checkpoint.public_key));
    } else if public_key.is_some() {
        return Err(fail(0, "the export carries no signed checkpoint"));
    }
    Ok(ExportVerified {
        actions: actions.len() as u64,
        entries: entries.len() as u64,
        from_seq: first,
        to_seq: entries.last().map(|e| e.0),
        signed_through,
        public_key: key,
    })
}
