//! The backends the conformance suite runs against: SQLite in a temporary directory (always),
//! and PostgreSQL in a fresh database of the server named by `GATEHOUSE_TEST_POSTGRES_URL`
//! (scripts/test-postgres.sh starts a throwaway cluster and sets it; unset, those cases say so
//! and pass without running).

use gatehouse_ledger::postgres::PgConfig;
use gatehouse_ledger::{Ledger, LedgerConfig};

pub enum TestBackend {
    Sqlite(tempfile::TempDir),
    Postgres { url: String },
}

/// The admin URL of the test server, if the test command started one.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// `url` connecting as `user` (no password: the test cluster trusts loopback).
pub fn with_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[scheme_end..];
    let host = match rest.find('@') {
        Some(at) if rest.find('/').is_none_or(|slash| at < slash) => &rest[at + 1..],
        _ => rest,
    };
    format!("{}{user}@{host}", &url[..scheme_end])
}

/// A fresh, empty database on the test server.
pub async fn fresh_database() -> Option<String> {
    let admin = postgres_admin_url()?;
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("GATEHOUSE_TEST_POSTGRES_URL names a reachable server");
    tokio::spawn(connection);
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).unwrap();
    let name = format!(
        "gh_test_{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(with_database(&admin, &name))
}

impl TestBackend {
    pub fn sqlite() -> TestBackend {
        TestBackend::Sqlite(tempfile::tempdir().unwrap())
    }

    pub async fn postgres() -> Option<TestBackend> {
        match fresh_database().await {
            Some(url) => Some(TestBackend::Postgres { url }),
            None => {
                eprintln!(
                    "GATEHOUSE_TEST_POSTGRES_URL is not set: the PostgreSQL case did not run (scripts/test-postgres.sh runs it)"
                );
                None
            }
        }
    }

    pub async fn open(&self) -> Ledger {
        match self {
            TestBackend::Sqlite(dir) => {
                Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap()
            }
            TestBackend::Postgres { url } => {
                let mut config = PgConfig::new(url.clone());
                config.replica_id = "test".into();
                Ledger::open_postgres(config).await.unwrap()
            }
        }
    }

    /// Runs SQL behind the ledger's back (as the owner): what tampering looks like.
    pub async fn raw(&self, sql: &str) -> Result<(), String> {
        match self {
            TestBackend::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("ledger.db"))
                    .map_err(|e| e.to_string())?;
                conn.execute_batch(sql).map_err(|e| e.to_string())
            }
            TestBackend::Postgres { url } => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client.batch_execute(sql).await.map_err(|e| {
                    e.as_db_error()
                        .map(|db| db.message().to_owned())
                        .unwrap_or_else(|| e.to_string())
                })
            }
        }
    }
}

/// Runs one conformance function against each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::support::TestBackend::sqlite()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(backend) = super::support::TestBackend::postgres().await {
                        super::$name(backend).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use conformance;
