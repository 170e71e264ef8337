//! SPEC part two, "Extending, shortening, starting later, asking on someone's behalf", through real
//! HTTP on both backends: extension requests and the end they move (the scheduler driven at chosen
//! moments), approvals that shorten, grants that start later, requests made for someone else and
//! the mail both people get, the role's questions and `decision_reason = "required"`. Every
//! refusal answers its code and writes nothing.

use chrono::{DateTime, Duration, Utc};
use roleledger::app::scheduler::expire_due;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, Answer, TestApp},
    identity::written_mail_now,
    mail::sign_in_with_email,
    support::{eventually, Backend},
};

const ABSURD: &str = "P100000000D";

/// A small policy: `manager`s of a site decide its requests; `operator` lasts at most 90 days and
/// asks a question; `viewer` has no end.
fn workflow(extra_settings: &str) -> String {
    format!(
        r#"name = "governance"
description = "Extensions, later starts, requests on someone's behalf"

[settings]
request_ttl = "P30D"
reminder_interval = "P7D"
admin_mailbox = "admins@example.org"
incompatible = [["operator", "inspector"]]
{extra_settings}

[kinds.site]
title = "Site"

[roles.manager]
title = "Manager"
kinds = ["site"]
permissions = ["site.manage"]

[roles.operator]
title = "Operator"
kinds = ["site"]
permissions = ["site.operate"]
max_duration = "P90D"
questions = [
  {{ id = "queue", text = "Which ticket queue do you watch?", required = true }},
  {{ id = "shift", text = "Which shift?" }},
]

[roles.viewer]
title = "Viewer"
kinds = ["site"]
permissions = ["site.view"]

[roles.inspector]
title = "Inspector"
kinds = ["site"]
permissions = ["site.inspect"]

[[rules]]
for_kind = "site"
deciders = ["manager@same"]
"#
    )
}

/// The server on the policy above: admin `root`, site `S1` with managers `mia` and `max`, and the
/// users `olga` and `pete`, each with a mail address.
async fn governance(backend: Backend, extra_settings: &str) -> (TestApp, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("governance.toml");
    std::fs::write(&path, workflow(extra_settings)).unwrap();
    let app = spawn_app_with(backend, |settings| settings.workflow = path).await;
    app.bootstrap_admin("root").await;
    assert_eq!(app.create_scope("root", "S1", "site", &[]).await.status, 201);
    for user in ["mia", "max", "olga", "pete"] {
        sign_in_with_email(&app, user, &format!("{user}@example.org")).await;
    }
    for manager in ["mia", "max"] {
        app.assign("root", manager, "manager", "S1").await;
    }
    (app, folder)
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok()).expect("an RFC 3339 time").into()
}

fn id(answer: &Answer) -> String {
    assert!(answer.status == 200 || answer.status == 201, "{:?}", answer.body);
    answer.body["id"].as_str().expect("an id").to_string()
}

/// `olga` asks for `operator` on S1 with `extra` fields in the body; `mia` approves.
async fn operator_for_olga(app: &TestApp, extra: Value) -> String {
    let mut body = json!({"role": "operator", "scope": "S1", "reason": "on call", "answers": {"queue": "ops"}});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let request = id(&app.post_as("olga", "/api/v1/requests", body).await);
    let approved = app.post_as("mia", &format!("/api/v1/requests/{request}/approve"), json!({"comment": "ok"})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    approved.body["grant"].as_str().expect("granted").to_string()
}

/// The grants of `user` as `GET /grants?as_of=` lists them.
async fn grants_as_of(app: &TestApp, user: &str, as_of: &str) -> Vec<Value> {
    let as_of = as_of.replace('+', "%2B");
    let answer = app.get_as("root", &format!("/api/v1/grants?user={user}&as_of={as_of}")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["items"].as_array().unwrap().clone()
}

/// How many of the mails written so far went to `to` with `subject` in their subject.
fn mails_to(app: &TestApp, to: &str, subject: &str) -> usize {
    let mails = written_mail_now(app);
    mails
        .iter()
        .filter(|mail| mail.header("To").is_some_and(|address| address.contains(to)))
        .filter(|mail| mail.header("Subject").is_some_and(|text| text.contains(subject)))
        .count()
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn an_approved_extension_moves_the_end_and_expiry_follows_it(backend: Backend) {
    let (app, folder) = governance(backend, "").await;
    let grant = operator_for_olga(&app, json!({"duration": "P30D"})).await;
    let path = format!("/api/v1/grants/{grant}");
    let before = app.get_as("olga", &path).await.body;
    let old_end = time(&before["ends_at"]);
    // Holding the role does not make an extension a duplicate.
    let asked = app.post_as("olga", &format!("{path}/extend"), json!({"duration": "P20D", "reason": "project"})).await;
    assert_eq!((asked.status, &asked.body["extends"], &asked.body["status"]), (201, &json!(grant), &json!("pending")));
    let shown = app.get_as("mia", &format!("/api/v1/requests/{}", id(&asked))).await;
    assert_eq!((shown.status, &shown.body["extends"]), (200, &json!(grant)), "{:?}", shown.body);
    let head_before_extension = app.head().await;
    let approved = app.post_as("mia", &format!("/api/v1/requests/{}/approve", id(&asked)), json!({})).await;
    assert_eq!((approved.status, &approved.body["status"]), (200, &json!("approved")), "{:?}", approved.body);
    let after = app.get_as("olga", &path).await.body;
    assert_eq!(time(&after["ends_at"]), old_end + Duration::days(20));
    assert_eq!(after["status"], "active");
    let events = app.get_as("root", "/api/v1/events?type=GrantExtended").await.body;
    assert_eq!(events["items"][0]["data"]["grant"], json!(grant), "{events}");
    // Mailed as a request: its deciders are asked, its requester hears the outcome (both times).
    let mails = |to: &'static str, subject: &'static str| {
        let app = &app;
        move || async move { mails_to(app, to, subject) == 2 }
    };
    eventually("two requests mailed to mia", 20, mails("mia@example.org", "asks for Operator")).await;
    eventually("two approvals mailed to olga", 20, mails("olga@example.org", "Approved")).await;

    // As it stood before the extension: the old end. After the old end, as known now: still given.
    let then = grants_as_of(&app, "olga", &head_before_extension.to_string()).await;
    assert_eq!(then.len(), 1);
    assert_eq!(time(&then[0]["ends_at"]), old_end);
    let between = rfc3339(old_end + Duration::days(5));
    assert_eq!(grants_as_of(&app, "olga", &between).await.len(), 1, "given between the old and the new end");
    let past_new_end = rfc3339(old_end + Duration::days(21));
    assert!(grants_as_of(&app, "olga", &past_new_end).await.is_empty(), "nothing past the new end");

    // The scheduler at the old end expires nothing; at the new end it expires the grant.
    let expired = expire_due(&app.application, old_end + Duration::hours(1)).await.unwrap();
    assert_eq!(expired.grants, 0);
    assert_eq!(app.get_as("olga", &path).await.body["status"], "active");
    assert!(app.allowed("olga", "site.operate", "S1").await);
    let expired = expire_due(&app.application, old_end + Duration::days(20) + Duration::hours(1)).await.unwrap();
    assert_eq!(expired.grants, 1);
    assert_eq!(app.get_as("olga", &path).await.body["status"], "expired");
    assert!(!app.allowed("olga", "site.operate", "S1").await);
    let verified = app.get_as("root", "/api/v1/audit/verify").await.body;
    assert_eq!(verified["ok"], true, "{verified}");
    // Another process folds the log afresh at its start: the same history, the same answers.
    let workflow = folder.path().join("governance.toml");
    let rebuilt = app.second_process_with(|settings| settings.workflow = workflow).await;
    let then_again = rebuilt.get_as("root", &format!("/api/v1/grants?user=olga&as_of={head_before_extension}")).await;
    assert_eq!(then_again.body["items"], json!(then));
    assert_eq!(rebuilt.get_as("olga", &path).await.body, app.get_as("olga", &path).await.body);
    assert_eq!(rebuilt.get_as("root", "/api/v1/audit/verify").await.body, verified);
}

async fn an_extension_never_passes_the_roles_longest_duration(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let grant = operator_for_olga(&app, json!({"duration": "P80D"})).await;
    let asked = app.post_as("olga", &format!("/api/v1/grants/{grant}/extend"), json!({"duration": "P60D"})).await;
    let approved = app.post_as("mia", &format!("/api/v1/requests/{}/approve", id(&asked)), json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let after = app.get_as("olga", &format!("/api/v1/grants/{grant}")).await.body;
    let decided_at = time(&approved.body["decided_at"]);
    assert_eq!(time(&after["ends_at"]), decided_at + Duration::days(90), "at most 90 days from the approval");
}

async fn extensions_are_refused_with_their_codes_and_write_nothing(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let grant = operator_for_olga(&app, json!({"duration": "P30D"})).await;
    let extend = |grant: String, body: Value| {
        let app = &app;
        async move { app.post_as("olga", &format!("/api/v1/grants/{grant}/extend"), body).await }
    };
    let head = app.head().await;
    // Someone else's grant; a team's grant.
    let others = app.post_as("pete", &format!("/api/v1/grants/{grant}/extend"), json!({"duration": "P5D"})).await;
    others.assert_problem(403, "forbidden");
    // No end; durations that cannot be; longer than the role allows.
    assert_eq!(app.head().await, head, "nothing written");
    let viewer = app.assign("mia", "olga", "viewer", "S1").await;
    let head_after_viewer = app.head().await;
    extend(viewer, json!({"duration": "P5D"})).await.assert_problem(422, "no_end");
    extend(grant.clone(), json!({"duration": ABSURD})).await.assert_problem(422, "invalid_duration");
    extend(grant.clone(), json!({"duration": "P91D"})).await.assert_problem(422, "duration_too_long");
    assert_eq!(app.head().await, head_after_viewer, "nothing written");
    // An extension already pending.
    let asked = extend(grant.clone(), json!({"duration": "P5D"})).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let head = app.head().await;
    extend(grant.clone(), json!({"duration": "P6D"})).await.assert_problem(409, "duplicate_request");
    // Approving it longer than asked, or past 100 years.
    let approve = format!("/api/v1/requests/{}/approve", id(&asked));
    app.post_as("mia", &approve, json!({"duration": "P6D"})).await.assert_problem(422, "duration_too_long");
    app.post_as("mia", &approve, json!({"duration": ABSURD})).await.assert_problem(422, "invalid_duration");
    assert_eq!(app.head().await, head, "nothing written");
    // A grant no longer active.
    let revoked = app.post_as("olga", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "done"})).await;
    assert_eq!(revoked.status, 200);
    let head = app.head().await;
    app.post_as("mia", &approve, json!({})).await.assert_problem(409, "not_active");
    assert_eq!(app.get_as("olga", &format!("/api/v1/requests/{}", id(&asked))).await.body["status"], "pending");
    assert_eq!(app.head().await, head, "nothing written");
    let cancelled = app.post_as("olga", &format!("/api/v1/requests/{}/cancel", id(&asked)), json!({})).await;
    assert_eq!(cancelled.status, 200);
    let head = app.head().await;
    extend(grant, json!({"duration": "P5D"})).await.assert_problem(409, "not_active");
    assert_eq!(app.head().await, head, "nothing written");
    // Team grants are extended by a decider's direct assignment, not by members.
    assert_eq!(app.post_as("root", "/api/v1/teams", json!({"id": "night", "title": "Night"})).await.status, 201);
    assert_eq!(app.put_as("root", "/api/v1/teams/night/members/olga", None).await.status, 200);
    let team = json!({"team": "night", "role": "operator", "scope": "S1", "reason": "x", "duration": "P10D"});
    let team_grant = id(&app.post_as("mia", "/api/v1/grants", team).await);
    let head = app.head().await;
    extend(team_grant.clone(), json!({"duration": "P5D"})).await.assert_problem(403, "forbidden");
    assert_eq!(app.head().await, head, "nothing written");
    // A decider continues it with a grant starting at its end; not with one overlapping it.
    let end = app.get_as("mia", &format!("/api/v1/grants/{team_grant}")).await.body["ends_at"].clone();
    let overlapping = time(&end) - Duration::hours(1);
    let continued = |starts_at: String| json!({"team": "night", "role": "operator", "scope": "S1", "reason": "y", "duration": "P10D", "starts_at": starts_at});
    let refused = app.post_as("mia", "/api/v1/grants", continued(rfc3339(overlapping))).await;
    refused.assert_problem(409, "duplicate_request");
    assert_eq!(app.head().await, head, "nothing written");
    let continued = app.post_as("mia", "/api/v1/grants", continued(end.as_str().unwrap().to_string())).await;
    assert_eq!((continued.status, &continued.body["status"]), (201, &json!("scheduled")), "{:?}", continued.body);
}

async fn an_approval_may_shorten_never_lengthen(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let body = json!({"role": "operator", "scope": "S1", "reason": "r", "duration": "P60D", "answers": {"queue": "q"}});
    let request = id(&app.post_as("olga", "/api/v1/requests", body).await);
    let approve = format!("/api/v1/requests/{request}/approve");
    let head = app.head().await;
    app.post_as("mia", &approve, json!({"duration": "P61D"})).await.assert_problem(422, "duration_too_long");
    app.post_as("mia", &approve, json!({"duration": ABSURD})).await.assert_problem(422, "invalid_duration");
    assert_eq!(app.head().await, head, "nothing written");
    let approved = app.post_as("mia", &approve, json!({"comment": "ten days", "duration": "10d"})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert!(approved.body["approvals"][0]["duration"].is_string(), "{:?}", approved.body);
    let grant = app.get_as("olga", &format!("/api/v1/grants/{}", approved.body["grant"].as_str().unwrap())).await;
    assert_eq!(time(&grant.body["ends_at"]) - time(&grant.body["granted_at"]), Duration::days(10));
    let events = app.get_as("root", "/api/v1/events?type=RequestApproved").await.body;
    assert!(events["items"][0]["data"]["duration"].is_string(), "{events}");
    // Without a duration asked, the role's longest is the ceiling.
    let viewer = json!({"role": "operator", "scope": "S1", "reason": "r", "answers": {"queue": "q"}});
    let request = id(&app.post_as("pete", "/api/v1/requests", viewer).await);
    let approve = format!("/api/v1/requests/{request}/approve");
    app.post_as("mia", &approve, json!({"duration": "P91D"})).await.assert_problem(422, "duration_too_long");
    assert_eq!(app.post_as("mia", &approve, json!({"duration": "P90D"})).await.status, 200);
}

async fn a_grant_that_starts_later_gives_nothing_before_its_start(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let now = Utc::now();
    let head = app.head().await;
    for (starts_at, why) in
        [(now - Duration::hours(1), "not in the future"), (now + Duration::days(366), "more than a year ahead")]
    {
        let body = json!({"role": "viewer", "scope": "S1", "reason": "r", "starts_at": rfc3339(starts_at)});
        app.post_as("olga", "/api/v1/requests", body).await.assert_problem(422, "invalid_starts_at");
        let body =
            json!({"user": "olga", "role": "viewer", "scope": "S1", "reason": "r", "starts_at": rfc3339(starts_at)});
        let answer = app.post_as("mia", "/api/v1/grants", body).await;
        answer.assert_problem(422, "invalid_starts_at");
        assert!(answer.body["detail"].as_str().unwrap().contains(why), "{:?}", answer.body);
    }
    // In whole microseconds, as the log keeps times.
    let starts_at = DateTime::from_timestamp_micros((now + Duration::days(2)).timestamp_micros()).unwrap();
    let body =
        json!({"role": "viewer", "scope": "S1", "reason": "r", "starts_at": rfc3339(starts_at), "duration": ABSURD});
    app.post_as("olga", "/api/v1/requests", body).await.assert_problem(422, "invalid_duration");
    assert_eq!(app.head().await, head, "nothing written");

    let grant = operator_for_olga(&app, json!({"starts_at": rfc3339(starts_at), "duration": "P5D"})).await;
    let shown = app.get_as("olga", &format!("/api/v1/grants/{grant}")).await.body;
    assert_eq!(shown["status"], "scheduled");
    assert_eq!(time(&shown["granted_at"]), starts_at);
    assert_eq!(time(&shown["ends_at"]), starts_at + Duration::days(5), "the duration counts from the start");
    // Before its start: no permission, not among the grants held now, but listed as scheduled.
    assert!(!app.allowed("olga", "site.operate", "S1").await);
    assert!(app.held("olga").await.is_empty());
    let listed = app.get_as("olga", "/api/v1/grants?user=olga").await.body;
    assert_eq!(listed["items"][0]["status"], "scheduled", "{listed}");
    // Asking again while it is scheduled is a duplicate.
    let again = json!({"role": "operator", "scope": "S1", "reason": "r", "answers": {"queue": "q"}});
    app.post_as("olga", "/api/v1/requests", again).await.assert_problem(409, "duplicate_request");
    // A role incompatible with the one to come is refused already.
    let inspector = json!({"role": "inspector", "scope": "S1", "reason": "r"});
    app.post_as("olga", "/api/v1/requests", inspector).await.assert_problem(422, "incompatible_role");
    // Judged at chosen moments: nothing before the start, everything within, nothing after the end.
    assert!(grants_as_of(&app, "olga", &rfc3339(starts_at - Duration::hours(1))).await.is_empty());
    let within = grants_as_of(&app, "olga", &rfc3339(starts_at + Duration::days(1))).await;
    assert_eq!((within.len(), &within[0]["status"]), (1, &json!("active")));
    assert!(grants_as_of(&app, "olga", &rfc3339(starts_at + Duration::days(6))).await.is_empty());
    // The scheduler expires it at its end, not before.
    assert_eq!(expire_due(&app.application, starts_at + Duration::days(4)).await.unwrap().grants, 0);
    assert_eq!(expire_due(&app.application, starts_at + Duration::days(5)).await.unwrap().grants, 1);
    // A direct assignment may start later too.
    let body = json!({"user": "pete", "role": "viewer", "scope": "S1", "reason": "r", "starts_at": rfc3339(starts_at)});
    let assigned = app.post_as("mia", "/api/v1/grants", body).await;
    assert_eq!((assigned.status, &assigned.body["status"]), (201, &json!("scheduled")), "{:?}", assigned.body);
    assert!(!app.allowed("pete", "site.view", "S1").await);
}

async fn a_request_on_someones_behalf_is_decided_by_a_third_person(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let body = json!({"user": "olga", "role": "viewer", "scope": "S1", "reason": "she joins"});
    let head = app.head().await;
    // Without authority over the role there: refused; an unknown person: refused.
    app.post_as("pete", "/api/v1/requests", body.clone()).await.assert_problem(403, "not_a_decider");
    let nobody = json!({"user": "nobody", "role": "viewer", "scope": "S1", "reason": "r"});
    app.post_as("mia", "/api/v1/requests", nobody).await.assert_problem(422, "unknown_user");
    assert_eq!(app.head().await, head, "nothing written");

    let asked = app.post_as("mia", "/api/v1/requests", body.clone()).await;
    assert_eq!((asked.status, &asked.body["user"], &asked.body["requested_by"]), (201, &json!("olga"), &json!("mia")));
    let request = id(&asked);
    for viewer in ["olga", "mia"] {
        assert_eq!(app.get_as(viewer, &format!("/api/v1/requests/{request}")).await.status, 200, "{viewer} sees it");
    }
    assert_eq!(app.get_as("pete", &format!("/api/v1/requests/{request}")).await.status, 403);
    let deciders = app.get_as("root", &format!("/api/v1/requests/{request}")).await.body["deciders"].clone();
    assert!(deciders.as_array().unwrap().iter().all(|d| d["user"] != "mia"), "{deciders}");
    let approve = format!("/api/v1/requests/{request}/approve");
    let head = app.head().await;
    for own in ["olga", "mia"] {
        app.post_as(own, &approve, json!({})).await.assert_problem(403, "self_approval");
    }
    assert_eq!(app.head().await, head, "nothing written");
    let approved = app.post_as("max", &approve, json!({"comment": "welcome"})).await;
    assert_eq!((approved.status, &approved.body["status"]), (200, &json!("approved")), "{:?}", approved.body);
    assert!(app.allowed("olga", "site.view", "S1").await);
    // The outcome reaches both the person it is for and the one who asked.
    let approval_mail_to = |address: &'static str| {
        let app = &app;
        move || async move { mails_to(app, address, "Approved") == 1 }
    };
    eventually("the approval mail to olga", 20, approval_mail_to("olga@example.org")).await;
    eventually("the approval mail to mia", 20, approval_mail_to("mia@example.org")).await;
    // The person it is for may cancel it, and so may who asked; nobody else.
    let ask = || json!({"user": "olga", "role": "manager", "scope": "S1", "reason": "r"});
    let request = id(&app.post_as("max", "/api/v1/requests", ask()).await);
    assert_eq!(app.post_as("olga", &format!("/api/v1/requests/{request}/cancel"), json!({})).await.status, 200);
    let request = id(&app.post_as("max", "/api/v1/requests", ask()).await);
    let cancel = format!("/api/v1/requests/{request}/cancel");
    app.post_as("mia", &cancel, json!({})).await.assert_problem(403, "forbidden");
    assert_eq!(app.post_as("max", &cancel, json!({})).await.status, 200);
    // An admin may ask for anyone.
    let body = json!({"user": "pete", "role": "manager", "scope": "S1", "reason": "r"});
    assert_eq!(app.post_as("root", "/api/v1/requests", body).await.body["requested_by"], "root");
}

async fn questions_tickets_and_required_reasons(backend: Backend) {
    let (app, _folder) = governance(backend, "decision_reason = \"required\"").await;
    let roles = app.get_as("olga", "/api/v1/roles").await.body;
    let operator = roles["items"].as_array().unwrap().iter().find(|r| r["id"] == "operator").cloned().unwrap();
    assert_eq!(
        operator["questions"][0],
        json!({"id": "queue", "text": "Which ticket queue do you watch?", "required": true})
    );
    let head = app.head().await;
    let ask = |answers: Value| json!({"role": "operator", "scope": "S1", "reason": "r", "answers": answers, "ticket": "OPS-7"});
    app.post_as("olga", "/api/v1/requests", ask(json!({}))).await.assert_problem(422, "missing_answer");
    app.post_as("olga", "/api/v1/requests", ask(json!({"queue": "  "}))).await.assert_problem(422, "missing_answer");
    let unknown = ask(json!({"queue": "ops", "colour": "blue"}));
    app.post_as("olga", "/api/v1/requests", unknown).await.assert_problem(422, "unknown_question");
    assert_eq!(app.head().await, head, "nothing written");
    let asked = app.post_as("olga", "/api/v1/requests", ask(json!({"queue": "ops", "shift": "night"}))).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    assert_eq!((&asked.body["answers"]["queue"], &asked.body["ticket"]), (&json!("ops"), &json!("OPS-7")));
    let request = id(&asked);
    let head = app.head().await;
    let approve = format!("/api/v1/requests/{request}/approve");
    app.post_as("mia", &approve, json!({})).await.assert_problem(422, "reason_required");
    app.post_as("mia", &approve, json!({"comment": " "})).await.assert_problem(422, "reason_required");
    let reject = format!("/api/v1/requests/{request}/reject");
    app.post_as("mia", &reject, json!({})).await.assert_problem(422, "reason_required");
    assert_eq!(app.head().await, head, "nothing written");
    let rejected = app.post_as("mia", &reject, json!({"reason": "not this quarter"})).await;
    assert_eq!((rejected.status, &rejected.body["status"]), (200, &json!("rejected")));
}

async fn the_openapi_document_names_the_new_route_and_fields(backend: Backend) {
    let (app, _folder) = governance(backend, "").await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let extend = &document["paths"]["/api/v1/grants/{id}/extend"]["post"];
    assert_eq!(extend["operationId"], "extendGrant", "{extend}");
    let schemas = &document["components"]["schemas"];
    for (schema, fields) in [
        ("Request", &["extends", "starts_at", "requested_by", "answers", "ticket"][..]),
        ("NewRequest", &["starts_at", "user", "answers", "ticket"]),
        ("Approval", &["comment", "duration"]),
        ("NewGrant", &["starts_at"]),
        ("Extension", &["duration", "reason"]),
        ("Question", &["id", "text", "required"]),
    ] {
        for field in fields {
            assert!(!schemas[schema]["properties"][field].is_null(), "{schema}.{field}: {}", schemas[schema]);
        }
    }
}

on_both_backends!(
    the_openapi_document_names_the_new_route_and_fields,
    an_approved_extension_moves_the_end_and_expiry_follows_it,
    an_extension_never_passes_the_roles_longest_duration,
    extensions_are_refused_with_their_codes_and_write_nothing,
    an_approval_may_shorten_never_lengthen,
    a_grant_that_starts_later_gives_nothing_before_its_start,
    a_request_on_someones_behalf_is_decided_by_a_third_person,
    questions_tickets_and_required_reasons,
);
