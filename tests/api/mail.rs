//! Mail, end to end: events put mail in the outbox in their transaction; the delivery worker sends
//! it over real SMTP to a server the test starts. Who receives what, once; outages; dead letters;
//! two workers; a worker that dies between sending and recording.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use chrono::Utc;
use reqwest::Method;
use roleledger::{
    app::App,
    auth::LoginClaims,
    domain::{Actor, Command, Context, IdSource, ScopeId, UserId},
    mail::{spawn_delivery, DeliveryStats, Mailer, RetryPolicy, Templates, Transport},
    store::Metadata,
};
use serde_json::json;

use crate::{
    helpers::{login_token, spawn_app_with, TestApp},
    support::{
        eventually,
        smtp::{ReceivedMail, SmtpServer},
        Backend,
    },
};

pub(crate) fn quick_retries(max_attempts: i32) -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_attempts,
        poll: Duration::from_millis(50),
        rate: None,
    }
}

async fn app_sending_to(backend: Backend, smtp: &str, workflow: Option<&str>) -> TestApp {
    let smtp = smtp.to_string();
    let workflow = workflow.map(|name| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows").join(name));
    spawn_app_with(backend, move |settings| {
        settings.smtp = Some(smtp);
        settings.mail_retry = quick_retries(50);
        settings.public_url = "https://roles.example.org".into();
        if let Some(workflow) = workflow {
            settings.workflow = workflow;
        }
    })
    .await
}

/// Signs `user` in with an email address (so that mail can reach them).
pub(crate) async fn sign_in_with_email(app: &TestApp, user: &str, email: &str) {
    let claims = LoginClaims {
        sub: user.into(),
        exp: Utc::now().timestamp() + 3600,
        email: Some(email.into()),
        name: Some(format!("{user} name")),
        roles: None,
    };
    let answer = app.call(Method::GET, "/api/v1/me", Some(&login_token(claims)), None).await;
    assert_eq!(answer.status, 200);
}

/// The subjects received per address (one entry per mail and recipient).
fn by_address(mails: &[ReceivedMail]) -> BTreeMap<String, Vec<String>> {
    let mut addresses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mail in mails {
        for to in &mail.to {
            addresses.entry(to.clone()).or_default().push(mail.header("Subject").unwrap_or_default());
        }
    }
    addresses
}

/// Waits until the outbox holds no mail that is still to be sent (what came before is out).
async fn no_mail_waiting(app: &TestApp) {
    let empty = || async { app.get_as("root", "/api/v1/outbox?state=pending").await.body["items"] == json!([]) };
    eventually("the mail sent so far to be out", 20, empty).await;
}

/// Waits until `expected` more mails arrived after `already`, then a little longer to see that no more come.
async fn next_mails(smtp: &SmtpServer, already: usize, expected: usize) -> Vec<ReceivedMail> {
    let all = smtp.wait_for(already + expected, 20).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let all_now = smtp.received();
    assert_eq!(all_now.len(), all.len(), "more mail than expected: {:#?}", &all_now[already..]);
    all_now[already..].to_vec()
}

fn addresses(mails: &[ReceivedMail]) -> Vec<String> {
    by_address(mails).into_keys().collect()
}

async fn each_kind_of_mail_reaches_exactly_its_addresses(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp.url(), None).await;
    app.bootstrap_admin("root").await;
    sign_in_with_email(&app, "root", "root@example.org").await;
    for (id, kind, parents, mailbox) in [
        ("EGI", "project", vec![], None),
        ("NGI_A", "ngi", vec!["EGI"], Some("ngi-a@example.org")),
        ("SITE_A", "site", vec!["NGI_A"], Some("site-a@example.org")),
    ] {
        let body =
            json!({"id": id, "kind": kind, "parents": parents, "title": format!("{id} title"), "mailbox": mailbox});
        assert_eq!(app.post_as("root", "/api/v1/scopes", body).await.status, 201);
    }
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "ngim", "ngi-operations-manager", "NGI_A").await;
    // The NGI's manager reads the site's mailbox too: one mail per address all the same.
    sign_in_with_email(&app, "ngim", "SITE-A@example.org").await;
    sign_in_with_email(&app, "alice", "alice@example.org").await;
    assert!(smtp.received().is_empty(), "scopes and assignments send no mail");

    // A new request: its deciders by rule and the scope's mailbox; not the requester, not the admin.
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "I run the CE"});
    let asked = app.post_as("alice", "/api/v1/requests", body).await;
    let request = asked.body["id"].as_str().unwrap().to_string();
    let mails = next_mails(&smtp, 0, 2).await;
    assert_eq!(addresses(&mails), ["manager@example.org", "site-a@example.org"]);
    let mail = &mails[0];
    assert_eq!(mail.header("Subject").unwrap(), "[roleledger] alice name asks for Site Administrator on SITE_A title");
    assert!(mail.text().contains("Reason: I run the CE"), "{}", mail.text());
    assert!(mail.text().contains(&format!("https://roles.example.org/ui/requests/{request}")), "{}", mail.text());
    assert!(mail.data.contains("text/html"), "an HTML alternative: {}", mail.data);
    assert!(mail.header("Message-ID").unwrap().ends_with("@roleledger>"));

    // Approval: the requester and the scope's mailbox.
    let approved = app
        .post_as("manager", &format!("/api/v1/requests/{request}/approve"), json!({"comment": "welcome aboard"}))
        .await;
    let grant = approved.body["grant"].as_str().unwrap().to_string();
    let mails = next_mails(&smtp, 2, 2).await;
    assert_eq!(addresses(&mails), ["alice@example.org", "site-a@example.org"]);
    assert!(mails[0].header("Subject").unwrap().starts_with("[roleledger] Approved: Site Administrator"));
    assert!(
        mails[0].text().contains("approved by manager") && mails[0].text().contains("welcome aboard"),
        "{}",
        mails[0].text()
    );

    // Revocation: the holder and the scope's mailbox.
    app.post_as("manager", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "left"})).await;
    let mails = next_mails(&smtp, 4, 2).await;
    assert_eq!(addresses(&mails), ["alice@example.org", "site-a@example.org"]);
    assert!(mails[0].text().contains("revoked by manager"));

    // Cancellation and rejection: the requester and the scope's mailbox (after the request mails).
    let again = app
        .post_as(
            "alice",
            "/api/v1/requests",
            json!({"role": "site-security-officer", "scope": "SITE_A", "reason": "r"}),
        )
        .await;
    let again = again.body["id"].as_str().unwrap().to_string();
    next_mails(&smtp, 6, 2).await;
    app.post_as("alice", &format!("/api/v1/requests/{again}/cancel"), json!({})).await;
    let mails = next_mails(&smtp, 8, 2).await;
    assert!(mails.iter().all(|m| m.header("Subject").unwrap().starts_with("[roleledger] Cancelled")));
    let third = app
        .post_as(
            "alice",
            "/api/v1/requests",
            json!({"role": "site-security-officer", "scope": "SITE_A", "reason": "r"}),
        )
        .await;
    let third = third.body["id"].as_str().unwrap().to_string();
    next_mails(&smtp, 10, 2).await;
    app.post_as("manager", &format!("/api/v1/requests/{third}/reject"), json!({"reason": "not you"})).await;
    let mails = next_mails(&smtp, 12, 2).await;
    assert_eq!(addresses(&mails), ["alice@example.org", "site-a@example.org"]);
    assert!(mails[0].text().contains("rejected by manager") && mails[0].text().contains("not you"));

    // Nobody holds a role of the project yet, so nobody may decide its roles: the administrators' mailbox.
    app.post_as("alice", "/api/v1/requests", json!({"role": "cod-staff", "scope": "EGI", "reason": "r"})).await;
    let mails = next_mails(&smtp, 14, 1).await;
    assert_eq!(addresses(&mails), ["gocdb-admins@example.org"]);

    // Reminders and expiry, as the scheduler does them at later moments.
    app.post_as(
        "alice",
        "/api/v1/requests",
        json!({"role": "site-operations-deputy-manager", "scope": "SITE_A", "reason": "r"}),
    )
    .await;
    next_mails(&smtp, 15, 2).await;
    roleledger::app::scheduler::expire_due(&app.application, Utc::now() + chrono::Duration::days(8)).await.unwrap();
    let mails = next_mails(&smtp, 17, 3).await;
    assert!(mails.iter().all(|m| m.header("Subject").unwrap().starts_with("[roleledger] Reminder")));
    assert_eq!(addresses(&mails), ["gocdb-admins@example.org", "manager@example.org", "site-a@example.org"]);
    roleledger::app::scheduler::expire_due(&app.application, Utc::now() + chrono::Duration::days(31)).await.unwrap();
    let mails = next_mails(&smtp, 20, 3).await;
    assert!(mails.iter().all(|m| m.header("Subject").unwrap().starts_with("[roleledger] Expired")));
    let expired = by_address(&mails);
    assert_eq!(expired["alice@example.org"].len(), 2, "one mail per expired request");
    assert_eq!(expired["site-a@example.org"].len(), 1);
}

/// Clarive: a role's mailbox is a template on the scope it is held on.
async fn role_mailboxes_are_templates_per_scope(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp.url(), Some("clarive.toml")).await;
    app.bootstrap_admin("root").await;
    assert_eq!(
        app.post_as("root", "/api/v1/scopes", json!({"id": "web", "kind": "project", "title": "Web"})).await.status,
        201
    );
    sign_in_with_email(&app, "rm", "rm@example.org").await;
    sign_in_with_email(&app, "dev", "dev@example.org").await;
    app.assign("root", "rm", "release-manager", "web").await;
    app.post_as("dev", "/api/v1/requests", json!({"role": "developer", "scope": "web", "reason": "code"})).await;
    let mails = next_mails(&smtp, 0, 2).await;
    assert_eq!(addresses(&mails), ["rm@example.org", "web-release@example.org"]);
}

async fn mail_waits_out_an_smtp_outage_and_arrives_once(backend: Backend) {
    let port = SmtpServer::unused_port();
    let app = app_sending_to(backend, &format!("smtp://127.0.0.1:{port}"), None).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        sign_in_with_email(&app, user, &format!("{user}@example.org")).await;
        let answer = app
            .post_as(user, "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"}))
            .await;
        assert_eq!(answer.status, 201, "the API does not wait for mail");
    }
    let attempts_failed =
        || async { !app.get("/metrics").await.text().await.unwrap().contains("roleledger_mail_failed_total 0") };
    eventually("an attempt to fail while the SMTP server is down", 10, attempts_failed).await;
    let smtp = SmtpServer::start_on(port).await;
    let mails = next_mails(&smtp, 0, 5).await;
    let ids: std::collections::BTreeSet<String> = mails.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    assert_eq!(ids.len(), 5, "five distinct mails, none twice");
    let pending = app.get_as("root", "/api/v1/outbox?state=pending").await;
    assert_eq!(pending.body["items"], json!([]));
}

/// A server whose SMTP port (returned) has nobody listening, retrying twice: the mail of alice's
/// request to the manager of SITE_A (manager@example.org) soon dies.
pub(crate) async fn app_whose_mail_dies(backend: Backend) -> (TestApp, u16) {
    let port = SmtpServer::unused_port();
    let app = spawn_app_with(backend, move |settings| {
        settings.smtp = Some(format!("smtp://127.0.0.1:{port}"));
        settings.mail_retry = quick_retries(2);
    })
    .await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.sign_in("alice").await;
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"});
    assert_eq!(app.post_as("alice", "/api/v1/requests", body).await.status, 201);
    (app, port)
}

async fn dead_mail_is_shown_to_admins_and_retried(backend: Backend) {
    let (app, port) = app_whose_mail_dies(backend).await;
    let mut dead = json!([]);
    for _ in 0..100 {
        dead = app.get_as("root", "/api/v1/outbox?state=dead").await.body["items"].clone();
        if dead.as_array().is_some_and(|items| !items.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead[0]["recipient"], "manager@example.org", "{dead}");
    assert_eq!(dead[0]["attempts"], 2);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("cannot send"));
    let id = dead[0]["id"].as_i64().unwrap();
    app.get_as("manager", "/api/v1/outbox?state=dead").await.assert_problem(403, "forbidden");
    app.post_as("manager", &format!("/api/v1/outbox/{id}/retry"), json!({})).await.assert_problem(403, "forbidden");
    app.post_as("root", "/api/v1/outbox/999999/retry", json!({})).await.assert_problem(404, "not_found");
    app.get_as("root", "/api/v1/outbox?state=lost").await.assert_problem(400, "bad_query");

    let smtp = SmtpServer::start_on(port).await;
    let retried = app.post_as("root", &format!("/api/v1/outbox/{id}/retry"), json!({})).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    let mails = next_mails(&smtp, 0, 1).await;
    assert_eq!(addresses(&mails), ["manager@example.org"]);
    app.post_as("root", &format!("/api/v1/outbox/{id}/retry"), json!({})).await.assert_problem(409, "not_dead");
}

/// Fresh mail goes out as soon as its event commits, handed from the writer to this process's
/// worker: with the worker's claims an hour apart, it still arrives at once, sent at its first
/// attempt, and the writer numbers the mail one after another.
async fn fresh_mail_goes_out_at_once_without_waiting_for_a_claim(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(backend, move |settings| {
        settings.smtp = Some(url);
        settings.mail_retry = RetryPolicy { poll: Duration::from_secs(3600), ..quick_retries(5) };
    })
    .await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    no_mail_waiting(&app).await;
    let before = smtp.received().len();
    for user in ["u1", "u2", "u3"] {
        app.sign_in(user).await;
        let answer = app
            .post_as(user, "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"}))
            .await;
        assert_eq!(answer.status, 201);
    }
    let mails = smtp.wait_for(before + 3, 5).await;
    assert_eq!(mails.len(), before + 3, "the requests' mail arrived within 5 s, not at the next claim in an hour");
    assert_eq!(addresses(&mails[before..]), ["manager@example.org"]);
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = app.get_as("root", "/api/v1/outbox?state=sent").await.body["items"].as_array().unwrap().clone();
        if sent.len() == before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), before + 3, "every mail is recorded as sent: {sent:?}");
    assert!(sent.iter().all(|mail| mail["attempts"] == 1), "each at its first attempt: {sent:?}");
    let ids: Vec<i64> = sent.iter().map(|mail| mail["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (ids[0]..ids[0] + ids.len() as i64).collect::<Vec<_>>(), "numbered one after another");
}

/// A batch that committed although the database's answer to the commit was lost (an outage at
/// that moment): the caller gets 503, the request is in the log all the same, and its mail, leased
/// to this process's worker which never got it, goes out at the next claim rather than when the
/// five-minute lease ends.
async fn mail_of_a_commit_whose_answer_was_lost_goes_out_at_the_next_claim(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(backend, &smtp.url(), None).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    no_mail_waiting(&app).await;
    let before = smtp.received().len();
    app.sign_in("u1").await;
    let reason = roleledger::testing::LOSE_COMMIT_ANSWER;
    let answer = app
        .post_as("u1", "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": reason}))
        .await;
    answer.assert_problem(503, "commit_outcome_unknown");
    let written = || async {
        app.get_as("root", "/api/v1/requests?status=pending&user=u1").await.body["items"].as_array().map(Vec::len)
            == Some(1)
    };
    eventually("the request to be seen, though its answer was lost", 10, written).await;
    let mails = next_mails(&smtp, before, 1).await;
    assert_eq!(addresses(&mails), ["manager@example.org"]);
    no_mail_waiting(&app).await;
}

/// `--mail-rate`: ten mails at two a second take over four seconds, though their requests were
/// answered at once, and none is lost or sent twice meanwhile.
#[tokio::test]
async fn mail_keeps_to_its_rate_and_arrives_whole() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.smtp = Some(url);
        settings.mail_retry = RetryPolicy { rate: std::num::NonZeroU32::new(2), ..quick_retries(5) };
    })
    .await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    let users: Vec<String> = (0..10).map(|n| format!("u{n}")).collect();
    for user in &users {
        app.sign_in(user).await;
    }
    no_mail_waiting(&app).await;
    let before = smtp.received().len();
    let started = std::time::Instant::now();
    for user in &users {
        let answer = app
            .post_as(user, "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"}))
            .await;
        assert_eq!(answer.status, 201, "the API does not wait for mail");
    }
    let asked_in = started.elapsed();
    assert!(asked_in < Duration::from_secs(3), "the requests took {asked_in:?}: too slow to see the rate");
    let mails = smtp.wait_for(before + 10, 20).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(3_500), "10 mails at 2 a second took {took:?}");
    let ids: std::collections::BTreeSet<String> =
        mails[before..].iter().map(|m| m.header("Message-ID").unwrap()).collect();
    assert_eq!(ids.len(), 10, "ten distinct mails, none twice");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(smtp.received().len(), before + 10, "no more mail than the requests'");
}

on_both_backends!(
    fresh_mail_goes_out_at_once_without_waiting_for_a_claim,
    mail_of_a_commit_whose_answer_was_lost_goes_out_at_the_next_claim,
    each_kind_of_mail_reaches_exactly_its_addresses,
    role_mailboxes_are_templates_per_scope,
    mail_waits_out_an_smtp_outage_and_arrives_once,
    dead_mail_is_shown_to_admins_and_retried,
);

/// Two server processes on one PostgreSQL, each with its delivery worker: every mail once.
#[tokio::test]
async fn two_delivery_workers_on_one_postgres_send_each_mail_once() {
    let smtp = SmtpServer::start().await;
    let app = app_sending_to(Backend::Postgres, &smtp.url(), None).await;
    let url = smtp.url();
    let _other = spawn_second_with_smtp(&app, &url).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    for manager in ["m1", "m2", "m3"] {
        sign_in_with_email(&app, manager, &format!("{manager}@example.org")).await;
        app.assign("root", manager, "site-operations-manager", "SITE_A").await;
    }
    let mut expected = 0;
    for n in 0..12 {
        let user = format!("user{n}");
        sign_in_with_email(&app, &user, &format!("{user}@example.org")).await;
        let answer = app
            .post_as(&user, "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"}))
            .await;
        assert_eq!(answer.status, 201);
        expected += 3;
    }
    let mails = next_mails(&smtp, 0, expected).await;
    let mut seen = std::collections::BTreeSet::new();
    for mail in &mails {
        assert!(seen.insert((mail.header("Message-ID").unwrap(), mail.to.clone())), "sent twice: {:?}", mail.to);
    }
}

async fn spawn_second_with_smtp(app: &TestApp, smtp: &str) -> TestApp {
    let smtp = smtp.to_string();
    app.second_process_with(move |settings| {
        settings.smtp = Some(smtp);
        settings.mail_retry = quick_retries(50);
    })
    .await
}

/// A worker that dies after sending but before recording it: the mail goes again, with the same
/// Message-ID, once the dead worker's lease runs out.
#[tokio::test]
async fn a_worker_killed_between_send_and_commit_repeats_with_the_same_message_id() {
    let smtp = SmtpServer::start().await;
    let db = crate::support::TestDatabase::new(Backend::Postgres).await;
    let workflow = Arc::new(roleledger::workflow::Workflow::from_file(crate::helpers::default_workflow()).unwrap());
    let application = App::open(&db.url, roleledger::store::Migrations::Apply, workflow).await.unwrap();
    let store = application.store().clone();
    let run = |actor: Actor, command: Command| {
        let application = application.clone();
        async move {
            application
                .execute_in(Context::new(actor, Utc::now(), IdSource::Random), command, Metadata::default())
                .await
                .unwrap()
        }
    };
    let cli = || Actor::CommandLine;
    run(
        cli(),
        Command::RegisterUser { user: UserId::known("alice"), email: Some("alice@example.org".into()), name: None },
    )
    .await;
    run(cli(), Command::RegisterUser { user: UserId::known("bob"), email: None, name: None }).await;
    run(
        cli(),
        Command::CreateScope {
            id: ScopeId::known("SG"),
            kind: "service-group".into(),
            parents: vec![],
            title: "SG".into(),
            mailbox: None,
        },
    )
    .await;
    run(
        Actor::User(UserId::known("bob")),
        Command::RequestRole {
            role: "service-group-administrator".into(),
            scope: ScopeId::known("SG"),
            reason: "r".into(),
            duration: None,
            asked: Default::default(),
        },
    )
    .await;

    let mailer = Arc::new(
        Mailer::new(
            Transport::new(Some(&smtp.url()), PathBuf::new()).unwrap(),
            Templates::load(None).unwrap(),
            "roleledger@localhost",
            "http://x",
        )
        .unwrap(),
    );
    // The first worker claims with a short lease, sends, and dies before recording it.
    let claimed = store.claim_mail(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(claimed.len(), 1, "the administrators' mailbox is told");
    mailer.send(&claimed[0]).await.unwrap();
    // A second worker finds it again after the lease.
    spawn_delivery(store.clone(), mailer, quick_retries(5), Arc::new(DeliveryStats::default()));
    let mails = smtp.wait_for(2, 10).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    assert_eq!(mails[0].header("Message-ID").unwrap(), claimed[0].message_id);
    let sent = || async { store.outbox(Some(roleledger::store::MailState::Sent), 0, 10).await.unwrap().len() };
    eventually("the repeated mail to be marked sent", 10, || async { sent().await >= 1 }).await;
    assert_eq!(sent().await, 1);
}
