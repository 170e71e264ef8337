//! Access reviews in the pure domain: the items a `ReviewStarted` derives when folded (and derives
//! again on a replay), who reviews each, the decisions' refusals in order, the silence rule.

use super::*;
use crate::workflow::Duration;
use std::collections::BTreeMap;

fn user(id: &str) -> Subject {
    Subject::User(UserId::known(id))
}

/// EGI ⊃ NGI_A ⊃ SITE_A, SITE_B; `mgr` manages SITE_A, `ngim` NGI_A; `alice` and the team `ops`
/// (whose member is `mgr`) administer SITE_A, `bob` SITE_B. The grants by holder.
fn egi_world() -> (World, BTreeMap<&'static str, GrantId>) {
    let mut world = World::new(workflow("egi.toml"));
    world.register(&["root", "mgr", "ngim", "alice", "bob"]);
    world.assign("cli", user("root"), "admin", "global").unwrap();
    egi_tree(&mut world, "cli");
    world.ok("cli", Command::CreateTeam { id: TeamId::known("ops"), title: "Ops".into() });
    world.ok("cli", Command::AddTeamMember { team: TeamId::known("ops"), user: UserId::known("mgr") });
    let mut grants = BTreeMap::new();
    for (holder, subject, role, on) in [
        ("mgr", user("mgr"), "site-operations-manager", "SITE_A"),
        ("ngim", user("ngim"), "ngi-operations-manager", "NGI_A"),
        ("alice", user("alice"), "site-administrator", "SITE_A"),
        ("ops", Subject::Team(TeamId::known("ops")), "site-administrator", "SITE_A"),
        ("bob", user("bob"), "site-administrator", "SITE_B"),
    ] {
        grants.insert(holder, world.assign("cli", subject, role, on).unwrap());
    }
    (world, grants)
}

fn start(scope: &str, on_no_answer: OnNoAnswer) -> Command {
    Command::StartReview {
        scope: ScopeId::known(scope),
        roles: None,
        due: ReviewDue::After(Duration::from_seconds(14 * 86_400).unwrap()),
        on_no_answer,
        title: None,
    }
}

fn started(events: &[Event]) -> ReviewId {
    match events {
        [Event::ReviewStarted { review, .. }] => *review,
        other => panic!("unexpected {other:?}"),
    }
}

fn answer(review: ReviewId, item: GrantId, decision: ReviewDecision) -> Command {
    Command::DecideReviewItem { review, item, decision, reason: "checked".into() }
}

fn reviewers_of(world: &World, review: ReviewId, grant: GrantId) -> Vec<String> {
    let item = &world.state.review(&review).unwrap().items[&grant];
    item.reviewers().map(ToString::to_string).collect()
}

#[test]
fn a_started_review_is_one_event_whose_fold_derives_the_items_and_a_replay_the_same() {
    let (mut world, grants) = egi_world();
    let events = world.ok("ngim", start("NGI_A", OnNoAnswer::Keep));
    let review = started(&events);
    let items: Vec<GrantId> = world.state.review(&review).unwrap().items.keys().copied().collect();
    let mut expected: Vec<GrantId> = grants.values().copied().collect();
    expected.sort();
    assert_eq!(items, expected, "every grant on NGI_A or below, by grant id");
    assert_eq!(reviewers_of(&world, review, grants["alice"]), ["mgr", "ngim"]);
    assert_eq!(reviewers_of(&world, review, grants["mgr"]), ["ngim"], "never the holder");
    assert_eq!(reviewers_of(&world, review, grants["ops"]), ["ngim"], "never a member of the team holding it");
    assert_eq!(reviewers_of(&world, review, grants["bob"]), ["ngim"]);
    assert_eq!(reviewers_of(&world, review, grants["ngim"]), ["root"], "admins only where nobody else may");
    let item = &world.state.review(&review).unwrap().items[&grants["alice"]];
    assert!(world.state.may_review_item(item, &World::actor("mgr"), world.now));
    assert!(!world.state.may_review_item(item, &World::actor("root"), world.now));
    // The site's own review: only its grants.
    let site = started(&world.ok("mgr", start("SITE_A", OnNoAnswer::Keep)));
    assert_eq!(world.state.review(&site).unwrap().items.len(), 3);
    // A replay of the log derives the same items, reviewers and ids.
    assert_eq!(State::replay(&world.workflow, &world.events), world.state);
}

#[test]
fn who_may_start_a_review_and_when_it_is_due() {
    let (mut world, _) = egi_world();
    let before = world.state.clone();
    assert_eq!(world.refused("alice", start("SITE_A", OnNoAnswer::Keep)), "not_a_decider");
    assert_eq!(world.refused("mgr", start("NGI_A", OnNoAnswer::Keep)), "not_a_decider", "SITE_B is not theirs");
    assert_eq!(world.refused("mgr", start("SITE_B", OnNoAnswer::Keep)), "not_a_decider");
    assert_eq!(world.refused("root", start("NOWHERE", OnNoAnswer::Keep)), "unknown_scope");
    let due = |due| Command::StartReview {
        scope: ScopeId::known("SITE_A"),
        roles: None,
        due,
        on_no_answer: OnNoAnswer::Keep,
        title: None,
    };
    let absurd = ReviewDue::After(Duration::from_seconds(100_000_000 * 86_400).unwrap());
    assert_eq!(world.refused("root", due(absurd)), "invalid_duration");
    assert_eq!(world.refused("root", due(ReviewDue::At(world.now - Span::days(1)))), "invalid");
    assert_eq!(world.refused("root", due(ReviewDue::At(world.now + Span::days(40_000)))), "invalid_duration");
    assert_eq!(world.state, before, "a refusal changed the state");
    let review = started(&world.ok("root", due(ReviewDue::At(world.now + Span::days(3)))));
    assert_eq!(world.state.review(&review).unwrap().due_at, world.now + Span::days(3));
}

#[test]
fn decisions_are_refused_in_order_and_a_revoke_ends_the_grant() {
    let (mut world, grants) = egi_world();
    let review = started(&world.ok("ngim", start("NGI_A", OnNoAnswer::Keep)));
    let before = world.state.clone();
    assert_eq!(world.refused("mgr", answer(review, grants["mgr"], ReviewDecision::Keep)), "self_approval");
    assert_eq!(world.refused("mgr", answer(review, grants["ops"], ReviewDecision::Keep)), "self_approval");
    assert_eq!(world.refused("bob", answer(review, grants["alice"], ReviewDecision::Keep)), "not_a_reviewer");
    assert_eq!(world.refused("mgr", answer(review, grants["bob"], ReviewDecision::Keep)), "not_a_reviewer");
    assert_eq!(world.refused("ngim", answer(review, GrantId::nil(), ReviewDecision::Keep)), "not_found");
    assert_eq!(world.state, before);

    let events = world.ok("mgr", answer(review, grants["alice"], ReviewDecision::Revoke));
    assert!(
        matches!(events.as_slice(), [Event::ReviewItemDecided { .. }, Event::GrantRevoked { grant, .. }] if *grant == grants["alice"])
    );
    assert!(!world.state.grant(&grants["alice"]).unwrap().gives_at(world.now));
    assert_eq!(world.refused("ngim", answer(review, grants["alice"], ReviewDecision::Keep)), "already_decided");
    let events = world.ok("ngim", answer(review, grants["bob"], ReviewDecision::Keep));
    assert!(matches!(events.as_slice(), [Event::ReviewItemDecided { .. }]));
    assert_eq!(world.state.review(&review).unwrap().decided, 2);
    // Past the due time nothing more is decided, even before the scheduler closes it.
    world.now += Span::days(14);
    assert_eq!(world.refused("ngim", answer(review, grants["ops"], ReviewDecision::Keep)), "review_closed");
}

#[test]
fn closing_follows_the_silence_rule_once() {
    let (mut world, grants) = egi_world();
    let review = started(&world.ok("ngim", start("NGI_A", OnNoAnswer::Revoke)));
    world.ok("ngim", answer(review, grants["bob"], ReviewDecision::Keep));
    world.ok("cli", Command::Revoke { grant: grants["ops"], reason: "gone".into() });
    let close = Command::CloseDueReview { review };
    assert_eq!(world.refused("cli", close.clone()), "not_due");
    assert_eq!(world.refused("mgr", Command::CloseReview { review }), "forbidden");
    assert_eq!(world.refused("cli", Command::RemindReviewers { review }), "not_due");
    world.now += Span::days(8);
    assert!(matches!(
        world.ok("cli", Command::RemindReviewers { review }).as_slice(),
        [Event::ReviewersReminded { .. }]
    ));
    assert_eq!(world.refused("cli", Command::RemindReviewers { review }), "already_exists");
    world.now += Span::days(7);
    let events = world.ok("cli", close.clone());
    let mut revoked: Vec<GrantId> = events
        .iter()
        .filter_map(|e| if let Event::GrantRevoked { grant, reason, .. } = e { Some((*grant, reason)) } else { None })
        .map(|(grant, reason)| {
            assert_eq!(reason, &format!("not reviewed in review {review}"));
            grant
        })
        .collect();
    revoked.sort();
    let mut expected = vec![grants["alice"], grants["mgr"], grants["ngim"]];
    expected.sort();
    assert_eq!(revoked, expected, "the undecided, still active grants; not the kept one nor the one ended");
    let closed = world.state.review(&review).unwrap();
    assert_eq!(closed.status(), ReviewStatus::Closed);
    assert_eq!(closed.items[&grants["ops"]].unanswered, Some(Unanswered::Ended));
    assert_eq!(closed.items[&grants["alice"]].unanswered, Some(Unanswered::Revoked));
    assert_eq!(closed.items[&grants["bob"]].unanswered, None);
    assert_eq!(world.refused("cli", close), "review_closed");
    assert_eq!(world.refused("root", Command::CloseReview { review }), "review_closed");
    assert_eq!(State::replay(&world.workflow, &world.events), world.state);
}

#[test]
fn a_listed_reviewers_delegate_reviews_for_them_while_the_delegation_lasts() {
    let (mut world, grants) = egi_world();
    world.register(&["dana"]);
    let review = started(&world.ok("ngim", start("NGI_A", OnNoAnswer::Keep)));
    assert_eq!(world.refused("dana", answer(review, grants["bob"], ReviewDecision::Keep)), "not_a_reviewer");
    let week = Duration::from_seconds(7 * 86_400).unwrap();
    let delegate = Command::Delegate {
        to: UserId::known("dana"),
        until: None,
        duration: Some(week),
        scope: None,
        reason: "away".into(),
    };
    world.ok("ngim", delegate);
    let events = world.ok("dana", answer(review, grants["bob"], ReviewDecision::Revoke));
    let for_ngim = |on_behalf_of: &Option<UserId>| on_behalf_of.as_deref() == Some("ngim");
    assert!(
        matches!(events.as_slice(), [Event::ReviewItemDecided { on_behalf_of: a, .. }, Event::GrantRevoked { on_behalf_of: b, .. }] if for_ngim(a) && for_ngim(b)),
        "{events:?}"
    );
    // The delegation over, the review still open: the delegate answers for nobody.
    world.now += Span::days(8);
    assert_eq!(world.refused("dana", answer(review, grants["ops"], ReviewDecision::Keep)), "not_a_reviewer");
    assert_eq!(State::replay(&world.workflow, &world.events), world.state);
}
