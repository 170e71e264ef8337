//! Creating and deleting scopes.

use super::*;

impl Decision<'_> {
    pub(super) fn create_scope(
        &self,
        id: ScopeId,
        kind: String,
        parents: Vec<ScopeId>,
        title: String,
        mailbox: Option<String>,
    ) -> Decided {
        let creator = self.registered_actor()?;
        if self.state.scope(&id).is_some() {
            return Err(DomainError::AlreadyExists(format!("scope \"{id}\"")));
        }
        let scope_kind = self
            .workflow
            .kind(&kind)
            .filter(|k| k.id != GLOBAL)
            .ok_or_else(|| DomainError::Invalid(format!("unknown scope kind \"{kind}\"")))?;
        if title.trim().is_empty() {
            return Err(DomainError::Invalid("a scope needs a title".to_string()));
        }
        if let Some(why) = mailbox.as_deref().and_then(mail_address_problem) {
            return Err(DomainError::Invalid(format!("bad scope mailbox: {why}")));
        }
        let parents = if parents.is_empty() { vec![ScopeId::global()] } else { parents };
        for (index, parent) in parents.iter().enumerate() {
            if parents[..index].contains(parent) {
                return Err(DomainError::Invalid(format!("parent \"{parent}\" named twice")));
            }
            // The new scope does not exist yet, so naming itself is the only possible cycle.
            if *parent == id {
                return Err(DomainError::Invalid(format!("scope \"{id}\" cannot be its own parent")));
            }
            let parent_scope = self.state.scope(parent).ok_or_else(|| DomainError::UnknownScope(parent.to_string()))?;
            if !scope_kind.parents.contains(&parent_scope.kind) {
                return Err(DomainError::Invalid(format!(
                    "a {kind} cannot sit under a {} (allowed: {})",
                    parent_scope.kind,
                    scope_kind.parents.join(", ")
                )));
            }
            if let Some(user) = creator {
                if !self.actor_is_admin() && !self.state.check(user, "scope.create", parent, self.now).allowed {
                    return Err(DomainError::Forbidden(format!(
                        "creating a scope under \"{parent}\" needs scope.create there"
                    )));
                }
            }
        }
        let mut events = vec![Event::ScopeCreated {
            scope: id.clone(),
            kind: kind.clone(),
            parents,
            title,
            mailbox,
            by: self.actor.clone(),
            at: self.now,
        }];
        if let Some(user) = creator {
            let creator_roles = self.workflow.settings.creator_roles.get(&kind).into_iter().flatten();
            for role in creator_roles.filter_map(|r| self.state.role(r)) {
                let ends_at = self.grant_end(role, None)?;
                events.push(self.grant(Subject::User(user.clone()), role, &id, GrantOrigin::Creator, ends_at));
            }
        }
        // A default role on this scope (UCP's Scheduler on /Shared) was skipped for everyone
        // registered before the scope existed: they receive it now, as new users will.
        let defaults = self.workflow.settings.default_roles.iter().filter(|d| d.scope == id);
        for role in defaults.filter_map(|d| self.state.role(&d.role)).filter(|r| r.may_be_held_on(&kind)) {
            let ends_at = self.grant_end(role, None)?;
            for user in self.state.users() {
                let subject = Subject::User(user.id.clone());
                let given = events.iter().any(
                    |e| matches!(e, Event::RoleGranted { subject: s, role: r, .. } if *s == subject && *r == role.id),
                );
                if !given {
                    events.push(self.grant(subject, role, &id, GrantOrigin::Default, ends_at));
                }
            }
        }
        Ok(events)
    }

    pub(super) fn delete_scope(&self, id: ScopeId) -> Decided {
        self.require_admin("delete scopes")?;
        if self.state.scope(&id).is_none() {
            return Err(DomainError::NotFound(format!("scope \"{id}\"")));
        }
        if id == GLOBAL {
            return Err(DomainError::Forbidden("the global scope cannot be deleted".to_string()));
        }
        if !self.state.children_of(&id).is_empty() {
            return Err(DomainError::InUse(format!("scope \"{id}\" has scopes below it")));
        }
        if self.state.grants_on(&id).any(|g| g.gives_at(self.now)) {
            return Err(DomainError::InUse(format!("scope \"{id}\" has grants")));
        }
        if self.state.requests().any(|r| r.is_pending() && r.scope == id) {
            return Err(DomainError::InUse(format!("scope \"{id}\" has pending requests")));
        }
        Ok(vec![Event::ScopeDeleted { scope: id, by: self.actor.clone(), at: self.now }])
    }
}
