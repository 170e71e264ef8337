//! Escalation and delegation, decided in memory with a controlled clock.

use super::*;

fn delegate(to: &str, until: DateTime<Utc>, scope: Option<&str>) -> Command {
    Command::Delegate {
        to: UserId::known(to),
        until: Some(until),
        duration: None,
        scope: scope.map(ScopeId::known),
        reason: "holiday".to_string(),
    }
}

fn delegation_of(events: &[Event]) -> DelegationId {
    match events {
        [Event::DelegationGranted { delegation, .. }] => *delegation,
        other => panic!("unexpected {other:?}"),
    }
}

fn on_behalf_of(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        Event::RequestApproved { on_behalf_of, .. }
        | Event::RequestRejected { on_behalf_of, .. }
        | Event::GrantRevoked { on_behalf_of, .. } => Some(on_behalf_of.as_deref()),
        _ => None,
    })?
}

#[test]
fn a_delegate_decides_what_the_delegator_may_within_the_scope_and_it_is_recorded() {
    let mut world = lab_world();
    let until = world.now + Span::days(7);
    world.ok("h1", delegate("bob", until, Some("l2")));
    let inside = world.request("alice", "inspector", "l2").unwrap();
    let outside = world.request("alice", "inspector", "l1").unwrap();
    assert_eq!(
        world.refused("bob", Command::Approve { request: outside, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    let approved = world.approve("bob", inside).unwrap();
    assert_eq!(on_behalf_of(&approved), Some("h1"));
    assert_eq!(world.state.request(&inside).unwrap().approvals[0].on_behalf_of.as_deref(), Some("h1"));
    let grant = granted(&approved)[0];
    let revoked = world.ok("bob", Command::Revoke { grant, reason: "done".into() });
    assert_eq!(on_behalf_of(&revoked), Some("h1"));
    // A delegate's own decisions (by their own rules) record no delegator.
    let third = world.request("bob", "inspector", "l2").unwrap();
    assert_eq!(
        world.refused("bob", Command::Approve { request: third, comment: String::new(), duration: None }),
        "self_approval"
    );
    let rejected = world.ok("h1", Command::Reject { request: third, reason: "no".into() });
    assert_eq!(on_behalf_of(&rejected), None);
}

#[test]
fn delegation_gives_nothing_from_its_until_on_nor_once_ended_nor_when_the_delegator_lost_the_role() {
    let mut world = lab_world();
    let until = world.now + Span::hours(1);
    world.ok("h1", delegate("bob", until, None));
    let asked = world.request("alice", "inspector", "l1").unwrap();
    let approve = || Command::Approve { request: asked, comment: String::new(), duration: None };
    let start = world.now;
    world.now = until;
    assert_eq!(world.refused("bob", approve()), "not_a_decider", "at its until, whether or not ended");
    world.now = until - Span::seconds(1);
    assert!(world.state.deciders_for(&world.workflow, &asked, world.now).iter().any(|d| d.user == "bob"));
    world.now = start;

    // Judged at the decision as the delegator's: h1 loses dept-head, bob loses the authority.
    let head = world.state.grants().find(|g| g.subject == Subject::User(UserId::known("h1")) && g.role == "dept-head");
    let head = head.unwrap().id;
    world.ok("root", Command::Revoke { grant: head, reason: "moved".into() });
    assert_eq!(world.refused("bob", approve()), "not_a_decider");
    assert!(!world.state.deciders_for(&world.workflow, &asked, world.now).iter().any(|d| d.user == "bob"));

    // Ended early: nothing either.
    let given = world.ok("h2", delegate("bob", start + Span::days(1), None));
    world.ok("h2", Command::EndDelegation { delegation: delegation_of(&given) });
    assert_eq!(world.refused("bob", approve()), "not_a_decider");
    assert_eq!(world.refused("h2", Command::EndDelegation { delegation: delegation_of(&given) }), "not_active");
}

#[test]
fn the_scheduler_ends_a_delegation_at_its_until_once() {
    let mut world = lab_world();
    let until = world.now + Span::hours(1);
    let id = delegation_of(&world.ok("h1", delegate("bob", until, None)));
    assert_eq!(world.refused("cli", Command::EndDelegation { delegation: id }), "not_due");
    world.now = until;
    let ended = world.ok("cli", Command::EndDelegation { delegation: id });
    assert!(matches!(ended.as_slice(), [Event::DelegationEnded { early: false, .. }]));
    assert_eq!(world.refused("cli", Command::EndDelegation { delegation: id }), "not_active");
    assert_eq!(world.refused("bob", Command::EndDelegation { delegation: id }), "forbidden");
}

#[test]
fn a_delegator_and_their_delegate_count_once_in_a_stage() {
    let mut world = lab_world();
    world.ok("h1", delegate("bob", world.now + Span::days(3), None));
    // The delegator first, then the delegate; and the delegate first, then the delegator.
    let asked = world.request("alice", "operator", "l1").unwrap();
    world.approve("h1", asked).unwrap();
    assert_eq!(
        world.refused("bob", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "already_approved"
    );
    world.approve("h2", asked).unwrap();
    assert_eq!(world.state.request(&asked).unwrap().stage, 1);

    world.register(&["carol"]);
    let other = world.request("carol", "operator", "l1").unwrap();
    world.approve("bob", other).unwrap();
    assert_eq!(
        world.refused("h1", Command::Approve { request: other, comment: String::new(), duration: None }),
        "already_approved"
    );
    let request = world.state.request(&other).unwrap();
    assert_eq!((request.stage, request.approvals.len()), (0, 1));
}

#[test]
fn delegations_are_refused_without_rule_authority_to_oneself_too_long_or_in_the_past() {
    let mut world = lab_world();
    let now = world.now;
    let code = |world: &mut World, actor: &str, command: Command| world.refused(actor, command);
    assert_eq!(code(&mut world, "h1", delegate("h1", now + Span::days(1), None)), "self_delegation");
    assert_eq!(
        code(&mut world, "h1", delegate("bob", now + Span::days(90) + Span::seconds(1), None)),
        "delegation_too_long"
    );
    assert_eq!(code(&mut world, "h1", delegate("bob", now, None)), "until_in_past");
    assert_eq!(code(&mut world, "h1", delegate("bob", now - Span::days(1), None)), "until_in_past");
    assert_eq!(code(&mut world, "h1", delegate("nobody", now + Span::days(1), None)), "unknown_user");
    assert_eq!(code(&mut world, "h1", delegate("bob", now + Span::days(1), Some("l9"))), "unknown_scope");
    world.ok("h1", delegate("bob", now + Span::days(90), None));
    // Admin power is not delegated; delegated authority is no basis for a delegation.
    assert_eq!(code(&mut world, "root", delegate("bob", now + Span::days(1), None)), "no_authority_to_delegate");
    assert_eq!(code(&mut world, "bob", delegate("alice", now + Span::days(1), None)), "no_authority_to_delegate");
    let huge = Command::Delegate {
        to: UserId::known("bob"),
        until: None,
        duration: Some("P100000000D".parse().unwrap()),
        scope: None,
        reason: String::new(),
    };
    assert_eq!(code(&mut world, "h1", huge), "invalid_duration");
}

#[test]
fn a_delegate_never_decides_their_own_matters_nor_the_delegators() {
    let mut world = lab_world();
    world.ok("h1", delegate("alice", world.now + Span::days(3), None));
    // Delegating to the requester of a pending request does not let them approve it.
    let own = world.request("alice", "inspector", "l1").unwrap();
    assert_eq!(
        world.refused("alice", Command::Approve { request: own, comment: String::new(), duration: None }),
        "self_approval"
    );
    assert!(!world.state.deciders_for(&world.workflow, &own, world.now).iter().any(|d| d.user == "alice"));
    // The delegator's own request: they could not decide it, neither can their delegate.
    let theirs = world.request("h1", "inspector", "l1").unwrap();
    assert_eq!(
        world.refused("alice", Command::Approve { request: theirs, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    // Nor assign the delegator a role with the delegator's authority.
    let assigned = world.assign("alice", Subject::User(UserId::known("h1")), "inspector", "l2");
    assert_eq!(assigned.unwrap_err().code(), "not_a_decider");
    // A third person's assignment through the delegation records the delegator.
    let events = world.ok(
        "alice",
        Command::AssignRole {
            subject: Subject::User(UserId::known("bob")),
            role: "inspector".into(),
            scope: ScopeId::known("l2"),
            reason: "cover".into(),
            duration: None,
            starts_at: None,
        },
    );
    assert!(matches!(events.as_slice(), [Event::RoleGranted { on_behalf_of: Some(h), .. }] if h == "h1"));
}

#[test]
fn delegates_are_listed_among_deciders_with_their_delegator() {
    let mut world = lab_world();
    world.ok("h1", delegate("bob", world.now + Span::days(3), None));
    let asked = world.request("alice", "inspector", "l1").unwrap();
    let deciders = world.state.deciders_for(&world.workflow, &asked, world.now);
    let bob = deciders.iter().find(|d| d.user == "bob").expect("the delegate decides");
    assert_eq!((bob.delegate_of.as_deref(), bob.admin_only, bob.escalation), (Some("h1"), false, false));
    let h1 = deciders.iter().find(|d| d.user == "h1").unwrap();
    assert_eq!(h1.delegate_of, None);
    assert_eq!(world.state.pending_for(&world.workflow, "bob", world.now), [asked]);
}

/// EGI: a site's request escalates to the project's chief operations officer after 14 days.
fn egi_world() -> World {
    let mut world = World::new(workflow("egi.toml"));
    world.register(&["root", "coo", "som", "alice"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    for (id, kind, parents) in [("EGI", "project", &[][..]), ("NGI_A", "ngi", &["EGI"]), ("SITE_A", "site", &["NGI_A"])]
    {
        world.ok("cli", scope(id, kind, parents));
    }
    world.assign("cli", Subject::User(UserId::known("coo")), "chief-operations-officer", "EGI").unwrap();
    world.assign("cli", Subject::User(UserId::known("som")), "site-operations-manager", "SITE_A").unwrap();
    world
}

#[test]
fn escalation_lets_its_deciders_decide_from_the_event_on_once_per_stage() {
    let mut world = egi_world();
    let asked = world.request("alice", "site-administrator", "SITE_A").unwrap();
    let approve = || Command::Approve { request: asked, comment: String::new(), duration: None };
    assert_eq!(world.refused("coo", approve()), "not_a_decider", "project roles do not decide site requests");
    assert_eq!(world.refused("cli", Command::EscalateRequest { request: asked }), "not_due");
    let asked_at = world.now;
    world.now = asked_at + Span::days(14);
    // Due, but until the event is written the escalation deciders still may not decide.
    assert_eq!(world.refused("coo", approve()), "not_a_decider");
    assert_eq!(world.refused("som", Command::EscalateRequest { request: asked }), "forbidden");
    let escalated = world.ok("cli", Command::EscalateRequest { request: asked });
    assert!(matches!(escalated.as_slice(), [Event::RequestEscalated { stage: 0, .. }]));
    assert_eq!(world.refused("cli", Command::EscalateRequest { request: asked }), "already_exists");
    let deciders = world.state.deciders_for(&world.workflow, &asked, world.now);
    let coo = deciders.iter().find(|d| d.user == "coo").expect("the escalation decider is listed");
    assert!(coo.escalation && !coo.admin_only);
    assert!(!deciders.iter().find(|d| d.user == "som").unwrap().escalation);
    assert_eq!(world.state.pending_for(&world.workflow, "coo", world.now), [asked]);
    let notices = notify::notices(&world.state, &world.workflow, &escalated[0]);
    assert!(notices.iter().all(|n| n.kind == "request_escalated"));
    // Users registered without email get no mail; the COO's would be the one address.
    assert!(notices.is_empty());
    let approved = world.approve("coo", asked).unwrap();
    assert!(matches!(
        approved.as_slice(),
        [Event::RequestApproved { completes_request: true, .. }, Event::RoleGranted { .. }]
    ));
    // Escalation is for requests: the COO may not revoke the site's grants.
    let grant = granted(&approved)[0];
    assert_eq!(world.refused("coo", Command::Revoke { grant, reason: String::new() }), "not_a_decider");
}

#[test]
fn escalation_mail_goes_to_escalation_deciders_and_their_delegates() {
    let mut world = egi_world();
    for user in ["coo", "som", "alice", "deputy"] {
        let email = Some(format!("{user}@example.org"));
        world.ok("cli", Command::RegisterUser { user: UserId::known(user), email, name: None });
    }
    world.ok("coo", delegate("deputy", world.now + Span::days(30), None));
    let asked = world.request("alice", "site-administrator", "SITE_A").unwrap();
    world.now += Span::days(15);
    let escalated = world.ok("cli", Command::EscalateRequest { request: asked });
    let mut to: Vec<String> =
        notify::notices(&world.state, &world.workflow, &escalated[0]).into_iter().map(|n| n.recipient).collect();
    to.sort();
    assert_eq!(to, ["coo@example.org", "deputy@example.org"]);
    let deputy = world.state.deciders_for(&world.workflow, &asked, world.now);
    let deputy = deputy.iter().find(|d| d.user == "deputy").unwrap();
    assert_eq!((deputy.delegate_of.as_deref(), deputy.escalation), (Some("coo"), true));
}

#[test]
fn the_loader_refuses_escalation_deciders_on_the_same_scope() {
    let text = include_str!("lab-test.toml").replace(
        r#"stages = [{ name = "review", quorum = 2 }, { name = "sign-off", quorum = 1 }]"#,
        r#"stages = [{ name = "review", quorum = 2, escalate_after = "3d", escalation_deciders = ["safety-officer@same"] }, { name = "sign-off", quorum = 1 }]"#,
    );
    let error = Workflow::from_str(&text, "lab-test.toml").unwrap_err();
    assert!(error.problem.contains("must be held at parent, ancestor or global"), "{error:?}");
    assert_eq!(error.line, Some(81), "{error:?}");
    let without = include_str!("lab-test.toml")
        .replace(r#"{ name = "review", quorum = 2 }"#, r#"{ name = "review", quorum = 2, escalate_after = "3d" }"#);
    assert!(Workflow::from_str(&without, "lab-test.toml").unwrap_err().problem.contains("escalation_deciders"));
    let fine = include_str!("lab-test.toml").replace(
        r#"{ name = "review", quorum = 2 }"#,
        r#"{ name = "review", quorum = 2, escalate_after = "3d", escalation_deciders = ["dept-head@ancestor"] }"#,
    );
    let workflow = Workflow::from_str(&fine, "lab-test.toml").expect("loads");
    let rule = workflow.rules.iter().find(|r| r.id == "role:operator").unwrap();
    assert_eq!(rule.stages[0].escalate_after.map(|d| d.seconds()), Some(3 * 86_400));
}

#[test]
fn the_summary_says_where_a_stage_escalates() {
    let summary = crate::workflow::Summary(&workflow("egi.toml")).to_string();
    let site = summary.lines().find(|l| l.starts_with("  every role on a site:")).unwrap();
    assert!(site.ends_with("stages approval (1, escalated after P14D to chief-operations-officer@ancestor)"), "{site}");
}
