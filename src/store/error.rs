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
    #[error("no database host accepts writes")]
    NoWritableHost,
    /// The connection failed while the write was committed: it may have been written or not. A
    /// repeat with the same idempotency key is safe (it finds the key if the write went in).
    #[error("the database's answer to the commit was lost: the write may have been made; repeat it with its idempotency key")]
    CommitOutcomeUnknown(#[source] Arc<sqlx::Error>),
    #[error("an answer kept for an idempotency key cannot be read: {0}")]
    CorruptAnswer(String),
}

impl StoreError {
    /// True when the database could not be reached at all (the API answers 503 and the caller may retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Closed | StoreError::NoWritableHost)
    }

    /// The database did not answer a call within `deadline`: its host may be cut off, where a
    /// socket would wait many minutes for TCP to give up.
    pub(crate) fn no_answer(deadline: std::time::Duration) -> sqlx::Error {
        let detail = format!("the database did not answer within {} s", deadline.as_secs());
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, detail))
    }

    /// A failure of a write that was being committed: when the database became unreachable then,
    /// nobody knows whether the commit went in.
    pub(crate) fn of_commit(error: sqlx::Error) -> Self {
        match StoreError::from(error) {
            StoreError::Unavailable(inner) => StoreError::CommitOutcomeUnknown(inner),
            known => known,
        }
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
            // The server refuses connections (class 08), is shutting down or starting (57P0x), the
            // database itself is gone (3D000), or the host was demoted to a standby and refuses
            // writes (25006, until the pool follows the new primary): the caller may retry later.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| {
                    code.starts_with("08") || code.starts_with("57P") || code == "3D000" || code == "25006"
                }) =>
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
