//! Snapshots of a model of the log, as the store keeps them: opaque bytes with the position they
//! were folded up to, the chain hash of the event there, and what their maker needs to judge them
//! (a digest of the rules they were folded under, a format version, a MAC). The store neither
//! reads the bytes nor judges them.

use super::{backend::Database, StoreError};

/// How many snapshots are kept: the newest few, so that a start still finds one when the newest
/// turns out invalid.
pub const SNAPSHOTS_KEPT: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSnapshot {
    pub position: i64,
    /// The hash the log's event at `position` had when the snapshot was made.
    pub chain_hash: String,
    pub workflow_digest: String,
    pub format_version: i32,
    pub body: Vec<u8>,
    pub mac: Vec<u8>,
}

/// The stored snapshots. Cheap to clone.
#[derive(Clone)]
pub struct Snapshots {
    pub(super) db: Database,
}

impl Snapshots {
    /// The positions of the stored snapshots, newest first.
    pub async fn positions(&self) -> Result<Vec<i64>, StoreError> {
        self.db.snapshot_positions().await
    }

    pub async fn load(&self, position: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        self.db.snapshot(position).await
    }

    /// Stores `snapshot` unless another process stored one at the same position first, and drops
    /// all but the newest [`SNAPSHOTS_KEPT`].
    pub async fn save(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        self.db.save_snapshot(snapshot, SNAPSHOTS_KEPT).await
    }

    /// The chain hash of the log's event at `position` (None beyond the log's end).
    pub async fn hash_at(&self, position: i64) -> Result<Option<String>, StoreError> {
        let page = self.db.read_page(position - 1, 1).await?;
        Ok(page.into_iter().next().filter(|event| event.position == position).map(|event| event.hash))
    }
}
