//! `grants_as_of` against a replay: at any moment of a random history — with extensions moving
//! ends, grants starting later, shortened approvals, revocations (by deciders, and by access reviews
//! answered or silent) and expiries — the grants the validity history lists are exactly those a
//! fold of the log up to that moment gives then, with the end that stood then; and the spans a
//! timeline draws cover exactly those grants at each time.

use std::{collections::BTreeSet, sync::Arc};

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use proptest::prelude::*;

use super::DomainModel;
use crate::{
    domain::{
        decide, Actor, Asked, Command, Context, Event, GrantId, GrantStatus, IdSource, OnNoAnswer, ReviewDecision,
        ReviewDue, ScopeId, State, Subject, UserId,
    },
    store::{Metadata, Moment, RecordedEvent},
    workflow::{Duration, Workflow, ADMIN, GLOBAL},
};

const USERS: &[&str] = &["ana", "ben", "cat"];
const ROLES: &[&str] = &["site-administrator", "site-security-officer"];

#[derive(Debug, Clone)]
enum Op {
    Request {
        user: usize,
        role: usize,
        days: Option<i64>,
        starts_in_hours: Option<i64>,
    },
    Approve {
        pick: usize,
        shorter_days: Option<i64>,
    },
    Extend {
        pick: usize,
        days: i64,
    },
    Revoke {
        pick: usize,
    },
    Expire,
    Wait {
        hours: i64,
    },
    /// An access review of SITE_A, due in `due_hours`, silence revoking or keeping.
    Review {
        due_hours: i64,
        revoke: bool,
    },
    Answer {
        pick: usize,
        revoke: bool,
    },
    /// The scheduler closing the reviews due.
    CloseDue,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS.len(), 0..ROLES.len(), proptest::option::of(1..20i64), proptest::option::of(1..72i64))
            .prop_map(|(user, role, days, starts_in_hours)| Op::Request { user, role, days, starts_in_hours }),
        3 => (any::<usize>(), proptest::option::of(1..20i64)).prop_map(|(pick, shorter_days)| Op::Approve { pick, shorter_days }),
        2 => (any::<usize>(), 1..15i64).prop_map(|(pick, days)| Op::Extend { pick, days }),
        1 => any::<usize>().prop_map(|pick| Op::Revoke { pick }),
        1 => Just(Op::Expire),
        2 => (1..96i64).prop_map(|hours| Op::Wait { hours }),
        2 => (1..120i64, any::<bool>()).prop_map(|(due_hours, revoke)| Op::Review { due_hours, revoke }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, revoke)| Op::Answer { pick, revoke }),
        1 => Just(Op::CloseDue),
    ]
}

fn days(n: i64) -> Duration {
    Duration::from_seconds(n * 86_400).expect("positive")
}

/// The log of a history: events with their positions and recorded times, and the model folded from it.
struct History {
    workflow: Arc<Workflow>,
    events: Vec<(Event, RecordedEvent)>,
    model: DomainModel,
    now: DateTime<Utc>,
}

impl History {
    fn new() -> History {
        let workflow = Arc::new(Workflow::from_str(crate::workflow::built_in("egi").unwrap(), "egi.toml").unwrap());
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        History { model: DomainModel::new(workflow.clone()), workflow, events: Vec::new(), now }
    }

    fn state(&self) -> &State {
        self.model.state()
    }

    /// Decides and, when accepted, appends and folds the events (recorded now).
    fn run(&mut self, actor: &str, command: Command) -> bool {
        let actor = if actor == "cli" { Actor::CommandLine } else { Actor::User(UserId::known(actor)) };
        let ctx = Context::new(actor, self.now, IdSource::sequence(self.events.len() as u64 + 1));
        let Ok(events) = decide(self.state(), &self.workflow, &ctx, command) else {
            return false;
        };
        for event in events {
            let recorded = RecordedEvent {
                position: self.events.len() as i64 + 1,
                stream: event.stream_id(),
                version: 1,
                event_type: event.event_type().to_string(),
                schema_version: 1,
                data: event.data(),
                metadata: Metadata { actor: None, correlation_id: None, causation_id: None, client_address: None },
                recorded_at: self.now,
                event_id: uuid::Uuid::from_u64_pair(9, self.events.len() as u64),
                hash: String::new(),
            };
            self.model.apply(&recorded);
            self.events.push((event, recorded));
        }
        true
    }

    fn setup() -> History {
        let mut history = History::new();
        for user in ["root", "mgr"].iter().chain(USERS) {
            let registered = Command::RegisterUser { user: UserId::known(*user), email: None, name: None };
            assert!(history.run("cli", registered));
        }
        let assign = |user: &str, role: &str, scope: &str| Command::AssignRole {
            subject: Subject::User(UserId::known(user)),
            role: role.into(),
            scope: ScopeId::known(scope),
            reason: "setup".into(),
            duration: None,
            starts_at: None,
        };
        assert!(history.run("cli", assign("root", ADMIN, GLOBAL)));
        for (id, kind, parents) in
            [("EGI", "project", vec![]), ("NGI_A", "ngi", vec!["EGI"]), ("SITE_A", "site", vec!["NGI_A"])]
        {
            let parents = parents.into_iter().map(ScopeId::known).collect();
            let scope = Command::CreateScope {
                id: ScopeId::known(id),
                kind: kind.into(),
                parents,
                title: id.into(),
                mailbox: None,
            };
            assert!(history.run("root", scope));
        }
        assert!(history.run("root", assign("mgr", "site-operations-manager", "SITE_A")));
        history
    }

    fn step(&mut self, op: &Op) {
        let pending: Vec<_> = self.state().requests().filter(|r| r.is_pending()).map(|r| r.id).collect();
        let grants: Vec<(GrantId, String)> = self
            .state()
            .grants()
            .filter(|g| ROLES.contains(&g.role.as_str()))
            .filter_map(|g| match &g.subject {
                Subject::User(user) => Some((g.id, user.to_string())),
                Subject::Team(_) => None,
            })
            .collect();
        match op {
            Op::Request { user, role, days: wanted, starts_in_hours } => {
                let command = Command::RequestRole {
                    role: ROLES[*role].into(),
                    scope: ScopeId::known("SITE_A"),
                    reason: "r".into(),
                    duration: wanted.map(days),
                    asked: Asked {
                        starts_at: starts_in_hours.map(|hours| self.now + Span::hours(hours)),
                        ..Asked::default()
                    },
                };
                self.run(USERS[*user], command);
            }
            Op::Approve { pick, shorter_days } if !pending.is_empty() => {
                let request = pending[pick % pending.len()];
                let command = Command::Approve { request, comment: "ok".into(), duration: shorter_days.map(days) };
                self.run("mgr", command);
            }
            Op::Extend { pick, days: more } if !grants.is_empty() => {
                let (grant, holder) = grants[pick % grants.len()].clone();
                self.run(&holder, Command::ExtendGrant { grant, duration: days(*more), reason: "more".into() });
            }
            Op::Revoke { pick } if !grants.is_empty() => {
                let (grant, _) = &grants[pick % grants.len()];
                self.run("mgr", Command::Revoke { grant: *grant, reason: "done".into() });
            }
            Op::Expire => {
                let due: Vec<GrantId> = self
                    .state()
                    .grants()
                    .filter(|g| g.status == GrantStatus::Active && g.ends_at.is_some_and(|end| end <= self.now))
                    .map(|g| g.id)
                    .collect();
                for grant in due {
                    self.run("cli", Command::ExpireGrant { grant });
                }
            }
            Op::Wait { hours } => self.now += Span::hours(*hours),
            Op::Review { due_hours, revoke } => {
                let on_no_answer = if *revoke { OnNoAnswer::Revoke } else { OnNoAnswer::Keep };
                let due = ReviewDue::After(Duration::from_seconds(due_hours * 3_600).expect("positive"));
                let scope = ScopeId::known("SITE_A");
                self.run("root", Command::StartReview { scope, roles: None, due, on_no_answer, title: None });
            }
            Op::Answer { pick, revoke } => {
                let open = self.state().reviews().filter(|r| r.is_open());
                let undecided: Vec<_> = open
                    .flat_map(|r| r.items.values().filter(|i| i.decision.is_none()).map(move |i| (r.id, i.grant)))
                    .collect();
                if let Some((review, item)) = undecided.get(pick % undecided.len().max(1)).copied() {
                    let decision = if *revoke { ReviewDecision::Revoke } else { ReviewDecision::Keep };
                    self.run("mgr", Command::DecideReviewItem { review, item, decision, reason: "checked".into() });
                }
            }
            Op::CloseDue => {
                let due: Vec<_> =
                    self.state().reviews().filter(|r| r.is_open() && r.due_at <= self.now).map(|r| r.id).collect();
                for review in due {
                    self.run("cli", Command::CloseDueReview { review });
                }
            }
            _ => {}
        }
    }

    /// The grants as a replay of the log up to the moment gives them at `judged_at`.
    fn replayed(&self, reached: impl Fn(&RecordedEvent) -> bool, judged_at: DateTime<Utc>) -> BTreeSet<String> {
        let events: Vec<&Event> =
            self.events.iter().filter(|(_, recorded)| reached(recorded)).map(|(e, _)| e).collect();
        let state = State::replay(&self.workflow, events);
        state
            .grants()
            .filter(|g| g.gives_at(judged_at))
            .map(|g| format!("{} {} {:?}", g.id, g.starts_at, g.ends_at))
            .collect()
    }

    /// The grants whose held spans (as a timeline draws them) cover `time`.
    fn held_at(&self, time: DateTime<Utc>) -> BTreeSet<GrantId> {
        let (from, until) = (time - Span::days(400), time + Span::days(400));
        let held = self.model.grants_held_during(from, until, usize::MAX, |_| true);
        held.iter().filter(|(_, spans)| spans.iter().any(|span| span.contains(time))).map(|(g, _)| g.id).collect()
    }

    fn ids_as_of(&self, time: DateTime<Utc>) -> BTreeSet<GrantId> {
        let grants = self.model.grants_as_of(Moment::Time(time), time, None, None, usize::MAX, |_| true);
        grants.iter().map(|g| g.id).collect()
    }

    fn as_of(&self, moment: Moment, judged_at: DateTime<Utc>) -> BTreeSet<String> {
        let grants = self.model.grants_as_of(moment, judged_at, None, None, usize::MAX, |_| true);
        grants.iter().map(|g| format!("{} {} {:?}", g.id, g.starts_at, g.ends_at)).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn grants_as_of_equals_a_replay_up_to_the_moment(
        ops in proptest::collection::vec(op(), 1..60),
        positions in proptest::collection::vec(any::<prop::sample::Index>(), 8),
        hours in proptest::collection::vec(0..2_000i64, 8),
    ) {
        let mut history = History::setup();
        for op in &ops {
            history.step(op);
        }
        let start = history.events[0].1.recorded_at;
        for index in positions {
            let (_, at) = &history.events[index.index(history.events.len())];
            let reached = |recorded: &RecordedEvent| recorded.position <= at.position;
            prop_assert_eq!(history.as_of(Moment::Position(at.position), at.recorded_at), history.replayed(reached, at.recorded_at));
        }
        for hours in hours {
            let time = start + Span::hours(hours);
            let reached = |recorded: &RecordedEvent| recorded.recorded_at <= time;
            prop_assert_eq!(history.as_of(Moment::Time(time), time), history.replayed(reached, time));
            prop_assert_eq!(history.held_at(time), history.ids_as_of(time));
        }
    }
}

/// One history by hand, at chosen moments: a grant that starts later gives nothing before its
/// start, and an extended grant gives past its old end with the end that stood at each moment.
#[test]
fn check_at_chosen_times_sees_later_starts_and_moved_ends() {
    let mut history = History::setup();
    let start = history.now;
    let ask = |user: &str, role: &str, duration: i64, starts_at: Option<DateTime<Utc>>| Command::RequestRole {
        role: role.into(),
        scope: ScopeId::known("SITE_A"),
        reason: "r".into(),
        duration: Some(days(duration)),
        asked: Asked { starts_at, user: Some(UserId::known(user)), ..Asked::default() },
    };
    // ana: site-administrator for 10 days from now; ben: from day 3 for 5 days.
    assert!(history.run("ana", ask("ana", "site-administrator", 10, None)));
    assert!(history.run("ben", ask("ben", "site-administrator", 5, Some(start + Span::days(3)))));
    let requests: Vec<_> = history.state().requests().map(|r| (r.user.to_string(), r.id)).collect();
    for (_, request) in &requests {
        assert!(history.run("mgr", Command::Approve { request: *request, comment: "ok".into(), duration: None }));
    }
    let grant_of = |history: &History, user: &str| {
        history.state().grants().find(|g| g.subject == Subject::User(UserId::known(user))).map(|g| g.id).unwrap()
    };
    let allowed = |history: &History, user: &str, at: DateTime<Utc>| {
        history.state().check(user, "scope.edit", "SITE_A", at).allowed
    };
    assert!(!allowed(&history, "ben", start + Span::days(3) - Span::seconds(1)), "before the start");
    assert!(allowed(&history, "ben", start + Span::days(3)), "from the start");
    assert!(!allowed(&history, "ben", start + Span::days(8)), "the end counts from the start");
    // ana extends by 7 days on day 2.
    history.now = start + Span::days(2);
    let ana = grant_of(&history, "ana");
    let position_before = history.events.len() as i64;
    assert!(history.run("ana", Command::ExtendGrant { grant: ana, duration: days(7), reason: "more".into() }));
    let extension = history.state().open_extension(&ana).map(|r| r.id).unwrap();
    assert!(history.run("mgr", Command::Approve { request: extension, comment: "ok".into(), duration: None }));
    assert!(allowed(&history, "ana", start + Span::days(12)), "past the old end");
    assert!(!allowed(&history, "ana", start + Span::days(17)), "past the new end");
    // As the log stood before the extension, the old end; after it, the new one.
    let ends =
        |moment| history.model.grants_as_of(moment, start + Span::days(2), None, None, 10, |g| g.id == ana)[0].ends_at;
    assert_eq!(ends(Moment::Position(position_before)), Some(start + Span::days(10)));
    assert_eq!(ends(Moment::Position(history.events.len() as i64)), Some(start + Span::days(17)));
    // The scheduler's commands: nothing to expire at the old end, the grant at the new one.
    history.now = start + Span::days(11);
    assert!(!history.run("cli", Command::ExpireGrant { grant: ana }));
    history.now = start + Span::days(17);
    assert!(history.run("cli", Command::ExpireGrant { grant: ana }));
}

// ----- snapshots -----

use super::snapshot::{workflow_digest, Rejection, Sealer, FORMAT_VERSION};

const SNAPSHOT_KEY: &[u8] = b"a-snapshot-key-for-the-unit-tests";
const CHAIN_HASH: &str = "ab12";

fn sealer(history: &History) -> Sealer {
    Sealer::new(SNAPSHOT_KEY.to_vec(), history.workflow.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever the history (requests, grants, extensions, reviews and their shared reviewer
    /// pools), a snapshot opens to a model equal to the one it was made of.
    #[test]
    fn a_snapshot_opens_to_the_model_it_was_made_of(ops in proptest::collection::vec(op(), 1..60)) {
        let mut history = History::setup();
        for op in &ops {
            history.step(op);
        }
        let sealer = sealer(&history);
        let snapshot = sealer.seal(&history.model, CHAIN_HASH.into());
        let opened = sealer.open(&snapshot, Some(CHAIN_HASH)).expect("a valid snapshot");
        prop_assert_eq!(opened.position(), history.model.position());
        prop_assert_eq!(opened.difference(&history.model), None);
        prop_assert!(opened.state() == history.model.state());
    }
}

/// Each way a snapshot can be wrong is refused, with its reason.
#[test]
fn snapshots_that_are_not_valid_are_refused_with_the_reason() {
    let history = History::setup();
    let sealer = sealer(&history);
    let good = sealer.seal(&history.model, CHAIN_HASH.into());
    assert!(sealer.open(&good, Some(CHAIN_HASH)).is_ok());

    let other_key = Sealer::new(b"another-key-of-some-length".to_vec(), history.workflow.clone());
    assert_eq!(other_key.open(&good, Some(CHAIN_HASH)).err(), Some(Rejection::Mac));
    let mut tampered = good.clone();
    *tampered.body.last_mut().unwrap() ^= 1;
    assert_eq!(sealer.open(&tampered, Some(CHAIN_HASH)).err(), Some(Rejection::Mac));
    let mut moved = good.clone();
    moved.position += 1;
    assert_eq!(sealer.open(&moved, Some(CHAIN_HASH)).err(), Some(Rejection::Mac), "the MAC covers the position");

    let log = "cd34";
    let expected = Rejection::ChainHash { recorded: CHAIN_HASH.into(), log: log.into() };
    assert_eq!(sealer.open(&good, Some(log)).err(), Some(expected));
    assert_eq!(sealer.open(&good, None).err(), Some(Rejection::BeyondLog));

    // Sealed with the right key, but of another workflow or format, or unreadable.
    let (position, body, digest) = (good.position, good.body.clone(), workflow_digest(&history.workflow));
    let other = sealer.seal_body(position, CHAIN_HASH.into(), "0".repeat(64), FORMAT_VERSION, body.clone());
    assert_eq!(sealer.open(&other, Some(CHAIN_HASH)).err(), Some(Rejection::Workflow { found: "0".repeat(64) }));
    let older = sealer.seal_body(position, CHAIN_HASH.into(), digest.clone(), FORMAT_VERSION - 1, body);
    assert_eq!(sealer.open(&older, Some(CHAIN_HASH)).err(), Some(Rejection::Format { found: FORMAT_VERSION - 1 }));
    let garbage = sealer.seal_body(position, CHAIN_HASH.into(), digest, FORMAT_VERSION, b"not a model".to_vec());
    assert!(matches!(sealer.open(&garbage, Some(CHAIN_HASH)), Err(Rejection::Body(_))));
}

/// A workflow's digest follows its rules, not the file it came from.
#[test]
fn the_workflow_digest_changes_with_the_rules_only() {
    let egi = crate::workflow::built_in("egi").unwrap();
    let digest = |text: &str, file: &str| workflow_digest(&Workflow::from_str(text, file).unwrap());
    assert_eq!(digest(egi, "egi.toml"), digest(egi, "elsewhere/egi.toml"));
    let other = crate::workflow::built_in("ucp").unwrap();
    assert_ne!(digest(egi, "egi.toml"), digest(other, "ucp.toml"));
}
