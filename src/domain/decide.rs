//! Deciding commands: every rule of SPEC.md's "Who may do what" and "Request lifecycle".

use super::command::Command;
use super::error::DomainError;
use super::event::Event;
use super::request::{Grant, GrantOrigin, GrantStatus, Request, RequestStatus};
use super::state::{Scope, State};
use super::time;
use super::types::{Actor, Context, GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use super::user_id::parse_user_id;
use crate::workflow::{
    check_catalogue, is_builtin_role, is_valid_id, is_valid_scope_id, mail_address_problem, role_closure, Action,
    Duration, Role, RoleDeletePolicy, RoleId, Stage, Workflow, GLOBAL,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Decides a command against the state: the events it causes, or why it is refused.
pub fn decide(state: &State, workflow: &Workflow, ctx: &Context, command: Command) -> Result<Vec<Event>, DomainError> {
    let decision = Decision { state, workflow, ctx, now: ctx.now, actor: &ctx.actor };
    match command {
        Command::RegisterUser { user, email, name } => decision.register_user(user, email, name),
        Command::UpdateProfile { user, email, name } => decision.update_profile(user, email, name),
        Command::CreateScope { id, kind, parents, title, mailbox } => {
            decision.create_scope(id, kind, parents, title, mailbox)
        }
        Command::DeleteScope { id } => decision.delete_scope(id),
        Command::RequestRole { role, scope, reason, duration } => decision.request_role(role, scope, reason, duration),
        Command::Approve { request, comment } => decision.approve(request, comment),
        Command::Reject { request, reason } => decision.reject(request, reason),
        Command::Cancel { request } => decision.cancel(request),
        Command::AssignRole { subject, role, scope, reason, duration } => {
            decision.assign_role(subject, role, scope, reason, duration)
        }
        Command::Revoke { grant, reason } => decision.revoke(grant, reason),
        Command::ExpireRequest { request } => decision.expire_request(request),
        Command::ExpireGrant { grant } => decision.expire_grant(grant),
        Command::RemindDeciders { request } => decision.remind_deciders(request),
        Command::WarnGrantEnding { grant } => decision.warn_grant_ending(grant),
        Command::DefineRole { role } => decision.define_role(role),
        Command::DuplicateRole { role } => decision.duplicate_role(role),
        Command::EditRole { role } => decision.edit_role(role),
        Command::DeleteRole { role } => decision.delete_role(role),
        Command::CreateTeam { id, title } => decision.create_team(id, title),
        Command::AddTeamMember { team, user } => decision.add_team_member(team, user),
        Command::RemoveTeamMember { team, user } => decision.remove_team_member(team, user),
        Command::SyncTokenRoles { user, claims, issued_at } => decision.sync_token_roles(user, claims, issued_at),
        Command::CreateApiToken { user, name, secret_hash, expires_in } => {
            decision.create_api_token(user, name, secret_hash, expires_in)
        }
        Command::RevokeApiToken { token } => decision.revoke_api_token(token),
    }
}

struct Decision<'a> {
    state: &'a State,
    workflow: &'a Workflow,
    ctx: &'a Context,
    /// Shorthands for `ctx.now` and `ctx.actor`.
    now: DateTime<Utc>,
    actor: &'a Actor,
}

type Decided = Result<Vec<Event>, DomainError>;

/// A user's email, when one is given, must be a usable mail address.
fn refuse_bad_email(email: Option<&str>) -> Result<(), DomainError> {
    match email.and_then(mail_address_problem) {
        Some(why) => Err(DomainError::Invalid(format!("bad email: {why}"))),
        None => Ok(()),
    }
}

/// How long before its end a grant's holder is told (SPEC: 14 days).
pub const GRANT_ENDING_NOTICE: chrono::Duration = chrono::Duration::days(14);

impl Decision<'_> {
    // ----- who is acting -----

    fn actor_is_admin(&self) -> bool {
        match self.actor {
            Actor::CommandLine => true,
            Actor::User(user) => self.state.is_admin(user, self.now),
        }
    }

    fn require_admin(&self, what: &str) -> Result<(), DomainError> {
        if self.actor_is_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("only administrators may {what}")))
        }
    }

    /// The acting user, who must be registered; `None` for the command line.
    fn registered_actor(&self) -> Result<Option<&str>, DomainError> {
        match self.actor {
            Actor::CommandLine => Ok(None),
            Actor::User(user) if self.state.user(user).is_some() => Ok(Some(user)),
            Actor::User(user) => Err(DomainError::UnknownUser(user.clone())),
        }
    }

    /// Nobody decides to their own benefit: not for themselves, not for a team they belong to.
    /// Judged for every person acting: the actor and the creator of the API token they use.
    fn refuse_own_benefit(&self, subject: &Subject) -> Result<(), DomainError> {
        let own = match subject {
            Subject::User(user) => self.ctx.is_acting(user),
            Subject::Team(team) => {
                self.state.team(team).is_some_and(|t| self.ctx.acting_users().any(|acting| t.members.contains(acting)))
            }
        };
        if own {
            Err(DomainError::SelfApproval)
        } else {
            Ok(())
        }
    }

    fn require_authority(&self, role: &str, scope: &str, action: Action) -> Result<(), DomainError> {
        match self.state.authority(self.workflow, self.actor, role, scope, action, self.now) {
            Some(_) => Ok(()),
            None => Err(DomainError::NotADecider { role: role.to_string(), scope: scope.to_string() }),
        }
    }

    // ----- roles, scopes, grants -----

    /// The role and scope, provided the role may be held on that kind of scope.
    fn holdable(&self, role: &str, scope: &str) -> Result<(&Role, &Scope), DomainError> {
        let role = self.state.role(role).ok_or_else(|| DomainError::UnknownRole(role.to_string()))?;
        let scope = self.state.scope(scope).ok_or_else(|| DomainError::UnknownScope(scope.to_string()))?;
        if role.may_be_held_on(&scope.kind) {
            Ok((role, scope))
        } else {
            Err(DomainError::WrongScopeKind { role: role.id.clone(), kind: scope.kind.clone() })
        }
    }

    /// The longest a grant of the role may last: the role's and the workflow's limits.
    fn max_duration(&self, role: &Role) -> Option<Duration> {
        match (role.max_duration, self.workflow.settings.max_grant_duration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When a grant starting now ends: the wanted duration, else the default, never past the maximum.
    fn grant_end(&self, role: &Role, wanted: Option<Duration>) -> Result<Option<DateTime<Utc>>, DomainError> {
        if let Some(wanted) = wanted {
            self.end_after(wanted)?;
        }
        let max = self.max_duration(role);
        let duration = match (wanted, max) {
            (Some(wanted), Some(max)) if wanted > max => {
                return Err(DomainError::DurationTooLong { wanted: wanted.to_string(), max: max.to_string() })
            }
            (Some(wanted), _) => Some(wanted),
            (None, max) => match (self.workflow.settings.default_grant_duration, max) {
                (Some(default), Some(max)) => Some(default.min(max)),
                (default, max) => default.or(max),
            },
        };
        duration.map(|d| self.end_after(d)).transpose()
    }

    /// When something lasting `duration` from now ends: refused when over 100 years or past 9999-12-31.
    fn end_after(&self, duration: Duration) -> Result<DateTime<Utc>, DomainError> {
        time::end_after(self.now, duration).ok_or_else(|| {
            DomainError::InvalidDuration(format!(
                "a duration of {duration} is longer than 100 years or ends after 9999-12-31"
            ))
        })
    }

    /// Nobody holds both roles of an incompatible pair, however the roles reach them: the role
    /// (with the roles it includes) against what the subject holds — for a team, what the team
    /// holds and what each of its members holds.
    fn refuse_incompatible(&self, subject: &Subject, role: &str) -> Result<(), DomainError> {
        let mut held = self.state.roles_held(subject, self.now);
        if let Subject::Team(team) = subject {
            for member in self.state.team(team).into_iter().flat_map(|t| t.members.iter()) {
                held.extend(self.state.roles_held(&Subject::User(member.clone()), self.now));
            }
        }
        self.refuse_incompatible_sets(&role_closure(self.state.roles(), role), &held)
    }

    fn refuse_incompatible_sets<'r>(
        &self,
        adding: impl IntoIterator<Item = &'r RoleId>,
        held: &BTreeSet<RoleId>,
    ) -> Result<(), DomainError> {
        for role in adding {
            if let Some(other) = self.workflow.incompatible_with(role).find(|other| held.contains(*other)) {
                return Err(DomainError::IncompatibleRole { role: role.clone(), held: other.to_string() });
            }
        }
        Ok(())
    }

    /// A role whose rule asks for more than one approval (stages, or a quorum over one) is not
    /// assigned directly: one decider would skip the approvals a request for it needs.
    fn refuse_skipping_stages(&self, role: &Role, kind: &str) -> Result<(), DomainError> {
        for included in role_closure(self.state.roles(), &role.id) {
            let approvals: u32 = self
                .workflow
                .rule_for(&included, kind)
                .map_or(1, |rule| rule.stages.iter().map(|stage| stage.quorum).sum());
            if approvals > 1 {
                return Err(DomainError::ApprovalsRequired { role: included, approvals });
            }
        }
        Ok(())
    }

    fn refuse_held(&self, subject: &Subject, role: &str, scope: &str) -> Result<(), DomainError> {
        if self.state.subject_holds(subject, role, scope, self.now) {
            Err(DomainError::DuplicateRequest {
                subject: subject.to_string(),
                role: role.to_string(),
                scope: scope.to_string(),
            })
        } else {
            Ok(())
        }
    }

    fn grant(
        &self,
        subject: Subject,
        role: &Role,
        scope: &str,
        origin: GrantOrigin,
        ends_at: Option<DateTime<Utc>>,
    ) -> Event {
        Event::RoleGranted {
            grant: self.ctx.new_id(),
            subject,
            role: role.id.clone(),
            scope: scope.to_string(),
            origin,
            by: self.actor.clone(),
            starts_at: self.now,
            ends_at,
        }
    }

    // ----- users -----

    fn may_manage_user(&self, user: &str) -> Result<(), DomainError> {
        if self.actor.is_user(user) || self.actor_is_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden("only the user themself or an administrator may do this".to_string()))
        }
    }

    fn register_user(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
        parse_user_id(&user)?;
        if self.state.user(&user).is_some() {
            return self.update_profile(user, email, name);
        }
        self.may_manage_user(&user)?;
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
    fn update_profile(&self, user: UserId, email: Option<String>, name: Option<String>) -> Decided {
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

    // ----- scopes -----

    fn create_scope(
        &self,
        id: ScopeId,
        kind: String,
        parents: Vec<ScopeId>,
        title: String,
        mailbox: Option<String>,
    ) -> Decided {
        let creator = self.registered_actor()?;
        if !is_valid_scope_id(&id) {
            return Err(DomainError::Invalid(format!("bad scope id \"{id}\" (letters, digits, -, _ and . only)")));
        }
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
        let parents = if parents.is_empty() { vec![GLOBAL.to_string()] } else { parents };
        for (index, parent) in parents.iter().enumerate() {
            if parents[..index].contains(parent) {
                return Err(DomainError::Invalid(format!("parent \"{parent}\" named twice")));
            }
            // The new scope does not exist yet, so naming itself is the only possible cycle.
            if *parent == id {
                return Err(DomainError::Invalid(format!("scope \"{id}\" cannot be its own parent")));
            }
            let parent_scope = self.state.scope(parent).ok_or_else(|| DomainError::UnknownScope(parent.clone()))?;
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
                events.push(self.grant(Subject::User(user.to_string()), role, &id, GrantOrigin::Creator, ends_at));
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

    fn delete_scope(&self, id: ScopeId) -> Decided {
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

    // ----- requests -----

    fn request_role(&self, role: RoleId, scope: ScopeId, reason: String, duration: Option<Duration>) -> Decided {
        let Some(user) = self.registered_actor()? else {
            return Err(DomainError::Forbidden("only users request roles".to_string()));
        };
        let (role, scope) = self.holdable(&role, &scope)?;
        if !role.requestable {
            return Err(DomainError::NotRequestable(role.id.clone()));
        }
        if role.locked {
            return Err(DomainError::RoleLocked(role.id.clone()));
        }
        self.grant_end(role, duration)?;
        let subject = Subject::User(user.to_string());
        if self.state.open_request(user, &role.id, &scope.id).is_some() {
            return Err(DomainError::DuplicateRequest {
                subject: subject.to_string(),
                role: role.id.clone(),
                scope: scope.id.clone(),
            });
        }
        self.refuse_held(&subject, &role.id, &scope.id)?;
        self.refuse_incompatible(&subject, &role.id)?;
        Ok(vec![Event::RoleRequested {
            request: self.ctx.new_id(),
            user: user.to_string(),
            role: role.id.clone(),
            scope: scope.id.clone(),
            reason,
            duration,
            at: self.now,
            expires_at: self.end_after(self.workflow.settings.request_ttl)?,
        }])
    }

    fn request(&self, id: &RequestId) -> Result<&Request, DomainError> {
        self.state.request(id).ok_or_else(|| DomainError::NotFound(format!("request {id}")))
    }

    /// A request that the actor may take `action` on and that can still be decided: pending and
    /// within its time-to-live. Who may decide is judged first, so that a request's state is told
    /// only to those who may see it.
    fn decidable_request(&self, id: &RequestId, action: Action) -> Result<&Request, DomainError> {
        let request = self.request(id)?;
        if self.ctx.is_acting(&request.user) {
            return Err(DomainError::SelfApproval);
        }
        self.require_authority(&request.role, &request.scope, action)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now >= request.expires_at {
            return Err(DomainError::Expired(request.expires_at));
        }
        Ok(request)
    }

    fn stages_for(&self, request: &Request) -> Vec<Stage> {
        let kind = self.state.scope(&request.scope).map(|s| s.kind.as_str()).unwrap_or_default();
        match self.workflow.rule_for(&request.role, kind) {
            Some(rule) => rule.stages.clone(),
            None => Stage::single_approval(),
        }
    }

    fn approve(&self, id: RequestId, comment: String) -> Decided {
        let request = self.decidable_request(&id, Action::Approve)?;
        // A stage's approvers are distinct people: whoever made the token an approval used counts too.
        let approved_before = request.approvals.iter().any(|a| {
            &a.by == self.actor
                || a.by.user().is_some_and(|by| self.ctx.is_acting(by))
                || a.token_creator.as_deref().is_some_and(|creator| self.ctx.is_acting(creator))
        });
        if approved_before {
            return Err(DomainError::AlreadyApproved);
        }
        let stages = self.stages_for(request);
        let stage_index = (request.stage as usize).min(stages.len().saturating_sub(1));
        let stage = &stages[stage_index];
        let approvals_in_stage =
            request.approvals.iter().filter(|a| a.stage as usize == stage_index).count() as u32 + 1;
        let completes_stage = approvals_in_stage >= stage.quorum;
        let completes_request = completes_stage && stage_index + 1 == stages.len();
        let mut events = vec![Event::RequestApproved {
            request: id,
            by: self.actor.clone(),
            token_creator: self.ctx.token_creator.clone(),
            comment,
            stage: stage_index as u32,
            stage_name: stage.name.clone(),
            approvals_in_stage,
            quorum: stage.quorum,
            completes_stage,
            completes_request,
            at: self.now,
        }];
        if completes_request {
            let (role, _) = self.holdable(&request.role, &request.scope)?;
            if role.locked {
                return Err(DomainError::RoleLocked(role.id.clone()));
            }
            let subject = Subject::User(request.user.clone());
            self.refuse_held(&subject, &role.id, &request.scope)?;
            self.refuse_incompatible(&subject, &role.id)?;
            let ends_at = self.grant_end(role, request.duration)?;
            events.push(self.grant(subject, role, &request.scope, GrantOrigin::Request { request: id }, ends_at));
        }
        Ok(events)
    }

    fn reject(&self, id: RequestId, reason: String) -> Decided {
        self.decidable_request(&id, Action::Reject)?;
        Ok(vec![Event::RequestRejected { request: id, by: self.actor.clone(), reason, at: self.now }])
    }

    fn cancel(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !self.actor.is_user(&request.user) {
            return Err(DomainError::Forbidden("only the requester may cancel a request".to_string()));
        }
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        Ok(vec![Event::RequestCancelled { request: id, by: self.actor.clone(), at: self.now }])
    }

    fn expire_request(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now < request.expires_at {
            return Err(DomainError::NotDue(request.expires_at));
        }
        Ok(vec![Event::RequestExpired { request: id, at: self.now }])
    }

    /// Once per reminder interval while the request stays pending (and unexpired).
    fn remind_deciders(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now >= request.expires_at {
            return Err(DomainError::Expired(request.expires_at));
        }
        let due = time::end_after(
            request.reminded_at.unwrap_or(request.created_at),
            self.workflow.settings.reminder_interval,
        )
        .unwrap_or_else(time::latest);
        if self.now < due {
            return Err(DomainError::NotDue(due));
        }
        Ok(vec![Event::DecidersReminded { request: id, at: self.now }])
    }

    // ----- grants -----

    /// Once per grant, when its end is within the notice period.
    fn warn_grant_ending(&self, id: GrantId) -> Decided {
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

    fn assign_role(
        &self,
        subject: Subject,
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
    ) -> Decided {
        let (role, scope) = self.holdable(&role, &scope)?;
        match &subject {
            Subject::User(user) if self.state.user(user).is_none() => {
                return Err(DomainError::UnknownUser(user.clone()))
            }
            Subject::Team(team) if self.state.team(team).is_none() => {
                return Err(DomainError::UnknownTeam(team.clone()))
            }
            Subject::Team(_) if is_builtin_role(&role.id) => {
                return Err(DomainError::Forbidden(format!("teams never hold \"{}\"", role.id)))
            }
            _ => {}
        }
        self.refuse_own_benefit(&subject)?;
        self.require_authority(&role.id, &scope.id, Action::Approve)?;
        if role.locked {
            return Err(DomainError::RoleLocked(role.id.clone()));
        }
        self.refuse_skipping_stages(role, &scope.kind)?;
        self.refuse_held(&subject, &role.id, &scope.id)?;
        self.refuse_incompatible(&subject, &role.id)?;
        let ends_at = self.grant_end(role, duration)?;
        Ok(vec![self.grant(subject, role, &scope.id, GrantOrigin::Assignment { reason }, ends_at)])
    }

    fn revoke(&self, id: GrantId, reason: String) -> Decided {
        let grant = self.state.grant(&id).ok_or_else(|| DomainError::NotFound(format!("grant {id}")))?;
        // Who may revoke is judged first, so that a grant's state is told only to those who may see it.
        let holder = matches!(&grant.subject, Subject::User(user) if self.actor.is_user(user));
        if !holder {
            self.require_authority(&grant.role, &grant.scope, Action::Revoke)?;
        }
        if !grant.gives_at(self.now) {
            return Err(DomainError::NotActive);
        }
        Ok(vec![Event::GrantRevoked { grant: id, by: self.actor.clone(), reason, at: self.now }])
    }

    fn expire_grant(&self, id: GrantId) -> Decided {
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

    // ----- role catalogue -----

    /// Checks the catalogue as it would be with `role` in place of the role of that id.
    fn check_catalogue_with(&self, role: &Role) -> Result<(), DomainError> {
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

    fn existing_custom_target(&self, id: &str) -> Result<&Role, DomainError> {
        let role = self.state.role(id).ok_or_else(|| DomainError::NotFound(format!("role \"{id}\"")))?;
        if is_builtin_role(id) {
            return Err(DomainError::Forbidden(format!("the built-in role \"{id}\" cannot be changed")));
        }
        Ok(role)
    }

    fn define_role(&self, role: Role) -> Decided {
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

    fn duplicate_role(&self, id: RoleId) -> Decided {
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

    fn edit_role(&self, role: Role) -> Decided {
        self.require_admin("change the role catalogue")?;
        if !self.workflow.settings.roles_editable {
            return Err(DomainError::Forbidden("this workflow does not allow editing roles".to_string()));
        }
        self.existing_custom_target(&role.id)?;
        self.check_catalogue_with(&role)?;
        Ok(vec![Event::RoleEdited { role, by: self.actor.clone(), at: self.now }])
    }

    fn delete_role(&self, id: RoleId) -> Decided {
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
        });
        let rejections = requests.into_iter().map(|request| Event::RequestRejected {
            request,
            by: by.clone(),
            reason: reason.clone(),
            at: self.now,
        });
        let mut events: Vec<Event> = revocations.chain(rejections).collect();
        events.push(Event::RoleDeleted { role: id, by, at: self.now });
        Ok(events)
    }

    // ----- teams -----

    fn create_team(&self, id: TeamId, title: String) -> Decided {
        self.require_admin("create teams")?;
        if !is_valid_scope_id(&id) {
            return Err(DomainError::Invalid(format!("bad team id \"{id}\" (letters, digits, -, _ and . only)")));
        }
        if self.state.team(&id).is_some() {
            return Err(DomainError::AlreadyExists(format!("team \"{id}\"")));
        }
        Ok(vec![Event::TeamCreated { team: id, title, by: self.actor.clone(), at: self.now }])
    }

    /// Changing who is in a team hands out or takes away every role the team holds, so it needs
    /// authority over each of them (admins have it; a team holding nothing is theirs alone).
    fn require_team_authority(&self, team: &str) -> Result<(), DomainError> {
        if self.actor_is_admin() {
            return Ok(());
        }
        let subject = Subject::Team(team.to_string());
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
            self.require_authority(&role, &scope, Action::Approve)?;
        }
        Ok(())
    }

    fn add_team_member(&self, team: TeamId, user: UserId) -> Decided {
        let known = self.state.team(&team).ok_or_else(|| DomainError::NotFound(format!("team \"{team}\"")))?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user));
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

    fn remove_team_member(&self, team: TeamId, user: UserId) -> Decided {
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

    // ----- login tokens -----

    fn sync_token_roles(&self, user: UserId, claims: Vec<String>, issued_at: Option<DateTime<Utc>>) -> Decided {
        self.may_manage_user(&user)?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user));
        }
        let newest = self.state.token_roles_issued_at(&user);
        if let (Some(issued_at), Some(newest)) = (issued_at, newest) {
            // An older token never undoes what a later one did.
            if issued_at < newest {
                return Ok(Vec::new());
            }
        }
        let subject = Subject::User(user.clone());
        let carried: Vec<(&Role, String)> = claims
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

    // ----- API tokens -----

    /// Admins create tokens for anyone; holders of an API role for themselves.
    fn create_api_token(
        &self,
        user: UserId,
        name: String,
        secret_hash: String,
        expires_in: Option<Duration>,
    ) -> Decided {
        self.registered_actor()?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user));
        }
        let for_themselves_by_an_api_role = self.actor.is_user(&user) && self.state.holds_api_role(&user, self.now);
        if !(self.actor_is_admin() || for_themselves_by_an_api_role) {
            return Err(DomainError::Forbidden(
                "API tokens are created by administrators, or by holders of an API role for themselves".to_string(),
            ));
        }
        if name.trim().is_empty() {
            return Err(DomainError::Invalid("an API token needs a name".to_string()));
        }
        let well_formed = secret_hash.len() == 64 && secret_hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed || self.state.api_token_by_hash(&secret_hash).is_some() {
            return Err(DomainError::Invalid("bad token secret hash".to_string()));
        }
        let expires_at = expires_in.map(|d| self.end_after(d)).transpose()?;
        Ok(vec![Event::ApiTokenCreated {
            token: self.ctx.new_id(),
            user,
            name,
            secret_hash,
            expires_at,
            by: self.actor.clone(),
            at: self.now,
        }])
    }

    /// The token's owner or an admin.
    fn revoke_api_token(&self, id: TokenId) -> Decided {
        let token = self.state.api_token(&id).ok_or_else(|| DomainError::NotFound(format!("API token {id}")))?;
        if !self.actor.is_user(&token.user) && !self.actor_is_admin() {
            return Err(DomainError::Forbidden("only the token's owner or an administrator may revoke it".to_string()));
        }
        if token.revoked_at.is_some() {
            return Err(DomainError::NotActive);
        }
        Ok(vec![Event::ApiTokenRevoked { token: id, by: self.actor.clone(), at: self.now }])
    }
}
