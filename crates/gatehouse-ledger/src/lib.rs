//! The append-only action ledger: every action, verdict, tier-2 score and decision, in SQLite.
//!
//! One writer thread owns the write connection and applies commands in **group commits**:
//! whatever is queued when a transaction starts goes into it, and every caller is answered
//! only after the transaction that holds its fact has committed. Reads use a small pool of
//! read-only connections (WAL lets them run beside the writer), and a checkpointer thread
//! keeps WAL checkpoints off the writer, so a request never waits for one.
//!
//! *Invariant*: facts are appended, never rewritten (triggers in the schema refuse UPDATE and
//! DELETE); an action has at most one decision (the `decisions` primary key), and only a
//! paused action can be decided.

mod checkpoint;
mod read;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_protocol::{ActionView, DecidedBy, Tier2Status, Verdict};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

pub use schema::SCHEMA_VERSION;

/// How hard a commit tries to survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a committed row survives the daemon being killed;
    /// the last commits may be lost if the machine loses power.
    #[default]
    CrashSafe,
    /// `synchronous=FULL`: every commit is on stable storage before the caller is answered.
    PowerSafe,
}

impl Durability {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "crash-safe" => Some(Durability::CrashSafe),
            "power-safe" => Some(Durability::PowerSafe),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::CrashSafe => "crash-safe",
            Durability::PowerSafe => "power-safe",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub path: PathBuf,
    pub durability: Durability,
    /// How long the writer waits for a lock held by another process before the batch fails.
    pub busy_timeout: Duration,
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Commands that may wait for the writer; past it, appends wait for room (backpressure).
    pub queue_depth: usize,
    /// How often the checkpointer moves the WAL into the database file.
    pub checkpoint_interval: Duration,
}

impl LedgerConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LedgerConfig {
            path: path.into(),
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(2),
            max_batch: 512,
            queue_depth: 8192,
            checkpoint_interval: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the ledger at {path} has schema version {found}, newer than this gatehouse supports ({supported}); upgrade gatehouse"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the ledger could not commit: {0}")]
    CommitFailed(String),
    #[error("the ledger writer has stopped")]
    WriterStopped,
    #[error("the ledger holds a malformed {what} for action {action_id}: {detail}")]
    Corrupt {
        action_id: String,
        what: &'static str,
        detail: String,
    },
    #[error("ledger I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A new action with the rules' verdict, to append.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub id: String,
    pub created_at_ms: i64,
    pub tool: String,
    pub input: Map<String, Value>,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    pub tool_use_id: Option<String>,
    pub cwd: Option<String>,
    pub context: Option<Map<String, Value>>,
    /// `Allow`, `Reject` or `Pending` (paused).
    pub verdict: Verdict,
    /// `Rule`, `Default` or `Error`.
    pub decided_by: DecidedBy,
    pub rule_id: Option<String>,
    pub reason: String,
    /// Required for a paused action, absent otherwise.
    pub deadline_ms: Option<i64>,
    /// `Pending` (scoring started), `Dropped` (scoring cap hit) or `Disabled` (no classifier).
    pub tier2_status: Tier2Status,
}

/// What appending an action did.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// The action is committed.
    Inserted,
    /// An action with the same `session_id` and `tool_use_id` was already recorded: nothing was
    /// appended, and this is that action as it stands. `same_action` tells whether it has the
    /// same tool, input and cwd as the one offered (a re-send) or not (a reused id).
    Existing {
        action: Box<ActionView>,
        same_action: bool,
    },
}

/// A tier-2 outcome to append for an action.
#[derive(Debug, Clone)]
pub struct ScoreFact {
    pub action_id: String,
    pub recorded_at_ms: i64,
    pub outcome: ScoreOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScoreOutcome {
    Scored {
        score: f64,
        label: String,
        model: String,
        explanation: Option<String>,
        /// The rules allowed the action and the score reached the disagreement threshold.
        disagreement: bool,
    },
    Error(String),
    Timeout,
    Dropped,
}

/// A decision to land on a paused action.
#[derive(Debug, Clone)]
pub struct DecisionFact {
    pub action_id: String,
    pub decided_at_ms: i64,
    /// `Allow` or `Reject`.
    pub verdict: Verdict,
    /// `Human`, `Timeout` or `Error`.
    pub decided_by: DecidedBy,
    pub note: Option<String>,
}

/// What landing a decision did.
#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    /// This decision is the action's one decision; here is the decided action.
    Decided(Box<ActionView>),
    /// The action already had its decision (or was never paused): nothing was appended.
    AlreadyDecided(Box<ActionView>),
    NotFound,
}

/// Which actions a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Paused and not yet decided.
    Pending,
    /// Paused and decided (by a person, or by timeout).
    Decided,
    /// Final verdict allow (by rule or by decision).
    Allowed,
    /// Final verdict reject (by rule, timeout, denial or error).
    Rejected,
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => StatusFilter::Pending,
            "decided" => StatusFilter::Decided,
            "allow" | "allowed" => StatusFilter::Allowed,
            "reject" | "rejected" => StatusFilter::Rejected,
            _ => return None,
        })
    }
}

/// A page of actions, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<StatusFilter>,
    pub limit: u32,
    /// Only actions recorded before this one.
    pub before: Option<String>,
    /// Only actions the rules allowed that the classifier flagged.
    pub disagreements_only: bool,
}

/// One fact in an action's history, in the order it was recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    pub at_ms: i64,
    /// `recorded`, `scored`, `decided`.
    pub kind: &'static str,
    pub detail: Value,
}

/// Handle to the ledger; cheap to clone. The writer stops when the last handle is dropped.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<writer::Command>,
    connection: writer::SharedConnection,
    /// Commit on the caller's thread when the writer is idle (crash-safe only: a power-safe
    /// commit waits for fsync, which must stay on the writer thread).
    commit_inline: bool,
    busy_timeout: Duration,
    reads: read::ReadPool,
    _checkpointer: checkpoint::Checkpointer,
    path: PathBuf,
    durability: Durability,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the ledger, migrates it, and starts its writer and
    /// checkpointer threads. Refuses a ledger written by a newer schema.
    pub fn open(config: LedgerConfig) -> Result<Ledger, LedgerError> {
        let write_conn = schema::open_write_connection(&config)?;
        let reads = read::ReadPool::open(&config.path, 4)?;
        let checkpointer = checkpoint::Checkpointer::start(&config)?;
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let connection = Arc::new(std::sync::Mutex::new(write_conn));
        writer::spawn(connection.clone(), rx, config.max_batch.max(1))?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                commands: tx,
                connection,
                commit_inline: config.durability == Durability::CrashSafe,
                busy_timeout: config.busy_timeout,
                reads,
                _checkpointer: checkpointer,
                path: config.path,
                durability: config.durability,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Appends an action; answers once it is committed.
    pub async fn record_action(&self, action: NewAction) -> Result<Recorded, LedgerError> {
        self.call(|reply| writer::Command::Action(Box::new(action), reply))
            .await
    }

    /// Appends a tier-2 outcome. Returns `false` (and appends nothing) if the action does not
    /// exist: a back-filled score is best-effort, so the caller logs and drops it.
    pub async fn record_score(&self, fact: ScoreFact) -> Result<bool, LedgerError> {
        self.call(|reply| writer::Command::Score(Box::new(fact), reply))
            .await
    }

    /// Lands a decision on a paused action, unless it already has one.
    pub async fn record_decision(
        &self,
        fact: DecisionFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        self.call(|reply| writer::Command::Decision(Box::new(fact), reply))
            .await
    }

    /// Waits until everything queued before it is committed.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        self.call(writer::Command::Flush).await
    }

    pub async fn action(&self, action_id: &str) -> Result<Option<ActionView>, LedgerError> {
        let id = action_id.to_owned();
        self.inner
            .reads
            .run(move |conn| read::action(conn, &id))
            .await
    }

    pub async fn list(&self, query: ListQuery) -> Result<Vec<ActionView>, LedgerError> {
        self.inner
            .reads
            .run(move |conn| read::list(conn, &query))
            .await
    }

    /// Every paused action still waiting for a decision, oldest first.
    pub async fn pending(&self) -> Result<Vec<ActionView>, LedgerError> {
        self.inner.reads.run(read::pending).await
    }

    /// The facts recorded about one action, in order.
    pub async fn history(&self, action_id: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
        let id = action_id.to_owned();
        self.inner
            .reads
            .run(move |conn| read::history(conn, &id))
            .await
    }

    /// How many actions the ledger holds.
    pub async fn count(&self) -> Result<u64, LedgerError> {
        self.inner.reads.run(read::count).await
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> writer::Command,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let mut command = command(reply);
        if self.inner.commit_inline {
            // An idle writer costs two thread hand-offs per request; committing here instead
            // takes one WAL append (no fsync in crash-safe mode). A busy writer means others
            // are committing: join their next group commit.
            match writer::try_commit_inline(
                &self.inner.connection,
                self.inner.busy_timeout,
                command,
            ) {
                None => return answer.await.map_err(|_| LedgerError::WriterStopped)?,
                Some(busy) => command = busy,
            }
        }
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        answer.await.map_err(|_| LedgerError::WriterStopped)?
    }
}
