//! Limits and hygiene: body size, malformed JSON, unknown fields, bad query values, unknown
//! routes, request ids in answers and events, the OpenAPI document and the metrics.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, token_for, Answer},
    support::Backend,
};

async fn bad_input_gets_a_clear_error_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.sign_in("alice").await;
    let head = app.head().await;
    let token = token_for("alice");
    let raw = |body: String| {
        app.client
            .post(format!("{}/api/v1/requests", app.address))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "x".repeat(70 * 1024)}).to_string();
    Answer::from(raw(huge).await.unwrap()).await.assert_problem(413, "payload_too_large");
    let malformed = Answer::from(raw("{\"role\": ".into()).await.unwrap()).await;
    malformed.assert_problem(400, "malformed_body");
    assert!(malformed.body["detail"].as_str().unwrap().contains("EOF"), "{:?}", malformed.body);
    let unknown = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r", "sudo": true}).to_string();
    let unknown = Answer::from(raw(unknown).await.unwrap()).await;
    unknown.assert_problem(400, "malformed_body");
    assert!(unknown.body["detail"].as_str().unwrap().contains("unknown field `sudo`"), "{:?}", unknown.body);
    let bad_duration = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r", "duration": "forever"});
    app.post_as("alice", "/api/v1/requests", bad_duration).await.assert_problem(400, "malformed_body");
    for query in ["limit=abc", "limit=0", "status=sleeping", "cursor=zz", "decidable=perhaps"] {
        app.get_as("alice", &format!("/api/v1/requests?{query}")).await.assert_problem(400, "bad_query");
    }
    app.get_as("root", "/api/v1/grants?as_of=yesterday").await.assert_problem(400, "bad_query");
    app.get_as("alice", "/api/v1/check?user=alice").await.assert_problem(400, "bad_query");
    app.get_as("alice", "/api/v1/nowhere").await.assert_problem(404, "not_found");
    app.call(Method::PATCH, "/api/v1/requests", Some(&token), None).await.assert_problem(405, "method_not_allowed");
    app.get_as("alice", "/api/v1/requests/not-a-uuid").await.assert_problem(404, "not_found");
    // A cursor of the grant lists is a grant id; anything else is not one this server gave.
    app.get_as("root", &format!("/api/v1/grants?cursor={}", hex::encode("SITE_A")))
        .await
        .assert_problem(400, "bad_query");
    app.get_as("root", &format!("/api/v1/grants?as_of=1&cursor={}", hex::encode("x")))
        .await
        .assert_problem(400, "bad_query");
    // U+0000 in any text is refused alike on both backends (PostgreSQL cannot keep it in JSON).
    let nul = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "a\u{0}b"});
    app.post_as("alice", "/api/v1/requests", nul).await.assert_problem(422, "invalid");
    let nul_title = json!({"id": "NUL_SITE", "kind": "site", "parents": ["NGI_A"], "title": "x\u{0}"});
    app.post_as("root", "/api/v1/scopes", nul_title).await.assert_problem(422, "invalid");
    // A login token whose name holds one still signs in; the profile is simply not recorded.
    let claims = roleledger::auth::LoginClaims {
        sub: "alice".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        email: None,
        name: Some("Al\u{0}ice".into()),
        roles: None,
    };
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&crate::helpers::login_token(claims)), None).await.status, 200);
    assert_eq!(app.head().await, head, "bad input wrote nothing");
}

async fn request_ids_are_echoed_and_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let answer = app
        .client
        .post(format!("{}/api/v1/scopes", app.address))
        .bearer_auth(token_for("root"))
        .header("x-request-id", "trace-42")
        .json(&json!({"id": "EGI", "kind": "project", "title": "EGI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["x-request-id"], "trace-42");
    let events = app.store.read_stream("scope-EGI", 1).await.unwrap();
    assert_eq!(events[0].metadata.correlation_id.as_deref(), Some("trace-42"));
    assert_eq!(events[0].metadata.actor.as_deref(), Some("root"));
    let generated = app.get("/healthz").await;
    assert_eq!(generated.headers()["x-request-id"].len(), 36, "a UUID is made up when none is sent");
}

/// A known path asked with a method it does not serve: 405, the methods it serves in `Allow`, the
/// one problem shape, and nothing written.
async fn a_method_not_served_is_answered_with_the_allowed_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let head = app.head().await;
    let token = token_for("root");
    for (method, path, allowed) in [
        (Method::PATCH, "/api/v1/requests", "GET, POST"),
        (Method::DELETE, "/api/v1/check?user=root&permission=x&scope=global", "GET"),
        (Method::POST, "/api/v1/roles/site-administrator", "DELETE, GET, PUT"),
        (Method::GET, "/api/v1/teams/ops/members/alice", "DELETE, PUT"),
        (Method::GET, "/api/v1/requests/00000000-0000-0000-0000-000000000000/approve", "POST"),
        (Method::POST, "/healthz", "GET"),
        (Method::PUT, "/openapi.json", "GET"),
        (Method::DELETE, "/ui/audit", "GET"),
    ] {
        let answer = app.call(method.clone(), path, Some(&token), None).await;
        answer.assert_problem(405, "method_not_allowed");
        let header = answer.headers.get("allow").and_then(|v| v.to_str().ok());
        let mut named: Vec<&str> = header.unwrap_or_else(|| panic!("{method} {path}: no Allow")).split(", ").collect();
        named.sort();
        assert_eq!(named.join(", "), allowed, "{method} {path}");
    }
    assert_eq!(app.head().await, head, "405s wrote nothing");
}

/// `approver-scopes` is a list like the others: `limit` and `cursor` page it.
async fn approver_scopes_page_like_every_list(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    for site in ["SITE_A", "SITE_B"] {
        app.assign("root", "mgr", "site-operations-manager", site).await;
    }
    let path = "/api/v1/users/mgr/approver-scopes";
    let whole = app.get_as("mgr", path).await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    let whole = whole.body["items"].as_array().unwrap().clone();
    assert!(whole.len() >= 2, "{whole:?}");
    let (mut paged, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = cursor.as_ref().map_or("limit=1".to_string(), |c| format!("limit=1&cursor={c}"));
        let page = app.get_as("mgr", &format!("{path}?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {:?}", page.body);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1, "{:?}", page.body);
        paged.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let sorted = |mut items: Vec<Value>| {
        items.sort_by_key(|item| item.to_string());
        items
    };
    assert_eq!(sorted(paged), sorted(whole.clone()), "the pages hold the list, each entry once");
    let expanded = app.get_as("mgr", &format!("{path}?expand=true&limit={}", whole.len())).await;
    assert_eq!(expanded.body["items"].as_array().unwrap().len(), whole.len(), "{:?}", expanded.body);
    assert!(expanded.body["next"].is_null());
    for query in ["limit=0", "limit=abc", "cursor=zz", "page=2"] {
        app.get_as("mgr", &format!("{path}?{query}")).await.assert_problem(400, "bad_query");
    }
}

/// Every route the server serves, as `METHOD path` in OpenAPI's notation.
const ROUTES: &[&str] = &[
    "get /healthz",
    "get /readyz",
    "get /metrics",
    "get /openapi.json",
    "get /api/v1/me",
    "get /api/v1/users/{id}/approver-scopes",
    "post /api/v1/users",
    "get /api/v1/users",
    "post /api/v1/scopes",
    "get /api/v1/scopes",
    "get /api/v1/scopes/{id}",
    "delete /api/v1/scopes/{id}",
    "get /api/v1/roles",
    "post /api/v1/roles",
    "get /api/v1/roles/{id}",
    "put /api/v1/roles/{id}",
    "delete /api/v1/roles/{id}",
    "post /api/v1/roles/{id}/duplicate",
    "post /api/v1/teams",
    "get /api/v1/teams",
    "get /api/v1/teams/{id}",
    "put /api/v1/teams/{id}/members/{user}",
    "delete /api/v1/teams/{id}/members/{user}",
    "post /api/v1/requests",
    "get /api/v1/requests",
    "get /api/v1/requests/{id}",
    "post /api/v1/requests/{id}/approve",
    "post /api/v1/requests/{id}/reject",
    "post /api/v1/requests/{id}/cancel",
    "post /api/v1/grants",
    "get /api/v1/grants",
    "get /api/v1/grants/{id}",
    "post /api/v1/grants/{id}/revoke",
    "post /api/v1/grants/{id}/extend",
    "get /api/v1/check",
    "post /api/v1/tokens",
    "get /api/v1/tokens",
    "delete /api/v1/tokens/{id}",
    "get /api/v1/outbox",
    "post /api/v1/outbox/{id}/retry",
    "get /api/v1/events",
    "get /api/v1/events/live",
    "get /api/v1/audit/verify",
    "post /api/v1/delegations",
    "get /api/v1/delegations",
    "delete /api/v1/delegations/{id}",
    // ----- access reviews -----
    "post /api/v1/reviews",
    "get /api/v1/reviews",
    "get /api/v1/reviews/{id}",
    "get /api/v1/reviews/{id}/items",
    "get /api/v1/reviews/{id}/report",
    "post /api/v1/reviews/{id}/items/{item}/decide",
    "post /api/v1/reviews/{id}/close",
    // ----- policy simulation -----
    "post /api/v1/audit/simulate",
    // ----- mail preferences -----
    "get /api/v1/me/preferences",
    "put /api/v1/me/preferences",
    // ----- webhooks -----
    "post /api/v1/webhooks",
    "get /api/v1/webhooks",
    "delete /api/v1/webhooks/{id}",
    "get /api/v1/webhooks/{id}/deliveries",
    "post /api/v1/webhooks/{id}/deliveries/{delivery}/retry",
];

async fn openapi_lists_every_route_and_metrics_count_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert(format!("{method} {path}"));
        }
    }
    let expected: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(documented, expected);
    // Each documented route is served (none answers "no such route").
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{id}", "x").replace("{user}", "y").replace("{item}", "z").replace("{delivery}", "d");
        let answer = app.call(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &path, None, None).await;
        assert_ne!(answer.code(), "not_found", "{route} is not served");
    }

    app.sign_in("alice").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"roleledger_http_requests_total{route="/api/v1/me",method="GET",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"roleledger_http_request_duration_seconds_count{route="/api/v1/me"} 2"#),
        "the 401 above and the 200: {metrics}"
    );
    assert!(metrics.contains("roleledger_events_appended_total 1"), "alice's registration: {metrics}");
    assert!(metrics.contains("roleledger_projection_lag_events 0"), "{metrics}");
}

on_both_backends!(
    bad_input_gets_a_clear_error_and_writes_nothing,
    request_ids_are_echoed_and_recorded,
    openapi_lists_every_route_and_metrics_count_them,
    a_method_not_served_is_answered_with_the_allowed_ones,
    approver_scopes_page_like_every_list,
);
