//! Docker UCP (`workflows/ucp.toml`): collections nest; roles are sets of operations, built in or
//! custom; grants go to users and teams; roles are immutable, and one used by a grant cannot be
//! deleted; only administrators change the catalogue; every user gets Scheduler on /Shared.

use serde_json::json;

use crate::{
    helpers::{spawn_app_on, TestApp},
    support::Backend,
};

/// An admin, and the collections shared ⊃ team-a ⊃ team-a-dev.
async fn ucp(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend, "ucp").await;
    app.bootstrap_admin("root").await;
    for (id, parents) in [("shared", vec![]), ("team-a", vec!["shared"]), ("team-a-dev", vec!["team-a"])] {
        let created = app.create_scope("root", id, "collection", &parents).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    app
}

async fn collections_nest_without_cycles(backend: Backend) {
    let app = ucp(backend).await;
    let shown = app.get_as("root", "/api/v1/scopes/team-a-dev").await;
    assert_eq!(shown.body["parents"], json!(["team-a"]), "{:?}", shown.body);
    // A collection cannot sit under itself (parents must exist and never change, so that is the
    // only cycle a request could make).
    app.create_scope("root", "loop", "collection", &["loop"]).await.assert_problem(422, "invalid");
    // A grant on a collection reaches the collections inside it.
    app.assign("root", "alice", "view-only", "team-a").await;
    assert!(app.allowed("alice", "container.view", "team-a-dev").await);
    assert!(!app.allowed("alice", "container.view", "shared").await);
}

async fn built_in_roles_are_sets_of_operations(backend: Backend) {
    let app = ucp(backend).await;
    // Outside /Shared, where every user's default Scheduler does not reach.
    assert_eq!(app.create_scope("root", "ops", "collection", &[]).await.status, 201);
    let table: [(&str, &[&str], &[&str]); 5] = [
        ("none", &[], &["container.view", "node.view"]),
        ("view-only", &["container.view", "secret.view", "node.view"], &["container.create", "secret.create"]),
        (
            "restricted-control",
            &["container.create", "service.update", "volume.create", "secret.view"],
            &["container.exec", "container.privileged", "volume.bind_host", "node.schedule", "secret.create"],
        ),
        ("scheduler", &["node.view", "node.schedule"], &["container.view", "container.create"]),
        ("full-control", &["container.exec", "secret.create", "node.schedule"], &[]),
    ];
    for (role, allowed, denied) in table {
        let user = format!("holder-of-{role}");
        app.assign("root", &user, role, "ops").await;
        for permission in allowed {
            assert!(app.allowed(&user, permission, "ops").await, "{role} gives {permission}");
        }
        for permission in denied {
            assert!(!app.allowed(&user, permission, "ops").await, "{role} does not give {permission}");
        }
    }
}

async fn team_grants_reach_members_while_they_are_members(backend: Backend) {
    let app = ucp(backend).await;
    app.sign_in("alice").await;
    app.post_as("alice", "/api/v1/teams", json!({"id": "devs", "title": "Developers"}))
        .await
        .assert_problem(403, "forbidden");
    let created = app.post_as("root", "/api/v1/teams", json!({"id": "devs", "title": "Developers"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let granted = app
        .post_as(
            "root",
            "/api/v1/grants",
            json!({"team": "devs", "role": "restricted-control", "scope": "team-a", "reason": "the team's collection"}),
        )
        .await;
    assert_eq!(granted.status, 201, "{:?}", granted.body);
    assert_eq!(granted.body["team"], "devs");
    assert!(!app.allowed("alice", "container.create", "team-a-dev").await);

    let added = app.put_as("root", "/api/v1/teams/devs/members/alice", None).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(added.body["members"], json!(["alice"]));
    let check = app.check("alice", "container.create", "team-a-dev").await;
    assert_eq!(check.body["allowed"], true);
    assert_eq!(check.body["via"][0]["team"], "devs");
    let me = app.get_as("alice", "/api/v1/me").await;
    assert_eq!(me.body["teams"], json!(["devs"]));
    let team_grant = me.body["grants"].as_array().unwrap().iter().find(|g| g["role"] == "restricted-control").cloned();
    assert_eq!(team_grant.expect("the team's grant")["via_team"], "devs", "{:?}", me.body);
    // Nobody adds themselves to a team, not even an administrator.
    app.put_as("root", "/api/v1/teams/devs/members/root", None).await.assert_problem(403, "self_approval");

    let removed = app.delete_as("root", "/api/v1/teams/devs/members/alice").await;
    assert_eq!(removed.status, 204);
    assert!(!app.allowed("alice", "container.create", "team-a-dev").await);
    let membership: Vec<String> =
        app.store.read_stream("team-devs", 1).await.unwrap().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(membership, ["TeamCreated", "TeamMemberAdded", "TeamMemberRemoved"]);
}

async fn custom_roles_are_immutable_and_cannot_be_deleted_while_granted(backend: Backend) {
    let app = ucp(backend).await;
    app.sign_in("alice").await;
    let role = json!({
        "id": "remove-images", "title": "Remove Images", "kinds": ["global", "collection"],
        "permissions": ["image.remove", "image.force_remove"],
    });
    app.post_as("alice", "/api/v1/roles", role.clone()).await.assert_problem(403, "forbidden");
    let created = app.post_as("root", "/api/v1/roles", role.clone()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let mut edited = role.clone();
    edited["permissions"] = json!(["image.*"]);
    app.put_as("root", "/api/v1/roles/remove-images", Some(edited)).await.assert_problem(403, "forbidden");

    let grant = app.assign("root", "alice", "remove-images", "team-a").await;
    assert!(app.allowed("alice", "image.force_remove", "team-a-dev").await);
    assert!(!app.allowed("alice", "image.create", "team-a").await);
    let head = app.head().await;
    app.delete_as("root", "/api/v1/roles/remove-images").await.assert_problem(409, "in_use");
    app.delete_as("alice", "/api/v1/roles/remove-images").await.assert_problem(403, "forbidden");
    assert_eq!(app.head().await, head, "refusals write nothing");
    assert!(app.allowed("alice", "image.remove", "team-a").await);

    let revoked = app.post_as("root", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "done"})).await;
    assert_eq!(revoked.status, 200);
    assert_eq!(app.delete_as("root", "/api/v1/roles/remove-images").await.status, 204);
    assert_eq!(app.get_as("alice", "/api/v1/roles/remove-images").await.status, 404);
    // Built-in roles of the workflow that it names (the default Scheduler) stay.
    app.delete_as("root", "/api/v1/roles/scheduler").await.assert_problem(409, "in_use");
}

async fn every_user_gets_scheduler_on_shared(backend: Backend) {
    let app = spawn_app_on(backend, "ucp").await;
    app.bootstrap_admin("root").await;
    // Signed in before /Shared exists: receives it when the collection is created.
    app.sign_in("early").await;
    assert_eq!(app.held("early").await, Vec::<String>::new());
    assert_eq!(app.create_scope("root", "shared", "collection", &[]).await.status, 201);
    assert_eq!(app.held("early").await, ["scheduler@shared"]);
    app.sign_in("alice").await;
    assert_eq!(app.held("alice").await, ["scheduler@shared"]);
    let me = app.get_as("alice", "/api/v1/me").await;
    assert_eq!(me.body["grants"][0]["origin"], "default");
    assert!(app.allowed("alice", "node.schedule", "shared").await);
    assert!(!app.allowed("alice", "container.view", "shared").await, "scheduling, not viewing workloads");
    let events: Vec<String> =
        app.store.read_stream("user-alice", 1).await.unwrap().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(events, ["UserRegistered"]);
    let grants = app.get_as("root", "/api/v1/grants?user=alice&role=scheduler").await;
    assert_eq!(grants.body["items"].as_array().unwrap().len(), 1, "one grant, an event of its own: {:?}", grants.body);
}

on_both_backends!(
    collections_nest_without_cycles,
    built_in_roles_are_sets_of_operations,
    team_grants_reach_members_while_they_are_members,
    custom_roles_are_immutable_and_cannot_be_deleted_while_granted,
    every_user_gets_scheduler_on_shared,
);
