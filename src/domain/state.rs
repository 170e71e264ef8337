//! The current state, evolved from events, and the queries answered from it.

use super::event::Event;
use super::index::{Holding, Index, Slot};
use super::request::{ApiToken, Approval, Grant, GrantStatus, Request, RequestStatus};
use super::types::{Actor, GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use crate::workflow::permission::parse_permission;
use crate::workflow::{role_closure, Action, Place, Role, RoleId, RuleTarget, Workflow, AUDITOR, GLOBAL};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub id: ScopeId,
    pub kind: String,
    /// Empty only for `global`; a scope naming no parent sits under `global`.
    pub parents: Vec<ScopeId>,
    pub title: String,
    pub mailbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub title: String,
    pub members: BTreeSet<UserId>,
}

/// The answer to "may U do P on S?", with the grants that justify a yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub allowed: bool,
    pub via: Vec<GrantId>,
}

/// How someone may decide: through a decision rule, or only because they are an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    Rule,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestDecider {
    pub user: UserId,
    /// True when the person may decide only because they are an administrator (such people are
    /// not notified of new requests).
    pub admin_only: bool,
}

/// Where a user may decide, stored compactly: one entry per rule and the scope the deciding role
/// is held on, however many scopes it covers. [`State::expand_approver_scope`] lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ApproverScope {
    /// The rule id (`kind:site`, `role:cod-staff`).
    pub rule: String,
    pub anchor: ScopeId,
    pub place: Place,
    /// The deciding role held on the anchor (or included by the role held there).
    pub role: RoleId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    users: BTreeMap<UserId, User>,
    scopes: BTreeMap<ScopeId, Scope>,
    roles: BTreeMap<RoleId, Role>,
    teams: BTreeMap<TeamId, Team>,
    requests: BTreeMap<RequestId, Request>,
    grants: BTreeMap<GrantId, Grant>,
    api_tokens: BTreeMap<TokenId, ApiToken>,
    token_by_hash: HashMap<String, TokenId>,
    /// The newest `iat` of a login token whose roles were synced, per user.
    token_roles_issued_at: BTreeMap<UserId, DateTime<Utc>>,
    index: Index,
}

impl State {
    /// The state before any event: the `global` scope and the workflow's roles.
    pub fn new(workflow: &Workflow) -> State {
        let global = Scope {
            id: GLOBAL.to_string(),
            kind: GLOBAL.to_string(),
            parents: Vec::new(),
            title: "Global".to_string(),
            mailbox: None,
        };
        let mut state = State {
            users: BTreeMap::new(),
            scopes: [(GLOBAL.to_string(), global)].into(),
            roles: workflow.roles.clone(),
            teams: BTreeMap::new(),
            requests: BTreeMap::new(),
            grants: BTreeMap::new(),
            api_tokens: BTreeMap::new(),
            token_by_hash: HashMap::new(),
            token_roles_issued_at: BTreeMap::new(),
            index: Index::new(),
        };
        state.index.compile_roles(&state.roles, &workflow.implications);
        state
    }

    /// Folds events into a fresh state.
    pub fn replay<'a>(workflow: &Workflow, events: impl IntoIterator<Item = &'a Event>) -> State {
        let mut state = State::new(workflow);
        for event in events {
            state.apply(workflow, event);
        }
        state
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }
    /// When the newest login token whose roles were synced for `user` was issued.
    pub fn token_roles_issued_at(&self, user: &str) -> Option<DateTime<Utc>> {
        self.token_roles_issued_at.get(user).copied()
    }
    pub fn scope(&self, id: &str) -> Option<&Scope> {
        self.scopes.get(id)
    }
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> {
        self.scopes.values()
    }
    /// The role catalogue: the workflow's roles, then custom ones, less deleted ones.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }
    pub fn roles(&self) -> &BTreeMap<RoleId, Role> {
        &self.roles
    }
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.get(id)
    }
    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }
    pub fn request(&self, id: &RequestId) -> Option<&Request> {
        self.requests.get(id)
    }
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.requests.values()
    }
    pub fn grant(&self, id: &GrantId) -> Option<&Grant> {
        self.grants.get(id)
    }
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.values()
    }
    /// The grants in id order, from the first after `after` on.
    pub fn grants_after(&self, after: Option<GrantId>) -> impl Iterator<Item = &Grant> {
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        self.grants.range((start, std::ops::Bound::Unbounded)).map(|(_, grant)| grant)
    }
    pub fn api_token(&self, id: &TokenId) -> Option<&ApiToken> {
        self.api_tokens.get(id)
    }
    pub fn api_tokens(&self) -> impl Iterator<Item = &ApiToken> {
        self.api_tokens.values()
    }
    /// The token whose secret hashes (SHA-256, hex) to `hash`, revoked or not.
    pub fn api_token_by_hash(&self, hash: &str) -> Option<&ApiToken> {
        self.token_by_hash.get(hash).and_then(|id| self.api_tokens.get(id))
    }

    /// Whether an API token lets its user act at `now`: unrevoked, unexpired, and what let it be
    /// made still stands — its creator is still an administrator, or (made by its user for
    /// themselves as an API-role holder) its user still holds an API role.
    pub fn api_token_in_force(&self, token: &ApiToken, now: DateTime<Utc>) -> bool {
        token.is_valid_at(now)
            && match (&token.created_by, token.made_by_admin) {
                (Actor::CommandLine, _) => true,
                (Actor::User(creator), true) => self.is_admin(creator, now),
                (Actor::User(_), false) => self.holds_api_role(&token.user, now),
            }
    }

    /// Whether the user holds a role (or a role including one) that lets them make API tokens.
    pub fn holds_api_role(&self, user: &str, now: DateTime<Utc>) -> bool {
        let held = self.roles_held(&Subject::User(user.to_string()), now);
        held.iter().any(|role| self.roles.get(role).is_some_and(|r| r.api_role))
    }

    /// The pending request of this user for this role on this scope, if any.
    pub fn open_request(&self, user: &str, role: &str, scope: &str) -> Option<&Request> {
        let key = (user.to_string(), role.to_string(), scope.to_string());
        self.index.open_requests.get(&key).and_then(|id| self.requests.get(id))
    }

    /// Grants not ended by an event and held on the scope (some may be past their end).
    pub fn grants_on(&self, scope: &str) -> impl Iterator<Item = &Grant> {
        let ids = self.index.scope_slot(scope).and_then(|slot| self.index.grants_on_scope.get(&slot));
        ids.into_iter().flatten().filter_map(|id| self.grants.get(id))
    }

    /// The scope's ancestors (parents, theirs, …, up to `global`), without the scope itself.
    pub fn ancestors_of(&self, scope: &str) -> Vec<ScopeId> {
        let Some(slot) = self.index.scope_slot(scope) else {
            return Vec::new();
        };
        self.index
            .lineage(slot)
            .iter()
            .filter(|ancestor| **ancestor != slot)
            .filter_map(|ancestor| self.index.scope_id(*ancestor).map(str::to_string))
            .collect()
    }

    pub fn children_of(&self, scope: &str) -> Vec<&Scope> {
        let Some(slot) = self.index.scope_slot(scope) else {
            return Vec::new();
        };
        self.index.scopes[slot as usize].children.iter().filter_map(|child| self.scope_at(*child)).collect()
    }

    fn scope_at(&self, slot: Slot) -> Option<&Scope> {
        self.index.scope_id(slot).and_then(|id| self.scopes.get(id))
    }

    /// Holdings that reach a user: their own grants and those of the teams they belong to.
    fn holdings_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Holding> + 'a {
        let teams = self.index.teams_of(user);
        self.index.user_holdings(user).iter().chain(teams.flat_map(move |team| self.index.team_holdings(team)))
    }

    /// Auditors and administrators read every request, grant and event.
    pub fn reads_everything(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.is_admin(user, now) || self.subject_holds(&Subject::User(user.to_string()), AUDITOR, GLOBAL, now)
    }

    /// Auditors who are not also administrators change nothing (SPEC "Users").
    pub fn changes_nothing(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.subject_holds(&Subject::User(user.to_string()), AUDITOR, GLOBAL, now) && !self.is_admin(user, now)
    }

    /// Whether the user holds `admin` on `global` at `now`.
    pub fn is_admin(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.holdings_of(user).any(|h| h.role == self.index.admin && h.scope == self.index.global && h.gives_at(now))
    }

    /// Whether the subject holds exactly this role on exactly this scope at `now`; a user also
    /// through their teams.
    pub fn subject_holds(&self, subject: &Subject, role: &str, scope: &str, now: DateTime<Utc>) -> bool {
        let reaches = |holder: &Subject| {
            holder == subject
                || matches!((subject, holder), (Subject::User(user), Subject::Team(team))
                    if self.teams.get(team).is_some_and(|t| t.members.contains(user)))
        };
        self.grants_on(scope).any(|g| g.role == role && g.gives_at(now) && reaches(&g.subject))
    }

    /// The roles a subject holds anywhere at `now` (a user's include their teams').
    pub fn roles_held(&self, subject: &Subject, now: DateTime<Utc>) -> BTreeSet<RoleId> {
        let holdings: Vec<&Holding> = match subject {
            Subject::User(user) => self.holdings_of(user).collect(),
            Subject::Team(team) => self.index.team_holdings(team).iter().collect(),
        };
        holdings
            .into_iter()
            .filter(|h| h.gives_at(now))
            .flat_map(|h| self.index.roles[h.role as usize].closure.iter())
            .filter_map(|slot| self.index.role_id(*slot).map(str::to_string))
            .collect()
    }

    fn includes(&self, held: Slot, role: Slot) -> bool {
        self.index.roles.get(held as usize).is_some_and(|r| r.closure.contains(&role))
    }

    /// May `user` do `permission` on `scope` at `now`? Admins may do anything. A grant counts on its
    /// scope, and below it for the parts of its role that apply to the subtree.
    pub fn check(&self, user: &str, permission: &str, scope: &str, now: DateTime<Utc>) -> CheckResult {
        let denied = CheckResult { allowed: false, via: Vec::new() };
        let (Ok(permission), Some(target)) = (parse_permission(permission), self.index.scope_entry(scope)) else {
            return denied;
        };
        let (target, lineage) = (target.slot, &target.lineage);
        let mut via = Vec::new();
        for holding in self.holdings_of(user) {
            if !holding.gives_at(now) {
                continue;
            }
            if holding.role == self.index.admin && holding.scope == self.index.global {
                return CheckResult { allowed: true, via: vec![holding.grant] };
            }
            let on_scope = holding.scope == target;
            if !on_scope && !lineage.contains(&holding.scope) {
                continue;
            }
            let clauses = &self.index.roles[holding.role as usize].clauses;
            if clauses.iter().any(|c| (on_scope || c.subtree) && c.permissions.allows(&permission)) {
                via.push(holding.grant);
            }
        }
        CheckResult { allowed: !via.is_empty(), via }
    }

    /// Whether a decision rule lets `user` take `action` on `role` at `scope` (admin rights aside).
    pub fn decides_by_rule(
        &self,
        workflow: &Workflow,
        user: &str,
        role: &str,
        scope: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> bool {
        let (Some(target), Some(kind)) = (self.index.scope_slot(scope), self.scopes.get(scope).map(|s| &s.kind)) else {
            return false;
        };
        let Some(rule) = workflow.rule_for(role, kind) else {
            return false;
        };
        if !rule.allows(action) {
            return false;
        }
        let deciders: Vec<(Slot, Place)> = rule
            .deciders
            .iter()
            .filter_map(|d| self.index.known_role_slot(&d.role).map(|slot| (slot, d.place)))
            .collect();
        self.holdings_of(user).any(|h| {
            h.gives_at(now)
                && deciders
                    .iter()
                    .any(|(role, place)| self.includes(h.role, *role) && self.is_at(*place, h.scope, target))
        })
    }

    /// Whether a role held on `holder` is at `place` relative to `target`.
    fn is_at(&self, place: Place, holder: Slot, target: Slot) -> bool {
        match place {
            Place::Same => holder == target,
            Place::Parent => self.index.scopes[target as usize].parents.contains(&holder),
            Place::Ancestor => holder != target && self.index.lineage(target).contains(&holder),
            Place::Global => holder == self.index.global,
        }
    }

    /// The authority `actor` has to take `action` on `role` at `scope`. Approving (and assigning)
    /// needs authority over every role the role includes too. The own-benefit rule is not judged here.
    pub fn authority(
        &self,
        workflow: &Workflow,
        actor: &Actor,
        role: &str,
        scope: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> Option<Authority> {
        let Actor::User(user) = actor else {
            return Some(Authority::Admin);
        };
        if self.is_admin(user, now) {
            return Some(Authority::Admin);
        }
        let by_rule = self.decides_as_rules_say(workflow, user, role, scope, action, now);
        by_rule.then_some(Authority::Rule)
    }

    /// Authority by rule alone: approving needs it over every role the role includes too.
    fn decides_as_rules_say(
        &self,
        workflow: &Workflow,
        user: &str,
        role: &str,
        scope: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> bool {
        match action {
            Action::Approve => role_closure(&self.roles, role)
                .iter()
                .all(|r| self.decides_by_rule(workflow, user, r, scope, action, now)),
            Action::Reject | Action::Revoke => self.decides_by_rule(workflow, user, role, scope, action, now),
        }
    }

    /// Everyone who may approve the request at `now`, never its requester.
    pub fn deciders_for(&self, workflow: &Workflow, request: &RequestId, now: DateTime<Utc>) -> Vec<RequestDecider> {
        let Some(request) = self.requests.get(request) else {
            return Vec::new();
        };
        let Some(target) = self.index.scope_slot(&request.scope) else {
            return Vec::new();
        };
        // Deciders hold something on the scope or above it (admins on global).
        let mut candidates = BTreeSet::new();
        for slot in self.index.lineage(target) {
            for grant in self.index.grants_on_scope.get(slot).into_iter().flatten().filter_map(|id| self.grants.get(id))
            {
                match &grant.subject {
                    Subject::User(user) => {
                        candidates.insert(user.clone());
                    }
                    Subject::Team(team) => {
                        candidates.extend(self.teams.get(team).into_iter().flat_map(|t| t.members.iter().cloned()));
                    }
                }
            }
        }
        candidates.remove(&request.user);
        let (role, scope) = (&request.role, &request.scope);
        // Candidates come sorted, so deciders do too.
        candidates
            .into_iter()
            .filter_map(|user| {
                let by_rule = self.decides_as_rules_say(workflow, &user, role, scope, Action::Approve, now);
                let admin_only = !by_rule && self.is_admin(&user, now);
                (by_rule || admin_only).then_some(RequestDecider { user, admin_only })
            })
            .collect()
    }

    /// Where the user may decide through rules, one entry per rule, place and anchor scope.
    pub fn approver_scopes(&self, workflow: &Workflow, user: &str, now: DateTime<Utc>) -> Vec<ApproverScope> {
        let mut found = BTreeSet::new();
        for holding in self.holdings_of(user).filter(|h| h.gives_at(now)) {
            let Some(anchor) = self.index.scope_id(holding.scope) else {
                continue;
            };
            for rule in &workflow.rules {
                for decider in &rule.deciders {
                    let held =
                        self.index.known_role_slot(&decider.role).is_some_and(|r| self.includes(holding.role, r));
                    if held {
                        found.insert(ApproverScope {
                            rule: rule.id.clone(),
                            anchor: anchor.to_string(),
                            place: decider.place,
                            role: decider.role.clone(),
                        });
                    }
                }
            }
        }
        found.into_iter().collect()
    }

    /// The scopes an approver scope covers whose requests its rule decides.
    pub fn expand_approver_scope(&self, workflow: &Workflow, approver: &ApproverScope) -> Vec<ScopeId> {
        let Some(rule) = workflow.rules.iter().find(|r| r.id == approver.rule) else {
            return Vec::new();
        };
        let Some(anchor) = self.index.scope_slot(&approver.anchor) else {
            return Vec::new();
        };
        let covered: Vec<&Scope> = match approver.place {
            Place::Same => self.scope_at(anchor).into_iter().collect(),
            Place::Parent => self.children_of(&approver.anchor),
            Place::Ancestor => self.descendants_of(anchor),
            Place::Global if anchor == self.index.global => self.scopes.values().collect(),
            Place::Global => Vec::new(),
        };
        let mut scopes: Vec<ScopeId> = covered
            .into_iter()
            .filter(|scope| match &rule.target {
                RuleTarget::Kind(kind) => &scope.kind == kind,
                RuleTarget::Role(role) => self.roles.get(role).is_some_and(|r| r.may_be_held_on(&scope.kind)),
            })
            .map(|scope| scope.id.clone())
            .collect();
        scopes.sort();
        scopes
    }

    /// Roles that a rule decides on a scope of `kind`: its own role, or the kind's roles without a rule of their own.
    pub fn roles_decided_by(&self, workflow: &Workflow, rule: &str, kind: &str) -> Vec<RoleId> {
        let Some(rule) = workflow.rules.iter().find(|r| r.id == rule) else {
            return Vec::new();
        };
        match &rule.target {
            RuleTarget::Role(role) => vec![role.clone()],
            RuleTarget::Kind(target) if target == kind => self
                .roles
                .values()
                .filter(|r| {
                    r.may_be_held_on(kind) && workflow.rule_for(&r.id, kind).is_some_and(|own| own.id == rule.id)
                })
                .map(|r| r.id.clone())
                .collect(),
            RuleTarget::Kind(_) => Vec::new(),
        }
    }

    fn descendants_of(&self, slot: Slot) -> Vec<&Scope> {
        let mut seen = BTreeSet::new();
        let mut frontier = self.index.scopes[slot as usize].children.clone();
        while let Some(next) = frontier.pop() {
            if seen.insert(next) {
                frontier.extend(self.index.scopes[next as usize].children.iter().copied());
            }
        }
        seen.into_iter().filter_map(|s| self.scope_at(s)).collect()
    }

    /// Pending, unexpired requests that `user` may approve (never their own).
    pub fn pending_for(&self, workflow: &Workflow, user: &str, now: DateTime<Utc>) -> Vec<RequestId> {
        let actor = Actor::User(user.to_string());
        self.requests
            .values()
            .filter(|r| r.is_pending() && now < r.expires_at && r.user != user)
            .filter(|r| self.authority(workflow, &actor, &r.role, &r.scope, Action::Approve, now).is_some())
            .map(|r| r.id)
            .collect()
    }

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
            Event::ScopeCreated { scope, kind, parents, title, mailbox, .. } => {
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
            Event::RoleRequested { request, user, role, scope, reason, duration, at, expires_at } => {
                let key = (user.clone(), role.clone(), scope.clone());
                self.index.open_requests.insert(key, *request);
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
                };
                self.requests.insert(request.id, request);
            }
            Event::RequestApproved {
                request,
                by,
                token_creator,
                comment,
                stage,
                completes_stage,
                completes_request,
                at,
                ..
            } => {
                let Some(r) = self.requests.get_mut(request) else {
                    return;
                };
                let token_creator = token_creator.clone();
                r.approvals.push(Approval {
                    by: by.clone(),
                    token_creator,
                    stage: *stage,
                    comment: comment.clone(),
                    at: *at,
                });
                if *completes_stage {
                    r.stage = stage + 1;
                }
                if *completes_request {
                    self.close_request(request, RequestStatus::Approved, Some(by.clone()), *at, None);
                }
            }
            Event::RequestRejected { request, by, reason, at } => {
                self.close_request(request, RequestStatus::Rejected, Some(by.clone()), *at, Some(reason.clone()));
            }
            Event::RequestCancelled { request, by, at } => {
                self.close_request(request, RequestStatus::Cancelled, Some(by.clone()), *at, None);
            }
            Event::RequestExpired { request, at } => {
                self.close_request(request, RequestStatus::Expired, None, *at, None);
            }
            Event::RoleGranted { grant, subject, role, scope, origin, by, starts_at, ends_at } => {
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
                if let super::request::GrantOrigin::Request { request } = origin {
                    if let Some(r) = self.requests.get_mut(request) {
                        r.grant = Some(grant.id);
                    }
                }
                self.index.add_grant(&grant);
                self.grants.insert(grant.id, grant);
            }
            Event::GrantRevoked { grant, by, reason, at } => {
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
        }
    }

    fn close_request(
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
        let key = (request.user.clone(), request.role.clone(), request.scope.clone());
        if self.index.open_requests.get(&key) == Some(id) {
            self.index.open_requests.remove(&key);
        }
    }

    fn end_grant(&mut self, id: &GrantId, status: GrantStatus) {
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
