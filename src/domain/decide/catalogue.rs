//! The role catalogue: custom roles defined, duplicated, edited, deleted.

use super::*;

impl Decision<'_> {
    /// Checks the catalogue as it would be with `role` in place of the role of that id.
    pub(super) fn check_catalogue_with(&self, role: &Role) -> Result<(), DomainError> {
        if role.max_duration.is_some_and(|d| !d.is_within_limit()) {
            return Err(DomainError::InvalidDuration(format!(
                "the max_duration of role \"{}\" is longer than 100 years",
                role.id
            )));
        }
        let mut roles: BTreeMap<RoleId, Role> = self.state.roles().clone();
        roles.insert(role.id.clone(), role.clone());
        check_catalogue(&roles, &self.workflow.kinds, &|r| self.workflow.is_deciding_role(r))
            .map_err(|problem| DomainError::Invalid(problem.message))
    }

    pub(super) fn existing_custom_target(&self, id: &str) -> Result<&Role, DomainError> {
        let role = self.state.role(id).ok_or_else(|| DomainError::NotFound(format!("role \"{id}\"")))?;
        if is_builtin_role(id) {
            return Err(DomainError::Forbidden(format!("the built-in role \"{id}\" cannot be changed")));
        }
        Ok(role)
    }

    pub(super) fn define_role(&self, role: Role) -> Decided {
        self.require_admin("change the role catalogue")?;
        if !is_valid_id(&role.id) {
            return Err(DomainError::Invalid(format!("bad role id \"{}\"", role.id)));
        }
        if self.state.role(&role.id).is_some() || is_builtin_role(&role.id) {
            return Err(DomainError::AlreadyExists(format!("role \"{}\"", role.id)));
        }
        self.check_catalogue_with(&role)?;
        Ok(vec![Event::RoleDefined { role, copied_from: None, by: self.actor.clone(), at: self.now }])
    }

    pub(super) fn duplicate_role(&self, id: RoleId) -> Decided {
        self.require_admin("change the role catalogue")?;
        let original = self.existing_custom_target(&id)?;
        let copy_id = (2..)
            .map(|n| format!("{id}-{n}"))
            .find(|candidate| self.state.role(candidate).is_none())
            .unwrap_or_default();
        let copy = Role { id: copy_id, ..original.clone() };
        self.check_catalogue_with(&copy)?;
        Ok(vec![Event::RoleDefined { role: copy, copied_from: Some(id), by: self.actor.clone(), at: self.now }])
    }

    pub(super) fn edit_role(&self, role: Role) -> Decided {
        self.require_admin("change the role catalogue")?;
        if !self.workflow.settings.roles_editable {
            return Err(DomainError::Forbidden("this workflow does not allow editing roles".to_string()));
        }
        self.existing_custom_target(&role.id)?;
        self.check_catalogue_with(&role)?;
        Ok(vec![Event::RoleEdited { role, by: self.actor.clone(), at: self.now }])
    }

    pub(super) fn delete_role(&self, id: RoleId) -> Decided {
        self.require_admin("change the role catalogue")?;
        self.existing_custom_target(&id)?;
        if self.workflow.refers_to(&id) {
            return Err(DomainError::InUse(format!("role \"{id}\" is named by the workflow")));
        }
        if let Some(including) = self.state.roles().values().find(|r| r.includes.contains(&id)) {
            return Err(DomainError::InUse(format!("role \"{id}\" is included by \"{}\"", including.id)));
        }
        let grants: Vec<GrantId> =
            self.state.grants().filter(|g| g.role == id && g.gives_at(self.now)).map(|g| g.id).collect();
        let requests: Vec<RequestId> = self
            .state
            .requests()
            .filter(|r| r.role == id && r.status == RequestStatus::Pending)
            .map(|r| r.id)
            .collect();
        let in_use = !grants.is_empty() || !requests.is_empty();
        if in_use && self.workflow.settings.role_delete == RoleDeletePolicy::Refuse {
            return Err(DomainError::InUse(format!("role \"{id}\" is held or requested")));
        }
        let reason = format!("role \"{id}\" deleted");
        let by = self.actor.clone();
        let revocations = grants.into_iter().map(|grant| Event::GrantRevoked {
            grant,
            by: by.clone(),
            reason: reason.clone(),
            at: self.now,
            on_behalf_of: None,
        });
        let rejections = requests.into_iter().map(|request| Event::RequestRejected {
            request,
            by: by.clone(),
            reason: reason.clone(),
            at: self.now,
            on_behalf_of: None,
        });
        let mut events: Vec<Event> = revocations.chain(rejections).collect();
        events.push(Event::RoleDeleted { role: id, by, at: self.now });
        Ok(events)
    }
}
