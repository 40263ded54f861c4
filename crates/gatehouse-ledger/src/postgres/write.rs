//! The replica's writer task: owns one connection and applies queued commands in group
//! commits, each transaction under the chain's advisory lock (the serialisation point across
//! replicas).
//!
//! *Invariant*: a caller is answered only after the transaction holding its fact committed
//! (`synchronous_commit = on`). PostgreSQL aborts a whole transaction on a failing statement,
//! so when a batch fails each of its commands is retried alone: one bad command fails alone.

use std::sync::Arc;

use gatehouse_protocol::{OutcomeFlag, OutcomeRecord, Verdict};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, GenericClient};

use super::chain::{self, CHAIN_LOCK};
use super::{CHANNEL, connect, read, team};
use crate::chain::{ChainHead, Kind};
use crate::grants::{GrantCommand, GrantOutcome};
use crate::team::{TeamCommand, TeamOutcome};
use crate::{
    DecisionFact, DecisionOutcome, EditFact, LedgerError, NewAction, NewLabel, NewOutcome,
    Recorded, ScoreFact, ScoreOutcome, Status,
};

type Reply<T> = oneshot::Sender<Result<T, LedgerError>>;

pub(crate) enum Command {
    Action(Box<NewAction>, Reply<Recorded>),
    Score(Box<ScoreFact>, Reply<bool>),
    Decision(Box<DecisionFact>, Reply<DecisionOutcome>),
    /// Edit then approve: the approval and its edit, in one transaction.
    EditedDecision(Box<(DecisionFact, EditFact)>, Reply<DecisionOutcome>),
    Label(Box<NewLabel>, Reply<bool>),
    Outcome(Box<NewOutcome>, Reply<OutcomeRecord>),
    /// An action with the pushed policy version that decided it.
    VersionedAction(Box<(NewAction, i64)>, Reply<Recorded>),
    /// An action, its policy version if any, and the confinement applied to it, all or none.
    ConfinedAction(
        Box<(
            NewAction,
            Option<i64>,
            gatehouse_protocol::ConfinementRecord,
        )>,
        Reply<Recorded>,
    ),
    Team(Box<TeamCommand>, Reply<TeamOutcome>),
    Grant(Box<GrantCommand>, Reply<GrantOutcome>),
    Flush(Reply<()>),
}

/// What applying one command produced, before the commit decides whether it stands.
enum Done {
    Action(Recorded),
    Score(bool),
    Decision(DecisionOutcome),
    Label(bool),
    Outcome(Box<OutcomeRecord>),
    Team(Box<TeamOutcome>),
    Grant(GrantOutcome),
    Flush,
}

impl Command {
    fn is_action(&self) -> bool {
        matches!(
            self,
            Command::Action(..) | Command::VersionedAction(..) | Command::ConfinedAction(..)
        )
    }

    /// Answers the caller with its outcome, or the batch's error.
    fn answer(self, outcome: Result<Done, LedgerError>) {
        fn send<T>(reply: Reply<T>, outcome: Result<T, LedgerError>) {
            // The caller may have gone away (its request was cancelled); the fact stands.
            let _ = reply.send(outcome);
        }
        let mismatch = || LedgerError::Postgres("the writer answered another command".into());
        match self {
            Command::Action(_, reply)
            | Command::VersionedAction(_, reply)
            | Command::ConfinedAction(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Action(r) => Ok(r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Score(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Score(r) => Ok(r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Decision(_, reply) | Command::EditedDecision(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Decision(r) => Ok(r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Label(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Label(r) => Ok(r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Outcome(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Outcome(r) => Ok(*r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Team(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Team(r) => Ok(*r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Grant(_, reply) => send(
                reply,
                outcome.and_then(|d| match d {
                    Done::Grant(r) => Ok(r),
                    _ => Err(mismatch()),
                }),
            ),
            Command::Flush(reply) => send(reply, outcome.map(|_| ())),
        }
    }
}

pub(crate) async fn spawn(
    url: String,
    replica_id: String,
    commands: mpsc::Receiver<Command>,
    max_batch: usize,
    status: Arc<Status>,
) -> Result<(), LedgerError> {
    let client = connect::connect(&url, &replica_id).await?;
    let writer = Writer {
        client: Some(client),
        url,
        replica_id,
        status,
    };
    tokio::spawn(writer.run(commands, max_batch));
    Ok(())
}

struct Writer {
    client: Option<Client>,
    url: String,
    replica_id: String,
    status: Arc<Status>,
}

impl Writer {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        // Ends when every handle is dropped and the queue is drained.
        while let Some(first) = commands.recv().await {
            batch.push(first);
            while batch.len() < max_batch {
                match commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch).await;
        }
        tracing::debug!("ledger (PostgreSQL) writer stopped");
    }

    /// A live connection: the old one, or a new one if the server dropped it.
    async fn client(&mut self) -> Result<&mut Client, LedgerError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.client = Some(connect::connect(&self.url, &self.replica_id).await?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| LedgerError::Postgres("no connection".into()))
    }

    async fn commit_batch(&mut self, batch: &mut Vec<Command>) {
        let outcome = self.apply_all(batch).await;
        match outcome {
            Ok(done) => {
                self.status.write_ok();
                for (command, done) in batch.drain(..).zip(done) {
                    command.answer(Ok(done));
                }
            }
            Err(err) if batch.len() > 1 => {
                tracing::warn!(%err, size = batch.len(), "a ledger batch failed; applying its commands one by one");
                for command in batch.drain(..) {
                    let alone = std::slice::from_ref(&command);
                    match self.apply_all(alone).await {
                        Ok(mut done) => {
                            self.status.write_ok();
                            match done.pop() {
                                Some(done) => command.answer(Ok(done)),
                                None => command.answer(Err(LedgerError::WriterStopped)),
                            }
                        }
                        Err(err) => self.failed(command, err),
                    }
                }
            }
            Err(err) => {
                for command in batch.drain(..) {
                    self.failed(command, LedgerError::Postgres(err.to_string()));
                }
            }
        }
    }

    fn failed(&self, command: Command, err: LedgerError) {
        tracing::error!(%err, "ledger (PostgreSQL) could not commit");
        if command.is_action() || self.client.as_ref().is_none_or(Client::is_closed) {
            self.status.write_failed(err.to_string());
        }
        command.answer(Err(LedgerError::CommitFailed(err.to_string())));
    }

    /// Applies the commands in one transaction and commits it.
    async fn apply_all(&mut self, commands: &[Command]) -> Result<Vec<Done>, LedgerError> {
        let replica = self.replica_id.clone();
        let client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
            .await?;
        let mut head = chain::load_head(&tx).await?;
        let mut done = Vec::with_capacity(commands.len());
        for command in commands {
            done.push(apply(&tx, command, &mut head, &replica).await?);
        }
        tx.commit().await?;
        Ok(done)
    }
}

async fn apply(
    tx: &impl GenericClient,
    command: &Command,
    head: &mut ChainHead,
    replica: &str,
) -> Result<Done, LedgerError> {
    Ok(match command {
        Command::Action(action, _) => Done::Action(insert_action(tx, action, head, replica).await?),
        Command::Score(fact, _) => Done::Score(insert_score(tx, fact, head).await?),
        Command::Decision(fact, _) => {
            Done::Decision(insert_decision(tx, fact, head, replica).await?)
        }
        Command::EditedDecision(pair, _) => {
            let (fact, edit) = pair.as_ref();
            Done::Decision(insert_edited_decision(tx, fact, edit, head, replica).await?)
        }
        Command::Label(label, _) => Done::Label(insert_label(tx, label, head).await?),
        Command::Outcome(outcome, _) => {
            Done::Outcome(Box::new(insert_outcome(tx, outcome, head).await?))
        }
        Command::VersionedAction(pair, _) => {
            let (action, version) = pair.as_ref();
            Done::Action(team::insert_versioned_action(tx, action, *version, head, replica).await?)
        }
        Command::ConfinedAction(confined, _) => {
            let (action, version, confinement) = confined.as_ref();
            Done::Action(
                super::confinement::insert_confined_action(
                    tx,
                    action,
                    *version,
                    confinement,
                    head,
                    replica,
                )
                .await?,
            )
        }
        Command::Team(command, _) => {
            Done::Team(Box::new(team::apply(tx, command, head, replica).await?))
        }
        Command::Grant(command, _) => {
            Done::Grant(super::grants::apply(tx, command, head, replica).await?)
        }
        Command::Flush(_) => Done::Flush,
    })
}

/// Announces a pause, a decision or a policy version to every replica, delivered when the transaction commits.
pub(crate) async fn announce(
    tx: &impl GenericClient,
    what: &str,
    replica: &str,
    action_id: &str,
) -> Result<(), LedgerError> {
    let payload = format!("{what} {replica} {action_id}");
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

fn corrupt(action_id: &str, what: &'static str, err: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt {
        action_id: action_id.to_owned(),
        what,
        detail: err.to_string(),
    }
}

pub(crate) async fn insert_action(
    tx: &impl GenericClient,
    action: &NewAction,
    head: &mut ChainHead,
    replica: &str,
) -> Result<Recorded, LedgerError> {
    let input =
        serde_json::to_string(&action.input).map_err(|err| corrupt(&action.id, "input", err))?;
    if let (Some(session), Some(tool_use)) = (&action.session_id, &action.tool_use_id) {
        let existing = tx
            .query_opt(
                "SELECT id, (tool = $3 AND input = $4 AND cwd IS NOT DISTINCT FROM $5) FROM actions
                 WHERE session_id = $1 AND tool_use_id = $2",
                &[session, tool_use, &action.tool, &input, &action.cwd],
            )
            .await?;
        if let Some(row) = existing {
            let id: String = row.try_get(0)?;
            let same_action: bool = row.try_get(1)?;
            let view = read::action(tx, &id)
                .await?
                .ok_or_else(|| corrupt(&id, "action", "indexed but not readable"))?;
            return Ok(Recorded::Existing {
                action: Box::new(view),
                same_action,
            });
        }
    }
    let context = action
        .context
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| corrupt(&action.id, "context", err))?;
    let action_hash = action.identity().hash();
    let row = tx
        .query_one(
            "INSERT INTO actions (id, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd,
                                  context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status,
                                  action_hash, peer_uid, peer_pid, observed_effect)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
             RETURNING seq",
            &[
                &action.id,
                &action.created_at_ms,
                &action.tool,
                &input,
                &action.session_id,
                &action.agent,
                &action.tool_use_id,
                &action.cwd,
                &context,
                &action.verdict.as_str(),
                &action.decided_by.as_str(),
                &action.rule_id,
                &action.reason,
                &action.deadline_ms,
                &action.tier2_status.as_str(),
                &&action_hash[..],
                &action.peer_uid.map(i64::from),
                &action.peer_pid.map(i64::from),
                &action.observed_effect.map(|effect| effect.as_str()),
            ],
        )
        .await?;
    let seq: i64 = row.try_get(0)?;
    *head = chain::append(tx, *head, Kind::Action, seq).await?;
    if action.verdict == Verdict::Pending {
        announce(tx, "paused", replica, &action.id).await?;
    }
    Ok(Recorded::Inserted)
}

async fn insert_score(
    tx: &impl GenericClient,
    fact: &ScoreFact,
    head: &mut ChainHead,
) -> Result<bool, LedgerError> {
    let (status, score, label, model, explanation, error, disagreement) = match &fact.outcome {
        ScoreOutcome::Scored {
            score,
            label,
            model,
            explanation,
            disagreement,
        } => (
            "scored",
            Some(*score),
            Some(label.as_str()),
            Some(model.as_str()),
            explanation.as_deref(),
            None,
            *disagreement,
        ),
        ScoreOutcome::Error(err) => ("error", None, None, None, None, Some(err.as_str()), false),
        ScoreOutcome::Timeout => ("timeout", None, None, None, None, None, false),
        ScoreOutcome::Dropped => ("dropped", None, None, None, None, None, false),
    };
    let row = tx
        .query_opt(
            "INSERT INTO scores (action_id, recorded_at_ms, status, score, label, model, explanation, error, disagreement)
             SELECT $1::TEXT, $2::BIGINT, $3::TEXT, $4::DOUBLE PRECISION, $5::TEXT, $6::TEXT, $7::TEXT, $8::TEXT, $9::BIGINT
             WHERE EXISTS (SELECT 1 FROM actions WHERE id = $1::TEXT)
             RETURNING seq",
            &[
                &fact.action_id,
                &fact.recorded_at_ms,
                &status,
                &score,
                &label,
                &model,
                &explanation,
                &error,
                &i64::from(disagreement),
            ],
        )
        .await?;
    match row {
        Some(row) => {
            *head = chain::append(tx, *head, Kind::Score, row.try_get(0)?).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(crate) async fn insert_decision(
    tx: &impl GenericClient,
    fact: &DecisionFact,
    head: &mut ChainHead,
    replica: &str,
) -> Result<DecisionOutcome, LedgerError> {
    let Some(current) = read::action(tx, &fact.action_id).await? else {
        return Ok(DecisionOutcome::NotFound);
    };
    if current.verdict != Verdict::Pending {
        return Ok(DecisionOutcome::AlreadyDecided(Box::new(current)));
    }
    if let Some(named) = &fact.action_hash
        && crate::action_hash::from_hex(&current.action_hash).as_ref() != Some(named)
    {
        return Ok(DecisionOutcome::ActionMismatch(Box::new(current)));
    }
    let seq: i64 = tx
        .query_one("SELECT seq FROM actions WHERE id = $1", &[&fact.action_id])
        .await?
        .try_get(0)?;
    tx.execute(
        "INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by, note, action_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &fact.action_id,
            &fact.decided_at_ms,
            &fact.verdict.as_str(),
            &fact.decided_by.as_str(),
            &fact.note,
            &fact.action_hash.as_ref().map(|hash| &hash[..]),
        ],
    )
    .await?;
    *head = chain::append(tx, *head, Kind::Decision, seq).await?;
    announce(tx, "decided", replica, &fact.action_id).await?;
    let decided = read::action(tx, &fact.action_id)
        .await?
        .ok_or_else(|| corrupt(&fact.action_id, "action", "vanished while being decided"))?;
    Ok(DecisionOutcome::Decided(Box::new(decided)))
}

/// Lands `fact` (an approval) with `edit`, both or neither (one transaction: PostgreSQL aborts
/// it whole when a statement fails). A decision that does not land appends no edit.
async fn insert_edited_decision(
    tx: &impl GenericClient,
    fact: &DecisionFact,
    edit: &EditFact,
    head: &mut ChainHead,
    replica: &str,
) -> Result<DecisionOutcome, LedgerError> {
    if edit.edited_by.is_empty() || edit.edited_by.len() > 256 {
        return Err(corrupt(
            &fact.action_id,
            "edited_by",
            "must be 1 to 256 bytes",
        ));
    }
    let edited_input = serde_json::to_string(&edit.edited_input)
        .map_err(|err| corrupt(&fact.action_id, "edited_input", err))?;
    let outcome = insert_decision(tx, fact, head, replica).await?;
    let DecisionOutcome::Decided(view) = &outcome else {
        return Ok(outcome);
    };
    let original =
        serde_json::to_string(&view.input).map_err(|err| corrupt(&fact.action_id, "input", err))?;
    let seq: i64 = tx
        .query_one(
            "INSERT INTO edits (action_id, original_input, edited_input, edited_hash, edited_by,
                                recorded_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            &[
                &fact.action_id,
                &original,
                &edited_input,
                &&edit.edited_hash[..],
                &edit.edited_by,
                &fact.decided_at_ms,
            ],
        )
        .await?
        .try_get(0)?;
    *head = chain::append(tx, *head, Kind::Edit, seq).await?;
    let decided = read::action(tx, &fact.action_id)
        .await?
        .ok_or_else(|| corrupt(&fact.action_id, "action", "vanished while being decided"))?;
    Ok(DecisionOutcome::Decided(Box::new(decided)))
}

async fn insert_label(
    tx: &impl GenericClient,
    label: &NewLabel,
    head: &mut ChainHead,
) -> Result<bool, LedgerError> {
    let row = tx
        .query_opt(
            "INSERT INTO labels (action_id, label, reviewer, note, recorded_at_ms)
             SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::BIGINT
             WHERE EXISTS (SELECT 1 FROM actions WHERE id = $1::TEXT)
             RETURNING seq",
            &[
                &label.action_id,
                &label.label.as_str(),
                &label.reviewer,
                &label.note,
                &label.recorded_at_ms,
            ],
        )
        .await?;
    match row {
        Some(row) => {
            *head = chain::append(tx, *head, Kind::Label, row.try_get(0)?).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

async fn insert_outcome(
    tx: &impl GenericClient,
    outcome: &NewOutcome,
    head: &mut ChainHead,
) -> Result<OutcomeRecord, LedgerError> {
    let action = match (&outcome.session_id, &outcome.tool_use_id) {
        (Some(session), Some(tool_use)) => tx
            .query_opt(
                "SELECT a.id, a.verdict, d.verdict FROM actions a
                 LEFT JOIN decisions d ON d.action_id = a.id
                 WHERE a.session_id = $1 AND a.tool_use_id = $2",
                &[session, tool_use],
            )
            .await?
            .map(
                |row| -> Result<(String, String, Option<String>), LedgerError> {
                    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
                },
            )
            .transpose()?,
        _ => None,
    };
    let flag = match &action {
        None => Some(OutcomeFlag::Unchecked),
        Some((_, verdict, decided)) => {
            let current = decided.as_deref().unwrap_or(verdict);
            (outcome.ran && current != Verdict::Allow.as_str()).then_some(OutcomeFlag::NotAllowed)
        }
    };
    let action_id = action.map(|(id, _, _)| id);
    let findings = (!outcome.findings.is_empty())
        .then(|| serde_json::to_string(&outcome.findings))
        .transpose()
        .map_err(|err| corrupt(action_id.as_deref().unwrap_or(""), "findings", err))?;
    let row = tx
        .query_one(
            "INSERT INTO outcomes (action_id, session_id, tool_use_id, tool, agent, cwd, ran,
                                   exit_code, error, duration_ms, findings, flag, recorded_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING seq",
            &[
                &action_id,
                &outcome.session_id,
                &outcome.tool_use_id,
                &outcome.tool,
                &outcome.agent,
                &outcome.cwd,
                &i64::from(outcome.ran),
                &outcome.exit_code,
                &outcome.error,
                &outcome.duration_ms.map(|d| d.min(i64::MAX as u64) as i64),
                &findings,
                &flag.map(OutcomeFlag::as_str),
                &outcome.recorded_at_ms,
            ],
        )
        .await?;
    let seq: i64 = row.try_get(0)?;
    *head = chain::append(tx, *head, Kind::Outcome, seq).await?;
    Ok(OutcomeRecord {
        outcome_id: seq,
        action_id,
        tool: outcome.tool.clone(),
        session_id: outcome.session_id.clone(),
        tool_use_id: outcome.tool_use_id.clone(),
        agent: outcome.agent.clone(),
        cwd: outcome.cwd.clone(),
        ran: outcome.ran,
        exit_code: outcome.exit_code,
        error: outcome.error.clone(),
        duration_ms: outcome.duration_ms,
        findings: outcome.findings.clone(),
        flag,
        recorded_at_ms: outcome.recorded_at_ms,
    })
}
