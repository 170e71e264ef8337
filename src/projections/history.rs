//! Each grant's validity in log terms: the position and recorded time of the event that granted
//! it and of the one that ended it. "Who held what at moment M" is then a look at these marks
//! instead of a replay up to M. The domain stays free of positions.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Event, GrantId, Subject},
    store::{Moment, RecordedEvent},
};

/// Where an event stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    position: i64,
    recorded_at: DateTime<Utc>,
}

impl Mark {
    fn of(event: &RecordedEvent) -> Self {
        Mark { position: event.position, recorded_at: event.recorded_at }
    }

    fn reached_by(&self, moment: &Moment) -> bool {
        moment.reached_by(self.position, self.recorded_at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Validity {
    granted: Mark,
    /// The revocation or expiry; the first one counts, as in the state.
    ended: Option<Mark>,
    /// The grant's own end when it was granted.
    granted_end: Option<DateTime<Utc>>,
    /// Each move of that end (an extension), in log order, with the end it moved to.
    end_changes: Vec<EndChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EndChange {
    at: Mark,
    to: DateTime<Utc>,
}

/// A span of time in which a grant gave its role: from `from` (included) until `until` (excluded;
/// `None` while it still gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSpan {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

impl HeldSpan {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        crate::domain::within(self.from, self.until, at)
    }
}

/// Every grant's validity as the log recorded it, kept beside the state by the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantHistory {
    /// In id order, the order in which lists of grants are paged.
    grants: BTreeMap<GrantId, Validity>,
    /// Each holder's grants, so that "who held what" for one user or team reads only theirs.
    by_subject: HashMap<Subject, Vec<GrantId>>,
}

impl GrantHistory {
    /// Notes the grant events among the log's events, in log order.
    pub(crate) fn record(&mut self, event: &Event, recorded: &RecordedEvent) {
        match event {
            Event::RoleGranted { grant, subject, ends_at, .. } => {
                let validity = Validity {
                    granted: Mark::of(recorded),
                    ended: None,
                    granted_end: *ends_at,
                    end_changes: Vec::new(),
                };
                self.grants.insert(*grant, validity);
                self.by_subject.entry(subject.clone()).or_default().push(*grant);
            }
            Event::GrantExtended { grant, ends_at, .. } => {
                if let Some(validity) = self.grants.get_mut(grant) {
                    validity.end_changes.push(EndChange { at: Mark::of(recorded), to: *ends_at });
                }
            }
            Event::GrantRevoked { grant, .. } | Event::GrantExpired { grant, .. } => {
                if let Some(validity) = self.grants.get_mut(grant) {
                    validity.ended.get_or_insert(Mark::of(recorded));
                }
            }
            _ => {}
        }
    }

    /// The grant's own end as it stood at the moment: the last extension the moment reached moved
    /// it to, else the end it was granted with (`None` also for a grant the log does not hold).
    pub fn end_at(&self, grant: &GrantId, moment: &Moment) -> Option<DateTime<Utc>> {
        let validity = self.grants.get(grant)?;
        let reached = validity.end_changes.iter().take_while(|change| change.at.reached_by(moment)).last();
        reached.map_or(validity.granted_end, |change| Some(change.to))
    }

    /// The spans of time in which the grant gave its role as the log recorded it, oldest first:
    /// from its granting (or its own later start) until the first of its revocation or expiry and
    /// its own end as it stood then. An extension written after the old end had passed gives a
    /// second span, as `grants_as_of` at those moments does. Empty for a grant the log does not hold.
    pub fn held_spans(&self, grant: &GrantId, starts_at: DateTime<Utc>) -> Vec<HeldSpan> {
        let Some(validity) = self.grants.get(grant) else { return Vec::new() };
        // Between two marks (the granting, each move of the end, the ending) the end is constant.
        let moves = validity.end_changes.iter().map(|change| (change.at.recorded_at, Some(change.to)));
        let segments: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> =
            std::iter::once((validity.granted.recorded_at, validity.granted_end)).chain(moves).collect();
        let mut spans: Vec<HeldSpan> = Vec::new();
        for (index, (begins, own_end)) in segments.iter().enumerate() {
            let next = segments.get(index + 1).map(|(at, _)| *at);
            let ended = validity.ended.map(|end| end.recorded_at);
            let from = (*begins).max(starts_at);
            let until = [next, *own_end, ended].into_iter().flatten().min();
            if until.is_some_and(|until| until <= from) {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.until == Some(from) => last.until = until,
                _ => spans.push(HeldSpan { from, until }),
            }
        }
        spans
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&GrantId, &Validity)> {
        self.grants.iter()
    }

    /// The grants (of `holder` only, when given) that the log held as active at the moment, in id
    /// order from the first after `after`: granted by then, not yet revoked or expired. (Whether one
    /// had passed its own end date is the caller's to judge.) Lazy, so that a page reads only as
    /// far as it needs.
    pub fn active_at<'h>(
        &'h self,
        moment: Moment,
        holder: Option<&Subject>,
        after: Option<GrantId>,
    ) -> Box<dyn Iterator<Item = &'h GrantId> + 'h> {
        let active = move |validity: &Validity| {
            validity.granted.reached_by(&moment) && !validity.ended.is_some_and(|end| end.reached_by(&moment))
        };
        match holder {
            None => {
                let start = after.map_or(Bound::Unbounded, Bound::Excluded);
                Box::new(
                    self.grants
                        .range((start, Bound::Unbounded))
                        .filter(move |(_, validity)| active(validity))
                        .map(|(id, _)| id),
                )
            }
            Some(holder) => {
                let mut held: Vec<&GrantId> = self
                    .by_subject
                    .get(holder)
                    .into_iter()
                    .flatten()
                    .filter(|id| after.is_none_or(|after| **id > after))
                    .filter(|id| self.grants.get(*id).is_some_and(active))
                    .collect();
                held.sort_unstable();
                Box::new(held.into_iter())
            }
        }
    }
}
