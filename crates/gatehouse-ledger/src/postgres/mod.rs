//! The PostgreSQL ledger backend (team mode): several daemon replicas share one database.
//!
//! The same records, columns and hash chain as the SQLite ledger (`migrations-postgres/`), with
//! the same guarantees, enforced by the database where SQLite enforces them in-process:
//!
//! * **Committed before told**: every write connection runs with `synchronous_commit = on`; a
//!   caller is answered only after `COMMIT` returned.
//! * **One chain, one serialisation point**: every writing transaction first takes the ledger's
//!   advisory transaction lock (`pg_advisory_xact_lock`), then reads the chain head and appends.
//!   Replicas' writes are thus totally ordered and the chain is one line that `verify` walks, as
//!   in SQLite. (Per-replica chains anchored in a root would write in parallel, but the lock is
//!   held only for a batch's few statements and its commit; one chain keeps `verify`, export and
//!   the chain format identical across backends.) Each replica still group-commits: one writer
//!   task per replica applies whatever is queued in one transaction.
//! * **Exactly one decision**: the decision is checked and inserted under that lock, and
//!   `decisions.action_id` is the primary key; the loser is told `AlreadyDecided` (409).
//! * **Append-only**: triggers refuse UPDATE, DELETE and TRUNCATE; the `gatehouse_writer` role
//!   may only SELECT and INSERT.
//! * **Replicas hear each other**: a pause and a decision are announced with `pg_notify` inside
//!   the transaction that records them (delivered at commit, never for a rolled-back one);
//!   `notify.rs` turns them into `LedgerEvent`s.

mod chain;
mod confinement;
mod connect;
mod console;
mod grants;
mod logins;
mod notify;
mod read;
mod schema;
mod team;
mod write;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_protocol::{ActionView, LabelRecord, OutcomeRecord};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::grants::{GrantCommand, GrantOutcome};
use crate::team::{TeamCommand, TeamOutcome};
use crate::{Approved, GrantCounts, NewGrant, RecordedAction, Revoked};
use crate::{
    Checkpoint, DecisionFact, DecisionOutcome, Durability, HistoryEntry, LabelledExample,
    LedgerError, LedgerEvent, LedgerHealth, ListQuery, NewAction, NewLabel, NewOutcome, Recorded,
    ReviewPage, ReviewQuery, ScoreFact, Status, VerifyFailure, VerifyOptions, VerifyReport,
};
use crate::{NewPolicyVersion, NewUser, PersonDecision, PersonOutcome, PolicyVersion};
use crate::{SharedLogin, UserChange, UserRecord};
use gatehouse_protocol::grants::GrantRecord;

pub use schema::PG_SCHEMA_VERSION;

/// The channel replicas announce pauses and decisions on.
pub(crate) const CHANNEL: &str = "gatehouse_ledger";

/// How to reach the database, and how this replica uses it.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database` (libpq URL or key=value form).
    pub url: String,
    /// This replica's name in announcements; default: host name and pid.
    pub replica_id: String,
    /// Connections for reads (each pipelines many concurrent queries).
    pub read_connections: usize,
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Commands that may wait for the writer; past it, appends wait for room.
    pub queue_depth: usize,
    /// Verify the last this-many chain entries when opening; a failure makes the ledger
    /// untrusted (deny-all). `None` skips it.
    pub verify_tail: Option<u64>,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> PgConfig {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "replica".into());
        PgConfig {
            url: url.into(),
            replica_id: format!("{host}-{}", std::process::id()),
            read_connections: 4,
            max_batch: 256,
            queue_depth: 8192,
            verify_tail: None,
        }
    }
}

/// Whether a ledger location names PostgreSQL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The PostgreSQL ledger; cheap to clone. Its writer task stops when the last handle is dropped.
#[derive(Clone)]
pub struct PgLedger {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<write::Command>,
    reads: connect::ReadPool,
    status: Arc<Status>,
    events: broadcast::Sender<LedgerEvent>,
    replica_id: String,
    _listener: notify::Listener,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("replica_id", &self.inner.replica_id)
            .finish()
    }
}

fn unexpected() -> LedgerError {
    LedgerError::Postgres("the ledger writer answered another kind of command".into())
}

fn pg(err: tokio_postgres::Error) -> LedgerError {
    LedgerError::Postgres(describe(&err))
}

/// A PostgreSQL error with the server's message (its `Display` says only "db error").
pub(crate) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => err.to_string(),
    }
}

impl PgLedger {
    /// Connects, migrates (once across replicas starting together: an advisory lock), verifies
    /// the chain's tail if asked, and starts the writer task and the `LISTEN` connection.
    pub async fn open(config: PgConfig) -> Result<PgLedger, LedgerError> {
        let url = config.url.clone();
        {
            let mut admin = connect::connect(&url, &config.replica_id).await?;
            schema::migrate(&mut admin).await?;
        }
        let status = Arc::new(Status::default());
        let reads =
            connect::ReadPool::open(&url, &config.replica_id, config.read_connections).await?;
        if let Some(tail) = config.verify_tail {
            let options = VerifyOptions {
                tail: Some(tail),
                ..VerifyOptions::default()
            };
            let client = reads.get().await?;
            match chain::verify(&client, &options).await {
                Ok(report) => tracing::info!(
                    entries = report.entries,
                    checked = report.checked,
                    "ledger (PostgreSQL) verified"
                ),
                Err(failure) => {
                    tracing::error!(%failure, "THE LEDGER FAILED VERIFICATION: refusing to record or allow any action until it is repaired");
                    status.distrust(failure.to_string());
                }
            }
        }
        let (events, _) = broadcast::channel(1024);
        let listener = notify::Listener::start(&url, &config.replica_id, events.clone()).await?;
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        write::spawn(
            url,
            config.replica_id.clone(),
            rx,
            config.max_batch.max(1),
            status.clone(),
        )
        .await?;
        Ok(PgLedger {
            inner: Arc::new(Inner {
                commands: tx,
                reads,
                status,
                events,
                replica_id: config.replica_id,
                _listener: listener,
            }),
        })
    }

    pub fn subscribe(&self) -> Option<broadcast::Receiver<LedgerEvent>> {
        Some(self.inner.events.subscribe())
    }

    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    /// `synchronous_commit = on`: a commit is on the server's stable storage (and, with
    /// synchronous standbys configured, theirs) before the caller is answered.
    pub fn durability(&self) -> Durability {
        Durability::PowerSafe
    }

    pub fn health(&self) -> LedgerHealth {
        self.inner.status.health()
    }

    pub async fn verify(&self, options: VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
        let client = self.inner.reads.get().await.map_err(|err| VerifyFailure {
            chain_seq: None,
            detail: err.to_string(),
        })?;
        chain::verify(&client, &options).await
    }

    /// Signed checkpoints are per data directory (each replica's key); not kept in PostgreSQL
    /// yet: the chain itself is verified.
    pub async fn sign_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        Ok(None)
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        Ok(None)
    }

    fn refuse_if_untrusted(&self) -> Result<(), LedgerError> {
        match self.inner.status.untrusted() {
            Some(reason) => Err(LedgerError::Untrusted(reason)),
            None => Ok(()),
        }
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> write::Command,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(command(reply))
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        answer.await.map_err(|_| LedgerError::WriterStopped)?
    }

    pub async fn record_action(&self, action: NewAction) -> Result<Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Action(Box::new(action), reply))
            .await
    }

    pub async fn record_score(&self, fact: ScoreFact) -> Result<bool, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Score(Box::new(fact), reply))
            .await
    }

    pub async fn record_decision(
        &self,
        fact: DecisionFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Decision(Box::new(fact), reply))
            .await
    }

    async fn grant_command(&self, command: GrantCommand) -> Result<GrantOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Grant(Box::new(command), reply))
            .await
    }

    /// Appends a grant (chained; announced to every replica).
    pub async fn record_grant(&self, grant: NewGrant) -> Result<(), LedgerError> {
        match self.grant_command(GrantCommand::Add(grant)).await? {
            GrantOutcome::Added => Ok(()),
            GrantOutcome::Revoked(_) => Err(unexpected()),
        }
    }

    /// Appends the revocation of a grant, unless it has one or does not exist.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        revoked_at_ms: i64,
        revoked_by: &str,
    ) -> Result<Revoked, LedgerError> {
        let command = GrantCommand::Revoke {
            grant_id: grant_id.to_owned(),
            revoked_at_ms,
            revoked_by: revoked_by.to_owned(),
        };
        match self.grant_command(command).await? {
            GrantOutcome::Revoked(revoked) => Ok(revoked),
            GrantOutcome::Added => Err(unexpected()),
        }
    }

    pub async fn grants(&self) -> Result<Vec<GrantRecord>, LedgerError> {
        grants::list(&*self.inner.reads.get().await?).await
    }

    pub async fn paused_actions(&self, limit: u32) -> Result<Vec<RecordedAction>, LedgerError> {
        grants::paused(&*self.inner.reads.get().await?, limit).await
    }

    pub async fn approvals_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<Approved>, LedgerError> {
        grants::approved(&*self.inner.reads.get().await?, since_ms, limit).await
    }

    pub async fn grant_counts(&self, since_ms: i64) -> Result<GrantCounts, LedgerError> {
        grants::counts(&*self.inner.reads.get().await?, since_ms).await
    }

    /// Edit then approve: the approval and its edit, both or neither.
    pub async fn record_edited_decision(
        &self,
        fact: DecisionFact,
        edit: crate::EditFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::EditedDecision(Box::new((fact, edit)), reply))
            .await
    }

    pub async fn append_label(&self, label: NewLabel) -> Result<bool, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Label(Box::new(label), reply))
            .await
    }

    pub async fn record_outcome(&self, outcome: NewOutcome) -> Result<OutcomeRecord, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Outcome(Box::new(outcome), reply))
            .await
    }

    /// Appends an action decided by the pushed policy `version`, the version chained beside it.
    pub async fn record_versioned_action(
        &self,
        action: NewAction,
        version: i64,
    ) -> Result<Recorded, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::VersionedAction(Box::new((action, version)), reply))
            .await
    }

    async fn team(&self, command: TeamCommand) -> Result<TeamOutcome, LedgerError> {
        self.refuse_if_untrusted()?;
        self.call(|reply| write::Command::Team(Box::new(command), reply))
            .await
    }

    pub async fn add_user(&self, user: NewUser) -> Result<UserChange, LedgerError> {
        match self.team(TeamCommand::AddUser(user)).await? {
            TeamOutcome::User(change) => Ok(change),
            _ => Err(unexpected()),
        }
    }

    pub async fn remove_user(
        &self,
        name: &str,
        actor: &str,
        recorded_at_ms: i64,
    ) -> Result<UserChange, LedgerError> {
        let command = TeamCommand::RemoveUser {
            name: name.to_owned(),
            actor: actor.to_owned(),
            recorded_at_ms,
        };
        match self.team(command).await? {
            TeamOutcome::User(change) => Ok(change),
            _ => Err(unexpected()),
        }
    }

    pub async fn record_person_decision(
        &self,
        decision: PersonDecision,
    ) -> Result<PersonOutcome, LedgerError> {
        match self.team(TeamCommand::Decide(decision)).await? {
            TeamOutcome::Person(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    /// Records the next policy version; every replica hears of it at commit.
    pub async fn push_policy(
        &self,
        version: NewPolicyVersion,
    ) -> Result<PolicyVersion, LedgerError> {
        match self.team(TeamCommand::PushPolicy(version)).await? {
            TeamOutcome::Policy(version) => Ok(version),
            _ => Err(unexpected()),
        }
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>, LedgerError> {
        team::users(&*self.inner.reads.get().await?).await
    }

    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, LedgerError> {
        team::policy_versions(&*self.inner.reads.get().await?).await
    }

    pub async fn share_login(&self, login: &SharedLogin, now_ms: i64) -> Result<(), LedgerError> {
        let client = self.inner.reads.get().await?;
        logins::share(&*client, &self.inner.replica_id, login, now_ms).await
    }

    pub async fn spend_login_code(
        &self,
        secret_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<(String, String)>, LedgerError> {
        logins::spend_code(&*self.inner.reads.get().await?, secret_hash, now_ms).await
    }

    pub async fn shared_sessions(&self, now_ms: i64) -> Result<Vec<SharedLogin>, LedgerError> {
        logins::sessions(&*self.inner.reads.get().await?, now_ms).await
    }

    pub async fn flush(&self) -> Result<(), LedgerError> {
        self.call(write::Command::Flush).await
    }

    pub async fn outcomes(
        &self,
        limit: u32,
        flagged_only: bool,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        read::outcomes(&*self.inner.reads.get().await?, limit, flagged_only).await
    }

    pub async fn labels_for(&self, action_id: &str) -> Result<Vec<LabelRecord>, LedgerError> {
        read::labels_for(&*self.inner.reads.get().await?, action_id).await
    }

    pub async fn labelled_examples(&self) -> Result<Vec<LabelledExample>, LedgerError> {
        Err(LedgerError::Unsupported(
            "labelled examples for retraining (use an SQLite ledger export)",
        ))
    }

    pub async fn review_queue(&self, _query: ReviewQuery) -> Result<ReviewPage, LedgerError> {
        Err(LedgerError::Unsupported("the review queue"))
    }

    pub async fn action(&self, action_id: &str) -> Result<Option<ActionView>, LedgerError> {
        read::action(&*self.inner.reads.get().await?, action_id).await
    }

    pub async fn list(&self, query: ListQuery) -> Result<Vec<ActionView>, LedgerError> {
        read::list(&*self.inner.reads.get().await?, &query).await
    }

    pub async fn pending(&self) -> Result<Vec<ActionView>, LedgerError> {
        read::pending(&*self.inner.reads.get().await?).await
    }

    pub async fn history(&self, action_id: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
        read::history(&*self.inner.reads.get().await?, action_id).await
    }

    /// The console overview's figures over a window.
    pub async fn overview(
        &self,
        query: crate::OverviewQuery,
    ) -> Result<gatehouse_protocol::Overview, LedgerError> {
        console::overview(&*self.inner.reads.get().await?, query).await
    }

    /// A page of the ledger browser.
    pub async fn browse(
        &self,
        query: crate::BrowseQuery,
    ) -> Result<gatehouse_protocol::BrowsePage, LedgerError> {
        console::browse(&*self.inner.reads.get().await?, &query).await
    }

    /// Recently active sessions, most recent first (the console's session list).
    pub async fn sessions(
        &self,
        limit: u32,
        cursor: Option<(i64, String)>,
    ) -> Result<gatehouse_protocol::SessionList, LedgerError> {
        console::sessions(&*self.inner.reads.get().await?, limit, cursor).await
    }

    pub async fn count(&self) -> Result<u64, LedgerError> {
        read::count(&*self.inner.reads.get().await?).await
    }
}

/// Verifies a PostgreSQL ledger without starting a writer (`gatehouse ledger verify --ledger URL`).
pub async fn verify_url(url: &str, options: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
    let client = connect::connect(url, "verify")
        .await
        .map_err(|err| VerifyFailure {
            chain_seq: None,
            detail: err.to_string(),
        })?;
    chain::verify(&client, options).await
}

/// How long a connection attempt may take before the ledger is reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
