//! The whole EGI story over HTTP: an admin builds the tree and names a site manager; a user asks
//! to be site administrator; the manager approves; `check` says yes because of the grant; the grant
//! is revoked; `check` says no.

use reqwest::Method;
use serde_json::json;

use crate::{
    helpers::{spawn_app, token_for},
    support::Backend,
};

async fn request_approve_check_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.sign_in("alice").await;

    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "I run the CE at SITE_A"});
    let asked = app.post_as("alice", "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    assert_eq!(asked.body["user"], "alice");
    assert_eq!(asked.body["reason"], "I run the CE at SITE_A");
    let id = asked.body["id"].as_str().unwrap().to_string();

    let queue = app.get_as("manager", "/api/v1/requests?decidable=true").await;
    assert_eq!(queue.status, 200);
    let ids: Vec<&str> = queue.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id.as_str()]);
    // Nobody sees their own request as decidable; an outsider sees nothing.
    assert_eq!(app.get_as("alice", "/api/v1/requests?decidable=true").await.body["items"], json!([]));
    app.sign_in("bob").await;
    assert_eq!(app.get_as("bob", "/api/v1/requests").await.body["items"], json!([]));

    let shown = app.get_as("manager", &format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.body["deciders"],
        json!([{"user": "manager", "admin_only": false}, {"user": "root", "admin_only": true}])
    );

    let approved =
        app.post_as("manager", &format!("/api/v1/requests/{id}/approve"), json!({"comment": "welcome"})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["approvals"][0]["by"], "manager");
    assert_eq!(approved.body["approvals"][0]["comment"], "welcome");
    let grant = approved.body["grant"].as_str().unwrap().to_string();

    let check = "/api/v1/check?user=alice&permission=scope.edit&scope=SITE_A";
    let yes = app.get_as("alice", check).await;
    assert_eq!(yes.status, 200);
    assert_eq!(yes.body["allowed"], true);
    assert_eq!(yes.body["via"][0]["grant"], grant.as_str());
    assert_eq!(yes.body["via"][0]["role"], "site-administrator");
    // Not on the sibling site.
    let sibling = app.get_as("alice", "/api/v1/check?user=alice&permission=scope.edit&scope=SITE_B").await;
    assert_eq!(sibling.body["allowed"], false);

    let revoked =
        app.post_as("manager", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "left the site"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(revoked.body["revoked_by"], "manager");
    let no = app.get_as("alice", check).await;
    assert_eq!(no.body["allowed"], false);
    assert_eq!(no.body["via"], json!([]));

    // The request's page tells the story, with the actors and the grant's revocation.
    let history = app.get_as("alice", &format!("/api/v1/requests/{id}")).await.body["history"].clone();
    let types: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["RoleRequested", "RequestApproved", "RoleGranted", "GrantRevoked"]);
    let actors: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, ["alice", "manager", "manager", "manager"]);
    assert!(history[1]["metadata"]["client_address"].as_str().is_some());
}

async fn lifecycle_refusals_carry_their_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.sign_in("alice").await;
    let ask = |role: &str, scope: &str| json!({"role": role, "scope": scope, "reason": "r"});
    let head = app.head().await;
    for (body, status, code) in [
        (ask("site-administrator", "NGI_A"), 422, "wrong_scope_kind"),
        (ask("no-such-role", "SITE_A"), 422, "unknown_role"),
        (ask("site-administrator", "NOWHERE"), 422, "unknown_scope"),
        (ask("admin", "global"), 422, "not_requestable"),
    ] {
        app.post_as("alice", "/api/v1/requests", body).await.assert_problem(status, code);
    }
    assert_eq!(app.head().await, head, "refused requests write nothing");

    let first = app.post_as("alice", "/api/v1/requests", ask("site-administrator", "SITE_A")).await;
    assert_eq!(first.status, 201);
    let id = first.body["id"].as_str().unwrap().to_string();
    let head = app.head().await;
    app.post_as("alice", "/api/v1/requests", ask("site-administrator", "SITE_A"))
        .await
        .assert_problem(409, "duplicate_request");
    app.post_as("alice", &format!("/api/v1/requests/{id}/approve"), json!({}))
        .await
        .assert_problem(403, "self_approval");
    app.post_as("root", &format!("/api/v1/requests/{id}/cancel"), json!({})).await.assert_problem(403, "forbidden");
    assert_eq!(app.head().await, head);

    // Two concurrent approvals: exactly one wins.
    app.assign("root", "deputy", "site-operations-deputy-manager", "SITE_A").await;
    let path = format!("/api/v1/requests/{id}/approve");
    let (a, b) = tokio::join!(app.post_as("manager", &path, json!({})), app.post_as("deputy", &path, json!({})));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.body, b.body);
    let loser = if a.status == 409 { a } else { b };
    loser.assert_problem(409, "not_pending");

    // Two identical concurrent requests: one 201, one 409.
    let body = ask("site-security-officer", "SITE_B");
    let token = token_for("alice");
    let (a, b) = tokio::join!(
        app.call(Method::POST, "/api/v1/requests", Some(&token), Some(body.clone())),
        app.call(Method::POST, "/api/v1/requests", Some(&token), Some(body.clone())),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
}

on_both_backends!(request_approve_check_revoke, lifecycle_refusals_carry_their_codes);
