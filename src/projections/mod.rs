//! The projections kept beside the log, as a cache of it: the fold of every event up to a
//! position. Built from the log at start, so they always equal a replay; `verify` checks that they
//! do. This process's writer brings them forward after each of its commits, the follower after
//! other processes' commits.

mod follower;
mod history;
mod model;
pub mod snapshot;
#[cfg(test)]
mod tests;
mod verify;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

pub use history::{GrantHistory, HeldSpan};
pub use model::{Difference, DomainModel};
use snapshot::{Sealer, SnapshotStats};

use crate::{
    domain::{Grant, GrantId, Subject},
    store::{EventStore, LogFeed, Moment, StoreError, VerifyReport},
};

/// The grants as they stood at a moment, and the time at which their end dates were judged.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantsAsOf {
    pub judged_at: DateTime<Utc>,
    pub grants: Vec<Grant>,
}

/// This process's published model, as of the last commit it knows of. Cheap to clone.
#[derive(Clone)]
pub struct Projections {
    model: Arc<RwLock<DomainModel>>,
}

impl Projections {
    /// The projections of the model that the store's writer publishes into.
    pub fn new(model: Arc<RwLock<DomainModel>>) -> Self {
        Projections { model }
    }

    /// Keeps the projections up with other processes' commits, read from `feed`, as a watched
    /// task of `store`.
    pub fn follow(&self, store: &EventStore, feed: LogFeed) {
        store.spawn_watched("follower", follower::follow(feed, self.model.clone()));
    }

    pub fn read<R>(&self, read: impl FnOnce(&DomainModel) -> R) -> R {
        read(&self.model.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The position folded up to.
    pub fn position(&self) -> i64 {
        self.read(DomainModel::position)
    }

    /// The grants (of `holder` only, when given) as they stood at a moment of the log: the first
    /// `take` of those `wanted`, in id order after `after`, from each grant's validity history (no
    /// replay; a page costs what it shows, not the size of the history). A position beyond the
    /// projections means their last position.
    pub async fn grants_as_of(
        &self,
        store: &EventStore,
        moment: Moment,
        holder: Option<&Subject>,
        after: Option<GrantId>,
        take: usize,
        wanted: impl Fn(&DomainModel, &Grant) -> bool,
    ) -> Result<GrantsAsOf, StoreError> {
        // End dates are judged at the moment's time: the time given, or the recorded time of
        // the event at the position.
        let (moment, judged_at) = match moment {
            Moment::Time(time) => (moment, time),
            Moment::Position(position) => {
                let position = position.min(self.position());
                match store.read_page(position - 1, 1).await?.first() {
                    Some(event) if position > 0 => (Moment::Position(position), event.recorded_at),
                    // Nothing had happened yet.
                    _ => return Ok(GrantsAsOf { judged_at: DateTime::UNIX_EPOCH, grants: Vec::new() }),
                }
            }
        };
        let grants =
            self.read(|model| model.grants_as_of(moment, judged_at, holder, after, take, |grant| wanted(model, grant)));
        Ok(GrantsAsOf { judged_at, grants })
    }

    /// The grants `wanted` that gave their role during a period, with their spans in it (see
    /// [`DomainModel::grants_held_during`]).
    pub fn grants_held_during(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        take: usize,
        wanted: impl Fn(&DomainModel, &Grant) -> bool,
    ) -> Vec<(Grant, Vec<HeldSpan>)> {
        self.read(|model| model.grants_held_during(from, until, take, |grant| wanted(model, grant)))
    }

    /// Walks the whole chain (see `EventStore::verify`) and compares these projections with a
    /// fresh fold of the log at the position they had when the walk began, and `snapshot` (the
    /// newest valid one's model) with that fold at its position.
    pub async fn verify(&self, store: &EventStore, snapshot: Option<DomainModel>) -> Result<VerifyReport, StoreError> {
        // The projections first, then (in the walk) the head: they hold committed events only, so
        // the head is at or beyond them and the walk reaches their position.
        let mut check = verify::ProjectionCheck::new(self.read(DomainModel::clone), snapshot);
        store.verify_with(&mut check).await
    }

    /// Stores a snapshot of these projections every `every` events, as a watched task of `store`.
    pub fn keep_snapshots(&self, store: &EventStore, sealer: Arc<Sealer>, every: u64, stats: Arc<SnapshotStats>) {
        let every = i64::try_from(every.max(1)).unwrap_or(i64::MAX);
        let task = snapshot::keep_snapshots(store.feed(), self.model.clone(), store.snapshots(), sealer, every, stats);
        store.spawn_watched("snapshots", task);
    }
}
