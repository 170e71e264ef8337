//! What a person's daily digest lists, and the mail preferences it depends on.

use super::*;
use crate::domain::error::DomainError;
use crate::domain::{time, GRANT_ENDING_NOTICE};
use chrono::NaiveDate;

/// What one person's digest lists at a moment: what their `daily` preference keeps out of the
/// mail as it happens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestItems {
    /// Pending requests they may decide by a rule, an escalation or a delegation (not as admins
    /// only: those are not mailed either), oldest first.
    pub requests: Vec<RequestId>,
    /// Undecided items of open reviews listing them as a reviewer: (review, item).
    pub review_items: Vec<(ReviewId, GrantId)>,
    /// Their grants (and their teams') ending within the 14 days' notice.
    pub grants_ending: Vec<GrantId>,
}

impl DigestItems {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.review_items.is_empty() && self.grants_ending.is_empty()
    }
}

impl State {
    /// A user's preferences: `each`, at hour 0, unless they set others.
    pub fn mail_preferences(&self, user: &str) -> MailPreferences {
        self.mail_preferences.get(user).copied().unwrap_or_default()
    }

    /// Whether the user gets a daily digest in place of the mail that asks them to act.
    pub fn prefers_digest(&self, user: &str) -> bool {
        self.mail_preferences(user).daily()
    }

    /// The people who want a daily digest.
    pub fn digest_readers(&self) -> impl Iterator<Item = &UserId> {
        self.mail_preferences.iter().filter(|(_, preferences)| preferences.daily()).map(|(user, _)| user)
    }

    /// The UTC day of the user's last digest.
    pub fn digest_sent_on(&self, user: &str) -> Option<NaiveDate> {
        self.digest_sent_on.get(user).copied()
    }

    /// Whether the user's digest of today (UTC) is due at `now`: they want one, none was sent
    /// for today (or a later day), and their hour has come.
    pub fn digest_due(&self, user: &str, now: DateTime<Utc>) -> Result<(), DomainError> {
        let preferences = self.mail_preferences(user);
        if !preferences.daily() {
            return Err(DomainError::Invalid(format!("{user} gets each mail as it happens, not a digest")));
        }
        let day = now.date_naive();
        // Days only move forward: after the digest of a day, none of that day or an earlier one.
        if self.digest_sent_on(user).is_some_and(|sent| sent >= day) {
            return Err(DomainError::AlreadyExists(format!("the digest of {user} for {day}")));
        }
        let due = day
            .and_hms_opt(preferences.digest_hour.into(), 0, 0)
            .ok_or_else(|| DomainError::Invalid(format!("no hour {} in a day", preferences.digest_hour)))?
            .and_utc();
        if now < due {
            return Err(DomainError::NotDue(due));
        }
        Ok(())
    }

    /// Whether a digest at `now` would reach the user (they have an address) and list something.
    pub fn digest_has_news(&self, workflow: &Workflow, user: &str, now: DateTime<Utc>) -> bool {
        self.users.get(user).is_some_and(|u| u.email.is_some()) && !self.digest_items(workflow, user, now).is_empty()
    }

    /// What the user's digest would list at `now`.
    pub fn digest_items(&self, workflow: &Workflow, user: &str, now: DateTime<Utc>) -> DigestItems {
        let actor = Actor::User(UserId::known(user));
        let mut requests: Vec<&Request> = self
            .requests
            .values()
            .filter(|r| r.is_pending() && now < r.expires_at && !r.concerns(user))
            .filter(|r| {
                self.request_authority(workflow, &actor, r, Action::Approve, now)
                    .is_some_and(|authority| authority != Authority::Admin)
            })
            .collect();
        requests.sort_by_key(|r| r.created_at);
        let review_items = self
            .reviews
            .values()
            .filter(|review| review.is_open())
            .flat_map(|review| {
                review
                    .items
                    .values()
                    .filter(|item| item.decision.is_none() && item.is_reviewer(user))
                    .map(|item| (review.id, item.grant))
            })
            .collect();
        let holds = |subject: &Subject| match subject {
            Subject::User(holder) => holder == user,
            Subject::Team(team) => self.teams.get(team).is_some_and(|t| t.members.contains(user)),
        };
        let grants_ending = self
            .grants
            .values()
            .filter(|g| g.status == GrantStatus::Active && holds(&g.subject))
            .filter(|g| g.ends_at.is_some_and(|end| now < end && time::before(end, GRANT_ENDING_NOTICE) <= now))
            .map(|g| g.id)
            .collect();
        DigestItems { requests: requests.into_iter().map(|r| r.id).collect(), review_items, grants_ending }
    }
}
