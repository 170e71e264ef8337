//! ClusterCockpit (`workflows/clustercockpit.toml`): every user holds `user`; managers see the jobs
//! of their projects, support staff all jobs but nothing administrative; `admin` and `api` are never
//! requested nor carried by a login token; `api` holders make API tokens for themselves.

use reqwest::Method;
use roleledger::auth::LoginClaims;
use serde_json::json;

use crate::{
    helpers::{held_in, login_token, spawn_app_on, TestApp},
    support::Backend,
};

async fn cluster(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend, "clustercockpit").await;
    app.bootstrap_admin("root").await;
    for project in ["P1", "P2"] {
        assert_eq!(app.create_scope("root", project, "project", &[]).await.status, 201);
    }
    app
}

async fn every_user_holds_user_and_each_role_sees_its_jobs(backend: Backend) {
    let app = cluster(backend).await;
    app.sign_in("alice").await;
    assert_eq!(app.held("alice").await, ["user@global"]);
    let me = app.get_as("alice", "/api/v1/me").await;
    assert_eq!(me.body["grants"][0]["origin"], "default", "{:?}", me.body);
    assert!(app.allowed("alice", "jobs.own.view", "P1").await);
    assert!(!app.allowed("alice", "jobs.project.view", "P1").await);

    // A manager sees the jobs of the projects assigned, and only those.
    app.assign("root", "mia", "manager", "P1").await;
    assert!(app.allowed("mia", "jobs.project.view", "P1").await);
    assert!(app.allowed("mia", "metrics.project.view", "P1").await);
    assert!(!app.allowed("mia", "jobs.project.view", "P2").await);
    assert!(app.allowed("mia", "jobs.own.view", "P2").await, "their own jobs, regardless of project");
    // Managers are named on projects only.
    let on_global = json!({"user": "mia", "role": "manager", "scope": "global", "reason": "r"});
    app.post_as("root", "/api/v1/grants", on_global).await.assert_problem(422, "wrong_scope_kind");

    // Support sees every job everywhere (jobs.all.view implies the project and own views) ...
    app.assign("root", "sam", "support", "global").await;
    for permission in ["jobs.all.view", "jobs.project.view", "jobs.own.view"] {
        assert!(app.allowed("sam", permission, "P2").await, "{permission}");
    }
    // ... and nothing administrative: no settings, no scopes, no grants, no tokens.
    assert!(!app.allowed("sam", "settings.edit", "global").await);
    app.create_scope("sam", "P3", "project", &[]).await.assert_problem(403, "forbidden");
    let grant = json!({"user": "alice", "role": "manager", "scope": "P2", "reason": "r"});
    app.post_as("sam", "/api/v1/grants", grant).await.assert_problem(403, "not_a_decider");
    app.post_as("sam", "/api/v1/tokens", json!({"name": "mine"})).await.assert_problem(403, "forbidden");
}

async fn admin_and_api_are_never_requested_nor_carried_by_a_token(backend: Backend) {
    let app = cluster(backend).await;
    app.sign_in("alice").await;
    let head = app.head().await;
    for role in ["admin", "api", "user"] {
        let body = json!({"role": role, "scope": "global", "reason": "please"});
        app.post_as("alice", "/api/v1/requests", body).await.assert_problem(422, "not_requestable");
    }
    assert_eq!(app.head().await, head, "refused requests write nothing");
    // A manager role may be asked for; only administrators decide it (no rule names a decider).
    let asked =
        app.post_as("alice", "/api/v1/requests", json!({"role": "manager", "scope": "P1", "reason": "r"})).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let id = asked.body["id"].as_str().unwrap();
    let shown = app.get_as("root", &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown.body["deciders"], json!([{"user": "root", "admin_only": true}]));

    // A login token's claim: user, manager and support count; admin and api are ignored.
    let claims = LoginClaims {
        sub: "tom".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        email: Some("tom@example.org".into()),
        name: None,
        roles: Some(["admin", "api", "user", "manager@P2", "support"].map(String::from).to_vec()),
    };
    let token = login_token(claims);
    let me = app.call(Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["admin"], false);
    assert_eq!(held_in(&me.body), ["manager@P2", "support@global", "user@global"]);
    let created = app.call(Method::POST, "/api/v1/tokens", Some(&token), Some(json!({"name": "t"}))).await;
    created.assert_problem(403, "forbidden");
    assert!(!app.allowed("tom", "api.use", "global").await);
}

async fn api_holders_create_api_tokens_for_themselves_only(backend: Backend) {
    let app = cluster(backend).await;
    app.sign_in("alice").await;
    app.assign("root", "bot", "api", "global").await;
    let created = app.post_as("bot", "/api/v1/tokens", json!({"name": "scripted"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().unwrap().to_string();
    // The token speaks for programs: it may ask about anyone.
    let answer =
        app.call(Method::GET, "/api/v1/check?user=alice&permission=jobs.own.view&scope=P1", Some(&secret), None).await;
    assert_eq!((answer.status, answer.body["allowed"].as_bool()), (200, Some(true)), "{:?}", answer.body);
    // Not for somebody else, and not for those without the role.
    app.post_as("bot", "/api/v1/tokens", json!({"user": "alice", "name": "x"})).await.assert_problem(403, "forbidden");
    app.post_as("alice", "/api/v1/tokens", json!({"name": "x"})).await.assert_problem(403, "forbidden");
}

on_both_backends!(
    every_user_holds_user_and_each_role_sees_its_jobs,
    admin_and_api_are_never_requested_nor_carried_by_a_token,
    api_holders_create_api_tokens_for_themselves_only,
);
