//! Writing an export back: events exactly as they were recorded (positions, stream versions, ids,
//! times, metadata and hashes), into an empty log, all or nothing. Each event is checked as it
//! arrives: it must follow the previous one, continue its stream, and carry the hash that the
//! chain gives it, so an imported log verifies and has the exported head.

use super::{
    backend::{dispatch, Database, HeadLock, LogBackend, Rows, WriteBackend},
    error::StoreError,
    event::RecordedEvent,
    verify::ChainWalk,
    LogHead,
};

/// Events written per statement.
const CHUNK: usize = 1_000;

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError<E> {
    /// The source could not give the next event (a line that is not an event, say).
    #[error("{0}")]
    Source(E),
    #[error("the log already holds {events} events; import only into an empty one")]
    NotEmpty { events: i64 },
    /// The event is not the one that can follow those before it.
    #[error("position {position}: {reason}")]
    Refused { position: i64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> From<sqlx::Error> for ImportError<E> {
    fn from(error: sqlx::Error) -> Self {
        ImportError::Store(error.into())
    }
}

/// Writes exported events back into the empty log of `db`, with a writer of its own.
pub(super) async fn import<E>(
    db: &Database,
    events: impl Iterator<Item = Result<RecordedEvent, E>>,
) -> Result<LogHead, ImportError<E>> {
    // An origin of its own: every process, this one too, reads the imported events back.
    let origin = uuid::Uuid::new_v4().to_string();
    dispatch!(db, backend => write_all(&backend.writer(&origin), events).await)
}

/// Under the lock on the log head, in one transaction: checks and writes every event of `events`.
async fn write_all<B: WriteBackend, E>(
    backend: &B,
    events: impl Iterator<Item = Result<RecordedEvent, E>>,
) -> Result<LogHead, ImportError<E>> {
    let (mut tx, HeadLock { head, .. }) = backend.lock_head(&[]).await?;
    if head.position != 0 {
        backend.rollback(tx).await?;
        return Err(ImportError::NotEmpty { events: head.position });
    }
    let mut chain = ChainWalk::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut checked = Ok(());
    for event in events {
        // Each event is judged as soon as it is read, so that a refusal names the right one.
        checked = event.map_err(ImportError::Source).and_then(|event| {
            chain
                .accept(&event)
                .map_err(|refusal| ImportError::Refused { position: refusal.position, reason: refusal.problem })?;
            chunk.push(event);
            Ok(())
        });
        if checked.is_err() {
            break;
        }
        if chunk.len() == CHUNK {
            backend
                .write(&mut tx, Rows { events: &chunk, keys: &[], head: chain.head(), outbox: &[], deliveries: &[] })
                .await?;
            chunk.clear();
        }
    }
    if let Err(error) = checked {
        backend.rollback(tx).await?;
        return Err(error);
    }
    if !chunk.is_empty() {
        backend
            .write(&mut tx, Rows { events: &chunk, keys: &[], head: chain.head(), outbox: &[], deliveries: &[] })
            .await?;
    }
    backend.commit(tx).await?;
    Ok(chain.head().clone())
}
