//! The one ledger interface the daemon uses: `Ledger`, a handle over one of the backends —
//! SQLite (`SqliteLedger`, embedded, the default) or PostgreSQL (`PgLedger`, team mode: several
//! daemon replicas sharing one database).
//!
//! An enum rather than a trait object: the set of backends is closed and known here, the
//! methods are `async` (a `dyn` trait would box every future on the fast path), and the daemon
//! keeps naming one concrete type, `Ledger`. Each method is one line that `both!` dispatches,
//! calling the same-named method on each backend, so **adding a record kind** is: its method
//! on `SqliteLedger` (lib.rs/writer.rs), the same method on `PgLedger` (postgres/), and one
//! dispatch line here. The compiler refuses a method that one backend lacks.
//!
//! *Invariant* (both backends): a fact is committed before its method returns; facts are
//! appended, never rewritten; an action has at most one decision; every record is chained.

use std::path::Path;

use gatehouse_protocol::{ActionView, LabelRecord, OutcomeRecord};
use gatehouse_protocol::{BrowsePage, Overview, SessionList};

#[cfg(feature = "postgres")]
use crate::postgres::{self, PgLedger};
use crate::{Approved, GrantCounts, NewGrant, RecordedAction, Revoked};
use crate::{BrowseQuery, OverviewQuery};
use crate::{
    Checkpoint, DecisionFact, DecisionOutcome, Durability, HistoryEntry, LabelledExample,
    LedgerConfig, LedgerError, LedgerHealth, ListQuery, NewAction, NewLabel, NewOutcome, Recorded,
    ReviewPage, ReviewQuery, ScoreFact, SqliteLedger, VerifyFailure, VerifyOptions, VerifyReport,
};
use crate::{
    NewPolicyVersion, NewUser, PersonDecision, PersonOutcome, PolicyVersion, UserChange, UserRecord,
};
use gatehouse_protocol::grants::GrantRecord;

/// Handle to the ledger, whichever backend holds it; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteLedger),
    #[cfg(feature = "postgres")]
    Postgres(PgLedger),
}

/// Calls the same method on whichever backend this ledger is.
macro_rules! both {
    ($self:ident, $ledger:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($ledger) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($ledger) => $call,
        }
    };
}

/// Something another replica committed to the shared ledger, heard over `LISTEN/NOTIFY`
/// (PostgreSQL only: an embedded SQLite ledger has one daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    /// A paused action was recorded (by any replica).
    Paused { action_id: String, replica: String },
    /// A paused action got its one decision (on any replica).
    Decided { action_id: String, replica: String },
    /// A policy version was recorded (a push or a rollback, on any replica).
    Policy { version: i64, replica: String },
    /// A person was added or removed (on any replica): their token works, or stops, here too.
    User { name: String, replica: String },
    /// A dashboard session was opened (on any replica): it is valid here too.
    Login { replica: String },
    /// A grant was made or revoked (on any replica): the grants in force are re-read.
    Grant { replica: String },
    /// The `LISTEN` connection was re-made: notifications may have been missed meanwhile, so
    /// whatever follows them re-reads the ledger (pending actions, the latest policy version).
    Reconnected,
}

impl LedgerEvent {
    /// The replica that committed it (empty for `Reconnected`, which no replica sent).
    pub fn replica(&self) -> &str {
        match self {
            LedgerEvent::Paused { replica, .. }
            | LedgerEvent::Decided { replica, .. }
            | LedgerEvent::Policy { replica, .. }
            | LedgerEvent::User { replica, .. }
            | LedgerEvent::Login { replica }
            | LedgerEvent::Grant { replica } => replica,
            LedgerEvent::Reconnected => "",
        }
    }
}

/// A dashboard login code or session, shared by the replicas of a PostgreSQL ledger so a login
/// link from one is redeemable (once) on any and a session from one is valid on all. Kept by
/// the SHA-256 of its secret only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLogin {
    pub kind: LoginKind,
    pub secret_hash: [u8; 32],
    pub person: String,
    /// The person's role (`approver`, `reviewer`, `admin`).
    pub role: String,
    /// A session's CSRF token; `None` for a code.
    pub csrf: Option<String>,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    Code,
    Session,
}

impl From<SqliteLedger> for Ledger {
    fn from(ledger: SqliteLedger) -> Ledger {
        Ledger {
            backend: Backend::Sqlite(ledger),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<PgLedger> for Ledger {
    fn from(ledger: PgLedger) -> Ledger {
        Ledger {
            backend: Backend::Postgres(ledger),
        }
    }
}

impl Ledger {
    /// Opens the embedded SQLite ledger (see `SqliteLedger::open`).
    pub fn open(config: LedgerConfig) -> Result<Ledger, LedgerError> {
        SqliteLedger::open(config).map(Ledger::from)
    }

    /// Connects to a PostgreSQL ledger, running its migrations once (under an advisory lock,
    /// so replicas starting together do not race) and starting its `LISTEN` connection.
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(config: postgres::PgConfig) -> Result<Ledger, LedgerError> {
        PgLedger::open(config).await.map(Ledger::from)
    }

    /// The SQLite backend, for what only it has (its file, its page cap).
    pub fn as_sqlite(&self) -> Option<&SqliteLedger> {
        match &self.backend {
            Backend::Sqlite(ledger) => Some(ledger),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, for what its writer does its own way.
    #[cfg(feature = "postgres")]
    pub(crate) fn as_postgres(&self) -> Option<&PgLedger> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(ledger) => Some(ledger),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    /// What other replicas commit (paused actions, decisions), when the backend is shared;
    /// `None` for SQLite.
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<LedgerEvent>> {
        both!(self, l => l.subscribe())
    }

    /// Whether several daemons share this ledger (PostgreSQL): then credentials are shared too.
    pub fn is_shared(&self) -> bool {
        self.as_sqlite().is_none()
    }

    /// Shares a dashboard login code or session with the other replicas (a session is
    /// announced to them). Nothing to share on SQLite: one daemon owns it.
    pub async fn share_login(&self, login: SharedLogin, now_ms: i64) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => ledger.share_login(&login, now_ms).await,
        }
    }

    /// Spends a login code any replica shared: its person and role once (unexpired), then
    /// `None`. SQLite holds no shared codes: always `None`.
    pub async fn spend_login_code(
        &self,
        secret_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<(String, String)>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => ledger.spend_login_code(secret_hash, now_ms).await,
        }
    }

    /// The shared sessions that have not expired (none on SQLite).
    pub async fn shared_sessions(&self, now_ms: i64) -> Result<Vec<SharedLogin>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Vec::new()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => ledger.shared_sessions(now_ms).await,
        }
    }

    /// This process's name among the replicas sharing the ledger (events it sent carry it).
    pub fn replica_id(&self) -> &str {
        both!(self, l => l.replica_id())
    }

    /// The SQLite file (`None` for PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.as_sqlite().map(SqliteLedger::path)
    }

    pub fn durability(&self) -> Durability {
        both!(self, l => l.durability())
    }

    /// `Ok`, or `Degraded` with the reason appends fail.
    pub fn health(&self) -> LedgerHealth {
        both!(self, l => l.health())
    }

    pub async fn verify(&self, options: VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
        both!(self, l => l.verify(options).await)
    }

    pub async fn sign_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        both!(self, l => l.sign_checkpoint().await)
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        both!(self, l => l.latest_checkpoint().await)
    }

    /// Caps the SQLite file's size (to test a full disk); refused by PostgreSQL.
    pub fn set_max_page_count(&self, pages: Option<u64>) -> Result<(), LedgerError> {
        match self.as_sqlite() {
            Some(ledger) => ledger.set_max_page_count(pages),
            None => Err(LedgerError::Unsupported("a page cap (SQLite only)")),
        }
    }

    pub async fn record_action(&self, action: NewAction) -> Result<Recorded, LedgerError> {
        both!(self, l => l.record_action(action).await)
    }

    pub async fn record_score(&self, fact: ScoreFact) -> Result<bool, LedgerError> {
        both!(self, l => l.record_score(fact).await)
    }

    pub async fn record_decision(
        &self,
        fact: DecisionFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        both!(self, l => l.record_decision(fact).await)
    }

    /// Adds a person (a chained `user` record); `Exists` if the name is taken.
    pub async fn add_user(&self, user: NewUser) -> Result<UserChange, LedgerError> {
        both!(self, l => l.add_user(user).await)
    }

    /// Removes a person: their token stops working; their past answers stay.
    pub async fn remove_user(
        &self,
        name: &str,
        actor: &str,
        recorded_at_ms: i64,
    ) -> Result<UserChange, LedgerError> {
        both!(self, l => l.remove_user(name, actor, recorded_at_ms).await)
    }

    /// Records a person's approval or denial, deciding the action when it completes.
    pub async fn record_person_decision(
        &self,
        decision: PersonDecision,
    ) -> Result<PersonOutcome, LedgerError> {
        both!(self, l => l.record_person_decision(decision).await)
    }

    /// Records the next policy version and returns it (on PostgreSQL, every replica hears it).
    pub async fn push_policy(
        &self,
        version: NewPolicyVersion,
    ) -> Result<PolicyVersion, LedgerError> {
        both!(self, l => l.push_policy(version).await)
    }

    /// The current users, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, LedgerError> {
        both!(self, l => l.users().await)
    }

    /// Every policy version, oldest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, LedgerError> {
        both!(self, l => l.policy_versions().await)
    }

    /// Appends an action with the pushed policy version that decided it (`None`: the daemon's
    /// own policy decided, recorded as by `record_action`).
    pub async fn record_action_under(
        &self,
        action: NewAction,
        version: Option<i64>,
    ) -> Result<Recorded, LedgerError> {
        match version {
            Some(version) => both!(self, l => l.record_versioned_action(action, version).await),
            None => self.record_action(action).await,
        }
    }

    /// Appends a grant (chained; on PostgreSQL every replica hears of it).
    pub async fn record_grant(&self, grant: NewGrant) -> Result<(), LedgerError> {
        both!(self, l => l.record_grant(grant).await)
    }

    /// Appends the revocation of a grant, unless it has one or does not exist.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        revoked_at_ms: i64,
        revoked_by: &str,
    ) -> Result<Revoked, LedgerError> {
        both!(self, l => l.revoke_grant(grant_id, revoked_at_ms, revoked_by).await)
    }

    /// Every grant, newest first, with its revocation and how many actions it allowed.
    pub async fn grants(&self) -> Result<Vec<GrantRecord>, LedgerError> {
        both!(self, l => l.grants().await)
    }

    /// The newest `limit` actions the rules paused, newest first.
    pub async fn paused_actions(&self, limit: u32) -> Result<Vec<RecordedAction>, LedgerError> {
        both!(self, l => l.paused_actions(limit).await)
    }

    /// People's approvals since `since_ms`, newest first.
    pub async fn approvals_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<Approved>, LedgerError> {
        both!(self, l => l.approvals_since(since_ms, limit).await)
    }

    /// Actions, pauses, grant allows and people's decisions since `since_ms`.
    pub async fn grant_counts(&self, since_ms: i64) -> Result<GrantCounts, LedgerError> {
        both!(self, l => l.grant_counts(since_ms).await)
    }

    /// Edit then approve: the approval and its edit, both or neither.
    pub async fn record_edited_decision(
        &self,
        fact: DecisionFact,
        edit: crate::EditFact,
    ) -> Result<DecisionOutcome, LedgerError> {
        both!(self, l => l.record_edited_decision(fact, edit).await)
    }

    pub async fn append_label(&self, label: NewLabel) -> Result<bool, LedgerError> {
        both!(self, l => l.append_label(label).await)
    }

    pub async fn record_outcome(&self, outcome: NewOutcome) -> Result<OutcomeRecord, LedgerError> {
        both!(self, l => l.record_outcome(outcome).await)
    }

    pub async fn outcomes(
        &self,
        limit: u32,
        flagged_only: bool,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        both!(self, l => l.outcomes(limit, flagged_only).await)
    }

    pub async fn labels_for(&self, action_id: &str) -> Result<Vec<LabelRecord>, LedgerError> {
        both!(self, l => l.labels_for(action_id).await)
    }

    pub async fn labelled_examples(&self) -> Result<Vec<LabelledExample>, LedgerError> {
        both!(self, l => l.labelled_examples().await)
    }

    pub async fn review_queue(&self, query: ReviewQuery) -> Result<ReviewPage, LedgerError> {
        both!(self, l => l.review_queue(query).await)
    }

    /// Waits until everything queued before it is committed.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        both!(self, l => l.flush().await)
    }

    pub async fn action(&self, action_id: &str) -> Result<Option<ActionView>, LedgerError> {
        both!(self, l => l.action(action_id).await)
    }

    pub async fn list(&self, query: ListQuery) -> Result<Vec<ActionView>, LedgerError> {
        both!(self, l => l.list(query).await)
    }

    pub async fn pending(&self) -> Result<Vec<ActionView>, LedgerError> {
        both!(self, l => l.pending().await)
    }

    pub async fn history(&self, action_id: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
        both!(self, l => l.history(action_id).await)
    }

    pub async fn count(&self) -> Result<u64, LedgerError> {
        both!(self, l => l.count().await)
    }

    /// A page of the ledger browser.
    pub async fn browse(&self, query: BrowseQuery) -> Result<BrowsePage, LedgerError> {
        both!(self, l => l.browse(query).await)
    }

    /// Recently active sessions, most recent first.
    pub async fn sessions(
        &self,
        limit: u32,
        cursor: Option<(i64, String)>,
    ) -> Result<SessionList, LedgerError> {
        both!(self, l => l.sessions(limit, cursor).await)
    }

    /// The console overview's figures over a window.
    pub async fn overview(&self, query: OverviewQuery) -> Result<Overview, LedgerError> {
        both!(self, l => l.overview(query).await)
    }
}
