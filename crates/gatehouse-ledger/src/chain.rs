//! The hash chain: every record (action, score, decision, label, outcome) gets one entry in the `chain` table,
//! in commit order, whose hash covers the record's stored values and the previous entry's hash.
//! Editing, deleting, reordering or inserting a record outside the writer breaks the chain;
//! `verify` walks it and names the first entry that does not hold.
//!
//! Encoding (version 1), hashed with SHA-256:
//!
//! ```text
//! "gatehouse.ledger.chain.v1\0"
//! u64be(seq) || prev_hash[32] || value(kind) || u64be(record) || u32be(n) || value(col_1) .. value(col_n)
//! value: 0x00 NULL | 0x01 i64be INTEGER | 0x02 f64-bits-be REAL | 0x03 u32be(len) UTF-8 TEXT | 0x04 u32be(len) BLOB
//! ```
//!
//! The columns are the record's, as SQLite stores them, in the order of `record_sql` below; the
//! first entry's `prev_hash` is 32 zero bytes. Columns added by a later schema (`extension`
//! below: the action hash, peer credentials, observed effect) are hashed only when one of them
//! is set, so a record written before them hashes exactly as it did (`n` tells the two apart). *Invariant*: only the writer appends, inside the
//! transaction that appends the record, so a record and its entry commit or vanish together.

use std::collections::HashSet;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::signing::{self, Checkpoint};

const DOMAIN: &[u8] = b"gatehouse.ledger.chain.v1\0";

/// The kinds of record the chain covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Schema 11: a person's edit of a paused action, approved in its place.
    Edit,
    Action,
    Score,
    Decision,
    Label,
    Outcome,
    /// Schema 10: a standing grant, and its revocation.
    Grant,
    GrantRevoked,
    /// Schema 9: a user added or removed, a person's answer, a policy version.
    User,
    Approval,
    Policy,
    ActionPolicy,
    /// Schema 13: the confinement applied to an action (`confinement.rs`).
    ActionConfinement,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Edit => "edit",
            Kind::Action => "action",
            Kind::Score => "score",
            Kind::Decision => "decision",
            Kind::Label => "label",
            Kind::Outcome => "outcome",
            Kind::Grant => "grant",
            Kind::GrantRevoked => "grant_revoked",
            Kind::User => "user",
            Kind::Approval => "approval",
            Kind::Policy => "policy",
            Kind::ActionPolicy => "action_policy",
            Kind::ActionConfinement => "action_confinement",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        match s {
            "edit" => Some(Kind::Edit),
            "action" => Some(Kind::Action),
            "score" => Some(Kind::Score),
            "decision" => Some(Kind::Decision),
            "label" => Some(Kind::Label),
            "outcome" => Some(Kind::Outcome),
            "grant" => Some(Kind::Grant),
            "grant_revoked" => Some(Kind::GrantRevoked),
            "user" => Some(Kind::User),
            "approval" => Some(Kind::Approval),
            "policy" => Some(Kind::Policy),
            "action_policy" => Some(Kind::ActionPolicy),
            "action_confinement" => Some(Kind::ActionConfinement),
            _ => None,
        }
    }

    /// The record's columns, selected by its `record` number (for a decision, the decided
    /// action's `actions.seq`). The first column is the record's action id, for messages.
    /// The last `extension` columns came with schema 3 (see the module comment); a schema-2
    /// file (verified read-only, without migrating it) has none of them.
    pub(crate) fn record_sql(self, layout: Layout) -> &'static str {
        match (self, layout) {
            (Kind::Edit, _) => {
                "SELECT action_id, seq, recorded_at_ms, original_input, edited_input, edited_hash,
                        edited_by
                 FROM edits WHERE seq = ?1"
            }
            (Kind::Action, Layout::V2) => {
                "SELECT id, seq, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd,
                        context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status
                 FROM actions WHERE seq = ?1"
            }
            (Kind::Decision, Layout::V2) => {
                "SELECT d.action_id, a.seq, d.decided_at_ms, d.verdict, d.decided_by, d.note
                 FROM decisions d JOIN actions a ON a.id = d.action_id WHERE a.seq = ?1"
            }
            (Kind::Action, _) => {
                "SELECT id, seq, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd,
                        context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status,
                        action_hash, peer_uid, peer_pid, observed_effect
                 FROM actions WHERE seq = ?1"
            }
            (Kind::Score, _) => {
                "SELECT action_id, seq, recorded_at_ms, status, score, label, model, explanation,
                        error, disagreement
                 FROM scores WHERE seq = ?1"
            }
            (Kind::Decision, _) => {
                "SELECT d.action_id, a.seq, d.decided_at_ms, d.verdict, d.decided_by, d.note,
                        d.action_hash
                 FROM decisions d JOIN actions a ON a.id = d.action_id WHERE a.seq = ?1"
            }
            (Kind::Label, _) => {
                "SELECT action_id, seq, recorded_at_ms, label, reviewer, note
                 FROM labels WHERE seq = ?1"
            }
            (Kind::Outcome, _) => {
                "SELECT action_id, seq, recorded_at_ms, session_id, tool_use_id, tool, agent, cwd,
                        ran, exit_code, error, duration_ms, findings, flag
                 FROM outcomes WHERE seq = ?1"
            }
            (Kind::Grant, _) => {
                "SELECT 'grant ' || id, seq, created_at_ms, expires_at_ms, scope, rules, hosts,
                        action_id, created_by, note
                 FROM grants WHERE seq = ?1"
            }
            (Kind::GrantRevoked, _) => {
                "SELECT 'grant ' || grant_id, seq, revoked_at_ms, revoked_by
                 FROM grant_revocations WHERE seq = ?1"
            }
            (Kind::User, _) => {
                "SELECT name, seq, recorded_at_ms, event, role, token_hash, actor
                 FROM users WHERE seq = ?1"
            }
            (Kind::Approval, _) => {
                "SELECT action_id, seq, recorded_at_ms, approver, decision, action_hash, note
                 FROM approvals WHERE seq = ?1"
            }
            (Kind::Policy, _) => {
                "SELECT 'policy version ' || version, version, recorded_at_ms, text, sha256,
                        pushed_by, rollback_of
                 FROM policy_versions WHERE version = ?1"
            }
            (Kind::ActionPolicy, _) => {
                "SELECT action_id, seq, recorded_at_ms, version FROM action_policy WHERE seq = ?1"
            }
            (Kind::ActionConfinement, _) => {
                "SELECT action_id, seq, recorded_at_ms, profile, profile_digest, summary, applied,
                        fallback
                 FROM action_confinement WHERE seq = ?1"
            }
        }
    }

    /// How many of `record_sql`'s (schema 3) trailing columns came after the record kind's first schema:
    /// they are hashed only when one of them is not NULL.
    pub(crate) fn extension(self) -> usize {
        match self {
            Kind::Edit => 0,
            Kind::Action => 4,
            Kind::Decision => 1,
            Kind::Score
            | Kind::Label
            | Kind::Outcome
            | Kind::User
            | Kind::Approval
            | Kind::Policy
            | Kind::ActionPolicy
            | Kind::ActionConfinement => 0,
            Kind::Grant | Kind::GrantRevoked => 0,
        }
    }
}

/// Which tables and columns the file has: schema 2 (a file verified without migrating it),
/// schema 3 (labels), or schema 4 and later (outcomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    V2,
    V3,
    V4,
}

impl Layout {
    fn of(conn: &Connection) -> rusqlite::Result<Layout> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(match version {
            v if v >= 4 => Layout::V4,
            3 => Layout::V3,
            _ => Layout::V2,
        })
    }
}

/// The last entry of the chain: how many entries it has and the last hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: [0; 32],
    };
}

/// The head as stored: the last entry, or the genesis head of an empty chain.
pub(crate) fn load_head(conn: &Connection) -> rusqlite::Result<ChainHead> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    Ok(match head {
        Some((seq, hash)) => ChainHead {
            seq,
            hash: hash.try_into().unwrap_or([0; 32]),
        },
        None => ChainHead::GENESIS,
    })
}

/// Appends the entry for a record just written in the same transaction, and returns the new
/// head. The hash is computed from the row as stored (read back), the way `verify` reads it.
pub(crate) fn append(
    conn: &Connection,
    head: ChainHead,
    kind: Kind,
    record: i64,
) -> rusqlite::Result<ChainHead> {
    append_in(conn, Layout::V3, head, kind, record)
}

fn append_in(
    conn: &Connection,
    layout: Layout,
    head: ChainHead,
    kind: Kind,
    record: i64,
) -> rusqlite::Result<ChainHead> {
    let seq = head.seq + 1;
    let hash = match read_record(conn, layout, kind, record)? {
        Some((_, encoded)) => entry_hash(seq, &head.hash, kind, record, &encoded),
        None => return Err(rusqlite::Error::QueryReturnedNoRows),
    };
    conn.prepare_cached(
        "INSERT INTO chain (seq, kind, record, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        seq,
        kind.as_str(),
        record,
        &head.hash[..],
        &hash[..]
    ])?;
    Ok(ChainHead { seq, hash })
}

/// Chains every record not yet in the chain, oldest first (the migration to schema 2 uses it
/// for records written before the chain existed, so it reads them with schema 2's columns).
pub(crate) fn backfill(conn: &Connection) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare(
        "SELECT kind, record FROM (
             SELECT 'action' AS kind, seq AS record, created_at_ms AS at, 0 AS o FROM actions
             UNION ALL SELECT 'score', seq, recorded_at_ms, 1 FROM scores
             UNION ALL SELECT 'decision', a.seq, d.decided_at_ms, 2
                 FROM decisions d JOIN actions a ON a.id = d.action_id) r
         WHERE NOT EXISTS (SELECT 1 FROM chain c WHERE c.kind = r.kind AND c.record = r.record)
         ORDER BY at, o, record",
    )?;
    let records: Vec<(String, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut head = load_head(conn)?;
    for (kind, record) in &records {
        let kind = Kind::parse(kind).unwrap_or(Kind::Action);
        head = append_in(conn, Layout::V2, head, kind, *record)?;
    }
    Ok(records.len() as u64)
}

/// The record's action id and its encoded columns, if it exists.
fn read_record(
    conn: &Connection,
    layout: Layout,
    kind: Kind,
    record: i64,
) -> rusqlite::Result<Option<(String, Vec<u8>)>> {
    conn.prepare_cached(kind.record_sql(layout))?
        .query_row([record], |row| {
            let all = row.as_ref().column_count();
            let base = match layout {
                Layout::V2 => all,
                Layout::V3 | Layout::V4 => all.saturating_sub(kind.extension()),
            };
            let mut extended = false;
            for index in base..all {
                extended |= !matches!(row.get_ref(index)?, ValueRef::Null);
            }
            let columns = if extended { all } else { base };
            let mut encoded = Vec::with_capacity(256);
            encoded.extend_from_slice(&(columns as u32).to_be_bytes());
            for index in 0..columns {
                encode_value(&mut encoded, row.get_ref(index)?);
            }
            let action_id = match row.get_ref(0)? {
                ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                _ => String::new(),
            };
            Ok((action_id, encoded))
        })
        .optional()
}

pub(crate) fn encode_value(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.push(0),
        ValueRef::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        ValueRef::Text(bytes) => {
            out.push(3);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        ValueRef::Blob(bytes) => {
            out.push(4);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

pub(crate) fn entry_hash(
    seq: i64,
    prev: &[u8; 32],
    kind: Kind,
    record: i64,
    columns: &[u8],
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update((seq as u64).to_be_bytes());
    hasher.update(prev);
    let mut kind_value = Vec::with_capacity(16);
    encode_value(&mut kind_value, ValueRef::Text(kind.as_str().as_bytes()));
    hasher.update(&kind_value);
    hasher.update((record as u64).to_be_bytes());
    hasher.update(columns);
    hasher.finalize().into()
}

/// The values an entry's hash covers, as `read_record` selects them (for an export that
/// carries its own proof: `export.rs`). `None` if the record is missing.
pub(crate) fn record_values(
    conn: &Connection,
    kind_text: &str,
    record: i64,
) -> rusqlite::Result<Option<Vec<rusqlite::types::Value>>> {
    let Some(kind) = Kind::parse(kind_text) else {
        return Ok(None);
    };
    let layout = Layout::of(conn)?;
    conn.prepare_cached(kind.record_sql(layout))?
        .query_row([record], |row| {
            let all = row.as_ref().column_count();
            let base = match layout {
                Layout::V2 => all,
                Layout::V3 | Layout::V4 => all.saturating_sub(kind.extension()),
            };
            let mut extended = false;
            for index in base..all {
                extended |= !matches!(row.get_ref(index)?, ValueRef::Null);
            }
            let columns = if extended { all } else { base };
            (0..columns)
                .map(|index| row.get::<_, rusqlite::types::Value>(index))
                .collect()
        })
        .optional()
}

/// An entry's hash from its values (see the module comment); `None` for a kind this build does
/// not know.
pub(crate) fn hash_of_values(
    seq: i64,
    prev: &[u8; 32],
    kind_text: &str,
    record: i64,
    values: &[rusqlite::types::Value],
) -> Option<[u8; 32]> {
    let kind = Kind::parse(kind_text)?;
    let mut encoded = Vec::with_capacity(256);
    encoded.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for value in values {
        encode_value(&mut encoded, ValueRef::from(value));
    }
    Some(entry_hash(seq, prev, kind, record, &encoded))
}

/// How much of the ledger `verify` checks.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Check only the last this-many chain entries (and the latest checkpoint); `None` checks
    /// every entry and every checkpoint.
    pub tail: Option<u64>,
    /// Run SQLite's full `integrity_check` instead of `quick_check`.
    pub full_integrity_check: bool,
    /// The public key checkpoints must be signed with (the data directory's key). A checkpoint
    /// signed with another key is a failure; without it, any valid signature is accepted.
    pub public_key: Option<[u8; 32]>,
    /// Checkpoints kept elsewhere (exported earlier) that the chain must still match.
    pub anchors: Vec<Checkpoint>,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries in the chain.
    pub entries: u64,
    /// Entries whose hashes were recomputed (all of them unless `tail` was set).
    pub checked: u64,
    pub head: ChainHead,
    /// Checkpoints (stored and anchors) whose signature and hash were checked.
    pub checkpoints: u64,
}

/// Why the ledger cannot be trusted: the first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{detail}", .chain_seq.map(|s| format!("chain entry {s}: ")).unwrap_or_default())]
pub struct VerifyFailure {
    /// The first bad chain entry, when the fault is in one.
    pub chain_seq: Option<i64>,
    pub detail: String,
}

impl VerifyFailure {
    fn at(seq: i64, detail: impl Into<String>) -> VerifyFailure {
        VerifyFailure {
            chain_seq: Some(seq),
            detail: detail.into(),
        }
    }

    fn general(detail: impl Into<String>) -> VerifyFailure {
        VerifyFailure {
            chain_seq: None,
            detail: detail.into(),
        }
    }
}

fn damaged(err: rusqlite::Error) -> VerifyFailure {
    VerifyFailure::general(format!(
        "the ledger database is damaged or unreadable: {err}"
    ))
}

/// Checks the file's integrity, the chain, and the checkpoints. Read-only, and in one read
/// transaction: a writer appending meanwhile must not make the counts disagree with the walk.
pub(crate) fn verify(
    conn: &Connection,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    let snapshot = conn.unchecked_transaction().map_err(damaged)?;
    let outcome = verify_in(&snapshot, options);
    // Nothing was written: ending the read transaction cannot lose anything.
    let _ = snapshot.rollback();
    outcome
}

fn verify_in(conn: &Connection, options: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
    integrity(conn, options.full_integrity_check)?;
    let layout = Layout::of(conn).map_err(damaged)?;
    let last: i64 = conn
        .query_row("SELECT coalesce(max(seq), 0) FROM chain", [], |row| {
            row.get(0)
        })
        .map_err(damaged)?;
    let from = match options.tail {
        Some(n) => (last - n as i64 + 1).max(1),
        None => 1,
    };
    let mut prev = if from == 1 {
        [0; 32]
    } else {
        hash_at(conn, from - 1)?.ok_or_else(|| {
            VerifyFailure::at(from - 1, "is missing: the chain was cut (entries deleted)")
        })?
    };
    let mut seen: HashSet<(Kind, i64)> = HashSet::new();
    let mut expected = from;
    let mut stmt = conn
        .prepare(
            "SELECT seq, kind, record, prev_hash, hash FROM chain WHERE seq >= ?1 ORDER BY seq",
        )
        .map_err(damaged)?;
    let mut rows = stmt.query([from]).map_err(damaged)?;
    while let Some(row) = rows.next().map_err(damaged)? {
        let seq: i64 = row.get(0).map_err(damaged)?;
        let kind_text: String = row.get(1).map_err(damaged)?;
        let record: i64 = row.get(2).map_err(damaged)?;
        let prev_hash: Vec<u8> = row.get(3).map_err(damaged)?;
        let hash: Vec<u8> = row.get(4).map_err(damaged)?;
        if seq != expected {
            return Err(VerifyFailure::at(
                expected,
                format!("is missing (the next entry is {seq}): entries were deleted"),
            ));
        }
        let kind = Kind::parse(&kind_text)
            .ok_or_else(|| VerifyFailure::at(seq, format!("has an unknown kind {kind_text:?}")))?;
        if prev_hash != prev {
            return Err(VerifyFailure::at(
                seq,
                format!(
                    "does not follow entry {}: the chain was cut, reordered or rewritten",
                    seq - 1
                ),
            ));
        }
        let Some((action_id, encoded)) =
            read_record(conn, layout, kind, record).map_err(damaged)?
        else {
            return Err(VerifyFailure::at(
                seq,
                format!(
                    "its {} record ({}) is missing: it was deleted",
                    kind.as_str(),
                    describe(conn, kind, record)
                ),
            ));
        };
        let computed = entry_hash(seq, &prev, kind, record, &encoded);
        if hash != computed {
            return Err(VerifyFailure::at(
                seq,
                format!(
                    "its {} record for action {action_id} does not match its hash: the record was edited or moved",
                    kind.as_str()
                ),
            ));
        }
        if !seen.insert((kind, record)) {
            return Err(VerifyFailure::at(
                seq,
                format!(
                    "chains the {} record of action {action_id} a second time",
                    kind.as_str()
                ),
            ));
        }
        prev = computed;
        expected += 1;
    }
    if expected != last + 1 {
        return Err(VerifyFailure::at(
            expected,
            "is missing: entries were deleted",
        ));
    }
    let head = ChainHead {
        seq: last,
        hash: prev,
    };
    let walked_all = (from == 1).then_some(&seen);
    unchained(conn, layout, walked_all, last)?;
    let checkpoints = checkpoints(conn, options, head)?;
    Ok(VerifyReport {
        entries: last.max(0) as u64,
        checked: (last - from + 1).max(0) as u64,
        head,
        checkpoints,
    })
}

fn integrity(conn: &Connection, full: bool) -> Result<(), VerifyFailure> {
    let pragma = if full {
        "PRAGMA integrity_check"
    } else {
        "PRAGMA quick_check"
    };
    let mut stmt = conn.prepare(pragma).map_err(damaged)?;
    let problems: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(damaged)?
        .collect::<Result<_, _>>()
        .map_err(damaged)?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    Err(VerifyFailure::general(format!(
        "SQLite {} failed: the file is damaged: {}",
        pragma.trim_start_matches("PRAGMA "),
        shown.join("; ")
    )))
}

fn hash_at(conn: &Connection, seq: i64) -> Result<Option<[u8; 32]>, VerifyFailure> {
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM chain WHERE seq = ?1")
        .and_then(|mut stmt| stmt.query_row([seq], |row| row.get(0)).optional())
        .map_err(damaged)?;
    Ok(hash.map(|h| h.try_into().unwrap_or([0xff; 32])))
}

fn describe(conn: &Connection, kind: Kind, record: i64) -> String {
    let action: Option<String> = match kind {
        Kind::Action | Kind::Decision => conn
            .query_row("SELECT id FROM actions WHERE seq = ?1", [record], |row| {
                row.get(0)
            })
            .ok(),
        _ => None,
    };
    match (kind, action) {
        (Kind::Edit, _) => format!("edits.seq {record}"),
        (Kind::Score, _) => format!("scores.seq {record}"),
        (Kind::Label, _) => format!("labels.seq {record}"),
        (Kind::Outcome, _) => format!("outcomes.seq {record}"),
        (Kind::Grant, _) => format!("grants.seq {record}"),
        (Kind::GrantRevoked, _) => format!("grant_revocations.seq {record}"),
        (Kind::User, _) => format!("users.seq {record}"),
        (Kind::Approval, _) => format!("approvals.seq {record}"),
        (Kind::Policy, _) => format!("policy version {record}"),
        (Kind::ActionPolicy, _) => format!("action_policy.seq {record}"),
        (Kind::ActionConfinement, _) => format!("action_confinement.seq {record}"),
        (_, Some(id)) => format!("action {id}, actions.seq {record}"),
        (_, None) => format!("actions.seq {record}"),
    }
}

/// Every record must have its entry: one inserted behind the writer's back has none. The
/// totals are compared first (cheap); the records are matched against the entries when the
/// whole chain was walked, or when the totals differ, to name the first unchained record.
fn unchained(
    conn: &Connection,
    layout: Layout,
    walked: Option<&HashSet<(Kind, i64)>>,
    entries: i64,
) -> Result<(), VerifyFailure> {
    let count_sql = match layout {
        Layout::V2 => {
            "SELECT (SELECT count(*) FROM actions) + (SELECT count(*) FROM scores)
                  + (SELECT count(*) FROM decisions)"
        }
        Layout::V3 => {
            "SELECT (SELECT count(*) FROM actions) + (SELECT count(*) FROM scores)
                  + (SELECT count(*) FROM decisions) + (SELECT count(*) FROM labels)"
        }
        Layout::V4 => {
            "SELECT (SELECT count(*) FROM actions) + (SELECT count(*) FROM scores)
                  + (SELECT count(*) FROM decisions) + (SELECT count(*) FROM labels)
                  + (SELECT count(*) FROM outcomes)"
        }
    };
    let records: i64 = crate::edits::record_count(conn).map_err(damaged)?
        + conn
            .query_row(count_sql, [], |row| row.get::<_, i64>(0))
            .map_err(damaged)?
        + crate::team::record_count(conn).map_err(damaged)?
        + crate::grants::record_count(conn).map_err(damaged)?
        + crate::confinement::record_count(conn).map_err(damaged)?;
    if walked.is_none() && records == entries {
        return Ok(());
    }
    let all;
    let chained = match walked {
        Some(walked) => walked,
        None => {
            let mut stmt = conn
                .prepare("SELECT kind, record FROM chain")
                .map_err(damaged)?;
            all = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(damaged)?
                .filter_map(|row| row.ok())
                .filter_map(|(kind, record)| Some((Kind::parse(&kind)?, record)))
                .collect::<HashSet<_>>();
            &all
        }
    };
    let tables = [
        (Kind::Edit, "SELECT action_id, seq FROM edits ORDER BY seq"),
        (Kind::Action, "SELECT id, seq FROM actions ORDER BY seq"),
        (
            Kind::Score,
            "SELECT action_id, seq FROM scores ORDER BY seq",
        ),
        (
            Kind::Decision,
            "SELECT d.action_id, a.seq FROM decisions d JOIN actions a ON a.id = d.action_id ORDER BY a.seq",
        ),
        (
            Kind::Label,
            "SELECT action_id, seq FROM labels ORDER BY seq",
        ),
        (
            Kind::Outcome,
            "SELECT coalesce(action_id, '(none: unchecked)'), seq FROM outcomes ORDER BY seq",
        ),
        (
            Kind::Grant,
            "SELECT 'grant ' || id, seq FROM grants ORDER BY seq",
        ),
        (
            Kind::GrantRevoked,
            "SELECT 'grant ' || grant_id, seq FROM grant_revocations ORDER BY seq",
        ),
        (
            Kind::User,
            "SELECT 'user ' || name, seq FROM users ORDER BY seq",
        ),
        (
            Kind::Approval,
            "SELECT action_id, seq FROM approvals ORDER BY seq",
        ),
        (
            Kind::Policy,
            "SELECT 'policy version ' || version, version FROM policy_versions ORDER BY version",
        ),
        (
            Kind::ActionPolicy,
            "SELECT action_id, seq FROM action_policy ORDER BY seq",
        ),
        (
            Kind::ActionConfinement,
            "SELECT action_id, seq FROM action_confinement ORDER BY seq",
        ),
    ];
    for (kind, sql) in tables {
        let present = match kind {
            Kind::Edit => crate::edits::has_table(conn).map_err(damaged)?,
            Kind::Label => layout != Layout::V2,
            Kind::Outcome => layout == Layout::V4,
            Kind::Grant | Kind::GrantRevoked => crate::grants::has_tables(conn).map_err(damaged)?,
            Kind::User | Kind::Approval | Kind::Policy | Kind::ActionPolicy => {
                crate::team::has_team_tables(conn).map_err(damaged)?
            }
            Kind::ActionConfinement => crate::confinement::has_table(conn).map_err(damaged)?,
            _ => true,
        };
        if !present {
            continue;
        }
        let mut stmt = conn.prepare(sql).map_err(damaged)?;
        let mut rows = stmt.query([]).map_err(damaged)?;
        while let Some(row) = rows.next().map_err(damaged)? {
            let seq: i64 = row.get(1).map_err(damaged)?;
            if !chained.contains(&(kind, seq)) {
                let action_id: String = row.get(0).map_err(damaged)?;
                return Err(VerifyFailure::general(format!(
                    "the {} record of action {action_id} ({} seq {seq}) is not in the chain: it was inserted behind the ledger's back",
                    kind.as_str(),
                    kind.as_str()
                )));
            }
        }
    }
    if records != entries {
        return Err(VerifyFailure::general(format!(
            "the ledger holds {records} records but its chain has {entries} entries"
        )));
    }
    Ok(())
}

/// Stored checkpoints (all of them, or the latest with `tail`) and the given anchors must be
/// validly signed and match the chain.
fn checkpoints(
    conn: &Connection,
    options: &VerifyOptions,
    head: ChainHead,
) -> Result<u64, VerifyFailure> {
    let sql = if options.tail.is_some() {
        "SELECT seq, chain_seq, head_hash, created_at_ms, public_key, signature FROM checkpoints ORDER BY seq DESC LIMIT 1"
    } else {
        "SELECT seq, chain_seq, head_hash, created_at_ms, public_key, signature FROM checkpoints ORDER BY seq"
    };
    let mut stmt = conn.prepare(sql).map_err(damaged)?;
    let stored: Vec<(i64, Checkpoint)> = stmt
        .query_map([], |row| {
            Ok((row.get(0)?, signing::checkpoint_from_row(row)?))
        })
        .map_err(damaged)?
        .collect::<Result<_, _>>()
        .map_err(damaged)?;
    let mut count = 0;
    for (seq, checkpoint) in &stored {
        check_checkpoint(
            conn,
            options,
            head,
            checkpoint,
            &format!("stored checkpoint {seq}"),
        )?;
        count += 1;
    }
    for anchor in &options.anchors {
        check_checkpoint(conn, options, head, anchor, "the anchored checkpoint")?;
        count += 1;
    }
    Ok(count)
}

fn check_checkpoint(
    conn: &Connection,
    options: &VerifyOptions,
    head: ChainHead,
    checkpoint: &Checkpoint,
    name: &str,
) -> Result<(), VerifyFailure> {
    if let Err(err) = checkpoint.verify_signature() {
        return Err(VerifyFailure::general(format!(
            "{name} has a bad signature: {err}"
        )));
    }
    if let Some(key) = options.public_key
        && checkpoint.public_key != key
    {
        return Err(VerifyFailure::general(format!(
            "{name} was signed with a key that is not this ledger's"
        )));
    }
    if checkpoint.chain_seq > head.seq {
        return Err(VerifyFailure::general(format!(
            "{name} vouches for {} chain entries but the chain has only {}: the ledger was truncated",
            checkpoint.chain_seq, head.seq
        )));
    }
    if checkpoint.chain_seq == 0 {
        return Ok(());
    }
    match hash_at(conn, checkpoint.chain_seq)? {
        Some(hash) if hash == checkpoint.head_hash => Ok(()),
        _ => Err(VerifyFailure::at(
            checkpoint.chain_seq,
            format!("does not match {name}: the chain was rewritten"),
        )),
    }
}
