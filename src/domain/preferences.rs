//! How a person wants their mail (SPEC "Deciding from the mail, and the daily digest"): each mail
//! as it happens, or one digest a day at an hour of their choosing (UTC) in place of the mail that
//! asks them to act (new requests, reminders, review reminders, grants ending soon).

use super::error::DomainError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailFrequency {
    #[default]
    Each,
    Daily,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailPreferences {
    pub mail: MailFrequency,
    /// The hour (UTC, 0 to 23) from which the day's digest goes out.
    pub digest_hour: u8,
}

impl MailPreferences {
    /// Preferences as a caller gives them (`"each"` or `"daily"`, an hour from 0 to 23).
    pub fn parse(mail: &str, digest_hour: i64) -> Result<MailPreferences, DomainError> {
        let mail = match mail {
            "each" => MailFrequency::Each,
            "daily" => MailFrequency::Daily,
            other => {
                return Err(DomainError::InvalidPreferences(format!(
                    "mail must be \"each\" or \"daily\", not \"{}\"",
                    other.escape_debug()
                )))
            }
        };
        let digest_hour = u8::try_from(digest_hour).ok().filter(|hour| *hour < 24).ok_or_else(|| {
            DomainError::InvalidPreferences(format!(
                "digest_hour must be an hour from 0 to 23 (UTC), not {digest_hour}"
            ))
        })?;
        Ok(MailPreferences { mail, digest_hour })
    }

    pub fn daily(&self) -> bool {
        self.mail == MailFrequency::Daily
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_parse_only_known_frequencies_and_hours_of_a_day() {
        assert_eq!(
            MailPreferences::parse("daily", 23),
            Ok(MailPreferences { mail: MailFrequency::Daily, digest_hour: 23 })
        );
        assert_eq!(MailPreferences::parse("each", 0).map(|p| p.daily()), Ok(false));
        for (mail, hour) in [("weekly", 8), ("Daily", 8), ("", 8), ("daily", 24), ("daily", -1), ("each", i64::MAX)] {
            let refused = MailPreferences::parse(mail, hour).unwrap_err();
            assert_eq!(refused.code(), "invalid_preferences", "{mail} {hour}");
        }
    }
}
