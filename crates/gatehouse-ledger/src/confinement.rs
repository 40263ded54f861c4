//! The confinement applied to an action (schema 13): the sandbox profile its rule required, a
//! digest of that profile as resolved, what it allowed, and whether it was applied or the
//! client could not confine the command so the rule's fallback verdict applied. One chained
//! `action_confinement` record, written in the transaction that records the action, so the two
//! commit or vanish together and `ledger verify` covers both.
//!
//! PostgreSQL (schema 6) holds the same records, chained with the same kind and columns: the
//! digest and view conversions here serve both backends (`postgres::confinement`).

use gatehouse_protocol::{ActionView, ConfinementApplied, ConfinementRecord};
use rusqlite::{Connection, OptionalExtension, params};

use crate::chain::Kind;
use crate::writer::{self, Cursor};
use crate::{Ledger, LedgerError, NewAction, Recorded, SqliteLedger};

/// The schema that added the `action_confinement` table.
const SCHEMA: i64 = 13;

impl Ledger {
    /// Appends an action with the pushed policy `version` that decided it (see
    /// `record_action_under`) and, when its rule required one, the confinement applied to it,
    /// all or nothing, on either backend.
    pub async fn record_action_confined(
        &self,
        action: NewAction,
        version: Option<i64>,
        confinement: Option<ConfinementRecord>,
    ) -> Result<Recorded, LedgerError> {
        let Some(confinement) = confinement else {
            return self.record_action_under(action, version).await;
        };
        match self.as_sqlite() {
            Some(sqlite) => {
                sqlite
                    .record_confined_action(action, version, confinement)
                    .await
            }
            #[cfg(feature = "postgres")]
            None => match self.as_postgres() {
                Some(pg) => {
                    pg.record_confined_action(action, version, confinement)
                        .await
                }
                None => Err(LedgerError::Postgres("no ledger backend".into())),
            },
            #[cfg(not(feature = "postgres"))]
            None => self.record_action_under(action, version).await,
        }
    }
}

impl SqliteLedger {
    /// Appends an action and its confinement record (and its policy version, if any).
    pub async fn record_confined_action(
        &self,
        action: NewAction,
        version: Option<i64>,
        confinement: ConfinementRecord,
    ) -> Result<Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| {
            writer::Command::ConfinedAction(Box::new((action, version, confinement)), reply)
        })
        .await
    }
}

/// Writes the action (with its policy version) and then its confinement, chained; if the
/// confinement cannot be written the batch breaks, so the action does not commit alone.
pub(crate) fn insert_confined_action(
    conn: &Connection,
    action: &NewAction,
    version: Option<i64>,
    confinement: &ConfinementRecord,
    cursor: &mut Cursor,
) -> Result<Recorded, LedgerError> {
    let recorded = match version {
        Some(version) => crate::team::insert_versioned_action(conn, action, version, cursor)?,
        None => writer::insert_action(conn, action, cursor)?,
    };
    if matches!(recorded, Recorded::Inserted) {
        let written = insert(conn, &action.id, action.created_at_ms, confinement).and_then(|_| {
            writer::chain_record(
                conn,
                cursor,
                Kind::ActionConfinement,
                conn.last_insert_rowid(),
            )
        });
        if let Err(err) = written {
            cursor.break_batch(format!("cannot record the action's confinement: {err}"));
            return Err(err);
        }
    }
    Ok(recorded)
}

/// The profile digest as the record holds it (32 bytes), refused unless it is 64 hex digits.
pub(crate) fn digest_bytes(
    action_id: &str,
    confinement: &ConfinementRecord,
) -> Result<Option<[u8; 32]>, LedgerError> {
    confinement
        .profile_digest
        .as_deref()
        .map(|hex| {
            crate::action_hash::from_hex(hex).ok_or_else(|| LedgerError::Corrupt {
                action_id: action_id.to_owned(),
                what: "confinement",
                detail: format!("the profile digest {hex:?} is not 64 hex digits"),
            })
        })
        .transpose()
}

/// The view's confinement from a record's columns (profile, digest, summary, applied, fallback).
pub(crate) fn from_columns(
    action_id: &str,
    (profile, digest, summary, applied, fallback): (
        String,
        Option<Vec<u8>>,
        Option<String>,
        String,
        Option<String>,
    ),
) -> Result<ConfinementRecord, LedgerError> {
    let applied = ConfinementApplied::parse(&applied).ok_or_else(|| LedgerError::Corrupt {
        action_id: action_id.to_owned(),
        what: "confinement",
        detail: format!("unknown applied value {applied:?}"),
    })?;
    Ok(ConfinementRecord {
        profile,
        profile_digest: digest.map(|d| d.iter().map(|b| format!("{b:02x}")).collect()),
        summary,
        applied,
        fallback,
    })
}

fn insert(
    conn: &Connection,
    action_id: &str,
    recorded_at_ms: i64,
    confinement: &ConfinementRecord,
) -> Result<usize, LedgerError> {
    let digest = digest_bytes(action_id, confinement)?;
    Ok(conn
        .prepare_cached(
            "INSERT INTO action_confinement
                 (action_id, profile, profile_digest, summary, applied, fallback, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            action_id,
            confinement.profile,
            digest.as_ref().map(|d| &d[..]),
            confinement.summary,
            confinement.applied.as_str(),
            confinement.fallback,
            recorded_at_ms,
        ])?)
}

/// Whether the file has schema 13's table (a ledger read without migrating it may not).
pub(crate) fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(version >= SCHEMA)
}

/// How many confinement records the file holds (for the verifier's count of unchained records).
pub(crate) fn record_count(conn: &Connection) -> rusqlite::Result<i64> {
    if !has_table(conn)? {
        return Ok(0);
    }
    conn.query_row("SELECT count(*) FROM action_confinement", [], |row| {
        row.get(0)
    })
}

/// Fills in the view's confinement, if its rule required one.
pub(crate) fn attach(conn: &Connection, view: &mut ActionView) -> Result<(), LedgerError> {
    if !has_table(conn)? {
        return Ok(());
    }
    type Row = (
        String,
        Option<Vec<u8>>,
        Option<String>,
        String,
        Option<String>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT profile, profile_digest, summary, applied, fallback
             FROM action_confinement WHERE action_id = ?1",
        )?
        .query_row([&view.action_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    if let Some(row) = row {
        view.confinement = Some(from_columns(&view.action_id, row)?);
    }
    Ok(())
}

/// For `verify_export`: the action line's confinement is the `action_confinement` record of the
/// proof (profile, digest, applied, fallback), and an action line without one has none there.
pub(crate) fn export_matches(
    action: &ActionView,
    entries: &[(i64, String, Vec<rusqlite::types::Value>, [u8; 32])],
) -> bool {
    use rusqlite::types::Value as SqlValue;
    let text = |v: Option<&SqlValue>| match v {
        Some(SqlValue::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let recorded = entries.iter().find(|(_, kind, values, _)| {
        kind == Kind::ActionConfinement.as_str()
            && matches!(values.first(), Some(SqlValue::Text(id)) if *id == action.action_id)
    });
    match (&action.confinement, recorded) {
        (None, None) => true,
        (Some(c), Some((_, _, values, _))) => {
            let digest = match values.get(4) {
                Some(SqlValue::Blob(bytes)) => {
                    Some(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
                }
                _ => None,
            };
            text(values.get(3)).as_deref() == Some(c.profile.as_str())
                && digest == c.profile_digest
                && text(values.get(5)) == c.summary
                && text(values.get(6)).as_deref() == Some(c.applied.as_str())
                && text(values.get(7)) == c.fallback
        }
        // A record the proof does not hold may lie before its first entry (a filtered export).
        (Some(_), None) => false,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::{LedgerConfig, VerifyOptions};

    fn allowed(id: &str) -> NewAction {
        NewAction {
            id: id.into(),
            created_at_ms: 1_000,
            tool: "Bash".into(),
            input: json!({"command": "cargo test"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            session_id: Some("s".into()),
            agent: None,
            tool_use_id: Some(format!("tu_{id}")),
            cwd: Some("/w".into()),
            context: None,
            verdict: Verdict::Allow,
            decided_by: DecidedBy::Rule,
            rule_id: Some("builds".into()),
            reason: "builds run confined".into(),
            deadline_ms: None,
            tier2_status: Tier2Status::Disabled,
            peer_uid: None,
            peer_pid: None,
            observed_effect: None,
        }
    }

    fn confined() -> ConfinementRecord {
        ConfinementRecord {
            profile: "build".into(),
            profile_digest: Some("ab".repeat(32)),
            summary: Some("writes only {project} {tmp}; no network".into()),
            applied: ConfinementApplied::Confined,
            fallback: None,
        }
    }

    fn open(dir: &tempfile::TempDir) -> Ledger {
        Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap()
    }

    #[tokio::test]
    async fn the_confinement_is_recorded_with_the_action_chained_and_shown() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(&dir);
        ledger
            .record_action_confined(allowed("act_1"), None, Some(confined()))
            .await
            .unwrap();
        let fallback = ConfinementRecord {
            profile_digest: None,
            summary: None,
            applied: ConfinementApplied::Fallback,
            fallback: Some("pause".into()),
            ..confined()
        };
        ledger
            .record_action_confined(allowed("act_2"), None, Some(fallback.clone()))
            .await
            .unwrap();
        ledger
            .record_action_confined(allowed("act_3"), None, None)
            .await
            .unwrap();
        let view = ledger.action("act_1").await.unwrap().unwrap();
        assert_eq!(view.confinement, Some(confined()));
        let view = ledger.action("act_2").await.unwrap().unwrap();
        assert_eq!(view.confinement, Some(fallback));
        let view = ledger.action("act_3").await.unwrap().unwrap();
        assert_eq!(view.confinement, None);
        let json = serde_json::to_value(ledger.action("act_1").await.unwrap()).unwrap();
        assert_eq!(json["confinement"]["applied"], "confined");
        assert_eq!(json["confinement"]["profile_digest"], "ab".repeat(32));
        let report = ledger.verify(VerifyOptions::default()).await;
        assert!(report.is_ok(), "{report:?}");
    }

    #[tokio::test]
    async fn an_export_carries_the_confinement_and_verifies_offline() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(&dir);
        ledger
            .record_action_confined(allowed("act_1"), None, Some(confined()))
            .await
            .unwrap();
        ledger.flush().await.unwrap();
        let mut out = Vec::new();
        crate::export_file(
            &dir.path().join("ledger.db"),
            &crate::ExportFilter::default(),
            crate::ExportFormat::Jsonl,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""kind":"action_confinement""#),
            "the proof holds the record: {text}"
        );
        assert!(text.contains(r#""applied":"confined""#), "{text}");
        let verified = crate::verify_export(text.as_bytes(), None).unwrap();
        assert_eq!(verified.actions, 1);
        // The action line's confinement edited, or removed: it no longer matches the proof.
        let edited = text.replacen(r#""profile":"build""#, r#""profile":"build-net""#, 1);
        assert_ne!(edited, text);
        let failure = crate::verify_export(edited.as_bytes(), None).unwrap_err();
        assert!(failure.detail.contains("confinement"), "{failure:?}");
        let removed = text.replacen(r#""applied":"confined""#, r#""applied":"fallback""#, 1);
        assert!(crate::verify_export(removed.as_bytes(), None).is_err());
        // The record in the proof edited: its hash no longer holds.
        let at = text.rfind(r#""build""#).unwrap();
        let forged = format!("{}\"build-net\"{}", &text[..at], &text[at + 7..]);
        assert!(crate::verify_export(forged.as_bytes(), None).is_err());
    }

    #[tokio::test]
    async fn a_bad_digest_records_neither_the_action_nor_its_confinement() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = open(&dir);
        let bad = ConfinementRecord {
            profile_digest: Some("not hex".into()),
            ..confined()
        };
        let outcome = ledger
            .record_action_confined(allowed("act_1"), None, Some(bad))
            .await;
        assert!(outcome.is_err(), "{outcome:?}");
        assert!(ledger.action("act_1").await.unwrap().is_none());
        // The ledger goes on recording afterwards.
        ledger
            .record_action_confined(allowed("act_2"), None, Some(confined()))
            .await
            .unwrap();
        assert!(ledger.action("act_2").await.unwrap().is_some());
        let report = ledger.verify(VerifyOptions::default()).await;
        assert!(report.is_ok(), "{report:?}");
    }

    #[tokio::test]
    async fn an_edited_or_unchained_confinement_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        {
            let ledger = open(&dir);
            ledger
                .record_action_confined(allowed("act_1"), None, Some(confined()))
                .await
                .unwrap();
            ledger.flush().await.unwrap();
        }
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TRIGGER action_confinement_append_only_update;
                 UPDATE action_confinement SET profile = 'build-net';",
            )
            .unwrap();
        }
        let ledger = open(&dir);
        let report = ledger.verify(VerifyOptions::default()).await;
        let failure = report.unwrap_err();
        assert!(failure.detail.contains("action_confinement"), "{failure:?}");
        drop(ledger);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        {
            let ledger = open(&dir);
            ledger
                .record_action_confined(allowed("act_1"), None, None)
                .await
                .unwrap();
            ledger.flush().await.unwrap();
        }
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO action_confinement (action_id, profile, applied, recorded_at_ms)
                 VALUES ('act_1', 'build', 'confined', 1)",
                [],
            )
            .unwrap();
        }
        let ledger = open(&dir);
        let report = ledger.verify(VerifyOptions::default()).await;
        let failure = report.unwrap_err();
        assert!(failure.detail.contains("action_confinement"), "{failure:?}");
    }
}
