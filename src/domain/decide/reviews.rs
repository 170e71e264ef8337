//! Access reviews: starting one, a reviewer's answer for an item, closing (early, or at the due
//! time by the scheduler) and the half-way reminder.

use super::*;
use crate::domain::review::{OnNoAnswer, Review, ReviewDecision, ReviewDue, ReviewId};

impl Decision<'_> {
    pub(super) fn start_review(
        &self,
        scope: ScopeId,
        roles: Option<Vec<RoleId>>,
        due: ReviewDue,
        on_no_answer: OnNoAnswer,
        title: Option<String>,
    ) -> Decided {
        self.registered_actor()?;
        let scope = self.state.scope(&scope).ok_or_else(|| DomainError::UnknownScope(scope.to_string()))?;
        if let Some(roles) = &roles {
            if roles.is_empty() {
                return Err(DomainError::Invalid("roles, when given, names at least one role".into()));
            }
            if let Some(unknown) = roles.iter().find(|role| self.state.role(role).is_none()) {
                return Err(DomainError::UnknownRole(unknown.clone()));
            }
        }
        let due_at = self.review_due_at(due)?;
        if !self.actor_is_admin() {
            // Authority to revoke every grant the review covers, and each role it names on its scope.
            let mut covered: BTreeSet<(&str, &str)> = self
                .state
                .grants_under_review(&scope.id, roles.as_deref(), self.now)
                .map(|grant| (grant.role.as_str(), grant.scope.as_str()))
                .collect();
            for role in roles.iter().flatten() {
                if self.state.role(role).is_some_and(|r| r.may_be_held_on(&scope.kind)) {
                    covered.insert((role.as_str(), scope.id.as_str()));
                }
            }
            if covered.is_empty() {
                return Err(DomainError::NotADecider { role: "any role".into(), scope: scope.id.to_string() });
            }
            for (role, on) in covered {
                if self.state.authority(self.workflow, self.actor, role, on, Action::Revoke, self.now).is_none() {
                    return Err(DomainError::NotADecider { role: role.to_string(), scope: on.to_string() });
                }
            }
        }
        let title = title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| format!("Review of {}", scope.id));
        Ok(vec![Event::ReviewStarted {
            review: self.ctx.new_id(),
            scope: scope.id.clone(),
            roles,
            title,
            due_at,
            on_no_answer,
            by: self.actor.clone(),
            at: self.now,
            scheduled: false,
        }])
    }

    /// The review the workflow schedules for the scope's kind, by the scheduler, unless one was
    /// started for the scope within `every` (so that two processes start it once).
    pub(super) fn start_scheduled_review(&self, scope: ScopeId) -> Decided {
        if *self.actor != Actor::CommandLine {
            return Err(DomainError::Forbidden("only the scheduler starts scheduled reviews".into()));
        }
        let scope = self.state.scope(&scope).ok_or_else(|| DomainError::UnknownScope(scope.to_string()))?;
        let Some(schedule) = self.workflow.reviews.iter().find(|r| r.kind == scope.kind) else {
            return Err(DomainError::Invalid(format!("the workflow schedules no review of {} scopes", scope.kind)));
        };
        match self.state.next_scheduled_review(&scope.id, schedule.every) {
            Some(next) if next <= self.now => {}
            next => {
                let when = next.map_or_else(|| "never".to_string(), |next| next.to_rfc3339());
                return Err(DomainError::AlreadyExists(format!(
                    "a scheduled review of {} (the next is due {when})",
                    scope.id
                )));
            }
        }
        Ok(vec![Event::ReviewStarted {
            review: self.ctx.new_id(),
            scope: scope.id.clone(),
            roles: None,
            title: format!("Scheduled review of {} ({})", scope.title, scope.id),
            due_at: self.end_after(schedule.due)?,
            on_no_answer: schedule.on_no_answer,
            by: self.actor.clone(),
            at: self.now,
            scheduled: true,
        }])
    }

    /// When a review is due: in the future, at most 100 years away and not past 9999-12-31.
    fn review_due_at(&self, due: ReviewDue) -> Result<DateTime<Utc>, DomainError> {
        let due_at = match due {
            ReviewDue::After(duration) => self.end_after(duration)?,
            ReviewDue::At(at) => {
                let latest = self.end_after(Duration::LONGEST)?;
                if at > latest {
                    return Err(DomainError::InvalidDuration(format!("{at} is more than 100 years away")));
                }
                at
            }
        };
        if due_at <= self.now {
            return Err(DomainError::Invalid("a review is due in the future".into()));
        }
        Ok(due_at)
    }

    fn open_review(&self, id: ReviewId) -> Result<&Review, DomainError> {
        self.state.review(&id).ok_or_else(|| DomainError::NotFound(format!("review {id}")))
    }

    pub(super) fn decide_review_item(
        &self,
        id: ReviewId,
        item: GrantId,
        decision: ReviewDecision,
        reason: String,
    ) -> Decided {
        let review = self.open_review(id)?;
        let entry =
            review.items.get(&item).ok_or_else(|| DomainError::NotFound(format!("item {item} of review {id}")))?;
        let grant = self.state.grant(&item).ok_or_else(|| DomainError::NotFound(format!("grant {item}")))?;
        self.refuse_own_benefit(&grant.subject)?;
        if !self.state.may_review_item(entry, self.actor, self.now) {
            return Err(DomainError::NotAReviewer);
        }
        if !review.is_open() || review.due_at <= self.now {
            return Err(DomainError::ReviewClosed);
        }
        if entry.decision.is_some() {
            return Err(DomainError::AlreadyDecided);
        }
        let authority = self.require_authority(&grant.role, &grant.scope, &grant.subject, Action::Revoke)?;
        let on_behalf_of = authority.on_behalf_of().cloned();
        if !grant.gives_at(self.now) {
            return Err(DomainError::NotActive);
        }
        let decided = Event::ReviewItemDecided {
            review: id,
            item,
            decision,
            reason: reason.clone(),
            by: self.actor.clone(),
            on_behalf_of: on_behalf_of.clone(),
            at: self.now,
        };
        let mut events = vec![decided];
        if decision == ReviewDecision::Revoke {
            let reason = if reason.trim().is_empty() { format!("revoked in review {id}") } else { reason };
            events.push(Event::GrantRevoked {
                grant: item,
                by: self.actor.clone(),
                reason,
                at: self.now,
                on_behalf_of,
            });
        }
        Ok(events)
    }

    /// Closes a review: early by its starter or an admin, or (`scheduled`) once it is due. Items
    /// nobody decided follow `on_no_answer`; those whose grant already ended are left alone.
    pub(super) fn close_review(&self, id: ReviewId, scheduled: bool) -> Decided {
        let review = self.open_review(id)?;
        if !scheduled && review.started_by != *self.actor && !self.actor_is_admin() {
            return Err(DomainError::Forbidden("only its starter or an administrator closes a review".into()));
        }
        if !review.is_open() {
            return Err(DomainError::ReviewClosed);
        }
        if scheduled && self.now < review.due_at {
            return Err(DomainError::NotDue(review.due_at));
        }
        let mut events = vec![Event::ReviewClosed { review: id, by: self.actor.clone(), at: self.now }];
        if review.on_no_answer == OnNoAnswer::Revoke {
            let reason = format!("not reviewed in review {id}");
            let silent = review.items.values().filter(|item| item.decision.is_none());
            let still_given = silent.filter(|item| self.state.grant(&item.grant).is_some_and(|g| g.gives_at(self.now)));
            events.extend(still_given.map(|item| Event::GrantRevoked {
                grant: item.grant,
                by: self.actor.clone(),
                reason: reason.clone(),
                at: self.now,
                on_behalf_of: None,
            }));
        }
        Ok(events)
    }

    /// Once, half-way to the due time, while undecided items remain.
    pub(super) fn remind_reviewers(&self, id: ReviewId) -> Decided {
        let review = self.open_review(id)?;
        if !review.is_open() {
            return Err(DomainError::ReviewClosed);
        }
        if review.reminded_at.is_some() {
            return Err(DomainError::AlreadyExists(format!("the reminder of review {id}")));
        }
        if self.now < review.reminder_due() {
            return Err(DomainError::NotDue(review.reminder_due()));
        }
        if review.decided == review.items.len() {
            return Err(DomainError::Invalid("every item is decided".into()));
        }
        Ok(vec![Event::ReviewersReminded { review: id, at: self.now }])
    }
}
