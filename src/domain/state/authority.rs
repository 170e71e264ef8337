//! May U do P on S, and who may decide what: permissions through grants and their scopes,
//! authority through decision rules, deciders, approver scopes, pending queues.

use super::*;

impl State {
    pub(super) fn includes(&self, held: Slot, role: Slot) -> bool {
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
    pub(super) fn is_at(&self, place: Place, holder: Slot, target: Slot) -> bool {
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
    pub(super) fn decides_as_rules_say(
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
        let mut candidates = self.people_holding_above(target, |_| true);
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

    /// Everyone holding something (a role `wanted` says yes to) on the scope or above it (admins
    /// on global), directly or through a team: the only people who may decide there.
    pub(super) fn people_holding_above(&self, target: Slot, wanted: impl Fn(Slot) -> bool) -> BTreeSet<UserId> {
        let mut people = BTreeSet::new();
        for slot in self.index.lineage(target) {
            let grants =
                self.index.grants_on_scope.get(slot).into_iter().flatten().filter_map(|id| self.grants.get(id));
            for grant in grants.filter(|g| self.index.known_role_slot(&g.role).is_some_and(&wanted)) {
                match &grant.subject {
                    Subject::User(user) => {
                        people.insert(user.clone());
                    }
                    Subject::Team(team) => {
                        people.extend(self.teams.get(team).into_iter().flat_map(|t| t.members.iter().cloned()));
                    }
                }
            }
        }
        people
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
                            anchor: ScopeId::known(anchor),
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

    pub(super) fn descendants_of(&self, slot: Slot) -> Vec<&Scope> {
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
        let actor = Actor::User(UserId::known(user));
        self.requests
            .values()
            .filter(|r| r.is_pending() && now < r.expires_at && r.user != user)
            .filter(|r| self.authority(workflow, &actor, &r.role, &r.scope, Action::Approve, now).is_some())
            .map(|r| r.id)
            .collect()
    }
}
