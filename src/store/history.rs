//! Moments of the log's history, and each grant's validity in log terms: the position and recorded
//! time of the event that granted it and of the one that ended it. "Who held what at moment M" is
//! then a look at these marks instead of a replay up to M. The domain stays free of positions.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    ops::Bound,
    str::FromStr,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::RecordedEvent;
use crate::domain::{Event, GrantId, Subject};

/// A moment of the log's history: a log position (everything up to and including that event) or
/// an RFC 3339 time (everything recorded at or before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Position(i64),
    Time(DateTime<Utc>),
}

impl Moment {
    /// Whether an event at `position`, recorded at `recorded_at`, had happened by this moment.
    pub fn reached_by(&self, position: i64, recorded_at: DateTime<Utc>) -> bool {
        match self {
            Moment::Position(moment) => position <= *moment,
            Moment::Time(moment) => recorded_at <= *moment,
        }
    }
}

impl FromStr for Moment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(position) = text.parse::<i64>() {
            return if position >= 0 {
                Ok(Moment::Position(position))
            } else {
                Err("a log position is not negative".into())
            };
        }
        DateTime::parse_from_rfc3339(text)
            .map(|time| Moment::Time(time.with_timezone(&Utc)))
            .map_err(|_| format!("{text:?} is neither a log position nor an RFC 3339 time"))
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Moment::Position(position) => write!(f, "position {position}"),
            Moment::Time(time) => f.write_str(&super::event::format_time(time)),
        }
    }
}

impl<'de> Deserialize<'de> for Moment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Where an event stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Validity {
    granted: Mark,
    /// The revocation or expiry; the first one counts, as in the state.
    ended: Option<Mark>,
}

/// Every grant's validity as the log recorded it, kept beside the state by the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantHistory {
    /// In id order, the order in which lists of grants are paged.
    grants: BTreeMap<GrantId, Validity>,
    /// Each holder's grants, so that "who held what" for one user or team reads only theirs.
    by_subject: HashMap<Subject, Vec<GrantId>>,
}

impl GrantHistory {
    /// Notes the grant events among the log's events, in log order.
    pub(super) fn record(&mut self, event: &Event, recorded: &RecordedEvent) {
        match event {
            Event::RoleGranted { grant, subject, .. } => {
                self.grants.insert(*grant, Validity { granted: Mark::of(recorded), ended: None });
                self.by_subject.entry(subject.clone()).or_default().push(*grant);
            }
            Event::GrantRevoked { grant, .. } | Event::GrantExpired { grant, .. } => {
                if let Some(validity) = self.grants.get_mut(grant) {
                    validity.ended.get_or_insert(Mark::of(recorded));
                }
            }
            _ => {}
        }
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = (&GrantId, &Validity)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_positions_or_rfc3339_times() {
        assert_eq!("42".parse::<Moment>(), Ok(Moment::Position(42)));
        let time = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!("2026-01-02T04:04:05.123456+01:00".parse::<Moment>(), Ok(Moment::Time(time)));
        assert!("-1".parse::<Moment>().is_err());
        assert!("yesterday".parse::<Moment>().is_err());
        assert!(Moment::Position(3).reached_by(3, time) && !Moment::Position(3).reached_by(4, time));
        assert!(
            Moment::Time(time).reached_by(99, time)
                && !Moment::Time(time).reached_by(1, time + chrono::Duration::microseconds(1))
        );
    }
}
