//! The log's news for followers of other processes' commits, read from the primary or from a hot
//! standby (`--read-database`).

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;

use super::{backend::Database, RecordedEvent, StoreError};

/// How often a feed looks for commits that no signal announced (another process on SQLite).
const FEED_POLL: Duration = Duration::from_secs(1);
/// How often a feed on a standby asks it how far it has replayed (standbys deliver no NOTIFY).
const REPLICA_POLL: Duration = Duration::from_millis(100);
/// The most a standby may lag before the feed reads from the primary instead: token revocations
/// must hold within a second.
const MAX_REPLICA_LAG: Duration = Duration::from_secs(1);

/// The log's news for a follower: the positions committed (by this process's writer, or another
/// process heard through NOTIFY, or found by polling the head), and the events up to them.
pub struct LogFeed {
    pub(super) db: Database,
    pub(super) committed: watch::Receiver<i64>,
    pub(super) alive: watch::Receiver<()>,
    pub(super) replica: Option<Replica>,
    /// The poll's clock, kept between calls so that a stream of announcements does not starve it.
    pub(super) poll: tokio::time::Interval,
}

/// A hot standby that a feed reads from while it keeps up, and how far behind it is.
pub(super) struct Replica {
    pub(super) db: Database,
    pub(super) status: Arc<ReplicaStatus>,
    /// Positions the primary was known to hold, with when they became known, newer than the
    /// standby's head: the oldest one's age is the standby's lag.
    unreplicated: VecDeque<(i64, Instant)>,
}

/// What a standby-following feed last saw, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReplicaStatus {
    position: AtomicI64,
    lag_millis: AtomicI64,
    reading_primary: AtomicBool,
}

impl ReplicaStatus {
    /// The standby's head, as last polled.
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Relaxed)
    }

    /// How long the oldest position that the primary holds and the standby does not has been known.
    pub fn lag_seconds(&self) -> f64 {
        self.lag_millis.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// True while the standby lags more than a second (or cannot be read) and the feed reads the primary.
    pub fn reading_primary(&self) -> bool {
        self.reading_primary.load(Ordering::Relaxed)
    }
}

impl Replica {
    pub(super) fn new(db: Database) -> Self {
        Replica { db, status: Arc::default(), unreplicated: VecDeque::new() }
    }

    /// Polls the standby's head and judges its lag against what the primary is known to hold.
    async fn poll(&mut self, primary: i64) {
        let now = Instant::now();
        if self.unreplicated.back().is_none_or(|(known, _)| *known < primary) {
            self.unreplicated.push_back((primary, now));
        }
        let position = match self.db.head().await {
            Ok(head) => head.position,
            Err(error) => {
                tracing::debug!(%error, "cannot read the standby's head; following the primary");
                self.status.reading_primary.store(true, Ordering::Relaxed);
                return;
            }
        };
        while self.unreplicated.front().is_some_and(|(known, _)| *known <= position) {
            self.unreplicated.pop_front();
        }
        let lag = self.unreplicated.front().map_or(Duration::ZERO, |(_, since)| now.duration_since(*since));
        self.status.position.store(position, Ordering::Relaxed);
        self.status.lag_millis.store(i64::try_from(lag.as_millis()).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.status.reading_primary.store(lag > MAX_REPLICA_LAG, Ordering::Relaxed);
    }
}

impl LogFeed {
    pub(super) fn new(
        db: Database,
        committed: watch::Receiver<i64>,
        alive: watch::Receiver<()>,
        replica: Option<Replica>,
    ) -> Self {
        let period = if replica.is_some() { REPLICA_POLL } else { FEED_POLL };
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        LogFeed { db, committed, alive, replica, poll }
    }

    /// Waits until the log may have moved, and says up to where; `None` once the store is closed.
    /// An announced commit names its position; only the poll asks the database.
    pub async fn next_head(&mut self) -> Option<i64> {
        loop {
            tokio::select! {
                _ = self.alive.changed() => return None, // the last handle is gone
                _ = self.committed.changed() => return Some(*self.committed.borrow_and_update()),
                _ = self.poll.tick() => match self.replica.as_mut() {
                    Some(replica) => {
                        let primary = *self.committed.borrow();
                        replica.poll(primary).await;
                        return Some(primary.max(replica.status.position()));
                    }
                    None => match self.db.head().await {
                        Ok(head) => return Some(head.position),
                        Err(error) => tracing::debug!(%error, "cannot read the log head; the follower waits"),
                    },
                },
            }
        }
    }

    /// Up to `limit` events after `after_position`, in position order: from the standby while it
    /// keeps up (nothing yet, when it has not replayed them), from the primary otherwise.
    pub async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        match &self.replica {
            Some(replica) if !replica.status.reading_primary() => {
                if replica.status.position() <= after_position {
                    return Ok(Vec::new());
                }
                replica.db.read_page(after_position, limit).await
            }
            _ => self.db.read_page(after_position, limit).await,
        }
    }
}
