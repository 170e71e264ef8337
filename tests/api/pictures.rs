//! The pictures over real HTTP. `/ui/timeline`: the SVG's bars cover, at every moment of the
//! period, exactly the grants that `GET /api/v1/grants?as_of=` gives then; filters by scope
//! subtree, user and role; visibility as on the API; bad periods refused. `/ui/scopes`: the tree
//! with the counts the viewer may see, and a search that keeps the way down to its matches.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use serde_json::json;

use crate::{
    helpers::{spawn_app, spawn_app_on, TestApp},
    support::Backend,
    web::Web,
};

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A drawn row: its grant and its bars' spans (an empty end: still held).
struct Row {
    grant: String,
    bars: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    revoked: bool,
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()
}

/// The rows of the page's SVG, read from its `data-` attributes.
fn rows(page: &str) -> Vec<Row> {
    let svg = page.split("<svg").nth(1).map_or("", |svg| svg.split("</svg>").next().unwrap_or_default());
    svg.split("<g class=\"grant\"")
        .skip(1)
        .map(|group| {
            let grant = attribute(group, "data-grant").expect("a grant id").to_string();
            let bars = group
                .split("<rect class=\"bar\"")
                .skip(1)
                .map(|bar| {
                    let from = attribute(bar, "data-from").unwrap().parse().unwrap();
                    let until = attribute(bar, "data-until").filter(|until| !until.is_empty());
                    (from, until.map(|until| until.parse().unwrap()))
                })
                .collect();
            Row { grant, bars, revoked: group.contains("<rect class=\"revoked\"") }
        })
        .collect()
}

fn drawn_at(rows: &[Row], at: DateTime<Utc>) -> BTreeSet<String> {
    let covers = |(from, until): &(DateTime<Utc>, Option<DateTime<Utc>>)| *from <= at && until.is_none_or(|u| at < u);
    rows.iter().filter(|row| row.bars.iter().any(covers)).map(|row| row.grant.clone()).collect()
}

async fn as_of(app: &TestApp, at: DateTime<Utc>) -> BTreeSet<String> {
    let answer = app.get_as("root", &format!("/api/v1/grants?as_of={}&limit=1000", stamp(at))).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["items"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect()
}

async fn timeline_draws_exactly_the_grants_as_of_each_moment(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = Utc::now();
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    let mut moments = vec![start];
    let alice = app.assign("root", "alice", "site-administrator", "SITE_A").await;
    moments.push(Utc::now());
    let bob = app.assign("root", "bob", "site-administrator", "SITE_B").await;
    moments.push(Utc::now());
    let revoked = app.post_as("root", &format!("/api/v1/grants/{bob}/revoke"), json!({"reason": "left"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    moments.push(Utc::now());
    let carol = app.assign("root", "carol", "site-security-officer", "SITE_A").await;
    moments.push(Utc::now());

    let root = Web::sign_in(&app, "root").await;
    let until = Utc::now() + Span::minutes(1);
    let period = format!("from={}&until={}", stamp(start - Span::minutes(1)), stamp(until));
    let page = root.page(&format!("/ui/timeline?{period}")).await;
    let drawn = rows(&page);
    for at in &moments {
        assert_eq!(drawn_at(&drawn, *at), as_of(&app, *at).await, "at {at}");
    }
    let bob_row = drawn.iter().find(|row| row.grant == bob).expect("bob's revoked grant is drawn");
    assert!(bob_row.revoked && bob_row.bars.iter().all(|(_, until)| until.is_some()), "ended where revoked");
    assert!(drawn.iter().any(|row| row.grant == alice && row.bars[0].1.is_none()), "alice's grant goes on");

    // Filters: a scope's subtree, a user, a role.
    let grants_of = |page: &str| rows(page).into_iter().map(|row| row.grant).collect::<BTreeSet<_>>();
    let under_ngi = root.page(&format!("/ui/timeline?{period}&scope=NGI_A")).await;
    assert_eq!(grants_of(&under_ngi), BTreeSet::from([alice.clone(), bob.clone(), carol.clone()]));
    let site_a = root.page(&format!("/ui/timeline?{period}&scope=SITE_A&role=site-administrator")).await;
    assert_eq!(grants_of(&site_a), BTreeSet::from([alice.clone()]));
    let bobs = root.page(&format!("/ui/timeline?{period}&user=bob")).await;
    assert_eq!(grants_of(&bobs), BTreeSet::from([bob.clone()]));
    // A period before anything was granted draws nothing.
    let before = format!("from={}&until={}", stamp(start - Span::days(2)), stamp(start - Span::days(1)));
    assert!(root.page(&format!("/ui/timeline?{before}")).await.contains("id=\"no-grants\""));

    // The audit page says what happened in sentences, the JSON folded beside.
    let audit = root.page("/ui/audit?order=oldest").await.replace("&#x27;", "'").replace("&quot;", "\"");
    for said in [
        "root created the ngi NGI_A under EGI",
        "alice received site-administrator on SITE_A directly (by root)",
        "root revoked bob's site-administrator on SITE_B: left",
    ] {
        assert!(audit.contains(said), "{said:?} in the audit page");
    }
    assert!(audit.contains("<details><summary>JSON</summary><pre>"), "the JSON folded");

    // Alice sees her own grant only, as on the API.
    let alice_web = Web::sign_in(&app, "alice").await;
    let hers = alice_web.page(&format!("/ui/timeline?{period}")).await;
    assert_eq!(grants_of(&hers), BTreeSet::from([alice.clone()]));
}

async fn timeline_refuses_bad_periods_and_strangers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let root = Web::sign_in(&app, "root").await;
    for query in ["from=2026-02-01&until=2026-01-01", "from=yesterday", "from=12", "from=0001-01-01&until=9999-01-01"] {
        let answer = root.get(&format!("/ui/timeline?{query}")).await;
        assert_eq!(answer.status(), 400, "{query}");
    }
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let signed_out = browser.get(format!("{}/ui/timeline", app.address)).send().await.unwrap();
    assert_eq!(signed_out.status(), 303, "signed out, to the sign-in page");
}

/// The scopes of the tree page in document order, each with its depth (the folds around it) and
/// its counts' text.
fn tree(page: &str) -> Vec<(usize, String, String)> {
    let tree = page.split("id=\"scope-tree\"").nth(1).expect("a tree").split("</main>").next().unwrap();
    let mut found = Vec::new();
    let mut rest = tree;
    let mut depth = 0;
    while let Some(at) = rest.find(" data-scope=\"") {
        let before = &rest[..at];
        depth += before.matches("<ul>").count();
        depth -= before.matches("</ul>").count();
        let scope = attribute(&rest[at..], "data-scope").unwrap().to_string();
        let counts = rest[at..].split("</small>").next().unwrap().to_string();
        found.push((depth, scope, counts));
        rest = &rest[at + 1..];
    }
    found
}

async fn scope_tree_folds_with_counts_and_finds_a_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "alice", "site-administrator", "SITE_A").await;
    app.assign("root", "bob", "site-administrator", "SITE_A").await;
    app.sign_in("carol").await;
    let asked = json!({"role": "site-administrator", "scope": "SITE_B", "reason": "on call"});
    assert_eq!(app.post_as("carol", "/api/v1/requests", asked).await.status, 201);

    let root = Web::sign_in(&app, "root").await;
    let page = root.page("/ui/scopes").await;
    let lines = tree(&page);
    let at =
        |scope: &str| lines.iter().find(|(_, id, _)| id == scope).unwrap_or_else(|| panic!("{scope} in {lines:?}"));
    assert_eq!(
        lines.iter().map(|(depth, id, _)| (*depth, id.as_str())).collect::<Vec<_>>()[..5].to_vec(),
        vec![(0, "global"), (1, "EGI"), (2, "NGI_A"), (3, "SITE_A"), (3, "SITE_B")]
    );
    assert!(at("SITE_A").2.contains("2 grants") && at("SITE_A").2.contains("0 pending"), "{:?}", at("SITE_A"));
    assert!(at("SITE_B").2.contains("0 grants") && at("SITE_B").2.contains("1 pending"), "{:?}", at("SITE_B"));

    // A search keeps the matches and the way down to them, unfolded.
    let found = tree(&root.page("/ui/scopes?q=site_b").await);
    let ids: Vec<&str> = found.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["global", "EGI", "NGI_A", "SITE_B"]);
    assert!(root.page("/ui/scopes?q=nowhere").await.contains("0 scopes match"));

    // Alice counts what she may see: her own grant, no one's request.
    let alice = Web::sign_in(&app, "alice").await;
    let hers = tree(&alice.page("/ui/scopes").await);
    let site = |scope: &str| hers.iter().find(|(_, id, _)| id == scope).unwrap().2.clone();
    assert!(site("SITE_A").contains("1 grant<") && site("SITE_B").contains("0 pending"), "{hers:?}");
}

/// The stage steps of a request page: (class, text) in order.
fn stages(page: &str) -> Vec<(String, String)> {
    let list = page.split("id=\"stages\"").nth(1).expect("stages").split("</ol>").next().unwrap();
    list.split("<li class=\"stage ")
        .skip(1)
        .map(|step| {
            let class = step.split('"').next().unwrap().to_string();
            (class, step.split("</li>").next().unwrap().to_string())
        })
        .collect()
}

async fn request_page_draws_its_stages_and_who_may_still_decide(backend: Backend) {
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    assert_eq!(app.create_scope("root", "alm", "project", &[]).await.status, 201);
    app.assign("root", "rita", "release-manager", "alm").await;
    app.assign("root", "ralph", "release-manager", "alm").await;
    app.sign_in("cm").await;
    let body = json!({"role": "change-manager", "scope": "alm", "reason": "CAB", "answers": {"change-board": "main"}});
    let asked = app.post_as("cm", "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let request = asked.body["id"].as_str().unwrap().to_string();
    let path = format!("/ui/requests/{request}");
    let cm = Web::sign_in(&app, "cm").await;

    let fresh = stages(&cm.page(&path).await);
    let classes: Vec<&str> = fresh.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(classes, vec!["stage-current", "stage-waiting"]);
    assert!(fresh[0].1.contains("release manager") && fresh[0].1.contains("waiting for 1 more approval"));
    assert!(fresh[0].1.contains("May still decide: ") && fresh[0].1.contains("ralph") && fresh[0].1.contains("rita"));

    // The decide queue's age chart counts it as waiting under a day.
    let queue = Web::sign_in(&app, "ralph").await.page("/ui/decide").await;
    let chart = queue.split("id=\"age-chart\"").nth(1).expect("an age chart").split("</svg>").next().unwrap();
    let counts: Vec<&str> = chart.split("data-count=\"").skip(1).map(|c| c.split('"').next().unwrap()).collect();
    assert_eq!(counts, vec!["1", "0", "0", "0", "0", "0"]);
    assert!(queue.contains("waiting under an hour"));

    let approve = json!({"comment": "ok"});
    let approved = app.post_as("rita", &format!("/api/v1/requests/{request}/approve"), approve).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let halfway = stages(&cm.page(&path).await);
    let classes: Vec<&str> = halfway.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(classes, vec!["stage-done", "stage-current"]);
    assert!(halfway[0].1.contains("1 of 1: rita"), "{:?}", halfway[0]);
    assert!(halfway[1].1.contains("second release manager") && halfway[1].1.contains("ralph"), "{:?}", halfway[1]);

    let rejected = app.post_as("ralph", &format!("/api/v1/requests/{request}/reject"), json!({"reason": "no"})).await;
    assert_eq!(rejected.status, 200, "{:?}", rejected.body);
    let stopped = stages(&cm.page(&path).await);
    let classes: Vec<&str> = stopped.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(classes, vec!["stage-done", "stage-stopped"]);
    assert!(!stopped[1].1.contains("May still decide"));
}

/// Reads the stream until `wanted` has come, or fails after ten seconds.
async fn read_until(answer: &mut reqwest::Response, wanted: &str) -> String {
    let mut seen = String::new();
    let deadline = std::time::Duration::from_secs(10);
    while !seen.contains(wanted) {
        let chunk = tokio::time::timeout(deadline, answer.chunk()).await.expect("within ten seconds").unwrap();
        seen.push_str(std::str::from_utf8(&chunk.expect("the stream goes on")).unwrap());
    }
    seen
}

async fn live_view_runs_one_script_and_its_tail_accepts_the_session_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    let auditor = Web::sign_in(&app, "aud").await;
    let page = auditor.get("/ui/audit/live").await;
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/ui/live.js\" defer></script>"), "one script file, nothing inline");
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("data-types=\"UserRegistered ") && html.contains(" RoleGranted "), "every type listened to");
    let script = auditor.get("/ui/live.js").await;
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("new EventSource('/api/v1/events/live')"));
    // Other pages keep running no script at all.
    let audit = auditor.get("/ui/audit").await;
    assert!(audit.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'none'"));

    // The tail, with the session cookie and no Authorization header, as an EventSource opens it.
    let mut tail = auditor.get("/api/v1/events/live").await;
    assert_eq!(tail.status(), 200);
    app.assign("root", "alice", "auditor", "global").await;
    let frames = read_until(&mut tail, "event: RoleGranted").await;
    assert!(frames.contains("\"stream\":\"user-alice\""), "{frames}");

    // Someone who may not read the log gets neither the page nor the tail.
    let bob = Web::sign_in(&app, "bob").await;
    assert_eq!(bob.get("/ui/audit/live").await.status(), 403);
    assert_eq!(bob.get("/api/v1/events/live").await.status(), 403);
    let stranger = reqwest::Client::new().get(format!("{}/api/v1/events/live", app.address)).send().await.unwrap();
    assert_eq!(stranger.status(), 401);
}

on_both_backends!(
    live_view_runs_one_script_and_its_tail_accepts_the_session_cookie,
    request_page_draws_its_stages_and_who_may_still_decide,
    timeline_draws_exactly_the_grants_as_of_each_moment,
    timeline_refuses_bad_periods_and_strangers,
    scope_tree_folds_with_counts_and_finds_a_scope
);
