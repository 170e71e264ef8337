//! The current state, evolved from events (`fold.rs`), and the queries answered from it: what
//! exists and who holds what here, may-U-do-P-on-S and who may decide in `authority.rs`.

use super::api_token::ApiToken;
use super::delegation::{Delegation, DelegationId};
use super::event::Event;
use super::grant::{Grant, GrantStatus};
use super::index::{Holding, Index, Slot};
use super::preferences::MailPreferences;
use super::request::{Approval, Request, RequestStatus};
use super::review::{Review, ReviewId};
use super::types::{Actor, GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use super::visibility::Standing;
use super::webhook::{Webhook, WebhookId};
use crate::workflow::permission::parse_permission;
use crate::workflow::{
    role_closure, Action, Decider, Place, Role, RoleId, RuleTarget, Stage, Workflow, AUDITOR, GLOBAL,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod authority;
mod digest;
mod fold;
mod reviews;

pub use digest::DigestItems;

pub use fold::evolve;

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

/// How someone may decide: through a decision rule, through the escalation of the request's
/// stage, only because they are an administrator, or as a delegate using a delegator's authority
/// (which came from a rule or an escalation, never from admin power or another delegation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    Rule,
    Escalation,
    Admin,
    Delegated { delegator: UserId, escalation: bool },
}

impl Authority {
    /// The delegator whose authority a delegate uses.
    pub fn on_behalf_of(&self) -> Option<&UserId> {
        match self {
            Authority::Delegated { delegator, .. } => Some(delegator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestDecider {
    pub user: UserId,
    /// True when the person may decide only because they are an administrator (such people are
    /// not notified of new requests).
    pub admin_only: bool,
    /// True when they may decide only because the request's stage was escalated to them.
    pub escalation: bool,
    /// For a delegate: the delegator whose authority they would use.
    pub delegate_of: Option<UserId>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    delegations: BTreeMap<DelegationId, Delegation>,
    index: Index,
    reviews: BTreeMap<ReviewId, Review>,
    /// When each scope was created: a scheduled review of it is first due `every` later.
    scope_created_at: BTreeMap<ScopeId, DateTime<Utc>>,
    /// Only users who set theirs; everyone else gets each mail.
    mail_preferences: BTreeMap<UserId, MailPreferences>,
    /// The UTC day of each user's last digest.
    digest_sent_on: BTreeMap<UserId, chrono::NaiveDate>,
    webhooks: BTreeMap<WebhookId, Webhook>,
}

impl State {
    /// The state before any event: the `global` scope and the workflow's roles.
    pub fn new(workflow: &Workflow) -> State {
        let global = Scope {
            id: ScopeId::global(),
            kind: GLOBAL.to_string(),
            parents: Vec::new(),
            title: "Global".to_string(),
            mailbox: None,
        };
        let mut state = State {
            users: BTreeMap::new(),
            scopes: [(ScopeId::global(), global)].into(),
            roles: workflow.roles.clone(),
            teams: BTreeMap::new(),
            requests: BTreeMap::new(),
            grants: BTreeMap::new(),
            api_tokens: BTreeMap::new(),
            token_by_hash: HashMap::new(),
            token_roles_issued_at: BTreeMap::new(),
            delegations: BTreeMap::new(),
            index: Index::new(),
            reviews: BTreeMap::new(),
            scope_created_at: BTreeMap::new(),
            mail_preferences: BTreeMap::new(),
            digest_sent_on: BTreeMap::new(),
            webhooks: BTreeMap::new(),
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
    pub fn delegation(&self, id: &DelegationId) -> Option<&Delegation> {
        self.delegations.get(id)
    }
    /// Every delegation, ended or not, in id order.
    pub fn webhook(&self, id: &WebhookId) -> Option<&Webhook> {
        self.webhooks.get(id)
    }

    /// The subscriptions, in id order.
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values()
    }

    pub fn delegations(&self) -> impl Iterator<Item = &Delegation> {
        self.delegations.values()
    }

    /// The stages a request goes through: its rule's, or one approval when no rule decides it.
    pub fn stages_of(&self, workflow: &Workflow, request: &Request) -> Vec<Stage> {
        let kind = self.scope(&request.scope).map(|s| s.kind.as_str()).unwrap_or_default();
        match workflow.rule_for(&request.role, kind) {
            Some(rule) => rule.stages.clone(),
            None => Stage::single_approval(),
        }
    }

    /// When the stage the request waits in escalates: `None` when the request is not pending, its
    /// stage names no `escalate_after`, or the stage is already escalated.
    pub fn escalation_due(&self, workflow: &Workflow, request: &Request) -> Option<DateTime<Utc>> {
        if !request.is_pending() || request.is_escalated() {
            return None;
        }
        let after = self.stages_of(workflow, request).get(request.stage as usize)?.escalate_after?;
        Some(super::time::end_after(request.in_stage_since(), after).unwrap_or_else(super::time::latest))
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
    /// Asked on every call with an API token, so it walks the holdings without allocating.
    pub fn holds_api_role(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.holdings_of(user)
            .filter(|h| h.gives_at(now))
            .flat_map(|h| self.index.roles[h.role as usize].closure.iter())
            .filter_map(|slot| self.index.role_id(*slot))
            .any(|role| self.roles.get(role).is_some_and(|r| r.api_role))
    }

    /// The pending request of this user for this role on this scope, if any.
    pub fn open_request(&self, user: &str, role: &str, scope: &str) -> Option<&Request> {
        let key = (UserId::known(user), role.to_string(), ScopeId::known(scope));
        self.index.open_requests.get(&key).and_then(|id| self.requests.get(id))
    }

    /// The pending request to extend this grant, if any.
    pub fn open_extension(&self, grant: &GrantId) -> Option<&Request> {
        self.index.open_extensions.get(grant).and_then(|id| self.requests.get(id))
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
            .filter_map(|ancestor| self.index.scope_id(*ancestor).map(ScopeId::known))
            .collect()
    }

    /// Whether `scope` is `ancestor` or lies under it (false when either is unknown).
    pub fn is_within(&self, scope: &str, ancestor: &str) -> bool {
        match (self.index.scope_slot(scope), self.index.scope_slot(ancestor)) {
            (Some(scope), Some(ancestor)) => self.index.lineage(scope).contains(&ancestor),
            _ => false,
        }
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
        self.standing(user, now).reads_everything()
    }

    /// Auditors who are not also administrators change nothing (SPEC "Users").
    pub fn changes_nothing(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.standing(user, now).changes_nothing()
    }

    /// Whether the user is an administrator and whether an auditor, at `now`.
    pub fn standing(&self, user: &str, now: DateTime<Utc>) -> Standing {
        let auditor = self.subject_holds(&Subject::User(UserId::known(user)), AUDITOR, GLOBAL, now);
        Standing { admin: self.is_admin(user, now), auditor }
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

    /// The roles a subject holds anywhere at `now`, or will hold once a grant starting later
    /// starts (a user's include their teams').
    pub fn roles_held(&self, subject: &Subject, now: DateTime<Utc>) -> BTreeSet<RoleId> {
        let holdings: Vec<&Holding> = match subject {
            Subject::User(user) => self.holdings_of(user).collect(),
            Subject::Team(team) => self.index.team_holdings(team).iter().collect(),
        };
        holdings
            .into_iter()
            .filter(|h| h.ends_at.is_none_or(|end| now < end))
            .flat_map(|h| self.index.roles[h.role as usize].closure.iter())
            .filter_map(|slot| self.index.role_id(*slot).map(str::to_string))
            .collect()
    }
}
