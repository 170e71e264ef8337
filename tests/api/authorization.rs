//! Every route of the API table, as each kind of caller: no token, a forged, expired or unsigned
//! token → 401; the wrong person → 403; the right person → success. A refused call writes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    helpers::{expired_token_for, forged_token_for, spawn_app, token_for, unsigned_token_for, TestApp},
    support::Backend,
};

/// One call to make as a wrong and as a right person.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Who must be refused with 403 (None where every user may call the route).
    wrong: Option<&'static str>,
    right: &'static str,
    success: u16,
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    wrong: Option<&'static str>,
    right: &'static str,
    success: u16,
) -> Case {
    Case { method, path: path.into(), body, wrong, right, success }
}

async fn every_route_checks_who_is_asking(backend: Backend) {
    let app = spawn_app(backend).await;
    let (requests, _) = world(&app).await;
    let token = app.post_as("root", "/api/v1/tokens", json!({"user": "alice", "name": "ci"})).await;
    assert_eq!(token.status, 201, "{:?}", token.body);
    let token_id = token.body["id"].as_str().unwrap().to_string();
    let grant = app.assign("root", "dave", "site-administrator", "SITE_A").await;
    let team_body = json!({"id": "ops", "title": "Operators"});
    let role_body = json!({"id": "custom-viewer", "title": "Viewer", "kinds": ["site"], "permissions": ["scope.view"]});
    let check = "/api/v1/check?user=alice&permission=scope.edit&scope=SITE_A";

    let cases = vec![
        case(Method::GET, "/api/v1/me", None, None, "alice", 200),
        case(Method::GET, "/api/v1/users/alice/approver-scopes", None, Some("bob"), "alice", 200),
        case(Method::POST, "/api/v1/users", Some(json!({"id": "newcomer"})), Some("manager"), "root", 201),
        case(Method::GET, "/api/v1/users?q=new", None, Some("manager"), "auditor", 200),
        case(
            Method::POST,
            "/api/v1/scopes",
            Some(json!({"id": "SITE_C", "kind": "site", "parents": ["NGI_A"], "title": "C"})),
            Some("alice"),
            "root",
            201,
        ),
        case(Method::GET, "/api/v1/scopes", None, None, "bob", 200),
        case(Method::GET, "/api/v1/scopes/NGI_A", None, None, "bob", 200),
        case(Method::DELETE, "/api/v1/scopes/SITE_C", None, Some("manager"), "root", 204),
        case(Method::GET, "/api/v1/roles?q=site", None, None, "bob", 200),
        case(Method::POST, "/api/v1/roles", Some(role_body), Some("manager"), "root", 201),
        case(Method::GET, "/api/v1/roles/custom-viewer", None, None, "bob", 200),
        case(Method::POST, "/api/v1/roles/custom-viewer/duplicate", None, Some("alice"), "root", 201),
        case(Method::DELETE, "/api/v1/roles/custom-viewer-2", None, Some("alice"), "root", 204),
        case(Method::POST, "/api/v1/teams", Some(team_body), Some("alice"), "root", 201),
        case(Method::GET, "/api/v1/teams", None, None, "bob", 200),
        case(Method::GET, "/api/v1/teams/ops", None, None, "bob", 200),
        case(Method::PUT, "/api/v1/teams/ops/members/bob", None, Some("alice"), "root", 200),
        case(Method::DELETE, "/api/v1/teams/ops/members/bob", None, Some("alice"), "root", 204),
        case(
            Method::POST,
            "/api/v1/requests",
            Some(json!({"role": "site-administrator", "scope": "SITE_B", "reason": "r"})),
            Some("auditor"),
            "bob",
            201,
        ),
        case(Method::GET, "/api/v1/requests", None, None, "bob", 200),
        case(Method::GET, format!("/api/v1/requests/{}", requests[0]), None, Some("bob"), "manager", 200),
        case(
            Method::POST,
            format!("/api/v1/requests/{}/approve", requests[0]),
            Some(json!({"comment": "ok"})),
            Some("bob"),
            "manager",
            200,
        ),
        case(
            Method::POST,
            format!("/api/v1/requests/{}/reject", requests[1]),
            Some(json!({"reason": "no"})),
            Some("bob"),
            "manager",
            200,
        ),
        case(Method::POST, format!("/api/v1/requests/{}/cancel", requests[2]), None, Some("manager"), "alice", 200),
        case(
            Method::POST,
            "/api/v1/grants",
            Some(json!({"user": "erin", "role": "site-security-officer", "scope": "SITE_A", "reason": "r"})),
            Some("bob"),
            "manager",
            201,
        ),
        case(Method::GET, "/api/v1/grants", None, None, "bob", 200),
        case(Method::GET, format!("/api/v1/grants/{grant}"), None, Some("bob"), "dave", 200),
        case(
            Method::POST,
            format!("/api/v1/grants/{grant}/revoke"),
            Some(json!({"reason": "r"})),
            Some("bob"),
            "manager",
            200,
        ),
        case(Method::GET, check, None, Some("bob"), "alice", 200),
        case(Method::POST, "/api/v1/tokens", Some(json!({"user": "bob", "name": "x"})), Some("alice"), "root", 201),
        case(Method::GET, "/api/v1/tokens", None, None, "alice", 200),
        case(Method::DELETE, format!("/api/v1/tokens/{token_id}"), None, Some("bob"), "root", 204),
        case(Method::GET, "/api/v1/outbox?state=dead", None, Some("auditor"), "root", 200),
        case(Method::GET, "/api/v1/events", None, Some("alice"), "auditor", 200),
        case(Method::GET, "/api/v1/audit/verify", None, Some("manager"), "auditor", 200),
    ];
    app.sign_in("erin").await;
    for case in &cases {
        let what = format!("{} {}", case.method, case.path);
        let head = app.head().await;
        let bad_tokens =
            [None, Some(forged_token_for("root")), Some(expired_token_for("root")), Some(unsigned_token_for("root"))];
        for token in bad_tokens {
            let answer = app.call(case.method.clone(), &case.path, token.as_deref(), case.body.clone()).await;
            assert_eq!(answer.status, 401, "{what} with {token:?}: {:?}", answer.body);
            assert!(answer.headers.contains_key("www-authenticate"), "{what}");
        }
        if let Some(wrong) = case.wrong {
            let answer = app.call(case.method.clone(), &case.path, Some(&token_for(wrong)), case.body.clone()).await;
            assert_eq!(answer.status, 403, "{what} as {wrong}: {:?}", answer.body);
            assert!(answer.content_type.starts_with("application/problem+json"), "{what}");
        }
        assert_eq!(app.head().await, head, "{what}: a refused call wrote an event");
        let answer = app.call(case.method.clone(), &case.path, Some(&token_for(case.right)), case.body.clone()).await;
        assert_eq!(answer.status, case.success, "{what} as {}: {:?}", case.right, answer.body);
    }
    // alice's API token was revoked by the DELETE above: it opens nothing any more.
    let secret = token.body["token"].as_str().unwrap();
    assert_eq!(app.call(Method::GET, check, Some(secret), None).await.status, 401);
}

/// root (admin), auditor, manager (site-operations-manager on SITE_A), alice (requester with three
/// pending requests on SITE_A), bob (outsider), carol (site-administrator on SITE_B).
async fn world(app: &TestApp) -> (Vec<String>, String) {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "auditor", "auditor", "global").await;
    app.sign_in("alice").await;
    app.sign_in("bob").await;
    let mut requests = Vec::new();
    for role in ["site-administrator", "site-security-officer", "site-operations-deputy-manager"] {
        let body = json!({"role": role, "scope": "SITE_A", "reason": "needed"});
        let answer = app.post_as("alice", "/api/v1/requests", body).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        requests.push(answer.body["id"].as_str().unwrap().to_string());
    }
    let grant = app.assign("root", "carol", "site-administrator", "SITE_B").await;
    (requests, grant)
}

async fn a_manager_of_one_site_is_refused_on_its_sibling(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, carol_grant) = world(&app).await;
    let head = app.head().await;
    app.post_as("manager", &format!("/api/v1/grants/{carol_grant}/revoke"), json!({"reason": "r"}))
        .await
        .assert_problem(403, "not_a_decider");
    let body = json!({"user": "bob", "role": "site-administrator", "scope": "SITE_B", "reason": "r"});
    app.post_as("manager", "/api/v1/grants", body).await.assert_problem(403, "not_a_decider");
    // Nor may anyone assign to themselves, admins included.
    let body = json!({"user": "root", "role": "site-administrator", "scope": "SITE_B", "reason": "r"});
    app.post_as("root", "/api/v1/grants", body).await.assert_problem(403, "self_approval");
    assert_eq!(app.head().await, head);
    // The sibling's grant is invisible to the manager.
    app.get_as("manager", &format!("/api/v1/grants/{carol_grant}")).await.assert_problem(403, "forbidden");
}

on_both_backends!(every_route_checks_who_is_asking, a_manager_of_one_site_is_refused_on_its_sibling);
