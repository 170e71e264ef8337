//! Policy simulation, in memory: the EGI world's history judged under candidate workflows.

use super::*;

const EGI: &str = include_str!("../../../workflows/egi.toml");

/// NGI managers (security officer, deputy, manager) no longer decide a site's roles.
fn without_ngi_deciders_of_sites(egi: &str) -> String {
    let dropped = "  \"ngi-security-officer@parent\",\n  \"ngi-operations-deputy-manager@parent\",\n  \"ngi-operations-manager@parent\",\n";
    assert!(egi.contains(dropped), "the site rule names the NGI deciders");
    egi.replacen(dropped, "", 1)
}

fn candidate(text: &str) -> Workflow {
    Workflow::from_str(text, "candidate.toml").expect("the candidate loads")
}

/// The EGI tree; nm manages NGI_A, sm manages SITE_A; nm approves alice's and bob's requests and
/// rejects dave's, sm approves carol's, root (admin) assigns erin directly, nm revokes bob's grant.
fn egi_world() -> World {
    let mut world = World::new(workflow("egi.toml"));
    world.register(&["root", "nm", "sm", "alice", "bob", "carol", "dave", "erin"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    egi_tree(&mut world, "root");
    world.assign("root", Subject::User(UserId::known("nm")), "ngi-operations-manager", "NGI_A").unwrap();
    world.assign("root", Subject::User(UserId::known("sm")), "site-operations-manager", "SITE_A").unwrap();
    for (user, role, site, decider) in [
        ("alice", "site-administrator", "SITE_A", "nm"),
        ("bob", "site-administrator", "SITE_B", "nm"),
        ("carol", "site-security-officer", "SITE_A", "sm"),
    ] {
        let asked = world.request(user, role, site).unwrap();
        world.approve(decider, asked).unwrap();
    }
    let asked = world.request("dave", "site-administrator", "SITE_B").unwrap();
    world.ok("nm", Command::Reject { request: asked, reason: "unknown here".into() });
    world.assign("root", Subject::User(UserId::known("erin")), "site-administrator", "SITE_B").unwrap();
    let bobs = world.state.grants().find(|g| g.subject == Subject::User(UserId::known("bob"))).unwrap().id;
    world.ok("nm", Command::Revoke { grant: bobs, reason: "left".into() });
    world
}

/// The world's history judged under `candidate`, each event at its index.
fn simulate(world: &World, candidate: &Workflow) -> Vec<Difference<usize>> {
    let mut simulation = Simulation::new(&world.workflow, candidate);
    for (index, event) in world.events.iter().enumerate() {
        simulation.step(index, world.now, event);
    }
    simulation.finish(world.now)
}

fn kinds_and_users(differences: &[Difference<usize>]) -> Vec<(&'static str, &str, &str, &str)> {
    differences.iter().map(|d| (d.kind.name(), d.user.as_str(), d.role.as_str(), d.scope.as_str())).collect()
}

#[test]
fn the_unchanged_workflow_changes_nothing() {
    let world = egi_world();
    assert_eq!(simulate(&world, &candidate(EGI)), Vec::new());
}

#[test]
fn dropping_the_ngi_managers_authority_over_sites_lists_their_site_decisions_and_their_lost_rights() {
    let world = egi_world();
    let differences = simulate(&world, &candidate(&without_ngi_deciders_of_sites(EGI)));
    let site_roles =
        ["site-administrator", "site-operations-deputy-manager", "site-operations-manager", "site-security-officer"];
    let mut expected = vec![
        ("decision_without_authority", "nm", "site-administrator", "SITE_A"),
        ("decision_without_authority", "nm", "site-administrator", "SITE_B"),
        ("decision_without_authority", "nm", "site-administrator", "SITE_B"),
        ("decision_without_authority", "nm", "site-administrator", "SITE_B"),
    ];
    for role in site_roles {
        expected.extend(["SITE_A", "SITE_B"].map(|site| ("decider_lost", "nm", role, site)));
    }
    assert_eq!(kinds_and_users(&differences), expected);
    // In log order, naming what was done: two approvals, a rejection, a revocation.
    let positions: Vec<usize> = differences.iter().filter_map(|d| d.at).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{positions:?}");
    let done: Vec<&str> = differences[..4].iter().map(|d| d.detail.split(' ').next().unwrap()).collect();
    assert_eq!(done, ["approved", "approved", "rejected", "revoked"]);
    assert!(differences[4].detail.contains("may no longer approve, reject, revoke"), "{}", differences[4].detail);
    let counts = differences.iter().fold(DifferenceCounts::default(), |mut counts, d| {
        counts.count(d.kind);
        counts
    });
    assert_eq!((counts.decision_without_authority, counts.decider_lost, counts.decider_gained), (4, 8, 0));
}

#[test]
fn letting_site_administrators_decide_is_a_gained_right_for_each_and_changes_no_decision() {
    let world = egi_world();
    let text = EGI.replacen(
        "deciders = [\n  \"site-security-officer@same\",",
        "deciders = [\n  \"site-administrator@same\",\n  \"site-security-officer@same\",",
        1,
    );
    let differences = simulate(&world, &candidate(&text));
    let roles =
        ["site-administrator", "site-operations-deputy-manager", "site-operations-manager", "site-security-officer"];
    let mut expected: Vec<_> = roles.iter().map(|role| ("decider_gained", "alice", *role, "SITE_A")).collect();
    expected.extend(roles.iter().map(|role| ("decider_gained", "erin", *role, "SITE_B")));
    assert_eq!(kinds_and_users(&differences), expected);
    assert!(differences[0].detail.contains("alice may approve, reject, revoke"), "{}", differences[0].detail);
}

#[test]
fn grants_that_the_candidate_refuses_are_listed_where_they_were_made() {
    let world = egi_world();
    // The site administrators' role is gone: alice's and erin's grants (bob's was revoked) are of an
    // unknown role, and nobody decides it any more.
    let start = EGI.find("[roles.site-administrator]").unwrap();
    let end = start + EGI[start..].find("[roles.site-security-officer]").unwrap();
    let text = format!("{}{}", &EGI[..start], &EGI[end..]);
    let differences = simulate(&world, &candidate(&text));
    let refused: Vec<_> =
        kinds_and_users(&differences).into_iter().filter(|(kind, ..)| *kind == "grant_not_allowed").collect();
    assert_eq!(
        refused,
        [
            ("grant_not_allowed", "alice", "site-administrator", "SITE_A"),
            ("grant_not_allowed", "erin", "site-administrator", "SITE_B")
        ]
    );
    assert!(differences[0].detail.contains("the role site-administrator is unknown"), "{}", differences[0].detail);
    assert!(differences.iter().all(|d| d.kind != DifferenceKind::DecisionWithoutAuthority));
    // A shorter longest duration: every grant without an end is too long, the admin's too.
    let shorter = EGI.replacen("[settings]\n", "[settings]\nmax_grant_duration = \"P30D\"\n", 1);
    let differences = simulate(&world, &candidate(&shorter));
    let holders: Vec<&str> = differences.iter().map(|d| d.user.as_str()).collect();
    assert_eq!(holders, ["root", "nm", "sm", "alice", "carol", "erin"]);
    assert!(differences.iter().all(|d| d.kind == DifferenceKind::GrantNotAllowed && d.detail.contains("at most P30D")));
    // Incompatible with a role also held: carol is security officer on SITE_A and gets administrator there too.
    let mut world = world;
    let asked = world.request("carol", "site-administrator", "SITE_B").unwrap();
    world.approve("sm", asked).unwrap_err();
    world.approve("nm", asked).unwrap();
    let pair = EGI.replacen(
        "[settings]\n",
        "[settings]\nincompatible = [[\"site-administrator\", \"site-security-officer\"]]\n",
        1,
    );
    let differences = simulate(&world, &candidate(&pair));
    assert_eq!(
        kinds_and_users(&differences),
        [
            ("grant_not_allowed", "carol", "site-security-officer", "SITE_A"),
            ("grant_not_allowed", "carol", "site-administrator", "SITE_B")
        ]
    );
    assert!(differences[1].detail.contains("incompatible with site-security-officer"), "{}", differences[1].detail);
}

#[test]
fn decisions_the_configured_workflow_refuses_are_no_difference_the_candidate_makes() {
    // Judged against the candidate's own history: what the configured workflow refuses is no
    // difference the candidate makes (here the NGI managers' decisions, seen from the other side).
    let world = egi_world();
    let without = candidate(&without_ngi_deciders_of_sites(EGI));
    let mut simulation = Simulation::new(&without, &world.workflow);
    for (index, event) in world.events.iter().enumerate() {
        simulation.step(index, world.now, event);
    }
    let differences = simulation.finish(world.now);
    assert!(differences.iter().all(|d| d.kind == DifferenceKind::DeciderGained), "{differences:?}");
    assert_eq!(differences.len(), 8);
}
