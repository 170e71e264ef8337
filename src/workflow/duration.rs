//! Durations as operators write them: ISO 8601 (`P30D`, `PT12H`, `P1DT2H`, `P2W`) or short
//! (`30d`, `12h`, `15m`, `45s`, `2w`). Years and months are refused: they have no fixed length.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A whole number of seconds, always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

impl Duration {
    pub fn from_seconds(seconds: i64) -> Option<Duration> {
        (seconds > 0).then_some(Duration { seconds })
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    /// Whether anything may last this long: at most [`Duration::LONGEST`].
    pub fn is_within_limit(self) -> bool {
        self <= Duration::LONGEST
    }

    /// The longest anything may last (a grant, a token, a time-to-live): 100 years of 365.25 days.
    /// Longer durations parse (they are well-formed), and are refused where they are used.
    pub const LONGEST: Duration = Duration { seconds: 36_525 * DAY };
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let seconds = match trimmed.strip_prefix('P') {
            Some(iso) => parse_iso(iso),
            None => parse_short(trimmed),
        }
        .ok_or_else(|| {
            format!("bad duration \"{text}\" (use ISO 8601 like P30D, PT12H, P1DT2H or short like 30d, 12h, 15m)")
        })?;
        Duration::from_seconds(seconds).ok_or_else(|| format!("duration \"{text}\" must be longer than zero"))
    }
}

/// `[nW][nD][T[nH][nM][nS]]`, everything after the leading `P`.
fn parse_iso(body: &str) -> Option<i64> {
    let (date, time) = match body.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut total = sum_components(date, &[('W', WEEK), ('D', DAY)])?;
    if let Some(time) = time {
        total = total.checked_add(sum_components(time, &[('H', HOUR), ('M', MINUTE), ('S', 1)])?)?;
    }
    (!body.is_empty()).then_some(total)
}

/// Numbers each followed by a unit letter, units in the given order, each at most once.
fn sum_components(text: &str, units: &[(char, i64)]) -> Option<i64> {
    let mut total: i64 = 0;
    let mut remaining_units = units;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let position = remaining_units.iter().position(|(unit, _)| *unit == c)?;
        let value: i64 = digits.parse().ok()?;
        total = total.checked_add(value.checked_mul(remaining_units[position].1)?)?;
        remaining_units = &remaining_units[position + 1..];
        digits.clear();
    }
    digits.is_empty().then_some(total)
}

fn parse_short(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let factor = match unit {
        'w' => WEEK,
        'd' => DAY,
        'h' => HOUR,
        'm' => MINUTE,
        's' => 1,
        _ => return None,
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    number.parse::<i64>().ok()?.checked_mul(factor)
}

/// Prints the ISO form, e.g. `P1DT2H`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds / DAY;
        let rest = self.seconds % DAY;
        write!(f, "P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if rest > 0 {
            write!(f, "T")?;
            for (value, unit) in [(rest / HOUR, 'H'), (rest % HOUR / MINUTE, 'M'), (rest % MINUTE, 'S')] {
                if value > 0 {
                    write!(f, "{value}{unit}")?;
                }
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_and_short_forms() {
        let cases = [
            ("P30D", 30 * DAY),
            ("PT12H", 12 * HOUR),
            ("P1DT2H", DAY + 2 * HOUR),
            ("PT1H30M5S", HOUR + 30 * MINUTE + 5),
            ("P2W", 2 * WEEK),
            ("30d", 30 * DAY),
            ("12h", 12 * HOUR),
            ("15m", 15 * MINUTE),
            ("2w", 2 * WEEK),
        ];
        for (text, seconds) in cases {
            assert_eq!(text.parse::<Duration>().map(Duration::seconds), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_durations() {
        for text in ["", "P", "PT", "P1Y", "P1M", "30", "d", "1.5h", "P1H", "PT1D", "P0D", "0d", "-3d", "P1D2D"] {
            assert!(text.parse::<Duration>().is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn displays_as_iso_and_round_trips() {
        for text in ["P30D", "PT12H", "P1DT2H", "PT1H30M5S"] {
            let duration: Duration = text.parse().unwrap();
            assert_eq!(duration.to_string(), text);
        }
    }
}
