//! The roles a login token carries.

use super::*;

impl Decision<'_> {
    pub(super) fn sync_token_roles(
        &self,
        user: UserId,
        claims: Vec<String>,
        issued_at: Option<DateTime<Utc>>,
    ) -> Decided {
        self.may_manage_user(&user)?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user.into()));
        }
        let newest = self.state.token_roles_issued_at(&user);
        if let (Some(issued_at), Some(newest)) = (issued_at, newest) {
            // An older token never undoes what a later one did.
            if issued_at < newest {
                return Ok(Vec::new());
            }
        }
        let subject = Subject::User(user.clone());
        let carried: Vec<(&Role, ScopeId)> = claims
            .iter()
            .filter_map(|claim| {
                let (role, scope) = claim.split_once('@').unwrap_or((claim, GLOBAL));
                let (role, scope) = self.holdable(role, scope).ok()?;
                role.token_grantable.then(|| (role, scope.id.clone()))
            })
            .collect();
        let from_token: Vec<&Grant> = self
            .state
            .grants()
            .filter(|g| g.subject == subject && g.origin == GrantOrigin::Token && g.gives_at(self.now))
            .collect();
        let is_carried = |g: &&Grant| carried.iter().any(|(r, s)| r.id == g.role && *s == g.scope);
        let revocations = from_token.iter().filter(|g| !is_carried(g)).map(|g| Event::GrantRevoked {
            grant: g.id,
            by: self.actor.clone(),
            reason: "no longer carried by the login token".to_string(),
            at: self.now,
            on_behalf_of: None,
        });
        let mut events: Vec<Event> = revocations.collect();
        let mut held = self.state.roles_held(&subject, self.now);
        for (index, (role, scope)) in carried.iter().enumerate() {
            // Held already (from a token, by default, by assignment or through a team): a second
            // grant would only duplicate it.
            let already = self.state.subject_holds(&subject, &role.id, scope, self.now)
                || carried[..index].iter().any(|(r, s)| r.id == role.id && s == scope);
            if !already {
                // A claim incompatible with a role held (or claimed before it) is ignored, like
                // any claim that cannot be honoured.
                let adding = role_closure(self.state.roles(), &role.id);
                if self.refuse_incompatible_sets(&adding, &held).is_err() {
                    continue;
                }
                held.extend(adding);
                let ends_at = self.grant_end(role, None)?;
                events.push(self.grant(subject.clone(), role, scope, GrantOrigin::Token, ends_at));
            }
        }
        if let Some(issued_at) = issued_at.filter(|at| !events.is_empty() && newest.is_none_or(|newest| *at > newest)) {
            events.push(Event::TokenRolesSynced { user, issued_at, at: self.now });
        }
        Ok(events)
    }
}
