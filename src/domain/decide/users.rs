//! Registering users and keeping their profiles.

use super::*;

impl Decision<'_> {
    pub(super) fn may_manage_user(&self, user: &str) -> Result<(), DomainError> {
        if self.actor.is_user(user) || self.actor_is_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden("only the user themself or an administrator may do this".to_string()))
        }
    }

    pub(super) fn register_user(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
        if self.state.user(&user).is_some() {
            return self.update_profile(user, email, name);
        }
        self.may_manage_user(&user)?;
        self.registered(user, email, name)
    }

    /// An administrator registers someone before their first sign-in: who acts is judged first,
    /// then the id (the same rule as a sign-in's: the command carries it unjudged, so that a
    /// non-administrator learns nothing of it), then whether it is already known.
    pub(super) fn pre_register_user(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
        self.require_admin("register users")?;
        let user = UserId::parse(user.as_str())?;
        if self.state.user(&user).is_some() {
            return Err(DomainError::AlreadyExists(format!("user \"{user}\"")));
        }
        self.registered(user, email, name)
    }

    /// A new user, with the workflow's default roles.
    fn registered(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
        refuse_bad_email(email.as_deref())?;
        let mut events = vec![Event::UserRegistered { user: user.clone(), email, name, at: self.now }];
        for default in &self.workflow.settings.default_roles {
            // A default role on a scope that does not exist (yet) is skipped.
            if let Ok((role, scope)) = self.holdable(&default.role, &default.scope) {
                let ends_at = self.grant_end(role, None)?;
                let subject = Subject::User(user.clone());
                events.push(self.grant(subject, role, &scope.id, GrantOrigin::Default, ends_at));
            }
        }
        Ok(events)
    }

    /// A missing email or name keeps the one known.
    pub(super) fn update_profile(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
        self.may_manage_user(&user)?;
        let known = self.state.user(&user).ok_or_else(|| DomainError::NotFound(format!("user \"{user}\"")))?;
        refuse_bad_email(email.as_deref())?;
        let email = email.or_else(|| known.email.clone());
        let name = name.or_else(|| known.name.clone());
        if email == known.email && name == known.name {
            return Ok(Vec::new());
        }
        Ok(vec![Event::UserProfileChanged { user, email, name, at: self.now }])
    }
}
