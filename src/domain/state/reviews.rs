//! Access reviews in the state: the items a `ReviewStarted` derives when it is folded, who reviews
//! each, who may decide an item, and who sees a review.

use super::*;
use crate::domain::review::{ItemDecision, OnNoAnswer, ReviewDecision, ReviewItem, ReviewSight, Unanswered};
use std::collections::HashSet;
use std::sync::Arc;

/// What `ReviewStarted` names, as the fold needs it.
pub(crate) struct Selection<'a> {
    pub review: ReviewId,
    pub scope: &'a ScopeId,
    pub roles: Option<&'a [RoleId]>,
    pub title: &'a str,
    pub due_at: DateTime<Utc>,
    pub on_no_answer: OnNoAnswer,
    pub by: &'a Actor,
    pub at: DateTime<Utc>,
    pub scheduled: bool,
}

/// The people who may revoke one role on one scope at the start of a review: by a rule, and the
/// administrators (who review only where nobody may by a rule).
struct Revokers {
    by_rule: Arc<[UserId]>,
    admins: Arc<[UserId]>,
}

/// Shares equal reviewer lists between items, so that a large review keeps few of them.
#[derive(Default)]
struct Interner(HashSet<Arc<[UserId]>>);

impl Interner {
    fn intern(&mut self, people: Vec<UserId>) -> Arc<[UserId]> {
        if let Some(shared) = self.0.get(people.as_slice()) {
            return shared.clone();
        }
        let shared: Arc<[UserId]> = people.into();
        self.0.insert(shared.clone());
        shared
    }
}

impl State {
    pub fn review(&self, id: &ReviewId) -> Option<&Review> {
        self.reviews.get(id)
    }

    pub fn reviews(&self) -> impl Iterator<Item = &Review> {
        self.reviews.values()
    }

    /// When the next scheduled review of `scope` is due, reviews of its kind being scheduled every
    /// `every`: that long after the last one the scheduler started, or after the scope's creation.
    pub fn next_scheduled_review(&self, scope: &str, every: crate::workflow::Duration) -> Option<DateTime<Utc>> {
        let last = self.reviews.values().filter(|r| r.scheduled && r.scope == scope).map(|r| r.started_at).max();
        let since = last.or_else(|| self.scope_created_at.get(scope).copied())?;
        crate::domain::time::end_after(since, every)
    }

    /// The grants a review of `scope` (and `roles`, if given) would cover at `at`: those giving
    /// their role then, held on the scope or below it.
    pub fn grants_under_review<'a>(
        &'a self,
        scope: &str,
        roles: Option<&'a [RoleId]>,
        at: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        let slots: Vec<Slot> = match self.index.scope_slot(scope) {
            Some(slot) => std::iter::once(slot)
                .chain(self.descendants_of(slot).into_iter().filter_map(|s| self.index.scope_slot(&s.id)))
                .collect(),
            None => Vec::new(),
        };
        slots
            .into_iter()
            .flat_map(move |slot| self.index.grants_on_scope.get(&slot).into_iter().flatten())
            .filter_map(|id| self.grants.get(id))
            .filter(move |grant| grant.gives_at(at) && roles.is_none_or(|roles| roles.contains(&grant.role)))
    }

    /// Folds `ReviewStarted`: one item per grant under review, each with its reviewers — the people
    /// who may revoke it by the workflow's rules at the start, never its holder (for a team grant,
    /// never a member), and administrators only where nobody else may.
    pub(super) fn start_review(&mut self, workflow: &Workflow, selection: Selection) {
        let Selection { review, scope, roles, title, due_at, on_no_answer, by, at, scheduled } = selection;
        let mut interner = Interner::default();
        let mut revokers: HashMap<(Slot, Slot), Revokers> = HashMap::new();
        let mut items = BTreeMap::new();
        for grant in self.grants_under_review(scope, roles, at) {
            let Some(scope_slot) = self.index.scope_slot(&grant.scope) else { continue };
            let role_slot = self.index.known_role_slot(&grant.role).unwrap_or(Slot::MAX);
            let found = revokers.entry((role_slot, scope_slot)).or_insert_with(|| {
                // Only holders of a role the rule names (or including one), and admins, may revoke.
                let kind = self.scopes.get(&grant.scope).map_or("", |s| s.kind.as_str());
                let deciding: Vec<Slot> = workflow.rule_for(&grant.role, kind).map_or_else(Vec::new, |rule| {
                    rule.deciders.iter().filter_map(|d| self.index.known_role_slot(&d.role)).collect()
                });
                let people = self.people_holding_above(scope_slot, |held| {
                    held == self.index.admin || deciding.iter().any(|role| self.includes(held, *role))
                });
                let (mut by_rule, mut admins) = (Vec::new(), Vec::new());
                for person in people.iter() {
                    if self.decides_by_rule(workflow, person, &grant.role, &grant.scope, Action::Revoke, at) {
                        by_rule.push(person.clone());
                    } else if self.is_admin(person, at) {
                        admins.push(person.clone());
                    }
                }
                Revokers { by_rule: interner.intern(by_rule), admins: interner.intern(admins) }
            });
            let holders: Vec<&UserId> = match &grant.subject {
                Subject::User(user) => vec![user],
                Subject::Team(team) => self.teams.get(team).into_iter().flat_map(|t| t.members.iter()).collect(),
            };
            let held_by = |pool: &Arc<[UserId]>| pool.iter().filter(|p| holders.contains(p)).count();
            // The rule's revokers less the holders; failing anyone, the admins less the holders.
            let pool = if found.by_rule.len() > held_by(&found.by_rule) { &found.by_rule } else { &found.admins };
            let excluded = (held_by(pool) > 0).then(|| interner.intern(holders.iter().map(|h| (*h).clone()).collect()));
            let item = ReviewItem { grant: grant.id, pool: pool.clone(), excluded, decision: None, unanswered: None };
            items.insert(grant.id, item);
        }
        let review = Review {
            id: review,
            scope: scope.clone(),
            roles: roles.map(<[RoleId]>::to_vec),
            title: title.to_string(),
            due_at,
            on_no_answer,
            started_by: by.clone(),
            started_at: at,
            scheduled,
            items,
            decided: 0,
            reminded_at: None,
            closed_by: None,
            closed_at: None,
        };
        self.reviews.insert(review.id, review);
    }

    pub(super) fn decide_review_item(
        &mut self,
        review: &ReviewId,
        item: &GrantId,
        decision: ReviewDecision,
        reason: &str,
        by: &Actor,
        at: DateTime<Utc>,
    ) {
        let Some(review) = self.reviews.get_mut(review) else { return };
        let Some(item) = review.items.get_mut(item) else { return };
        if item.decision.is_none() {
            review.decided += 1;
        }
        item.decision = Some(Box::new(ItemDecision { decision, by: by.clone(), reason: reason.to_string(), at }));
    }

    /// Folds `ReviewClosed`: each undecided item follows `on_no_answer`, unless its grant ended first.
    pub(super) fn close_review(&mut self, review: &ReviewId, by: &Actor, at: DateTime<Utc>) {
        let Some(review) = self.reviews.get_mut(review) else { return };
        review.closed_by = Some(by.clone());
        review.closed_at = Some(at);
        let silence = match review.on_no_answer {
            OnNoAnswer::Keep => Unanswered::Kept,
            OnNoAnswer::Revoke => Unanswered::Revoked,
        };
        for item in review.items.values_mut().filter(|item| item.decision.is_none()) {
            let gives = self.grants.get(&item.grant).is_some_and(|grant| grant.gives_at(at));
            item.unanswered = Some(if gives { silence } else { Unanswered::Ended });
        }
    }

    pub(super) fn remind_reviewers(&mut self, review: &ReviewId, at: DateTime<Utc>) {
        if let Some(review) = self.reviews.get_mut(review) {
            review.reminded_at = Some(at);
        }
    }

    /// Whether `actor` may answer for `item`: one of its listed reviewers, or the delegate of one
    /// (a delegation in force at `now` covering the grant's scope). The one place that judges it.
    /// Authority to revoke the grant now is judged apart, by the decision.
    pub fn may_review_item(&self, item: &ReviewItem, actor: &Actor, now: DateTime<Utc>) -> bool {
        let Actor::User(user) = actor else {
            return true;
        };
        item.is_reviewer(user)
            || self.grants.get(&item.grant).is_some_and(|grant| {
                self.delegations_covering(user, &grant.scope, now).any(|d| item.is_reviewer(&d.from))
            })
    }

    /// How much of `review` `user` sees at `now`: all of it (its starter, administrators and
    /// auditors), their own items (a reviewer), or nothing.
    pub fn review_sight(&self, review: &Review, user: &str, now: DateTime<Utc>) -> Option<ReviewSight> {
        let actor = Actor::User(UserId::known(user));
        if review.started_by == actor || self.reads_everything(user, now) {
            Some(ReviewSight::Whole)
        } else if review.items.values().any(|item| self.may_review_item(item, &actor, now)) {
            Some(ReviewSight::OwnItems)
        } else {
            None
        }
    }

    /// The items of `review` that `user` sees with `sight`: every one, or those they may answer for.
    pub fn review_items_seen<'a>(
        &'a self,
        review: &'a Review,
        user: &'a str,
        sight: ReviewSight,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a ReviewItem> + 'a {
        let actor = Actor::User(UserId::known(user));
        review.items.values().filter(move |item| self.sees_review_item(item, &actor, sight, now))
    }

    /// Whether `actor`, seeing a review with `sight`, sees this item of it.
    pub fn sees_review_item(&self, item: &ReviewItem, actor: &Actor, sight: ReviewSight, now: DateTime<Utc>) -> bool {
        sight == ReviewSight::Whole || self.may_review_item(item, actor, now)
    }
}
