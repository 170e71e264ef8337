//! Real databases for the tests: a fresh SQLite file in a temporary folder, or a fresh database
//! on the local PostgreSQL. A PostgreSQL that cannot be reached fails the test; nothing is skipped.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod smtp;

use roleledger::store::{DatabaseUrl, EventStore, Migrations};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

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
                    panic!("PostgreSQL is not reachable at {admin}: {error}. The suite needs it (scripts/test starts it).")
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
