//! Deciding from the mail: the Approve and Reject links of a decider's mail, taken from mail
//! received over real SMTP and followed by a browser without cookies of its own. A GET (a mail
//! scanner, or the recipient) decides nothing; only the recipient's confirmation does, judged
//! with their authority of that moment; used, expired, foreign and tampered links decide nothing.

use reqwest::header;
use serde_json::json;

use crate::{
    helpers::{spawn_app_with, token_for, TestApp},
    mail::{quick_retries, sign_in_with_email},
    support::{
        eventually,
        smtp::{ReceivedMail, SmtpServer},
        Backend,
    },
    web::{browser, csrf_in, set_cookie, Web},
};

const PUBLIC_URL: &str = "https://roles.example.org";

/// A server sending to `smtp`; admin `root`; the EGI tree with SITE_A's mailbox; `manager`
/// deciding SITE_A and `outsider` SITE_B, both with addresses.
async fn world(backend: Backend, smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    let app = spawn_app_with(backend, move |settings| {
        settings.smtp = Some(url);
        settings.mail_retry = quick_retries(50);
        settings.public_url = PUBLIC_URL.into();
    })
    .await;
    app.bootstrap_admin("root").await;
    app.egi_tree_with_mailboxes("root", &[("SITE_A", "site-a@example.org")]).await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "outsider", "site-operations-manager", "SITE_B").await;
    sign_in_with_email(&app, "manager", "manager@example.org").await;
    sign_in_with_email(&app, "outsider", "outsider@example.org").await;
    sign_in_with_email(&app, "alice", "alice@example.org").await;
    app
}

/// Alice asks for `role` on SITE_A; waits for the request's two mails (manager, SITE_A's mailbox).
async fn ask(app: &TestApp, smtp: &SmtpServer, role: &str) -> (String, Vec<ReceivedMail>) {
    let body = json!({"role": role, "scope": "SITE_A", "reason": "I run the CE"});
    let asked = app.post_as("alice", "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let request = asked.body["id"].as_str().unwrap().to_string();
    let about = || -> Vec<ReceivedMail> {
        let subject = |m: &ReceivedMail| m.header("Subject").unwrap_or_default();
        let asks = |m: &ReceivedMail| subject(m).contains(" asks for ") && m.text().contains(&request);
        smtp.received().into_iter().filter(asks).collect()
    };
    eventually("the request's mail", 20, || async { about().len() == 2 }).await;
    let mails = about();
    (request, mails)
}

fn mail_to<'a>(mails: &'a [ReceivedMail], address: &str) -> &'a ReceivedMail {
    mails.iter().find(|m| m.to.iter().any(|to| to == address)).unwrap_or_else(|| panic!("no mail to {address}"))
}

/// The path of the link labelled `label` ("Approve", "Reject") in the mail's text.
fn link_path(mail: &ReceivedMail, label: &str) -> String {
    let text = mail.text();
    let line = text.lines().find(|line| line.starts_with(&format!("{label}: "))).unwrap_or_else(|| panic!("{text}"));
    let url = line[label.len() + 2..].trim();
    url.strip_prefix(PUBLIC_URL).unwrap_or_else(|| panic!("a link to the public URL: {url}")).to_string()
}

async fn status_of(app: &TestApp, request: &str) -> String {
    let answer = app.get_as("root", &format!("/api/v1/requests/{request}")).await;
    answer.body["status"].as_str().unwrap().to_string()
}

/// The page's status and text.
async fn read(response: reqwest::Response) -> (u16, String) {
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn confirm(web: &Web, path: &str, comment: &str) -> (u16, String) {
    let csrf = csrf_in(&web.page(path).await);
    read(web.post(path, &[("csrf", &csrf), ("comment", comment)]).await).await
}

async fn a_link_decides_only_when_its_recipient_confirms(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let (request, mails) = ask(&app, &smtp, "site-administrator").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    assert!(approve.starts_with("/ui/m/"), "{approve}");
    assert!(mail_to(&mails, "manager@example.org").data.contains("text/html"));
    let mailbox = mail_to(&mails, "site-a@example.org").text();
    assert!(!mailbox.contains("/ui/m/") && !mailbox.contains("Approve:"), "a mailbox gets no links: {mailbox}");
    let head = app.head().await;

    // A scanner (no cookie) learns nothing of the request and is sent to sign in and back.
    let (status, page) = read(browser().get(format!("{}{approve}", app.address)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let back = format!("/ui/signin?next={}", approve.replace('/', "%2F"));
    assert!(page.contains(&back), "{page}");
    assert!(
        !page.contains("I run the CE") && !page.contains("alice") && !page.contains("site-administrator"),
        "{page}"
    );

    // The recipient sees the request and a button; the GET decides nothing.
    let manager = Web::sign_in(&app, "manager").await;
    let page = manager.page(&approve).await;
    assert!(page.contains("I run the CE") && page.contains("Yes, approve this request"), "{page}");
    // Someone else, signed in, neither sees nor decides it.
    let outsider = Web::sign_in(&app, "outsider").await;
    assert_eq!(outsider.get(&approve).await.status(), 403);
    let csrf = csrf_in(&outsider.page("/ui").await);
    assert_eq!(outsider.post(&approve, &[("csrf", &csrf)]).await.status(), 403);
    // A post without the page's CSRF token decides nothing.
    assert_eq!(manager.post(&approve, &[("comment", "no token")]).await.status(), 403);
    assert_eq!(app.head().await, head, "nothing decided yet");
    assert_eq!(status_of(&app, &request).await, "pending");

    let (status, page) = confirm(&manager, &approve, "from the mail").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("you chose to approve"), "{page}");
    assert_eq!(status_of(&app, &request).await, "approved");
    let approval = app.get_as("root", &format!("/api/v1/requests/{request}")).await;
    assert_eq!(approval.body["decided_by"], "manager", "{:?}", approval.body);

    // Used: the page shows the outcome, and a second post decides nothing.
    let head = app.head().await;
    let page = manager.page(&approve).await;
    assert!(page.contains("already approved") && !page.contains("id=\"confirm\""), "{page}");
    let csrf = csrf_in(&page);
    let (status, page) = read(manager.post(&approve, &[("csrf", &csrf)]).await).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already approved"), "{page}");
    assert_eq!(app.head().await, head);
}

async fn a_link_decides_nothing_once_the_request_was_decided_otherwise_or_expired(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let manager = Web::sign_in(&app, "manager").await;

    // The reject link rejects, with the reason typed on its page.
    let (rejected, mails) = ask(&app, &smtp, "site-administrator").await;
    let reject = link_path(mail_to(&mails, "manager@example.org"), "Reject");
    let (status, page) = confirm(&manager, &reject, "not this one").await;
    assert_eq!(status, 200, "{page}");
    let answer = app.get_as("root", &format!("/api/v1/requests/{rejected}")).await;
    assert_eq!(
        (answer.body["status"].as_str(), answer.body["decision_reason"].as_str()),
        (Some("rejected"), Some("not this one"))
    );

    // Decided through the API after the mail: the link shows that and decides nothing.
    let (cancelled, mails) = ask(&app, &smtp, "site-security-officer").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let csrf = csrf_in(&manager.page(&approve).await);
    assert_eq!(app.post_as("alice", &format!("/api/v1/requests/{cancelled}/cancel"), json!({})).await.status, 200);
    let head = app.head().await;
    let (status, page) = read(manager.post(&approve, &[("csrf", &csrf)]).await).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already cancelled"), "{page}");
    assert!(manager.page(&approve).await.contains("already cancelled"));
    assert_eq!(status_of(&app, &cancelled).await, "cancelled");
    assert_eq!(app.head().await, head);

    // Expired: the scheduler, a month later, expires the request; its link decides nothing.
    let (expired, mails) = ask(&app, &smtp, "site-operations-deputy-manager").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let month_later = chrono::Utc::now() + chrono::Duration::days(31);
    roleledger::app::scheduler::expire_due(&app.application, month_later).await.unwrap();
    assert_eq!(status_of(&app, &expired).await, "expired");
    let head = app.head().await;
    let page = manager.page(&approve).await;
    assert!(page.contains("already expired") && !page.contains("id=\"confirm\""), "{page}");
    let (status, _) = read(manager.post(&approve, &[("csrf", &csrf_in(&page))]).await).await;
    assert_eq!(status, 409);
    assert_eq!(app.head().await, head);
}

async fn a_link_whose_recipient_lost_their_authority_is_refused(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let (request, mails) = ask(&app, &smtp, "site-administrator").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let manager = Web::sign_in(&app, "manager").await;
    let csrf = csrf_in(&manager.page(&approve).await);

    // The manager's role is revoked after the mail went out.
    let grants = app.get_as("root", "/api/v1/grants?user=manager&role=site-operations-manager").await;
    let grant = grants.body["items"][0]["id"].as_str().unwrap().to_string();
    let revoked = app.post_as("root", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "moved on"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let head = app.head().await;
    let (status, page) = read(manager.post(&approve, &[("csrf", &csrf)]).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("no authority to decide"), "the API's refusal, on the page: {page}");
    assert!(!page.contains("I run the CE"), "no longer a decider, no longer shown the request: {page}");
    assert_eq!(app.head().await, head, "nothing written");
    assert_eq!(status_of(&app, &request).await, "pending");
}

async fn a_tampered_or_unknown_token_is_no_page(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let (request, mails) = ask(&app, &smtp, "site-administrator").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let reject = link_path(mail_to(&mails, "manager@example.org"), "Reject");
    let manager = Web::sign_in(&app, "manager").await;
    let csrf = csrf_in(&manager.page("/ui").await);
    let head = app.head().await;

    // The approve link's payload with the reject link's signature, one character changed, junk.
    let (approve_payload, _) = approve.split_once('.').unwrap();
    let (_, reject_signature) = reject.split_once('.').unwrap();
    let mut changed = approve.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let long = format!("/ui/m/{}", "a".repeat(4000));
    for bad in [format!("{approve_payload}.{reject_signature}"), changed, "/ui/m/nothing".into(), long] {
        let (status, page) = read(manager.get(&bad).await).await;
        assert_eq!(status, 404, "{bad}: {page}");
        assert!(!page.contains("I run the CE"));
        assert_eq!(manager.post(&bad, &[("csrf", &csrf)]).await.status(), 404, "{bad}");
    }
    assert_eq!(app.head().await, head);
    assert_eq!(status_of(&app, &request).await, "pending");
}

async fn signing_in_from_a_link_comes_back_to_it_and_never_to_another_site(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let (_, mails) = ask(&app, &smtp, "site-administrator").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let client = browser();

    // Signs in through the page with `next`; answers where the sign-in sends the browser.
    let sign_in = |next: String| {
        let client = client.clone();
        let address = app.address.clone();
        async move {
            let query = serde_urlencoded::to_string([("next", &next)]).unwrap();
            let form = client.get(format!("{address}/ui/signin?{query}")).send().await.unwrap();
            let (nonce, _) = set_cookie(&form, "rl_signin").expect("a sign-in cookie");
            let page = form.text().await.unwrap();
            let csrf = csrf_in(&page);
            let signed_in = client
                .post(format!("{address}/ui/signin"))
                .header(header::COOKIE, format!("rl_signin={nonce}"))
                .form(&[("csrf", csrf.as_str()), ("token", &token_for("manager")), ("next", &next)])
                .send()
                .await
                .unwrap();
            assert_eq!(signed_in.status(), 303, "{next}");
            let location = signed_in.headers()[header::LOCATION].to_str().unwrap().to_string();
            let (cookie, _) = set_cookie(&signed_in, "rl_session").expect("a session");
            (location, cookie)
        }
    };
    let (location, cookie) = sign_in(approve.clone()).await;
    assert_eq!(location, approve);
    for elsewhere in [
        "//evil.example/ui",
        "https://evil.example/ui/m/x",
        "/\\evil.example",
        "/ui//evil.example",
        "/ui/../api/v1/me",
        "/api/v1/me",
        "ui/decide",
        "",
    ] {
        assert_eq!(sign_in(elsewhere.to_string()).await.0, "/ui", "{elsewhere:?}");
    }

    // Already signed in: the sign-in page goes straight back to the link.
    let query = serde_urlencoded::to_string([("next", &approve)]).unwrap();
    let again = client
        .get(format!("{}/ui/signin?{query}", app.address))
        .header(header::COOKIE, format!("rl_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()[header::LOCATION], approve.as_str());
}

async fn every_process_of_the_database_opens_the_link(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    let (request, mails) = ask(&app, &smtp, "site-administrator").await;
    let approve = link_path(mail_to(&mails, "manager@example.org"), "Approve");
    let second = app.second_process().await;
    let seen = app.head().await;
    eventually("the second process to catch up", 20, || async { second.application.projections().position() >= seen })
        .await;
    let manager = Web::sign_in(&second, "manager").await;
    let (status, page) = confirm(&manager, &approve, "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("you chose to approve"), "{page}");
    assert_eq!(status_of(&second, &request).await, "approved", "decided through the second process");
}

async fn a_deciders_address_that_is_also_a_mailbox_gets_no_links(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = world(backend, &smtp).await;
    // SITE_C's mailbox is its manager's own address: the mail there may be read by others.
    let body = json!({"id": "SITE_C", "kind": "site", "parents": ["NGI_A"], "title": "SITE_C", "mailbox": "manager@example.org"});
    assert_eq!(app.post_as("root", "/api/v1/scopes", body).await.status, 201);
    app.assign("root", "manager", "site-operations-manager", "SITE_C").await;
    let body = json!({"role": "site-administrator", "scope": "SITE_C", "reason": "I run the CE"});
    let asked = app.post_as("alice", "/api/v1/requests", body).await;
    let request = asked.body["id"].as_str().unwrap().to_string();
    let about = || smtp.received().into_iter().filter(|m| m.text().contains(&request)).collect::<Vec<_>>();
    eventually("the request's mail", 20, || async { !about().is_empty() }).await;
    // The outbox has all of the request's mail as soon as the request is answered.
    let rows: Vec<_> = app.store.outbox(None, 0, 1000).await.unwrap();
    let rows: Vec<_> = rows.into_iter().filter(|row| row.context["request_id"] == request.as_str()).collect();
    assert_eq!(rows.len(), 1, "one mail per address: {rows:?}");
    assert_eq!((rows[0].recipient.as_str(), &rows[0].context["decider"]), ("manager@example.org", &json!(null)));
    let mail = &about()[0];
    assert!(!mail.text().contains("/ui/m/"), "{}", mail.text());
}

on_both_backends!(
    a_link_decides_only_when_its_recipient_confirms,
    a_link_decides_nothing_once_the_request_was_decided_otherwise_or_expired,
    a_link_whose_recipient_lost_their_authority_is_refused,
    a_tampered_or_unknown_token_is_no_page,
    signing_in_from_a_link_comes_back_to_it_and_never_to_another_site,
    a_deciders_address_that_is_also_a_mailbox_gets_no_links,
    every_process_of_the_database_opens_the_link,
);
