//! Dashboard login codes and sessions shared by the replicas (schema 4,
//! `migrations-postgres/0004_dashboard_logins.sql`): a code issued on one replica is spent on
//! any, exactly once (its redemption row's primary key); a session opened on one is announced
//! (`login` NOTIFY) and adopted by the others. Credentials, not ledger records: not chained,
//! written outside the writer's transactions, by the SHA-256 of their secret only.

use tokio_postgres::GenericClient;

use super::CHANNEL;
use crate::{LedgerError, LoginKind, SharedLogin};

/// Records a code or a session; a session is announced to every replica.
pub(crate) async fn share(
    client: &impl GenericClient,
    replica: &str,
    login: &SharedLogin,
    now_ms: i64,
) -> Result<(), LedgerError> {
    let kind = match login.kind {
        LoginKind::Code => "code",
        LoginKind::Session => "session",
    };
    client
        .execute(
            "INSERT INTO dashboard_logins (kind, secret_hash, person, role, csrf, expires_at_ms, recorded_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &kind,
                &&login.secret_hash[..],
                &login.person,
                &login.role,
                &login.csrf,
                &login.expires_at_ms,
                &now_ms,
            ],
        )
        .await?;
    if login.kind == LoginKind::Session {
        let payload = format!("login {replica} session");
        client
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
            .await?;
    }
    Ok(())
}

/// Spends a code: its person and role the first time (if it has not expired), `None` after.
pub(crate) async fn spend_code(
    client: &impl GenericClient,
    secret_hash: &[u8; 32],
    now_ms: i64,
) -> Result<Option<(String, String)>, LedgerError> {
    let row = client
        .query_opt(
            "WITH spent AS (
                 INSERT INTO login_code_redemptions (secret_hash, redeemed_at_ms)
                 SELECT secret_hash, $2 FROM dashboard_logins
                 WHERE secret_hash = $1 AND kind = 'code' AND expires_at_ms > $2
                 ON CONFLICT (secret_hash) DO NOTHING
                 RETURNING secret_hash)
             SELECT l.person, l.role FROM dashboard_logins l JOIN spent s USING (secret_hash)",
            &[&&secret_hash[..], &now_ms],
        )
        .await?;
    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .transpose()
}

/// The sessions that have not expired.
pub(crate) async fn sessions(
    client: &impl GenericClient,
    now_ms: i64,
) -> Result<Vec<SharedLogin>, LedgerError> {
    client
        .query(
            "SELECT secret_hash, person, role, csrf, expires_at_ms FROM dashboard_logins
             WHERE kind = 'session' AND expires_at_ms > $1 ORDER BY seq",
            &[&now_ms],
        )
        .await?
        .iter()
        .map(|row| {
            let hash: Vec<u8> = row.try_get(0)?;
            Ok(SharedLogin {
                kind: LoginKind::Session,
                secret_hash: hash.try_into().unwrap_or([0; 32]),
                person: row.try_get(1)?,
                role: row.try_get(2)?,
                csrf: row.try_get(3)?,
                expires_at_ms: row.try_get(4)?,
            })
        })
        .collect()
}
