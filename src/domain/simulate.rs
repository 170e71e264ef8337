//! Policy simulation (SPEC "Policy simulation"): the recorded history judged under a candidate
//! workflow against the configured one. Pure: the caller reads the log once and hands each event
//! in with its place in the log (`P`, a position to the store, anything to a test).
//!
//! Each workflow's authority is asked of a state folded under it, as a server running that
//! workflow would answer: grants, scopes, teams and delegations come out the same under both, but
//! each workflow brings its role catalogue (what a role includes, where it may be held). When the
//! catalogues are equal the one state serves both (the rest of a fold that depends on the workflow,
//! the reviewers of access reviews, is judged by nobody here). Only what NEW changes is reported: a
//! decision the configured workflow allows and NEW does not, a grant the configured workflow
//! allows and NEW refuses, a decision right one of them gives and the other does not; what cannot
//! differ (the same rules on the same catalogue, the same limits) is not judged at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::Event;
use super::grant::{Grant, GrantOrigin};
use super::state::State;
use super::types::{Actor, GrantId, RequestId, ScopeId, Subject, UserId};
use crate::workflow::{role_closure, Action, RoleId, Workflow};

/// What a difference is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DifferenceKind {
    /// A recorded approval, rejection, revocation or assignment that NEW gives its actor no authority for.
    DecisionWithoutAuthority,
    /// A grant in force at the end that NEW would refuse.
    GrantNotAllowed,
    /// A decision right (a role on a scope) that NEW gives and the configured workflow does not.
    DeciderGained,
    /// A decision right that the configured workflow gives and NEW does not.
    DeciderLost,
}

impl DifferenceKind {
    /// The kind's name in answers and tables: `decision_without_authority`, ….
    pub fn name(self) -> &'static str {
        match self {
            DifferenceKind::DecisionWithoutAuthority => "decision_without_authority",
            DifferenceKind::GrantNotAllowed => "grant_not_allowed",
            DifferenceKind::DeciderGained => "decider_gained",
            DifferenceKind::DeciderLost => "decider_lost",
        }
    }
}

impl Serialize for DifferenceKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One difference: `at` is where in the log it happened (a decision, a grant), none for decision rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference<P> {
    pub at: Option<P>,
    pub kind: DifferenceKind,
    /// The decider, the holder of the grant (`team:ID` for a team's), or the person whose rights changed.
    pub user: String,
    pub role: RoleId,
    pub scope: ScopeId,
    pub detail: String,
}

/// How many differences of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DifferenceCounts {
    pub decision_without_authority: usize,
    pub grant_not_allowed: usize,
    pub decider_gained: usize,
    pub decider_lost: usize,
}

impl DifferenceCounts {
    pub fn count(&mut self, kind: DifferenceKind) {
        *match kind {
            DifferenceKind::DecisionWithoutAuthority => &mut self.decision_without_authority,
            DifferenceKind::GrantNotAllowed => &mut self.grant_not_allowed,
            DifferenceKind::DeciderGained => &mut self.decider_gained,
            DifferenceKind::DeciderLost => &mut self.decider_lost,
        } += 1;
    }
}

/// A workflow and the state folded under it.
struct Judged<'a> {
    workflow: &'a Workflow,
    state: &'a State,
}

/// The history so far under both workflows, and the decisions NEW would not have allowed.
pub struct Simulation<'w, P> {
    current: &'w Workflow,
    candidate: &'w Workflow,
    /// Folded under the configured workflow.
    state: State,
    /// Folded under NEW, when its role catalogue differs (else `state` serves both).
    candidate_state: Option<State>,
    /// The same rules on the same catalogue: no decision and no decision right can differ.
    same_authority: bool,
    /// Besides the same catalogue, the same incompatible pairs and longest duration: no grant can differ.
    same_limits: bool,
    decisions: Vec<Difference<P>>,
    /// Where each grant was made, for the grants NEW refuses at the end.
    granted_at: HashMap<GrantId, P>,
}

/// A decision a person recorded, with who it concerns.
struct Decision<'e> {
    actor: &'e UserId,
    action: Action,
    on: Concerning<'e>,
    at: DateTime<Utc>,
    /// What was done to what, for the detail: `("approved request", id)`.
    deed: (&'static str, uuid::Uuid),
}

enum Concerning<'e> {
    Request(&'e RequestId),
    Grant { role: &'e str, scope: &'e ScopeId, subject: &'e Subject },
}

impl<'w, P: Clone + Ord> Simulation<'w, P> {
    pub fn new(current: &'w Workflow, candidate: &'w Workflow) -> Self {
        let same_catalogue = current.roles == candidate.roles;
        let (now, new) = (&current.settings, &candidate.settings);
        Simulation {
            current,
            candidate,
            state: State::new(current),
            candidate_state: (!same_catalogue).then(|| State::new(candidate)),
            same_authority: same_catalogue && current.rules == candidate.rules,
            same_limits: same_catalogue
                && now.incompatible == new.incompatible
                && now.max_grant_duration == new.max_grant_duration,
            decisions: Vec::new(),
            granted_at: HashMap::new(),
        }
    }

    /// The configured workflow and NEW, each with the state folded under it.
    fn judges(&self) -> (Judged<'_>, Judged<'_>) {
        let candidate_state = self.candidate_state.as_ref().unwrap_or(&self.state);
        (
            Judged { workflow: self.current, state: &self.state },
            Judged { workflow: self.candidate, state: candidate_state },
        )
    }

    /// Judges the event (a decision, against the states before it) and folds it into both
    /// states. `recorded_at` is the moment of decisions whose event names none (an assignment).
    pub fn step(&mut self, at: P, recorded_at: DateTime<Utc>, event: &Event) {
        if !self.same_authority {
            let (current, candidate) = self.judges();
            // The configured workflow is asked only when NEW says no, the rare case.
            let lacking = decision_in(&self.state, event, recorded_at)
                .filter(|decision| !candidate.allows(decision) && current.allows(decision))
                .map(|decision| without_authority(&self.state, at.clone(), decision));
            self.decisions.extend(lacking);
        }
        if let (Event::RoleGranted { grant, .. }, false) = (event, self.same_limits) {
            self.granted_at.insert(*grant, at);
        }
        self.state.apply(self.current, event);
        if let Some(state) = &mut self.candidate_state {
            state.apply(self.candidate, event);
        }
    }

    /// The differences in log order: the decisions, the grants in force at `now` that NEW refuses
    /// (in the order they were made), then the decision rights at `now`, by user, role and scope.
    pub fn finish(mut self, now: DateTime<Utc>) -> Vec<Difference<P>> {
        let mut differences = std::mem::take(&mut self.decisions);
        let (current, candidate) = self.judges();
        if !self.same_limits {
            let mut refused: Vec<(&P, Difference<P>)> = self
                .state
                .grants()
                .filter(|grant| grant.gives_now_or_later(now))
                .filter_map(|grant| {
                    let why = candidate.refusal(grant, now)?;
                    if current.refusal(grant, now).is_some() {
                        return None;
                    }
                    let at = self.granted_at.get(&grant.id)?;
                    Some((at, not_allowed(at.clone(), grant, why)))
                })
                .collect();
            // Grant ids are not in log order; the places they were made at are.
            refused.sort_by_key(|(at, _)| *at);
            differences.extend(refused.into_iter().map(|(_, difference)| difference));
        }
        if !self.same_authority {
            for user in self.state.users() {
                let before = current.state.decision_rights(current.workflow, &user.id, now);
                let after = candidate.state.decision_rights(candidate.workflow, &user.id, now);
                differences.extend(rights_changed(&user.id, &before, &after));
            }
        }
        differences
    }
}

/// A decision that NEW gives its actor no authority for.
fn without_authority<P>(state: &State, at: P, decision: Decision<'_>) -> Difference<P> {
    let (role, scope) = match decision.on {
        Concerning::Request(id) => {
            let request = state.request(id);
            (request.map(|r| r.role.clone()).unwrap_or_default(), request.map(|r| r.scope.clone()))
        }
        Concerning::Grant { role, scope, .. } => (role.to_string(), Some(scope.clone())),
    };
    let scope = scope.unwrap_or_else(ScopeId::global);
    let action = action_name(decision.action);
    let detail = format!(
        "{} {} at {}: under the candidate {} had no authority to {action} {role} on {scope}",
        decision.deed.0,
        decision.deed.1,
        decision.at.to_rfc3339(),
        decision.actor
    );
    Difference {
        at: Some(at),
        kind: DifferenceKind::DecisionWithoutAuthority,
        user: decision.actor.to_string(),
        role,
        scope,
        detail,
    }
}

impl Judged<'_> {
    /// Whether the workflow gives the decision's actor authority at its moment.
    fn allows(&self, decision: &Decision<'_>) -> bool {
        let actor = Actor::User(decision.actor.clone());
        let authority = match decision.on {
            Concerning::Request(id) => self
                .state
                .request(id)
                .and_then(|r| self.state.request_authority(self.workflow, &actor, r, decision.action, decision.at)),
            Concerning::Grant { role, scope, subject } => {
                self.state.authority_for(self.workflow, &actor, (role, scope), subject, decision.action, decision.at)
            }
        };
        authority.is_some()
    }

    /// Why the workflow would refuse the grant (it was folded into this state), if it would: an
    /// unknown role, a scope of a kind the role may not be held on, a role incompatible with one
    /// the holder also holds, or a longer time than the role may be held.
    fn refusal(&self, grant: &Grant, now: DateTime<Utc>) -> Option<String> {
        let Some(role) = self.state.role(&grant.role) else {
            return Some(format!("the role {} is unknown", grant.role));
        };
        let kind = self.state.scope(&grant.scope).map(|s| s.kind.as_str()).unwrap_or_default();
        if !role.may_be_held_on(kind) {
            return Some(format!("{} may not be held on a scope of kind {kind}", role.id));
        }
        let closure = role_closure(self.state.roles(), &role.id);
        let held = self.state.roles_held(&grant.subject, now);
        let clash = closure.iter().find_map(|r| {
            self.workflow
                .incompatible_with(r)
                .find(|other| held.contains(*other) && !closure.iter().any(|c| c == other))
        });
        if let Some(other) = clash {
            return Some(format!("{} is incompatible with {other}, also held", role.id));
        }
        let max = match (role.max_duration, self.workflow.settings.max_grant_duration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        match grant.ends_at {
            None => Some(format!("it has no end, and {} may be held for at most {max}", role.id)),
            Some(end) if (end - grant.starts_at).num_seconds() > max.seconds() => {
                let days = (end - grant.starts_at).num_seconds() as f64 / 86_400.0;
                Some(format!("it lasts {days:.1} days, and {} may be held for at most {max}", role.id))
            }
            Some(_) => None,
        }
    }
}

/// The decision the event records, if it is one a workflow's authority governs: approvals,
/// rejections, revocations by someone other than the holder, direct assignments. The command
/// line's (`bootstrap-admin`, the scheduler) are exempt, as in the rules.
fn decision_in<'a>(state: &'a State, event: &'a Event, recorded_at: DateTime<Utc>) -> Option<Decision<'a>> {
    let (actor, action, on, at, deed) = match event {
        Event::RequestApproved { request, by: Actor::User(actor), at, .. } => {
            (actor, Action::Approve, Concerning::Request(request), *at, ("approved request", *request))
        }
        Event::RequestRejected { request, by: Actor::User(actor), at, .. } => {
            (actor, Action::Reject, Concerning::Request(request), *at, ("rejected request", *request))
        }
        Event::GrantRevoked { grant: id, by: Actor::User(actor), at, .. } => {
            let grant = state.grant(id)?;
            if grant.subject == Subject::User(actor.clone()) {
                return None;
            }
            // The grant's role, scope and holder are the state's: the event names the grant only.
            let on = Concerning::Grant { role: &grant.role, scope: &grant.scope, subject: &grant.subject };
            (actor, Action::Revoke, on, *at, ("revoked grant", *id))
        }
        Event::RoleGranted {
            grant,
            subject,
            role,
            scope,
            origin: GrantOrigin::Assignment { .. },
            by: Actor::User(actor),
            ..
        } => (
            actor,
            Action::Approve,
            Concerning::Grant { role, scope, subject },
            recorded_at,
            ("assigned grant", *grant),
        ),
        _ => return None,
    };
    Some(Decision { actor, action, on, at, deed })
}

/// A grant in force that NEW refuses, and why.
fn not_allowed<P>(at: P, grant: &Grant, why: String) -> Difference<P> {
    let user = match &grant.subject {
        Subject::User(user) => user.to_string(),
        Subject::Team(team) => format!("team:{team}"),
    };
    Difference {
        at: Some(at),
        kind: DifferenceKind::GrantNotAllowed,
        user,
        role: grant.role.clone(),
        scope: grant.scope.clone(),
        detail: format!("grant {}: the candidate would refuse it: {why}", grant.id),
    }
}

type Rights = BTreeMap<(RoleId, ScopeId), BTreeSet<Action>>;

/// One difference per role and scope whose actions the user gains or loses under NEW.
fn rights_changed<P>(user: &UserId, before: &Rights, after: &Rights) -> Vec<Difference<P>> {
    let none = BTreeSet::new();
    let decided: BTreeSet<&(RoleId, ScopeId)> = before.keys().chain(after.keys()).collect();
    let mut changed = Vec::new();
    for key in decided {
        let (was, will) = (before.get(key).unwrap_or(&none), after.get(key).unwrap_or(&none));
        let (role, scope) = key;
        for (kind, actions, verb) in [
            (DifferenceKind::DeciderLost, was.difference(will), "may no longer"),
            (DifferenceKind::DeciderGained, will.difference(was), "may"),
        ] {
            let actions: Vec<&str> = actions.map(|action| action_name(*action)).collect();
            if actions.is_empty() {
                continue;
            }
            changed.push(Difference {
                at: None,
                kind,
                user: user.to_string(),
                role: role.clone(),
                scope: scope.clone(),
                detail: format!("under the candidate {user} {verb} {} {role} on {scope}", actions.join(", ")),
            });
        }
    }
    changed
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Approve => "approve",
        Action::Reject => "reject",
        Action::Revoke => "revoke",
    }
}
