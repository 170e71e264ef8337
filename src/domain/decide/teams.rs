//! Teams and their members.

use super::*;

impl Decision<'_> {
    pub(super) fn create_team(&self, id: TeamId, title: String) -> Decided {
        self.require_admin("create teams")?;
        if self.state.team(&id).is_some() {
            return Err(DomainError::AlreadyExists(format!("team \"{id}\"")));
        }
        Ok(vec![Event::TeamCreated { team: id, title, by: self.actor.clone(), at: self.now }])
    }

    /// Changing who is in a team hands out or takes away every role the team holds, so it needs
    /// authority over each of them (admins have it; a team holding nothing is theirs alone).
    pub(super) fn require_team_authority(&self, team: &str) -> Result<(), DomainError> {
        if self.actor_is_admin() {
            return Ok(());
        }
        let subject = Subject::Team(TeamId::known(team));
        let held: Vec<(RoleId, ScopeId)> = self
            .state
            .grants()
            .filter(|g| g.subject == subject && g.gives_at(self.now))
            .map(|g| (g.role.clone(), g.scope.clone()))
            .collect();
        if held.is_empty() {
            return Err(DomainError::Forbidden("only administrators manage a team that holds no role".to_string()));
        }
        for (role, scope) in held {
            self.require_authority(&role, &scope, &subject, Action::Approve)?;
        }
        Ok(())
    }

    pub(super) fn add_team_member(&self, team: TeamId, user: UserId) -> Decided {
        let known = self.state.team(&team).ok_or_else(|| DomainError::NotFound(format!("team \"{team}\"")))?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user.into()));
        }
        if known.members.contains(&user) {
            return Err(DomainError::AlreadyExists(format!("user \"{user}\" in team \"{team}\"")));
        }
        self.refuse_own_benefit(&Subject::User(user.clone()))?;
        self.refuse_own_benefit(&Subject::Team(team.clone()))?;
        self.require_team_authority(&team)?;
        let team_roles = self.state.roles_held(&Subject::Team(team.clone()), self.now);
        self.refuse_incompatible_sets(&team_roles, &self.state.roles_held(&Subject::User(user.clone()), self.now))?;
        Ok(vec![Event::TeamMemberAdded { team, user, by: self.actor.clone(), at: self.now }])
    }

    pub(super) fn remove_team_member(&self, team: TeamId, user: UserId) -> Decided {
        let known = self.state.team(&team).ok_or_else(|| DomainError::NotFound(format!("team \"{team}\"")))?;
        if !known.members.contains(&user) {
            return Err(DomainError::NotFound(format!("user \"{user}\" in team \"{team}\"")));
        }
        // Leaving a team is always allowed.
        if !self.actor.is_user(&user) {
            self.require_team_authority(&team)?;
        }
        Ok(vec![Event::TeamMemberRemoved { team, user, by: self.actor.clone(), at: self.now }])
    }
}
