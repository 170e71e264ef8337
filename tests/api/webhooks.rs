//! Webhooks, end to end: subscriptions over HTTP, events posted to a receiver on loopback that
//! verifies every delivery with the `standardwebhooks` library from PyPI (`tests/webhooks/receiver.py`,
//! installed by `scripts/python-tools` into the OpenAPI tools' venv), in log order, once per
//! subscription; outages, dead deliveries and their retry, filters, refusals, two processes.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use roleledger::{configuration::Settings, mail::RetryPolicy, store::DeliveryState};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, TestApp},
    support::{eventually, Backend},
    web::{csrf_in, Web},
};

/// The receiver, a Python process verifying with `standardwebhooks.Webhook(secret).verify`.
pub(crate) struct Receiver {
    child: Child,
    pub port: u16,
    client: reqwest::Client,
}

/// The venv's Python, where `scripts/python-tools` installs `standardwebhooks`.
fn venv_python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"));
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(target).join("venv-openapi/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-tools (scripts/test does) to install standardwebhooks",
        python.display()
    );
    python
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the receiver says its port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the receiver's first line is its port: {line:?}"));
        Receiver { child, port, client: reqwest::Client::new() }
    }

    /// The URL that delivers to `name` (verified with the secret given for `name`).
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hook/{name}", self.port)
    }

    async fn put(&self, path: &str, body: &str) {
        let answer = self.client.put(format!("http://127.0.0.1:{}{path}", self.port)).body(body.to_string()).send();
        assert_eq!(answer.await.expect("the receiver answers").status(), 204);
    }

    pub(crate) async fn secret(&self, name: &str, secret: &str) {
        self.put(&format!("/control/secret/{name}"), secret).await;
    }

    /// up, down (500), redirect (302), garbage (not HTTP) or hang (no answer).
    pub(crate) async fn mode(&self, mode: &str) {
        self.put("/control/mode", mode).await;
    }

    /// Deliveries to `name` alone get no answer.
    async fn hang(&self, name: &str) {
        self.put(&format!("/control/hang/{name}"), "").await;
    }

    async fn get(&self, path: &str) -> Value {
        let answer = self.client.get(format!("http://127.0.0.1:{}{path}", self.port)).send().await.unwrap();
        answer.json().await.unwrap()
    }

    /// The verified deliveries to `name`, in arrival order: (webhook-id, the event).
    pub(crate) async fn received(&self, name: &str) -> Vec<(String, Value)> {
        let all = self.get("/control/received").await;
        all.as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["name"] == name)
            .map(|entry| {
                let event = serde_json::from_str(entry["body"].as_str().unwrap()).expect("the body is JSON");
                (entry["id"].as_str().unwrap().to_string(), event)
            })
            .collect()
    }

    pub(crate) async fn attempts(&self) -> u64 {
        self.get("/control/attempts").await.as_u64().unwrap()
    }

    /// Deliveries that did not verify: none, ever.
    async fn assert_nothing_rejected(&self) {
        assert_eq!(self.get("/control/rejected").await, json!([]));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries within milliseconds, so that ten attempts take a second or two.
fn quick_retries(max_attempts: i32) -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts,
        poll: Duration::from_millis(50),
        rate: None,
    }
}

fn allowing_loopback(settings: &mut Settings) {
    settings.webhooks.allow_private = true;
    settings.webhooks.retry = quick_retries(10);
}

/// A server whose webhooks may post to the loopback receiver, with root as administrator.
async fn app(backend: Backend) -> TestApp {
    let app = spawn_app_with(backend, allowing_loopback).await;
    app.bootstrap_admin("root").await;
    app
}

/// Subscribes `name` of the receiver with `body`'s filters; the subscription (with its secret,
/// which the receiver now verifies with).
async fn subscribe(app: &TestApp, receiver: &Receiver, name: &str, filters: Value) -> Value {
    let mut body = json!({"url": receiver.url(name), "description": format!("{name} for the tests")});
    body.as_object_mut().unwrap().extend(filters.as_object().unwrap().clone());
    let created = app.post_as("root", "/api/v1/webhooks", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    receiver.secret(name, created.body["secret"].as_str().unwrap()).await;
    created.body
}

/// The log after `position`, as the export has it (one JSON object an event).
async fn log_after(app: &TestApp, position: i64) -> Vec<Value> {
    let answer = app
        .client
        .get(format!("{}/api/v1/events?after={position}", app.address))
        .bearer_auth(crate::helpers::token_for("root"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    let text = answer.text().await.unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn positions(received: &[(String, Value)]) -> Vec<i64> {
    received.iter().map(|(_, event)| event["position"].as_i64().unwrap()).collect()
}

/// Waits until `name` received `count` deliveries.
async fn received_count(receiver: &Receiver, name: &str, count: usize) -> Vec<(String, Value)> {
    let what = format!("{count} deliveries to {name}");
    eventually(&what, 30, || async { receiver.received(name).await.len() >= count }).await;
    receiver.received(name).await
}

/// Some events of every kind of place: scopes, users, grants, a request.
async fn some_history(app: &TestApp) {
    app.egi_tree("root").await;
    app.assign("root", "alice", "site-administrator", "SITE_A").await;
    app.sign_in("bob").await;
    let asked = json!({"role": "site-security-officer", "scope": "SITE_A", "reason": "on duty"});
    assert_eq!(app.post_as("bob", "/api/v1/requests", asked).await.status, 201);
}

async fn every_event_arrives_signed_as_in_the_export(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    let created = subscribe(&app, &receiver, "all", json!({})).await;
    let after = app.head().await;
    some_history(&app).await;
    let log = log_after(&app, after).await;
    assert!(log.len() >= 8, "{log:?}");
    let received = received_count(&receiver, "all", log.len()).await;
    // Each event once, in log order, exactly as its line of the export.
    assert_eq!(received.iter().map(|(_, event)| event.clone()).collect::<Vec<_>>(), log);
    for (id, event) in &received {
        let event_id = event["event_id"].as_str().unwrap().replace('-', "");
        assert_eq!(id, &format!("msg_{event_id}_{}", created["id"].as_str().unwrap()));
    }
    receiver.assert_nothing_rejected().await;
    let id = created["id"].as_str().unwrap();
    // The worker records each delivery once the receiver has answered.
    let path = format!("/api/v1/webhooks/{id}/deliveries?state=delivered");
    let delivered = || async { app.get_as("root", &path).await.body["items"].as_array().unwrap().len() };
    eventually("the deliveries to be recorded", 20, || async { delivered().await == log.len() }).await;
    assert_eq!(app.get_as("root", &path).await.body["items"][0]["last_status"], 204);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(&format!("roleledger_webhook_delivered_total {}", log.len())), "{metrics}");
    assert!(metrics.contains(&format!("roleledger_webhook_deliveries{{state=\"delivered\"}} {}", log.len())));
}

async fn a_receiver_down_for_a_while_gets_everything_after_once_in_log_order(backend: Backend) {
    let receiver = Receiver::start();
    receiver.mode("down").await;
    let app = app(backend).await;
    subscribe(&app, &receiver, "later", json!({})).await;
    let after = app.head().await;
    some_history(&app).await;
    eventually("failed attempts", 20, || async { receiver.attempts().await >= 3 }).await;
    // Only the first event is tried while it fails: the others wait behind it.
    assert!(receiver.received("later").await.is_empty());
    receiver.mode("up").await;
    let log = log_after(&app, after).await;
    let received = received_count(&receiver, "later", log.len()).await;
    assert_eq!(positions(&received), log.iter().map(|e| e["position"].as_i64().unwrap()).collect::<Vec<_>>());
    let mut ids: Vec<&String> = received.iter().map(|(id, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), log.len(), "each event once");
    receiver.assert_nothing_rejected().await;
}

async fn filters_by_event_type_and_scope_subtree_deliver_exactly_the_matching_events(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    for (id, kind, parents) in [("EGI", "project", vec![]), ("NGI_A", "ngi", vec!["EGI"])] {
        assert_eq!(app.create_scope("root", id, kind, &parents).await.status, 201);
    }
    subscribe(&app, &receiver, "grants", json!({"events": ["RoleGranted", "GrantRevoked"]})).await;
    subscribe(&app, &receiver, "ngi", json!({"scope": "NGI_A"})).await;
    subscribe(&app, &receiver, "ngi-requests", json!({"scope": "NGI_A", "events": ["RoleRequested"]})).await;
    assert_eq!(app.create_scope("root", "SITE_A", "site", &["NGI_A"]).await.status, 201);
    assert_eq!(app.create_scope("root", "OTHER", "project", &[]).await.status, 201);
    let on_site = app.assign("root", "alice", "site-administrator", "SITE_A").await;
    app.assign("root", "carol", "cod-staff", "EGI").await;
    app.assign("root", "dave", "cod-staff", "OTHER").await;
    app.sign_in("bob").await;
    let asked = json!({"role": "site-security-officer", "scope": "SITE_A", "reason": "on duty"});
    assert_eq!(app.post_as("bob", "/api/v1/requests", asked).await.status, 201);
    let revoked = app.post_as("root", &format!("/api/v1/grants/{on_site}/revoke"), json!({"reason": "done"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    // The revocation is the last event each of the first two subscriptions matches: once it has
    // arrived, everything before it has (log order), and nothing else is on its way.
    let types = |received: Vec<(String, Value)>| {
        received
            .into_iter()
            .map(|(_, e)| format!("{} {}", e["type"].as_str().unwrap(), e["stream"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    let grants = types(received_count(&receiver, "grants", 4).await);
    assert_eq!(grants.len(), 4, "{grants:?}");
    assert!(grants[..3].iter().all(|g| g.starts_with("RoleGranted")), "{grants:?}");
    assert!(grants[3].starts_with("GrantRevoked"), "{grants:?}");
    let ngi = types(received_count(&receiver, "ngi", 4).await);
    assert_eq!(
        ngi,
        [
            "ScopeCreated scope-SITE_A".to_string(),
            format!("RoleGranted grant-{on_site}"),
            ngi[2].clone(),
            format!("GrantRevoked grant-{on_site}"),
        ]
    );
    assert!(ngi[2].starts_with("RoleRequested request-"), "{ngi:?}");
    let requests = types(received_count(&receiver, "ngi-requests", 1).await);
    assert_eq!(requests, [ngi[2].clone()]);
    receiver.assert_nothing_rejected().await;
}

async fn refusals_write_nothing(backend: Backend) {
    // Without --webhook-allow-private.
    let app = spawn_app_with(backend, |_| {}).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.sign_in("alice").await;
    let head = app.head().await;
    let create = |body: Value| app.post_as("root", "/api/v1/webhooks", body);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "http://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8080/",
    ] {
        create(json!({"url": url})).await.assert_problem(422, "webhook_target_refused");
    }
    for url in ["ftp://example.org/hook", "not a url", "http://user:secret@8.8.8.8/"] {
        create(json!({"url": url})).await.assert_problem(422, "invalid_url");
    }
    let unknown_type = json!({"url": "https://8.8.8.8/hook", "events": ["RoleGranted", "Nonsense"]});
    create(unknown_type).await.assert_problem(422, "unknown_event_type");
    create(json!({"url": "https://8.8.8.8/hook", "scope": "NOWHERE"})).await.assert_problem(422, "unknown_scope");
    create(json!({"url": "https://8.8.8.8/hook", "colour": "red"})).await.assert_problem(400, "malformed_body");
    // Not an admin: refused before the target is looked at, and every route.
    let by_alice = app.post_as("alice", "/api/v1/webhooks", json!({"url": "https://8.8.8.8/hook"})).await;
    by_alice.assert_problem(403, "forbidden");
    app.get_as("alice", "/api/v1/webhooks").await.assert_problem(403, "forbidden");
    let some_id = uuid::Uuid::new_v4();
    app.delete_as("alice", &format!("/api/v1/webhooks/{some_id}")).await.assert_problem(403, "forbidden");
    app.get_as("alice", &format!("/api/v1/webhooks/{some_id}/deliveries")).await.assert_problem(403, "forbidden");
    let retry = format!("/api/v1/webhooks/{some_id}/deliveries/1/retry");
    app.post_as("alice", &retry, json!({})).await.assert_problem(403, "forbidden");
    app.delete_as("root", &format!("/api/v1/webhooks/{some_id}")).await.assert_problem(404, "not_found");
    assert_eq!(app.head().await, head, "nothing was written");
    // An auditor reads the log, and changes nothing: refused as on every writing route.
    app.assign("root", "aud", "auditor", "global").await;
    let head = app.head().await;
    let by_auditor = app.post_as("aud", "/api/v1/webhooks", json!({"url": "https://8.8.8.8/hook"})).await;
    by_auditor.assert_problem(403, "read_only");
    app.delete_as("aud", &format!("/api/v1/webhooks/{some_id}")).await.assert_problem(403, "read_only");
    app.post_as("aud", &retry, json!({})).await.assert_problem(403, "read_only");
    assert_eq!(app.head().await, head, "nothing was written");
    assert_eq!(app.get_as("root", "/api/v1/webhooks").await.body["items"], json!([]));
}

async fn the_secret_is_shown_once_and_kept_out_of_the_log(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    let created = subscribe(&app, &receiver, "quiet", json!({"events": ["ScopeCreated"]})).await;
    let secret = created["secret"].as_str().unwrap();
    let key = secret.strip_prefix("whsec_").expect("a whsec_ secret");
    use base64::{engine::general_purpose::STANDARD, Engine};
    assert!(STANDARD.decode(key).unwrap().len() >= 24);
    let listed = app.get_as("root", "/api/v1/webhooks").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["id"], created["id"]);
    assert!(listed.body["items"][0].get("secret").is_none());
    assert!(!listed.body.to_string().contains(key));
    let log = log_after(&app, 0).await;
    let made = log.iter().find(|e| e["type"] == "WebhookCreated").expect("the event");
    let mut fields: Vec<&String> = made["data"].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["at", "by", "description", "events", "scope", "url", "webhook"]);
    assert!(!serde_json::to_string(&log).unwrap().contains(key));
    let export = app.cli(&["export"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let export = String::from_utf8(export.stdout).unwrap();
    assert!(export.contains("WebhookCreated") && !export.contains(key));
}

async fn dead_after_ten_attempts_later_ones_go_and_a_retry_delivers_it(backend: Backend) {
    let receiver = Receiver::start();
    receiver.mode("down").await;
    let app = app(backend).await;
    let created = subscribe(&app, &receiver, "flaky", json!({"events": ["ScopeCreated"]})).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.create_scope("root", "FIRST", "project", &[]).await.status, 201);
    let dead = || async { app.get_as("root", &format!("/api/v1/webhooks/{id}/deliveries?state=dead")).await.body };
    eventually("the first delivery to be dead", 30, || async { dead().await["items"] != json!([]) }).await;
    let dead = dead().await["items"][0].clone();
    assert_eq!((dead["attempts"].as_i64(), dead["last_status"].as_i64()), (Some(10), Some(500)), "{dead:?}");
    assert_eq!(receiver.attempts().await, 10);
    receiver.mode("up").await;
    // The next event no longer waits behind the dead one.
    assert_eq!(app.create_scope("root", "SECOND", "project", &[]).await.status, 201);
    let received = received_count(&receiver, "flaky", 1).await;
    assert_eq!(received[0].1["stream"], "scope-SECOND");
    let head = app.head().await;
    let retry = format!("/api/v1/webhooks/{id}/deliveries/{}/retry", dead["id"]);
    let retried = app.post_as("root", &retry, json!({})).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["state"], "pending");
    assert_eq!(app.head().await, head, "a retry is no event");
    let received = received_count(&receiver, "flaky", 2).await;
    assert_eq!(received[1].1["stream"], "scope-FIRST");
    // Only a dead delivery is retried; an unknown one is not found.
    app.post_as("root", &retry, json!({})).await.assert_problem(409, "not_dead");
    let unknown = format!("/api/v1/webhooks/{id}/deliveries/999999/retry");
    app.post_as("root", &unknown, json!({})).await.assert_problem(404, "not_found");
    receiver.assert_nothing_rejected().await;
}

async fn a_deleted_subscription_gets_nothing_more(backend: Backend) {
    let receiver = Receiver::start();
    receiver.mode("down").await;
    let app = app(backend).await;
    let created = subscribe(&app, &receiver, "gone", json!({})).await;
    let id = created["id"].as_str().unwrap().to_string();
    app.sign_in("alice").await;
    eventually("a failed attempt", 20, || async { receiver.attempts().await >= 1 }).await;
    assert_eq!(app.delete_as("root", &format!("/api/v1/webhooks/{id}")).await.status, 204);
    receiver.mode("up").await;
    let store = app.store.clone();
    eventually("the pending delivery to be dead", 20, || async {
        let rows = store.deliveries(&id, None, 0, 10).await.unwrap();
        rows.iter().all(|row| row.state == DeliveryState::Dead)
            && rows.iter().any(|row| row.last_error.as_deref() == Some("the subscription was deleted"))
    })
    .await;
    assert!(receiver.received("gone").await.is_empty());
    assert_eq!(app.get_as("root", "/api/v1/webhooks").await.body["items"], json!([]));
    app.get_as("root", &format!("/api/v1/webhooks/{id}/deliveries")).await.assert_problem(404, "not_found");
}

async fn receivers_that_redirect_answer_garbage_or_hang_do_not_stop_the_worker(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    let created = subscribe(&app, &receiver, "odd", json!({"events": ["UserRegistered"]})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let store = app.store.clone();
    let last_status = || async { store.deliveries(&id, None, 0, 10).await.unwrap()[0].last_status };
    receiver.mode("redirect").await;
    app.sign_in("alice").await;
    eventually("a redirect to count as a failure", 20, || async { last_status().await == Some(302) }).await;
    receiver.mode("garbage").await;
    let before = receiver.attempts().await;
    eventually("garbage answers", 20, || async { receiver.attempts().await >= before + 2 }).await;
    receiver.mode("hang").await;
    let before = receiver.attempts().await;
    eventually("a hanging attempt", 20, || async { receiver.attempts().await > before }).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    receiver.mode("up").await;
    // The hanging attempt times out (10 s), and the retry is delivered.
    let received = received_count(&receiver, "odd", 1).await;
    assert_eq!(received[0].1["type"], "UserRegistered");
    assert_eq!(app.get("/readyz").await.status(), 200);
    receiver.assert_nothing_rejected().await;
}

async fn a_receiver_that_hangs_holds_up_only_its_own_subscription(backend: Backend) {
    let receiver = Receiver::start();
    receiver.hang("stuck").await;
    let app = app(backend).await;
    let stuck = subscribe(&app, &receiver, "stuck", json!({"events": ["UserRegistered"]})).await;
    subscribe(&app, &receiver, "steady", json!({"events": ["UserRegistered"]})).await;
    for user in ["alice", "bob", "carol"] {
        app.sign_in(user).await;
    }
    let steady = received_count(&receiver, "steady", 3).await;
    assert_eq!(steady.len(), 3);
    // Meanwhile the stuck subscription is still in its first attempt (10 s until it times out).
    let rows = app.store.deliveries(stuck["id"].as_str().unwrap(), None, 0, 10).await.unwrap();
    assert_eq!((rows[0].attempts, rows[0].last_error.as_deref()), (1, None), "{rows:?}");
    assert!(rows[1..].iter().all(|row| row.attempts == 0 && row.state == DeliveryState::Pending));
    receiver.assert_nothing_rejected().await;
}

/// A webhook worker that stopped (only a panic stops it) fails readiness naming it, as the writer does.
async fn a_stopped_webhook_worker_fails_readiness_naming_it(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    subscribe(&app, &receiver, "any", json!({"events": ["RoleRequested"]})).await;
    app.egi_tree("root").await;
    app.sign_in("alice").await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let reason = roleledger::testing::STOP_WEBHOOK_WORKER;
    let asked = json!({"role": "site-administrator", "scope": "SITE_A", "reason": reason});
    assert_eq!(app.post_as("alice", "/api/v1/requests", asked).await.status, 201);
    let stopped = || async { app.get("/readyz").await.status() == 503 };
    eventually("readiness to fail", 20, stopped).await;
    let problem: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(problem["code"], "task_stopped", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("the webhook delivery task stopped"), "{problem}");
}

async fn two_processes_deliver_each_event_once_in_order(backend: Backend) {
    let receiver = Receiver::start();
    let first = app(backend).await;
    let second = first.second_process_with(allowing_loopback).await;
    subscribe(&first, &receiver, "shared", json!({"events": ["UserRegistered"]})).await;
    for n in 0..15 {
        first.sign_in(&format!("first-{n}")).await;
        second.sign_in(&format!("second-{n}")).await;
    }
    let received = received_count(&receiver, "shared", 30).await;
    let positions = positions(&received);
    let mut sorted = positions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(positions, sorted, "once each, in log order");
    assert_eq!(positions.len(), 30);
    receiver.assert_nothing_rejected().await;
}

/// The value of the page's read-only field `id`.
fn field_value(page: &str, id: &str) -> String {
    let field = format!("id=\"{id}\" readonly value=\"");
    let start = page.find(&field).expect("the field") + field.len();
    page[start..].split('"').next().unwrap().to_string()
}

async fn the_admin_page_subscribes_lists_deliveries_retries_and_deletes(backend: Backend) {
    let receiver = Receiver::start();
    let app = app(backend).await;
    app.sign_in("manager").await;
    let root = Web::sign_in(&app, "root").await;
    let page = root.page("/ui/admin/webhooks").await;
    assert!(page.contains("id=\"no-webhooks\""), "{page}");
    let csrf = csrf_in(&page);
    // Someone who is not an admin sees a 403 page and changes nothing.
    let manager = Web::sign_in(&app, "manager").await;
    let head = app.head().await;
    let form = [("csrf", csrf.as_str()), ("url", "http://127.0.0.1:9/hook")];
    assert_eq!(manager.post("/ui/admin/webhooks", &form).await.status(), 403);
    assert_eq!(app.head().await, head);
    let refused = root.post("/ui/admin/webhooks", &[("csrf", &csrf), ("url", "ftp://example.org/")]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("id=\"refusal\""));
    assert_eq!(app.head().await, head);
    let url = receiver.url("page");
    let fields =
        [("csrf", csrf.as_str()), ("url", &url), ("events", "UserRegistered"), ("description", "from the page")];
    let created = root.post("/ui/admin/webhooks", &fields).await;
    assert_eq!(created.status(), 201);
    let secret = field_value(&created.text().await.unwrap(), "new-secret");
    assert!(secret.starts_with("whsec_"));
    receiver.secret("page", &secret).await;
    receiver.mode("down").await;
    app.sign_in("alice").await;
    let dead = || async { root.page("/ui/admin/webhooks").await.contains("<td data-label=\"State\">dead</td>") };
    eventually("a dead delivery on the page", 30, dead).await;
    let page = root.page("/ui/admin/webhooks").await;
    assert!(page.contains(&url) && page.contains("from the page") && !page.contains(&secret), "{page}");
    receiver.mode("up").await;
    let retry = page.split("action=\"").find(|part| part.contains("/retry\"")).expect("a Retry form");
    let retry = retry.split('"').next().unwrap();
    assert_eq!(root.post(retry, &[("csrf", &csrf)]).await.status(), 303);
    assert_eq!(received_count(&receiver, "page", 1).await[0].1["type"], "UserRegistered");
    let delete = page.split("action=\"").find(|part| part.contains("/delete\"")).unwrap().split('"').next().unwrap();
    assert_eq!(root.post(delete, &[("csrf", &csrf)]).await.status(), 303);
    assert!(root.page("/ui/admin/webhooks").await.contains("id=\"no-webhooks\""));
}

on_both_backends!(
    every_event_arrives_signed_as_in_the_export,
    a_receiver_down_for_a_while_gets_everything_after_once_in_log_order,
    filters_by_event_type_and_scope_subtree_deliver_exactly_the_matching_events,
    refusals_write_nothing,
    the_secret_is_shown_once_and_kept_out_of_the_log,
    dead_after_ten_attempts_later_ones_go_and_a_retry_delivers_it,
    a_deleted_subscription_gets_nothing_more,
    receivers_that_redirect_answer_garbage_or_hang_do_not_stop_the_worker,
    two_processes_deliver_each_event_once_in_order,
    a_receiver_that_hangs_holds_up_only_its_own_subscription,
    a_stopped_webhook_worker_fails_readiness_naming_it,
    the_admin_page_subscribes_lists_deliveries_retries_and_deletes,
);
