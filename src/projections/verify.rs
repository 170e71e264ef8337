//! The projections' half of verify: the projections this process keeps, compared with a fresh
//! fold of the log at their position, during the walk of the chain.

use super::DomainModel;
use crate::store::{ChainCheck, ChainWalk, RecordedEvent, VerifyProblem};

pub(super) struct ProjectionCheck {
    kept: DomainModel,
    /// The fresh fold, until it reaches the kept projections' position.
    rebuilt: Option<DomainModel>,
    checked_at: Option<i64>,
}

impl ProjectionCheck {
    pub fn new(kept: DomainModel) -> Self {
        let rebuilt = Some(kept.empty_like());
        ProjectionCheck { kept, rebuilt, checked_at: None }
    }
}

impl ChainCheck for ProjectionCheck {
    fn check(&mut self, chain: &ChainWalk) -> Option<VerifyProblem> {
        let fresh = self.rebuilt.as_ref().filter(|fresh| fresh.position() == self.kept.position())?;
        if let Some(difference) = self.kept.difference(fresh) {
            let position = difference
                .stream
                .as_ref()
                .and_then(|stream| chain.last_position_of(stream))
                .unwrap_or(fresh.position());
            let item = difference.stream.map(|stream| format!(" (stream {stream:?})")).unwrap_or_default();
            return Some(VerifyProblem {
                position,
                problem: format!(
                    "{}{item} kept by this process differ from a rebuild from the log at position {}",
                    difference.what,
                    fresh.position()
                ),
            });
        }
        self.checked_at = Some(fresh.position());
        self.rebuilt = None;
        None
    }

    fn accepted(&mut self, event: &RecordedEvent) {
        if let Some(fresh) = self.rebuilt.as_mut() {
            fresh.apply(event);
        }
    }

    fn checked_at(&self) -> Option<i64> {
        self.checked_at
    }
}
