//! Standing grants (schema 10, `migrations/0010_grants.sql`): a person's "approve, and allow
//! similar" as chained `grant` records, their revocations as `grant_revoked` records, and the
//! reads the daemon needs around them — the grants with how many actions each allowed, the
//! recently paused actions a new grant is previewed against, people's approvals (for
//! suggestions) and the counts behind "share of actions answered by grants".
//!
//! *Invariant*: a grant and its revocation are appended, never changed; a grant is revoked at
//! most once (`grant_revocations.grant_id` is unique).

use gatehouse_protocol::grants::GrantRecord;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::chain::Kind;
use crate::writer::{self, Cursor};
use crate::{LedgerError, RecordedAction, RecordedEffect, SqliteLedger};

/// The first schema with the grant tables.
const GRANTS_SCHEMA: i64 = 10;

/// A grant to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGrant {
    pub id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    /// JSON of the scope.
    pub scope: Value,
    pub rules: Vec<Value>,
    pub hosts: Vec<String>,
    pub action_id: Option<String>,
    pub created_by: String,
    pub note: Option<String>,
}

/// What revoking a grant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    /// It was revoked before; nothing was appended.
    Already,
    /// No grant has that id; nothing was appended.
    NotFound,
}

/// A grant command for the writer.
#[derive(Debug)]
pub(crate) enum GrantCommand {
    Add(NewGrant),
    Revoke {
        grant_id: String,
        revoked_at_ms: i64,
        revoked_by: String,
    },
}

/// What a grant command did.
#[derive(Debug)]
pub(crate) enum GrantOutcome {
    Added,
    Revoked(Revoked),
}

/// A person's approval of an action, for suggestions.
#[derive(Debug, Clone)]
pub struct Approved {
    pub action: RecordedAction,
    pub action_hash: String,
    pub decided_at_ms: i64,
}

/// The counts behind the overview's fatigue figures, since a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantCounts {
    pub actions: u64,
    /// Paused by the rules (a person was asked).
    pub paused: u64,
    /// Allowed by a standing grant instead of pausing.
    pub granted: u64,
    /// Decided by a person.
    pub decided_by_people: u64,
}

/// Applies one grant command inside the writer's transaction.
pub(crate) fn apply(
    conn: &Connection,
    command: &GrantCommand,
    cursor: &mut Cursor,
) -> Result<GrantOutcome, LedgerError> {
    match command {
        GrantCommand::Add(grant) => {
            conn.prepare_cached(
                "INSERT INTO grants (id, created_at_ms, expires_at_ms, scope, rules, hosts,
                                     action_id, created_by, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                grant.id,
                grant.created_at_ms,
                grant.expires_at_ms,
                json(&grant.scope),
                json(&grant.rules),
                json(&grant.hosts),
                grant.action_id,
                grant.created_by,
                grant.note,
            ])?;
            writer::chain_record(conn, cursor, Kind::Grant, conn.last_insert_rowid())?;
            Ok(GrantOutcome::Added)
        }
        GrantCommand::Revoke {
            grant_id,
            revoked_at_ms,
            revoked_by,
        } => {
            let exists: Option<i64> = conn
                .prepare_cached("SELECT seq FROM grants WHERE id = ?1")?
                .query_row([grant_id], |row| row.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(GrantOutcome::Revoked(Revoked::NotFound));
            }
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO grant_revocations (grant_id, revoked_at_ms, revoked_by)
                     SELECT ?1, ?2, ?3
                     WHERE NOT EXISTS (SELECT 1 FROM grant_revocations WHERE grant_id = ?1)",
                )?
                .execute(params![grant_id, revoked_at_ms, revoked_by])?;
            if inserted == 0 {
                return Ok(GrantOutcome::Revoked(Revoked::Already));
            }
            writer::chain_record(conn, cursor, Kind::GrantRevoked, conn.last_insert_rowid())?;
            Ok(GrantOutcome::Revoked(Revoked::Revoked))
        }
    }
}

/// JSON text of a value for a column (plain data: serialising it cannot fail).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Whether the file has the grant tables (schema 10 and later).
pub(crate) fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(version >= GRANTS_SCHEMA)
}

/// How many grant records (grants and revocations) the file holds, for the chain's count.
pub(crate) fn record_count(conn: &Connection) -> rusqlite::Result<i64> {
    if !has_tables(conn)? {
        return Ok(0);
    }
    conn.query_row(
        "SELECT (SELECT count(*) FROM grants) + (SELECT count(*) FROM grant_revocations)",
        [],
        |row| row.get(0),
    )
}

fn parse_json(id: &str, what: &'static str, text: &str) -> Result<Value, LedgerError> {
    serde_json::from_str(text)
        .map_err(|err| crate::read::corrupt_column(id, what, format!("not JSON: {err}")))
}

/// The grants with their revocation and how many actions each allowed, newest first (the same
/// SQL on both backends; `GrantRow` is its row).
pub(crate) const GRANT_LIST_SQL: &str =
    "SELECT g.id, g.created_at_ms, g.expires_at_ms, g.scope, g.rules, g.hosts, g.action_id,
            g.created_by, g.note, r.revoked_at_ms, r.revoked_by,
            (SELECT count(*) FROM actions a WHERE a.rule_id = 'grant:' || g.id)
     FROM grants g LEFT JOIN grant_revocations r ON r.grant_id = g.id
     ORDER BY g.seq DESC";

/// One `GRANT_LIST_SQL` row.
pub(crate) type GrantRow = (
    String,
    i64,
    Option<i64>,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
);

/// Decodes one `GRANT_LIST_SQL` row (both backends).
pub(crate) fn grant_from_row(row: GrantRow) -> Result<GrantRecord, LedgerError> {
    let (
        id,
        created,
        expires,
        scope,
        rules,
        hosts,
        action_id,
        by,
        note,
        revoked,
        revoked_by,
        allowed,
    ) = row;
    let scope = parse_json(&id, "grant scope", &scope)?;
    let rules = match parse_json(&id, "grant rules", &rules)? {
        Value::Array(rules) => rules,
        _ => {
            return Err(crate::read::corrupt_column(
                &id,
                "grant rules",
                "not an array".into(),
            ));
        }
    };
    let hosts = match parse_json(&id, "grant hosts", &hosts)? {
        Value::Array(hosts) => hosts
            .into_iter()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(crate::read::corrupt_column(
                &id,
                "grant hosts",
                "not an array".into(),
            ));
        }
    };
    Ok(GrantRecord {
        id,
        created_at_ms: created,
        expires_at_ms: expires,
        scope,
        rules,
        hosts,
        action_id,
        created_by: by,
        note,
        revoked_at_ms: revoked,
        revoked_by,
        allowed: allowed.max(0) as u64,
        status: Default::default(),
    })
}

fn list(conn: &Connection) -> Result<Vec<GrantRecord>, LedgerError> {
    let mut stmt = conn.prepare_cached(GRANT_LIST_SQL)?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
        ))
    })?;
    let mut grants = Vec::new();
    for row in rows {
        grants.push(grant_from_row(row?)?);
    }
    Ok(grants)
}

/// One `actions` row as a recorded action (columns in `ACTION_COLUMNS` order).
pub(crate) const ACTION_COLUMNS: &str =
    "a.id, a.created_at_ms, a.tool, a.input, a.session_id, a.agent, a.cwd, a.verdict,
     a.decided_by, a.rule_id, a.observed_effect, a.action_hash";

/// One row of `ACTION_COLUMNS`.
pub(crate) type ActionRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

fn recorded(row: &rusqlite::Row<'_>) -> Result<(RecordedAction, String), LedgerError> {
    recorded_from((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

/// Decodes one `ACTION_COLUMNS` row (both backends): the action and its hash (hex).
pub(crate) fn recorded_from(row: ActionRow) -> Result<(RecordedAction, String), LedgerError> {
    let (
        id,
        created_at_ms,
        tool,
        input_text,
        session_id,
        agent,
        cwd,
        verdict,
        decided_by,
        rule_id,
        observed,
        hash,
    ) = row;
    let input: Map<String, Value> = match serde_json::from_str(&input_text) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(crate::read::corrupt_column(
                &id,
                "input",
                "not a JSON object".into(),
            ));
        }
    };
    let effect = match (decided_by.as_str(), observed.as_deref(), verdict.as_str()) {
        ("error", _, _) => RecordedEffect::Error,
        (_, Some("reject"), _) => RecordedEffect::Reject,
        (_, Some("pause"), _) => RecordedEffect::Pause,
        ("human" | "timeout", _, _) => RecordedEffect::Pause,
        (_, _, "allow") => RecordedEffect::Allow,
        (_, _, "reject") => RecordedEffect::Reject,
        _ => RecordedEffect::Pause,
    };
    let hash = hash
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .map(|h| crate::action_hash::to_hex(&h))
        .unwrap_or_default();
    Ok((
        RecordedAction {
            id,
            created_at_ms,
            tool,
            input,
            session_id,
            agent,
            cwd,
            effect,
            rule_id,
        },
        hash,
    ))
}

fn paused(conn: &Connection, limit: u32) -> Result<Vec<RecordedAction>, LedgerError> {
    let sql = format!(
        "SELECT {ACTION_COLUMNS} FROM actions a WHERE a.deadline_ms IS NOT NULL
         ORDER BY a.seq DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([i64::from(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(recorded(row)?.0);
    }
    Ok(out)
}

fn approved(conn: &Connection, since_ms: i64, limit: u32) -> Result<Vec<Approved>, LedgerError> {
    let sql = format!(
        "SELECT {ACTION_COLUMNS}, d.decided_at_ms FROM decisions d JOIN actions a ON a.id = d.action_id
         WHERE d.decided_by = 'human' AND d.verdict = 'allow' AND d.decided_at_ms >= ?1
         ORDER BY d.decided_at_ms DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![since_ms, i64::from(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let (action, action_hash) = recorded(row)?;
        out.push(Approved {
            action,
            action_hash,
            decided_at_ms: row.get(12)?,
        });
    }
    Ok(out)
}

fn counts(conn: &Connection, since_ms: i64) -> Result<GrantCounts, LedgerError> {
    let (actions, paused, granted): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), COALESCE(sum(deadline_ms IS NOT NULL), 0),
                    COALESCE(sum(rule_id LIKE 'grant:%'), 0)
             FROM actions WHERE created_at_ms >= ?1",
        )?
        .query_row([since_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    let decided: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM decisions WHERE decided_by = 'human' AND decided_at_ms >= ?1",
        )?
        .query_row([since_ms], |row| row.get(0))?;
    Ok(GrantCounts {
        actions: actions.max(0) as u64,
        paused: paused.max(0) as u64,
        granted: granted.max(0) as u64,
        decided_by_people: decided.max(0) as u64,
    })
}

impl SqliteLedger {
    /// Appends a grant (chained); answers once it is committed.
    pub async fn record_grant(&self, grant: NewGrant) -> Result<(), LedgerError> {
        self.refuse_if_untrusted()?;
        match self
            .call(|reply| writer::Command::Grant(Box::new(GrantCommand::Add(grant)), reply))
            .await?
        {
            GrantOutcome::Added => Ok(()),
            GrantOutcome::Revoked(_) => Err(LedgerError::CommitFailed(
                "the writer answered a grant with a revocation".into(),
            )),
        }
    }

    /// Appends the revocation of a grant (chained), unless it has one or does not exist.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        revoked_at_ms: i64,
        revoked_by: &str,
    ) -> Result<Revoked, LedgerError> {
        self.refuse_if_untrusted()?;
        let command = GrantCommand::Revoke {
            grant_id: grant_id.to_owned(),
            revoked_at_ms,
            revoked_by: revoked_by.to_owned(),
        };
        match self
            .call(|reply| writer::Command::Grant(Box::new(command), reply))
            .await?
        {
            GrantOutcome::Revoked(revoked) => Ok(revoked),
            GrantOutcome::Added => Err(LedgerError::CommitFailed(
                "the writer answered a revocation with a grant".into(),
            )),
        }
    }

    /// Every grant, newest first, with its revocation and how many actions it allowed.
    pub async fn grants(&self) -> Result<Vec<GrantRecord>, LedgerError> {
        self.inner.reads.run(list).await
    }

    /// The newest `limit` actions the rules paused, newest first.
    pub async fn paused_actions(&self, limit: u32) -> Result<Vec<RecordedAction>, LedgerError> {
        self.inner.reads.run(move |conn| paused(conn, limit)).await
    }

    /// People's approvals since `since_ms`, newest first.
    pub async fn approvals_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<Approved>, LedgerError> {
        self.inner
            .reads
            .run(move |conn| approved(conn, since_ms, limit))
            .await
    }

    /// Actions, pauses, grant allows and people's decisions since `since_ms`.
    pub async fn grant_counts(&self, since_ms: i64) -> Result<GrantCounts, LedgerError> {
        self.inner
            .reads
            .run(move |conn| counts(conn, since_ms))
            .await
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
    use serde_json::json;

    use super::*;
    use crate::{DecisionFact, Ledger, LedgerConfig, NewAction, VerifyOptions};

    fn action(id: &str, verdict: Verdict, rule_id: Option<&str>) -> NewAction {
        NewAction {
            id: id.to_owned(),
            created_at_ms: 1_000,
            tool: "Bash".into(),
            input: json!({ "command": "docker ps" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            session_id: Some("s1".into()),
            agent: None,
            tool_use_id: None,
            cwd: Some("/w/p".into()),
            context: None,
            verdict,
            decided_by: DecidedBy::Rule,
            rule_id: rule_id.map(str::to_owned),
            reason: "r".into(),
            deadline_ms: (verdict == Verdict::Pending).then_some(100_000),
            tier2_status: Tier2Status::Disabled,
            peer_uid: None,
            peer_pid: None,
            observed_effect: None,
        }
    }

    fn grant(id: &str, action_id: &str) -> NewGrant {
        NewGrant {
            id: id.into(),
            created_at_ms: 3_000,
            expires_at_ms: Some(10_000),
            scope: json!({ "kind": "everywhere" }),
            rules: vec![json!({ "tool": "Bash", "command": { "program": "docker" } })],
            hosts: vec![],
            action_id: Some(action_id.into()),
            created_by: "dashboard".into(),
            note: None,
        }
    }

    #[tokio::test]
    async fn grants_and_revocations_are_chained_records_read_back_with_their_use() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap();
        ledger
            .record_action(action("a1", Verdict::Pending, None))
            .await
            .unwrap();
        ledger
            .record_decision(DecisionFact {
                action_id: "a1".into(),
                decided_at_ms: 2_000,
                verdict: Verdict::Allow,
                decided_by: DecidedBy::Human,
                note: None,
                action_hash: None,
            })
            .await
            .unwrap();
        ledger.record_grant(grant("grt_1", "a1")).await.unwrap();
        ledger
            .record_action(action("a2", Verdict::Allow, Some("grant:grt_1")))
            .await
            .unwrap();
        let grants = ledger.grants().await.unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].id, "grt_1");
        assert_eq!(grants[0].allowed, 1);
        assert_eq!(grants[0].expires_at_ms, Some(10_000));
        assert_eq!(grants[0].rules[0]["command"]["program"], "docker");
        assert_eq!(
            ledger.revoke_grant("grt_1", 4_000, "cli").await.unwrap(),
            Revoked::Revoked
        );
        assert_eq!(
            ledger.revoke_grant("grt_1", 5_000, "cli").await.unwrap(),
            Revoked::Already
        );
        assert_eq!(
            ledger.revoke_grant("grt_x", 5_000, "cli").await.unwrap(),
            Revoked::NotFound
        );
        let grants = ledger.grants().await.unwrap();
        assert_eq!(grants[0].revoked_at_ms, Some(4_000));
        assert_eq!(grants[0].revoked_by.as_deref(), Some("cli"));
        // A second grant with the same id is refused, and nothing is appended.
        assert!(ledger.record_grant(grant("grt_1", "a1")).await.is_err());
        let report = ledger.verify(VerifyOptions::default()).await.unwrap();
        // a1, its decision, grant, a2, revocation.
        assert_eq!(report.entries, 5);

        let paused = ledger.paused_actions(10).await.unwrap();
        assert_eq!(
            paused.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["a1"]
        );
        let approved = ledger.approvals_since(0, 10).await.unwrap();
        assert_eq!(approved.len(), 1);
        assert_eq!(approved[0].action.id, "a1");
        assert_eq!(approved[0].action_hash.len(), 64);
        let counts = ledger.grant_counts(0).await.unwrap();
        assert_eq!(
            counts,
            GrantCounts {
                actions: 2,
                paused: 1,
                granted: 1,
                decided_by_people: 1
            }
        );
    }

    #[tokio::test]
    async fn a_grant_row_edited_behind_the_ledger_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(LedgerConfig::new(&path)).unwrap();
        ledger
            .record_action(action("a1", Verdict::Pending, None))
            .await
            .unwrap();
        ledger.record_grant(grant("grt_1", "a1")).await.unwrap();
        ledger.flush().await.unwrap();
        drop(ledger);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER grants_append_only_update;
             UPDATE grants SET scope = '{\"kind\":\"everywhere\",\"x\":1}' WHERE id = 'grt_1';",
        )
        .unwrap();
        drop(conn);
        let failure = crate::verify_file(&path, &VerifyOptions::default()).unwrap_err();
        assert!(failure.to_string().contains("grant"), "{failure}");
    }
}
