//! The domain decided inside the store: the GOCDB scenario table, and real races.

use std::sync::Arc;

use chrono::Utc;
use roleledger::{
    app::{
        scheduler::{expire_due, Expired},
        App, AppError,
    },
    domain::{
        scenarios::{egi_scenarios, request, run_in_memory, user, Scenario, ScenarioBuilder, StepAction},
        Actor, Command, Context, IdSource, RequestStatus, UserId,
    },
    store::{Metadata, Migrations},
    workflow::Workflow,
};
use sqlx::Connection;

use crate::support::{Backend, TestDatabase};

fn egi() -> Arc<Workflow> {
    Arc::new(Workflow::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/egi.toml")).expect("egi.toml loads"))
}

fn metadata(actor: &Actor) -> Metadata {
    Metadata { actor: Some(actor.user().unwrap_or("command-line").to_string()), ..Metadata::default() }
}

async fn open(db: &TestDatabase, workflow: &Arc<Workflow>) -> App {
    App::open(&db.url, Migrations::Apply, workflow.clone()).await.expect("open the store")
}

/// Runs a scenario's steps through the store; the first step that does not go as expected fails it.
async fn run_through(store: &App, workflow: &Workflow, scenario: &Scenario) -> Result<(), String> {
    for (index, step) in scenario.steps.iter().enumerate() {
        match &step.action {
            StepAction::Run { command, .. } => {
                let outcome = store.execute_in(step.context(index), command.clone(), metadata(&step.actor)).await;
                match outcome {
                    Ok(_) => step.judge(&scenario.name, index, Ok(()))?,
                    Err(AppError::Rejected(error)) => step.judge(&scenario.name, index, Err(&error))?,
                    Err(error) => return Err(format!("{}: step {index}: {error}", scenario.name)),
                }
            }
            _ => store.read_model(|model| step.observe(&scenario.name, index, workflow, model.state()))?,
        }
    }
    Ok(())
}

pub async fn egi_scenarios_run_through_the_store(backend: Backend) {
    let workflow = egi();
    let scenarios = egi_scenarios();
    assert!(scenarios.len() >= 30, "the table holds {} scenarios", scenarios.len());
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let db = TestDatabase::new(backend).await;
        let store = open(&db, &workflow).await;
        if let Err(failure) = run_through(&store, &workflow, scenario).await {
            failures.push(failure);
            continue;
        }
        // The state kept as commands commit equals the pure fold and a rebuild from the log.
        let incremental = store.read_model(|model| model.state().clone());
        assert_eq!(incremental, run_in_memory(&workflow, scenario).unwrap(), "{}: pure fold", scenario.name);
        let rebuilt = App::open(&db.url, Migrations::RequireCurrent, workflow.clone()).await.unwrap();
        assert_eq!(rebuilt.read_model(|model| model.state().clone()), incremental, "{}: rebuild", scenario.name);
        assert!(store.verify().await.unwrap().ok, "{}: chain", scenario.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
}

/// The EGI world (users, scopes, managers) set up through the store.
async fn egi_world(store: &App, workflow: &Workflow) {
    run_through(store, workflow, &ScenarioBuilder::egi("world").build()).await.expect("the world sets up");
}

fn now(actor: Actor) -> Context {
    Context::new(actor, Utc::now(), IdSource::Random)
}

pub async fn identical_concurrent_requests_one_accepted_one_duplicate(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let (first, second) = (open(&db, &workflow).await, open(&db, &workflow).await);
    egi_world(&first, &workflow).await;
    let askers = ["alice", "bob", "carol"];
    let roles = ["site-administrator", "site-security-officer"];
    for (round, (asker, role)) in askers.iter().flat_map(|a| roles.iter().map(move |r| (*a, *r))).enumerate() {
        // Through one process and through two (on SQLite both stores share the file's lock).
        let (a, b) = tokio::join!(
            first.execute_in(now(user(asker)), request(role, "site-kit"), Metadata::default()),
            second.execute_in(now(user(asker)), request(role, "site-kit"), Metadata::default()),
        );
        let outcomes = [a, b];
        let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let duplicates = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(AppError::Rejected(e)) if e.code() == "duplicate_request"))
            .count();
        assert_eq!((accepted, duplicates), (1, 1), "round {round}: {outcomes:?}");
    }
}

pub async fn concurrent_approvals_exactly_one_wins(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let (first, second) = (open(&db, &workflow).await, open(&db, &workflow).await);
    egi_world(&first, &workflow).await;
    for (round, asker) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let events = first
            .execute_in(now(user(asker)), request("site-administrator", "site-kit"), Metadata::default())
            .await
            .unwrap();
        let request_id: uuid::Uuid =
            serde_json::from_value(events[0].data["request"].clone()).expect("the request's id");
        let approve = |store: &App, decider: &str| {
            let command = Command::Approve { request: request_id, comment: format!("round {round}"), duration: None };
            let (store, context) = (store.clone(), now(user(decider)));
            async move { store.execute_in(context, command, Metadata::default()).await }
        };
        // Three managers of the site and one of its NGI decide at once, over two processes.
        let outcomes = [
            tokio::spawn(approve(&first, "kit-som")),
            tokio::spawn(approve(&second, "kit-sso")),
            tokio::spawn(approve(&first, "kit-sdm")),
            tokio::spawn(approve(&second, "de-nom")),
        ];
        let outcomes: Vec<_> = futures_util::future::join_all(outcomes).await.into_iter().map(Result::unwrap).collect();
        let won = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let lost = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(AppError::Rejected(e)) if e.code() == "not_pending"))
            .count();
        assert_eq!((won, lost), (1, 3), "round {round}: {outcomes:?}");
        for store in [&first, &second] {
            // The other process hears of the decision and folds it into its own read model.
            let status = wait_for(store, |model| model.state().request(&request_id).map(|r| r.status)).await;
            assert_eq!(status, Some(RequestStatus::Approved));
        }
    }
    assert!(first.verify().await.unwrap().ok);
}

/// Polls a store's read model until `read` answers something other than what it first answered, or 5 s pass.
async fn wait_for<R: PartialEq + std::fmt::Debug>(
    store: &App,
    read: impl Fn(&roleledger::projections::DomainModel) -> R,
) -> R {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let head = store.store().head().await.unwrap().position;
    loop {
        let (position, answer) = store.read_model(|model| (model.position(), read(model)));
        if position >= head || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn expiry_happens_once_across_two_processes(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let (first, second) = (open(&db, &workflow).await, open(&db, &workflow).await);
    egi_world(&first, &workflow).await;
    for asker in ["alice", "bob"] {
        first
            .execute_in(now(user(asker)), request("site-administrator", "site-kit"), Metadata::default())
            .await
            .unwrap();
    }
    let week = roleledger::workflow::Duration::from_seconds(7 * 86_400);
    let assign = roleledger::domain::scenarios::assign("carol", "site-security-officer", "site-kit", week);
    first.execute_in(now(user("kit-som")), assign, Metadata::default()).await.unwrap();

    // Nothing expires yet; the week-long grant ends within the 14-day notice period, so its
    // holder is told, once.
    let told = Expired { reminders: 1, ..Expired::default() };
    assert_eq!(expire_due(&first, Utc::now()).await.unwrap(), told);
    assert_eq!(expire_due(&first, Utc::now()).await.unwrap(), Expired::default());
    // Past the requests' time-to-live and the grant's end, both processes race.
    let later = Utc::now() + chrono::Duration::days(60);
    let (a, b) = tokio::join!(expire_due(&first, later), expire_due(&second, later));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.requests + b.requests, a.grants + b.grants), (2, 1), "{a:?} {b:?}");
    assert_eq!(expire_due(&second, later).await.unwrap(), Expired::default(), "a second pass finds nothing");

    let mut expiries = std::collections::HashMap::new();
    let mut cursor = first.store().read_all(0);
    while let Some(event) = cursor.next().await.unwrap() {
        *expiries.entry(event.event_type).or_insert(0) += 1;
    }
    assert_eq!((expiries.get("RequestExpired"), expiries.get("GrantExpired")), (Some(&2), Some(&1)));
}

/// Two processes deciding on one database. Each writes its batches without the lock while it
/// is alone and under the lock once it finds the other's commits: one chain, every acknowledged
/// command in it once, and both read models equal to a rebuild.
pub async fn two_deciding_processes_keep_one_chain(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let (first, second) = (open(&db, &workflow).await, open(&db, &workflow).await);
    egi_world(&first, &workflow).await;
    let writers = (0..8).map(|writer| {
        let store = if writer % 2 == 0 { first.clone() } else { second.clone() };
        tokio::spawn(async move {
            for n in 0..40 {
                let asker = format!("w{writer}-u{n}");
                let register = Command::RegisterUser { user: UserId::known(asker.clone()), email: None, name: None };
                store.execute_in(now(user(&asker)), register, Metadata::default()).await.unwrap();
                store
                    .execute_in(now(user(&asker)), request("site-administrator", "site-kit"), Metadata::default())
                    .await
                    .unwrap();
            }
        })
    });
    for writer in futures_util::future::join_all(writers).await {
        writer.unwrap();
    }
    let head = first.store().head().await.unwrap().position;
    for store in [&first, &second] {
        for _ in 0..250 {
            if store.read_model(|model| model.position()) == head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let report = store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!((report.events, report.projections_checked_at), (head, Some(head)));
        let asked = store.read_model(|model| {
            model.state().requests().filter(|r| r.user.starts_with('w') && r.scope == "site-kit").count()
        });
        assert_eq!(asked, 320, "every acknowledged request, once");
    }
}

/// An event that PostgreSQL refuses (a NUL character in JSONB, in a raw append: commands with one
/// are refused before they reach the writer) fails alone, whichever way its batch was being
/// written; the commands beside it commit.
pub async fn one_refused_append_does_not_abort_a_batch_of_commands(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let store = open(&db, &workflow).await;
    egi_world(&store, &workflow).await;
    let ask = |asker: &str| {
        store.execute_in(now(user(asker)), request("site-administrator", "site-kit"), Metadata::default())
    };
    let odd = roleledger::store::NewEvent::new("Odd", serde_json::json!({"text": "nul\u{0}"}));
    let bad = roleledger::store::AppendRequest::new("odd", roleledger::store::ExpectedVersion::Any, vec![odd]);
    for round in 0..3 {
        let (before, refused, after) = tokio::join!(ask("alice"), store.store().append(bad.clone()), ask("carol"));
        assert!(before.is_ok() && after.is_ok(), "round {round}: {before:?} {after:?}");
        assert!(matches!(refused, Err(roleledger::store::StoreError::Database(_))), "round {round}: {refused:?}");
        for asker in ["alice", "carol"] {
            let pending = store.read_model(|model| {
                model.state().requests().find(|r| r.user == asker && r.status == RequestStatus::Pending).map(|r| r.id)
            });
            store
                .execute_in(now(user(asker)), Command::Cancel { request: pending.unwrap() }, Metadata::default())
                .await
                .unwrap();
        }
    }
    assert!(store.store().read_stream("odd", 1).await.unwrap().is_empty());
    assert!(store.verify().await.unwrap().ok);
}

/// The writer keeps its connection between batches, and writes without the lock while it is
/// alone; when the server ends its sessions, the next command is written on a fresh connection.
pub async fn an_ended_writer_connection_is_replaced_for_commands(backend: Backend) {
    let workflow = egi();
    let db = TestDatabase::new(backend).await;
    let store = open(&db, &workflow).await;
    egi_world(&store, &workflow).await;
    let roleledger::store::DatabaseUrl::Postgres(url) = &db.url else { panic!("a PostgreSQL test") };
    let mut admin = sqlx::PgConnection::connect(&crate::support::postgres_admin_url()).await.unwrap();
    let ended: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(url.rsplit('/').next().unwrap())
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|&ok| ok), "the store's connections were ended: {ended:?}");
    store.execute_in(now(user("alice")), request("site-administrator", "site-kit"), Metadata::default()).await.unwrap();
    assert!(store.verify().await.unwrap().ok);
}
