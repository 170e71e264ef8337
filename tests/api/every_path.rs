//! Found from outside (issue 15): a duration that overflowed the writer, API tokens that let
//! their creator decide their own matters or outlived what let them be made, roles that need
//! several approvals assigned by one person, incompatible roles meeting through a team, and
//! decisions that told a request's state to someone who may not see it. Each refusal writes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, spawn_app_on, Answer, TestApp},
    support::Backend,
};

const ABSURD: &str = "P100000000D";

async fn with_token(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
    app.call(method, path, Some(token), body).await
}

/// `creator` makes an API token for `user`; its secret.
async fn api_token(app: &TestApp, creator: &str, user: &str) -> String {
    let made = app.post_as(creator, "/api/v1/tokens", json!({"user": user, "name": "ci"})).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    made.body["token"].as_str().unwrap().to_string()
}

/// Admin root, the EGI tree, and `mgr` deciding SITE_A.
async fn egi(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "mgr", "site-operations-manager", "SITE_A").await;
    app
}

async fn absurd_durations_are_refused_and_every_write_goes_on(backend: Backend) {
    let app = egi(backend).await;
    app.sign_in("alice").await;
    let head = app.head().await;
    let request = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "x", "duration": ABSURD});
    app.post_as("alice", "/api/v1/requests", request).await.assert_problem(422, "invalid_duration");
    let grant =
        json!({"user": "alice", "role": "site-administrator", "scope": "SITE_A", "reason": "x", "duration": ABSURD});
    app.post_as("mgr", "/api/v1/grants", grant).await.assert_problem(422, "invalid_duration");
    let token = json!({"user": "alice", "name": "ci", "expires_in": ABSURD});
    app.post_as("root", "/api/v1/tokens", token).await.assert_problem(422, "invalid_duration");
    assert_eq!(app.head().await, head, "nothing written");
    // The writer lives: the next writes of anyone succeed.
    let asked = app
        .post_as("alice", "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "x"}))
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let path = format!("/api/v1/requests/{}/approve", asked.body["id"].as_str().unwrap());
    assert_eq!(app.post_as("mgr", &path, json!({})).await.status, 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

async fn an_admin_cannot_decide_their_own_request_through_a_token_made_for_a_decider(backend: Backend) {
    let app = egi(backend).await;
    let asked = app
        .post_as("root", "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "x"}))
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let request = asked.body["id"].as_str().unwrap().to_string();
    let minted = api_token(&app, "root", "mgr").await;
    let head = app.head().await;
    for action in ["approve", "reject"] {
        let path = format!("/api/v1/requests/{request}/{action}");
        with_token(&app, Method::POST, &path, &minted, Some(json!({}))).await.assert_problem(403, "self_approval");
    }
    // Nor assigns to themselves through it.
    let to_root = json!({"user": "root", "role": "site-administrator", "scope": "SITE_A", "reason": "x"});
    with_token(&app, Method::POST, "/api/v1/grants", &minted, Some(to_root)).await.assert_problem(403, "self_approval");
    assert_eq!(app.head().await, head, "nothing written");
    // The decider's own login decides it.
    assert_eq!(app.post_as("mgr", &format!("/api/v1/requests/{request}/approve"), json!({})).await.status, 200);
}

async fn api_tokens_end_with_the_api_role_or_the_admin_role_that_let_them_be_made(backend: Backend) {
    let app = spawn_app_on(backend, "clustercockpit").await;
    app.bootstrap_admin("root").await;
    let api_grant = app.assign("root", "carol", "api", "global").await;
    let carols = api_token(&app, "carol", "carol").await;
    app.sign_in("bot").await;
    let bots = api_token(&app, "root", "bot").await;
    for token in [&carols, &bots] {
        assert_eq!(with_token(&app, Method::GET, "/api/v1/me", token, None).await.status, 200);
    }
    let revoked = app.post_as("root", &format!("/api/v1/grants/{api_grant}/revoke"), json!({"reason": "left"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    with_token(&app, Method::GET, "/api/v1/me", &carols, None).await.assert_problem(401, "unauthenticated");
    assert_eq!(with_token(&app, Method::GET, "/api/v1/me", &bots, None).await.status, 200);
    // root gives up admin: the token root made for bot ends too.
    let me = app.get_as("root", "/api/v1/me").await;
    let admin = me.body["grants"].as_array().unwrap().iter().find(|g| g["role"] == "admin").unwrap()["id"].clone();
    let path = format!("/api/v1/grants/{}/revoke", admin.as_str().unwrap());
    assert_eq!(app.post_as("root", &path, json!({"reason": "handing over"})).await.status, 200);
    with_token(&app, Method::GET, "/api/v1/me", &bots, None).await.assert_problem(401, "unauthenticated");
}

/// Clarive: admin root, project alm, release managers rita and rob of alm.
async fn clarive(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    assert_eq!(app.create_scope("root", "alm", "project", &[]).await.status, 201);
    for manager in ["rita", "rob"] {
        app.assign("root", manager, "release-manager", "alm").await;
    }
    app
}

async fn roles_needing_two_approvers_are_not_assigned_by_one(backend: Backend) {
    let app = clarive(backend).await;
    app.sign_in("cm").await;
    let created = app.post_as("root", "/api/v1/teams", json!({"id": "cab", "title": "Change board"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let head = app.head().await;
    for actor in ["rita", "root"] {
        for subject in [json!({"user": "cm"}), json!({"team": "cab"})] {
            let mut body = json!({"role": "change-manager", "scope": "alm", "reason": "x"});
            body.as_object_mut().unwrap().extend(subject.as_object().unwrap().clone());
            app.post_as(actor, "/api/v1/grants", body).await.assert_problem(422, "approvals_required");
        }
    }
    assert_eq!(app.head().await, head, "nothing written");
    // Through a request, two release managers give it.
    change_manager_by_request(&app, "cm").await;
    assert_eq!(app.held("cm").await, ["change-manager@alm"]);
}

async fn change_manager_by_request(app: &TestApp, user: &str) {
    let body = json!({"role": "change-manager", "scope": "alm", "reason": "x", "answers": {"change-board": "CAB-1"}});
    let asked = app.post_as(user, "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let path = format!("/api/v1/requests/{}/approve", asked.body["id"].as_str().unwrap());
    for manager in ["rita", "rob"] {
        let approved = app.post_as(manager, &path, json!({})).await;
        assert_eq!(approved.status, 200, "{:?}", approved.body);
    }
}

async fn incompatible_roles_never_meet_through_a_team(backend: Backend) {
    let app = clarive(backend).await;
    app.sign_in("cm").await;
    change_manager_by_request(&app, "cm").await;
    for team in ["devs", "night"] {
        let created = app.post_as("root", "/api/v1/teams", json!({"id": team, "title": team})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let developers = json!({"team": "devs", "role": "developer", "scope": "alm", "reason": "x"});
    assert_eq!(app.post_as("root", "/api/v1/grants", developers).await.status, 201);
    assert_eq!(app.put_as("root", "/api/v1/teams/night/members/cm", None).await.status, 200);
    let head = app.head().await;
    // The change manager joins the developers' team; the team with the change manager becomes developers.
    app.put_as("root", "/api/v1/teams/devs/members/cm", None).await.assert_problem(422, "incompatible_role");
    let night = json!({"team": "night", "role": "developer", "scope": "alm", "reason": "x"});
    app.post_as("rita", "/api/v1/grants", night).await.assert_problem(422, "incompatible_role");
    assert_eq!(app.head().await, head, "nothing written");
    assert_eq!(app.held("cm").await, ["change-manager@alm"]);
}

async fn a_decision_on_a_request_one_may_not_see_answers_403_before_its_state(backend: Backend) {
    let app = egi(backend).await;
    app.assign("root", "other", "site-operations-manager", "SITE_B").await;
    let asked = app
        .post_as("alice", "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "x"}))
        .await;
    let request = asked.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.post_as("mgr", &format!("/api/v1/requests/{request}/approve"), json!({})).await.status, 200);
    app.sign_in("bob").await;
    let head = app.head().await;
    for user in ["other", "bob"] {
        for action in ["approve", "reject"] {
            let answer = app.post_as(user, &format!("/api/v1/requests/{request}/{action}"), json!({})).await;
            answer.assert_problem(403, "not_a_decider");
            assert!(!answer.body["detail"].as_str().unwrap().contains("approved"), "{:?}", answer.body);
        }
    }
    app.post_as("mgr", &format!("/api/v1/requests/{request}/approve"), json!({}))
        .await
        .assert_problem(409, "not_pending");
    assert_eq!(app.head().await, head, "nothing written");
}

on_both_backends!(
    absurd_durations_are_refused_and_every_write_goes_on,
    an_admin_cannot_decide_their_own_request_through_a_token_made_for_a_decider,
    api_tokens_end_with_the_api_role_or_the_admin_role_that_let_them_be_made,
    roles_needing_two_approvers_are_not_assigned_by_one,
    incompatible_roles_never_meet_through_a_team,
    a_decision_on_a_request_one_may_not_see_answers_403_before_its_state,
);
