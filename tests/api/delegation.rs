//! Escalation and delegation (SPEC part two) through real HTTP on both backends: delegates decide
//! what their delegators may, within a scope, never their own matters, never delegated further;
//! stages escalate at `escalate_after` as the scheduler (driven here with a controlled clock) finds them.

use chrono::{Duration as Span, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, spawn_app_on, Answer, TestApp},
    identity::written_mail_now,
    support::{eventually, smtp::ReceivedMail, Backend},
};
use roleledger::app::scheduler::expire_due;

/// RFC 3339, `days` from now.
fn in_days(days: i64) -> String {
    (Utc::now() + Span::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// EGI: project EGI ⊃ NGI_A ⊃ SITE_A, SITE_B; `ngim` manages NGI_A (decides both sites' requests).
async fn egi(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "ngim", "ngi-operations-manager", "NGI_A").await;
    for user in ["alice", "bob", "carol"] {
        app.sign_in(user).await;
    }
    app
}

async fn delegate(app: &TestApp, from: &str, body: Value) -> Answer {
    app.post_as(from, "/api/v1/delegations", body).await
}

async fn ask(app: &TestApp, user: &str, role: &str, scope: &str) -> String {
    ask_with(app, user, json!({"role": role, "scope": scope, "reason": "r"})).await
}

/// Clarive's change managers answer the role's required question.
async fn ask_change_manager(app: &TestApp, user: &str) -> String {
    let body = json!({"role": "change-manager", "scope": "alm", "reason": "r", "answers": {"change-board": "CAB-1"}});
    ask_with(app, user, body).await
}

async fn ask_with(app: &TestApp, user: &str, body: Value) -> String {
    let asked = app.post_as(user, "/api/v1/requests", body).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    asked.body["id"].as_str().unwrap().to_string()
}

async fn approve(app: &TestApp, user: &str, request: &str) -> Answer {
    app.post_as(user, &format!("/api/v1/requests/{request}/approve"), json!({"comment": "ok"})).await
}

/// Asserts a refusal and that it wrote nothing.
#[track_caller]
fn refused(answer: &Answer, status: u16, code: &str, head: i64, now: i64) {
    answer.assert_problem(status, code);
    assert_eq!(head, now, "a refused call writes nothing");
}

/// The data of the log's events of one type, as an auditor reads them.
async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    let events = app.get_as("root", &format!("/api/v1/events?type={kind}&limit=1000")).await;
    assert_eq!(events.status, 200, "{:?}", events.body);
    events.body["items"].as_array().unwrap().iter().map(|e| e["data"].clone()).collect()
}

async fn a_delegate_decides_within_the_scope_and_the_decision_records_on_behalf_of(backend: Backend) {
    let app = egi(backend).await;
    let given =
        delegate(&app, "ngim", json!({"to": "bob", "until": in_days(7), "scope": "SITE_A", "reason": "holiday"})).await;
    assert_eq!(given.status, 201, "{:?}", given.body);
    assert_eq!(
        (given.body["from"].as_str(), given.body["to"].as_str(), given.body["active"].as_bool()),
        (Some("ngim"), Some("bob"), Some(true))
    );
    let inside = ask(&app, "alice", "site-administrator", "SITE_A").await;
    let outside = ask(&app, "alice", "site-administrator", "SITE_B").await;

    // Listed among the deciders with their delegator; decidable for them.
    let shown = app.get_as("bob", &format!("/api/v1/requests/{inside}")).await;
    assert_eq!(shown.status, 200, "the delegate sees what they may decide: {:?}", shown.body);
    let deciders = shown.body["deciders"].as_array().unwrap();
    let bob = deciders.iter().find(|d| d["user"] == "bob").expect("the delegate is a decider");
    assert_eq!((&bob["delegate_of"], bob.get("escalation"), &bob["admin_only"]), (&json!("ngim"), None, &json!(false)));
    assert!(deciders.iter().find(|d| d["user"] == "ngim").unwrap().get("delegate_of").is_none());
    let decidable = app.get_as("bob", "/api/v1/requests?decidable=true").await;
    let ids: Vec<&str> =
        decidable.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [inside.as_str()]);

    // Outside the delegation's scope: not a decider, nothing written.
    let head = app.head().await;
    refused(&approve(&app, "bob", &outside).await, 403, "not_a_decider", head, app.head().await);

    let approved = approve(&app, "bob", &inside).await;
    assert_eq!((approved.status, approved.body["status"].as_str()), (200, Some("approved")), "{:?}", approved.body);
    assert_eq!(approved.body["approvals"][0]["on_behalf_of"], "ngim");
    let recorded = events_of(&app, "RequestApproved").await;
    assert_eq!((&recorded[0]["by"], &recorded[0]["on_behalf_of"]), (&json!({"user": "bob"}), &json!("ngim")));

    // Revoking through the delegation records the delegator too.
    let grant = approved.body["grant"].as_str().unwrap();
    let revoked = app.post_as("bob", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "done"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(events_of(&app, "GrantRevoked").await[0]["on_behalf_of"], "ngim");
}

async fn a_delegate_never_decides_their_own_request(backend: Backend) {
    let app = egi(backend).await;
    assert_eq!(delegate(&app, "ngim", json!({"to": "alice", "until": "30d", "reason": "r"})).await.status, 201);
    let own = ask(&app, "alice", "site-administrator", "SITE_A").await;
    let head = app.head().await;
    refused(&approve(&app, "alice", &own).await, 403, "self_approval", head, app.head().await);
    let rejected = app.post_as("alice", &format!("/api/v1/requests/{own}/reject"), json!({"reason": "x"})).await;
    refused(&rejected, 403, "self_approval", head, app.head().await);
    let shown = app.get_as("alice", &format!("/api/v1/requests/{own}")).await;
    assert!(shown.body["deciders"].as_array().unwrap().iter().all(|d| d["user"] != "alice"));
    // The delegator's own request: the delegate may not decide it for them.
    let theirs = ask(&app, "ngim", "site-administrator", "SITE_B").await;
    let head = app.head().await;
    refused(&approve(&app, "alice", &theirs).await, 403, "not_a_decider", head, app.head().await);
}

async fn refused_delegations_write_nothing(backend: Backend) {
    let app = egi(backend).await;
    assert_eq!(delegate(&app, "ngim", json!({"to": "bob", "until": in_days(10), "reason": "r"})).await.status, 201);
    let head = app.head().await;
    for (from, body, status, code) in [
        // Delegated authority is no basis for a delegation.
        ("bob", json!({"to": "carol", "until": in_days(1), "reason": "r"}), 403, "no_authority_to_delegate"),
        // An admin's admin power is not delegated.
        ("root", json!({"to": "carol", "until": in_days(1), "reason": "r"}), 403, "no_authority_to_delegate"),
        ("ngim", json!({"to": "carol", "until": in_days(91), "reason": "r"}), 422, "delegation_too_long"),
        ("ngim", json!({"to": "carol", "until": "91d", "reason": "r"}), 422, "delegation_too_long"),
        ("ngim", json!({"to": "carol", "until": in_days(-1), "reason": "r"}), 422, "until_in_past"),
        ("ngim", json!({"to": "ngim", "until": in_days(1), "reason": "r"}), 422, "self_delegation"),
        ("ngim", json!({"to": "carol", "until": "P100000000D", "reason": "r"}), 422, "invalid_duration"),
        ("ngim", json!({"to": "nobody", "until": in_days(1), "reason": "r"}), 422, "unknown_user"),
        ("ngim", json!({"to": "carol", "until": in_days(1), "scope": "NOWHERE", "reason": "r"}), 422, "unknown_scope"),
        ("ngim", json!({"to": "carol", "until": "soon", "reason": "r"}), 400, "malformed_body"),
    ] {
        let answer = delegate(&app, from, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{from} {body}: {:?}", answer.body);
        refused(&answer, status, code, head, app.head().await);
    }
    // At most 90 days is fine.
    assert_eq!(delegate(&app, "ngim", json!({"to": "carol", "until": "90d", "reason": "r"})).await.status, 201);
}

async fn a_delegator_and_their_delegate_count_once(backend: Backend) {
    // Clarive: a change manager needs two release managers' approvals, one per stage.
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    assert_eq!(app.create_scope("root", "alm", "project", &[]).await.status, 201);
    app.assign("root", "rita", "release-manager", "alm").await;
    app.assign("root", "rob", "release-manager", "alm").await;
    for user in ["dan", "alice"] {
        app.sign_in(user).await;
    }
    assert_eq!(delegate(&app, "rita", json!({"to": "dan", "until": "7d", "reason": "r"})).await.status, 201);
    let asked = ask_change_manager(&app, "alice").await;
    let first = approve(&app, "rita", &asked).await;
    assert_eq!((first.status, first.body["stage"].as_u64()), (200, Some(1)), "{:?}", first.body);
    let head = app.head().await;
    refused(&approve(&app, "dan", &asked).await, 409, "already_approved", head, app.head().await);
    let done = approve(&app, "rob", &asked).await;
    assert_eq!(done.body["status"], "approved", "{:?}", done.body);

    // The other way round: the delegate first, then the delegator.
    let staged = ask_change_manager(&app, "rob").await;
    assert_eq!(approve(&app, "dan", &staged).await.status, 200);
    let head = app.head().await;
    refused(&approve(&app, "rita", &staged).await, 409, "already_approved", head, app.head().await);
}

async fn ending_a_delegation_early_or_at_its_until(backend: Backend) {
    let app = egi(backend).await;
    let given = delegate(&app, "ngim", json!({"to": "bob", "until": in_days(5), "reason": "r"})).await;
    let id = given.body["id"].as_str().unwrap().to_string();
    let asked = ask(&app, "alice", "site-administrator", "SITE_A").await;
    let head = app.head().await;
    refused(
        &app.delete_as("bob", &format!("/api/v1/delegations/{id}")).await,
        403,
        "forbidden",
        head,
        app.head().await,
    );
    let unknown = app.delete_as("ngim", &format!("/api/v1/delegations/{}", uuid::Uuid::new_v4())).await;
    refused(&unknown, 404, "not_found", head, app.head().await);
    assert_eq!(app.delete_as("ngim", &format!("/api/v1/delegations/{id}")).await.status, 204);
    let ended = events_of(&app, "DelegationEnded").await;
    assert_eq!((ended.len(), &ended[0]["early"]), (1, &json!(true)));
    let head = app.head().await;
    refused(&approve(&app, "bob", &asked).await, 403, "not_a_decider", head, app.head().await);
    refused(
        &app.delete_as("ngim", &format!("/api/v1/delegations/{id}")).await,
        409,
        "not_active",
        head,
        app.head().await,
    );

    // An admin may end anyone's; the scheduler ends the rest at their until, once.
    let second = delegate(&app, "ngim", json!({"to": "carol", "until": "2d", "reason": "r"})).await;
    let third = delegate(&app, "ngim", json!({"to": "bob", "until": "1d", "reason": "r"})).await;
    let second = second.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.delete_as("root", &format!("/api/v1/delegations/{second}")).await.status, 204);
    let head = app.head().await;
    refused(&approve(&app, "carol", &asked).await, 403, "not_a_decider", head, app.head().await);
    let later = Utc::now() + Span::days(1) + Span::minutes(1);
    assert_eq!(expire_due(&app.application, later).await.unwrap().delegations, 1);
    assert_eq!(expire_due(&app.application, later).await.unwrap().delegations, 0);
    let ended = events_of(&app, "DelegationEnded").await;
    assert_eq!(ended.len(), 3);
    assert_eq!((&ended[2]["delegation"], &ended[2]["early"]), (&third.body["id"], &json!(false)));
    // Ended by the scheduler's event, the delegation gives nothing any more.
    let head = app.head().await;
    refused(&approve(&app, "bob", &asked).await, 403, "not_a_decider", head, app.head().await);
    let listed = app.get_as("bob", "/api/v1/delegations").await;
    assert!(listed.body["items"].as_array().unwrap().iter().all(|d| d["active"] == false), "{:?}", listed.body);
    // The delegations fold into the read model exactly as a rebuild from the log does.
    let verified = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(verified.body["ok"], true, "{:?}", verified.body);
}

async fn delegations_are_listed_for_those_they_concern(backend: Backend) {
    let app = egi(backend).await;
    app.assign("root", "aud", "auditor", "global").await;
    delegate(&app, "ngim", json!({"to": "bob", "until": "3d", "reason": "holiday"})).await;
    let ids = |answer: &Answer| -> Vec<(String, String)> {
        answer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["from"].as_str().unwrap().into(), d["to"].as_str().unwrap().into()))
            .collect()
    };
    let pair = vec![("ngim".to_string(), "bob".to_string())];
    assert_eq!(ids(&app.get_as("ngim", "/api/v1/delegations").await), pair, "given");
    assert_eq!(ids(&app.get_as("bob", "/api/v1/delegations?user=bob").await), pair, "received");
    assert!(ids(&app.get_as("carol", "/api/v1/delegations").await).is_empty());
    app.get_as("carol", "/api/v1/delegations?user=bob").await.assert_problem(403, "forbidden");
    assert_eq!(ids(&app.get_as("aud", "/api/v1/delegations?user=bob").await), pair);
    assert_eq!(ids(&app.get_as("root", "/api/v1/delegations?user=ngim").await), pair);
}

/// The .eml files the server has written to `to`, once there are at least `count`.
async fn mail_to(app: &TestApp, to: &str, count: usize) -> Vec<ReceivedMail> {
    let read = || -> Vec<ReceivedMail> {
        let mut mails = written_mail_now(app);
        mails.retain(|mail| mail.header("To").is_some_and(|header| header.contains(to)));
        mails
    };
    eventually(&format!("{count} mails to {to}"), 20, || async { read().len() >= count }).await;
    read()
}

async fn the_delegate_receives_the_mail_the_delegator_would(backend: Backend) {
    let app = egi(backend).await;
    delegate(&app, "ngim", json!({"to": "bob", "until": "3d", "scope": "SITE_A", "reason": "holiday"})).await;
    ask(&app, "alice", "site-administrator", "SITE_B").await;
    ask(&app, "alice", "site-administrator", "SITE_A").await;
    let mails = mail_to(&app, "bob@example.org", 1).await;
    assert_eq!(mails.len(), 1, "only the request within the delegation's scope");
    assert!(mails[0].header("Subject").unwrap().contains("SITE_A"), "{:?}", mails[0].header("Subject"));
    assert_eq!(mail_to(&app, "ngim@example.org", 2).await.len(), 2, "the delegator keeps their mail");
}

/// EGI: a site request escalates after 14 days to the chief operations officer of the project.
async fn escalation_at_escalate_after_lets_the_escalation_deciders_decide(backend: Backend) {
    let app = egi(backend).await;
    app.assign("root", "coo", "chief-operations-officer", "EGI").await;
    let asked = ask(&app, "alice", "site-administrator", "SITE_A").await;
    let head = app.head().await;
    refused(&approve(&app, "coo", &asked).await, 403, "not_a_decider", head, app.head().await);
    let decidable = app.get_as("coo", "/api/v1/requests?decidable=true").await;
    assert!(decidable.body["items"].as_array().unwrap().is_empty());

    assert_eq!(expire_due(&app.application, Utc::now() + Span::days(13)).await.unwrap().escalations, 0);
    assert!(events_of(&app, "RequestEscalated").await.is_empty());
    let later = Utc::now() + Span::days(14) + Span::minutes(1);
    assert_eq!(expire_due(&app.application, later).await.unwrap().escalations, 1);
    assert_eq!(expire_due(&app.application, later).await.unwrap().escalations, 0, "once per stage");
    let escalated = events_of(&app, "RequestEscalated").await;
    assert_eq!((escalated.len(), &escalated[0]["request"], &escalated[0]["stage"]), (1, &json!(asked), &json!(0)));

    let shown = app.get_as("coo", &format!("/api/v1/requests/{asked}")).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    let deciders = shown.body["deciders"].as_array().unwrap();
    let coo = deciders.iter().find(|d| d["user"] == "coo").expect("listed");
    assert_eq!(coo["escalation"], true);
    assert!(deciders.iter().find(|d| d["user"] == "ngim").unwrap().get("escalation").is_none(), "only when escalated");
    let decidable = app.get_as("coo", "/api/v1/requests?decidable=true").await;
    assert_eq!(decidable.body["items"][0]["id"], json!(asked));
    let mails = mail_to(&app, "coo@example.org", 1).await;
    assert!(
        mails[0].header("Subject").unwrap().starts_with("[roleledger] Escalated to you"),
        "{:?}",
        mails[0].header("Subject")
    );
    let approved = approve(&app, "coo", &asked).await;
    assert_eq!((approved.status, approved.body["status"].as_str()), (200, Some("approved")), "{:?}", approved.body);
}

async fn escalation_happens_once_across_two_processes(backend: Backend) {
    let app = egi(backend).await;
    app.assign("root", "coo", "chief-operations-officer", "EGI").await;
    for user in ["alice", "bob", "carol"] {
        ask(&app, user, "site-administrator", "SITE_A").await;
    }
    let second = app.second_process().await;
    let head = app.head().await;
    eventually("the second process caught up", 10, || async {
        second.application.read_model(|model| model.position()) >= head
    })
    .await;
    let later = Utc::now() + Span::days(15);
    let (a, b) = tokio::join!(expire_due(&app.application, later), expire_due(&second.application, later));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.escalations + b.escalations, 3, "{a:?} {b:?}");
    assert_eq!(events_of(&app, "RequestEscalated").await.len(), 3, "each request once");
    let verified = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(verified.body["ok"], true, "{:?}", verified.body);
}

on_both_backends!(
    a_delegate_decides_within_the_scope_and_the_decision_records_on_behalf_of,
    a_delegate_never_decides_their_own_request,
    refused_delegations_write_nothing,
    a_delegator_and_their_delegate_count_once,
    ending_a_delegation_early_or_at_its_until,
    delegations_are_listed_for_those_they_concern,
    the_delegate_receives_the_mail_the_delegator_would,
    escalation_at_escalate_after_lets_the_escalation_deciders_decide,
    escalation_happens_once_across_two_processes,
);
