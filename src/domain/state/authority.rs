//! May U do P on S, and who may decide what: permissions through grants and their scopes,
//! authority through decision rules, deciders, approver scopes, pending queues.

use super::*;

/// What a decision is about, for [`State::judge`].
struct Matter<'a> {
    role: &'a str,
    scope: &'a str,
    action: Action,
    /// The request decided, when it is one (its stage may be escalated; its requester benefits).
    request: Option<&'a Request>,
    /// Whom an assignment or a revocation concerns.
    beneficiary: Option<&'a Subject>,
}

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
        rule.allows(action) && self.holds_decider(user, &rule.deciders, target, now)
    }

    /// Whether the user holds (or holds a role including) one of the deciding roles at its place
    /// relative to `target`, at `now`.
    fn holds_decider(&self, user: &str, deciders: &[Decider], target: Slot, now: DateTime<Utc>) -> bool {
        let deciders: Vec<(Slot, Place)> =
            deciders.iter().filter_map(|d| self.index.known_role_slot(&d.role).map(|slot| (slot, d.place))).collect();
        self.holdings_of(user).any(|h| {
            h.gives_at(now)
                && deciders
                    .iter()
                    .any(|(role, place)| self.includes(h.role, *role) && self.is_at(*place, h.scope, target))
        })
    }

    /// Whether the request's stage was escalated and `user` is one of its escalation deciders: they
    /// decide (approve, reject, where the rule allows it) the request as a whole. Once the request
    /// is closed, the escalation deciders of any stage escalated keep the standing (they see it).
    fn decides_by_escalation(
        &self,
        workflow: &Workflow,
        user: &str,
        request: &Request,
        action: Action,
        now: DateTime<Utc>,
    ) -> bool {
        if action == Action::Revoke || request.escalated_stages.is_empty() {
            return false;
        }
        let (Some(target), Some(kind)) =
            (self.index.scope_slot(&request.scope), self.scopes.get(&request.scope).map(|s| &s.kind))
        else {
            return false;
        };
        let Some(rule) = workflow.rule_for(&request.role, kind).filter(|rule| rule.allows(action)) else {
            return false;
        };
        let escalated =
            request.escalated_stages.iter().filter(|stage| !request.is_pending() || **stage == request.stage);
        escalated
            .filter_map(|stage| rule.stages.get(*stage as usize))
            .any(|stage| self.holds_decider(user, &stage.escalation, target, now))
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
        self.judge(workflow, actor, &Matter { role, scope, action, request: None, beneficiary: None }, now)
    }

    /// Like [`State::authority`], for a decision that benefits `beneficiary` (an assignment, a
    /// revocation): a delegate never uses the authority of a delegator to the delegator's benefit.
    pub fn authority_for(
        &self,
        workflow: &Workflow,
        actor: &Actor,
        (role, scope): (&str, &str),
        beneficiary: &Subject,
        action: Action,
        now: DateTime<Utc>,
    ) -> Option<Authority> {
        self.judge(workflow, actor, &Matter { role, scope, action, request: None, beneficiary: Some(beneficiary) }, now)
    }

    /// The authority `actor` has to take `action` on a request: as [`State::authority`], and also
    /// through the escalation of the request's stage; a delegate never decides their delegator's request.
    pub fn request_authority(
        &self,
        workflow: &Workflow,
        actor: &Actor,
        request: &Request,
        action: Action,
        now: DateTime<Utc>,
    ) -> Option<Authority> {
        let matter =
            Matter { role: &request.role, scope: &request.scope, action, request: Some(request), beneficiary: None };
        self.judge(workflow, actor, &matter, now)
    }

    /// The one judgement of authority: by rule (or escalation) first, then admin power, then a
    /// delegation in force whose delegator has the authority by rule (or escalation) at `now`.
    ///
    /// Hook for access reviews (built on another branch): a review decision asks
    /// [`State::authority_for`] with the grant's role, scope and subject (the action reviews
    /// decide with, e.g. `Action::Revoke`) and records `authority.on_behalf_of()` on its event;
    /// delegates then review what their delegators may, with no code of their own.
    fn judge(&self, workflow: &Workflow, actor: &Actor, matter: &Matter<'_>, now: DateTime<Utc>) -> Option<Authority> {
        let Actor::User(user) = actor else {
            return Some(Authority::Admin);
        };
        if let Some(own) = self.by_rules(workflow, user, matter, now) {
            return Some(own);
        }
        if self.is_admin(user, now) {
            return Some(Authority::Admin);
        }
        self.delegated(workflow, user, matter, now)
    }

    /// Authority that comes from decision rules: the rule's deciders, or the escalation deciders
    /// of an escalated stage. Never admin power, never a delegation.
    fn by_rules(&self, workflow: &Workflow, user: &str, matter: &Matter<'_>, now: DateTime<Utc>) -> Option<Authority> {
        if self.decides_as_rules_say(workflow, user, matter.role, matter.scope, matter.action, now) {
            return Some(Authority::Rule);
        }
        let escalated =
            matter.request.is_some_and(|r| self.decides_by_escalation(workflow, user, r, matter.action, now));
        escalated.then_some(Authority::Escalation)
    }

    /// The authority a delegate has through delegations to them in force at `now` covering the
    /// matter's scope: their delegator's by rule, judged at `now`, never on the delegator's own matters.
    fn delegated(&self, workflow: &Workflow, user: &str, matter: &Matter<'_>, now: DateTime<Utc>) -> Option<Authority> {
        self.delegations_covering(user, matter.scope, now).filter(|d| !self.benefits(matter, &d.from)).find_map(|d| {
            let escalation = self.by_rules(workflow, &d.from, matter, now)? == Authority::Escalation;
            Some(Authority::Delegated { delegator: d.from.clone(), escalation })
        })
    }

    /// The delegations to `user` in force at `now` whose scope (when they name one) holds `scope`.
    pub(super) fn delegations_covering<'a>(
        &'a self,
        user: &'a str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Delegation> + 'a {
        let lineage = self.index.scope_slot(scope).map(|target| self.index.lineage(target)).unwrap_or_default();
        self.delegations.values().filter(move |d| {
            d.to == user
                && d.in_force(now)
                && d.scope.as_ref().is_none_or(|s| self.index.scope_slot(s).is_some_and(|slot| lineage.contains(&slot)))
        })
    }

    /// Whether the matter is `user`'s own: their request, a grant to them or to a team of theirs.
    fn benefits(&self, matter: &Matter<'_>, user: &str) -> bool {
        matter.request.is_some_and(|r| r.user == user)
            || match matter.beneficiary {
                Some(Subject::User(subject)) => subject == user,
                Some(Subject::Team(team)) => self.teams.get(team).is_some_and(|t| t.members.contains(user)),
                None => false,
            }
    }

    /// Whether the user holds, at `now`, a role that a decision rule (or a stage's escalation)
    /// names as deciding: the basis for delegating. Admin power and delegations are no such basis.
    pub fn decides_somewhere_by_rule(&self, workflow: &Workflow, user: &str, now: DateTime<Utc>) -> bool {
        self.holdings_of(user)
            .filter(|h| h.gives_at(now))
            .flat_map(|h| self.index.roles[h.role as usize].closure.iter())
            .filter_map(|slot| self.index.role_id(*slot))
            .any(|role| workflow.is_deciding_role(role))
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

    /// Everyone who may approve the request at `now`, never its requester: by rule, by the
    /// escalation of its stage (`escalation`), as admins only (`admin_only`), or as delegates (`delegate_of`).
    pub fn deciders_for(&self, workflow: &Workflow, request: &RequestId, now: DateTime<Utc>) -> Vec<RequestDecider> {
        let Some(request) = self.requests.get(request) else {
            return Vec::new();
        };
        let Some(target) = self.index.scope_slot(&request.scope) else {
            return Vec::new();
        };
        // Deciders hold something on the scope or above it (admins on global), or are delegates.
        let mut candidates = self.people_holding_above(target, |_| true);
        candidates.extend(self.delegations.values().filter(|d| d.in_force(now)).map(|d| d.to.clone()));
        candidates.remove(&request.user);
        if let Some(by) = &request.requested_by {
            candidates.remove(by);
        }
        // Candidates come sorted, so deciders do too.
        candidates
            .into_iter()
            .filter_map(|user| {
                let actor = Actor::User(user.clone());
                let authority = self.request_authority(workflow, &actor, request, Action::Approve, now)?;
                let (admin_only, escalation, delegate_of) = match authority {
                    Authority::Rule => (false, false, None),
                    Authority::Escalation => (false, true, None),
                    Authority::Admin => (true, false, None),
                    Authority::Delegated { delegator, escalation } => (false, escalation, Some(delegator)),
                };
                Some(RequestDecider { user, admin_only, escalation, delegate_of })
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

    /// What the user may decide by rule at `now`: each role on each scope, with the actions.
    /// Each approver scope's rule decides the roles it targets on the scopes it covers (the rule
    /// found them so); approving a role that includes others also needs authority over those.
    /// Admin power and delegations are no decision right here.
    pub fn decision_rights(
        &self,
        workflow: &Workflow,
        user: &str,
        now: DateTime<Utc>,
    ) -> BTreeMap<(RoleId, ScopeId), BTreeSet<Action>> {
        let mut rights: BTreeMap<(RoleId, ScopeId), BTreeSet<Action>> = BTreeMap::new();
        let mut decided_by: HashMap<(&str, &str), Vec<RoleId>> = HashMap::new();
        for approver in self.approver_scopes(workflow, user, now) {
            let Some(rule) = workflow.rules.iter().find(|r| r.id == approver.rule) else { continue };
            for scope in self.expand_approver_scope(workflow, &approver) {
                let Some(kind) = self.scopes.get(&scope).map(|s| s.kind.as_str()) else { continue };
                let roles = decided_by
                    .entry((&rule.id, kind))
                    .or_insert_with(|| self.roles_decided_by(workflow, &rule.id, kind));
                for role in roles.iter() {
                    let alone = self.roles.get(role).is_none_or(|r| r.includes.is_empty());
                    let actions = rule.actions.iter().copied().filter(|action| {
                        *action != Action::Approve
                            || alone
                            || self.decides_as_rules_say(workflow, user, role, &scope, *action, now)
                    });
                    let held: BTreeSet<Action> = actions.collect();
                    if !held.is_empty() {
                        rights.entry((role.clone(), scope.clone())).or_default().extend(held);
                    }
                }
            }
        }
        rights
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
            .filter(|r| r.is_pending() && now < r.expires_at && !r.concerns(user))
            .filter(|r| self.request_authority(workflow, &actor, r, Action::Approve, now).is_some())
            .map(|r| r.id)
            .collect()
    }
}
