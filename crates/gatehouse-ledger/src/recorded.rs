//! Recorded actions as the rules saw them, streamed oldest first from a ledger file: what
//! `gatehouse policy replay` evaluates a candidate policy against.

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::LedgerError;

/// What the rules decided when the action was checked (not what a person later decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedEffect {
    Allow,
    Reject,
    Pause,
    /// The check failed (the ledger could not record, the request was invalid...): the action
    /// was rejected with `decided_by: "error"`, not by a rule.
    Error,
}

impl RecordedEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedEffect::Allow => "allow",
            RecordedEffect::Reject => "reject",
            RecordedEffect::Pause => "pause",
            RecordedEffect::Error => "error",
        }
    }
}

/// One recorded action, with the rules' effect at check time. In observe mode the verdict was
/// `allow` and the effect is what the rules would have done (`observed_effect`).
#[derive(Debug, Clone)]
pub struct RecordedAction {
    pub id: String,
    pub created_at_ms: i64,
    pub tool: String,
    pub input: Map<String, Value>,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    pub cwd: Option<String>,
    pub effect: RecordedEffect,
    pub rule_id: Option<String>,
}

/// Calls `each` for every action recorded at or after `since_ms`, oldest first, without
/// holding them all in memory. Stops early when `each` returns `false`.
pub(crate) fn for_each(
    conn: &Connection,
    since_ms: i64,
    mut each: impl FnMut(RecordedAction) -> bool,
) -> Result<u64, LedgerError> {
    let mut statement = conn.prepare(
        "SELECT id, created_at_ms, tool, input, session_id, agent, cwd, verdict, decided_by,
                rule_id, observed_effect
         FROM actions WHERE created_at_ms >= ?1 ORDER BY seq",
    )?;
    let mut rows = statement.query(params![since_ms])?;
    let mut seen = 0;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let input_text: String = row.get(3)?;
        let input = match serde_json::from_str::<Value>(&input_text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(LedgerError::Corrupt {
                    action_id: id,
                    what: "input",
                    detail: "not a JSON object".into(),
                });
            }
        };
        let verdict: String = row.get(7)?;
        let decided_by: String = row.get(8)?;
        let observed: Option<String> = row.get(10)?;
        let effect = match (decided_by.as_str(), observed.as_deref(), verdict.as_str()) {
            ("error", _, _) => RecordedEffect::Error,
            (_, Some("reject"), _) => RecordedEffect::Reject,
            (_, Some("pause"), _) => RecordedEffect::Pause,
            (_, _, "allow") => RecordedEffect::Allow,
            (_, _, "reject") => RecordedEffect::Reject,
            _ => RecordedEffect::Pause,
        };
        seen += 1;
        let keep_going = each(RecordedAction {
            id,
            created_at_ms: row.get(1)?,
            tool: row.get(2)?,
            input,
            session_id: row.get(4)?,
            agent: row.get(5)?,
            cwd: row.get(6)?,
            effect,
            rule_id: row.get(9)?,
        });
        if !keep_going {
            break;
        }
    }
    Ok(seen)
}
