//! Clarive (`workflows/clarive.toml`): roles as namespaced actions, given by group, minus negative
//! filters, qualified by topic category, with implications; roles held within projects, a mailbox
//! per role; roles searched, edited (every holder changes at once), duplicated and deleted (which
//! takes the role from every holder).

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_on, TestApp},
    support::Backend,
};

/// An admin, the projects alm and beta, and a release manager of alm.
async fn clarive(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    for project in ["alm", "beta"] {
        assert_eq!(app.create_scope("root", project, "project", &[]).await.status, 201);
    }
    app.assign("root", "rita", "release-manager", "alm").await;
    app
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"].as_array().expect("items").iter().map(|r| r["id"].as_str().unwrap()).collect()
}

async fn actions_are_grouped_filtered_qualified_and_implied(backend: Backend) {
    let app = clarive(backend).await;
    app.assign("root", "ivan", "incident-manager", "alm").await;
    app.assign("root", "dev", "developer", "alm").await;
    for (user, permission, allowed) in [
        // `action.job.*` minus the negative filter `!action.job.delete`.
        ("rita", "action.job.restart", true),
        ("rita", "action.job.cancel", true),
        ("rita", "action.job.delete", false),
        // Topic actions qualified by category: incident is not release.
        ("rita", "action.topics.edit:release", true),
        ("rita", "action.topics.edit:incident", false),
        ("ivan", "action.topics.edit:incident", true),
        ("ivan", "action.topics.view:incident", true),
        ("ivan", "action.topics.edit:release", false),
        ("ivan", "action.topics.edit", false),
        // Pull and push access implies pull; a whole group (`action.home.*`).
        ("dev", "action.git.repository_read", true),
        ("dev", "action.home.show_menu", true),
        ("dev", "action.git.update_tags", false),
    ] {
        assert_eq!(app.allowed(user, permission, "alm").await, allowed, "{user} {permission}");
    }
    // Roles are held within a project: not elsewhere, not globally.
    assert!(!app.allowed("dev", "action.home.show_menu", "beta").await);
    let global = json!({"user": "dev", "role": "developer", "scope": "global", "reason": "r"});
    app.post_as("root", "/api/v1/grants", global).await.assert_problem(422, "wrong_scope_kind");

    // The list searches role names and descriptions, ignoring case.
    assert_eq!(ids(&app.get_as("dev", "/api/v1/roles?q=INCIDENT").await.body), ["incident-manager"]);
    assert_eq!(ids(&app.get_as("dev", "/api/v1/roles?q=releases").await.body), ["release-manager"]);
    assert_eq!(ids(&app.get_as("dev", "/api/v1/roles?q=nothing-like-it").await.body), Vec::<&str>::new());
}

async fn a_request_reaches_the_deciding_roles_mailbox(backend: Backend) {
    let app = clarive(backend).await;
    app.sign_in("dev").await;
    let asked =
        app.post_as("dev", "/api/v1/requests", json!({"role": "developer", "scope": "alm", "reason": "r"})).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let outbox = app.get_as("root", "/api/v1/outbox").await;
    assert_eq!(outbox.status, 200, "{:?}", outbox.body);
    assert!(outbox.body.to_string().contains("alm-release@example.org"), "{:?}", outbox.body);
}

async fn edited_roles_change_every_holder_at_once(backend: Backend) {
    let app = clarive(backend).await;
    for user in ["dev1", "dev2"] {
        app.assign("root", user, "developer", "alm").await;
        assert!(!app.allowed(user, "action.job.restart", "alm").await);
    }
    let mut role = app.get_as("dev1", "/api/v1/roles/developer").await.body;
    role["permissions"].as_array_mut().unwrap().push(json!("action.job.restart"));
    app.put_as("dev1", "/api/v1/roles/developer", Some(role.clone())).await.assert_problem(403, "forbidden");
    let mut renamed = role.clone();
    renamed["id"] = json!("other");
    assert_eq!(app.put_as("root", "/api/v1/roles/developer", Some(renamed)).await.status, 400);
    let edited = app.put_as("root", "/api/v1/roles/developer", Some(role)).await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    for user in ["dev1", "dev2"] {
        assert!(app.allowed(user, "action.job.restart", "alm").await, "{user} has the new action");
    }
    let stream: Vec<String> =
        app.store.read_stream("role-developer", 1).await.unwrap().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(stream, ["RoleEdited"]);
    // An edit that breaks the catalogue is refused like a bad workflow file.
    let mut broken = app.get_as("dev1", "/api/v1/roles/developer").await.body;
    broken["includes"] = json!(["no-such-role"]);
    app.put_as("root", "/api/v1/roles/developer", Some(broken)).await.assert_problem(422, "invalid");
}

async fn duplicates_are_numbered_and_deleting_takes_the_role_from_everyone(backend: Backend) {
    let app = clarive(backend).await;
    let first = app.post_as("root", "/api/v1/roles/developer/duplicate", json!({})).await;
    assert_eq!((first.status, first.body["id"].as_str()), (201, Some("developer-2")), "{:?}", first.body);
    assert_eq!(first.body["permissions"], app.get_as("root", "/api/v1/roles/developer").await.body["permissions"]);
    let second = app.post_as("root", "/api/v1/roles/developer/duplicate", json!({})).await;
    assert_eq!(second.body["id"], "developer-3");
    app.post_as("rita", "/api/v1/roles/developer/duplicate", json!({})).await.assert_problem(403, "forbidden");

    app.assign("root", "a1", "developer-2", "alm").await;
    app.assign("root", "a2", "developer-2", "beta").await;
    app.sign_in("a3").await;
    let asked =
        app.post_as("a3", "/api/v1/requests", json!({"role": "developer-2", "scope": "alm", "reason": "r"})).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    // The workflow names developer (incompatible with change-manager): it stays.
    app.delete_as("root", "/api/v1/roles/developer").await.assert_problem(409, "in_use");
    app.delete_as("rita", "/api/v1/roles/developer-2").await.assert_problem(403, "forbidden");

    let head = app.head().await;
    assert_eq!(app.delete_as("root", "/api/v1/roles/developer-2").await.status, 204);
    for user in ["a1", "a2"] {
        assert!(app.held(user).await.is_empty(), "{user} lost the role");
    }
    assert!(!app.allowed("a1", "action.home.show_menu", "alm").await);
    let written = app.get_as("root", &format!("/api/v1/events?after={head}")).await;
    let types: Vec<&str> =
        written.body["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["GrantRevoked", "GrantRevoked", "RequestRejected", "RoleDeleted"], "one revocation per grant");
    let request = app.get_as("a3", &format!("/api/v1/requests/{}", asked.body["id"].as_str().unwrap())).await;
    assert_eq!(request.body["status"], "rejected");
    assert_eq!(app.get_as("root", "/api/v1/roles/developer-2").await.status, 404);
    // The next copy takes the free number again.
    let again = app.post_as("root", "/api/v1/roles/developer/duplicate", json!({})).await;
    assert_eq!(again.body["id"], "developer-2");
}

on_both_backends!(
    actions_are_grouped_filtered_qualified_and_implied,
    a_request_reaches_the_deciding_roles_mailbox,
    edited_roles_change_every_holder_at_once,
    duplicates_are_numbered_and_deleting_takes_the_role_from_everyone,
);
