//! Users known before they sign in: administrators register them (`POST /users`), administrators
//! and auditors list them (`GET /users?q=`); deciders assign them roles and admins add them to teams
//! before their first sign-in, which keeps the id and fills in the profile.

use reqwest::Method;
use roleledger::auth::LoginClaims;
use serde_json::json;

use crate::{
    helpers::{login_token, spawn_app, token_for},
    support::Backend,
};

async fn every_refused_registration_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    app.sign_in("alice").await;
    let head = app.head().await;
    let refusals = [
        ("alice", json!({"id": "nia"}), 403, "forbidden"),
        // Who asks is judged before the id: a non-admin learns nothing about it.
        ("alice", json!({"id": "system"}), 403, "forbidden"),
        ("aud", json!({"id": "nia"}), 403, "read_only"),
        ("root", json!({"id": "system"}), 422, "reserved_id"),
        ("root", json!({"id": "command-line"}), 422, "reserved_id"),
        ("root", json!({"id": "system:mail"}), 422, "reserved_id"),
        ("root", json!({"id": "n ia"}), 422, "invalid"),
        ("root", json!({"id": ""}), 422, "invalid"),
        ("root", json!({"id": "nia\u{200b}"}), 422, "invalid"),
        ("root", json!({"id": "x".repeat(256)}), 422, "invalid"),
        ("root", json!({"id": "alice"}), 409, "already_exists"),
        ("root", json!({"id": "nia", "email": " "}), 422, "invalid"),
        ("root", json!({"id": "nia", "email": "nia@example.org\r\nBcc: x@example.org"}), 422, "invalid"),
        ("root", json!({"id": "nia", "role": "admin"}), 400, "malformed_body"),
        ("root", json!({"email": "nia@example.org"}), 400, "malformed_body"),
    ];
    for (who, body, status, code) in refusals {
        let answer = app.post_as(who, "/api/v1/users", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{who} {body}: {:?}", answer.body);
        assert_eq!(app.head().await, head, "{who} {body}: a refused registration wrote an event");
    }
    // Listing is for administrators and auditors.
    app.get_as("alice", "/api/v1/users").await.assert_problem(403, "forbidden");
    assert_eq!(app.head().await, head);
}

async fn a_user_registered_before_signing_in_is_assigned_and_keeps_the_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    assert_eq!(app.post_as("root", "/api/v1/teams", json!({"id": "ops", "title": "Operators"})).await.status, 201);

    let body = json!({"id": "nia", "email": "nia@example.org", "name": "Nia Okafor"});
    let created = app.post_as("root", "/api/v1/users", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body, json!({"id": "nia", "email": "nia@example.org", "name": "Nia Okafor"}));
    let events = app.store.read_stream("user-nia", 1).await.unwrap();
    assert_eq!(events[0].event_type, "UserRegistered");
    assert_eq!(events[0].metadata.actor.as_deref(), Some("root"), "the admin is the actor");
    app.post_as("root", "/api/v1/users", json!({"id": "nia"})).await.assert_problem(409, "already_exists");

    // A decider assigns a role and an admin adds them to a team, all before the first sign-in.
    let grant = json!({"user": "nia", "role": "site-administrator", "scope": "SITE_A", "reason": "new colleague"});
    let assigned = app.post_as("manager", "/api/v1/grants", grant).await;
    assert_eq!(assigned.status, 201, "{:?}", assigned.body);
    let joined = app.put_as("root", "/api/v1/teams/ops/members/nia", None).await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);

    // The first sign-in keeps the id, updates the email it carries, keeps the name it does not.
    let token = login_token(LoginClaims {
        sub: "nia".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        email: Some("nia@new.example.org".into()),
        name: None,
        roles: None,
    });
    let me = app.call(Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!((me.body["id"].as_str(), me.body["email"].as_str()), (Some("nia"), Some("nia@new.example.org")));
    assert_eq!(me.body["name"], "Nia Okafor");
    assert_eq!(me.body["teams"], json!(["ops"]));
    let roles: Vec<&str> = me.body["grants"].as_array().unwrap().iter().map(|g| g["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["site-administrator"]);
    let types: Vec<String> =
        app.store.read_stream("user-nia", 1).await.unwrap().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["UserRegistered", "UserProfileChanged"], "no second registration");
}

async fn users_are_listed_by_search_and_paged(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    for (id, email, name) in [
        ("u1", "ada@example.org", "Ada Lovelace"),
        ("u2", "grace@navy.example", "Grace Hopper"),
        ("u3", "alan@example.org", "Alan Turing"),
    ] {
        let answer = app.post_as("root", "/api/v1/users", json!({"id": id, "email": email, "name": name})).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
    };
    for (query, expected) in [
        ("q=HOPPER", vec!["u2"]),
        // root and aud signed in with tokens carrying USER@example.org.
        ("q=example.org", vec!["aud", "root", "u1", "u3"]),
        ("q=lovelace", vec!["u1"]),
        ("q=U3", vec!["u3"]),
        ("q=nobody", vec![]),
        ("q=", vec!["aud", "root", "u1", "u2", "u3"]),
    ] {
        for who in ["root", "aud"] {
            let answer = app.get_as(who, &format!("/api/v1/users?{query}")).await;
            assert_eq!(answer.status, 200, "{query}: {:?}", answer.body);
            assert_eq!(ids(&answer.body), expected, "{query} as {who}");
        }
    }
    let first = app.get_as("aud", "/api/v1/users?q=u&limit=2").await;
    assert_eq!(ids(&first.body), ["aud", "u1"]);
    let next = first.body["next"].as_str().expect("a next page");
    let second = app.get_as("aud", &format!("/api/v1/users?q=u&limit=2&cursor={next}")).await;
    assert_eq!(ids(&second.body), ["u2", "u3"]);
    assert!(second.body["next"].is_null());
    app.get_as("aud", "/api/v1/users?limit=0").await.assert_problem(400, "bad_query");
    app.get_as("aud", "/api/v1/users?cursor=zz").await.assert_problem(400, "bad_query");
    app.get_as("aud", "/api/v1/users?sort=id").await.assert_problem(400, "bad_query");
    // An API token's holder is neither: refused too.
    let made = app.post_as("root", "/api/v1/tokens", json!({"user": "u1", "name": "ci"})).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let secret = made.body["token"].as_str().unwrap();
    assert_eq!(app.call(Method::GET, "/api/v1/users", Some(secret), None).await.status, 403);
    assert_eq!(app.call(Method::GET, "/api/v1/users", Some(&token_for("u2")), None).await.status, 403);
}

on_both_backends!(
    every_refused_registration_writes_nothing,
    a_user_registered_before_signing_in_is_assigned_and_keeps_the_id,
    users_are_listed_by_search_and_paged,
);
