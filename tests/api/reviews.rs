//! Access reviews (recertification) through real HTTP: who may start one and who reviews each
//! grant, every refusal (with nothing written), the silence rule at the due time under a
//! controlled clock, closing early, closing exactly once across two processes, the mail, the
//! report, and the log and the grants' history staying right.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use reqwest::Method;
use roleledger::app::scheduler::expire_due;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, token_for, TestApp},
    support::{eventually, smtp::ReceivedMail, Backend},
};

on_both_backends!(
    a_review_lists_every_grant_below_its_scope_with_its_reviewers,
    refused_starts_write_nothing,
    refused_decisions_and_closes_write_nothing,
    silence_keeps_at_the_due_time,
    silence_revokes_at_the_due_time_and_history_keeps_the_grant,
    closing_early_follows_the_silence_rule_and_skips_ended_grants,
    the_due_time_closes_a_review_once_across_two_processes,
    reviewers_get_one_mail_each_and_holders_hear_of_revocations,
    the_report_comes_as_csv_and_ndjson,
    the_workflow_starts_yearly_site_reviews_once_across_two_processes,
    reviewers_decide_several_items_at_once_on_the_page,
);

/// Grants of the world below, by holder.
struct World {
    app: TestApp,
    grants: BTreeMap<&'static str, String>,
}

/// Admin root; EGI ⊃ NGI_A ⊃ SITE_A, SITE_B; on SITE_A the manager `mgr`, the security officer
/// `carol` and the site administrator `alice`; `bob` administers SITE_B; `ngim` manages NGI_A;
/// `aud` is an auditor.
async fn world(backend: Backend) -> World {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    let mut grants = BTreeMap::new();
    for (user, role, scope) in [
        ("mgr", "site-operations-manager", "SITE_A"),
        ("carol", "site-security-officer", "SITE_A"),
        ("alice", "site-administrator", "SITE_A"),
        ("bob", "site-administrator", "SITE_B"),
        ("ngim", "ngi-operations-manager", "NGI_A"),
        ("aud", "auditor", "global"),
    ] {
        grants.insert(user, app.assign("root", user, role, scope).await);
    }
    World { app, grants }
}

impl World {
    fn grant(&self, user: &str) -> &str {
        &self.grants[user]
    }

    async fn start(&self, by: &str, body: Value) -> String {
        let answer = self.app.post_as(by, "/api/v1/reviews", body).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        answer.body["id"].as_str().unwrap().to_string()
    }

    /// `ngim` reviews NGI_A and below, due in 14 days.
    async fn ngi_review(&self, on_no_answer: &str) -> String {
        self.start("ngim", json!({"scope": "NGI_A", "due": "14d", "on_no_answer": on_no_answer})).await
    }

    async fn decide(&self, by: &str, review: &str, holder: &str, decision: &str) -> crate::helpers::Answer {
        let path = format!("/api/v1/reviews/{review}/items/{}/decide", self.grant(holder));
        self.app.post_as(by, &path, json!({"decision": decision, "reason": format!("{by} says {decision}")})).await
    }

    /// The review's items as `by` sees them, by holder.
    async fn items(&self, by: &str, review: &str, query: &str) -> BTreeMap<String, Value> {
        let answer = self.app.get_as(by, &format!("/api/v1/reviews/{review}/items?{query}")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let items = answer.body["items"].as_array().unwrap().clone();
        items.into_iter().map(|item| (item["user"].as_str().unwrap_or_default().to_string(), item)).collect()
    }

    /// Whether the grant of `holder` is current.
    async fn current(&self, holder: &str) -> bool {
        let answer = self.app.get_as("root", &format!("/api/v1/grants/{}", self.grant(holder))).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["status"] == "active"
    }

    async fn events_of_type(&self, event_type: &str) -> Vec<Value> {
        let answer = self.app.get_as("root", &format!("/api/v1/events?type={event_type}&limit=1000")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["items"].as_array().unwrap().clone()
    }

    async fn verified(&self) {
        let answer = self.app.get_as("aud", "/api/v1/audit/verify").await;
        assert_eq!((answer.status, &answer.body["ok"]), (200, &json!(true)), "{:?}", answer.body);
    }
}

fn reviewers(item: &Value) -> Vec<&str> {
    item["reviewers"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect()
}

async fn a_review_lists_every_grant_below_its_scope_with_its_reviewers(backend: Backend) {
    let world = world(backend).await;
    let answer = world
        .app
        .post_as("ngim", "/api/v1/reviews", json!({"scope": "NGI_A", "due": "P14D", "on_no_answer": "keep"}))
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let review = &answer.body;
    assert_eq!((review["status"].as_str(), review["scope"].as_str()), (Some("open"), Some("NGI_A")));
    assert_eq!((review["items"].as_u64(), review["decided"].as_u64()), (Some(5), Some(0)), "{review:?}");
    assert_eq!((review["started_by"].as_str(), review["on_no_answer"].as_str()), (Some("ngim"), Some("keep")));
    let started_at: chrono::DateTime<Utc> = review["started_at"].as_str().unwrap().parse().unwrap();
    let due_at: chrono::DateTime<Utc> = review["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due_at - started_at, Duration::days(14));
    let id = review["id"].as_str().unwrap().to_string();

    let items = world.items("root", &id, "").await;
    assert_eq!(items.keys().map(String::as_str).collect::<Vec<_>>(), ["alice", "bob", "carol", "mgr", "ngim"]);
    // By the workflow's rules at the start; never the holder; admins only where nobody else may.
    assert_eq!(reviewers(&items["alice"]), ["carol", "mgr", "ngim"]);
    assert_eq!(reviewers(&items["mgr"]), ["carol", "ngim"]);
    assert_eq!(reviewers(&items["bob"]), ["ngim"]);
    assert_eq!(reviewers(&items["ngim"]), ["root"]);
    assert_eq!(items["alice"]["id"], items["alice"]["grant"]);
    assert_eq!(items["alice"]["decision"], Value::Null);

    // A reviewer sees the review and their own items; `mine` narrows a starter's view.
    let mine = world.items("mgr", &id, "").await;
    assert_eq!(mine.keys().map(String::as_str).collect::<Vec<_>>(), ["alice", "carol"]);
    let shown = world.app.get_as("mgr", &format!("/api/v1/reviews/{id}")).await;
    assert_eq!((shown.status, shown.body["items"].as_u64()), (200, Some(2)), "{:?}", shown.body);
    let mine = world.items("ngim", &id, "mine=true").await;
    assert_eq!(mine.keys().map(String::as_str).collect::<Vec<_>>(), ["alice", "bob", "carol", "mgr"]);
    // Paged in id order without gaps.
    let first = world.app.get_as("root", &format!("/api/v1/reviews/{id}/items?limit=3")).await;
    let next = first.body["next"].as_str().expect("a next page").to_string();
    let second = world.app.get_as("root", &format!("/api/v1/reviews/{id}/items?limit=3&cursor={next}")).await;
    let count = |answer: &crate::helpers::Answer| answer.body["items"].as_array().unwrap().len();
    assert_eq!((count(&first), count(&second), &second.body["next"]), (3, 2, &Value::Null));

    // Who sees it: its reviewers, starter, admins and auditors; nobody else, and unknown ids are 404.
    world.app.sign_in("eve").await;
    world.app.get_as("eve", &format!("/api/v1/reviews/{id}")).await.assert_problem(403, "forbidden");
    world.app.get_as("eve", &format!("/api/v1/reviews/{id}/items")).await.assert_problem(403, "forbidden");
    world.app.get_as("eve", &format!("/api/v1/reviews/{id}/report")).await.assert_problem(403, "forbidden");
    let unknown = uuid::Uuid::new_v4();
    world.app.get_as("root", &format!("/api/v1/reviews/{unknown}")).await.assert_problem(404, "not_found");
    assert_eq!(world.app.get_as("aud", &format!("/api/v1/reviews/{id}")).await.status, 200);
    let listed = |user: &'static str| {
        let app = &world.app;
        async move {
            let answer = app.get_as(user, "/api/v1/reviews?status=open").await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            answer.body["items"].as_array().unwrap().len()
        }
    };
    assert_eq!((listed("root").await, listed("mgr").await, listed("eve").await), (1, 1, 0));
    let closed = world.app.get_as("root", "/api/v1/reviews?status=closed").await;
    assert_eq!(closed.body["items"], json!([]));

    // Only the roles named.
    let body = json!({"scope": "NGI_A", "roles": ["site-administrator"], "due": "7d", "on_no_answer": "keep"});
    let narrow = world.start("root", body).await;
    let items = world.items("root", &narrow, "").await;
    assert_eq!(items.keys().map(String::as_str).collect::<Vec<_>>(), ["alice", "bob"]);
    world.verified().await;
}

async fn refused_starts_write_nothing(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let head = app.head().await;
    let refused = |user: &'static str, body: Value| async move { app.post_as(user, "/api/v1/reviews", body).await };
    // Not someone who may revoke every grant covered: alice nothing, mgr not SITE_B's grants.
    let site = json!({"scope": "SITE_A", "due": "14d", "on_no_answer": "keep"});
    refused("alice", site.clone()).await.assert_problem(403, "not_a_decider");
    let ngi = json!({"scope": "NGI_A", "due": "14d", "on_no_answer": "revoke"});
    refused("mgr", ngi).await.assert_problem(403, "not_a_decider");
    refused("aud", site.clone()).await.assert_problem(403, "read_only");
    for (body, status, code) in [
        (json!({"scope": "SITE_A", "due": "P100000000D", "on_no_answer": "keep"}), 422, "invalid_duration"),
        (json!({"scope": "SITE_A", "due": "9999-12-31T00:00:00Z", "on_no_answer": "keep"}), 422, "invalid_duration"),
        (json!({"scope": "SITE_A", "due": "2020-01-01T00:00:00Z", "on_no_answer": "keep"}), 422, "invalid"),
        (json!({"scope": "NOWHERE", "due": "14d", "on_no_answer": "keep"}), 422, "unknown_scope"),
        (
            json!({"scope": "SITE_A", "roles": ["no-such-role"], "due": "14d", "on_no_answer": "keep"}),
            422,
            "unknown_role",
        ),
        (json!({"scope": "SITE_A", "due": "soon", "on_no_answer": "keep"}), 400, "malformed_body"),
        (json!({"scope": "SITE_A", "due": "14d", "on_no_answer": "maybe"}), 400, "malformed_body"),
    ] {
        refused("root", body).await.assert_problem(status, code);
    }
    assert_eq!(app.head().await, head, "a refused start wrote something");
    // mgr may review their own site.
    world.start("mgr", site).await;
    assert_eq!(app.head().await, head + 1, "a review is one event");
}

async fn refused_decisions_and_closes_write_nothing(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let review = world.ngi_review("keep").await;
    let head = app.head().await;
    // One's own grant first, whoever else may review it.
    world.decide("mgr", &review, "mgr", "keep").await.assert_problem(403, "self_approval");
    world.decide("ngim", &review, "ngim", "keep").await.assert_problem(403, "self_approval");
    world.decide("bob", &review, "alice", "revoke").await.assert_problem(403, "not_a_reviewer");
    world.decide("root", &review, "alice", "revoke").await.assert_problem(403, "not_a_reviewer");
    world.decide("aud", &review, "alice", "keep").await.assert_problem(403, "read_only");
    let unknown = format!("/api/v1/reviews/{review}/items/{}/decide", uuid::Uuid::new_v4());
    app.post_as("mgr", &unknown, json!({"decision": "keep", "reason": ""})).await.assert_problem(404, "not_found");
    let bad = format!("/api/v1/reviews/{review}/items/{}/decide", world.grant("alice"));
    app.post_as("mgr", &bad, json!({"decision": "perhaps"})).await.assert_problem(400, "malformed_body");
    app.post_as("mgr", &format!("/api/v1/reviews/{review}/close"), json!({})).await.assert_problem(403, "forbidden");
    assert_eq!(app.head().await, head, "a refusal wrote something");

    let kept = world.decide("mgr", &review, "alice", "keep").await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    assert_eq!((kept.body["decision"].as_str(), kept.body["decided_by"].as_str()), (Some("keep"), Some("mgr")));
    assert_eq!(kept.body["reason"], "mgr says keep");
    let head = app.head().await;
    world.decide("carol", &review, "alice", "revoke").await.assert_problem(409, "already_decided");
    assert_eq!(app.head().await, head);
    // A listed reviewer who lost the authority to revoke is refused too.
    let revoked = app
        .post_as("root", &format!("/api/v1/grants/{}/revoke", world.grant("carol")), json!({"reason": "left"}))
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let head = app.head().await;
    world.decide("carol", &review, "mgr", "revoke").await.assert_problem(403, "not_a_decider");
    assert_eq!(app.head().await, head);

    // A grant that ended meanwhile is not decided any more.
    let path = format!("/api/v1/grants/{}/revoke", world.grant("bob"));
    assert_eq!(app.post_as("bob", &path, json!({"reason": "leaving"})).await.status, 200);
    let head = app.head().await;
    world.decide("ngim", &review, "bob", "keep").await.assert_problem(409, "not_active");
    let nowhere = uuid::Uuid::new_v4();
    let path = format!("/api/v1/reviews/{nowhere}/items/{}/decide", world.grant("alice"));
    app.post_as("mgr", &path, json!({"decision": "keep"})).await.assert_problem(404, "not_found");
    app.post_as("root", &format!("/api/v1/reviews/{nowhere}/close"), json!({})).await.assert_problem(404, "not_found");
    app.post_as("aud", &format!("/api/v1/reviews/{review}/close"), json!({})).await.assert_problem(403, "read_only");
    assert_eq!(app.head().await, head, "a refusal wrote something");

    let closed = app.post_as("ngim", &format!("/api/v1/reviews/{review}/close"), json!({})).await;
    assert_eq!((closed.status, closed.body["status"].as_str()), (200, Some("closed")), "{:?}", closed.body);
    let head = app.head().await;
    world.decide("ngim", &review, "mgr", "keep").await.assert_problem(409, "review_closed");
    app.post_as("root", &format!("/api/v1/reviews/{review}/close"), json!({}))
        .await
        .assert_problem(409, "review_closed");
    assert_eq!(app.head().await, head, "a refusal wrote something");
    world.verified().await;
}

async fn silence_keeps_at_the_due_time(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("keep").await;
    assert_eq!(world.decide("ngim", &review, "bob", "revoke").await.status, 200);
    let before = expire_due(&world.app.application, Utc::now() + Duration::days(13)).await.unwrap();
    assert_eq!(before.reviews, 0, "not due yet");
    let done = expire_due(&world.app.application, Utc::now() + Duration::days(15)).await.unwrap();
    assert_eq!(done.reviews, 1);
    let shown = world.app.get_as("root", &format!("/api/v1/reviews/{review}")).await;
    assert_eq!(shown.body["status"], "closed", "{:?}", shown.body);
    assert_eq!((shown.body["decided"].as_u64(), shown.body["revoked"].as_u64()), (Some(1), Some(1)));
    let items = world.items("root", &review, "").await;
    assert_eq!((&items["alice"]["unanswered"], &items["bob"]["unanswered"]), (&json!("kept"), &Value::Null));
    for holder in ["alice", "carol", "mgr", "ngim"] {
        assert!(world.current(holder).await, "{holder}'s grant stays");
    }
    assert!(!world.current("bob").await, "decided revoke");
    assert_eq!(world.events_of_type("GrantRevoked").await.len(), 1);
    world.verified().await;
}

async fn silence_revokes_at_the_due_time_and_history_keeps_the_grant(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("revoke").await;
    assert_eq!(world.decide("mgr", &review, "alice", "keep").await.status, 200);
    let before_close = world.app.head().await;
    let done = expire_due(&world.app.application, Utc::now() + Duration::days(15)).await.unwrap();
    assert_eq!(done.reviews, 1);
    assert_eq!(expire_due(&world.app.application, Utc::now() + Duration::days(16)).await.unwrap().reviews, 0);
    assert!(world.current("alice").await, "kept by its reviewer");
    for holder in ["bob", "carol", "mgr", "ngim"] {
        assert!(!world.current(holder).await, "{holder}'s grant was not reviewed");
    }
    let revocations = world.events_of_type("GrantRevoked").await;
    assert_eq!(revocations.len(), 4);
    let reason = format!("not reviewed in review {review}");
    assert!(revocations.iter().all(|event| event["data"]["reason"] == reason.as_str()), "{revocations:?}");
    let items = world.items("root", &review, "").await;
    assert_eq!(items["bob"]["unanswered"], "revoked");
    // The grants as they stood before the close still list bob's; now they do not.
    let listed = |query: String| {
        let app = &world.app;
        async move {
            let answer = app.get_as("root", &format!("/api/v1/grants?user=bob{query}")).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            answer.body["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(listed(format!("&as_of={before_close}")).await, 1);
    assert_eq!(listed(String::new()).await, 0);
    world.verified().await;
}

async fn closing_early_follows_the_silence_rule_and_skips_ended_grants(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("revoke").await;
    assert_eq!(world.decide("ngim", &review, "bob", "keep").await.status, 200);
    // alice gives up her grant herself meanwhile: the close leaves it alone.
    let path = format!("/api/v1/grants/{}/revoke", world.grant("alice"));
    assert_eq!(world.app.post_as("alice", &path, json!({"reason": "moving on"})).await.status, 200);
    let revoked = world.decide("ngim", &review, "carol", "revoke").await;
    assert_eq!((revoked.status, revoked.body["decision"].as_str()), (200, Some("revoke")), "{:?}", revoked.body);
    assert!(!world.current("carol").await, "a revoke decision ends the grant at once");
    let closed = world.app.post_as("ngim", &format!("/api/v1/reviews/{review}/close"), json!({})).await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    let items = world.items("root", &review, "").await;
    assert_eq!(items["alice"]["unanswered"], "ended");
    assert_eq!(items["mgr"]["unanswered"], "revoked");
    assert!(world.current("bob").await && !world.current("mgr").await && !world.current("ngim").await);
    // alice's own, carol's by decision, mgr's and ngim's by silence.
    assert_eq!(world.events_of_type("GrantRevoked").await.len(), 4);
    assert_eq!(expire_due(&world.app.application, Utc::now() + Duration::days(15)).await.unwrap().reviews, 0);
    world.verified().await;
}

async fn the_due_time_closes_a_review_once_across_two_processes(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("revoke").await;
    let second = world.app.second_process().await;
    let id: uuid::Uuid = review.parse().unwrap();
    eventually("the second process to know the review", 10, || async {
        second.application.read_model(|model| model.state().review(&id).is_some())
    })
    .await;
    let later = Utc::now() + Duration::days(15);
    let (a, b) = tokio::join!(expire_due(&world.app.application, later), expire_due(&second.application, later));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.reviews + b.reviews, 1, "{a:?} {b:?}");
    assert_eq!(world.events_of_type("ReviewClosed").await.len(), 1);
    assert_eq!(world.events_of_type("GrantRevoked").await.len(), 5);
    world.verified().await;
}

/// The .eml files the server wrote, once no mail waits in the outbox.
async fn written_mail(app: &TestApp) -> Vec<ReceivedMail> {
    let empty = || async { app.get_as("root", "/api/v1/outbox?state=pending").await.body["items"] == json!([]) };
    eventually("the outbox to be sent", 20, empty).await;
    let mut mails = Vec::new();
    for entry in std::fs::read_dir(app.mail_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "eml") {
            mails.push(ReceivedMail { to: Vec::new(), data: std::fs::read_to_string(path).unwrap() });
        }
    }
    mails
}

/// Recipients of the mails whose subject contains `subject`, sorted.
fn recipients(mails: &[ReceivedMail], subject: &str) -> Vec<String> {
    let mut to: Vec<String> = mails
        .iter()
        .filter(|mail| mail.header("Subject").is_some_and(|s| s.contains(subject)))
        .map(|mail| mail.header("To").unwrap_or_default())
        .collect();
    to.sort();
    to
}

async fn reviewers_get_one_mail_each_and_holders_hear_of_revocations(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("keep").await;
    let mails = written_mail(&world.app).await;
    let to = recipients(&mails, "Please review");
    assert_eq!(to, ["carol@example.org", "mgr@example.org", "ngim@example.org", "root@example.org"]);
    let mgr = mails.iter().find(|mail| mail.header("To").as_deref() == Some("mgr@example.org")).unwrap();
    assert!(mgr.header("Subject").unwrap().contains("review 2 grant(s)"), "{:?}", mgr.header("Subject"));
    let text = mgr.text();
    assert!(text.contains(world.grant("alice")) && text.contains(world.grant("carol")), "{text}");
    assert!(!text.contains(world.grant("bob")), "{text}");

    assert_eq!(world.decide("mgr", &review, "alice", "revoke").await.status, 200);
    assert_eq!(world.decide("mgr", &review, "carol", "keep").await.status, 200);
    let mails = written_mail(&world.app).await;
    assert_eq!(recipients(&mails, "Revoked"), ["alice@example.org"]);

    // Half-way, a reminder to each reviewer with undecided items, once.
    let done = expire_due(&world.app.application, Utc::now() + Duration::days(8)).await.unwrap();
    assert_eq!(done.reminders, 1);
    assert_eq!(expire_due(&world.app.application, Utc::now() + Duration::days(9)).await.unwrap().reminders, 0);
    let mails = written_mail(&world.app).await;
    assert_eq!(recipients(&mails, "Reminder"), ["carol@example.org", "ngim@example.org", "root@example.org"]);
    assert_eq!(recipients(&mails, "Please review").len(), 4, "the start's mail is not sent again");
}

async fn raw(app: &TestApp, user: &str, path: &str, accept: &str) -> (u16, String, String) {
    let response = app
        .client
        .request(Method::GET, format!("{}{path}", app.address))
        .bearer_auth(token_for(user))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (status, content_type, response.text().await.unwrap())
}

async fn the_report_comes_as_csv_and_ndjson(backend: Backend) {
    let world = world(backend).await;
    let review = world.ngi_review("keep").await;
    let path = format!("/api/v1/reviews/{review}/items/{}/decide", world.grant("alice"));
    let reason = "=HYPERLINK(\"x\"), still runs the CE";
    assert_eq!(world.app.post_as("mgr", &path, json!({"decision": "keep", "reason": reason})).await.status, 200);

    let (status, content_type, csv) =
        raw(&world.app, "ngim", &format!("/api/v1/reviews/{review}/report"), "text/csv").await;
    assert_eq!(status, 200, "{csv}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6, "{csv}");
    assert_eq!(lines[0], "item,grant,user,team,role,scope,reviewers,decision,decided_by,decided_at,reason,unanswered");
    let alice = lines.iter().find(|line| line.contains(world.grant("alice"))).unwrap();
    assert!(alice.contains(",site-administrator,SITE_A,carol mgr ngim,keep,mgr,"), "{alice}");
    assert!(alice.ends_with(",\"'=HYPERLINK(\"\"x\"\"), still runs the CE\","), "quoted, and no formula: {alice}");

    let (status, content_type, ndjson) =
        raw(&world.app, "ngim", &format!("/api/v1/reviews/{review}/report"), "application/x-ndjson").await;
    assert_eq!((status, content_type.as_str()), (200, "application/x-ndjson"));
    let items: Vec<Value> = ndjson.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(items.len(), 5);
    let alice = items.iter().find(|item| item["user"] == "alice").unwrap();
    assert_eq!((alice["decision"].as_str(), alice["reason"].as_str()), (Some("keep"), Some(reason)));
    // A reviewer's report holds their items only.
    let (_, _, mine) =
        raw(&world.app, "mgr", &format!("/api/v1/reviews/{review}/report"), "application/x-ndjson").await;
    assert_eq!(mine.lines().count(), 2);
}

/// EGI's workflow reviews each site yearly (`[[reviews]] kind = "site", every = "365d"`), the
/// first a year after the site was created; two processes start each once.
async fn the_workflow_starts_yearly_site_reviews_once_across_two_processes(backend: Backend) {
    let world = world(backend).await;
    let second = world.app.second_process().await;
    let head = world.app.head().await;
    eventually("the second process to catch up", 10, || async {
        second.application.read_model(|model| model.position()) >= head
    })
    .await;
    let early = expire_due(&world.app.application, Utc::now() + Duration::days(364)).await.unwrap();
    assert_eq!(early.reviews_started, 0, "not a year since the sites were created");
    let later = Utc::now() + Duration::days(366);
    let (a, b) = tokio::join!(expire_due(&world.app.application, later), expire_due(&second.application, later));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.reviews_started + b.reviews_started, 2, "SITE_A and SITE_B, once each: {a:?} {b:?}");
    assert_eq!(expire_due(&second.application, later + Duration::days(1)).await.unwrap().reviews_started, 0);
    let listed = world.app.get_as("root", "/api/v1/reviews").await;
    let reviews = listed.body["items"].as_array().unwrap();
    let mut scopes: Vec<&str> = reviews.iter().map(|r| r["scope"].as_str().unwrap()).collect();
    scopes.sort();
    assert_eq!(scopes, ["SITE_A", "SITE_B"]);
    for review in reviews {
        assert_eq!(
            (review["on_no_answer"].as_str(), review["started_by"].as_str()),
            (Some("keep"), Some("command-line"))
        );
        let started_at: chrono::DateTime<Utc> = review["started_at"].as_str().unwrap().parse().unwrap();
        let due_at: chrono::DateTime<Utc> = review["due_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(due_at - started_at, Duration::days(30));
        let items = if review["scope"] == "SITE_A" { 3 } else { 1 };
        assert_eq!(review["items"].as_u64(), Some(items), "{review:?}");
    }
    world.verified().await;
}

/// The review's page: a reviewer ticks several items and keeps or revokes them in one post (each
/// decided as the API decides it; a refused one is said beside the others); the starter sees the
/// progress and closes it; a post without the CSRF token writes nothing.
async fn reviewers_decide_several_items_at_once_on_the_page(backend: Backend) {
    use crate::web::{csrf_in, Web};
    let world = world(backend).await;
    let review = world.ngi_review("keep").await;
    let ngim = Web::sign_in(&world.app, "ngim").await;
    let list = ngim.page("/ui/reviews").await;
    assert!(list.contains(&format!("href=\"/ui/reviews/{review}\"")), "{list}");
    assert!(list.contains("href=\"/ui/reviews\""), "linked from the navigation");
    let page = ngim.page(&format!("/ui/reviews/{review}")).await;
    for holder in ["alice", "bob", "carol", "mgr"] {
        assert!(page.contains(&format!("value=\"{}\"", world.grant(holder))), "{holder}'s item to tick");
    }
    assert!(!page.contains(&format!("value=\"{}\"", world.grant("ngim"))), "not their own");
    let csrf = csrf_in(&page);
    let path = format!("/ui/reviews/{review}/decide");

    let head = world.app.head().await;
    let forged = ngim.post(&path, &[("csrf", "00ff"), ("decision", "revoke"), ("item", world.grant("bob"))]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(world.app.head().await, head, "a post without the right token wrote something");

    // mgr keeps alice's item first, so that ngim's batch meets one already decided.
    assert_eq!(world.decide("mgr", &review, "alice", "keep").await.status, 200);
    let form = [
        ("csrf", csrf.as_str()),
        ("decision", "revoke"),
        ("reason", "left the site"),
        ("item", world.grant("bob")),
        ("item", world.grant("carol")),
        ("item", world.grant("alice")),
    ];
    let answer = ngim.post(&path, &form).await;
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(text.contains("2 of 3 decided"), "{text}");
    assert!(text.contains("already decided"), "{text}");
    assert!(!world.current("bob").await && !world.current("carol").await && world.current("alice").await);
    let items = world.items("root", &review, "").await;
    assert_eq!(
        (items["bob"]["decision"].as_str(), items["bob"]["reason"].as_str()),
        (Some("revoke"), Some("left the site"))
    );

    // The starter's progress, and closing on the page.
    let page = ngim.page(&format!("/ui/reviews/{review}")).await;
    assert!(page.contains("<dd id=\"decided\">3 (1 kept, 2 revoked)</dd>"), "{page}");
    let mgr = Web::sign_in(&world.app, "mgr").await;
    let theirs = mgr.page(&format!("/ui/reviews/{review}")).await;
    assert!(!theirs.contains("/close"), "only its starter or an admin may close it");
    let close = ngim.post(&format!("/ui/reviews/{review}/close"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(close.status(), 303);
    let page = ngim.page(&format!("/ui/reviews/{review}")).await;
    assert!(page.contains("<dd id=\"state\">closed"), "{page}");
    world.verified().await;
}
