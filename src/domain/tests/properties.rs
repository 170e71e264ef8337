//! Random command sequences on the lab workflow: the state folded step by step equals the one
//! rebuilt from the serialized log, no grant appears that no rule allowed, and the indexed
//! `check` agrees with a naive one.

use super::{granted, World};
use crate::domain::*;
use crate::workflow::permission::{parse_permission, CompiledPermissions};
use crate::workflow::{role_closure, Action, Applies, Place, Workflow, ADMIN, GLOBAL};
use chrono::{DateTime, Duration as Span, Utc};
use proptest::prelude::*;

const USERS: &[&str] = &["root", "h1", "h2", "h3", "s1", "o1", "alice", "bob"];
const ROLES: &[&str] =
    &["operator", "senior", "inspector", "safety-officer", "lab-owner", "founder", "dept-head", "user", ADMIN];
const SCOPES: &[&str] = &["d1", "d2", "l1", "l2", "l3", "l4", GLOBAL];
const PERMISSIONS: &[&str] = &[
    "lab.use",
    "lab.read",
    "lab.admin",
    "lab.tune:laser",
    "lab.tune",
    "lab.history.read",
    "scope.create",
    "self.view",
];

#[derive(Debug, Clone)]
enum Op {
    Request { user: usize, role: usize, scope: usize },
    Approve { actor: usize, pick: usize },
    Reject { actor: usize, pick: usize },
    Cancel { actor: usize, pick: usize },
    Assign { actor: usize, subject: usize, role: usize, scope: usize },
    Revoke { actor: usize, pick: usize },
    Expire,
    AddMember { actor: usize, user: usize },
    RemoveMember { actor: usize, user: usize },
    CreateLab { actor: usize, id: usize, parent: usize },
    SyncToken { user: usize, claims: Vec<(usize, usize)> },
    Wait { hours: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let role = 0..ROLES.len();
    let scope = 0..SCOPES.len();
    prop_oneof![
        3 => (user.clone(), role.clone(), scope.clone()).prop_map(|(user, role, scope)| Op::Request { user, role, scope }),
        3 => (user.clone(), any::<usize>()).prop_map(|(actor, pick)| Op::Approve { actor, pick }),
        1 => (user.clone(), any::<usize>()).prop_map(|(actor, pick)| Op::Reject { actor, pick }),
        1 => (user.clone(), any::<usize>()).prop_map(|(actor, pick)| Op::Cancel { actor, pick }),
        2 => (user.clone(), 0..USERS.len() + 1, role.clone(), scope.clone())
            .prop_map(|(actor, subject, role, scope)| Op::Assign { actor, subject, role, scope }),
        1 => (user.clone(), any::<usize>()).prop_map(|(actor, pick)| Op::Revoke { actor, pick }),
        1 => Just(Op::Expire),
        1 => (user.clone(), user.clone()).prop_map(|(actor, user)| Op::AddMember { actor, user }),
        1 => (user.clone(), user.clone()).prop_map(|(actor, user)| Op::RemoveMember { actor, user }),
        1 => (user.clone(), 0..3usize, scope.clone()).prop_map(|(actor, id, parent)| Op::CreateLab { actor, id, parent }),
        1 => (user, proptest::collection::vec((role, scope), 0..3))
            .prop_map(|(user, claims)| Op::SyncToken { user, claims }),
        1 => (1..120i64).prop_map(|hours| Op::Wait { hours }),
    ]
}

fn start() -> World {
    let mut world = World::new(super::lab_workflow());
    world.register(USERS);
    world.assign("cli", Subject::User(UserId::known("root")), ADMIN, GLOBAL).unwrap();
    for (id, kind, parents) in [
        ("d1", "dept", &[][..]),
        ("d2", "dept", &[]),
        ("l1", "lab", &["d1"]),
        ("l2", "lab", &["d1"]),
        ("l3", "lab", &["d2"]),
        ("l4", "lab", &["l1", "l3"]),
    ] {
        world.ok("cli", crate::domain::scenarios::create_scope(id, kind, parents));
    }
    for (user, role, scope) in [
        ("h1", "dept-head", "d1"),
        ("h3", "dept-head", "d2"),
        ("s1", "safety-officer", "l1"),
        ("o1", "lab-owner", "l2"),
    ] {
        world.assign("cli", Subject::User(UserId::known(user)), role, scope).unwrap();
    }
    world.ok("cli", Command::CreateTeam { id: TeamId::known("crew"), title: "Crew".into() });
    world
}

fn pick<T: Copy>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()])
}

/// Turns an op into (actor, command) against the current state; `None` when there is nothing to pick.
fn command(world: &World, op: &Op) -> Option<(String, Command)> {
    let requests: Vec<RequestId> = world.state.requests().map(|r| r.id).collect();
    // Approvals mostly aim at pending requests, so that stages and grants get exercised.
    let pending: Vec<RequestId> = world.state.requests().filter(|r| r.is_pending()).map(|r| r.id).collect();
    let approvable = if pending.is_empty() { &requests } else { &pending };
    let grants: Vec<GrantId> = world.state.grants().map(|g| g.id).collect();
    let name = |i: usize| USERS[i].to_string();
    Some(match op {
        Op::Request { user, role, scope } => (
            name(*user),
            Command::RequestRole {
                role: ROLES[*role].into(),
                scope: ScopeId::known(SCOPES[*scope]),
                reason: String::new(),
                duration: None,
                asked: Default::default(),
            },
        ),
        Op::Approve { actor, pick: p } => {
            (name(*actor), Command::Approve { request: pick(approvable, *p)?, comment: String::new(), duration: None })
        }
        Op::Reject { actor, pick: p } => {
            (name(*actor), Command::Reject { request: pick(&requests, *p)?, reason: String::new() })
        }
        Op::Cancel { actor, pick: p } => (name(*actor), Command::Cancel { request: pick(&requests, *p)? }),
        Op::Revoke { actor, pick: p } => {
            (name(*actor), Command::Revoke { grant: pick(&grants, *p)?, reason: String::new() })
        }
        Op::Assign { actor, subject, role, scope } => {
            let subject = if *subject == USERS.len() {
                Subject::Team(TeamId::known("crew"))
            } else {
                Subject::User(UserId::known(name(*subject)))
            };
            let command = Command::AssignRole {
                subject,
                role: ROLES[*role].into(),
                scope: ScopeId::known(SCOPES[*scope]),
                reason: String::new(),
                duration: None,
                starts_at: None,
            };
            (name(*actor), command)
        }
        Op::AddMember { actor, user } => {
            (name(*actor), Command::AddTeamMember { team: TeamId::known("crew"), user: UserId::known(name(*user)) })
        }
        Op::RemoveMember { actor, user } => {
            (name(*actor), Command::RemoveTeamMember { team: TeamId::known("crew"), user: UserId::known(name(*user)) })
        }
        Op::CreateLab { actor, id, parent } => {
            (name(*actor), crate::domain::scenarios::create_scope(&format!("new-{id}"), "lab", &[SCOPES[*parent]]))
        }
        Op::SyncToken { user, claims } => {
            let claims = claims.iter().map(|(role, scope)| format!("{}@{}", ROLES[*role], SCOPES[*scope])).collect();
            (name(*user), Command::SyncTokenRoles { user: UserId::known(name(*user)), claims, issued_at: None })
        }
        Op::Expire | Op::Wait { .. } => return None,
    })
}

/// The system's expiry job: every due request and grant.
fn expire_all(world: &mut World) {
    let now = world.now;
    let requests: Vec<RequestId> =
        world.state.requests().filter(|r| r.is_pending() && r.expires_at <= now).map(|r| r.id).collect();
    let grants: Vec<GrantId> = world
        .state
        .grants()
        .filter(|g| g.status == GrantStatus::Active && g.ends_at.is_some_and(|end| end <= now))
        .map(|g| g.id)
        .collect();
    for request in requests {
        world.ok("cli", Command::ExpireRequest { request });
    }
    for grant in grants {
        world.ok("cli", Command::ExpireGrant { grant });
        assert_eq!(world.refused("cli", Command::ExpireGrant { grant }), "not_active", "expiry happens exactly once");
    }
}

// ----- a naive model of authority and checks, walking the data without the index -----

fn reaches(state: &State, subject: &Subject, user: &str) -> bool {
    match subject {
        Subject::User(holder) => holder == user,
        Subject::Team(team) => state.team(team).is_some_and(|t| t.members.contains(user)),
    }
}

fn live_grants<'a>(state: &'a State, user: &'a str, now: DateTime<Utc>) -> Vec<&'a Grant> {
    state.grants().filter(|g| g.gives_at(now) && reaches(state, &g.subject, user)).collect()
}

fn ancestors(state: &State, scope: &str) -> Vec<ScopeId> {
    let mut found = Vec::new();
    let mut frontier: Vec<ScopeId> = state.scope(scope).map(|s| s.parents.clone()).unwrap_or_default();
    while let Some(next) = frontier.pop() {
        if !found.contains(&next) {
            frontier.extend(state.scope(&next).map(|s| s.parents.clone()).unwrap_or_default());
            found.push(next);
        }
    }
    found
}

fn naive_is_admin(state: &State, user: &str, now: DateTime<Utc>) -> bool {
    live_grants(state, user, now).iter().any(|g| g.role == ADMIN && g.scope == GLOBAL)
}

fn naive_may_decide(
    state: &State,
    workflow: &Workflow,
    user: &str,
    role: &str,
    scope: &str,
    now: DateTime<Utc>,
) -> bool {
    if naive_is_admin(state, user, now) {
        return true;
    }
    let Some(kind) = state.scope(scope).map(|s| s.kind.clone()) else {
        return false;
    };
    let held = live_grants(state, user, now);
    role_closure(state.roles(), role).iter().all(|target| {
        let Some(rule) = workflow.rule_for(target, &kind) else {
            return false;
        };
        rule.allows(Action::Approve)
            && rule.deciders.iter().any(|decider| {
                held.iter().any(|g| {
                    role_closure(state.roles(), &g.role).contains(&decider.role)
                        && match decider.place {
                            Place::Same => g.scope == scope,
                            Place::Parent => state.scope(scope).is_some_and(|s| s.parents.contains(&g.scope)),
                            Place::Ancestor => ancestors(state, scope).contains(&g.scope),
                            Place::Global => g.scope == GLOBAL,
                        }
                })
            })
    })
}

fn naive_check(
    state: &State,
    workflow: &Workflow,
    user: &str,
    permission: &str,
    scope: &str,
    now: DateTime<Utc>,
) -> bool {
    if state.scope(scope).is_none() {
        return false;
    }
    if naive_is_admin(state, user, now) {
        return true;
    }
    let Ok(permission) = parse_permission(permission) else {
        return false;
    };
    let above = ancestors(state, scope);
    live_grants(state, user, now).iter().any(|g| {
        let on_scope = g.scope == scope;
        (on_scope || above.contains(&g.scope))
            && role_closure(state.roles(), &g.role).iter().filter_map(|r| state.role(r)).any(|role| {
                (on_scope || role.applies == Applies::Subtree)
                    && CompiledPermissions::compile(&role.permission_entries(), &workflow.implications)
                        .allows(&permission)
            })
    })
}

/// Every grant in `events` was allowed by some rule, judged on the state before the command.
fn assert_grants_justified(
    before: &State,
    after: &State,
    workflow: &Workflow,
    actor: &str,
    events: &[Event],
    now: DateTime<Utc>,
) {
    for event in events {
        let Event::RoleGranted { subject, role, scope, origin, .. } = event else {
            continue;
        };
        let kind = &before.scope(scope).or(after.scope(scope)).expect("granted on a known scope").kind;
        assert!(after.role(role).is_some_and(|r| r.may_be_held_on(kind)), "{role} held on a {kind}");
        let by_decider = |user: &str| {
            actor == "cli"
                || naive_may_decide(before, workflow, actor, role, scope, now)
                    && !reaches(before, subject, actor)
                    && actor != user
        };
        match origin {
            GrantOrigin::Request { request } => {
                let request = after.request(request).expect("request known");
                assert!(by_decider(&request.user), "{actor} approved {role} on {scope} without authority");
                let mut approvers: Vec<&Actor> = request.approvals.iter().map(|a| &a.by).collect();
                approvers.sort();
                approvers.dedup();
                let rule = workflow.rule_for(role, kind).expect("rule");
                let quorum: u32 = rule.stages.iter().map(|s| s.quorum).sum();
                assert_eq!(approvers.len(), quorum as usize, "distinct approvers fill every stage");
                assert!(!approvers.contains(&&Actor::User(request.user.clone())), "nobody approves their own request");
            }
            GrantOrigin::Assignment { .. } => {
                let user = if let Subject::User(user) = subject { user.as_str() } else { "" };
                assert!(by_decider(user), "{actor} assigned {role} on {scope} to {subject} without authority");
                assert!(!(matches!(subject, Subject::Team(_)) && (role == ADMIN || role == "auditor")));
            }
            GrantOrigin::Creator => {
                assert!(events.iter().any(|e| matches!(e, Event::ScopeCreated { scope: s, .. } if s == scope)));
                assert!(workflow.settings.creator_roles.get(kind).is_some_and(|roles| roles.contains(role)));
            }
            GrantOrigin::Token => {
                assert!(after.role(role).is_some_and(|r| r.token_grantable));
                assert!(matches!(subject, Subject::User(user) if actor == user || actor == "cli"));
            }
            GrantOrigin::Default => {
                assert!(events.iter().any(|e| matches!(e, Event::UserRegistered { .. })));
                assert!(workflow.settings.default_roles.iter().any(|d| &d.role == role && &d.scope == scope));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = start();
        for op in &ops {
            match op {
                Op::Wait { hours } => world.now += Span::hours(*hours),
                Op::Expire => expire_all(&mut world),
                _ => {
                    let Some((actor, command)) = command(&world, op) else { continue };
                    let before = world.state.clone();
                    if let Ok(events) = world.run(&actor, command) {
                        assert_grants_justified(&before, &world.state, &world.workflow, &actor, &events, world.now);
                        let _ = granted(&events);
                    }
                }
            }
        }
        // The log, serialized and read back, folds into the same state.
        let stored: Vec<(String, serde_json::Value)> =
            world.events.iter().map(|e| (e.event_type().to_string(), e.data())).collect();
        let read_back: Vec<Event> = stored.into_iter().map(|(t, d)| Event::from_parts(&t, &d).unwrap()).collect();
        prop_assert_eq!(&State::replay(&world.workflow, &read_back), &world.state);
        // Judged under its own workflow, the history holds no difference.
        let mut simulation = Simulation::new(&world.workflow, &world.workflow);
        for (index, event) in read_back.iter().enumerate() {
            simulation.step(index, world.now, event);
        }
        prop_assert_eq!(simulation.finish(world.now), Vec::new());
        // The indexed check agrees with the naive one everywhere.
        let scopes: Vec<ScopeId> = world.state.scopes().map(|s| s.id.clone()).collect();
        for user in USERS {
            for permission in PERMISSIONS {
                for scope in &scopes {
                    let fast = world.state.check(user, permission, scope, world.now);
                    let naive = naive_check(&world.state, &world.workflow, user, permission, scope, world.now);
                    prop_assert_eq!(fast.allowed, naive, "check({}, {}, {})", user, permission, scope);
                }
            }
        }
    }
}
