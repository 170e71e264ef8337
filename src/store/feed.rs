//! The log's news for followers of other processes' commits.

use std::time::Duration;

use tokio::sync::watch;

use super::{backend::Database, RecordedEvent, StoreError};

/// How often a feed looks for commits that no signal announced (another process on SQLite).
const FEED_POLL: Duration = Duration::from_secs(1);

/// The log's news for a follower: the positions committed (by this process's writer, or another
/// process heard through NOTIFY, or found by polling the head), and the events up to them.
pub struct LogFeed {
    pub(super) db: Database,
    pub(super) committed: watch::Receiver<i64>,
    pub(super) alive: watch::Receiver<()>,
}

impl LogFeed {
    /// Waits until the log may have moved, and says up to where; `None` once the store is closed.
    /// An announced commit names its position; only the poll asks the database.
    pub async fn next_head(&mut self) -> Option<i64> {
        loop {
            tokio::select! {
                _ = self.alive.changed() => return None, // the last handle is gone
                _ = self.committed.changed() => return Some(*self.committed.borrow_and_update()),
                _ = tokio::time::sleep(FEED_POLL) => match self.db.head().await {
                    Ok(head) => return Some(head.position),
                    Err(error) => tracing::debug!(%error, "cannot read the log head; the follower waits"),
                },
            }
        }
    }

    /// Up to `limit` events after `after_position`, in position order.
    pub async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.db.read_page(after_position, limit).await
    }
}
