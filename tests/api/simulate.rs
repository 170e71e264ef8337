//! Policy simulation over HTTP, the command line and the audit page: the EGI story's history
//! judged under candidate workflows, nothing written.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, token_for, Answer, TestApp},
    support::{eventually, Backend},
    web::{csrf_in, Web},
};

const EGI: &str = include_str!("../../workflows/egi.toml");

/// The site rule without the NGI deciders: NGI managers no longer decide a site's roles.
fn without_ngi_deciders_of_sites() -> String {
    let dropped = "  \"ngi-security-officer@parent\",\n  \"ngi-operations-deputy-manager@parent\",\n  \"ngi-operations-manager@parent\",\n";
    assert!(EGI.contains(dropped));
    EGI.replacen(dropped, "", 1)
}

/// Site administrators may hold their role 30 days at most.
fn site_administrators_for_30_days() -> String {
    let role = "[roles.site-administrator]\n";
    assert!(EGI.contains(role));
    EGI.replacen(role, &format!("{role}max_duration = \"P30D\"\n"), 1)
}

/// Line 4 of this candidate names a key no workflow has.
const BROKEN: &str = "name = \"broken\"\n\n[settings]\nno_such_key = 1\n";

/// The EGI story with two NGI managers' site approvals: root (admin), aud (auditor), ngi
/// (ngi-operations-manager on NGI_A), manager (site-operations-manager on SITE_A); ngi approves
/// alice on SITE_A and bob on SITE_B, manager approves carol on SITE_A. The positions of ngi's approvals.
async fn story(app: &TestApp) -> Vec<i64> {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    app.assign("root", "ngi", "ngi-operations-manager", "NGI_A").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    let mut approvals = Vec::new();
    for (user, role, site, decider) in [
        ("alice", "site-administrator", "SITE_A", "ngi"),
        ("bob", "site-security-officer", "SITE_B", "ngi"),
        ("carol", "site-administrator", "SITE_A", "manager"),
    ] {
        app.sign_in(user).await;
        let asked =
            app.post_as(user, "/api/v1/requests", json!({"role": role, "scope": site, "reason": "I run it"})).await;
        assert_eq!(asked.status, 201, "{:?}", asked.body);
        let id = asked.body["id"].as_str().unwrap();
        let approved = app.post_as(decider, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(approved.status, 200, "{:?}", approved.body);
        if decider == "ngi" {
            let history = app.get_as("root", &format!("/api/v1/requests/{id}")).await.body["history"].clone();
            let approval = history.as_array().unwrap().iter().find(|e| e["type"] == "RequestApproved").unwrap();
            approvals.push(approval["position"].as_i64().unwrap());
        }
    }
    approvals
}

/// `POST /api/v1/audit/simulate` with a body of the given media type.
async fn simulate_as(app: &TestApp, user: &str, query: &str, content_type: &str, body: &str) -> Answer {
    let request = app
        .client
        .post(format!("{}/api/v1/audit/simulate{query}", app.address))
        .bearer_auth(token_for(user))
        .header("content-type", content_type)
        .body(body.to_string());
    Answer::from(request.send().await.expect("the server answers")).await
}

/// The kinds and users of an answer's differences, in order.
fn kinds_and_users(answer: &Value) -> Vec<(String, String)> {
    let differences = answer["differences"].as_array().expect("differences");
    differences.iter().map(|d| (d["kind"].as_str().unwrap().into(), d["user"].as_str().unwrap().into())).collect()
}

/// The log's head and the mail written, once the outbox is empty: neither moves when a
/// simulation runs (a mail it queued would wait in the outbox or be among the files).
async fn what_was_written(app: &TestApp) -> (i64, usize) {
    let empty = || async { app.get_as("root", "/api/v1/outbox?state=pending").await.body["items"] == json!([]) };
    eventually("the outbox to be sent", 20, empty).await;
    (app.head().await, std::fs::read_dir(app.mail_dir.path()).unwrap().count())
}

/// Writes a candidate into a temporary folder for the command line.
fn candidate_file(folder: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = folder.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn ngi_managers_losing_site_authority_lists_their_site_approvals(backend: Backend) {
    let app = spawn_app(backend).await;
    let approvals = story(&app).await;
    let written = what_was_written(&app).await;

    let answer = simulate_as(&app, "aud", "", "application/toml", &without_ngi_deciders_of_sites()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let decisions: Vec<&Value> = answer.body["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "decision_without_authority")
        .collect();
    let positions: Vec<i64> = decisions.iter().map(|d| d["position"].as_i64().unwrap()).collect();
    assert_eq!(positions, approvals, "exactly ngi's two site approvals, in log order");
    let decided: Vec<(&str, &str, &str)> = decisions
        .iter()
        .map(|d| (d["user"].as_str().unwrap(), d["role"].as_str().unwrap(), d["scope"].as_str().unwrap()))
        .collect();
    assert_eq!(decided, [("ngi", "site-administrator", "SITE_A"), ("ngi", "site-security-officer", "SITE_B")]);
    let lost: BTreeSet<(String, String)> =
        kinds_and_users(&answer.body).into_iter().filter(|(kind, _)| kind != "decision_without_authority").collect();
    assert_eq!(lost, BTreeSet::from([("decider_lost".to_string(), "ngi".to_string())]), "only ngi loses rights");
    let summary = &answer.body["summary"];
    assert_eq!(summary["decision_without_authority"], 2);
    assert_eq!(summary["decider_lost"], 8, "four site roles on two sites: {:?}", answer.body);
    assert_eq!((summary["grant_not_allowed"].clone(), summary["decider_gained"].clone()), (json!(0), json!(0)));
    assert!(answer.body["differences"][2].get("position").is_none(), "decision rights have no position");

    // The unchanged workflow: no difference, for an admin too.
    let same = simulate_as(&app, "root", "", "application/toml; charset=utf-8", EGI).await;
    assert_eq!(same.status, 200, "{:?}", same.body);
    assert_eq!(same.body["differences"], json!([]));
    // Up to a position before ngi's second approval: only the first.
    let until = simulate_as(
        &app,
        "aud",
        &format!("?until={}", approvals[1] - 1),
        "application/toml",
        &without_ngi_deciders_of_sites(),
    )
    .await;
    assert_eq!(until.body["summary"]["decision_without_authority"], 1, "{:?}", until.body);
    assert_eq!(until.body["position"], approvals[1] - 1);
    assert_eq!(what_was_written(&app).await, written, "a simulation writes nothing");

    // The command line gives the same answer, exit 1 with differences and 0 without.
    let folder = tempfile::tempdir().unwrap();
    let candidate = candidate_file(&folder, "candidate.toml", &without_ngi_deciders_of_sites());
    let run = app.cli(&["simulate", "--candidate", &candidate, "--format", "ndjson"]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<Value> =
        String::from_utf8(run.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(Value::Array(lines), answer.body["differences"]);
    let table = app.cli(&["simulate", "--candidate", &candidate]);
    assert_eq!(table.status.code(), Some(1));
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("position\tkind\tuser\trole\tscope\tdetail\n"), "{table}");
    assert!(table.contains(&format!("{}\tdecision_without_authority\tngi\tsite-administrator\tSITE_A\t", approvals[0])));
    let unchanged = app.cli(&["simulate", "--candidate", &candidate_file(&folder, "same.toml", EGI)]);
    assert_eq!(unchanged.status.code(), Some(0), "{}", String::from_utf8_lossy(&unchanged.stderr));
    assert_eq!(String::from_utf8(unchanged.stdout).unwrap(), "position\tkind\tuser\trole\tscope\tdetail\n");
    assert!(String::from_utf8(unchanged.stderr).unwrap().contains("0 differences"));
    let built_in = app.cli(&["simulate", "--candidate", "egi", "--until", &approvals[0].to_string()]);
    assert_eq!(built_in.status.code(), Some(0), "{}", String::from_utf8_lossy(&built_in.stderr));
    assert_eq!(what_was_written(&app).await, written, "the command line wrote nothing either");
}

async fn a_grant_longer_than_the_candidate_allows_is_not_allowed(backend: Backend) {
    let app = spawn_app(backend).await;
    story(&app).await;
    let answer = simulate_as(&app, "aud", "", "application/toml", &site_administrators_for_30_days()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let refused: Vec<(&str, &str, &str, &str)> = answer.body["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["user"].as_str().unwrap(),
                d["role"].as_str().unwrap(),
                d["scope"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("grant_not_allowed", "alice", "site-administrator", "SITE_A"),
            ("grant_not_allowed", "carol", "site-administrator", "SITE_A")
        ]
    );
    let detail = answer.body["differences"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("no end") && detail.contains("P30D"), "{detail}");
    assert!(
        answer.body["differences"][0]["position"].as_i64().unwrap()
            < answer.body["differences"][1]["position"].as_i64().unwrap()
    );
    assert_eq!(answer.body["summary"]["grant_not_allowed"], 2);
}

async fn bad_candidates_and_callers_are_refused_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    story(&app).await;
    let written = what_was_written(&app).await;
    let broken = simulate_as(&app, "aud", "", "application/toml", BROKEN).await;
    broken.assert_problem(422, "invalid_workflow");
    let detail = broken.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("candidate.toml:4:") && detail.contains("no_such_key"), "{detail}");
    let not_toml = simulate_as(&app, "aud", "", "application/toml", "[[[").await;
    not_toml.assert_problem(422, "invalid_workflow");
    assert!(not_toml.body["detail"].as_str().unwrap().starts_with("candidate.toml:1:"), "{:?}", not_toml.body);
    simulate_as(&app, "aud", "", "application/json", EGI).await.assert_problem(415, "unsupported_media_type");
    simulate_as(&app, "aud", "", "text/plain", EGI).await.assert_problem(415, "unsupported_media_type");
    simulate_as(&app, "aud", "?until=yesterday", "application/toml", EGI).await.assert_problem(400, "bad_query");
    let huge = format!("{EGI}\n# {}\n", "x".repeat(64 * 1024));
    simulate_as(&app, "aud", "", "application/toml", &huge).await.assert_problem(413, "payload_too_large");
    for outsider in ["alice", "manager", "ngi"] {
        simulate_as(&app, outsider, "", "application/toml", EGI).await.assert_problem(403, "forbidden");
    }
    let anonymous =
        app.client.post(format!("{}/api/v1/audit/simulate", app.address)).header("content-type", "application/toml");
    assert_eq!(anonymous.body(EGI).send().await.unwrap().status(), 401);
    assert_eq!(what_was_written(&app).await, written);

    // The command line: the candidate's file and line on stderr, exit 2, before any database is read.
    let folder = tempfile::tempdir().unwrap();
    let candidate = candidate_file(&folder, "broken.toml", BROKEN);
    let run = app.cli(&["simulate", "--candidate", &candidate]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.starts_with(&format!("error: {candidate}:4:")), "{stderr}");
    assert!(run.stdout.is_empty());
    let missing = app.cli(&["simulate", "--candidate", &folder.path().join("none.toml").display().to_string()]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(what_was_written(&app).await, written);
}

async fn the_simulation_page_shows_the_differences_or_the_candidates_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let approvals = story(&app).await;
    let written = what_was_written(&app).await;
    let manager = Web::sign_in(&app, "manager").await;
    let theirs = csrf_in(&manager.page("/ui").await);
    assert_eq!(manager.post("/ui/audit/simulate", &[("csrf", &theirs), ("workflow", EGI)]).await.status(), 403);
    assert_eq!(manager.get("/ui/audit/simulate").await.status(), 403);
    let auditor = Web::sign_in(&app, "aud").await;
    let form = auditor.page("/ui/audit/simulate").await;
    assert!(form.contains("<textarea id=\"workflow\" name=\"workflow\""), "{form}");
    let csrf = csrf_in(&form);
    let candidate = without_ngi_deciders_of_sites();
    let shown = auditor.post("/ui/audit/simulate", &[("csrf", &csrf), ("workflow", &candidate), ("until", "")]).await;
    assert_eq!(shown.status(), 200);
    let page = shown.text().await.unwrap();
    assert!(page.contains("<table id=\"differences\">"), "{page}");
    assert!(page.contains(&format!("<td data-label=\"Position\">{}</td>", approvals[0])), "{page}");
    assert!(page.contains("decision_without_authority") && page.contains("decider_lost"), "{page}");
    let broken = auditor.post("/ui/audit/simulate", &[("csrf", &csrf), ("workflow", BROKEN), ("until", "")]).await;
    assert_eq!(broken.status(), 200);
    let page = broken.text().await.unwrap();
    assert!(page.contains("id=\"simulation-problem\"") && page.contains("candidate.toml:4:"), "{page}");
    assert!(page.contains("no_such_key = 1"), "the text stays in the form to correct: {page}");
    assert_eq!(what_was_written(&app).await, written);
}

on_both_backends!(
    ngi_managers_losing_site_authority_lists_their_site_approvals,
    a_grant_longer_than_the_candidate_allows_is_not_allowed,
    bad_candidates_and_callers_are_refused_and_nothing_is_written,
    the_simulation_page_shows_the_differences_or_the_candidates_line,
);
