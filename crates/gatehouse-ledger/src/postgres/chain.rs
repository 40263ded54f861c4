//! The hash chain in PostgreSQL: the same entries and encoding as the SQLite chain (`crate::chain`
//! defines both; a record's columns are selected by the same `record_sql`), appended under the
//! ledger's advisory transaction lock, and `verify`, which walks it in one snapshot.

use std::collections::HashSet;

use rusqlite::types::{Value, ValueRef};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row};

use crate::chain::{ChainHead, Kind, Layout, encode_value, entry_hash};
use crate::{LedgerError, VerifyFailure, VerifyOptions, VerifyReport};

/// The advisory lock every writing transaction takes first: the chain's serialisation point
/// across replicas ("gh-chain").
pub(crate) const CHAIN_LOCK: i64 = 0x6768_2d63_6861_696e;

/// The record kinds the PostgreSQL schema holds (their tables exist there).
const KINDS: [Kind; 13] = [
    Kind::Action,
    Kind::Score,
    Kind::Decision,
    Kind::Label,
    Kind::Outcome,
    Kind::User,
    Kind::Approval,
    Kind::Policy,
    Kind::ActionPolicy,
    Kind::Grant,
    Kind::GrantRevoked,
    Kind::Edit,
    Kind::ActionConfinement,
];

fn record_sql(kind: Kind) -> String {
    kind.record_sql(Layout::V4).replace("?1", "$1")
}

/// One column as SQLite would store it, so both backends hash a record the same way.
fn column(row: &Row, index: usize) -> Result<Value, tokio_postgres::Error> {
    let ty = row.columns()[index].type_().clone();
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|v| Value::Integer(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|v| Value::Integer(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|v| Value::Integer(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Value::Real),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Blob),
        _ => row.try_get::<_, Option<String>>(index)?.map(Value::Text),
    }
    .unwrap_or(Value::Null))
}

/// The record's action id and its encoded columns (`crate::chain`'s encoding), if it exists.
async fn read_record(
    client: &impl GenericClient,
    kind: Kind,
    record: i64,
) -> Result<Option<(String, Vec<u8>)>, tokio_postgres::Error> {
    let Some(row) = client.query_opt(&record_sql(kind), &[&record]).await? else {
        return Ok(None);
    };
    let all = row.len();
    let values = (0..all)
        .map(|i| column(&row, i))
        .collect::<Result<Vec<_>, _>>()?;
    let base = all.saturating_sub(kind.extension());
    let extended = values[base..].iter().any(|v| !matches!(v, Value::Null));
    let columns = if extended { all } else { base };
    let mut encoded = Vec::with_capacity(256);
    encoded.extend_from_slice(&(columns as u32).to_be_bytes());
    for value in &values[..columns] {
        encode_value(&mut encoded, ValueRef::from(value));
    }
    let action_id = match values.first() {
        Some(Value::Text(text)) => text.clone(),
        _ => String::new(),
    };
    Ok(Some((action_id, encoded)))
}

pub(crate) async fn load_head(client: &impl GenericClient) -> Result<ChainHead, LedgerError> {
    let row = client
        .query_opt("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1", &[])
        .await
        .map_err(super::pg)?;
    Ok(match row {
        Some(row) => ChainHead {
            seq: row.try_get(0).map_err(super::pg)?,
            hash: row
                .try_get::<_, Vec<u8>>(1)
                .map_err(super::pg)?
                .try_into()
                .unwrap_or([0; 32]),
        },
        None => ChainHead::GENESIS,
    })
}

/// Appends the entry for a record just written in the same transaction; returns the new head.
pub(crate) async fn append(
    client: &impl GenericClient,
    head: ChainHead,
    kind: Kind,
    record: i64,
) -> Result<ChainHead, LedgerError> {
    let seq = head.seq + 1;
    let Some((_, encoded)) = read_record(client, kind, record).await.map_err(super::pg)? else {
        return Err(LedgerError::Postgres(format!(
            "the {} record {record} vanished before it was chained",
            kind.as_str()
        )));
    };
    let hash = entry_hash(seq, &head.hash, kind, record, &encoded);
    client
        .execute(
            "INSERT INTO chain (seq, kind, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)",
            &[&seq, &kind.as_str(), &record, &&head.hash[..], &&hash[..]],
        )
        .await
        .map_err(super::pg)?;
    Ok(ChainHead { seq, hash })
}

fn damaged(err: tokio_postgres::Error) -> VerifyFailure {
    VerifyFailure {
        chain_seq: None,
        detail: format!("the ledger database could not be read: {err}"),
    }
}

fn at(seq: i64, detail: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        chain_seq: Some(seq),
        detail: detail.into(),
    }
}

/// Walks the chain (all of it, or the tail) in one repeatable-read snapshot: every entry must
/// follow the one before, match its record, and every record must have one entry.
pub(crate) async fn verify(
    client: &tokio_postgres::Client,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(damaged)?;
    let outcome = verify_in(client, options).await;
    // Nothing was written: ending the snapshot cannot lose anything.
    let _ = client.batch_execute("ROLLBACK").await;
    outcome
}

async fn verify_in(
    client: &tokio_postgres::Client,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    let last: i64 = client
        .query_one("SELECT coalesce(max(seq), 0)::BIGINT FROM chain", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(damaged)?;
    let from = match options.tail {
        Some(n) => (last - n as i64 + 1).max(1),
        None => 1,
    };
    let mut prev = [0u8; 32];
    if from > 1 {
        let row = client
            .query_opt("SELECT hash FROM chain WHERE seq = $1", &[&(from - 1)])
            .await
            .map_err(damaged)?
            .ok_or_else(|| at(from - 1, "is missing: the chain was cut (entries deleted)"))?;
        prev = row
            .try_get::<_, Vec<u8>>(0)
            .map_err(damaged)?
            .try_into()
            .unwrap_or([0xff; 32]);
    }
    let rows = client
        .query(
            "SELECT seq, kind, record, prev_hash, hash FROM chain WHERE seq >= $1 ORDER BY seq",
            &[&from],
        )
        .await
        .map_err(damaged)?;
    let mut seen: HashSet<(Kind, i64)> = HashSet::new();
    let mut expected = from;
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(damaged)?;
        let kind_text: String = row.try_get(1).map_err(damaged)?;
        let record: i64 = row.try_get(2).map_err(damaged)?;
        let prev_hash: Vec<u8> = row.try_get(3).map_err(damaged)?;
        let hash: Vec<u8> = row.try_get(4).map_err(damaged)?;
        if seq != expected {
            return Err(at(
                expected,
                format!("is missing (the next entry is {seq}): entries were deleted"),
            ));
        }
        let kind = Kind::parse(&kind_text)
            .filter(|k| KINDS.contains(k))
            .ok_or_else(|| at(seq, format!("has an unknown kind {kind_text:?}")))?;
        if prev_hash != prev {
            return Err(at(
                seq,
                format!(
                    "does not follow entry {}: the chain was cut, reordered or rewritten",
                    seq - 1
                ),
            ));
        }
        let Some((action_id, encoded)) =
            read_record(client, kind, record).await.map_err(damaged)?
        else {
            return Err(at(
                seq,
                format!(
                    "its {} record ({record}) is missing: it was deleted",
                    kind.as_str()
                ),
            ));
        };
        let computed = entry_hash(seq, &prev, kind, record, &encoded);
        if hash != computed {
            return Err(at(
                seq,
                format!(
                    "its {} record for action {action_id} does not match its hash: the record was edited or moved",
                    kind.as_str()
                ),
            ));
        }
        if !seen.insert((kind, record)) {
            return Err(at(
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
        return Err(at(expected, "is missing: entries were deleted"));
    }
    let records: i64 = client
        .query_one(
            "SELECT ((SELECT count(*) FROM actions) + (SELECT count(*) FROM scores)
                   + (SELECT count(*) FROM decisions) + (SELECT count(*) FROM labels)
                   + (SELECT count(*) FROM outcomes) + (SELECT count(*) FROM users)
                   + (SELECT count(*) FROM approvals) + (SELECT count(*) FROM policy_versions)
                   + (SELECT count(*) FROM action_policy) + (SELECT count(*) FROM grants)
                   + (SELECT count(*) FROM grant_revocations) + (SELECT count(*) FROM edits)
                   + (SELECT count(*) FROM action_confinement))::BIGINT",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(damaged)?;
    if records != last {
        return Err(VerifyFailure {
            chain_seq: None,
            detail: format!(
                "the ledger holds {records} records but its chain has {last} entries: a record was inserted behind the ledger's back"
            ),
        });
    }
    Ok(VerifyReport {
        entries: last.max(0) as u64,
        checked: (last - from + 1).max(0) as u64,
        head: ChainHead {
            seq: last,
            hash: prev,
        },
        checkpoints: 0,
    })
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(err: tokio_postgres::Error) -> LedgerError {
        LedgerError::Postgres(super::describe(&err))
    }
}
