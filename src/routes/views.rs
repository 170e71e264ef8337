//! How requests, grants, scopes and tokens look in answers: ids everywhere, times in RFC 3339.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::domain::{
    Actor, ApiToken, Grant, GrantOrigin, GrantStatus, Request, Scope, ScopeId, State, Subject, Team, UserId, Webhook,
};

/// An actor as clients see it: the user id, or `command-line`.
pub fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::User(id) => id.to_string(),
        Actor::CommandLine => "command-line".into(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestApproval)]
pub struct ApprovalView {
    pub by: String,
    /// The delegator whose authority a delegate used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub stage: u32,
    pub comment: String,
    pub at: DateTime<Utc>,
    /// The shorter duration this approver granted, if they gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Request)]
pub struct RequestView {
    pub id: String,
    pub user: String,
    pub role: String,
    pub scope: String,
    pub reason: String,
    pub duration: Option<String>,
    #[schema(value_type = crate::domain::RequestStatus)]
    pub status: String,
    /// The stage waiting for approvals (0-based; equals `stages` once approved).
    pub stage: u32,
    pub stages: usize,
    pub approvals: Vec<ApprovalView>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub grant: Option<String>,
    /// The grant an extension request extends (null for a request for a new grant).
    pub extends: Option<String>,
    /// When the grant asked for starts, when later than the approval.
    pub starts_at: Option<DateTime<Utc>>,
    /// Who asked, when not `user` (a request on someone's behalf).
    pub requested_by: Option<String>,
    /// Answers to the role's questions, by question id.
    pub answers: BTreeMap<String, String>,
    pub ticket: Option<String>,
}

impl RequestView {
    pub fn new(request: &Request, stages: usize) -> Self {
        RequestView {
            id: request.id.to_string(),
            user: request.user.to_string(),
            role: request.role.clone(),
            scope: request.scope.to_string(),
            reason: request.reason.clone(),
            duration: request.duration.map(|d| d.to_string()),
            status: request.status.to_string(),
            stage: request.stage,
            stages,
            approvals: request
                .approvals
                .iter()
                .map(|a| ApprovalView {
                    by: actor_name(&a.by),
                    on_behalf_of: a.on_behalf_of.as_ref().map(ToString::to_string),
                    stage: a.stage,
                    comment: a.comment.clone(),
                    at: a.at,
                    duration: a.duration.map(|d| d.to_string()),
                })
                .collect(),
            created_at: request.created_at,
            expires_at: request.expires_at,
            decided_by: request.closed_by.as_ref().map(actor_name),
            decided_at: request.closed_at,
            decision_reason: request.closing_reason.clone(),
            grant: request.grant.map(|g| g.to_string()),
            extends: request.extends.map(|g| g.to_string()),
            starts_at: request.starts_at,
            requested_by: request.requested_by.as_ref().map(UserId::to_string),
            answers: request.answers.clone(),
            ticket: request.ticket.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Grant)]
pub struct GrantView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub role: String,
    pub scope: String,
    pub granted_at: DateTime<Utc>,
    /// When it gives its role from (the same as `granted_at`; later than now for a scheduled grant).
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// The request it came from, if any.
    pub request: Option<String>,
    /// request, assignment, creator, default or token.
    pub origin: &'static str,
    pub reason: Option<String>,
    pub granted_by: String,
    /// active, scheduled (starts later), ended (past its end, expiry not yet recorded), revoked or expired.
    pub status: &'static str,
    pub revoked_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub revocation_reason: Option<String>,
}

impl GrantView {
    pub fn new(grant: &Grant, now: DateTime<Utc>) -> Self {
        let (user, team) = match &grant.subject {
            Subject::User(user) => (Some(user.to_string()), None),
            Subject::Team(team) => (None, Some(team.to_string())),
        };
        let (origin, request, reason) = match &grant.origin {
            GrantOrigin::Request { request } => ("request", Some(request.to_string()), None),
            GrantOrigin::Assignment { reason } => ("assignment", None, Some(reason.clone())),
            GrantOrigin::Creator => ("creator", None, None),
            GrantOrigin::Default => ("default", None, None),
            GrantOrigin::Token => ("token", None, None),
        };
        let (status, revoked_by, ended_at, revocation_reason) = match &grant.status {
            GrantStatus::Active if grant.gives_at(now) => ("active", None, None, None),
            GrantStatus::Active if grant.is_scheduled(now) => ("scheduled", None, None, None),
            GrantStatus::Active => ("ended", None, grant.ends_at, None),
            GrantStatus::Revoked { by, reason, at } => {
                ("revoked", Some(actor_name(by)), Some(*at), Some(reason.clone()))
            }
            GrantStatus::Expired { at } => ("expired", None, Some(*at), None),
        };
        GrantView {
            id: grant.id.to_string(),
            user,
            team,
            role: grant.role.clone(),
            scope: grant.scope.to_string(),
            granted_at: grant.starts_at,
            starts_at: grant.starts_at,
            ends_at: grant.ends_at,
            request,
            origin,
            reason,
            granted_by: actor_name(&grant.granted_by),
            status,
            revoked_by,
            ended_at,
            revocation_reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Scope)]
pub struct ScopeView {
    pub id: String,
    pub kind: String,
    pub parents: Vec<String>,
    pub title: String,
    pub mailbox: Option<String>,
    pub children: Vec<String>,
}

impl ScopeView {
    pub fn new(scope: &Scope, state: &State) -> Self {
        ScopeView {
            id: scope.id.to_string(),
            kind: scope.kind.clone(),
            parents: scope.parents.iter().map(ScopeId::to_string).collect(),
            title: scope.title.clone(),
            mailbox: scope.mailbox.clone(),
            children: state.children_of(&scope.id).into_iter().map(|c| c.id.to_string()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Team)]
pub struct TeamView {
    pub id: String,
    pub title: String,
    pub members: Vec<String>,
}

impl TeamView {
    pub fn new(team: &Team) -> Self {
        TeamView {
            id: team.id.to_string(),
            title: team.title.clone(),
            members: team.members.iter().map(UserId::to_string).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiToken)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenView {
    pub fn new(token: &ApiToken) -> Self {
        TokenView {
            id: token.id.to_string(),
            user: token.user.to_string(),
            name: token.name.clone(),
            created_by: actor_name(&token.created_by),
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A webhook subscription (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// Only events about this scope or below it, when given.
    pub scope: Option<String>,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl WebhookView {
    pub fn new(hook: &Webhook) -> Self {
        WebhookView {
            id: hook.id.to_string(),
            url: hook.url.clone(),
            events: hook.events.clone(),
            scope: hook.scope.as_ref().map(ScopeId::to_string),
            description: hook.description.clone(),
            created_by: actor_name(&hook.created_by),
            created_at: hook.created_at,
        }
    }
}
