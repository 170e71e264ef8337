//! Rancher (`workflows/rancher.toml`): cluster and project roles; a creator receives the configured
//! creator roles, a locked one included; non-members see nothing of a cluster or project; revoking
//! a cluster role leaves project roles alone; "manage project members" assigns any project role;
//! custom roles include others and are offered on clusters, projects or both.

use serde_json::json;

use crate::{
    helpers::{spawn_app_on, TestApp},
    support::Backend,
};

/// An admin, and carl, a standard user who created cluster c1 and its projects p1 and p2.
async fn rancher(backend: Backend) -> TestApp {
    let app = spawn_app_on(backend, "rancher").await;
    app.bootstrap_admin("root").await;
    app.sign_in("carl").await;
    for (id, kind, parents) in [("c1", "cluster", vec![]), ("p1", "project", vec!["c1"]), ("p2", "project", vec!["c1"])]
    {
        let created = app.create_scope("carl", id, kind, &parents).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    app
}

fn assignment(user: &str, role: &str, scope: &str) -> serde_json::Value {
    json!({"user": user, "role": role, "scope": scope, "reason": "membership"})
}

async fn creators_receive_the_creator_roles_even_a_locked_one(backend: Backend) {
    let app = rancher(backend).await;
    assert_eq!(
        app.held("carl").await,
        ["cluster-creator@c1", "cluster-owner@c1", "project-owner@p1", "project-owner@p2", "standard-user@global"]
    );
    let me = app.get_as("carl", "/api/v1/me").await;
    let origins: Vec<&str> =
        me.body["grants"].as_array().unwrap().iter().map(|g| g["origin"].as_str().unwrap()).collect();
    assert!(origins.iter().filter(|o| **o == "creator").count() == 4, "{origins:?}");
    assert!(app.allowed("carl", "cluster.transfer", "c1").await);
    // The locked role takes no new assignment, not even from an administrator, and no request.
    app.sign_in("pat").await;
    app.post_as("root", "/api/v1/grants", assignment("pat", "cluster-creator", "c1"))
        .await
        .assert_problem(422, "role_locked");
    let asked = json!({"role": "cluster-creator", "scope": "c1", "reason": "r"});
    app.post_as("pat", "/api/v1/requests", asked).await.assert_problem(422, "role_locked");
    // Only members with scope.create there add projects to a cluster.
    app.create_scope("pat", "p3", "project", &["c1"]).await.assert_problem(403, "forbidden");
    app.assign("carl", "pat", "cluster-member", "c1").await;
    assert_eq!(app.create_scope("pat", "p3", "project", &["c1"]).await.status, 201);
    assert!(app.held("pat").await.contains(&"project-owner@p3".to_string()));
}

async fn non_members_see_nothing_of_a_cluster_or_project(backend: Backend) {
    let app = rancher(backend).await;
    let grant = app.assign("carl", "pat", "project-member", "p1").await;
    app.sign_in("quinn").await;
    let asked = app
        .post_as("quinn", "/api/v1/requests", json!({"role": "project-read-only", "scope": "p1", "reason": "r"}))
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let request = asked.body["id"].as_str().unwrap().to_string();

    app.sign_in("nick").await;
    for path in
        ["/api/v1/grants?scope=c1", "/api/v1/grants?scope=p1", "/api/v1/requests?scope=p1", "/api/v1/grants?user=pat"]
    {
        let listed = app.get_as("nick", path).await;
        assert_eq!((listed.status, listed.body["items"].clone()), (200, json!([])), "{path}");
    }
    app.get_as("nick", &format!("/api/v1/grants/{grant}")).await.assert_problem(403, "forbidden");
    app.get_as("nick", &format!("/api/v1/requests/{request}")).await.assert_problem(403, "forbidden");
    // A project member sees their own grant, not the requests they may not decide.
    assert_eq!(app.get_as("pat", &format!("/api/v1/grants/{grant}")).await.status, 200);
    assert_eq!(app.get_as("pat", "/api/v1/requests?scope=p1").await.body["items"], json!([]));
    // The owner sees both.
    assert_eq!(app.get_as("carl", "/api/v1/requests?scope=p1").await.body["items"][0]["id"], request.as_str());
    assert_eq!(app.get_as("carl", &format!("/api/v1/grants/{grant}")).await.status, 200);
}

async fn revoking_a_cluster_role_leaves_project_roles(backend: Backend) {
    let app = rancher(backend).await;
    let cluster_grant = app.assign("carl", "pat", "cluster-member", "c1").await;
    app.assign("carl", "pat", "project-member", "p1").await;
    assert!(app.allowed("pat", "cluster.view", "c1").await);
    let revoked = app
        .post_as("carl", &format!("/api/v1/grants/{cluster_grant}/revoke"), json!({"reason": "left the cluster"}))
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert!(!app.allowed("pat", "cluster.view", "c1").await);
    assert!(app.allowed("pat", "workloads.edit", "p1").await);
    assert_eq!(app.held("pat").await, ["project-member@p1", "standard-user@global"]);
}

async fn manage_project_members_assigns_any_project_role(backend: Backend) {
    let app = rancher(backend).await;
    app.assign("carl", "mo", "manage-project-members", "p1").await;
    // No access to the project's resources, yet any project role for anyone, owner included.
    assert!(!app.allowed("mo", "workloads.view", "p1").await);
    for (user, role) in [("u1", "project-read-only"), ("u2", "project-member"), ("u3", "project-owner")] {
        app.sign_in(user).await;
        let granted = app.post_as("mo", "/api/v1/grants", assignment(user, role, "p1")).await;
        assert_eq!(granted.status, 201, "{role}: {:?}", granted.body);
    }
    // Only in that project, and never a cluster role.
    app.post_as("mo", "/api/v1/grants", assignment("u1", "project-member", "p2"))
        .await
        .assert_problem(403, "not_a_decider");
    app.post_as("mo", "/api/v1/grants", assignment("u1", "cluster-member", "c1"))
        .await
        .assert_problem(403, "not_a_decider");
    // A project member may not.
    app.post_as("u2", "/api/v1/grants", assignment("u1", "project-member", "p1"))
        .await
        .assert_problem(403, "not_a_decider");
}

async fn custom_roles_include_others_on_clusters_projects_or_both(backend: Backend) {
    let app = rancher(backend).await;
    let both = json!({
        "id": "observer", "title": "Observer", "description": "Sees workloads and monitoring.",
        "kinds": ["cluster", "project"], "permissions": ["monitoring.view"], "includes": ["project-read-only"],
    });
    app.post_as("carl", "/api/v1/roles", both.clone()).await.assert_problem(403, "forbidden");
    assert_eq!(app.post_as("root", "/api/v1/roles", both).await.status, 201);
    let projects_only =
        json!({"id": "deployer", "title": "Deployer", "kinds": ["project"], "permissions": ["workloads.deploy"]});
    assert_eq!(app.post_as("root", "/api/v1/roles", projects_only).await.status, 201);

    // The cluster owner assigns custom roles like the built-in ones (the kind-wide rules).
    app.assign("carl", "ola", "observer", "c1").await;
    for (permission, scope) in [("monitoring.view", "c1"), ("workloads.view", "p1"), ("secrets.view", "p2")] {
        assert!(app.allowed("ola", permission, scope).await, "{permission} on {scope}");
    }
    assert!(!app.allowed("ola", "workloads.edit", "p1").await);
    app.assign("carl", "ola", "deployer", "p1").await;
    // Grants add up: the narrower role takes nothing away.
    assert!(app.allowed("ola", "workloads.deploy", "p1").await);
    assert!(app.allowed("ola", "workloads.view", "p1").await);
    app.post_as("carl", "/api/v1/grants", assignment("ola", "deployer", "c1"))
        .await
        .assert_problem(422, "wrong_scope_kind");
}

on_both_backends!(
    creators_receive_the_creator_roles_even_a_locked_one,
    non_members_see_nothing_of_a_cluster_or_project,
    revoking_a_cluster_role_leaves_project_roles,
    manage_project_members_assigns_any_project_role,
    custom_roles_include_others_on_clusters_projects_or_both,
);
