use super::scenarios::{egi_scenarios, run_in_memory};
use super::*;
use crate::workflow::{Applies, Role, Workflow};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};

mod bench;
mod delegation;
mod every_path;
mod properties;
mod reviews;
mod simulate;

/// A shipped workflow, from `workflows/`.
pub(super) fn workflow(file: &str) -> Workflow {
    let path = format!("{}/workflows/{file}", env!("CARGO_MANIFEST_DIR"));
    Workflow::from_file(path).expect("workflow loads")
}

/// The test workflow exercising stages, inclusion, locks, limits, teams and token roles.
pub(super) fn lab_workflow() -> Workflow {
    Workflow::from_str(include_str!("tests/lab-test.toml"), "lab-test.toml").expect("lab-test loads")
}

/// A state driven command by command, "cli" standing for the command line.
pub(super) struct World {
    pub workflow: Workflow,
    pub state: State,
    pub now: DateTime<Utc>,
    pub events: Vec<Event>,
    steps: u64,
}

impl World {
    pub fn new(workflow: Workflow) -> World {
        let state = State::new(&workflow);
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        World { workflow, state, now, events: Vec::new(), steps: 0 }
    }

    pub fn actor(name: &str) -> Actor {
        if name == "cli" {
            Actor::CommandLine
        } else {
            Actor::User(UserId::known(name))
        }
    }

    pub fn run(&mut self, actor: &str, command: Command) -> Result<Vec<Event>, DomainError> {
        self.steps += 1;
        let ctx = Context::new(World::actor(actor), self.now, IdSource::sequence(self.steps));
        let events = decide(&self.state, &self.workflow, &ctx, command)?;
        for event in &events {
            self.state.apply(&self.workflow, event);
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    #[track_caller]
    pub fn ok(&mut self, actor: &str, command: Command) -> Vec<Event> {
        self.run(actor, command).unwrap_or_else(|e| panic!("refused: {} ({e})", e.code()))
    }

    #[track_caller]
    pub fn refused(&mut self, actor: &str, command: Command) -> &'static str {
        match self.run(actor, command) {
            Ok(events) => panic!("accepted: {events:?}"),
            Err(error) => error.code(),
        }
    }

    pub fn register(&mut self, users: &[&str]) {
        for user in users {
            self.ok("cli", Command::RegisterUser { user: UserId::known(*user), email: None, name: None });
        }
    }

    pub fn assign(&mut self, actor: &str, subject: Subject, role: &str, scope: &str) -> Result<GrantId, DomainError> {
        let command = Command::AssignRole {
            subject,
            role: role.to_string(),
            scope: ScopeId::known(scope),
            reason: "test".to_string(),
            duration: None,
            starts_at: None,
        };
        Ok(granted(&self.run(actor, command)?)[0])
    }

    pub fn request(&mut self, user: &str, role: &str, scope: &str) -> Result<RequestId, DomainError> {
        let command = Command::RequestRole {
            role: role.to_string(),
            scope: ScopeId::known(scope),
            reason: String::new(),
            duration: None,
            asked: Default::default(),
        };
        match self.run(user, command)?.as_slice() {
            [Event::RoleRequested { request, .. }] => Ok(*request),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A grant obtained through a request that every decider of the lab world approves in turn
    /// until it is granted (roles whose rule has stages are never assigned directly).
    #[track_caller]
    pub fn through_request(&mut self, user: &str, role: &str, scope: &str) -> GrantId {
        let asked = self.request(user, role, scope).unwrap_or_else(|e| panic!("request refused: {}", e.code()));
        for decider in ["h1", "h2", "h3", "s1", "o1", "root"] {
            if let Ok(events) = self.approve(decider, asked) {
                if let Some(grant) = granted(&events).first() {
                    return *grant;
                }
            }
        }
        panic!("nobody could complete the request for {role} on {scope}")
    }

    pub fn approve(&mut self, actor: &str, request: RequestId) -> Result<Vec<Event>, DomainError> {
        self.run(actor, Command::Approve { request, comment: String::new(), duration: None })
    }

    pub fn allowed(&self, user: &str, permission: &str, scope: &str) -> bool {
        self.state.check(user, permission, scope, self.now).allowed
    }
}

pub(super) fn granted(events: &[Event]) -> Vec<GrantId> {
    events.iter().filter_map(|e| if let Event::RoleGranted { grant, .. } = e { Some(*grant) } else { None }).collect()
}

fn scope(id: &str, kind: &str, parents: &[&str]) -> Command {
    scenarios::create_scope(id, kind, parents)
}

/// The EGI tree, made by `actor`: project EGI ⊃ NGI_A ⊃ SITE_A, SITE_B.
fn egi_tree(world: &mut World, actor: &str) {
    for (id, kind, parents) in [
        ("EGI", "project", &[][..]),
        ("NGI_A", "ngi", &["EGI"]),
        ("SITE_A", "site", &["NGI_A"]),
        ("SITE_B", "site", &["NGI_A"]),
    ] {
        world.ok(actor, scope(id, kind, parents));
    }
}

/// The lab world: departments d1 (head h1, h2) and d2 (head h3); labs l1, l2 in d1, l3 in d2;
/// safety officer s1 and owner o1 on l1.
fn lab_world() -> World {
    let mut world = World::new(lab_workflow());
    world.register(&["root", "h1", "h2", "h3", "s1", "o1", "alice", "bob"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    for (id, kind, parents) in [
        ("d1", "dept", &[][..]),
        ("d2", "dept", &[]),
        ("l1", "lab", &["d1"]),
        ("l2", "lab", &["d1"]),
        ("l3", "lab", &["d2"]),
    ] {
        world.ok("cli", scope(id, kind, parents));
    }
    for (user, role, scope) in [
        ("h1", "dept-head", "d1"),
        ("h2", "dept-head", "d1"),
        ("h3", "dept-head", "d2"),
        ("s1", "safety-officer", "l1"),
        ("o1", "lab-owner", "l1"),
    ] {
        world.assign("cli", Subject::User(UserId::known(user)), role, scope).unwrap();
    }
    world
}

#[test]
fn egi_scenario_table() {
    let workflow = workflow("egi.toml");
    let scenarios = egi_scenarios();
    assert!(scenarios.len() >= 30, "only {} scenarios", scenarios.len());
    let failures: Vec<String> = scenarios.iter().filter_map(|s| run_in_memory(&workflow, s).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
}

#[test]
fn two_stages_with_a_quorum_of_two_need_three_distinct_people() {
    let mut world = lab_world();
    let asked = world.request("alice", "operator", "l1").unwrap();
    let first = world.approve("h1", asked).unwrap();
    assert!(matches!(
        first.as_slice(),
        [Event::RequestApproved {
            stage: 0,
            approvals_in_stage: 1,
            quorum: 2,
            completes_stage: false,
            completes_request: false,
            ..
        }]
    ));
    let request = world.state.request(&asked).unwrap();
    assert_eq!((request.status, request.stage, request.approvals.len()), (RequestStatus::Pending, 0, 1));
    assert_eq!(
        world.refused("h1", Command::Approve { request: asked, comment: "again".into(), duration: None }),
        "already_approved"
    );
    assert_eq!(
        world.refused("o1", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    let second = world.approve("h2", asked).unwrap();
    assert!(matches!(
        second.as_slice(),
        [Event::RequestApproved { stage: 0, completes_stage: true, completes_request: false, .. }]
    ));
    assert_eq!(world.state.request(&asked).unwrap().stage, 1);
    assert!(!world.allowed("alice", "lab.use", "l1"));
    // Having counted in stage one, h1 cannot count again in stage two.
    assert_eq!(
        world.refused("h1", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "already_approved"
    );
    let last = world.approve("s1", asked).unwrap();
    assert!(matches!(
        last.as_slice(),
        [Event::RequestApproved { stage: 1, stage_name, completes_request: true, .. }, Event::RoleGranted { .. }] if stage_name == "sign-off"
    ));
    assert_eq!(world.state.request(&asked).unwrap().status, RequestStatus::Approved);
    assert!(world.allowed("alice", "lab.use", "l1"));
}

#[test]
fn any_rejection_ends_a_staged_request() {
    let mut world = lab_world();
    let asked = world.request("alice", "operator", "l1").unwrap();
    world.approve("h1", asked).unwrap();
    world.ok("s1", Command::Reject { request: asked, reason: "no training".into() });
    assert_eq!(world.state.request(&asked).unwrap().status, RequestStatus::Rejected);
    assert_eq!(
        world.refused("h2", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_pending"
    );
}

#[test]
fn approving_a_role_needs_authority_over_the_roles_it_includes() {
    let mut world = lab_world();
    // senior includes operator: the lab owner decides senior (kind rule) but not operator.
    let asked = world.request("alice", "senior", "l1").unwrap();
    assert_eq!(
        world.refused("o1", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    assert_eq!(
        world.refused("s1", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    let deciders: Vec<_> = world.state.deciders_for(&world.workflow, &asked, world.now);
    let names: Vec<(&str, bool)> = deciders.iter().map(|d| (d.user.as_str(), d.admin_only)).collect();
    assert_eq!(names, [("h1", false), ("h2", false), ("root", true)]);
    world.approve("h1", asked).unwrap();
    assert!(world.allowed("alice", "lab.tune:laser", "l1"));
    assert!(world.allowed("alice", "lab.use", "l1"), "included role's permission");
    assert!(!world.allowed("alice", "lab.tune", "l1"), "qualified permission only");
    // A decider by inclusion: whoever holds a role including a deciding role decides as it.
    assert!(world.state.decides_by_rule(
        &world.workflow,
        "h1",
        "inspector",
        "l2",
        crate::workflow::Action::Approve,
        world.now
    ));
}

#[test]
fn scope_or_subtree_and_implications_decide_checks() {
    let mut world = lab_world();
    world.ok("cli", scope("l1a", "lab", &["l1"]));
    assert!(world.allowed("o1", "lab.use", "l1a"), "lab.admin implies lab.use, subtree");
    assert!(world.allowed("h1", "lab.read", "l1a"));
    assert!(!world.allowed("h1", "lab.read", "l3"));
    world.assign("h1", Subject::User(UserId::known("bob")), "inspector", "l2").unwrap();
    assert!(world.allowed("bob", "lab.read", "l2"));
    assert!(!world.allowed("bob", "lab.read", "l1"));
    // operator applies to its scope alone.
    let mut senior_world = lab_world();
    senior_world.ok("cli", scope("l1a", "lab", &["l1"]));
    senior_world.through_request("bob", "operator", "l1");
    assert!(senior_world.allowed("bob", "lab.use", "l1"));
    assert!(!senior_world.allowed("bob", "lab.use", "l1a"));
    let result = senior_world.state.check("root", "whatever.you.like", "l1a", senior_world.now);
    assert!(result.allowed && result.via.len() == 1);
    assert!(!senior_world.allowed("bob", "lab.use", "nowhere"));
    assert!(!senior_world.allowed("bob", "Bad Permission", "l1"));
}

#[test]
fn default_roles_on_registration_and_profile_changes_only_when_changed() {
    let mut world = World::new(lab_workflow());
    let events = world
        .ok("zoe", Command::RegisterUser { user: UserId::known("zoe"), email: Some("z@x.org".into()), name: None });
    assert!(
        matches!(&events[..], [Event::UserRegistered { .. }, Event::RoleGranted { origin: GrantOrigin::Default, role, .. }] if role == "user")
    );
    assert!(world.allowed("zoe", "self.view", "global"));
    let again = Command::RegisterUser { user: UserId::known("zoe"), email: Some("z@x.org".into()), name: None };
    assert!(world.ok("zoe", again).is_empty());
    let renamed =
        world.ok("zoe", Command::UpdateProfile { user: UserId::known("zoe"), email: None, name: Some("Zoe".into()) });
    assert!(
        matches!(&renamed[..], [Event::UserProfileChanged { email: Some(e), name: Some(n), .. }] if e == "z@x.org" && n == "Zoe")
    );
    assert_eq!(
        world.refused("mallory", Command::UpdateProfile { user: UserId::known("zoe"), email: None, name: None }),
        "forbidden"
    );
    assert_eq!(
        world.refused("cli", Command::UpdateProfile { user: UserId::known("ghost"), email: None, name: None }),
        "not_found"
    );
}

#[test]
fn creators_get_creator_roles_even_when_locked() {
    let mut world = lab_world();
    let events = world.ok("h3", scope("l4", "lab", &["d2"]));
    assert!(
        matches!(&events[..], [Event::ScopeCreated { .. }, Event::RoleGranted { origin: GrantOrigin::Creator, role, .. }] if role == "founder")
    );
    assert!(world.allowed("h3", "lab.history.read", "l4"));
    // Locked: no new assignments or requests.
    assert_eq!(world.request("alice", "founder", "l4").unwrap_err().code(), "role_locked");
    assert_eq!(
        world.assign("root", Subject::User(UserId::known("alice")), "founder", "l4").unwrap_err().code(),
        "role_locked"
    );
    assert_eq!(world.refused("h1", scope("l5", "lab", &["d2"])), "forbidden");
    assert_eq!(world.refused("root", scope("l4", "lab", &["d1"])), "already_exists");
    assert_eq!(world.refused("root", scope("l5", "lab", &["nowhere"])), "unknown_scope");
    assert_eq!(world.refused("root", scope("d3", "dept", &["l1"])), "invalid");
    assert_eq!(world.refused("root", scope("l5", "lab", &["l5"])), "invalid");
    assert_eq!(world.refused("root", scope("l5", "lab", &["d1", "d1"])), "invalid");
    assert_eq!(world.refused("root", scope("x", "planet", &[])), "invalid");
}

#[test]
fn durations_and_incompatible_roles() {
    let mut world = lab_world();
    let too_long = Command::RequestRole {
        role: "operator".into(),
        scope: ScopeId::known("l2"),
        reason: String::new(),
        duration: "P11D".parse().ok(),
        asked: Default::default(),
    };
    assert_eq!(world.refused("alice", too_long), "duration_too_long");
    let id = world.through_request("alice", "operator", "l2");
    assert_eq!(
        world.state.grant(&id).unwrap().ends_at,
        Some(world.now + Span::days(10)),
        "role maximum caps the default"
    );
    let inspector = world.assign("h1", Subject::User(UserId::known("bob")), "inspector", "l2").unwrap();
    assert_eq!(world.state.grant(&inspector).unwrap().ends_at, Some(world.now + Span::days(30)), "workflow default");
    assert_eq!(world.request("alice", "inspector", "l1").unwrap_err().code(), "incompatible_role");
    assert_eq!(
        world.assign("h1", Subject::User(UserId::known("alice")), "inspector", "l2").unwrap_err().code(),
        "incompatible_role"
    );
}

#[test]
fn teams_give_roles_to_members_under_the_deciders_control() {
    let mut world = lab_world();
    assert_eq!(
        world.refused("h1", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() }),
        "forbidden"
    );
    world.ok("root", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() });
    let add = |user: &str| Command::AddTeamMember { team: TeamId::known("crew"), user: UserId::known(user) };
    // A team holding nothing is managed by administrators only.
    assert_eq!(world.refused("h1", add("alice")), "forbidden");
    world.assign("h1", Subject::Team(TeamId::known("crew")), "inspector", "l2").unwrap();
    assert_eq!(
        world.assign("root", Subject::Team(TeamId::known("crew")), "admin", "global").unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(world.refused("h3", add("alice")), "not_a_decider");
    assert_eq!(world.refused("h1", add("h1")), "self_approval");
    world.ok("h1", add("alice"));
    assert!(world.allowed("alice", "lab.read", "l2"));
    assert_eq!(world.refused("h1", add("alice")), "already_exists");
    // A member cannot add others, nor have roles assigned to their team.
    world.ok("root", add("h2"));
    assert_eq!(world.refused("h2", add("bob")), "self_approval");
    assert_eq!(
        world.assign("h2", Subject::Team(TeamId::known("crew")), "inspector", "l1").unwrap_err().code(),
        "self_approval"
    );
    // Team grants count for duplicates, and a member leaving loses the role.
    assert_eq!(world.request("alice", "inspector", "l2").unwrap_err().code(), "duplicate_request");
    world.ok("alice", Command::RemoveTeamMember { team: TeamId::known("crew"), user: UserId::known("alice") });
    assert!(!world.allowed("alice", "lab.read", "l2"));
    assert_eq!(
        world.refused("bob", Command::RemoveTeamMember { team: TeamId::known("crew"), user: UserId::known("h2") }),
        "not_a_decider"
    );
}

#[test]
fn the_role_catalogue_is_for_admins() {
    let mut world = lab_world();
    let custom = Role {
        id: "night-shift".into(),
        title: "Night shift".into(),
        description: String::new(),
        kinds: vec!["lab".into()],
        permissions: vec!["lab.use".into()],
        scope_permissions: vec![],
        includes: vec![],
        applies: Applies::Subtree,
        mailbox: None,
        requestable: true,
        max_duration: None,
        token_grantable: false,
        api_role: false,
        locked: false,
        questions: vec![],
    };
    assert_eq!(world.refused("h1", Command::DefineRole { role: custom.clone() }), "forbidden");
    world.ok("root", Command::DefineRole { role: custom.clone() });
    assert_eq!(world.refused("root", Command::DefineRole { role: custom.clone() }), "already_exists");
    let bad = Role { id: "bad".into(), includes: vec!["admin".into()], ..custom.clone() };
    assert_eq!(world.refused("root", Command::DefineRole { role: bad }), "invalid");
    let sneaky =
        Role { id: "sneaky".into(), token_grantable: true, includes: vec!["dept-head".into()], ..custom.clone() };
    assert_eq!(world.refused("root", Command::DefineRole { role: sneaky }), "invalid");
    // Custom roles follow the kind-wide rule.
    let asked = world.request("alice", "night-shift", "l1").unwrap();
    assert_eq!(
        world.refused("s1", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    world.approve("o1", asked).unwrap();
    for expected in ["night-shift-2", "night-shift-3"] {
        let events = world.ok("root", Command::DuplicateRole { role: "night-shift".into() });
        assert!(
            matches!(&events[..], [Event::RoleDefined { role, copied_from: Some(from), .. }] if role.id == expected && from == "night-shift")
        );
    }
    let edited = Role { title: "Night operators".into(), ..custom.clone() };
    assert_eq!(world.refused("h1", Command::EditRole { role: edited.clone() }), "forbidden");
    world.ok("root", Command::EditRole { role: edited });
    assert_eq!(world.state.role("night-shift").unwrap().title, "Night operators");
    assert_eq!(
        world.refused("root", Command::EditRole { role: Role { id: "admin".into(), ..custom.clone() } }),
        "forbidden"
    );
    assert_eq!(world.refused("root", Command::DeleteRole { role: "operator".into() }), "in_use");
    // role_delete = "revoke": one revocation per grant, one rejection per pending request.
    world.request("bob", "night-shift", "l1").unwrap();
    world.assign("o1", Subject::User(UserId::known("bob")), "night-shift", "l1").unwrap();
    let events = world.ok("root", Command::DeleteRole { role: "night-shift".into() });
    let types: Vec<&str> = events.iter().map(Event::event_type).collect();
    assert_eq!(types, ["GrantRevoked", "GrantRevoked", "RequestRejected", "RoleDeleted"]);
    assert!(world.state.role("night-shift").is_none());
    assert!(!world.allowed("alice", "lab.use", "l1"));
}

#[test]
fn roles_are_not_editable_or_deletable_in_use_where_the_workflow_says_so() {
    let egi = workflow("egi.toml");
    let mut world = World::new(egi);
    world.register(&["root"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    let role = world.state.role("site-administrator").unwrap().clone();
    assert_eq!(world.refused("root", Command::EditRole { role }), "forbidden");
    world.ok("root", Command::DuplicateRole { role: "site-administrator".into() });
    world.ok("cli", scope("p", "project", &[]));
    world.ok("cli", scope("n", "ngi", &["p"]));
    world.ok("cli", scope("s", "site", &["n"]));
    world.register(&["ann"]);
    world.assign("root", Subject::User(UserId::known("ann")), "site-administrator-2", "s").unwrap();
    assert_eq!(world.refused("root", Command::DeleteRole { role: "site-administrator-2".into() }), "in_use");
    assert_eq!(world.refused("root", Command::DeleteRole { role: "admin".into() }), "forbidden");
}

#[test]
fn approver_scopes_are_compact_and_expand_to_the_scopes_decided() {
    let workflow = workflow("egi.toml");
    let mut builder = scenarios::ScenarioBuilder::egi("world");
    builder.check("de-nom", "scope.edit", "ngi-de", true);
    let state = run_in_memory(&workflow, &builder.build()).unwrap();
    let now = scenarios::base_time() + Span::hours(1);
    let scopes = state.approver_scopes(&workflow, "de-nom", now);
    let compact: Vec<(&str, &str, String)> =
        scopes.iter().map(|a| (a.rule.as_str(), a.anchor.as_str(), a.place.to_string())).collect();
    assert_eq!(compact, [("kind:ngi", "ngi-de", "same".to_string()), ("kind:site", "ngi-de", "parent".to_string())]);
    let sites = scopes.iter().find(|a| a.rule == "kind:site").unwrap();
    assert_eq!(state.expand_approver_scope(&workflow, sites), ["site-desy", "site-kit"]);
    assert!(state.roles_decided_by(&workflow, "kind:site", "site").contains(&"site-administrator".to_string()));
    assert!(state.approver_scopes(&workflow, "kit-admin", now).is_empty());
    let coo = state.approver_scopes(&workflow, "egi-coo", now);
    let ngis: Vec<ScopeId> =
        coo.iter().filter(|a| a.rule == "kind:ngi").flat_map(|a| state.expand_approver_scope(&workflow, a)).collect();
    assert_eq!(ngis, ["ngi-de", "ngi-fr"]);
}

#[test]
fn pending_queues_list_what_each_decider_may_approve() {
    let workflow = workflow("egi.toml");
    let mut builder = scenarios::ScenarioBuilder::egi("queues");
    let site = builder.accepted(scenarios::user("alice"), scenarios::request("site-administrator", "site-kit"));
    let ngi = builder.accepted(scenarios::user("bob"), scenarios::request("regional-staff-rod", "ngi-de"));
    let state = run_in_memory(&workflow, &builder.build()).unwrap();
    let now = scenarios::base_time() + Span::hours(1);
    assert_eq!(state.pending_for(&workflow, "kit-som", now), [site.id()]);
    let mut de = vec![site.id(), ngi.id()];
    de.sort();
    assert_eq!(state.pending_for(&workflow, "de-nom", now), de);
    assert_eq!(state.pending_for(&workflow, "egi-coo", now), [ngi.id()]);
    assert!(state.pending_for(&workflow, "alice", now).is_empty());
    assert!(state.pending_for(&workflow, "kit-som", now + Span::days(31)).is_empty(), "expired requests leave queues");
}

#[test]
fn a_rule_for_the_global_kind_never_reaches_admin_or_auditor() {
    let text = r#"
        [roles.operator]
        title = "Operator"
        kinds = ["global"]

        [[rules]]
        for_kind = "global"
        deciders = ["operator@same"]
    "#;
    let mut world = World::new(Workflow::from_str(text, "inline.toml").unwrap());
    world.register(&["op", "eve", "ann"]);
    world.assign("cli", Subject::User(UserId::known("op")), "operator", "global").unwrap();
    for builtin in ["admin", "auditor"] {
        let refused = world.assign("op", Subject::User(UserId::known("eve")), builtin, "global");
        assert_eq!(refused.unwrap_err().code(), "not_a_decider");
    }
    world.assign("op", Subject::User(UserId::known("ann")), "operator", "global").unwrap();
}

#[test]
fn events_round_trip_through_type_and_data() {
    let mut world = lab_world();
    let asked = world.request("alice", "operator", "l1").unwrap();
    world.approve("h1", asked).unwrap();
    world.ok("s1", Command::Reject { request: asked, reason: "no".into() });
    world.ok("root", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() });
    for event in &world.events {
        let rebuilt = Event::from_parts(event.event_type(), &event.data()).unwrap();
        assert_eq!(&rebuilt, event);
    }
    let streams: Vec<String> = world.events.iter().map(Event::stream_id).collect();
    assert!(streams.contains(&"user-alice".to_string()));
    assert!(streams.contains(&"scope-l1".to_string()));
    assert!(streams.contains(&format!("request-{asked}")));
    assert!(streams.contains(&"team-crew".to_string()));
    assert!(streams.iter().any(|s| s.starts_with("grant-")));
    let data = world.events.iter().find(|e| e.event_type() == "RoleRequested").unwrap().data();
    assert_eq!(data["role"], "operator");
}

#[test]
fn login_tokens_grant_what_they_carry_and_revoke_what_they_drop() {
    let mut world = lab_world();
    let sync = |claims: &[&str]| Command::SyncTokenRoles {
        user: UserId::known("alice"),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        issued_at: None,
    };
    let first = world.ok("alice", sync(&["inspector@l1", "admin", "dept-head@d1", "inspector@nowhere"]));
    assert!(
        matches!(&first[..], [Event::RoleGranted { role, scope, origin: GrantOrigin::Token, .. }] if role == "inspector" && scope == "l1")
    );
    assert!(world.allowed("alice", "lab.read", "l1"));
    assert!(world.ok("alice", sync(&["inspector@l1"])).is_empty(), "seen before");
    let later = world.ok("alice", sync(&["inspector@l2"]));
    let types: Vec<&str> = later.iter().map(Event::event_type).collect();
    assert_eq!(types, ["GrantRevoked", "RoleGranted"]);
    assert!(!world.allowed("alice", "lab.read", "l1"));
    assert_eq!(world.refused("bob", sync(&[])), "forbidden");
    // Grants made otherwise are not the token's to revoke.
    world.assign("h1", Subject::User(UserId::known("alice")), "inspector", "l1").unwrap();
    assert!(world.ok("alice", sync(&[])).len() == 1);
    assert!(world.allowed("alice", "lab.read", "l1"));
}

/// The user-id rule and the mail-address rule hold for every registration, the command line's too:
/// the id is judged where it is parsed (a `RegisterUser` holds only a parsed `UserId`), the email
/// by `decide`.
#[test]
fn registration_refuses_reserved_and_invisible_ids_and_broken_emails() {
    let mut world = lab_world();
    let register = |user: &str, email: Option<&str>| Command::RegisterUser {
        user: UserId::known(user),
        email: email.map(String::from),
        name: None,
    };
    let refused_id = |id: &str| id.parse::<UserId>().map(drop).unwrap_err().code();
    for id in ["system", "command-line", "expiry", "scheduler", "system:mail"] {
        assert_eq!(refused_id(id), "reserved_id", "{id}");
    }
    for id in ["", "root\u{200B}", "a b", "a\u{7}b"] {
        assert_eq!(refused_id(id), "invalid", "{id:?}");
    }
    assert_eq!(world.refused("cli", register("zed", Some("z@x.org\r\nBcc: y@x.org"))), "invalid");
    world.ok("cli", register("zed", Some("z@x.org")));
    let update = Command::UpdateProfile { user: UserId::known("zed"), email: Some("z@x.org\n".into()), name: None };
    assert_eq!(world.refused("zed", update), "invalid");
}

/// A token issued before the newest one that changed the token roles changes nothing; one
/// without `iat` syncs as it always did.
#[test]
fn an_older_login_token_never_undoes_a_later_one() {
    let mut world = lab_world();
    let start = world.now;
    let at = |minutes: i64| Some(start + chrono::Duration::minutes(minutes));
    let sync = |claims: &[&str], issued_at| Command::SyncTokenRoles {
        user: UserId::known("alice"),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        issued_at,
    };
    let first = world.ok("alice", sync(&["inspector@l1"], at(10)));
    assert_eq!(first.iter().map(Event::event_type).collect::<Vec<_>>(), ["RoleGranted", "TokenRolesSynced"]);
    let dropped = world.ok("alice", sync(&[], at(20)));
    assert_eq!(dropped.iter().map(Event::event_type).collect::<Vec<_>>(), ["GrantRevoked", "TokenRolesSynced"]);
    assert!(world.ok("alice", sync(&["inspector@l1"], at(15))).is_empty(), "older than the drop");
    assert!(!world.allowed("alice", "lab.read", "l1"));
    // As new as the newest: synced, and nothing more to record.
    let same = world.ok("alice", sync(&["inspector@l2"], at(20)));
    assert_eq!(same.iter().map(Event::event_type).collect::<Vec<_>>(), ["RoleGranted"]);
    let unsaid = world.ok("alice", sync(&[], None));
    assert_eq!(unsaid.iter().map(Event::event_type).collect::<Vec<_>>(), ["GrantRevoked"]);
}

/// UCP: Scheduler on /Shared is a default role; users registered before /Shared exists receive it
/// when it is created, each as a grant of its own, and users registered afterwards on arrival.
#[test]
fn default_roles_on_a_scope_reach_users_registered_before_it() {
    let mut world = World::new(workflow("ucp.toml"));
    world.register(&["root", "alice"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    assert!(!world.allowed("alice", "node.schedule", "global"));
    let created = world.ok("root", scope("shared", "collection", &[]));
    assert_eq!(granted(&created).len(), 2, "root and alice");
    assert!(world.allowed("alice", "node.schedule", "shared"));
    let later = world.ok("cli", Command::RegisterUser { user: UserId::known("bob"), email: None, name: None });
    assert!(
        matches!(&later[..], [Event::UserRegistered { .. }, Event::RoleGranted { role, scope, origin: GrantOrigin::Default, .. }] if role == "scheduler" && scope == "shared")
    );
    // Another collection is just a collection.
    assert!(granted(&world.ok("root", scope("other", "collection", &[]))).is_empty());
}

/// ClusterCockpit: every user holds `user` by default; a token that carries it too adds nothing,
/// and a later token without it leaves the default grant alone.
#[test]
fn token_roles_already_held_are_not_granted_twice() {
    let mut world = World::new(workflow("clustercockpit.toml"));
    world.register(&["carl"]);
    let sync = |claims: &[&str]| Command::SyncTokenRoles {
        user: UserId::known("carl"),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        issued_at: None,
    };
    let first = world.ok("carl", sync(&["user", "support", "support"]));
    assert!(matches!(&first[..], [Event::RoleGranted { role, origin: GrantOrigin::Token, .. }] if role == "support"));
    let later = world.ok("carl", sync(&[]));
    assert_eq!(later.iter().map(Event::event_type).collect::<Vec<_>>(), ["GrantRevoked"]);
    assert!(world.allowed("carl", "jobs.own.view", "global"));
    assert!(!world.allowed("carl", "jobs.all.view", "global"));
}

#[test]
fn grants_remember_when_they_gave_their_role() {
    let mut world = lab_world();
    let start = world.now;
    let id = world.assign("h1", Subject::User(UserId::known("bob")), "inspector", "l2").unwrap();
    world.now += Span::days(2);
    world.ok("h1", Command::Revoke { grant: id, reason: "done".into() });
    let grant = world.state.grant(&id).unwrap();
    assert!(!grant.gave_at(start - Span::seconds(1)));
    assert!(grant.gave_at(start + Span::days(1)));
    assert!(!grant.gave_at(start + Span::days(3)));
    assert!(!grant.gives_at(world.now));
}

#[test]
fn rancher_creators_own_and_revocations_are_independent() {
    let mut world = World::new(workflow("rancher.toml"));
    world.register(&["root", "carl", "pat"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    let cluster = world.ok("carl", scope("c1", "cluster", &[]));
    let cluster_owner = granted(&cluster)[0];
    let project = world.ok("carl", scope("p1", "project", &["c1"]));
    assert_eq!(world.state.grant(&granted(&project)[0]).unwrap().role, "project-owner");
    assert_eq!(world.refused("pat", scope("p2", "project", &["c1"])), "forbidden");
    world.assign("carl", Subject::User(UserId::known("pat")), "project-member", "p1").unwrap();
    world.ok("root", Command::Revoke { grant: cluster_owner, reason: "moved on".into() });
    assert!(!world.allowed("carl", "nodes.view", "c1"));
    assert!(world.allowed("carl", "project.members.manage", "p1"));
    assert!(world.allowed("pat", "workloads.edit", "p1"));
}

#[test]
fn admins_register_people_before_they_sign_in_and_the_sign_in_keeps_the_id() {
    let mut world = lab_world();
    let pre = |user: &str, email: Option<&str>| Command::PreRegisterUser {
        user: UserId::known(user),
        email: email.map(String::from),
        name: Some("Nia".into()),
    };
    // Who acts first: a non-admin learns nothing about the id.
    assert_eq!(world.refused("h1", pre("nia", None)), "forbidden");
    assert_eq!(world.refused("h1", pre("system", None)), "forbidden");
    assert_eq!(world.refused("root", pre("system", None)), "reserved_id");
    assert_eq!(world.refused("root", pre("system:mail", None)), "reserved_id");
    assert_eq!(world.refused("root", pre("n ia", None)), "invalid");
    assert_eq!(world.refused("root", pre("nia", Some("nia@x.org\r\nBcc: y@x.org"))), "invalid");
    assert_eq!(world.refused("root", pre("alice", None)), "already_exists");
    let events = world.ok("root", pre("nia", Some("nia@x.org")));
    assert!(
        matches!(&events[..], [Event::UserRegistered { user, .. }, Event::RoleGranted { origin: GrantOrigin::Default, .. }] if user == "nia")
    );
    assert_eq!(world.refused("root", pre("nia", None)), "already_exists");
    // A decider assigns before the first sign-in; the sign-in fills the profile and keeps the id.
    world.assign("h1", Subject::User(UserId::known("nia")), "lab-owner", "l2").unwrap();
    let signed_in = world.ok(
        "nia",
        Command::RegisterUser { user: UserId::known("nia"), email: Some("nia@new.x.org".into()), name: None },
    );
    assert!(
        matches!(&signed_in[..], [Event::UserProfileChanged { email: Some(e), name: Some(n), .. }] if e == "nia@new.x.org" && n == "Nia")
    );
    assert!(world.allowed("nia", "self.view", "global"));
}

/// `Event::VARIANTS` (what `event_type` says, webhooks filter by and the live view listens for)
/// are exactly the types serde reads: serde names every variant it knows when it meets one it does not.
#[test]
fn the_event_types_are_the_events_variants() {
    use strum::VariantNames;
    let error = Event::from_parts("NoSuchEvent", &serde_json::json!({})).unwrap_err().to_string();
    let (_, expected) = error.split_once("expected one of ").expect("serde lists the variants");
    let variants: Vec<&str> = expected
        .split(", ")
        .map(|name| name.trim_matches(|c| c == '`' || c == ' '))
        .filter(|n| !n.is_empty())
        .collect();
    let variants: Vec<&str> = variants.iter().map(|name| name.split('`').next().unwrap_or(name)).collect();
    assert_eq!(variants, Event::VARIANTS);
}
