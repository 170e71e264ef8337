//! Leases that nobody knows they hold: a claim, or a batch whose mail was leased to this process's
//! worker, failed with its outcome unknown (the database went away around the commit). If it did
//! commit, its mail waits out the whole lease unsent; the next claim makes such mail due at once.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The ends of those leases. Each lease ends at its own microsecond, so its end names its rows.
#[derive(Clone, Default)]
pub(crate) struct LostLeases(Arc<Mutex<Vec<DateTime<Utc>>>>);

impl LostLeases {
    pub fn lose(&self, lease_end: DateTime<Utc>) {
        self.lock().push(lease_end);
    }

    /// The ends lost so far (still lost until `found`).
    pub fn ends(&self) -> Vec<DateTime<Utc>> {
        self.lock().clone()
    }

    /// Those ends were released.
    pub fn found(&self, ends: &[DateTime<Utc>]) {
        self.lock().retain(|end| !ends.contains(end));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<DateTime<Utc>>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
