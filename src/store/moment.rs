//! Moments of the log's history: a position or a recorded time.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

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
