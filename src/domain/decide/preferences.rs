//! Mail preferences and the daily digest.

use super::*;
use crate::domain::preferences::MailPreferences;

impl Decision<'_> {
    pub(super) fn set_mail_preferences(&self, user: UserId, preferences: MailPreferences) -> Decided {
        self.may_manage_user(&user)?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user.to_string()));
        }
        if self.state.mail_preferences(&user) == preferences {
            return Ok(Vec::new());
        }
        let MailPreferences { mail, digest_hour } = preferences;
        Ok(vec![Event::MailPreferencesSet { user, mail, digest_hour, at: self.now }])
    }

    /// Today's digest (UTC) for a user who wants one: from their hour on, once a day, and only
    /// when it lists something and they have an address (else nothing is written, and a later
    /// pass that day may find something).
    pub(super) fn send_digest(&self, user: UserId) -> Decided {
        self.state.digest_due(&user, self.now)?;
        if !self.state.digest_has_news(self.workflow, &user, self.now) {
            return Ok(Vec::new());
        }
        Ok(vec![Event::DigestSent { user, day: self.now.date_naive(), at: self.now }])
    }
}
