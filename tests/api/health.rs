use serde_json::Value;

use crate::{helpers::spawn_app, support::Backend};

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

/// Takes the server's PostgreSQL database away underneath it.
async fn drop_database(app: &crate::helpers::TestApp) {
    let roleledger::store::DatabaseUrl::Postgres(url) = &app.db.url else { unreachable!() };
    let name = url.rsplit('/').next().unwrap();
    let admin = crate::support::postgres_admin_url();
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::Executor::execute(&mut connection, format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
}
