//! The confinement applied to an action on PostgreSQL (schema 6), as `crate::confinement` does
//! on SQLite: written in the writer's transaction after the action, chained as
//! `action_confinement` with the same columns, read into the view.

use gatehouse_protocol::{ActionView, ConfinementRecord};
use tokio_postgres::GenericClient;

use super::{PgLedger, team, write};
use crate::chain::{ChainHead, Kind};
use crate::{LedgerError, NewAction, Recorded};

impl PgLedger {
    /// Appends an action and its confinement record (and its policy version, if any).
    pub async fn record_confined_action(
        &self,
        action: NewAction,
        version: Option<i64>,
        confinement: ConfinementRecord,
    ) -> Result<Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| {
            write::Command::ConfinedAction(Box::new((action, version, confinement)), reply)
        })
        .await
    }
}

/// Writes the action (with its policy version) and, if it was inserted, its confinement,
/// chained; a failure fails the transaction, so the action does not commit alone.
pub(crate) async fn insert_confined_action(
    tx: &impl GenericClient,
    action: &NewAction,
    version: Option<i64>,
    confinement: &ConfinementRecord,
    head: &mut ChainHead,
    replica: &str,
) -> Result<Recorded, LedgerError> {
    let digest = crate::confinement::digest_bytes(&action.id, confinement)?;
    let recorded = match version {
        Some(version) => team::insert_versioned_action(tx, action, version, head, replica).await?,
        None => write::insert_action(tx, action, head, replica).await?,
    };
    if matches!(recorded, Recorded::Inserted) {
        let seq: i64 = tx
            .query_one(
                "INSERT INTO action_confinement
                     (action_id, profile, profile_digest, summary, applied, fallback,
                      recorded_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                &[
                    &action.id,
                    &confinement.profile,
                    &digest.as_ref().map(|d| &d[..]),
                    &confinement.summary,
                    &confinement.applied.as_str(),
                    &confinement.fallback,
                    &action.created_at_ms,
                ],
            )
            .await?
            .try_get(0)?;
        *head = super::chain::append(tx, *head, Kind::ActionConfinement, seq).await?;
    }
    Ok(recorded)
}

/// Fills in the view's confinement, if its rule required one.
pub(crate) async fn attach(
    client: &impl GenericClient,
    view: &mut ActionView,
) -> Result<(), LedgerError> {
    let row = client
        .query_opt(
            "SELECT profile, profile_digest, summary, applied, fallback
             FROM action_confinement WHERE action_id = $1",
            &[&view.action_id],
        )
        .await?;
    if let Some(row) = row {
        let columns = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        );
        view.confinement = Some(crate::confinement::from_columns(&view.action_id, columns)?);
    }
    Ok(())
}
