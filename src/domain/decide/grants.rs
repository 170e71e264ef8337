//! Grants: ending notices, direct assignment, revocation, expiry.

use super::*;

impl Decision<'_> {
    /// Once per grant, when its end is within the notice period.
    pub(super) fn warn_grant_ending(&self, id: GrantId) -> Decided {
        let grant = self.state.grant(&id).ok_or_else(|| DomainError::NotFound(format!("grant {id}")))?;
        if grant.status != GrantStatus::Active || grant.ends_at.is_some_and(|end| end <= self.now) {
            return Err(DomainError::NotActive);
        }
        if grant.ending_notice_at.is_some() {
            return Err(DomainError::AlreadyExists(format!("the ending notice of grant {id}")));
        }
        let Some(ends_at) = grant.ends_at else {
            return Err(DomainError::Invalid("the grant has no end".to_string()));
        };
        let due = time::before(ends_at, GRANT_ENDING_NOTICE);
        if self.now < due {
            return Err(DomainError::NotDue(due));
        }
        Ok(vec![Event::GrantEndingSoon { grant: id, ends_at, at: self.now }])
    }

    pub(super) fn assign_role(
        &self,
        subject: Subject,
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
        starts_at: Option<DateTime<Utc>>,
    ) -> Decided {
        let (role, scope) = self.holdable(&role, &scope)?;
        match &subject {
            Subject::User(user) if self.state.user(user).is_none() => {
                return Err(DomainError::UnknownUser(user.to_string()))
            }
            Subject::Team(team) if self.state.team(team).is_none() => {
                return Err(DomainError::UnknownTeam(team.to_string()))
            }
            Subject::Team(_) if is_builtin_role(&role.id) => {
                return Err(DomainError::Forbidden(format!("teams never hold \"{}\"", role.id)))
            }
            _ => {}
        }
        self.refuse_own_benefit(&subject)?;
        let authority = self.require_authority(&role.id, &scope.id, &subject, Action::Approve)?;
        if role.locked {
            return Err(DomainError::RoleLocked(role.id.clone()));
        }
        self.refuse_skipping_stages(role, &scope.kind)?;
        let start = self.later_start(starts_at)?.unwrap_or(self.now);
        self.refuse_held(&subject, &role.id, &scope.id, start)?;
        self.refuse_incompatible(&subject, &role.id)?;
        let ends_at = self.grant_end_from(role, duration, start)?;
        let mut granted = self.grant_from(subject, role, &scope.id, GrantOrigin::Assignment { reason }, start, ends_at);
        if let Event::RoleGranted { on_behalf_of, .. } = &mut granted {
            *on_behalf_of = authority.on_behalf_of().cloned();
        }
        Ok(vec![granted])
    }

    pub(super) fn revoke(&self, id: GrantId, reason: String) -> Decided {
        let grant = self.state.grant(&id).ok_or_else(|| DomainError::NotFound(format!("grant {id}")))?;
        // Who may revoke is judged first, so that a grant's state is told only to those who may see it.
        let holder = matches!(&grant.subject, Subject::User(user) if self.actor.is_user(user));
        let on_behalf_of = if holder {
            None
        } else {
            self.require_authority(&grant.role, &grant.scope, &grant.subject, Action::Revoke)?.on_behalf_of().cloned()
        };
        if !grant.gives_at(self.now) {
            return Err(DomainError::NotActive);
        }
        Ok(vec![Event::GrantRevoked { grant: id, by: self.actor.clone(), reason, at: self.now, on_behalf_of }])
    }

    pub(super) fn expire_grant(&self, id: GrantId) -> Decided {
        let grant = self.state.grant(&id).ok_or_else(|| DomainError::NotFound(format!("grant {id}")))?;
        if grant.status != GrantStatus::Active {
            return Err(DomainError::NotActive);
        }
        match grant.ends_at {
            None => Err(DomainError::Invalid("the grant has no end".to_string())),
            Some(end) if self.now < end => Err(DomainError::NotDue(end)),
            Some(_) => Ok(vec![Event::GrantExpired { grant: id, at: self.now }]),
        }
    }
}
