use std::sync::Arc;

use super::ExpectedVersion;

/// Everything the event store can answer instead of a result. The HTTP layer maps these once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream:?} is at version {actual}, but the append expected {expected}")]
    Conflict { stream: String, expected: ExpectedVersion, actual: i64 },
    #[error("idempotency key {0:?} was already used for a different append")]
    IdempotencyKeyReused(String),
    #[error("an append needs at least one event")]
    EmptyAppend,
    #[error("event at position {position} cannot be read: {reason}")]
    CorruptEvent { position: i64, reason: String },
    #[error("the SQLite file {0} does not exist (only serve, migrate, import and bootstrap-admin create one)")]
    MissingFile(String),
    #[error("unsupported database URL {0:?}: use sqlite:PATH (or a plain file path) or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("the database schema is at migration {found}, newer than this roleledger knows ({known}); run a newer roleledger")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database schema is at migration {found}, older than this roleledger needs ({known}); run `roleledger migrate`")]
    SchemaTooOld { found: i64, known: i64 },
    #[error("database unreachable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    #[error("database error: {0}")]
    Database(#[source] Arc<sqlx::Error>),
    #[error("migration failed: {0}")]
    Migration(#[source] Arc<sqlx::migrate::MigrateError>),
    #[error("the event store has shut down")]
    Closed,
    /// Deciding this command panicked: it alone failed, nothing of it was written (the panic is logged).
    #[error("the command failed unexpectedly: {0}")]
    Panicked(String),
    #[error("this store was opened without a workflow, so it cannot decide commands")]
    NoWorkflow,
}

impl StoreError {
    /// True when the database could not be reached at all (the API answers 503 and the caller may retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed)
    }
}

/// The one place where a driver error is classified.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Arc::new(error)),
            // The server refuses connections (class 08), is shutting down or starting (57P0x), or
            // the database itself is gone (3D000): the caller may retry later.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P") || code == "3D000") =>
            {
                StoreError::Unavailable(Arc::new(error))
            }
            _ => StoreError::Database(Arc::new(error)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Migration(Arc::new(other)),
        }
    }
}

/// A unique violation on `(stream_id, stream_version)` means another append took that version first.
pub(crate) fn is_stream_version_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                && (db.constraint() == Some("events_stream_version_key")
                    || db.message().contains("events.stream_id, events.stream_version"))
        }
        _ => false,
    }
}
