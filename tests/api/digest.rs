//! Mail preferences and the daily digest: `PUT /me/preferences`, and the scheduler (run at
//! chosen moments) sending one digest per person and UTC day through the outbox, over real SMTP,
//! also with two server processes on one database.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use roleledger::{app::scheduler::expire_due, store::MailState};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, TestApp},
    mail::{quick_retries, sign_in_with_email},
    support::{
        eventually,
        smtp::{ReceivedMail, SmtpServer},
        Backend,
    },
    web::{csrf_in, Web},
};

async fn app_sending_to(backend: Backend, smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    spawn_app_with(backend, move |settings| {
        settings.smtp = Some(url);
        settings.mail_retry = quick_retries(50);
    })
    .await
}

/// Admin `root`, the EGI tree (SITE_A with a mailbox), `manager` deciding SITE_A and `ngim`
/// deciding NGI_A and below; everyone with an address.
async fn world(app: &TestApp) {
    app.bootstrap_admin("root").await;
    app.egi_tree_with_mailboxes("root", &[("SITE_A", "site-a@example.org")]).await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "ngim", "ngi-operations-manager", "NGI_A").await;
    for user in ["manager", "ngim", "alice", "bob"] {
        sign_in_with_email(app, user, &format!("{user}@example.org")).await;
    }
}

async fn prefer(app: &TestApp, user: &str, body: Value) -> crate::helpers::Answer {
    app.put_as(user, "/api/v1/me/preferences", Some(body)).await
}

async fn ask(app: &TestApp, role: &str) -> String {
    let body = json!({"role": role, "scope": "SITE_A", "reason": "needed"});
    let asked = app.post_as("alice", "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    asked.body["id"].as_str().unwrap().to_string()
}

/// Tomorrow (UTC) at `hour:minute`.
fn tomorrow_at(hour: u32, minute: u32) -> DateTime<Utc> {
    (Utc::now().date_naive() + Duration::days(1)).and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap()).and_utc()
}

/// The kinds of the mail put in the outbox for `address`, in order (written with their events,
/// so complete as soon as the calls that caused them answered). Digests of today are left out:
/// the server's own scheduler, on the real clock, may send one while the test runs.
async fn kinds_to(app: &TestApp, address: &str) -> Vec<String> {
    let today = Utc::now().date_naive().to_string();
    let mails = app.store.outbox(None, 0, 10_000).await.unwrap();
    mails
        .into_iter()
        .filter(|m| m.recipient == address && !(m.kind == "digest" && m.context["day"] == today.as_str()))
        .map(|m| m.kind)
        .collect()
}

/// The digests of tomorrow received.
fn tomorrows_digests(smtp: &SmtpServer) -> Vec<ReceivedMail> {
    let day = (Utc::now().date_naive() + Duration::days(1)).to_string();
    let subject = format!("daily digest of {day}");
    smtp.received().into_iter().filter(|m| m.header("Subject").unwrap_or_default().contains(&subject)).collect()
}

async fn a_daily_reader_gets_one_digest_a_day_of_exactly_what_waits(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    world(&app).await;
    let answer = prefer(&app, "manager", json!({"mail": "daily", "digest_hour": 7})).await;
    assert_eq!((answer.status, &answer.body), (200, &json!({"mail": "daily", "digest_hour": 7})));
    // A grant of the manager's ending in 10 days, and a review of SITE_A with bob's grant for them.
    let body =
        json!({"user": "manager", "role": "site-administrator", "scope": "SITE_B", "reason": "r", "duration": "10d"});
    let ending = app.post_as("root", "/api/v1/grants", body).await.body["id"].as_str().unwrap().to_string();
    let bobs = app.assign("root", "bob", "site-administrator", "SITE_A").await;
    let review =
        app.post_as("root", "/api/v1/reviews", json!({"scope": "SITE_A", "due": "14d", "on_no_answer": "keep"})).await;
    assert_eq!(review.status, 201, "{:?}", review.body);
    let request = ask(&app, "site-security-officer").await;
    // An approved request is no longer listed.
    let decided = ask(&app, "site-operations-deputy-manager").await;
    let approved = app.post_as("ngim", &format!("/api/v1/requests/{decided}/approve"), json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);

    // No mail to the manager about requests; the NGI's manager and SITE_A's mailbox get each one.
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["review_started"]);
    assert_eq!(kinds_to(&app, "ngim@example.org").await, ["review_started", "request_created", "request_created"]);
    assert_eq!(kinds_to(&app, "site-a@example.org").await, ["request_created", "request_created", "request_approved"]);

    // Before the hour: the grant's ending notice is written (not mailed to a daily reader), no digest.
    assert_eq!(expire_due(&app.application, tomorrow_at(6, 59)).await.unwrap().digests, 0);
    let notices = app.get_as("root", "/api/v1/events?type=GrantEndingSoon").await;
    assert_eq!(notices.body["items"].as_array().map(Vec::len), Some(1), "{:?}", notices.body);
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["review_started"]);
    // From the hour on: one digest, once that day.
    assert_eq!(expire_due(&app.application, tomorrow_at(7, 30)).await.unwrap().digests, 1);
    assert_eq!(expire_due(&app.application, tomorrow_at(23, 59)).await.unwrap().digests, 0);
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["review_started", "digest"]);
    eventually("the digest to arrive", 20, || async { !tomorrows_digests(&smtp).is_empty() }).await;
    let digest = tomorrows_digests(&smtp).remove(0);
    assert_eq!(digest.to, ["manager@example.org"]);
    let text = digest.text();
    for listed in [
        "Requests you may decide (1)",
        &format!("request {request}"),
        "Review items for you to answer (1)",
        &format!("item {bobs}"),
        "Your grants ending within 14 days (1)",
        &format!("grant {ending}"),
    ] {
        assert!(text.contains(listed), "{listed} in {text}");
    }
    assert!(!text.contains(&decided), "decided requests are not listed: {text}");

    // The next day: another.
    assert_eq!(expire_due(&app.application, tomorrow_at(7, 0) + Duration::days(1)).await.unwrap().digests, 1);
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["review_started", "digest", "digest"]);
}

async fn nobody_gets_a_digest_of_nothing_and_each_mail_comes_back_with_each(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    world(&app).await;
    assert_eq!(prefer(&app, "manager", json!({"mail": "daily", "digest_hour": 0})).await.status, 200);
    let head = app.head().await;
    assert_eq!(expire_due(&app.application, tomorrow_at(8, 0)).await.unwrap().digests, 0);
    assert_eq!(app.head().await, head, "nothing to list: nothing written");

    // Back to each mail: the next request reaches the manager at once, and no digest follows.
    assert_eq!(prefer(&app, "manager", json!({"mail": "each", "digest_hour": 0})).await.status, 200);
    ask(&app, "site-administrator").await;
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["request_created"]);
    assert_eq!(expire_due(&app.application, tomorrow_at(9, 0)).await.unwrap().digests, 0);
}

async fn two_processes_send_one_digest(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    let url = smtp.url();
    let second = app
        .second_process_with(move |settings| {
            settings.smtp = Some(url);
            settings.mail_retry = quick_retries(50);
        })
        .await;
    world(&app).await;
    assert_eq!(prefer(&app, "manager", json!({"mail": "daily", "digest_hour": 7})).await.status, 200);
    ask(&app, "site-administrator").await;
    let at = tomorrow_at(7, 5);
    // The second process learns of the first's writes as any follower does: wait until it sees them.
    let seen = app.head().await;
    eventually("the second process to catch up", 20, || async { second.application.projections().position() >= seen })
        .await;
    let (a, b) = tokio::join!(expire_due(&app.application, at), expire_due(&second.application, at));
    assert_eq!(a.unwrap().digests + b.unwrap().digests, 1);
    assert_eq!(kinds_to(&app, "manager@example.org").await, ["digest"]);
    eventually("the outbox to be sent", 20, || async {
        app.store.outbox(Some(MailState::Pending), 0, 100).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(tomorrows_digests(&smtp).len(), 1, "one digest, however many processes");
}

async fn bad_preferences_are_refused_and_write_nothing(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    world(&app).await;
    let mine = app.get_as("manager", "/api/v1/me/preferences").await;
    assert_eq!((mine.status, &mine.body), (200, &json!({"mail": "each", "digest_hour": 0})));
    let head = app.head().await;
    for bad in [
        json!({"mail": "weekly", "digest_hour": 7}),
        json!({"mail": "Daily", "digest_hour": 7}),
        json!({"mail": "daily", "digest_hour": 24}),
        json!({"mail": "daily", "digest_hour": -1}),
        json!({"mail": "daily", "digest_hour": 9_000_000_000_i64}),
    ] {
        prefer(&app, "manager", bad.clone()).await.assert_problem(422, "invalid_preferences");
    }
    for malformed in [
        json!({"mail": "daily"}),
        json!({"mail": "daily", "digest_hour": 7, "extra": 1}),
        json!({"mail": "daily", "digest_hour": 7.5}),
    ] {
        prefer(&app, "manager", malformed).await.assert_problem(400, "malformed_body");
    }
    let anonymous = app
        .call(reqwest::Method::PUT, "/api/v1/me/preferences", None, Some(json!({"mail": "daily", "digest_hour": 7})))
        .await;
    anonymous.assert_problem(401, "unauthenticated");
    assert_eq!(app.head().await, head, "nothing written");
    assert_eq!(app.get_as("manager", "/api/v1/me/preferences").await.body, json!({"mail": "each", "digest_hour": 0}));

    // Setting the same preferences twice writes them once.
    assert_eq!(prefer(&app, "manager", json!({"mail": "daily", "digest_hour": 23})).await.status, 200);
    let head = app.head().await;
    assert_eq!(prefer(&app, "manager", json!({"mail": "daily", "digest_hour": 23})).await.status, 200);
    assert_eq!(app.head().await, head);
    assert_eq!(app.get_as("manager", "/api/v1/me/preferences").await.body, json!({"mail": "daily", "digest_hour": 23}));
}

async fn the_home_page_sets_the_preferences_as_the_api_does(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp).await;
    world(&app).await;
    let web = Web::sign_in(&app, "manager").await;
    let page = web.page("/ui").await;
    assert!(page.contains("id=\"preferences\"") && page.contains("<option value=\"each\" selected>"), "{page}");
    let csrf = csrf_in(&page);
    let head = app.head().await;
    for (mail, hour) in [("daily", "24"), ("daily", "seven"), ("weekly", "7")] {
        let refused = web.post("/ui/preferences", &[("csrf", &csrf), ("mail", mail), ("digest_hour", hour)]).await;
        assert_eq!(refused.status(), 422, "{mail} {hour}");
        assert!(refused.text().await.unwrap().contains("digest") || mail == "weekly");
    }
    assert_eq!(
        web.post("/ui/preferences", &[("mail", "daily"), ("digest_hour", "7")]).await.status(),
        403,
        "no CSRF token"
    );
    assert_eq!(app.head().await, head, "nothing written");
    let saved = web.post("/ui/preferences", &[("csrf", &csrf), ("mail", "daily"), ("digest_hour", " 6 ")]).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(app.get_as("manager", "/api/v1/me/preferences").await.body, json!({"mail": "daily", "digest_hour": 6}));
    assert!(web.page("/ui").await.contains("<option value=\"daily\" selected>"));
}

on_both_backends!(
    a_daily_reader_gets_one_digest_a_day_of_exactly_what_waits,
    nobody_gets_a_digest_of_nothing_and_each_mail_comes_back_with_each,
    two_processes_send_one_digest,
    bad_preferences_are_refused_and_write_nothing,
    the_home_page_sets_the_preferences_as_the_api_does,
);
