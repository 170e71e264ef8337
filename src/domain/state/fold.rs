//! Folding events into the state (`evolve`).

use super::*;

impl State {
    /// Applies one event. Events were decided against this state, so they are trusted; an event
    /// naming something unknown changes nothing.
    pub fn apply(&mut self, workflow: &Workflow, event: &Event) {
        match event {
            Event::UserRegistered { user, email, name, .. } | Event::UserProfileChanged { user, email, name, .. } => {
                self.users.insert(user.clone(), User { id: user.clone(), email: email.clone(), name: name.clone() });
            }
            Event::TokenRolesSynced { user, issued_at, .. } => {
                let newest = self.token_roles_issued_at.entry(user.clone()).or_insert(*issued_at);
                *newest = (*newest).max(*issued_at);
            }
            Event::ScopeCreated { scope, kind, parents, title, mailbox, at, .. } => {
                self.scope_created_at.insert(scope.clone(), *at);
                self.index.add_scope(scope, parents);
                let scope = Scope {
                    id: scope.clone(),
                    kind: kind.clone(),
                    parents: parents.clone(),
                    title: title.clone(),
                    mailbox: mailbox.clone(),
                };
                self.scopes.insert(scope.id.clone(), scope);
            }
            Event::ScopeDeleted { scope, .. } => {
                self.index.remove_scope(scope);
                self.scopes.remove(scope);
            }
            Event::RoleDefined { role, .. } | Event::RoleEdited { role, .. } => {
                self.roles.insert(role.id.clone(), role.clone());
                self.index.compile_roles(&self.roles, &workflow.implications);
            }
            Event::RoleDeleted { role, .. } => {
                self.roles.remove(role);
                self.index.compile_roles(&self.roles, &workflow.implications);
            }
            Event::TeamCreated { team, title, .. } => {
                let team = Team { id: team.clone(), title: title.clone(), members: BTreeSet::new() };
                self.teams.insert(team.id.clone(), team);
            }
            Event::TeamMemberAdded { team, user, .. } => {
                if let Some(t) = self.teams.get_mut(team) {
                    t.members.insert(user.clone());
                    self.index.join_team(user, team);
                }
            }
            Event::TeamMemberRemoved { team, user, .. } => {
                if let Some(t) = self.teams.get_mut(team) {
                    t.members.remove(user);
                }
                self.index.leave_team(user, team);
            }
            Event::RoleRequested {
                request,
                user,
                role,
                scope,
                reason,
                duration,
                at,
                expires_at,
                extends,
                starts_at,
                requested_by,
                answers,
                ticket,
            } => {
                match extends {
                    Some(grant) => self.index.open_extensions.insert(*grant, *request),
                    None => self.index.open_requests.insert((user.clone(), role.clone(), scope.clone()), *request),
                };
                let request = Request {
                    id: *request,
                    user: user.clone(),
                    role: role.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    duration: *duration,
                    status: RequestStatus::Pending,
                    stage: 0,
                    approvals: Vec::new(),
                    created_at: *at,
                    expires_at: *expires_at,
                    closed_by: None,
                    closed_at: None,
                    closing_reason: None,
                    grant: None,
                    reminded_at: None,
                    stage_entered_at: None,
                    escalated_stages: Vec::new(),
                    extends: *extends,
                    starts_at: *starts_at,
                    requested_by: requested_by.clone(),
                    answers: answers.clone(),
                    ticket: ticket.clone(),
                };
                self.requests.insert(request.id, request);
            }
            Event::RequestApproved {
                request,
                by,
                token_creator,
                on_behalf_of,
                comment,
                stage,
                completes_stage,
                completes_request,
                at,
                duration,
                ..
            } => {
                let Some(r) = self.requests.get_mut(request) else {
                    return;
                };
                let token_creator = token_creator.clone();
                r.approvals.push(Approval {
                    by: by.clone(),
                    token_creator,
                    on_behalf_of: on_behalf_of.clone(),
                    stage: *stage,
                    comment: comment.clone(),
                    at: *at,
                    duration: *duration,
                });
                if *completes_stage {
                    r.stage = stage + 1;
                    r.stage_entered_at = Some(*at);
                }
                if *completes_request {
                    self.close_request(request, RequestStatus::Approved, Some(by.clone()), *at, None);
                }
            }
            Event::RequestRejected { request, by, reason, at, .. } => {
                self.close_request(request, RequestStatus::Rejected, Some(by.clone()), *at, Some(reason.clone()));
            }
            Event::RequestCancelled { request, by, at } => {
                self.close_request(request, RequestStatus::Cancelled, Some(by.clone()), *at, None);
            }
            Event::RequestExpired { request, at } => {
                self.close_request(request, RequestStatus::Expired, None, *at, None);
            }
            Event::RoleGranted { grant, subject, role, scope, origin, by, starts_at, ends_at, .. } => {
                let grant = Grant {
                    id: *grant,
                    subject: subject.clone(),
                    role: role.clone(),
                    scope: scope.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    origin: origin.clone(),
                    granted_by: by.clone(),
                    status: GrantStatus::Active,
                    ending_notice_at: None,
                };
                if let crate::domain::GrantOrigin::Request { request } = origin {
                    if let Some(r) = self.requests.get_mut(request) {
                        r.grant = Some(grant.id);
                    }
                }
                self.index.add_grant(&grant);
                self.grants.insert(grant.id, grant);
            }
            Event::GrantRevoked { grant, by, reason, at, .. } => {
                self.end_grant(grant, GrantStatus::Revoked { by: by.clone(), reason: reason.clone(), at: *at });
            }
            Event::GrantExpired { grant, at } => self.end_grant(grant, GrantStatus::Expired { at: *at }),
            Event::DecidersReminded { request, at } => {
                if let Some(r) = self.requests.get_mut(request) {
                    r.reminded_at = Some(*at);
                }
            }
            Event::GrantEndingSoon { grant, at, .. } => {
                if let Some(g) = self.grants.get_mut(grant) {
                    g.ending_notice_at = Some(*at);
                }
            }
            Event::ApiTokenCreated { token, user, name, secret_hash, expires_at, by, at } => {
                self.token_by_hash.insert(secret_hash.clone(), *token);
                let made_by_admin = match by {
                    Actor::CommandLine => true,
                    Actor::User(creator) => self.is_admin(creator, *at),
                };
                let token = ApiToken {
                    id: *token,
                    user: user.clone(),
                    name: name.clone(),
                    created_by: by.clone(),
                    made_by_admin,
                    created_at: *at,
                    expires_at: *expires_at,
                    revoked_at: None,
                };
                self.api_tokens.insert(token.id, token);
            }
            Event::ApiTokenRevoked { token, at, .. } => {
                if let Some(token) = self.api_tokens.get_mut(token) {
                    token.revoked_at = Some(*at);
                }
            }
            // ----- escalation and delegation -----
            Event::RequestEscalated { request, stage, .. } => {
                if let Some(r) = self.requests.get_mut(request) {
                    if !r.escalated_stages.contains(stage) {
                        r.escalated_stages.push(*stage);
                    }
                }
            }
            Event::DelegationGranted { delegation, from, to, scope, reason, until, at } => {
                let delegation = Delegation {
                    id: *delegation,
                    from: from.clone(),
                    to: to.clone(),
                    scope: scope.clone(),
                    reason: reason.clone(),
                    created_at: *at,
                    until: *until,
                    ended_at: None,
                    ended_by: None,
                };
                self.delegations.insert(delegation.id, delegation);
            }
            Event::DelegationEnded { delegation, by, at, .. } => {
                if let Some(d) = self.delegations.get_mut(delegation) {
                    d.ended_at = Some(*at);
                    d.ended_by = Some(by.clone());
                }
            }
            // ----- extensions -----
            Event::GrantExtended { grant, request, ends_at, .. } => {
                if let Some(g) = self.grants.get_mut(grant) {
                    g.ends_at = Some(*ends_at);
                    // The holder is told again before the new end.
                    g.ending_notice_at = None;
                    self.index.set_grant_end(g);
                }
                if let Some(r) = self.requests.get_mut(request) {
                    r.grant = Some(*grant);
                }
            }
            // ----- access reviews -----
            Event::ReviewStarted { review, scope, roles, title, due_at, on_no_answer, by, at, scheduled } => {
                let selection = reviews::Selection {
                    review: *review,
                    scope,
                    roles: roles.as_deref(),
                    title,
                    due_at: *due_at,
                    on_no_answer: *on_no_answer,
                    by,
                    at: *at,
                    scheduled: *scheduled,
                };
                self.start_review(workflow, selection);
            }
            Event::ReviewItemDecided { review, item, decision, reason, by, at, .. } => {
                self.decide_review_item(review, item, *decision, reason, by, *at);
            }
            Event::ReviewClosed { review, by, at } => self.close_review(review, by, *at),
            Event::ReviewersReminded { review, at } => self.remind_reviewers(review, *at),
            Event::MailPreferencesSet { user, mail, digest_hour, .. } => {
                self.mail_preferences.insert(user.clone(), MailPreferences { mail: *mail, digest_hour: *digest_hour });
            }
            Event::DigestSent { user, day, .. } => {
                self.digest_sent_on.insert(user.clone(), *day);
            }
            Event::WebhookCreated { webhook, url, events, scope, description, by, at } => {
                let hook = Webhook {
                    id: *webhook,
                    url: url.clone(),
                    events: events.clone(),
                    scope: scope.clone(),
                    description: description.clone(),
                    created_by: by.clone(),
                    created_at: *at,
                };
                self.webhooks.insert(*webhook, hook);
            }
            Event::WebhookDeleted { webhook, .. } => {
                self.webhooks.remove(webhook);
            }
        }
    }

    pub(super) fn close_request(
        &mut self,
        id: &RequestId,
        status: RequestStatus,
        by: Option<Actor>,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) {
        let Some(request) = self.requests.get_mut(id) else {
            return;
        };
        request.status = status;
        request.closed_by = by;
        request.closed_at = Some(at);
        request.closing_reason = reason;
        if let Some(grant) = request.extends {
            if self.index.open_extensions.get(&grant) == Some(id) {
                self.index.open_extensions.remove(&grant);
            }
            return;
        }
        let key = (request.user.clone(), request.role.clone(), request.scope.clone());
        if self.index.open_requests.get(&key) == Some(id) {
            self.index.open_requests.remove(&key);
        }
    }

    pub(super) fn end_grant(&mut self, id: &GrantId, status: GrantStatus) {
        let Some(grant) = self.grants.get_mut(id) else {
            return;
        };
        grant.status = status;
        self.index.remove_grant(grant);
    }
}

/// `evolve(state, workflow, event)`: the fold step, as a free function.
pub fn evolve(state: &mut State, workflow: &Workflow, event: &Event) {
    state.apply(workflow, event);
}
