//! `Idempotency-Key` on the API's POSTs: a repeat gets the first answer without acting again,
//! across processes and after a lost commit answer; another call under the key is refused.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, token_for, Answer, TestApp};
use crate::support::Backend;

/// `user` POSTs `body` to `path` with the key (raw header value).
async fn post_keyed(app: &TestApp, user: &str, path: &str, body: &Value, key: &str) -> Answer {
    let request = app
        .client
        .request(Method::POST, format!("{}{path}", app.address))
        .bearer_auth(token_for(user))
        .header("Idempotency-Key", key)
        .json(body);
    Answer::from(request.send().await.expect("the server answers")).await
}

fn replayed(answer: &Answer) -> bool {
    answer.headers.get("idempotent-replayed").is_some_and(|value| value == "true")
}

/// The log's event types after `position`.
async fn types_after(app: &TestApp, position: i64) -> Vec<String> {
    let events = app.store.read_page(position, 1_000).await.expect("the log reads");
    events.into_iter().map(|event| event.event_type).collect()
}

/// An admin, the EGI tree, and `u1` signed in.
async fn world(app: &TestApp) {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.sign_in("u1").await;
    app.sign_in("u2").await;
}

fn role_request(reason: &str) -> Value {
    json!({"role": "site-administrator", "scope": "SITE_A", "reason": reason})
}

async fn the_same_key_and_body_replay_the_first_answer_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let first = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), "key-1").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(!replayed(&first), "a first answer is not a replay");
    let head = app.head().await;
    let again = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), "key-1").await;
    assert_eq!((again.status, &again.body), (201, &first.body), "the first answer, again");
    assert!(replayed(&again), "{:?}", again.headers);
    assert!(again.content_type.starts_with("application/json"), "{}", again.content_type);
    assert_eq!(app.head().await, head, "nothing was written");
    // Without the key, the same body is a new call (refused as a duplicate).
    app.post_as("u1", "/api/v1/requests", role_request("r")).await.assert_problem(409, "duplicate_request");
}

async fn the_same_key_with_another_call_is_refused_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let first = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), "key-1").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let head = app.head().await;
    let other = post_keyed(&app, "u1", "/api/v1/requests", &role_request("another reason"), "key-1").await;
    other.assert_problem(422, "idempotency_key_reused");
    assert!(!replayed(&other));
    let with_query = post_keyed(&app, "u1", "/api/v1/requests?x=1", &role_request("r"), "key-1").await;
    with_query.assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.head().await, head, "nothing was written");
}

async fn other_callers_and_other_routes_have_their_own_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let head = app.head().await;
    let by_u1 = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), "shared").await;
    let by_u2 = post_keyed(&app, "u2", "/api/v1/requests", &role_request("r"), "shared").await;
    assert_eq!((by_u1.status, by_u2.status), (201, 201), "{:?} {:?}", by_u1.body, by_u2.body);
    assert!(!replayed(&by_u2), "another caller's call acts");
    assert_ne!(by_u1.body["id"], by_u2.body["id"]);
    assert_eq!(by_u2.body["user"], "u2");
    // The same caller and key on another route: another call too.
    let id = by_u1.body["id"].as_str().unwrap();
    let cancel = post_keyed(&app, "u1", &format!("/api/v1/requests/{id}/cancel"), &json!({}), "shared").await;
    assert_eq!(cancel.status, 200, "{:?}", cancel.body);
    assert!(!replayed(&cancel));
    assert_eq!(types_after(&app, head).await, ["RoleRequested", "RoleRequested", "RequestCancelled"]);
}

async fn a_repeated_token_creation_does_not_show_the_secret_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let body = json!({"user": "root", "name": "ci"});
    let first = post_keyed(&app, "root", "/api/v1/tokens", &body, "token-1").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let secret = first.body["token"].as_str().expect("the secret, this once").to_string();
    let head = app.head().await;
    let again = post_keyed(&app, "root", "/api/v1/tokens", &body, "token-1").await;
    assert_eq!(again.status, 201);
    assert!(replayed(&again));
    assert_eq!(again.body["token"], Value::Null, "the secret is not shown again: {:?}", again.body);
    let mut without_secret = first.body.clone();
    without_secret["token"] = Value::Null;
    assert_eq!(again.body, without_secret, "everything else as the first time");
    assert_eq!(app.head().await, head, "no second token");
    let me = app.call(Method::GET, "/api/v1/me", Some(&secret), None).await;
    assert_eq!(me.status, 200, "the first answer's secret works: {:?}", me.body);
}

async fn a_repeated_webhook_creation_does_not_show_the_secret_again(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.webhooks.allow_private = true).await;
    app.bootstrap_admin("root").await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["ScopeCreated"]});
    let first = post_keyed(&app, "root", "/api/v1/webhooks", &body, "hook-1").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(first.body["secret"].as_str().is_some_and(|secret| secret.starts_with("whsec_")), "{:?}", first.body);
    let head = app.head().await;
    let again = post_keyed(&app, "root", "/api/v1/webhooks", &body, "hook-1").await;
    assert_eq!(again.status, 201);
    assert!(replayed(&again));
    assert_eq!(again.body["secret"], Value::Null, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(app.head().await, head, "no second subscription");
    let listed = app.get_as("root", "/api/v1/webhooks").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "{:?}", listed.body);
}

async fn two_processes_on_one_database_share_the_keys(backend: Backend) {
    let first_process = spawn_app(backend).await;
    world(&first_process).await;
    let second_process = first_process.second_process().await;
    let first = post_keyed(&first_process, "u1", "/api/v1/requests", &role_request("r"), "k").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let head = first_process.head().await;
    let again = post_keyed(&second_process, "u1", "/api/v1/requests", &role_request("r"), "k").await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert!(replayed(&again));
    let other = post_keyed(&second_process, "u1", "/api/v1/requests", &role_request("other"), "k").await;
    other.assert_problem(422, "idempotency_key_reused");
    assert_eq!(second_process.head().await, head, "nothing was written by the second process");
}

/// The commit went in but its answer was lost: 503, and the repeat with the key finds the
/// events recorded with the key (no answer was kept) and answers from them, acting once.
async fn a_lost_commit_answer_is_safe_to_repeat_with_its_key(backend: Backend) {
    let first_process = spawn_app(backend).await;
    world(&first_process).await;
    let head = first_process.head().await;
    let body = role_request(roleledger::testing::LOSE_COMMIT_ANSWER);
    let lost = post_keyed(&first_process, "u1", "/api/v1/requests", &body, "lost-1").await;
    lost.assert_problem(503, "commit_outcome_unknown");
    assert!(lost.headers.get("retry-after").is_some(), "{:?}", lost.headers);
    assert_eq!(types_after(&first_process, head).await, ["RoleRequested"], "written all the same");
    // Another call under the key is refused by the writer, which holds the key.
    let other = post_keyed(&first_process, "u1", "/api/v1/requests", &role_request("other"), "lost-1").await;
    other.assert_problem(422, "idempotency_key_reused");
    // The repeat, on this process and on another one, is answered as the first would have been.
    let retried = post_keyed(&first_process, "u1", "/api/v1/requests", &body, "lost-1").await;
    assert_eq!(retried.status, 201, "{:?}", retried.body);
    assert!(replayed(&retried));
    let id = retried.body["id"].as_str().expect("the request's id");
    let shown = first_process.get_as("u1", &format!("/api/v1/requests/{id}")).await;
    assert_eq!((shown.body["status"].as_str(), shown.body["user"].as_str()), (Some("pending"), Some("u1")));
    assert_eq!(retried.body["id"], shown.body["id"]);
    let second_process = first_process.second_process().await;
    let once_more = post_keyed(&second_process, "u1", "/api/v1/requests", &body, "lost-1").await;
    assert_eq!((once_more.status, &once_more.body), (201, &retried.body));
    assert!(replayed(&once_more));
    assert_eq!(types_after(&first_process, head).await, ["RoleRequested"], "one set of events");
}

async fn a_bad_key_is_refused_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let head = app.head().await;
    for key in ["", "with space", "tab\there", &"k".repeat(256)] {
        let answer = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), key).await;
        answer.assert_problem(400, "invalid_idempotency_key");
    }
    let request = app
        .client
        .post(format!("{}/api/v1/requests", app.address))
        .bearer_auth(token_for("u1"))
        .header("Idempotency-Key", "one")
        .header("Idempotency-Key", "two")
        .json(&role_request("r"));
    Answer::from(request.send().await.unwrap()).await.assert_problem(400, "invalid_idempotency_key");
    let non_ascii = app
        .client
        .post(format!("{}/api/v1/requests", app.address))
        .bearer_auth(token_for("u1"))
        .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap())
        .json(&role_request("r"));
    Answer::from(non_ascii.send().await.unwrap()).await.assert_problem(400, "invalid_idempotency_key");
    // The longest key is fine; a key without authentication is answered as any such call.
    let longest = post_keyed(&app, "u1", "/api/v1/requests", &role_request("r"), &"k".repeat(255)).await;
    assert_eq!(longest.status, 201, "{:?}", longest.body);
    let anonymous = app
        .client
        .post(format!("{}/api/v1/requests", app.address))
        .header("Idempotency-Key", "anonymous")
        .json(&role_request("r"));
    Answer::from(anonymous.send().await.unwrap()).await.assert_problem(401, "unauthenticated");
    assert_eq!(app.head().await, head + 1, "only the call with the longest key wrote");
}

async fn a_key_older_than_a_day_no_longer_replays(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let body = json!({"user": "root", "name": "ci"});
    let first = post_keyed(&app, "root", "/api/v1/tokens", &body, "day-old").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let long_ago = match backend {
        Backend::Sqlite => "'2000-01-01T00:00:00.000000Z'",
        Backend::Postgres => "now() - interval '25 hours'",
    };
    for table in ["idempotency_keys", "idempotent_answers"] {
        app.db.execute(&format!("UPDATE {table} SET created_at = {long_ago}")).await;
    }
    let head = app.head().await;
    let later = post_keyed(&app, "root", "/api/v1/tokens", &body, "day-old").await;
    assert_eq!(later.status, 201, "{:?}", later.body);
    assert!(!replayed(&later), "a new call");
    assert!(later.body["token"].is_string() && later.body["id"] != first.body["id"], "{:?}", later.body);
    assert_eq!(types_after(&app, head).await, ["ApiTokenCreated"]);
    // And the new call's key replays from now on.
    let again = post_keyed(&app, "root", "/api/v1/tokens", &body, "day-old").await;
    assert!(replayed(&again) && again.body["id"] == later.body["id"], "{:?}", again.body);
}

/// The client's errors are answered again too (as Stripe does): the repeat does not run again.
async fn a_refusal_is_replayed(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let body = json!({"role": "no-such-role", "scope": "SITE_A", "reason": "r"});
    let first = post_keyed(&app, "u1", "/api/v1/requests", &body, "refused").await;
    first.assert_problem(422, "unknown_role");
    let again = post_keyed(&app, "u1", "/api/v1/requests", &body, "refused").await;
    again.assert_problem(422, "unknown_role");
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
}

/// Two calls with one key at once: the writer decides one, and the other repeats it.
async fn concurrent_repeats_act_once(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let head = app.head().await;
    let body = role_request("r");
    let (one, two) = tokio::join!(
        post_keyed(&app, "u1", "/api/v1/requests", &body, "twice"),
        post_keyed(&app, "u1", "/api/v1/requests", &body, "twice"),
    );
    assert_eq!((one.status, two.status), (201, 201), "{:?} {:?}", one.body, two.body);
    assert_eq!(one.body, two.body);
    assert!(replayed(&one) != replayed(&two), "one acted, the other repeated it");
    assert_eq!(types_after(&app, head).await, ["RoleRequested"]);
}

/// Every POST of the API reads the key (a bad one is refused before anything else), and the
/// OpenAPI document says so.
async fn every_post_of_the_api_takes_a_key(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let head = app.head().await;
    let document: Value = app.get("/openapi.json").await.json().await.expect("the document");
    let posts: Vec<&String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, item)| path.starts_with("/api/v1/") && item.get("post").is_some())
        .map(|(path, _)| path)
        .collect();
    assert!(posts.len() >= 20, "{posts:?}");
    for path in posts {
        let post = &document["paths"][path]["post"];
        let declared = post["parameters"].as_array().into_iter().flatten().any(|parameter| {
            parameter["name"] == "Idempotency-Key" && parameter["in"] == "header" && parameter["required"] == false
        });
        assert!(declared, "{path}: no Idempotency-Key parameter");
        assert!(post["responses"]["422"]["description"].as_str().unwrap().contains("idempotency_key_reused"), "{path}");
        let concrete = path.replace("{id}", "x").replace("{item}", "1").replace("{delivery}", "1");
        let answer = post_keyed(&app, "root", &concrete, &json!({}), "not visible ASCII").await;
        answer.assert_problem(400, "invalid_idempotency_key");
    }
    assert_eq!(app.head().await, head, "nothing was written");
}

on_both_backends!(
    every_post_of_the_api_takes_a_key,
    the_same_key_and_body_replay_the_first_answer_and_write_nothing,
    the_same_key_with_another_call_is_refused_and_writes_nothing,
    other_callers_and_other_routes_have_their_own_keys,
    a_repeated_token_creation_does_not_show_the_secret_again,
    a_repeated_webhook_creation_does_not_show_the_secret_again,
    two_processes_on_one_database_share_the_keys,
    a_lost_commit_answer_is_safe_to_repeat_with_its_key,
    a_bad_key_is_refused_and_writes_nothing,
    a_key_older_than_a_day_no_longer_replays,
    a_refusal_is_replayed,
    concurrent_repeats_act_once,
);
