//! Deciding commands: every rule of SPEC.md's "Who may do what" and "Request lifecycle". This file
//! holds the dispatch and what every feature's rules use (who acts, authority, own benefit,
//! durations, incompatible pairs); each feature's commands are in the file named for it.

use super::command::{Asked, Command};
use super::error::DomainError;
use super::event::Event;
use super::grant::{Grant, GrantOrigin, GrantStatus};
use super::request::{Request, RequestStatus};
use super::state::{Authority, Scope, State};
use super::time;
use super::types::{Actor, Context, GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use crate::workflow::{
    check_catalogue, is_builtin_role, is_valid_id, mail_address_problem, role_closure, Action, Duration, Role,
    RoleDeletePolicy, RoleId, Stage, Workflow, GLOBAL,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

mod api_tokens;
mod catalogue;
mod delegations;
mod extensions;
mod grants;
mod login_tokens;
mod preferences;
mod requests;
mod reviews;
mod scopes;
mod teams;
mod users;
mod webhooks;

/// Decides a command against the state: the events it causes, or why it is refused.
pub fn decide(state: &State, workflow: &Workflow, ctx: &Context, command: Command) -> Result<Vec<Event>, DomainError> {
    let decision = Decision { state, workflow, ctx, now: ctx.now, actor: &ctx.actor };
    match command {
        Command::RegisterUser { user, email, name } => decision.register_user(user, email, name),
        Command::PreRegisterUser { user, email, name } => decision.pre_register_user(user, email, name),
        Command::UpdateProfile { user, email, name } => decision.update_profile(user, email, name),
        Command::CreateScope { id, kind, parents, title, mailbox } => {
            decision.create_scope(id, kind, parents, title, mailbox)
        }
        Command::DeleteScope { id } => decision.delete_scope(id),
        Command::RequestRole { role, scope, reason, duration, asked } => {
            decision.request_role(role, scope, reason, duration, asked)
        }
        Command::Approve { request, comment, duration } => decision.approve(request, comment, duration),
        Command::Reject { request, reason } => decision.reject(request, reason),
        Command::Cancel { request } => decision.cancel(request),
        Command::AssignRole { subject, role, scope, reason, duration, starts_at } => {
            decision.assign_role(subject, role, scope, reason, duration, starts_at)
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
        // ----- escalation and delegation -----
        Command::EscalateRequest { request } => decision.escalate_request(request),
        Command::Delegate { to, until, duration, scope, reason } => {
            decision.delegate(to, until, duration, scope, reason)
        }
        Command::EndDelegation { delegation } => decision.end_delegation(delegation),
        // ----- extensions -----
        Command::ExtendGrant { grant, duration, reason } => decision.extend_grant(grant, duration, reason),
        // ----- access reviews -----
        Command::StartReview { scope, roles, due, on_no_answer, title } => {
            decision.start_review(scope, roles, due, on_no_answer, title)
        }
        Command::DecideReviewItem { review, item, decision: answer, reason } => {
            decision.decide_review_item(review, item, answer, reason)
        }
        Command::CloseReview { review } => decision.close_review(review, false),
        Command::CloseDueReview { review } => decision.close_review(review, true),
        Command::RemindReviewers { review } => decision.remind_reviewers(review),
        Command::StartScheduledReview { scope } => decision.start_scheduled_review(scope),
        // ----- mail preferences and the daily digest -----
        Command::SetMailPreferences { user, preferences } => decision.set_mail_preferences(user, preferences),
        Command::SendDigest { user } => decision.send_digest(user),
        // ----- webhooks -----
        Command::CreateWebhook { id, url, events, scope, description } => {
            decision.create_webhook(id, url, events, scope, description)
        }
        Command::DeleteWebhook { webhook } => decision.delete_webhook(webhook),
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
    fn registered_actor(&self) -> Result<Option<&UserId>, DomainError> {
        match self.actor {
            Actor::CommandLine => Ok(None),
            Actor::User(user) if self.state.user(user).is_some() => Ok(Some(user)),
            Actor::User(user) => Err(DomainError::UnknownUser(user.to_string())),
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

    /// The actor's authority over a decision concerning `beneficiary` (an assignment, a revocation).
    fn require_authority(
        &self,
        role: &str,
        scope: &str,
        beneficiary: &Subject,
        action: Action,
    ) -> Result<Authority, DomainError> {
        self.state
            .authority_for(self.workflow, self.actor, (role, scope), beneficiary, action, self.now)
            .ok_or_else(|| DomainError::NotADecider { role: role.to_string(), scope: scope.to_string() })
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

    /// How long a grant of the role lasts: the wanted duration, else the default, never past the
    /// maximum (`None`: without end).
    fn granted_duration(&self, role: &Role, wanted: Option<Duration>) -> Result<Option<Duration>, DomainError> {
        if let Some(wanted) = wanted {
            self.end_after(wanted)?;
        }
        let max = self.max_duration(role);
        Ok(match (wanted, max) {
            (Some(wanted), Some(max)) if wanted > max => {
                return Err(DomainError::DurationTooLong { wanted: wanted.to_string(), max: max.to_string() })
            }
            (Some(wanted), _) => Some(wanted),
            (None, max) => match (self.workflow.settings.default_grant_duration, max) {
                (Some(default), Some(max)) => Some(default.min(max)),
                (default, max) => default.or(max),
            },
        })
    }

    /// When a grant starting now ends: the wanted duration, else the default, never past the maximum.
    fn grant_end(&self, role: &Role, wanted: Option<Duration>) -> Result<Option<DateTime<Utc>>, DomainError> {
        self.grant_end_from(role, wanted, self.now)
    }

    /// When a grant starting at `start` ends: durations count from the grant's start.
    fn grant_end_from(
        &self,
        role: &Role,
        wanted: Option<Duration>,
        start: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        self.granted_duration(role, wanted)?.map(|d| self.end_from(start, d)).transpose()
    }

    /// When something lasting `duration` from now ends: refused when over 100 years or past 9999-12-31.
    fn end_after(&self, duration: Duration) -> Result<DateTime<Utc>, DomainError> {
        self.end_from(self.now, duration)
    }

    /// When something lasting `duration` from `start` ends: refused when over 100 years or past 9999-12-31.
    fn end_from(&self, start: DateTime<Utc>, duration: Duration) -> Result<DateTime<Utc>, DomainError> {
        time::end_after(start, duration).ok_or_else(|| {
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

    /// A role held, or to be held by a grant starting later, is not given again for a time that
    /// overlaps: a grant from `start` on is refused while another of the subject's runs past `start`
    /// (so a decider may continue a team's grant with one starting at its end).
    fn refuse_held(&self, subject: &Subject, role: &str, scope: &str, start: DateTime<Utc>) -> Result<(), DomainError> {
        let overlapping = self.state.grants_on(scope).any(|g| {
            g.role == role
                && &g.subject == subject
                && g.gives_now_or_later(self.now)
                && g.ends_at.is_none_or(|end| end > start)
        });
        if overlapping || (start <= self.now && self.state.subject_holds(subject, role, scope, self.now)) {
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
        self.grant_from(subject, role, scope, origin, self.now, ends_at)
    }

    /// A grant that starts at `starts_at` (now, or later).
    fn grant_from(
        &self,
        subject: Subject,
        role: &Role,
        scope: &str,
        origin: GrantOrigin,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Event {
        Event::RoleGranted {
            grant: self.ctx.new_id(),
            subject,
            role: role.id.clone(),
            scope: ScopeId::known(scope),
            origin,
            by: self.actor.clone(),
            starts_at,
            ends_at,
            on_behalf_of: None,
        }
    }
}
