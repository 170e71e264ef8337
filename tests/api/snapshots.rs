//! Snapshots of the read model, over real HTTP on both backends: a server with a small
//! `--snapshot-every` stores them; a restart loads the newest and answers `verify` and `as_of`
//! exactly as before; snapshots that are not valid (wrong MAC, changed body, another chain hash,
//! workflow or format) are ignored and the start folds the whole log; one made with the key but
//! holding another state is reported by `verify` (HTTP and the command line).

use std::sync::Arc;

use roleledger::{
    configuration::TEST_SNAPSHOT_KEY,
    projections::{
        snapshot::{Sealer, FORMAT_VERSION},
        DomainModel,
    },
    store::{RecordedEvent, StoredSnapshot},
    workflow::Workflow,
};
use serde_json::{json, Value};

use crate::{
    helpers::{default_workflow, spawn_app_with, TestApp},
    support::{eventually, Backend},
};

const EVERY: u64 = 50;

/// A history of about 130 events: grants assigned, some revoked, requests asked and approved.
async fn history(app: &TestApp) {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    for round in 0..30 {
        let (user, site) = (format!("u{round}"), ["SITE_A", "SITE_B"][round % 2]);
        let grant = app.assign("root", &user, "site-security-officer", site).await;
        if round % 3 == 0 {
            let revoked = app.post_as("root", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "r"})).await;
            assert_eq!(revoked.status, 200, "{:?}", revoked.body);
        }
        let body = json!({"role": "site-administrator", "scope": site, "reason": "on duty"});
        let asked = app.post_as(&user, "/api/v1/requests", body).await;
        if asked.status == 201 {
            let id = asked.body["id"].as_str().unwrap();
            let approved =
                app.post_as("root", &format!("/api/v1/requests/{id}/approve"), json!({"comment": "ok"})).await;
            assert_eq!(approved.status, 200, "{:?}", approved.body);
        }
    }
}

fn metric(text: &str, name: &str) -> i64 {
    let line = text.lines().find(|line| line.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

/// Where the start of `app` began: (the snapshot's position, the events folded beyond it).
async fn start_of(app: &TestApp) -> (i64, i64) {
    let text = metrics(app).await;
    (metric(&text, "roleledger_start_snapshot_position"), metric(&text, "roleledger_start_folded_events"))
}

/// What a restart must answer alike: verify, and the grants as of several positions and now.
async fn answers(app: &TestApp) -> Vec<Value> {
    let verify = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(verify.status, 200, "{:?}", verify.body);
    let mut answers = vec![verify.body];
    let head = app.head().await;
    for as_of in [1, 20, 60, head - 7, head] {
        let grants = app.get_as("root", &format!("/api/v1/grants?as_of={as_of}&limit=1000")).await;
        assert_eq!(grants.status, 200, "{:?}", grants.body);
        answers.push(grants.body);
    }
    let now = app.get_as("root", "/api/v1/grants?limit=1000").await;
    answers.push(now.body);
    answers
}

/// Snapshots read and checked, but none due within the history: only the ones a test stores.
fn none_of_its_own(settings: &mut roleledger::configuration::Settings) {
    settings.snapshots.every = 1_000_000;
}

fn snapshotting(settings: &mut roleledger::configuration::Settings) {
    settings.snapshots.every = EVERY;
}

async fn a_restart_loads_the_newest_snapshot_and_answers_the_same(backend: Backend) {
    let app = spawn_app_with(backend, snapshotting).await;
    history(&app).await;
    let head = app.head().await;
    assert!(head > 2 * EVERY as i64, "a history of {head} events");
    // The last snapshot due: none is due after one within EVERY of the head.
    let newest = || async { metric(&metrics(&app).await, "roleledger_snapshot_position") };
    eventually("the snapshots", 30, || async { newest().await > head - EVERY as i64 }).await;
    let stored = app.store.snapshots().positions().await.unwrap();
    assert_eq!(stored.first().copied(), Some(newest().await), "the newest snapshot is in the database");
    assert!(stored.len() >= 2 && stored.len() <= 3, "the newest few are kept: {stored:?}");
    let before = answers(&app).await;
    assert_eq!(before[0]["ok"], true, "{}", before[0]);

    let restarted = app.second_process_with(snapshotting).await;
    assert_eq!(start_of(&restarted).await, (stored[0], head - stored[0]), "loaded the newest, folded the tail");
    assert_eq!(answers(&restarted).await, before);
    assert_eq!(start_of(&app).await, (0, 0), "the first start found an empty log and no snapshot");
}

/// The snapshot of the model at the head, made with the servers' key.
async fn sealed_at_head(app: &TestApp) -> (Sealer, StoredSnapshot) {
    let workflow = Arc::new(Workflow::load(default_workflow()).unwrap());
    let sealer = Sealer::new(TEST_SNAPSHOT_KEY.as_bytes().to_vec(), workflow);
    let head = app.store.head().await.unwrap();
    let model = app.application.read_model(DomainModel::clone);
    assert_eq!(model.position(), head.position);
    let snapshot = sealer.seal(&model, head.hash);
    (sealer, snapshot)
}

async fn snapshots_that_are_not_valid_are_ignored(backend: Backend) {
    let app = spawn_app_with(backend, none_of_its_own).await;
    history(&app).await;
    let head = app.head().await;
    let before = answers(&app).await;
    assert_eq!(before[0]["ok"], true, "{}", before[0]);
    let (sealer, good) = sealed_at_head(&app).await;
    let reseal = |position: i64, chain_hash: &str, digest: &str, format: i32| {
        sealer.seal_body(position, chain_hash.into(), digest.into(), format, good.body.clone())
    };
    let log_hash = |position: i64| {
        let snapshots = app.store.snapshots();
        async move { snapshots.hash_at(position).await.unwrap().unwrap() }
    };
    let mut wrong_mac = reseal(head - 5, &log_hash(head - 5).await, &good.workflow_digest, FORMAT_VERSION);
    wrong_mac.mac[0] ^= 1;
    let mut changed_body = reseal(head - 4, &log_hash(head - 4).await, &good.workflow_digest, FORMAT_VERSION);
    *changed_body.body.last_mut().unwrap() ^= 1;
    // The head's hash, recorded for an earlier position.
    let other_chain = reseal(head - 3, &good.chain_hash, &good.workflow_digest, FORMAT_VERSION);
    let other_workflow = reseal(head - 2, &log_hash(head - 2).await, &"0".repeat(64), FORMAT_VERSION);
    let other_format = reseal(head - 1, &log_hash(head - 1).await, &good.workflow_digest, FORMAT_VERSION + 1);
    for (what, snapshot) in [
        ("a wrong MAC", wrong_mac),
        ("a changed body", changed_body),
        ("another chain hash", other_chain),
        ("another workflow", other_workflow),
        ("another format version", other_format),
    ] {
        app.store.snapshots().save(&snapshot).await.unwrap();
        let restarted = app.second_process().await;
        assert_eq!(start_of(&restarted).await, (0, head), "a snapshot with {what} is ignored: folded from 0");
        assert_eq!(answers(&restarted).await, before, "with {what}");
    }
    assert_eq!(app.head().await, head, "nothing was written");
    // The good one is used.
    app.store.snapshots().save(&good).await.unwrap();
    let restarted = app.second_process().await;
    assert_eq!(start_of(&restarted).await, (head, 0));
    assert_eq!(answers(&restarted).await, before);
}

async fn verify_reports_a_snapshot_that_differs_from_the_fold(backend: Backend) {
    let app = spawn_app_with(backend, none_of_its_own).await;
    history(&app).await;
    let head = app.store.head().await.unwrap();
    // The log folded with one grant's end changed: a model the log never had, made with the key.
    let workflow = Arc::new(Workflow::load(default_workflow()).unwrap());
    let mut forged = DomainModel::new(workflow.clone());
    let mut changed = None;
    for mut event in app.store.read_page(0, 10_000).await.unwrap() {
        if changed.is_none() && event.event_type == "RoleGranted" {
            event.data["ends_at"] = json!("2099-01-01T00:00:00Z");
            changed = Some(event.clone());
        }
        forged.apply(&event);
    }
    let changed: RecordedEvent = changed.expect("a grant in the history");
    let sealer = Sealer::new(TEST_SNAPSHOT_KEY.as_bytes().to_vec(), workflow);
    app.store.snapshots().save(&sealer.seal(&forged, head.hash.clone())).await.unwrap();

    let verify = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(verify.status, 200, "{:?}", verify.body);
    assert_eq!(verify.body["ok"], false, "{}", verify.body);
    let problem = verify.body["problem"]["problem"].as_str().unwrap();
    assert!(problem.contains("of the newest snapshot differ from a rebuild"), "{problem}");
    assert!(problem.contains(&changed.stream), "names the grant's stream: {problem}");
    assert_eq!(verify.body["problem"]["position"], changed.position, "{}", verify.body);

    let output = app.cli(&["verify", "--snapshot-key", TEST_SNAPSHOT_KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("of the newest snapshot differ from a rebuild"), "{said}");
}

on_both_backends!(
    a_restart_loads_the_newest_snapshot_and_answers_the_same,
    snapshots_that_are_not_valid_are_ignored,
    verify_reports_a_snapshot_that_differs_from_the_fold,
);
