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
//!
//! *Tamper evidence*: every record is hash-chained (`chain.rs`) and the chain head is signed
//! periodically (`signing.rs`). A ledger that fails verification when opened is **untrusted**:
//! it still reads, but refuses every append until an operator looks at it (deny-all).

pub mod action_hash;
mod backend;
mod browse;
mod chain;
mod checkpoint;
mod confinement;
mod edits;
mod export;
mod grants;
#[cfg(feature = "postgres")]
pub mod postgres;
mod read;
mod recorded;
mod review;
mod schema;
mod signing;
mod team;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gatehouse_protocol::{
    ActionView, DecidedBy, LabelRecord, ObservedEffect, OutcomeRecord, ReviewLabel, Tier2Status,
    Verdict,
};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

pub use action_hash::ActionIdentity;
pub use backend::{Ledger, LedgerEvent, LoginKind, SharedLogin};
pub use browse::{BrowseQuery, MAX_BROWSE_LIMIT, MAX_BUCKETS, OverviewQuery, SCAN_ROWS};
pub use chain::{ChainHead, VerifyFailure, VerifyOptions, VerifyReport};
pub use edits::EditFact;
pub use export::{
    EXPORT_FORMAT, ExportFilter, ExportFormat, ExportSummary, ExportVerified, export_file,
    verify_export,
};
pub use grants::{Approved, GrantCounts, NewGrant, Revoked};
pub use recorded::{RecordedAction, RecordedEffect};
pub use review::{ReviewFilter, ReviewPage, ReviewQuery};
pub use schema::SCHEMA_VERSION;
pub use signing::{Checkpoint, public_key};
pub use team::{
    NewPolicyVersion, NewUser, PersonDecision, PersonOutcome, PolicyVersion, UserChange, UserRecord,
};

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
    /// The Ed25519 key that signs checkpoints of the chain head (created, mode 0600, if
    /// missing). `None`: no signed checkpoints.
    pub signing_key: Option<PathBuf>,
    /// How often the chain head is signed (when it moved); it is also signed on close.
    pub sign_interval: Duration,
    /// Verify the last this-many chain entries, the latest checkpoint, and SQLite's
    /// `quick_check` when opening; a failure makes the ledger untrusted (deny-all). `None`
    /// skips verification.
    pub verify_tail: Option<u64>,
    /// `PRAGMA max_page_count` on the write connection: a cap on the file's size (to test a
    /// full disk). `None` leaves SQLite's default.
    pub max_page_count: Option<u64>,
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
            signing_key: None,
            sign_interval: Duration::from_secs(60),
            verify_tail: None,
            max_page_count: None,
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
    #[error("the ledger's signing key: {0}")]
    Key(String),
    /// The ledger failed verification when it was opened: it refuses every append.
    #[error("the ledger is untrusted and refuses to record anything: {0}")]
    Untrusted(String),
    /// The PostgreSQL backend failed (connection, statement or transaction).
    #[error("ledger database error (PostgreSQL): {0}")]
    Postgres(String),
    /// This backend does not offer the operation.
    #[error("this ledger backend does not support {0}")]
    Unsupported(&'static str),
}

/// Whether the ledger can be trusted to record (what `/healthz` reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerHealth {
    Ok,
    /// Appends fail (the reason says why): the ledger is untrusted, or the last commit failed
    /// (disk full, locked file). A later successful commit ends the second kind.
    Degraded(String),
}

/// Health shared by the writer (which records commit failures) and every handle.
#[derive(Debug, Default)]
pub(crate) struct Status {
    untrusted: Mutex<Option<String>>,
    failing: AtomicBool,
    write_error: Mutex<Option<String>>,
}

impl Status {
    pub(crate) fn write_ok(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            *self
                .write_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            tracing::info!("the ledger commits again");
        }
    }

    pub(crate) fn write_failed(&self, reason: String) {
        *self
            .write_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.failing.store(true, Ordering::Release);
    }

    fn untrusted(&self) -> Option<String> {
        self.untrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn distrust(&self, reason: String) {
        *self
            .untrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    fn health(&self) -> LedgerHealth {
        if let Some(reason) = self.untrusted() {
            return LedgerHealth::Degraded(format!("ledger untrusted: {reason}"));
        }
        if self.failing.load(Ordering::Acquire)
            && let Some(reason) = self
                .write_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        {
            return LedgerHealth::Degraded(format!("ledger cannot commit: {reason}"));
        }
        LedgerHealth::Ok
    }
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
    /// The peer credentials of the Unix-socket connection the check arrived on; `None` over TCP.
    pub peer_uid: Option<u32>,
    pub peer_pid: Option<i32>,
    /// Observe mode: the verdict is `Allow`, and this is what the rules would have decided.
    pub observed_effect: Option<ObservedEffect>,
}

impl NewAction {
    /// The fields its action hash covers (the ledger stores the hash with the row).
    pub fn identity(&self) -> ActionIdentity<'_> {
        ActionIdentity {
            tool: &self.tool,
            input: &self.input,
            cwd: self.cwd.as_deref(),
            session_id: self.session_id.as_deref(),
            tool_use_id: self.tool_use_id.as_deref(),
        }
    }
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
    /// The action hash the person saw. When set, the decision lands only if it is the
    /// action's hash (compare-and-set, in the transaction that appends the decision), and it
    /// is recorded with the decision. `None` for timeouts and errors.
    pub action_hash: Option<[u8; 32]>,
}

/// What landing a decision did.
#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    /// This decision is the action's one decision; here is the decided action.
    Decided(Box<ActionView>),
    /// The action already had its decision (or was never paused): nothing was appended.
    AlreadyDecided(Box<ActionView>),
    /// The decision named another action hash (another action, or an edited one): nothing was
    /// appended; the action, still undecided, is here.
    ActionMismatch(Box<ActionView>),
    NotFound,
}

/// A reviewer's label to append to an action.
#[derive(Debug, Clone)]
pub struct NewLabel {
    pub action_id: String,
    pub label: ReviewLabel,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    pub recorded_at_ms: i64,
}

/// What happened to a tool call after its host ran it, to append (`record_outcome`).
#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub session_id: Option<String>,
    pub tool_use_id: Option<String>,
    pub tool: String,
    pub agent: Option<String>,
    pub cwd: Option<String>,
    pub ran: bool,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    /// The sandbox's denial lines (never the rest of the output).
    pub findings: Vec<String>,
    pub recorded_at_ms: i64,
}

/// A labelled action for the review queue and retraining: what was asked, its latest label,
/// the rules' verdict, the human decision if any, and its latest tier-2 score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelledExample {
    pub action_id: String,
    pub created_at_ms: i64,
    pub tool: String,
    pub input: Value,
    pub context: Option<Value>,
    pub cwd: Option<String>,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    /// The rules' verdict when the action was recorded (`pending` for a paused action).
    pub rules_verdict: Verdict,
    /// The latest label.
    pub label: LabelRecord,
    /// A person's decision (`allow`/`reject`), if a person decided it.
    pub human_decision: Option<Verdict>,
    /// The latest successful tier-2 score, if any.
    pub score: Option<f64>,
}

/// What retraining learns from about one action: its latest label, if a reviewer gave one, and
/// a person's decision, if a person decided it (never a deadline's).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewedAction {
    pub action_id: String,
    pub tool: String,
    pub input: Value,
    pub context: Option<Value>,
    pub label: Option<ReviewLabel>,
    /// `allow` (approved) or `reject` (denied).
    pub human_decision: Option<Verdict>,
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
    /// `recorded`, `scored`, `decided`, `labelled`.
    pub kind: &'static str,
    pub detail: Value,
}

/// The embedded SQLite ledger (the default backend; `Ledger` is the interface over both);
/// cheap to clone. The writer stops when the last handle is dropped.
#[derive(Clone)]
pub struct SqliteLedger {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<writer::Command>,
    connection: writer::SharedConnection,
    status: Arc<Status>,
    signer: Option<Signer>,
    /// Commit on the caller's thread when the writer is idle (crash-safe only: a power-safe
    /// commit waits for fsync, which must stay on the writer thread).
    commit_inline: bool,
    busy_timeout: Duration,
    reads: read::ReadPool,
    _checkpointer: checkpoint::Checkpointer,
    path: PathBuf,
    durability: Durability,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

impl SqliteLedger {
    /// Opens (creating if needed) the ledger, migrates it, and starts its writer and
    /// checkpointer threads. Refuses a ledger written by a newer schema.
    ///
    /// With `verify_tail`, the tail of the chain, the latest checkpoint and SQLite's
    /// `quick_check` are verified first; a failure does not stop the open but leaves the
    /// ledger untrusted (see `health`): it reads, and refuses every append. So does a missing
    /// ledger file beside an existing signing key: a new empty ledger never silently replaces
    /// one that was there.
    pub fn open(config: LedgerConfig) -> Result<SqliteLedger, LedgerError> {
        let existed = config.path.exists();
        let key_existed = config.signing_key.as_ref().is_some_and(|key| key.exists());
        let write_conn = schema::open_write_connection(&config)?;
        if let Some(pages) = config.max_page_count {
            set_max_page_count(&write_conn, pages)?;
        }
        let key = config
            .signing_key
            .as_deref()
            .map(signing::load_or_create_key)
            .transpose()?;
        let status = Arc::new(Status::default());
        if !existed && key_existed {
            status.distrust(format!(
                "the ledger file {} is missing but its signing key exists: the ledger was deleted or moved; \
                 restore it, or move the key away to start a new ledger",
                config.path.display()
            ));
        }
        if let Some(tail) = config.verify_tail {
            let options = VerifyOptions {
                tail: Some(tail),
                public_key: key.as_ref().map(|k| k.verifying_key().to_bytes()),
                ..VerifyOptions::default()
            };
            match chain::verify(&write_conn, &options) {
                Ok(report) => tracing::info!(
                    entries = report.entries,
                    checked = report.checked,
                    checkpoints = report.checkpoints,
                    "ledger verified"
                ),
                Err(failure) => status.distrust(failure.to_string()),
            }
        }
        if let Some(reason) = status.untrusted() {
            tracing::error!(
                path = %config.path.display(),
                %reason,
                "THE LEDGER FAILED VERIFICATION: refusing to record or allow any action until it is repaired"
            );
        }
        let head = chain::load_head(&write_conn).ok();
        let reads = read::ReadPool::open(&config.path, 4)?;
        let checkpointer = checkpoint::Checkpointer::start(&config)?;
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let connection = Arc::new(Mutex::new(writer::Writer {
            conn: write_conn,
            head,
            status: status.clone(),
        }));
        writer::spawn(connection.clone(), rx, config.max_batch.max(1))?;
        let signer = match key {
            Some(key) => Some(Signer::start(
                connection.clone(),
                status.clone(),
                key,
                config.sign_interval,
            )?),
            None => None,
        };
        Ok(SqliteLedger {
            inner: Arc::new(Inner {
                commands: tx,
                connection,
                status,
                signer,
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

    /// One daemon owns an SQLite ledger: nothing to hear from other replicas.
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<LedgerEvent>> {
        None
    }

    pub fn replica_id(&self) -> &str {
        "local"
    }

    /// `Ok`, or `Degraded` with the reason appends fail.
    pub fn health(&self) -> LedgerHealth {
        self.inner.status.health()
    }

    /// Checks the file, the chain (all of it, or the tail) and the checkpoints against this
    /// ledger's signing key. Read-only; runs beside the writer.
    pub async fn verify(&self, mut options: VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
        if options.public_key.is_none() {
            options.public_key = self.inner.signer.as_ref().map(|s| s.public_key());
        }
        self.inner
            .reads
            .run(move |conn| Ok(chain::verify(conn, &options)))
            .await
            .unwrap_or_else(|err| {
                Err(VerifyFailure {
                    chain_seq: None,
                    detail: err.to_string(),
                })
            })
    }

    /// Signs the current chain head now (unless the latest checkpoint already covers it) and
    /// returns the latest checkpoint. Refused while the ledger is untrusted: signing a broken
    /// chain would vouch for it.
    pub async fn sign_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        let Some(signer) = &self.inner.signer else {
            return Ok(None);
        };
        let job = signer.job();
        tokio::task::spawn_blocking(move || job.sign())
            .await
            .map_err(|err| LedgerError::CommitFailed(format!("signing task failed: {err}")))?
    }

    /// The most recent signed checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        self.inner
            .reads
            .run(|conn| Ok(signing::latest(conn)?))
            .await
    }

    /// Changes the cap on the file's size (`PRAGMA max_page_count`); `None` lifts it.
    pub fn set_max_page_count(&self, pages: Option<u64>) -> Result<(), LedgerError> {
        let writer = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        set_max_page_count(&writer.conn, pages.unwrap_or(UNLIMITED_PAGES))
    }

    fn refuse_if_untrusted(&self) -> Result<(), LedgerError> {
        match self.inner.status.untrusted() {
            Some(reason) => Err(LedgerError::Untrusted(reason)),
            None => Ok(()),
        }
    }

    /// Appends an action; answers once it is committed.
    pub async fn record_action(&self, action: NewAction) -> Result<Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Action(Box::new(action), reply))
            .await
    }

    /// Appends a tier-2 outcome. Returns `false` (and appends nothing) if the action does not
    /// exist: a back-filled score is best-effort, so the caller logs and drops it.
    pub async fn record_score(&self, fact: ScoreFact) -> Result<bool, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Score(Box::new(fact), reply))
            .await
    }

    /// Lands a decision on a paused action, unless it already has one.
    pub async fn record_decision(
        &self,
        fact: DecisionFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Decision(Box::new(fact), reply))
            .await
    }

    /// Lands an approval of an edited input (edit then approve) with its edit, both or neither.
    pub async fn record_edited_decision(
        &self,
        fact: DecisionFact,
        edit: EditFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::EditedDecision(Box::new((fact, edit)), reply))
            .await
    }

    /// Appends a reviewer's label (chained like every record). Returns `false` (and appends
    /// nothing) if the action does not exist.
    pub async fn append_label(&self, label: NewLabel) -> Result<bool, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Label(Box::new(label), reply))
            .await
    }

    /// Appends an outcome (chained like every record), linked to the action with the same
    /// `session_id` + `tool_use_id` and flagged when there is none or it was not allowed.
    pub async fn record_outcome(&self, outcome: NewOutcome) -> Result<OutcomeRecord, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| writer::Command::Outcome(Box::new(outcome), reply))
            .await
    }

    /// Recent outcomes, newest first (only the flagged ones with `flagged_only`).
    pub async fn outcomes(
        &self,
        limit: u32,
        flagged_only: bool,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        self.inner
            .reads
            .run(move |conn| read::outcomes(conn, limit, flagged_only))
            .await
    }

    /// Every label recorded on one action, oldest first.
    pub async fn labels_for(&self, action_id: &str) -> Result<Vec<LabelRecord>, LedgerError> {
        let id = action_id.to_owned();
        self.inner
            .reads
            .run(move |conn| read::labels_for(conn, &id))
            .await
    }

    /// Every labelled action with its latest label, oldest action first.
    pub async fn labelled_examples(&self) -> Result<Vec<LabelledExample>, LedgerError> {
        self.inner.reads.run(read::labelled_examples).await
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

/// SQLite's largest page count: no cap.
const UNLIMITED_PAGES: u64 = 0xffff_fffe;

fn set_max_page_count(conn: &rusqlite::Connection, pages: u64) -> Result<(), LedgerError> {
    let _: i64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
        row.get(0)
    })?;
    Ok(())
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: sign the head one last time so a clean shutdown leaves a
        // checkpoint that covers every record.
        if let Some(signer) = self.signer.take() {
            let job = signer.job();
            signer.stop();
            if let Err(err) = job.sign() {
                tracing::warn!(%err, "could not sign the ledger's final checkpoint");
            }
        }
    }
}

/// A thread that signs the chain head every `interval` when it has moved.
struct Signer {
    job: SignJob,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What signing needs: the writer (for the head and to store the checkpoint) and the key.
#[derive(Clone)]
struct SignJob {
    connection: writer::SharedConnection,
    status: Arc<Status>,
    key: Arc<ed25519_dalek::SigningKey>,
}

impl SignJob {
    fn sign(&self) -> Result<Option<Checkpoint>, LedgerError> {
        if let Some(reason) = self.status.untrusted() {
            return Err(LedgerError::Untrusted(reason));
        }
        let mut writer = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let head = match writer.head {
            Some(head) => head,
            None => {
                let head = chain::load_head(&writer.conn)?;
                writer.head = Some(head);
                head
            }
        };
        let latest = signing::latest(&writer.conn)?;
        if latest.as_ref().is_some_and(|c| c.chain_seq == head.seq) || head.seq == 0 {
            return Ok(latest);
        }
        let checkpoint = Checkpoint::sign(&self.key, head, now_ms());
        signing::insert(&writer.conn, &checkpoint)?;
        tracing::debug!(chain_seq = head.seq, "ledger checkpoint signed");
        Ok(Some(checkpoint))
    }
}

impl Signer {
    fn start(
        connection: writer::SharedConnection,
        status: Arc<Status>,
        key: ed25519_dalek::SigningKey,
        interval: Duration,
    ) -> Result<Signer, LedgerError> {
        let job = SignJob {
            connection,
            status,
            key: Arc::new(key),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("gatehouse-ledger-signer".into())
            .spawn({
                let job = job.clone();
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(interval);
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Err(err) = job.sign() {
                            tracing::warn!(%err, "could not sign a ledger checkpoint");
                        }
                    }
                }
            })?;
        Ok(Signer {
            job,
            stop,
            thread: Some(thread),
        })
    }

    fn job(&self) -> SignJob {
        self.job.clone()
    }

    fn public_key(&self) -> [u8; 32] {
        self.job.key.verifying_key().to_bytes()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Verifies a ledger file without opening it for writing (`gatehouse ledger verify`).
pub fn verify_file(path: &Path, options: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
    let conn = open_read_only(path).map_err(|err| VerifyFailure {
        chain_seq: None,
        detail: err.to_string(),
    })?;
    chain::verify(&conn, options)
}

/// The most recent signed checkpoint in a ledger file (`gatehouse ledger checkpoint --export`).
pub fn latest_checkpoint_in_file(path: &Path) -> Result<Option<Checkpoint>, LedgerError> {
    let conn = open_read_only(path)?;
    Ok(signing::latest(&conn)?)
}

/// Every action a reviewer labelled or a person decided, oldest first, read from a ledger file
/// without opening it for writing (safe while the daemon runs): what `gatehouse classifier
/// retrain --from-ledger` learns from.
pub fn reviewed_actions_in_file(path: &Path) -> Result<Vec<ReviewedAction>, LedgerError> {
    let conn = open_read_only(path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 3 {
        return Err(LedgerError::CommitFailed(format!(
            "the ledger at {} has schema version {version}, from before labels; start the daemon once to migrate it",
            path.display()
        )));
    }
    read::reviewed_actions(&conn)
}

/// Every action recorded at or after `since_ms`, oldest first, with what the rules decided at
/// the time, streamed from a ledger file without opening it for writing (safe while the daemon
/// runs): what `gatehouse policy replay` evaluates a candidate policy against. `each` returns
/// `false` to stop early; the result is how many actions it was given.
pub fn for_each_recorded_action_in_file(
    path: &Path,
    since_ms: i64,
    each: impl FnMut(RecordedAction) -> bool,
) -> Result<u64, LedgerError> {
    let conn = open_read_only(path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 3 {
        return Err(LedgerError::CommitFailed(format!(
            "the ledger at {} has schema version {version}, from before observe mode; start the daemon once to migrate it",
            path.display()
        )));
    }
    recorded::for_each(&conn, since_ms, each)
}

fn open_read_only(path: &Path) -> Result<rusqlite::Connection, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no ledger at {}", path.display()),
        )));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 2 {
        return Err(LedgerError::CommitFailed(format!(
            "the ledger at {} has schema version {version}, from before the hash chain; start the daemon once to migrate it",
            path.display()
        )));
    }
    Ok(conn)
}
