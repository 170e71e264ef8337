//! The projections' half of verify: the projections this process keeps, and the newest valid
//! snapshot when there is one, each compared with a fresh fold of the log at its position, during
//! the walk of the chain.

use super::{Difference, DomainModel};
use crate::store::{ChainCheck, ChainWalk, RecordedEvent, VerifyProblem};

/// A model to compare with the fold once the fold reaches its position, and what to call it.
struct Compared {
    model: DomainModel,
    name: &'static str,
}

pub(super) struct ProjectionCheck {
    kept_position: i64,
    /// What is still to be compared, by position (lowest last).
    pending: Vec<Compared>,
    /// The fresh fold, until every comparison is done.
    rebuilt: Option<DomainModel>,
    checked_at: Option<i64>,
}

impl ProjectionCheck {
    pub fn new(kept: DomainModel, snapshot: Option<DomainModel>) -> Self {
        let rebuilt = Some(kept.empty_like());
        let kept_position = kept.position();
        let mut pending = vec![Compared { model: kept, name: "kept by this process" }];
        pending.extend(snapshot.map(|model| Compared { model, name: "of the newest snapshot" }));
        pending.sort_by_key(|compared| std::cmp::Reverse(compared.model.position()));
        ProjectionCheck { kept_position, pending, rebuilt, checked_at: None }
    }
}

impl ChainCheck for ProjectionCheck {
    fn check(&mut self, chain: &ChainWalk) -> Option<VerifyProblem> {
        loop {
            let fresh = self.rebuilt.as_ref()?;
            let compared = self.pending.last().filter(|compared| compared.model.position() == fresh.position())?;
            if let Some(difference) = compared.model.difference(fresh) {
                return Some(problem(difference, compared.name, fresh.position(), chain));
            }
            if fresh.position() == self.kept_position {
                self.checked_at = Some(fresh.position());
            }
            self.pending.pop();
            if self.pending.is_empty() {
                self.rebuilt = None;
            }
        }
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

fn problem(difference: Difference, name: &str, at: i64, chain: &ChainWalk) -> VerifyProblem {
    let position = difference.stream.as_ref().and_then(|stream| chain.last_position_of(stream)).unwrap_or(at);
    let item = difference.stream.map(|stream| format!(" (stream {stream:?})")).unwrap_or_default();
    VerifyProblem {
        position,
        problem: format!("{}{item} {name} differ from a rebuild from the log at position {at}", difference.what),
    }
}
