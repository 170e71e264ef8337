//! Delegations (SPEC "Escalation and delegation"): given by someone who decides by a decision
//! rule, for at most 90 days, to someone else; ended early by the delegator or an admin, or by
//! the scheduler at their end. What a delegate may decide is judged in `State::authority`
//! (`state/authority.rs`), as the delegator's authority at the moment of the decision.

use super::*;
use crate::domain::delegation::{DelegationId, LONGEST_DELEGATION};

impl Decision<'_> {
    pub(super) fn delegate(
        &self,
        to: UserId,
        until: Option<DateTime<Utc>>,
        duration: Option<Duration>,
        scope: Option<ScopeId>,
        reason: String,
    ) -> Decided {
        let Some(from) = self.registered_actor()? else {
            return Err(DomainError::Forbidden("only users delegate".to_string()));
        };
        if self.ctx.is_acting(&to) {
            return Err(DomainError::SelfDelegation);
        }
        if self.state.user(&to).is_none() {
            return Err(DomainError::UnknownUser(to.to_string()));
        }
        if let Some(scope) = &scope {
            if self.state.scope(scope).is_none() {
                return Err(DomainError::UnknownScope(scope.to_string()));
            }
        }
        // Only authority from decision rules is delegated: not admin power, not a delegation.
        if !self.state.decides_somewhere_by_rule(self.workflow, from, self.now) {
            return Err(DomainError::NoAuthorityToDelegate);
        }
        let until = match (until, duration) {
            (Some(until), None) => until,
            (None, Some(duration)) => self.end_after(duration)?,
            _ => return Err(DomainError::Invalid("a delegation needs exactly one end: until".to_string())),
        };
        if until <= self.now {
            return Err(DomainError::UntilInPast(until));
        }
        if until - self.now > LONGEST_DELEGATION {
            return Err(DomainError::DelegationTooLong(until));
        }
        Ok(vec![Event::DelegationGranted {
            delegation: self.ctx.new_id(),
            from: from.clone(),
            to,
            scope,
            reason,
            until,
            at: self.now,
        }])
    }

    /// Early, by the delegator or an admin, while it is in force; at its `until`, by the scheduler.
    pub(super) fn end_delegation(&self, id: DelegationId) -> Decided {
        let delegation = self.state.delegation(&id).ok_or_else(|| DomainError::NotFound(format!("delegation {id}")))?;
        let early = match self.actor {
            Actor::CommandLine if delegation.ended_at.is_some() => return Err(DomainError::NotActive),
            Actor::CommandLine if self.now < delegation.until => return Err(DomainError::NotDue(delegation.until)),
            Actor::CommandLine => false,
            Actor::User(user) => {
                if delegation.from != *user && !self.state.is_admin(user, self.now) {
                    return Err(DomainError::Forbidden(
                        "only the delegator or an administrator ends a delegation".to_string(),
                    ));
                }
                if !delegation.in_force(self.now) {
                    return Err(DomainError::NotActive);
                }
                true
            }
        };
        Ok(vec![Event::DelegationEnded { delegation: id, by: self.actor.clone(), early, at: self.now }])
    }
}
