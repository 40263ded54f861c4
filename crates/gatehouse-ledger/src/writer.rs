//! The writer thread: owns the write connection and applies commands in group commits.
//!
//! *Invariant*: a caller's reply is sent only after the transaction holding its fact has
//! committed; if the commit fails, every caller in the batch gets an error (fail closed).
//!
//! *Invariant*: every record is chained (`chain.rs`) in the statement sequence that writes it;
//! the chain head lives beside the connection, under the same mutex, and is reloaded from the
//! database whenever a transaction does not commit.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use gatehouse_protocol::{OutcomeFlag, OutcomeRecord, Verdict};

use crate::chain::{self, ChainHead, Kind};
use crate::grants::{GrantCommand, GrantOutcome};
use crate::read;
use crate::team::{self, TeamCommand, TeamOutcome};
use crate::{
    DecisionFact, DecisionOutcome, LedgerError, NewAction, NewLabel, NewOutcome, Recorded,
    ScoreFact, ScoreOutcome, Status,
};

type Reply<T> = oneshot::Sender<Result<T, LedgerError>>;

pub(crate) enum Command {
    Action(Box<NewAction>, Reply<Recorded>),
    Score(Box<ScoreFact>, Reply<bool>),
    Decision(Box<DecisionFact>, Reply<DecisionOutcome>),
    /// An approval of an edited input: the decision and its edit, both or neither.
    EditedDecision(Box<(DecisionFact, crate::EditFact)>, Reply<DecisionOutcome>),
    Label(Box<NewLabel>, Reply<bool>),
    Outcome(Box<NewOutcome>, Reply<OutcomeRecord>),
    Grant(Box<GrantCommand>, Reply<GrantOutcome>),
    Team(Box<TeamCommand>, Reply<TeamOutcome>),
    /// An action and the pushed policy version that decided it, both or neither.
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
    Flush(Reply<()>),
}

/// A command applied inside the open transaction, waiting for the commit to answer.
enum Applied {
    Action(Result<Recorded, LedgerError>, Reply<Recorded>),
    Score(Result<bool, LedgerError>, Reply<bool>),
    Decision(Result<DecisionOutcome, LedgerError>, Reply<DecisionOutcome>),
    Label(Result<bool, LedgerError>, Reply<bool>),
    Outcome(Result<OutcomeRecord, LedgerError>, Reply<OutcomeRecord>),
    Grant(Result<GrantOutcome, LedgerError>, Reply<GrantOutcome>),
    Team(Result<TeamOutcome, LedgerError>, Reply<TeamOutcome>),
    Flush(Reply<()>),
}

impl Applied {
    fn error(&self) -> Option<&LedgerError> {
        match self {
            Applied::Action(Err(err), _)
            | Applied::Score(Err(err), _)
            | Applied::Decision(Err(err), _)
            | Applied::Label(Err(err), _)
            | Applied::Outcome(Err(err), _)
            | Applied::Grant(Err(err), _)
            | Applied::Team(Err(err), _) => Some(err),
            _ => None,
        }
    }

    /// The error of an action that could not be appended, if this is one.
    fn failed_action(&self) -> Option<&LedgerError> {
        match self {
            Applied::Action(Err(err), _) => Some(err),
            _ => None,
        }
    }

    /// Answers the caller: its own outcome if the batch committed, else the commit's error.
    fn answer(self, commit: &Result<(), String>) {
        fn send<T>(outcome: Result<T, LedgerError>, reply: Reply<T>, commit: &Result<(), String>) {
            let outcome = match commit {
                Ok(()) => outcome,
                Err(err) => Err(LedgerError::CommitFailed(err.clone())),
            };
            // The caller may have gone away (its request was cancelled); the fact stands.
            let _ = reply.send(outcome);
        }
        match self {
            Applied::Action(outcome, reply) => send(outcome, reply, commit),
            Applied::Score(outcome, reply) => send(outcome, reply, commit),
            Applied::Decision(outcome, reply) => send(outcome, reply, commit),
            Applied::Label(outcome, reply) => send(outcome, reply, commit),
            Applied::Outcome(outcome, reply) => send(outcome, reply, commit),
            Applied::Grant(outcome, reply) => send(outcome, reply, commit),
            Applied::Team(outcome, reply) => send(outcome, reply, commit),
            Applied::Flush(reply) => send(Ok(()), reply, commit),
        }
    }
}

/// The write connection and the chain head it appends to.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    /// The committed head; `None` when unknown (after a failed transaction), reloaded then.
    pub(crate) head: Option<ChainHead>,
    pub(crate) status: Arc<Status>,
}

/// The writer, shared by the writer thread and (in crash-safe mode) requests that find it idle
/// and commit inline.
pub(crate) type SharedConnection = Arc<Mutex<Writer>>;

pub(crate) fn spawn(
    conn: SharedConnection,
    commands: mpsc::Receiver<Command>,
    max_batch: usize,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gatehouse-ledger-writer".into())
        .spawn(move || run(conn, commands, max_batch))?;
    Ok(())
}

fn run(conn: SharedConnection, mut commands: mpsc::Receiver<Command>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    // Ends when every `Ledger` handle is dropped and the queue is drained.
    while let Some(first) = commands.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        // A panic while holding the lock cannot leave a transaction open (it rolls back on
        // drop), so a poisoned connection is still usable.
        let mut writer = conn.lock().unwrap_or_else(PoisonError::into_inner);
        commit_batch(&mut writer, &mut batch);
    }
    tracing::debug!("ledger writer stopped");
}

/// Commits one command on the caller's thread if the connection is idle; hands it back
/// otherwise (it then goes to the writer thread's next group commit). It never waits: not for
/// the writer, nor for another process's lock on the file (the writer thread does that).
pub(crate) fn try_commit_inline(
    conn: &SharedConnection,
    busy_timeout: Duration,
    command: Command,
) -> Option<Command> {
    let Ok(mut guard) = conn.try_lock() else {
        return Some(command);
    };
    let writer = &mut *guard;
    if writer.conn.busy_timeout(Duration::ZERO).is_err() {
        return Some(command);
    }
    let handed_back = match writer
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(tx) => {
            commit_in(tx, &mut writer.head, &writer.status, &mut vec![command]);
            None
        }
        Err(_) => Some(command),
    };
    if let Err(err) = writer.conn.busy_timeout(busy_timeout) {
        tracing::warn!(%err, "could not restore the ledger's busy timeout");
    }
    handed_back
}

/// Applies every queued command in one transaction, commits once, then answers them all.
fn commit_batch(writer: &mut Writer, batch: &mut Vec<Command>) {
    match writer
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(tx) => commit_in(tx, &mut writer.head, &writer.status, batch),
        Err(err) => {
            tracing::error!(%err, size = batch.len(), "ledger could not begin a transaction");
            writer.status.write_failed(err.to_string());
            let err = Err(err.to_string());
            for command in batch.drain(..) {
                apply_nothing(command).answer(&err);
            }
        }
    }
}

/// The chain head while a transaction is open, and whether the transaction can still commit.
pub(crate) struct Cursor {
    pub(crate) head: ChainHead,
    /// Set when a record was written but its chain entry was not, or SQLite rolled the
    /// transaction back on its own (disk full, I/O error): the whole batch must fail.
    broken: Option<String>,
}

impl Cursor {
    /// Fails the whole batch: something was written that must not commit alone.
    pub(crate) fn break_batch(&mut self, reason: String) {
        self.broken.get_or_insert(reason);
    }
}

fn commit_in(
    tx: Transaction<'_>,
    head: &mut Option<ChainHead>,
    status: &Status,
    batch: &mut Vec<Command>,
) {
    let start = match *head {
        Some(head) => Ok(head),
        None => chain::load_head(&tx).map_err(|err| format!("cannot read the chain head: {err}")),
    };
    let mut cursor = Cursor {
        head: start.clone().unwrap_or(ChainHead::GENESIS),
        broken: start.err(),
    };
    let mut applied = Vec::with_capacity(batch.len());
    for command in batch.drain(..) {
        let outcome = match cursor.broken {
            None => apply(&tx, command, &mut cursor),
            Some(_) => apply_nothing(command),
        };
        // A full disk or an I/O error can make SQLite roll the whole transaction back; what
        // follows would then run outside it, so the batch stops here.
        if cursor.broken.is_none() && tx.is_autocommit() {
            cursor.broken = Some(match outcome.error() {
                Some(err) => err.to_string(),
                None => "SQLite rolled the transaction back".into(),
            });
        }
        applied.push(outcome);
    }
    let commit = match cursor.broken.take() {
        None => tx.commit().map_err(|err| err.to_string()),
        Some(reason) => {
            // Ignore the outcome: SQLite may have rolled back already.
            let _ = tx.rollback();
            Err(reason)
        }
    };
    match &commit {
        Ok(()) => {
            *head = Some(cursor.head);
            // A batch can commit while one action in it failed alone (a constraint broken by
            // another writer, a malformed row): that check is answered with an error, so the
            // ledger is not recording, and health must say so until an action commits again.
            match applied.iter().find_map(Applied::failed_action) {
                Some(err) => {
                    tracing::error!(%err, "ledger could not record an action");
                    status.write_failed(format!("an action could not be recorded: {err}"));
                }
                None => status.write_ok(),
            }
        }
        Err(err) => {
            tracing::error!(%err, size = applied.len(), "ledger commit failed");
            *head = None;
            status.write_failed(err.clone());
        }
    }
    for outcome in applied {
        outcome.answer(&commit);
    }
}

/// Chains a record just written. If the entry cannot be appended the record must not commit
/// alone: the batch is marked broken and rolled back.
pub(crate) fn chain_record(
    tx: &Connection,
    cursor: &mut Cursor,
    kind: Kind,
    record: i64,
) -> Result<(), LedgerError> {
    match chain::append(tx, cursor.head, kind, record) {
        Ok(head) => {
            cursor.head = head;
            Ok(())
        }
        Err(err) => {
            cursor.broken = Some(format!("cannot chain the {} record: {err}", kind.as_str()));
            Err(err.into())
        }
    }
}

fn apply_nothing(command: Command) -> Applied {
    match command {
        Command::Action(_, reply) => Applied::Action(Err(LedgerError::WriterStopped), reply),
        Command::Score(_, reply) => Applied::Score(Err(LedgerError::WriterStopped), reply),
        Command::Decision(_, reply) => Applied::Decision(Err(LedgerError::WriterStopped), reply),
        Command::EditedDecision(_, reply) => {
            Applied::Decision(Err(LedgerError::WriterStopped), reply)
        }
        Command::Label(_, reply) => Applied::Label(Err(LedgerError::WriterStopped), reply),
        Command::Outcome(_, reply) => Applied::Outcome(Err(LedgerError::WriterStopped), reply),
        Command::Grant(_, reply) => Applied::Grant(Err(LedgerError::WriterStopped), reply),
        Command::Team(_, reply) => Applied::Team(Err(LedgerError::WriterStopped), reply),
        Command::VersionedAction(_, reply) | Command::ConfinedAction(_, reply) => {
            Applied::Action(Err(LedgerError::WriterStopped), reply)
        }
        Command::Flush(reply) => Applied::Flush(reply),
    }
}

/// Applies one command. Each writes with a single statement, and SQLite undoes a failed
/// statement alone without aborting the transaction, so one bad command leaves the rest of the
/// batch intact without the cost of a savepoint per command.
fn apply(tx: &Transaction<'_>, command: Command, cursor: &mut Cursor) -> Applied {
    match command {
        Command::Action(action, reply) => {
            Applied::Action(insert_action(tx, &action, cursor), reply)
        }
        Command::Score(fact, reply) => Applied::Score(insert_score(tx, &fact, cursor), reply),
        Command::Decision(fact, reply) => {
            Applied::Decision(insert_decision(tx, &fact, cursor), reply)
        }
        Command::EditedDecision(edited, reply) => {
            let (fact, edit) = &*edited;
            Applied::Decision(
                crate::edits::insert_edited_decision(tx, fact, edit, cursor),
                reply,
            )
        }
        Command::Label(label, reply) => Applied::Label(insert_label(tx, &label, cursor), reply),
        Command::Outcome(outcome, reply) => {
            Applied::Outcome(insert_outcome(tx, &outcome, cursor), reply)
        }
        Command::Grant(command, reply) => {
            Applied::Grant(crate::grants::apply(tx, &command, cursor), reply)
        }
        Command::Team(command, reply) => Applied::Team(team::apply(tx, *command, cursor), reply),
        Command::VersionedAction(versioned, reply) => {
            let (action, version) = &*versioned;
            Applied::Action(
                team::insert_versioned_action(tx, action, *version, cursor),
                reply,
            )
        }
        Command::ConfinedAction(confined, reply) => {
            let (action, version, confinement) = &*confined;
            Applied::Action(
                crate::confinement::insert_confined_action(
                    tx,
                    action,
                    *version,
                    confinement,
                    cursor,
                ),
                reply,
            )
        }
        Command::Flush(reply) => Applied::Flush(reply),
    }
}

pub(crate) fn insert_action(
    conn: &Connection,
    action: &NewAction,
    cursor: &mut Cursor,
) -> Result<Recorded, LedgerError> {
    let input =
        serde_json::to_string(&action.input).map_err(|err| corrupt(&action.id, "input", err))?;
    if let (Some(session), Some(tool_use)) = (&action.session_id, &action.tool_use_id) {
        let existing: Option<(String, bool)> = conn
            .prepare_cached(
                "SELECT id, tool = ?3 AND input = ?4 AND cwd IS ?5 FROM actions
                 WHERE session_id = ?1 AND tool_use_id = ?2",
            )?
            .query_row(
                params![session, tool_use, action.tool, input, action.cwd],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((id, same_action)) = existing {
            let view = read::action(conn, &id)?.ok_or_else(|| LedgerError::Corrupt {
                action_id: id.clone(),
                what: "action",
                detail: "indexed but not readable".into(),
            })?;
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
    conn.prepare_cached(
        "INSERT INTO actions (id, created_at_ms, tool, input, session_id, agent, tool_use_id, cwd,
                              context, verdict, decided_by, rule_id, reason, deadline_ms, tier2_status,
                              action_hash, peer_uid, peer_pid, observed_effect)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        action.id,
        action.created_at_ms,
        action.tool,
        input,
        action.session_id,
        action.agent,
        action.tool_use_id,
        action.cwd,
        context,
        action.verdict.as_str(),
        action.decided_by.as_str(),
        action.rule_id,
        action.reason,
        action.deadline_ms,
        action.tier2_status.as_str(),
        &action_hash[..],
        action.peer_uid,
        action.peer_pid,
        action.observed_effect.map(|effect| effect.as_str()),
    ])?;
    chain_record(conn, cursor, Kind::Action, conn.last_insert_rowid())?;
    Ok(Recorded::Inserted)
}

fn insert_score(
    conn: &Connection,
    fact: &ScoreFact,
    cursor: &mut Cursor,
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
    let inserted = conn
        .prepare_cached(
            "INSERT INTO scores (action_id, recorded_at_ms, status, score, label, model, explanation, error, disagreement)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM actions WHERE id = ?1)",
        )?
        .execute(params![
            fact.action_id,
            fact.recorded_at_ms,
            status,
            score,
            label,
            model,
            explanation,
            error,
            disagreement,
        ])?;
    if inserted == 1 {
        chain_record(conn, cursor, Kind::Score, conn.last_insert_rowid())?;
    }
    Ok(inserted == 1)
}

pub(crate) fn insert_decision(
    conn: &Connection,
    fact: &DecisionFact,
    cursor: &mut Cursor,
) -> Result<DecisionOutcome, LedgerError> {
    let Some(current) = read::action(conn, &fact.action_id)? else {
        return Ok(DecisionOutcome::NotFound);
    };
    if current.verdict != Verdict::Pending {
        return Ok(DecisionOutcome::AlreadyDecided(Box::new(current)));
    }
    // Compare-and-set: the decision names the action it decides by its hash. The view's hash
    // is the stored one (or, for an action from before schema 3, computed from its row).
    if let Some(named) = &fact.action_hash
        && crate::action_hash::from_hex(&current.action_hash).as_ref() != Some(named)
    {
        return Ok(DecisionOutcome::ActionMismatch(Box::new(current)));
    }
    let action_seq: i64 = conn
        .prepare_cached("SELECT seq FROM actions WHERE id = ?1")?
        .query_row([&fact.action_id], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO decisions (action_id, decided_at_ms, verdict, decided_by, note, action_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        fact.action_id,
        fact.decided_at_ms,
        fact.verdict.as_str(),
        fact.decided_by.as_str(),
        fact.note,
        fact.action_hash.as_ref().map(|hash| &hash[..]),
    ])?;
    chain_record(conn, cursor, Kind::Decision, action_seq)?;
    let decided = read::action(conn, &fact.action_id)?.ok_or_else(|| LedgerError::Corrupt {
        action_id: fact.action_id.clone(),
        what: "action",
        detail: "vanished while being decided".into(),
    })?;
    Ok(DecisionOutcome::Decided(Box::new(decided)))
}

fn insert_label(
    conn: &Connection,
    label: &NewLabel,
    cursor: &mut Cursor,
) -> Result<bool, LedgerError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO labels (action_id, label, reviewer, note, recorded_at_ms)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM actions WHERE id = ?1)",
        )?
        .execute(params![
            label.action_id,
            label.label.as_str(),
            label.reviewer,
            label.note,
            label.recorded_at_ms,
        ])?;
    if inserted == 1 {
        chain_record(conn, cursor, Kind::Label, conn.last_insert_rowid())?;
    }
    Ok(inserted == 1)
}

/// Appends an outcome, linked to the action with the same `session_id` + `tool_use_id` (looked
/// up in the same transaction), and flagged when no such action exists or its verdict is not
/// allow: evidence that something ran around the firewall.
fn insert_outcome(
    conn: &Connection,
    outcome: &NewOutcome,
    cursor: &mut Cursor,
) -> Result<OutcomeRecord, LedgerError> {
    let action: Option<(String, String, Option<String>)> =
        match (&outcome.session_id, &outcome.tool_use_id) {
            (Some(session), Some(tool_use)) => conn
                .prepare_cached(
                    "SELECT a.id, a.verdict, d.verdict FROM actions a
                     LEFT JOIN decisions d ON d.action_id = a.id
                     WHERE a.session_id = ?1 AND a.tool_use_id = ?2",
                )?
                .query_row(params![session, tool_use], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?,
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
    conn.prepare_cached(
        "INSERT INTO outcomes (action_id, session_id, tool_use_id, tool, agent, cwd, ran,
                               exit_code, error, duration_ms, findings, flag, recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        action_id,
        outcome.session_id,
        outcome.tool_use_id,
        outcome.tool,
        outcome.agent,
        outcome.cwd,
        outcome.ran,
        outcome.exit_code,
        outcome.error,
        outcome.duration_ms.map(|d| d.min(i64::MAX as u64) as i64),
        findings,
        flag.map(OutcomeFlag::as_str),
        outcome.recorded_at_ms,
    ])?;
    let seq = conn.last_insert_rowid();
    chain_record(conn, cursor, Kind::Outcome, seq)?;
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

fn corrupt(action_id: &str, what: &'static str, err: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt {
        action_id: action_id.to_owned(),
        what,
        detail: err.to_string(),
    }
}
