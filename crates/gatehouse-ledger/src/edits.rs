//! Edit then approve: a person changed a paused action's input and approved the edited action
//! in its place. The action keeps its original input; the edit (original and edited input, the
//! edited action's hash, who edited) is appended with the approving decision, in one savepoint of
//! the writer's transaction, and chained as an `edit` record (schema 11, `migrations/0011_edits.sql`).
//!
//! *Invariant*: an edit exists only with its approving decision, and the decision lands only on
//! the action the person saw (the original's hash, compare-and-set as for every decision).

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::chain::Kind;
use crate::writer::{self, Cursor};
use crate::{DecisionFact, DecisionOutcome, LedgerError};

/// The first schema with the `edits` table.
const EDITS_SCHEMA: i64 = 11;

/// What a person approved instead of the action's input.
#[derive(Debug, Clone, PartialEq)]
pub struct EditFact {
    pub edited_input: Map<String, Value>,
    /// The edited action's hash (`ActionIdentity` with the edited input).
    pub edited_hash: [u8; 32],
    /// Who edited and approved it (1 to 256 bytes).
    pub edited_by: String,
}

/// Lands `fact` (an approval) with `edit`, both or neither. A decision that does not land
/// (already decided, another action's hash, no such action) appends no edit.
pub(crate) fn insert_edited_decision(
    conn: &Connection,
    fact: &DecisionFact,
    edit: &EditFact,
    cursor: &mut Cursor,
) -> Result<DecisionOutcome, LedgerError> {
    if edit.edited_by.is_empty() || edit.edited_by.len() > 256 {
        return Err(LedgerError::Corrupt {
            action_id: fact.action_id.clone(),
            what: "edited_by",
            detail: "must be 1 to 256 bytes".into(),
        });
    }
    let edited_input =
        serde_json::to_string(&edit.edited_input).map_err(|err| LedgerError::Corrupt {
            action_id: fact.action_id.clone(),
            what: "edited_input",
            detail: err.to_string(),
        })?;
    // Two statements: a savepoint keeps them one (the batch's other commands are untouched).
    let head = cursor.head;
    conn.execute_batch("SAVEPOINT gatehouse_edit")?;
    let landed = (|| -> Result<DecisionOutcome, LedgerError> {
        let outcome = writer::insert_decision(conn, fact, cursor)?;
        let DecisionOutcome::Decided(view) = &outcome else {
            return Ok(outcome);
        };
        let original = serde_json::to_string(&view.input).unwrap_or_else(|_| "null".into());
        conn.prepare_cached(
            "INSERT INTO edits (action_id, original_input, edited_input, edited_hash, edited_by,
                                recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            fact.action_id,
            original,
            edited_input,
            &edit.edited_hash[..],
            edit.edited_by,
            fact.decided_at_ms,
        ])?;
        writer::chain_record(conn, cursor, Kind::Edit, conn.last_insert_rowid())?;
        let decided =
            crate::read::action(conn, &fact.action_id)?.ok_or_else(|| LedgerError::Corrupt {
                action_id: fact.action_id.clone(),
                what: "action",
                detail: "vanished while being decided".into(),
            })?;
        Ok(DecisionOutcome::Decided(Box::new(decided)))
    })();
    match landed {
        Ok(outcome) => {
            conn.execute_batch("RELEASE gatehouse_edit")?;
            Ok(outcome)
        }
        Err(err) => {
            cursor.head = head;
            conn.execute_batch("ROLLBACK TO gatehouse_edit; RELEASE gatehouse_edit")?;
            Err(err)
        }
    }
}

/// Whether the file has the `edits` table (schema 11 and later).
pub(crate) fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(version >= EDITS_SCHEMA)
}

/// How many edits the file holds (0 before schema 11), for the chain's record count.
pub(crate) fn record_count(conn: &Connection) -> rusqlite::Result<i64> {
    if !has_table(conn)? {
        return Ok(0);
    }
    conn.query_row("SELECT count(*) FROM edits", [], |row| row.get(0))
}
