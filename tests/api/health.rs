use std::time::{Duration, Instant};

use futures_util::future::join_all;
use roleledger::testing::{PANIC_IN_DECIDE, PANIC_IN_FOLD, STOP_FOLLOWER, STOP_WRITER};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, Answer, TestApp},
    support::Backend,
};

async fn liveness_and_readiness_answer(backend: Backend, name: &str) {
    let app = spawn_app(backend).await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["database"], name);
}

#[tokio::test]
async fn sqlite_liveness_and_readiness_answer() {
    liveness_and_readiness_answer(Backend::Sqlite, "sqlite").await
}

#[tokio::test]
async fn postgres_liveness_and_readiness_answer() {
    liveness_and_readiness_answer(Backend::Postgres, "postgres").await
}

#[tokio::test]
async fn readiness_fails_with_retry_after_when_the_database_is_gone() {
    let app = spawn_app(Backend::Postgres).await;
    drop_database(&app).await;

    let started = std::time::Instant::now();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "readiness must not hang");
    assert_eq!(ready.headers()["retry-after"], "5");
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    let problem: Value = ready.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable");
    assert_eq!(problem["status"], 503);
    // Liveness is about the process, not the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn writes_answer_503_with_retry_after_when_the_database_is_gone() {
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    app.bootstrap_admin("root").await;
    app.sign_in("root").await;
    drop_database(&app).await;

    let started = std::time::Instant::now();
    let body = serde_json::json!({"id": "EGI", "kind": "project", "title": "EGI"});
    let answer = app.post_as("root", "/api/v1/scopes", body).await;
    answer.assert_problem(503, "database_unavailable");
    assert_eq!(answer.headers["retry-after"], "5");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "no hang");
    // Reads are answered from memory meanwhile, also for a user whose sign-in cannot be recorded.
    assert_eq!(app.get_as("root", "/api/v1/me").await.status, 200);
    assert_eq!(app.get_as("newcomer", "/api/v1/me").await.status, 200);
}

/// A database host cut off from the network answers nothing and refuses nothing: the server's
/// sockets would wait minutes for TCP to give up. A write answers 503 within the store's deadline
/// (8 s) instead, readiness fails, reads from memory go on; once the host answers again, writes
/// go on without a restart, and the log holds the cut-off write once or not at all.
#[tokio::test]
async fn a_database_that_goes_silent_answers_503_in_bounded_time_and_writes_resume() {
    let admin = crate::support::postgres_admin_url();
    let host = admin.split_once('@').and_then(|(_, rest)| rest.split_once('/')).expect("user@host:port/db").0;
    let upstream = tokio::net::lookup_host(host).await.unwrap().next().expect("the PostgreSQL address");
    let proxy = crate::support::proxy::SilentProxy::start(upstream).await;
    let app = crate::helpers::spawn_app_with(Backend::Postgres, |settings| {
        let url = settings.database.to_string().replacen(host, &format!("127.0.0.1:{}", proxy.port), 1);
        settings.database = url.parse().unwrap();
    })
    .await;
    app.bootstrap_admin("root").await;
    app.sign_in("root").await;
    let scope = |id: &str| json!({"id": id, "kind": "project", "title": id});
    assert_eq!(app.post_as("root", "/api/v1/scopes", scope("BEFORE")).await.status, 201);
    let head = app.head().await;

    proxy.go_silent();
    let started = Instant::now();
    let answers = async { tokio::join!(app.post_as("root", "/api/v1/scopes", scope("CUT")), app.get("/readyz")) };
    let (write, ready) = tokio::time::timeout(Duration::from_secs(15), answers).await.expect("answers, no hang");
    assert!(started.elapsed() < Duration::from_secs(12), "answered after {:?}", started.elapsed());
    assert_eq!(write.status, 503, "{:?}", write.body);
    assert!(["database_unavailable", "commit_outcome_unknown"].contains(&write.code()), "{:?}", write.body);
    assert_eq!(write.headers["retry-after"], "5");
    assert_eq!(ready.status(), 503);
    let read = Instant::now();
    assert_eq!(app.get_as("root", "/api/v1/me").await.status, 200);
    assert!(read.elapsed() < Duration::from_secs(1), "a read from memory waits for nobody");

    proxy.answer_again();
    crate::support::eventually("a write is answered 201 again", 30, || async {
        app.post_as("root", "/api/v1/scopes", scope("AFTER")).await.status == 201
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let written = app.head().await - head;
    assert!(written == 1 || written == 2, "AFTER, and CUT at most once: {written} events");
    let verify = app.cli(&["verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

/// Takes the server's PostgreSQL database away underneath it.
async fn drop_database(app: &crate::helpers::TestApp) {
    let roleledger::store::DatabaseUrl::Postgres(url) = &app.db.url else { unreachable!() };
    let name = url.rsplit('/').next().unwrap();
    let admin = crate::support::postgres_admin_url();
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::Executor::execute(&mut connection, format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
}

/// `user` asks for site-administrator on SITE_A, giving `reason`.
async fn ask(app: &TestApp, user: &str, reason: &str) -> Answer {
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": reason});
    app.post_as(user, "/api/v1/requests", body).await
}

async fn app_with_a_site(backend: Backend, users: &[&str]) -> TestApp {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    for user in users {
        app.sign_in(user).await;
    }
    app
}

/// A panic while one command is decided, or while its events are folded into the writer's model,
/// fails that command alone (500): alone or in a batch with others, nothing of it is written or
/// left in the model, and the writer goes on.
async fn a_panic_while_deciding_fails_that_command_alone(backend: Backend) {
    let app = app_with_a_site(backend, &["alice", "bob", "carol", "dave", "erin"]).await;
    for (marker, others) in [(PANIC_IN_DECIDE, ["bob", "carol"]), (PANIC_IN_FOLD, ["dave", "erin"])] {
        let head = app.head().await;
        ask(&app, "alice", marker).await.assert_problem(500, "internal");
        assert_eq!(app.head().await, head, "{marker}: nothing written");
        // Beside ordinary commands, which may share its batch.
        let mut calls = vec![ask(&app, "alice", marker)];
        calls.extend(others.iter().map(|user| ask(&app, user, "ordinary")));
        let answers = join_all(calls).await;
        answers[0].assert_problem(500, "internal");
        for answer in &answers[1..] {
            assert_eq!(answer.status, 201, "{marker}: {:?}", answer.body);
        }
        assert_eq!(app.head().await, head + 2, "{marker}: the others' requests only");
    }
    // The folded half of alice's failed requests is gone: the same request is new.
    assert_eq!(ask(&app, "alice", "ordinary").await.status, 201);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let verified = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(verified.body["ok"], true, "{:?}", verified.body);
}

/// Polls `/readyz` until it fails (within 10 s); its problem.
async fn readiness_failure(app: &TestApp) -> Value {
    let started = Instant::now();
    loop {
        let ready = app.client.get(format!("{}/readyz", app.address)).send().await.expect("the server still answers");
        if ready.status() == 503 {
            return ready.json().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "readiness still passes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A writer that stopped fails readiness, naming it (and the process goes on to stop).
async fn readiness_fails_naming_a_stopped_writer(backend: Backend) {
    let app = app_with_a_site(backend, &["alice"]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(ask(&app, "alice", STOP_WRITER).await.status, 503);
    let problem = readiness_failure(&app).await;
    assert_eq!(problem["code"], "task_stopped", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("the writer task stopped"), "{problem}");
}

/// A read-model follower that stopped fails readiness of its process, naming it: here the second
/// process's, which stops on reading an event the first one wrote.
async fn readiness_fails_naming_a_stopped_follower(backend: Backend) {
    let app = app_with_a_site(backend, &["alice"]).await;
    let other = app.second_process().await;
    assert_eq!(other.get("/readyz").await.status(), 200);
    assert_eq!(ask(&app, "alice", STOP_FOLLOWER).await.status, 201);
    let problem = readiness_failure(&other).await;
    assert_eq!(problem["code"], "task_stopped", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("the follower task stopped"), "{problem}");
    // The writing process does not read its own events back.
    assert_eq!(app.get("/readyz").await.status(), 200);
}

on_both_backends!(
    a_panic_while_deciding_fails_that_command_alone,
    readiness_fails_naming_a_stopped_writer,
    readiness_fails_naming_a_stopped_follower,
);
