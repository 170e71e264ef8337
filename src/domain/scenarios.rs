//! GOCDB scenarios on `workflows/egi.toml`, as data, so that the same table runs over the pure
//! domain ([`run_in_memory`]) and, later, through the event store.
//!
//! Running a scenario: for step number `i` (from 0), decide its command with [`Step::context`]`(i)`
//! (its actor, its time, and ids from `IdSource::sequence(i + 1)`), then compare with its
//! expectation; a step that was accepted appends its events. The first id a step draws is
//! `Uuid::from_u64_pair(i + 1, 0)`: the id of the request it makes or of the grant it creates.

use super::command::Command;
use super::decide::decide;
use super::error::DomainError;
use super::request::RequestStatus;
use super::state::State;
use super::types::{Actor, Context, GrantId, IdSource, RequestId, ScopeId, Subject, UserId};
use crate::workflow::{Duration, Workflow, ADMIN, GLOBAL};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: StepAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Accepted,
    /// Refused with this [`super::DomainError::code`].
    Refused(&'static str),
}

#[derive(Debug, Clone)]
pub enum StepAction {
    Run {
        command: Command,
        expect: Expect,
    },
    /// `check(user, permission, scope)` at the step's time.
    Check {
        user: String,
        permission: String,
        scope: String,
        allowed: bool,
    },
    RequestIs {
        request: RequestId,
        status: RequestStatus,
    },
    /// `deciders_for(request)`: users with `true` when they decide only as administrators.
    DecidersAre {
        request: RequestId,
        deciders: Vec<(String, bool)>,
    },
}

impl Step {
    pub fn context(&self, index: usize) -> Context {
        Context::new(self.actor.clone(), self.at, IdSource::sequence(index as u64 + 1))
    }
}

/// Refers to an earlier step, to name the request or grant it created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRef(usize);

impl StepRef {
    /// The first id drawn by the step: its request, or its grant.
    pub fn id(self) -> Uuid {
        Uuid::from_u64_pair(self.0 as u64 + 1, 0)
    }
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().unwrap_or_default()
}

pub fn user(id: &str) -> Actor {
    Actor::User(UserId::known(id))
}

pub fn request(role: &str, scope: &str) -> Command {
    Command::RequestRole {
        role: role.to_string(),
        scope: ScopeId::known(scope),
        reason: "needed for my work".to_string(),
        duration: None,
        asked: Default::default(),
    }
}

pub fn approve(request: StepRef) -> Command {
    Command::Approve { request: request.id(), comment: "ok".to_string(), duration: None }
}

pub fn reject(request: StepRef) -> Command {
    Command::Reject { request: request.id(), reason: "not needed".to_string() }
}

pub fn assign(user: &str, role: &str, scope: &str, duration: Option<Duration>) -> Command {
    Command::AssignRole {
        subject: Subject::User(UserId::known(user)),
        role: role.to_string(),
        scope: ScopeId::known(scope),
        reason: "assigned".to_string(),
        duration,
        starts_at: None,
    }
}

pub fn revoke(grant: GrantId) -> Command {
    Command::Revoke { grant, reason: "no longer needed".to_string() }
}

pub fn create_scope(id: &str, kind: &str, parents: &[&str]) -> Command {
    Command::CreateScope {
        id: ScopeId::known(id),
        kind: kind.to_string(),
        parents: parents.iter().copied().map(ScopeId::known).collect(),
        title: id.to_uppercase(),
        mailbox: None,
    }
}

/// Builds a scenario step by step, keeping the clock.
pub struct ScenarioBuilder {
    name: String,
    steps: Vec<Step>,
    now: DateTime<Utc>,
    /// The grant each world user was given, by user id.
    world_grants: BTreeMap<String, GrantId>,
}

/// The EGI world every scenario starts from: who holds what, where.
/// Projects egi and wlcg; ngi-de sits in both, ngi-fr in egi; sites site-kit and site-desy in
/// ngi-de, site-in2p3 in ngi-fr; service group sg-atlas.
pub const EGI_WORLD_GRANTS: &[(&str, &str, &str)] = &[
    ("root", ADMIN, GLOBAL),
    ("kit-som", "site-operations-manager", "site-kit"),
    ("kit-sso", "site-security-officer", "site-kit"),
    ("kit-sdm", "site-operations-deputy-manager", "site-kit"),
    ("kit-admin", "site-administrator", "site-kit"),
    ("desy-som", "site-operations-manager", "site-desy"),
    ("de-nom", "ngi-operations-manager", "ngi-de"),
    ("de-nso", "ngi-security-officer", "ngi-de"),
    ("de-ndm", "ngi-operations-deputy-manager", "ngi-de"),
    ("de-rod", "regional-staff-rod", "ngi-de"),
    ("de-fls", "regional-first-line-support", "ngi-de"),
    ("fr-nom", "ngi-operations-manager", "ngi-fr"),
    ("egi-coo", "chief-operations-officer", "egi"),
    ("egi-cod", "cod-staff", "egi"),
    ("wlcg-csirt", "egi-csirt-officer", "wlcg"),
    ("sg-admin", "service-group-administrator", "sg-atlas"),
];

pub const EGI_PLAIN_USERS: &[&str] = &["alice", "bob", "carol"];

impl ScenarioBuilder {
    pub fn new(name: &str) -> ScenarioBuilder {
        ScenarioBuilder { name: name.to_string(), steps: Vec::new(), now: base_time(), world_grants: BTreeMap::new() }
    }

    /// A builder whose first steps set up the EGI world, from the command line.
    pub fn egi(name: &str) -> ScenarioBuilder {
        let mut builder = ScenarioBuilder::new(name);
        let users = EGI_WORLD_GRANTS.iter().map(|(user, _, _)| *user).chain(EGI_PLAIN_USERS.iter().copied());
        for id in users {
            let email = Some(format!("{id}@example.org"));
            builder.accepted(Actor::CommandLine, Command::RegisterUser { user: UserId::known(id), email, name: None });
        }
        let scopes = [
            ("egi", "project", &[][..]),
            ("wlcg", "project", &[]),
            ("ngi-de", "ngi", &["egi", "wlcg"]),
            ("ngi-fr", "ngi", &["egi"]),
            ("site-kit", "site", &["ngi-de"]),
            ("site-desy", "site", &["ngi-de"]),
            ("site-in2p3", "site", &["ngi-fr"]),
            ("sg-atlas", "service-group", &[]),
        ];
        for (id, kind, parents) in scopes {
            builder.accepted(Actor::CommandLine, create_scope(id, kind, parents));
        }
        for (holder, role, scope) in EGI_WORLD_GRANTS {
            let step = builder.accepted(Actor::CommandLine, assign(holder, role, scope, None));
            builder.world_grants.insert(holder.to_string(), step.id());
        }
        builder.wait(chrono::Duration::minutes(1));
        builder
    }

    pub fn world_grant(&self, holder: &str) -> GrantId {
        self.world_grants.get(holder).copied().unwrap_or_default()
    }

    pub fn wait(&mut self, duration: chrono::Duration) {
        self.now += duration;
    }

    fn push(&mut self, actor: Actor, action: StepAction) -> StepRef {
        self.steps.push(Step { at: self.now, actor, action });
        StepRef(self.steps.len() - 1)
    }

    pub fn accepted(&mut self, actor: Actor, command: Command) -> StepRef {
        self.push(actor, StepAction::Run { command, expect: Expect::Accepted })
    }

    pub fn refused(&mut self, actor: Actor, command: Command, code: &'static str) -> StepRef {
        self.push(actor, StepAction::Run { command, expect: Expect::Refused(code) })
    }

    pub fn check(&mut self, user: &str, permission: &str, scope: &str, allowed: bool) {
        let action = StepAction::Check {
            user: user.to_string(),
            permission: permission.to_string(),
            scope: scope.to_string(),
            allowed,
        };
        self.push(Actor::CommandLine, action);
    }

    pub fn request_is(&mut self, request: StepRef, status: RequestStatus) {
        self.push(Actor::CommandLine, StepAction::RequestIs { request: request.id(), status });
    }

    pub fn deciders_are(&mut self, request: StepRef, deciders: &[(&str, bool)]) {
        let deciders = deciders.iter().map(|(user, admin_only)| (user.to_string(), *admin_only)).collect();
        self.push(Actor::CommandLine, StepAction::DecidersAre { request: request.id(), deciders });
    }

    pub fn build(self) -> Scenario {
        Scenario { name: self.name, steps: self.steps }
    }
}

/// Runs a scenario over the pure domain; the error names the failing step.
pub fn run_in_memory(workflow: &Workflow, scenario: &Scenario) -> Result<State, String> {
    let mut state = State::new(workflow);
    for (index, step) in scenario.steps.iter().enumerate() {
        match &step.action {
            StepAction::Run { command, .. } => {
                let outcome = decide(&state, workflow, &step.context(index), command.clone());
                step.judge(&scenario.name, index, outcome.as_ref().map(|_| ()))?;
                outcome.into_iter().flatten().for_each(|event| state.apply(workflow, &event));
            }
            _ => step.observe(&scenario.name, index, workflow, &state)?,
        }
    }
    Ok(state)
}

impl Step {
    /// Compares a command's outcome with what the step expects.
    pub fn judge(&self, scenario: &str, index: usize, outcome: Result<(), &DomainError>) -> Result<(), String> {
        let StepAction::Run { expect, .. } = &self.action else {
            return Err(self.failure(scenario, index, "is not a command".into()));
        };
        match (outcome, expect) {
            (Ok(()), Expect::Accepted) => Ok(()),
            (Err(error), Expect::Refused(code)) if error.code() == *code => Ok(()),
            (Ok(()), expected) => Err(self.failure(scenario, index, format!("accepted, expected {expected:?}"))),
            (Err(error), expected) => {
                Err(self.failure(scenario, index, format!("refused {} ({error}), expected {expected:?}", error.code())))
            }
        }
    }

    /// Checks an observation step (check, request status, deciders) against the state.
    pub fn observe(&self, scenario: &str, index: usize, workflow: &Workflow, state: &State) -> Result<(), String> {
        let fail = |what: String| Err(self.failure(scenario, index, what));
        match &self.action {
            StepAction::Run { .. } => fail("is a command, not an observation".into()),
            StepAction::Check { user, permission, scope, allowed } => {
                let answer = state.check(user, permission, scope, self.at);
                if answer.allowed != *allowed {
                    return fail(format!("check answered {answer:?}"));
                }
                Ok(())
            }
            StepAction::RequestIs { request, status } => {
                let actual = state.request(request).map(|r| r.status);
                if actual != Some(*status) {
                    return fail(format!("request is {actual:?}"));
                }
                Ok(())
            }
            StepAction::DecidersAre { request, deciders } => {
                let actual: Vec<(String, bool)> = state
                    .deciders_for(workflow, request, self.at)
                    .into_iter()
                    .map(|d| (d.user.into(), d.admin_only))
                    .collect();
                let mut expected = deciders.clone();
                expected.sort();
                if actual != expected {
                    return fail(format!("deciders are {actual:?}"));
                }
                Ok(())
            }
        }
    }

    fn failure(&self, scenario: &str, index: usize, what: String) -> String {
        format!("{scenario}: step {index} ({:?}): {what}", self.action)
    }
}

/// Site role requests and who may decide them.
fn site_scenarios() -> Vec<Scenario> {
    let mut scenarios = Vec::new();
    let deciders_that_approve = [
        "kit-som", "kit-sso", "kit-sdm", // the site's own security and operations roles
        "de-nom", "de-nso", "de-ndm", // those of its parent NGI
    ];
    for decider in deciders_that_approve {
        let mut s = ScenarioBuilder::egi(&format!("{decider} approves a site role on site-kit"));
        s.check("alice", "scope.edit", "site-kit", false);
        let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
        s.accepted(user(decider), approve(asked));
        s.request_is(asked, RequestStatus::Approved);
        s.check("alice", "scope.edit", "site-kit", true);
        s.check("alice", "scope.edit", "site-desy", false);
        scenarios.push(s.build());
    }
    let refused = [
        ("kit-admin", "a site administrator"),
        ("de-rod", "regional staff (ROD)"),
        ("de-fls", "regional first line support"),
        ("egi-coo", "a project role"),
        ("egi-cod", "project COD staff"),
        ("desy-som", "the manager of a sibling site"),
        ("fr-nom", "the manager of another NGI"),
        ("sg-admin", "a service group administrator"),
        ("bob", "a user without roles"),
    ];
    for (decider, who) in refused {
        let mut s = ScenarioBuilder::egi(&format!("{who} cannot decide a site request"));
        let asked = s.accepted(user("alice"), request("site-security-officer", "site-kit"));
        s.refused(user(decider), approve(asked), "not_a_decider");
        s.refused(user(decider), reject(asked), "not_a_decider");
        s.request_is(asked, RequestStatus::Pending);
        scenarios.push(s.build());
    }
    let mut s = ScenarioBuilder::egi("the people who may decide a site request");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.deciders_are(
        asked,
        &[
            ("de-ndm", false),
            ("de-nom", false),
            ("de-nso", false),
            ("kit-sdm", false),
            ("kit-som", false),
            ("kit-sso", false),
            ("root", true),
        ],
    );
    scenarios.push(s.build());
    scenarios
}

/// NGI, project and service group levels.
fn upper_level_scenarios() -> Vec<Scenario> {
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        // (decider, role, scope, refusal code)
        ("de-nom", "regional-staff-rod", "ngi-de", None),
        ("de-nso", "ngi-operations-deputy-manager", "ngi-de", None),
        ("egi-coo", "ngi-security-officer", "ngi-de", None),
        ("wlcg-csirt", "regional-first-line-support", "ngi-de", None),
        ("wlcg-csirt", "ngi-operations-manager", "ngi-fr", Some("not_a_decider")),
        ("de-rod", "regional-staff-rod", "ngi-de", Some("not_a_decider")),
        ("kit-som", "regional-staff-rod", "ngi-de", Some("not_a_decider")),
        ("fr-nom", "regional-staff-rod", "ngi-de", Some("not_a_decider")),
        ("egi-cod", "egi-csirt-officer", "egi", None),
        ("egi-coo", "cod-administrator", "egi", None),
        ("de-nom", "cod-staff", "egi", Some("not_a_decider")),
        ("wlcg-csirt", "cod-staff", "egi", Some("not_a_decider")),
        ("sg-admin", "service-group-administrator", "sg-atlas", None),
        ("kit-som", "service-group-administrator", "sg-atlas", Some("not_a_decider")),
    ];
    cases
        .iter()
        .map(|(decider, role, scope, refusal)| {
            let outcome = refusal.map_or("approves".to_string(), |code| format!("is refused ({code}) on"));
            let mut s = ScenarioBuilder::egi(&format!("{decider} {outcome} {role} on {scope}"));
            let asked = s.accepted(user("alice"), request(role, scope));
            match refusal {
                None => {
                    s.accepted(user(decider), approve(asked));
                    s.request_is(asked, RequestStatus::Approved);
                }
                Some(code) => {
                    s.refused(user(decider), approve(asked), code);
                    s.request_is(asked, RequestStatus::Pending);
                }
            }
            s.build()
        })
        .collect()
}

/// The request lifecycle rules.
fn lifecycle_scenarios() -> Vec<Scenario> {
    let mut scenarios = Vec::new();

    let mut s = ScenarioBuilder::egi("two identical requests at the same moment: one accepted, one duplicate");
    s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.refused(user("alice"), request("site-administrator", "site-kit"), "duplicate_request");
    s.accepted(user("bob"), request("site-administrator", "site-kit"));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("asking for a role already held is a duplicate");
    s.refused(user("kit-som"), request("site-operations-manager", "site-kit"), "duplicate_request");
    s.accepted(user("kit-som"), request("site-operations-manager", "site-desy"));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("wrong kind, unknown role or scope, role not requestable");
    s.refused(user("alice"), request("site-administrator", "ngi-de"), "wrong_scope_kind");
    s.refused(user("alice"), request("ngi-operations-manager", "site-kit"), "wrong_scope_kind");
    s.refused(user("alice"), request("site-janitor", "site-kit"), "unknown_role");
    s.refused(user("alice"), request("site-administrator", "site-nowhere"), "unknown_scope");
    s.refused(user("alice"), request(ADMIN, GLOBAL), "not_requestable");
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("two concurrent approvals: exactly one wins");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.accepted(user("kit-som"), approve(asked));
    s.refused(user("de-nom"), approve(asked), "not_pending");
    s.refused(user("de-nom"), reject(asked), "not_pending");
    s.refused(user("alice"), Command::Cancel { request: asked.id() }, "not_pending");
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("a rejected request can be asked again");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.accepted(user("kit-sso"), reject(asked));
    s.request_is(asked, RequestStatus::Rejected);
    s.refused(user("kit-som"), approve(asked), "not_pending");
    let again = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.accepted(user("kit-som"), approve(again));
    s.check("alice", "scope.edit", "site-kit", true);
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("only the requester cancels; a cancelled request can be asked again");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.refused(user("kit-som"), Command::Cancel { request: asked.id() }, "forbidden");
    s.accepted(user("alice"), Command::Cancel { request: asked.id() });
    s.request_is(asked, RequestStatus::Cancelled);
    s.refused(user("kit-som"), approve(asked), "not_pending");
    s.accepted(user("alice"), request("site-administrator", "site-kit"));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("approving past the time-to-live answers expired");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    s.wait(chrono::Duration::days(29));
    s.refused(Actor::CommandLine, Command::ExpireRequest { request: asked.id() }, "not_due");
    s.wait(chrono::Duration::days(1));
    s.refused(user("kit-som"), approve(asked), "expired");
    s.request_is(asked, RequestStatus::Pending);
    s.accepted(Actor::CommandLine, Command::ExpireRequest { request: asked.id() });
    s.refused(Actor::CommandLine, Command::ExpireRequest { request: asked.id() }, "not_pending");
    s.request_is(asked, RequestStatus::Expired);
    s.accepted(user("alice"), request("site-administrator", "site-kit"));
    scenarios.push(s.build());

    scenarios
}

/// Nobody decides to their own benefit, and only live grants give authority.
fn authority_scenarios() -> Vec<Scenario> {
    let mut scenarios = Vec::new();

    let mut s = ScenarioBuilder::egi("a manager cannot approve their own request");
    let asked = s.accepted(user("kit-som"), request("site-security-officer", "site-kit"));
    s.refused(user("kit-som"), approve(asked), "self_approval");
    s.refused(user("kit-som"), reject(asked), "self_approval");
    s.deciders_are(
        asked,
        &[
            ("de-ndm", false),
            ("de-nom", false),
            ("de-nso", false),
            ("kit-sdm", false),
            ("kit-sso", false),
            ("root", true),
        ],
    );
    s.accepted(user("kit-sso"), approve(asked));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("an administrator decides anything but their own request");
    let own = s.accepted(user("root"), request("site-administrator", "site-kit"));
    s.refused(user("root"), approve(own), "self_approval");
    let other = s.accepted(user("alice"), request("chief-operations-officer", "wlcg"));
    s.accepted(user("root"), approve(other));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("direct assignment: deciders assign others, nobody assigns themself");
    s.refused(user("kit-som"), assign("kit-som", "site-administrator", "site-kit", None), "self_approval");
    s.refused(user("root"), assign("root", "site-administrator", "site-kit", None), "self_approval");
    s.refused(user("kit-admin"), assign("alice", "site-administrator", "site-kit", None), "not_a_decider");
    s.refused(user("egi-coo"), assign("alice", "site-administrator", "site-kit", None), "not_a_decider");
    s.accepted(user("kit-som"), assign("alice", "site-administrator", "site-kit", None));
    s.refused(user("de-nom"), assign("alice", "site-administrator", "site-kit", None), "duplicate_request");
    s.check("alice", "scope.edit", "site-kit", true);
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("a revoked decider is refused");
    let asked = s.accepted(user("alice"), request("site-administrator", "site-kit"));
    let kit_som = s.world_grant("kit-som");
    s.refused(user("bob"), revoke(kit_som), "not_a_decider");
    s.accepted(user("root"), revoke(kit_som));
    s.refused(user("root"), revoke(kit_som), "not_active");
    s.refused(user("kit-som"), approve(asked), "not_a_decider");
    s.check("kit-som", "scope.edit", "site-kit", false);
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("holders revoke their own grants, deciders those they decide");
    let kit_admin = s.world_grant("kit-admin");
    s.accepted(user("kit-admin"), revoke(kit_admin));
    let kit_sdm = s.world_grant("kit-sdm");
    s.refused(user("desy-som"), revoke(kit_sdm), "not_a_decider");
    s.accepted(user("de-nom"), revoke(kit_sdm));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("a pending request gives nothing");
    s.accepted(user("alice"), request("site-operations-manager", "site-kit"));
    let bob = s.accepted(user("bob"), request("site-administrator", "site-kit"));
    s.refused(user("alice"), approve(bob), "not_a_decider");
    s.check("alice", "scope.edit", "site-kit", false);
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("a grant past its end gives nothing before its expiry event");
    let one_day = "P1D".parse().ok();
    let granted = s.accepted(user("de-nom"), assign("alice", "site-operations-manager", "site-kit", one_day));
    let asked = s.accepted(user("bob"), request("site-administrator", "site-kit"));
    s.check("alice", "scope.edit", "site-kit", true);
    s.wait(chrono::Duration::days(1));
    s.check("alice", "scope.edit", "site-kit", false);
    s.refused(user("alice"), approve(asked), "not_a_decider");
    s.refused(user("alice"), revoke(granted.id()), "not_active");
    s.accepted(Actor::CommandLine, Command::ExpireGrant { grant: granted.id() });
    s.refused(Actor::CommandLine, Command::ExpireGrant { grant: granted.id() }, "not_active");
    s.accepted(user("alice"), request("site-operations-manager", "site-kit"));
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("creating scopes needs scope.create on every parent");
    s.accepted(user("de-nom"), create_scope("site-gridka", "site", &["ngi-de"]));
    s.refused(user("de-nom"), create_scope("site-lyon", "site", &["ngi-fr"]), "forbidden");
    s.refused(user("kit-som"), create_scope("site-lyon", "site", &["ngi-de"]), "forbidden");
    s.refused(user("de-nom"), create_scope("site-bad", "site", &["egi"]), "invalid");
    s.accepted(user("egi-coo"), create_scope("ngi-it", "ngi", &["egi"]));
    // GOCDB: project roles add NGIs to their project, never sites to an NGI of it; the NGI's
    // managers add its sites. scope.create is held on the scope alone.
    s.refused(user("egi-coo"), create_scope("site-lyon", "site", &["ngi-fr"]), "forbidden");
    s.check("egi-coo", "scope.create", "egi", true);
    s.check("egi-coo", "scope.create", "ngi-fr", false);
    s.check("de-nom", "scope.create", "ngi-de", true);
    s.check("de-nom", "scope.create", "site-kit", false);
    s.refused(user("egi-coo"), create_scope("ngi-nl", "ngi", &["egi", "wlcg"]), "forbidden");
    s.refused(user("alice"), create_scope("sg-cms", "service-group", &[]), "forbidden");
    s.accepted(user("root"), create_scope("sg-cms", "service-group", &[]));
    s.check("root", "scope.edit", "sg-cms", true);
    s.refused(user("root"), Command::DeleteScope { id: ScopeId::known("ngi-de") }, "in_use");
    s.refused(user("de-nom"), Command::DeleteScope { id: ScopeId::known("site-gridka") }, "forbidden");
    s.accepted(user("root"), Command::DeleteScope { id: ScopeId::known("site-gridka") });
    scenarios.push(s.build());

    let mut s = ScenarioBuilder::egi("permissions follow GOCDB: edit below, certify and personal data for projects");
    s.check("de-nom", "scope.edit", "site-kit", true);
    s.check("de-nom", "scope.edit", "ngi-fr", false);
    s.check("de-rod", "scope.create", "ngi-de", false);
    s.check("egi-coo", "scope.certify", "site-in2p3", true);
    s.check("egi-coo", "personal_data.read", "site-kit", true);
    s.check("egi-coo", "scope.edit", "site-kit", false);
    s.check("wlcg-csirt", "scope.certify", "site-kit", true);
    s.check("wlcg-csirt", "scope.certify", "site-in2p3", false);
    s.check("kit-som", "scope.edit", "ngi-de", false);
    s.check("root", "anything.at.all", "site-desy", true);
    scenarios.push(s.build());

    scenarios
}

/// The table of GOCDB scenarios on `workflows/egi.toml`.
pub fn egi_scenarios() -> Vec<Scenario> {
    [site_scenarios(), upper_level_scenarios(), lifecycle_scenarios(), authority_scenarios()].concat()
}
