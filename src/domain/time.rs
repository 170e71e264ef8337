//! The domain's time arithmetic, checked: no duration or time a caller sends can overflow it.

use crate::workflow::Duration;
use chrono::{DateTime, TimeDelta, Utc};

/// The last moment any time may name: the end of 9999-12-31 (UTC).
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 999_999_000).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When something that lasts `duration` from `start` ends; `None` when the duration is longer
/// than [`Duration::LONGEST`] or the end would fall after 9999-12-31.
pub fn end_after(start: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
    if !duration.is_within_limit() {
        return None;
    }
    let end = start.checked_add_signed(TimeDelta::try_seconds(duration.seconds())?)?;
    (end <= latest()).then_some(end)
}

/// `time` moved back by `delta`, or the earliest time when that would underflow.
pub fn before(time: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    time.checked_sub_signed(delta).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_checked_against_the_limit_and_the_last_day() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let day = Duration::from_seconds(86_400).unwrap();
        assert_eq!(end_after(now, day), Some(now + TimeDelta::days(1)));
        assert!(end_after(now, Duration::LONGEST).is_some());
        assert_eq!(end_after(now, Duration::from_seconds(Duration::LONGEST.seconds() + 1).unwrap()), None);
        assert_eq!(end_after(now, Duration::from_seconds(i64::MAX).unwrap()), None);
        assert_eq!(end_after(latest(), day), None);
        assert_eq!(end_after(DateTime::<Utc>::MAX_UTC, day), None);
        assert_eq!(before(DateTime::<Utc>::MIN_UTC, TimeDelta::days(14)), DateTime::<Utc>::MIN_UTC);
    }
}
