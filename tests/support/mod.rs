//! Real databases for the tests: a fresh SQLite file in a temporary folder, or a fresh database
//! on the local PostgreSQL. A PostgreSQL that cannot be reached fails the test; nothing is skipped.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod proxy;
pub mod smtp;

use roleledger::store::{DatabaseUrl, EventStore, Migrations};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

/// Waits until `condition` holds, asking every 20 ms; fails the test naming `what` after `seconds`.
pub async fn eventually<F, Fut>(what: &str, seconds: u64, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !condition().await {
        assert!(std::time::Instant::now() < deadline, "waited {seconds} s for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDatabase {
    pub url: DatabaseUrl,
    // Keeps the SQLite folder alive as long as the test runs.
    _folder: Option<tempfile::TempDir>,
}

/// The server that holds the test databases (`ROLELEDGER_TEST_POSTGRES` to use another).
pub fn postgres_admin_url() -> String {
    std::env::var("ROLELEDGER_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("a temporary folder");
                let path = folder.path().join("roleledger.db");
                Self { url: DatabaseUrl::Sqlite(path.display().to_string()), _folder: Some(folder) }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut connection = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
                    panic!(
                        "PostgreSQL is not reachable at {admin}: {error}. The suite needs it (scripts/test starts it)."
                    )
                });
                let name = format!("rl_test_{}", uuid::Uuid::new_v4().simple());
                connection.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create a test database");
                let (server, _) = admin.rsplit_once('/').expect("the admin URL names a database");
                Self { url: DatabaseUrl::Postgres(format!("{server}/{name}")), _folder: None }
            }
        }
    }

    pub async fn store(&self) -> EventStore {
        EventStore::open(&self.url, Migrations::Apply).await.expect("open the store")
    }

    /// Runs SQL behind the store's back, as an operator (or an intruder) with database access would.
    pub async fn execute(&self, sql: &str) {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut connection = SqliteConnection::connect(&format!("sqlite:{path}")).await.unwrap();
                connection.execute(sql).await.unwrap();
            }
            DatabaseUrl::Postgres(url) => {
                let mut connection = PgConnection::connect(url).await.unwrap();
                connection.execute(sql).await.unwrap();
            }
        }
    }
}

/// One way of changing the log behind the store's back, at position 3.
pub struct Tampering {
    pub what: &'static str,
    /// The change, which the log's append-only guard refuses.
    pub change: &'static str,
    unguard: &'static str,
}

impl Tampering {
    /// Removes the guard, as only someone with database access could, and makes the change.
    pub async fn apply(&self, db: &TestDatabase) {
        db.execute(&format!("{} {}", self.unguard, self.change)).await;
    }
}

/// SQL that removes the log's append-only guard.
pub fn unguard_log(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER events_are_immutable_update; DROP TRIGGER events_are_immutable_delete;",
        Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_immutable;",
    }
}

/// A row altered, moved to another stream, deleted, or swapped with the next one.
pub fn tamperings(backend: Backend) -> Vec<Tampering> {
    let unguard = unguard_log(backend);
    let altered = match backend {
        Backend::Sqlite => "UPDATE events SET data = '{\"n\": 99}' WHERE position = 3",
        Backend::Postgres => "UPDATE events SET data = '{\"n\": 99}'::jsonb WHERE position = 3",
    };
    [
        ("altered", altered),
        ("moved", "UPDATE events SET stream_id = 'other' WHERE position = 3"),
        ("deleted", "DELETE FROM events WHERE position = 3"),
        (
            "reordered",
            "UPDATE events SET position = -4 WHERE position = 4; UPDATE events SET position = 4 WHERE position = 3; \
             UPDATE events SET position = 3 WHERE position = -4",
        ),
    ]
    .into_iter()
    .map(|(what, change)| Tampering { what, change, unguard })
    .collect()
}
