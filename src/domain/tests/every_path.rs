//! The rules hold on every path to the same effect: durations that would overflow a time, API
//! tokens made for someone else, direct assignments of roles that need several approvals, and
//! incompatible roles arriving through a team.

use super::*;
use crate::workflow::Duration;

impl World {
    /// Runs a command as `actor` acting with an API token that `creator` made for them.
    fn run_with_token_of(&mut self, creator: &str, actor: &str, command: Command) -> Result<Vec<Event>, DomainError> {
        let ctx = Context::new(World::actor(actor), self.now, IdSource::sequence(9_000))
            .with_token_creator(Some(UserId::known(creator)));
        let events = decide(&self.state, &self.workflow, &ctx, command)?;
        for event in &events {
            self.state.apply(&self.workflow, event);
        }
        Ok(events)
    }

    /// The code of a refusal, and that nothing changed.
    #[track_caller]
    fn refused_unchanged(&mut self, actor: &str, command: Command) -> &'static str {
        let before = self.state.clone();
        let code = self.refused(actor, command);
        assert_eq!(self.state, before, "a refused command changed the state");
        code
    }
}

fn seconds(seconds: i64) -> Duration {
    Duration::from_seconds(seconds).unwrap()
}

fn request_for(role: &str, scope: &str, duration: Option<Duration>) -> Command {
    Command::RequestRole {
        role: role.into(),
        scope: ScopeId::known(scope),
        reason: "x".into(),
        duration,
        asked: Default::default(),
    }
}

#[test]
fn durations_over_a_century_or_ending_after_9999_are_refused_on_every_command() {
    let mut world = lab_world();
    let absurd = [seconds(100_000_000 * 86_400), seconds(i64::MAX), seconds(Duration::LONGEST.seconds() + 1)];
    for duration in absurd {
        let asked = request_for("lab-owner", "l2", Some(duration));
        assert_eq!(world.refused_unchanged("alice", asked), "invalid_duration");
        let assigned = Command::AssignRole {
            subject: Subject::User(UserId::known("alice")),
            role: "lab-owner".into(),
            scope: ScopeId::known("l2"),
            reason: "x".into(),
            duration: Some(duration),
            starts_at: None,
        };
        assert_eq!(world.refused_unchanged("h1", assigned), "invalid_duration");
        let token = Command::CreateApiToken {
            user: UserId::known("alice"),
            name: "ci".into(),
            secret_hash: "ab".repeat(32),
            expires_in: Some(duration),
        };
        assert_eq!(world.refused_unchanged("root", token), "invalid_duration");
    }
    // A century is allowed where the role allows it; a day past the last day is not.
    world.now = Utc.with_ymd_and_hms(9999, 12, 30, 0, 0, 0).unwrap();
    assert_eq!(
        world.refused_unchanged("alice", request_for("lab-owner", "l2", Some(seconds(3 * 86_400)))),
        "invalid_duration"
    );
    // The request's own time-to-live would end after 9999-12-31.
    assert_eq!(world.refused_unchanged("alice", request_for("lab-owner", "l2", None)), "invalid_duration");
}

#[test]
fn a_token_made_for_a_decider_does_not_let_its_creator_decide_their_own_matters() {
    let mut world = lab_world();
    // root (an admin) asks for a role that h1 decides, mints a token for h1 and approves with it.
    let asked = world.request("root", "lab-owner", "l2").unwrap();
    let approve = Command::Approve { request: asked, comment: String::new(), duration: None };
    assert_eq!(world.run_with_token_of("root", "h1", approve.clone()).unwrap_err().code(), "self_approval");
    // Nor assigns to the creator, or to a team the creator is in, or adds the creator to a team.
    let assign_root = Command::AssignRole {
        subject: Subject::User(UserId::known("root")),
        role: "lab-owner".into(),
        scope: ScopeId::known("l3"),
        reason: "x".into(),
        duration: None,
        starts_at: None,
    };
    assert_eq!(world.run_with_token_of("root", "h3", assign_root).unwrap_err().code(), "self_approval");
    world.ok("root", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() });
    world.ok(
        "h1",
        Command::AssignRole {
            subject: Subject::Team(TeamId::known("crew")),
            role: "lab-owner".into(),
            scope: ScopeId::known("l2"),
            reason: "x".into(),
            duration: None,
            starts_at: None,
        },
    );
    let add_root = Command::AddTeamMember { team: TeamId::known("crew"), user: UserId::known("root") };
    assert_eq!(world.run_with_token_of("root", "h1", add_root).unwrap_err().code(), "self_approval");
    // h1 acting on their own token decides as before.
    assert!(world.approve("h1", asked).is_ok());
}

#[test]
fn a_stage_counts_the_creator_of_the_token_an_approval_was_made_with() {
    let mut world = lab_world();
    // operator on l1: a review by two of {h1, h2, s1}, then a sign-off.
    let asked = world.request("alice", "operator", "l1").unwrap();
    let approve = Command::Approve { request: asked, comment: String::new(), duration: None };
    world.run_with_token_of("h2", "h1", approve.clone()).unwrap();
    assert_eq!(world.refused("h2", approve.clone()), "already_approved");
    assert_eq!(world.refused("h1", approve.clone()), "already_approved");
    world.ok("s1", approve);
    // The event names both, and the fold keeps it.
    let recorded = world.state.request(&asked).unwrap().approvals[0].clone();
    assert_eq!((recorded.by, recorded.token_creator), (Actor::User(UserId::known("h1")), Some(UserId::known("h2"))));
}

#[test]
fn api_tokens_end_when_what_let_them_be_made_ends() {
    let mut world = World::new(workflow("clustercockpit.toml"));
    world.register(&["root", "carol", "bot"]);
    world.assign("cli", Subject::User(UserId::known("root")), "admin", "global").unwrap();
    let api_grant = world.assign("root", Subject::User(UserId::known("carol")), "api", "global").unwrap();
    let create = |world: &mut World, actor: &str, user: &str, secret: &str| {
        let command = Command::CreateApiToken {
            user: UserId::known(user),
            name: "ci".into(),
            secret_hash: secret.repeat(32),
            expires_in: None,
        };
        match world.ok(actor, command).as_slice() {
            [Event::ApiTokenCreated { token, .. }] => *token,
            other => panic!("unexpected {other:?}"),
        }
    };
    let carols_own = create(&mut world, "carol", "carol", "c1");
    let bots = create(&mut world, "root", "bot", "b1");
    let in_force =
        |world: &World, token| world.state.api_token_in_force(world.state.api_token(&token).unwrap(), world.now);
    assert!(in_force(&world, carols_own) && in_force(&world, bots));
    world.ok("root", Command::Revoke { grant: api_grant, reason: "left".into() });
    assert!(!in_force(&world, carols_own), "carol's own token outlived her API role");
    assert!(in_force(&world, bots));
    let roots_admin = world.state.grants().find(|g| g.role == "admin").unwrap().id;
    world.ok("cli", Command::Revoke { grant: roots_admin, reason: "left".into() });
    assert!(!in_force(&world, bots), "a token outlived its creator's admin role");
}

#[test]
fn roles_that_need_several_approvals_are_not_assigned_directly() {
    let mut world = lab_world();
    let assign = |subject: Subject, role: &str| Command::AssignRole {
        subject,
        role: role.into(),
        scope: ScopeId::known("l1"),
        reason: "x".into(),
        duration: None,
        starts_at: None,
    };
    // operator needs a review by two and a sign-off; senior includes operator.
    for actor in ["h1", "root"] {
        assert_eq!(
            world.refused_unchanged(actor, assign(Subject::User(UserId::known("alice")), "operator")),
            "approvals_required"
        );
        assert_eq!(
            world.refused_unchanged(actor, assign(Subject::User(UserId::known("alice")), "senior")),
            "approvals_required"
        );
    }
    world.ok("root", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() });
    assert_eq!(
        world.refused_unchanged("h1", assign(Subject::Team(TeamId::known("crew")), "operator")),
        "approvals_required"
    );
    // A role of one approval is assigned as before.
    world.ok("h1", assign(Subject::User(UserId::known("alice")), "lab-owner"));
}

#[test]
fn incompatible_roles_never_meet_through_a_team() {
    let mut world = lab_world();
    let crew = "crew";
    world.ok("root", Command::CreateTeam { id: TeamId::known(crew), title: "Crew".into() });
    let assign = |subject: Subject, role: &str| Command::AssignRole {
        subject,
        role: role.into(),
        scope: ScopeId::known("l2"),
        reason: "x".into(),
        duration: None,
        starts_at: None,
    };
    // alice becomes operator on l1 through a request (review by h1 and h2, sign-off by s1).
    let asked = world.request("alice", "operator", "l1").unwrap();
    for decider in ["h1", "h2", "s1"] {
        world.approve(decider, asked).unwrap();
    }
    world.ok("h1", assign(Subject::Team(TeamId::known(crew)), "inspector"));
    // alice (operator) joins a team holding inspector.
    let join = Command::AddTeamMember { team: TeamId::known(crew), user: UserId::known("alice") };
    assert_eq!(world.refused_unchanged("root", join), "incompatible_role");
    // A team with an operator among its members receives no inspector.
    world.ok("root", Command::CreateTeam { id: TeamId::known("shift"), title: "Shift".into() });
    world.ok("root", Command::AddTeamMember { team: TeamId::known("shift"), user: UserId::known("alice") });
    assert_eq!(
        world.refused_unchanged("h1", assign(Subject::Team(TeamId::known("shift")), "inspector")),
        "incompatible_role"
    );
    // A login token claiming inspector gives alice (operator) nothing.
    let claim =
        Command::SyncTokenRoles { user: UserId::known("alice"), claims: vec!["inspector@l2".into()], issued_at: None };
    assert!(world.ok("alice", claim).is_empty(), "an incompatible claim is ignored");
    // A member of the inspecting team asks in vain for operator.
    world.ok("root", Command::AddTeamMember { team: TeamId::known(crew), user: UserId::known("bob") });
    assert_eq!(world.refused_unchanged("bob", request_for("operator", "l1", None)), "incompatible_role");
}

#[test]
fn who_may_decide_is_judged_before_what_state_the_request_is_in() {
    let mut world = lab_world();
    let asked = world.request("alice", "lab-owner", "l2").unwrap();
    world.approve("h1", asked).unwrap();
    // bob and h3 (head of another department) may not decide it: 403, not 409 "not pending".
    assert_eq!(
        world.refused_unchanged("bob", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_a_decider"
    );
    assert_eq!(
        world.refused_unchanged("h3", Command::Reject { request: asked, reason: String::new() }),
        "not_a_decider"
    );
    assert_eq!(
        world.refused_unchanged("h2", Command::Approve { request: asked, comment: String::new(), duration: None }),
        "not_pending"
    );
    let grant = world.state.request(&asked).unwrap().grant.unwrap();
    world.ok("h1", Command::Revoke { grant, reason: "x".into() });
    assert_eq!(world.refused_unchanged("bob", Command::Revoke { grant, reason: "x".into() }), "not_a_decider");
    assert_eq!(world.refused_unchanged("h2", Command::Revoke { grant, reason: "x".into() }), "not_active");
}

mod extremes {
    //! Extreme durations, times and sizes fed to every command: each is decided into events or
    //! refused, never a panic, and no end computed from a duration falls after 9999-12-31.
    use super::*;
    use crate::workflow::Role;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MAX / 1000 + 1),
            Just(Duration::LONGEST.seconds()),
            Just(Duration::LONGEST.seconds() + 1),
            1..i64::MAX,
            1..10_000_000i64,
        ]
        .prop_map(|s| Duration::from_seconds(s).unwrap())
    }

    fn moment() -> impl Strategy<Value = DateTime<Utc>> {
        let (min, max) = (DateTime::<Utc>::MIN_UTC.timestamp(), DateTime::<Utc>::MAX_UTC.timestamp());
        prop_oneof![
            Just(DateTime::<Utc>::MIN_UTC),
            Just(DateTime::<Utc>::MAX_UTC),
            Just(crate::domain::time::latest()),
            (min..max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
            (1_700_000_000..1_900_000_000i64).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("x".repeat(100_000)),
            Just("\u{200b}\r\n\u{0}\u{202e}".to_string()),
            ".{0,40}",
        ]
    }

    fn commands(world: &World, duration: Duration, text: String, now: DateTime<Utc>) -> Vec<(&'static str, Command)> {
        let request = world.state.requests().next().map(|r| r.id).unwrap_or_default();
        let grant = world.state.grants().next().map(|g| g.id).unwrap_or_default();
        let token = world.state.api_tokens().next().map(|t| t.id).unwrap_or_default();
        let mut role = Role::builtin("custom", &text, &text);
        role.kinds = vec!["lab".into()];
        role.max_duration = Some(duration);
        let user = Subject::User(UserId::known("alice"));
        vec![
            (
                "cli",
                Command::RegisterUser {
                    user: UserId::known(text.clone()),
                    email: Some(text.clone()),
                    name: Some(text.clone()),
                },
            ),
            (
                "root",
                Command::PreRegisterUser {
                    user: UserId::known(text.clone()),
                    email: Some(text.clone()),
                    name: Some(text.clone()),
                },
            ),
            ("alice", Command::UpdateProfile { user: UserId::known("alice"), email: Some(text.clone()), name: None }),
            (
                "root",
                Command::CreateScope {
                    id: ScopeId::known(text.clone()),
                    kind: "lab".into(),
                    parents: vec![ScopeId::known("d1")],
                    title: text.clone(),
                    mailbox: Some(text.clone()),
                },
            ),
            (
                "alice",
                Command::RequestRole {
                    role: "lab-owner".into(),
                    scope: ScopeId::known("l2"),
                    reason: text.clone(),
                    duration: Some(duration),
                    asked: Default::default(),
                },
            ),
            (
                "alice",
                Command::RequestRole {
                    role: "operator".into(),
                    scope: ScopeId::known("l1"),
                    reason: text.clone(),
                    duration: None,
                    asked: Default::default(),
                },
            ),
            ("h1", Command::Approve { request, comment: text.clone(), duration: None }),
            ("h1", Command::Reject { request, reason: text.clone() }),
            ("alice", Command::Cancel { request }),
            (
                "h1",
                Command::AssignRole {
                    subject: user.clone(),
                    role: "lab-owner".into(),
                    scope: ScopeId::known("l2"),
                    reason: text.clone(),
                    duration: Some(duration),
                    starts_at: None,
                },
            ),
            (
                "cli",
                Command::AssignRole {
                    subject: user,
                    role: "inspector".into(),
                    scope: ScopeId::known("l3"),
                    reason: text.clone(),
                    duration: Some(duration),
                    starts_at: None,
                },
            ),
            ("h1", Command::Revoke { grant, reason: text.clone() }),
            ("cli", Command::ExpireRequest { request }),
            ("cli", Command::ExpireGrant { grant }),
            ("cli", Command::RemindDeciders { request }),
            ("cli", Command::WarnGrantEnding { grant }),
            ("root", Command::DefineRole { role: role.clone() }),
            ("root", Command::EditRole { role }),
            ("root", Command::DuplicateRole { role: "lab-owner".into() }),
            ("root", Command::DeleteRole { role: "custom".into() }),
            ("root", Command::CreateTeam { id: TeamId::known(text.clone()), title: text.clone() }),
            ("root", Command::AddTeamMember { team: TeamId::known(text.clone()), user: UserId::known("alice") }),
            ("root", Command::RemoveTeamMember { team: TeamId::known(text.clone()), user: UserId::known("alice") }),
            (
                "alice",
                Command::SyncTokenRoles {
                    user: UserId::known("alice"),
                    claims: vec![text.clone(), "inspector@l1".into()],
                    issued_at: Some(now),
                },
            ),
            (
                "root",
                Command::CreateApiToken {
                    user: UserId::known("alice"),
                    name: text,
                    secret_hash: "cd".repeat(32),
                    expires_in: Some(duration),
                },
            ),
            ("root", Command::RevokeApiToken { token }),
        ]
    }

    fn computed_times_of(event: &Event) -> Vec<DateTime<Utc>> {
        let data = event.data();
        let mut times = Vec::new();
        // The times computed from durations (an event's own time is the clock's).
        for key in ["ends_at", "expires_at"] {
            if let Some(time) = data.get(key).and_then(|v| v.as_str()).and_then(|t| t.parse().ok()) {
                times.push(time);
            }
        }
        times
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn every_command_is_decided_or_refused_never_a_panic(
            duration in duration(),
            now in moment(),
            text in text(),
        ) {
            let mut world = lab_world();
            world.request("alice", "lab-owner", "l1").unwrap();
            world.now = now;
            for (actor, command) in commands(&world, duration, text, now) {
                let ctx = Context::new(World::actor(actor), world.now, IdSource::sequence(7));
                if let Ok(events) = decide(&world.state, &world.workflow, &ctx, command) {
                    for event in &events {
                        for time in computed_times_of(event) {
                            prop_assert!(time <= crate::domain::time::latest(), "{event:?}");
                        }
                        world.state.apply(&world.workflow, event);
                    }
                }
            }
        }
    }
}
