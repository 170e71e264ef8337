//! The web pages over real HTTP: the session cookie's flags, redirects when signed out, CSRF
//! refusals that write nothing, the API's visibility rules on pages, the security headers.

use reqwest::{header, redirect, Client, Response};
use serde_json::json;

use crate::{
    helpers::{spawn_app, spawn_app_on, spawn_app_with, token_for, TestApp},
    mail::app_whose_mail_dies,
    support::{smtp::SmtpServer, Backend},
};

/// A browser without a cookie jar: tests send and read cookies themselves.
pub(crate) fn browser() -> Client {
    Client::builder().redirect(redirect::Policy::none()).build().expect("a client")
}

/// The value of cookie `name` set by a response, with the whole header.
pub(crate) fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookie| {
        let value = cookie.strip_prefix(&format!("{name}="))?.split(';').next()?;
        Some((value.to_string(), cookie.to_string()))
    })
}

/// The first form's CSRF token in a page.
pub(crate) fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().unwrap().to_string()
}

/// A browser's session on one server (the review pages' tests use it too).
pub(crate) struct Web {
    address: String,
    client: Client,
    cookie: String,
}

impl Web {
    /// Signs in through the sign-in page with `fields` (a pasted token or, in development, a user id).
    async fn sign_in_with(app: &TestApp, fields: &[(&str, &str)]) -> Response {
        let client = browser();
        let form = client.get(format!("{}/ui/signin", app.address)).send().await.unwrap();
        let (nonce, _) = set_cookie(&form, "rl_signin").expect("a sign-in cookie");
        let csrf = csrf_in(&form.text().await.unwrap());
        let mut body = vec![("csrf", csrf.as_str())];
        body.extend_from_slice(fields);
        client
            .post(format!("{}/ui/signin", app.address))
            .header(header::COOKIE, format!("rl_signin={nonce}"))
            .form(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn sign_in(app: &TestApp, user: &str) -> Web {
        let answer = Web::sign_in_with(app, &[("token", &token_for(user))]).await;
        assert_eq!(answer.status(), 303);
        let (cookie, _) = set_cookie(&answer, "rl_session").expect("a session cookie");
        Web { address: app.address.clone(), client: browser(), cookie }
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.address));
        request.header(header::COOKIE, format!("rl_session={}", self.cookie)).send().await.unwrap()
    }

    pub(crate) async fn page(&self, path: &str) -> String {
        let answer = self.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.text().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let request = self.client.post(format!("{}{path}", self.address)).form(form);
        request.header(header::COOKIE, format!("rl_session={}", self.cookie)).send().await.unwrap()
    }

    /// The page's CSRF token.
    async fn csrf(&self) -> String {
        csrf_in(&self.page("/ui").await)
    }
}

/// Admin `root`, the EGI tree, `manager` deciding SITE_A, `outsider` deciding SITE_B, and a
/// pending request of `alice` for site-administrator on SITE_A (its id).
async fn world(app: &TestApp) -> String {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "outsider", "site-operations-manager", "SITE_B").await;
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "I run the batch system"});
    let request = app.post_as("alice", "/api/v1/requests", body).await;
    assert_eq!(request.status, 201, "{:?}", request.body);
    request.body["id"].as_str().unwrap().to_string()
}

async fn signing_in_sets_a_strict_http_only_session_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = Web::sign_in_with(&app, &[("token", &token_for("alice"))]).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()[header::LOCATION], "/ui");
    let (_, cookie) = set_cookie(&answer, "rl_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    let web = Web::sign_in(&app, "alice").await;
    let home = web.get("/ui").await;
    let policy = home.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'none'"), "{policy}");
    let page = home.text().await.unwrap();
    assert!(page.contains("<meta name=\"viewport\"") && page.contains("alice"), "{page}");
    assert!(!page.contains("<script"), "no script on pages");
    let style = web.get("/ui/style.css").await;
    assert!(style.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));

    // A bad token does not sign in, and says why.
    let refused = Web::sign_in_with(&app, &[("token", "not-a-token")]).await;
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(&refused, "rl_session").is_none());
    assert!(refused.text().await.unwrap().contains("invalid token"));
    // Without a JWT key configured only: picking a user is refused here.
    let picked = Web::sign_in_with(&app, &[("user", "alice")]).await;
    assert_eq!(picked.status(), 401);
    assert!(set_cookie(&picked, "rl_session").is_none());

    // Signing out clears the cookie.
    let out = web.post("/ui/signout", &[("csrf", &web.csrf().await)]).await;
    assert_eq!(out.status(), 303);
    let (cleared, header) = set_cookie(&out, "rl_session").expect("a cleared cookie");
    assert!(cleared.is_empty() && header.contains("Max-Age=0"), "{header}");
}

async fn development_mode_signs_in_a_picked_user(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let secret = folder.path().join("dev.jwt-secret");
    let app = spawn_app_with(backend, |settings| {
        settings.jwt.keys = roleledger::configuration::JwtKeys::Development(secret);
    })
    .await;
    let form = browser().get(format!("{}/ui/signin", app.address)).send().await.unwrap();
    assert!(form.text().await.unwrap().contains("name=\"user\""), "the pick-a-user form");
    let answer = Web::sign_in_with(&app, &[("user", "carol")]).await;
    assert_eq!(answer.status(), 303);
    let (cookie, _) = set_cookie(&answer, "rl_session").expect("a session cookie");
    let web = Web { address: app.address.clone(), client: browser(), cookie };
    assert!(web.page("/ui").await.contains("carol"));
}

async fn pages_redirect_to_sign_in_when_signed_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = world(&app).await;
    let stale = Web { address: app.address.clone(), client: browser(), cookie: "stale".into() };
    for path in ["/ui", "/ui/request", "/ui/decide", &format!("/ui/requests/{request}")] {
        let answer = browser().get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(answer.status(), 303, "{path}");
        assert_eq!(answer.headers()[header::LOCATION], "/ui/signin", "{path}");
        assert_eq!(stale.get(path).await.status(), 303, "{path} with a stale cookie");
    }
}

async fn posts_without_the_csrf_token_are_refused_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = world(&app).await;
    let (alice, manager, root) =
        (Web::sign_in(&app, "alice").await, Web::sign_in(&app, "manager").await, Web::sign_in(&app, "root").await);
    let head = app.head().await;
    let request_form = [("scope", "SITE_B"), ("role", "site-administrator"), ("reason", "r")];
    let cases = [
        (&alice, format!("/ui/requests/{request}/cancel"), vec![]),
        (&alice, "/ui/request".to_string(), request_form.to_vec()),
        (&manager, format!("/ui/requests/{request}/decide"), vec![("decision", "approve")]),
        (&manager, "/ui/decide".to_string(), vec![("decision", "approve"), ("request", request.as_str())]),
        (
            &root,
            "/ui/admin/scopes".to_string(),
            vec![("id", "SITE_C"), ("kind", "site"), ("parents", "NGI_A"), ("title", "C")],
        ),
        (&root, "/ui/admin/roles".to_string(), vec![("id", "helper"), ("title", "Helper"), ("kinds", "site")]),
        (&root, "/ui/admin/teams".to_string(), vec![("id", "ops"), ("title", "Ops")]),
        (&root, "/ui/admin/users".to_string(), vec![("id", "nia")]),
        (&root, "/ui/admin/tokens".to_string(), vec![("user", "alice"), ("name", "ci")]),
        (&root, "/ui/audit/verify".to_string(), vec![]),
        (&root, "/ui/audit/simulate".to_string(), vec![("workflow", "name = \"x\""), ("until", "")]),
    ];
    for (web, path, fields) in &cases {
        let answer = web.post(path, fields).await;
        assert_eq!(answer.status(), 403, "{path} without a token");
        let mut wrong = fields.clone();
        wrong.push(("csrf", "00ff"));
        assert_eq!(web.post(path, &wrong).await.status(), 403, "{path} with a wrong token");
        // Another session's token is wrong too.
        let other = if std::ptr::eq(*web, &alice) { &manager } else { &alice };
        let mut foreign = fields.clone();
        let foreign_token = other.csrf().await;
        foreign.push(("csrf", &foreign_token));
        assert_eq!(web.post(path, &foreign).await.status(), 403, "{path} with another session's token");
    }
    assert_eq!(app.head().await, head, "nothing written");

    let approved = manager
        .post(
            &format!("/ui/requests/{request}/decide"),
            &[("csrf", &manager.csrf().await), ("decision", "approve"), ("comment", "welcome")],
        )
        .await;
    assert_eq!(approved.status(), 303);
    let status = app.get_as("alice", &format!("/api/v1/requests/{request}")).await;
    assert_eq!(status.body["status"], "approved", "{:?}", status.body);
}

async fn a_request_page_is_shown_only_to_those_the_api_shows_it_to(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = world(&app).await;
    let path = format!("/ui/requests/{request}");
    for user in ["alice", "manager", "root"] {
        let page = Web::sign_in(&app, user).await.page(&path).await;
        assert!(page.contains("RoleRequested") && page.contains("I run the batch system"), "{user}: {page}");
    }
    let outsider = Web::sign_in(&app, "outsider").await;
    let refused = outsider.get(&path).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    let page = refused.text().await.unwrap();
    assert!(!page.contains("I run the batch system"), "{page}");
    assert_eq!(app.get_as("outsider", &format!("/api/v1/requests/{request}")).await.status, 403, "as the API");
    assert!(!outsider.page("/ui/decide").await.contains(&request), "not in the outsider's queue");
}

async fn a_request_made_on_the_page_is_decided_on_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let (bob, manager) = (Web::sign_in(&app, "bob").await, Web::sign_in(&app, "manager").await);
    let form = bob.page("/ui/request?scope=SITE_A").await;
    assert!(form.contains("value=\"site-administrator\""), "a site role is offered");
    assert!(!form.contains("value=\"ngi-operations-manager\""), "an NGI role is not");
    assert!(bob.page("/ui/request?q=site_b").await.contains("SITE_B"), "the search finds SITE_B");
    let csrf = bob.csrf().await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("scope", "SITE_A"),
        ("role", "site-administrator"),
        ("reason", "on call"),
        ("duration", "30d"),
    ];
    let created = bob.post("/ui/request", &fields).await;
    assert_eq!(created.status(), 303);
    let location = created.headers()[header::LOCATION].to_str().unwrap().to_string();
    let id = location.strip_prefix("/ui/requests/").expect("the request's page").to_string();

    // The same again is a duplicate, said in words next to the form.
    let duplicate = bob.post("/ui/request", &fields).await;
    assert_eq!(duplicate.status(), 409);
    let page = duplicate.text().await.unwrap();
    assert!(page.contains("already holds or has requested") && page.contains("id=\"request-form\""), "{page}");
    let wrong_kind = bob
        .post(
            "/ui/request",
            &[("csrf", &csrf), ("scope", "SITE_A"), ("role", "ngi-operations-manager"), ("reason", "r")],
        )
        .await;
    assert_eq!(wrong_kind.status(), 422);
    let bad_duration = bob
        .post(
            "/ui/request",
            &[
                ("csrf", &csrf),
                ("scope", "SITE_B"),
                ("role", "site-administrator"),
                ("reason", "r"),
                ("duration", "soon"),
            ],
        )
        .await;
    assert_eq!(bad_duration.status(), 422);
    assert!(bad_duration.text().await.unwrap().contains("duration"));

    let queue = manager.page("/ui/decide").await;
    assert!(queue.contains(&id) && queue.contains("on call"), "{queue}");
    assert!(queue.contains("id=\"deciding\">2<"), "the header counts alice's and bob's requests");
    let approved = manager
        .post(&format!("/ui/requests/{id}/decide"), &[("csrf", &manager.csrf().await), ("decision", "approve")])
        .await;
    assert_eq!(approved.status(), 303);
    let home = bob.page("/ui").await;
    assert!(home.contains("site-administrator") && home.contains("approved"), "{home}");
    assert!(!manager.page("/ui/decide").await.contains(&id), "decided requests leave the queue");
}

async fn a_scope_page_shows_the_grants_and_requests_the_api_shows(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = world(&app).await;
    app.assign("root", "deputy", "site-operations-deputy-manager", "SITE_A").await;
    let page = |user: &'static str| {
        let app = &app;
        async move { Web::sign_in(app, user).await.page("/ui/scopes/SITE_A").await }
    };
    let manager = page("manager").await;
    assert!(
        manager.contains("deputy") && manager.contains(&request),
        "the manager sees who holds what and waits: {manager}"
    );
    let outsider = page("outsider").await;
    assert!(
        !outsider.contains("deputy") && !outsider.contains(&request),
        "another site's manager sees neither: {outsider}"
    );
    let alice = page("alice").await;
    assert!(alice.contains(&request) && !alice.contains("deputy"), "the requester sees her request only: {alice}");
    assert!(page("root").await.contains("deputy"), "admins see everything");
    let unknown = Web::sign_in(&app, "alice").await.get("/ui/scopes/NOPE").await;
    assert_eq!(unknown.status(), 404);
}

/// The page's `name="csrf"` field of the form posting to `action`.
fn csrf_of_form(page: &str, action: &str) -> String {
    let form =
        page.find(&format!("action=\"{action}\"")).unwrap_or_else(|| panic!("a form posting to {action}: {page}"));
    csrf_in(&page[form..])
}

async fn the_admin_page_is_for_admins_and_runs_the_apis_commands(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    app.assign("root", "aud", "auditor", "global").await;
    for user in ["manager", "aud"] {
        let web = Web::sign_in(&app, user).await;
        let refused = web.get("/ui/admin").await;
        assert_eq!(refused.status(), 403, "{user}");
        assert!(refused.text().await.unwrap().contains("id=\"deciding\""), "the 403 page keeps the header");
        let head = app.head().await;
        let fields = [
            ("csrf", web.csrf().await),
            ("id", "SITE_C".into()),
            ("kind", "site".into()),
            ("parents", "NGI_A".into()),
            ("title", "C".into()),
        ];
        assert_eq!(
            web.post("/ui/admin/scopes", &fields.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
                .await
                .status(),
            403,
            "{user}"
        );
        let tokens = [("csrf", web.csrf().await), ("user", user.to_string()), ("name", "mine".into())];
        assert_eq!(
            web.post("/ui/admin/tokens", &tokens.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
                .await
                .status(),
            403,
            "{user}"
        );
        let person = [("csrf", web.csrf().await), ("id", "nia".to_string())];
        assert_eq!(
            web.post("/ui/admin/users", &person.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
                .await
                .status(),
            403,
            "{user}"
        );
        assert_eq!(app.head().await, head, "{user}: nothing written");
    }
    assert!(
        !Web::sign_in(&app, "manager").await.page("/ui").await.contains("href=\"/ui/admin\""),
        "no admin link for others"
    );

    let root = Web::sign_in(&app, "root").await;
    let page = root.page("/ui/admin").await;
    assert!(
        page.contains("SITE_B") && page.contains("site-operations-manager") && page.contains("No undeliverable mail"),
        "{page}"
    );
    let csrf = csrf_of_form(&page, "/ui/admin/scopes");
    let created = root
        .post(
            "/ui/admin/scopes",
            &[("csrf", &csrf), ("id", "SITE_C"), ("kind", "site"), ("parents", "NGI_A"), ("title", "Site C")],
        )
        .await;
    assert_eq!(created.status(), 303);
    let scope = app.get_as("root", "/api/v1/scopes/SITE_C").await;
    assert_eq!((scope.status, scope.body["parents"].clone()), (200, json!(["NGI_A"])), "{:?}", scope.body);
    // The domain's refusals are said on the page, and write nothing.
    let head = app.head().await;
    let again = root
        .post(
            "/ui/admin/scopes",
            &[("csrf", &csrf), ("id", "SITE_C"), ("kind", "site"), ("parents", "NGI_A"), ("title", "Site C")],
        )
        .await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("id=\"refusal\""));
    assert_eq!(app.head().await, head);

    let role = [
        ("csrf", csrf.as_str()),
        ("id", "batch-operator"),
        ("title", "Batch operator"),
        ("kinds", "site"),
        ("permissions", "scope.edit"),
        ("requestable", "yes"),
    ];
    assert_eq!(root.post("/ui/admin/roles", &role).await.status(), 303);
    let defined = app.get_as("root", "/api/v1/roles/batch-operator").await;
    assert_eq!(
        (defined.status, defined.body["kinds"].clone(), defined.body["requestable"].clone()),
        (200, json!(["site"]), json!(true)),
        "{:?}",
        defined.body
    );
    assert!(
        root.page("/ui/admin").await.contains("<td data-label=\"From\">custom</td>"),
        "the custom role is listed as such"
    );

    assert_eq!(
        root.post("/ui/admin/teams", &[("csrf", &csrf), ("id", "ops"), ("title", "Operations")]).await.status(),
        303
    );
    app.sign_in("bob").await;
    assert_eq!(
        root.post("/ui/admin/teams/members", &[("csrf", &csrf), ("team", "ops"), ("user", "bob")]).await.status(),
        303
    );
    assert_eq!(app.get_as("root", "/api/v1/teams/ops").await.body["members"], json!(["bob"]));

    // A person registered before their first sign-in; empty optional fields are left out.
    let person = [("csrf", csrf.as_str()), ("id", "nia"), ("email", "nia@example.org"), ("name", "")];
    assert_eq!(root.post("/ui/admin/users", &person).await.status(), 303);
    let listed = app.get_as("root", "/api/v1/users?q=nia").await;
    assert_eq!(listed.body["items"], json!([{"id": "nia", "email": "nia@example.org", "name": null}]));
    let head = app.head().await;
    let again = root.post("/ui/admin/users", &person).await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("user &quot;nia&quot; already exists"), "the refusal is said");
    let reserved = root.post("/ui/admin/users", &[("csrf", csrf.as_str()), ("id", "system")]).await;
    assert_eq!(reserved.status(), 422);
    assert_eq!(app.head().await, head, "refused forms write nothing");

    // A new token's secret is on the answer to the form only: not in a URL, not on later pages.
    let created = root.post("/ui/admin/tokens", &[("csrf", &csrf), ("user", "alice"), ("name", "ci")]).await;
    assert_eq!(created.status(), 201);
    assert!(created.headers().get(header::LOCATION).is_none());
    let page = created.text().await.unwrap();
    let start = page.find("value=\"rl_").expect("the secret on the page") + "value=\"".len();
    let secret = page[start..].split('"').next().unwrap().to_string();
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(&secret), None).await;
    assert_eq!((me.status, me.body["id"].clone()), (200, json!("alice")), "the secret works: {:?}", me.body);
    let later = root.page("/ui/admin").await;
    assert!(later.contains(">ci<") && !later.contains(&secret), "listed without its secret");
    let tokens = app.get_as("root", "/api/v1/tokens").await;
    let id = tokens.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(root.post(&format!("/ui/admin/tokens/{id}/revoke"), &[("csrf", &csrf)]).await.status(), 303);
    assert_eq!(app.call(reqwest::Method::GET, "/api/v1/me", Some(&secret), None).await.status, 401, "revoked");
    assert_eq!(
        root.post("/ui/admin/mail/999999/retry", &[("csrf", &csrf)]).await.status(),
        404,
        "as the API: unknown mail"
    );
}

async fn the_audit_page_is_for_auditors_and_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    let request = world(&app).await;
    app.assign("root", "aud", "auditor", "global").await;
    let manager = Web::sign_in(&app, "manager").await;
    assert_eq!(manager.get("/ui/audit").await.status(), 403);
    assert_eq!(manager.post("/ui/audit/verify", &[("csrf", &manager.csrf().await)]).await.status(), 403);
    assert!(!manager.page("/ui").await.contains("href=\"/ui/audit\""), "no audit link for others");

    // Pages give moments to the second: one second after the setup, before the approval.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = chrono::Utc::now();
    let approved = app.post_as("manager", &format!("/api/v1/requests/{request}/approve"), json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let after = chrono::Utc::now() + chrono::Duration::seconds(2);

    let auditor = Web::sign_in(&app, "aud").await;
    /// The events table of an audit page.
    async fn events(auditor: &Web, path: &str) -> String {
        let page = auditor.page(path).await;
        page.find("id=\"events\"").map_or(String::new(), |start| page[start..].to_string())
    }
    let log = events(&auditor, "/ui/audit").await;
    assert!(log.contains("RoleRequested") && log.contains("RoleGranted"), "{log}");
    assert!(log.find("RoleRequested").unwrap() < log.find("ScopeCreated").unwrap(), "newest first by default");
    let oldest = events(&auditor, "/ui/audit?order=oldest").await;
    assert!(oldest.find("ScopeCreated").unwrap() < oldest.find("RoleRequested").unwrap(), "oldest first on demand");
    let only = events(&auditor, "/ui/audit?type=RoleRequested&actor=alice").await;
    assert!(
        only.contains(&request) && !only.contains("RoleGranted") && !only.contains("ScopeCreated"),
        "filtered: {only}"
    );
    let time = |moment: chrono::DateTime<chrono::Utc>| moment.format("%Y-%m-%dT%H:%M:%S").to_string();
    let until_start = auditor.page(&format!("/ui/audit?type=RoleRequested&until={}", time(start))).await;
    assert!(until_start.contains("No event matches"), "the time range applies: {until_start}");
    let from_start = auditor.page(&format!("/ui/audit?type=RoleRequested&from={}", time(start))).await;
    assert!(from_start.contains(&request), "{from_start}");
    assert_eq!(auditor.get("/ui/audit?from=yesterday").await.status(), 400, "a bad moment is said");

    // Pages of 50, newest first: the link leads to the older ones.
    for n in 0..50 {
        assert_eq!(app.create_scope("root", &format!("SITE_{n}"), "site", &["NGI_A"]).await.status, 201);
    }
    let events = app.head().await;
    let row = |position: i64| format!("<td data-label=\"Position\">{position}</td>");
    let newest = auditor.page("/ui/audit").await;
    assert!(
        newest.contains(&row(events)) && newest.contains(&row(events - 49)) && !newest.contains(&row(events - 50)),
        "{newest}"
    );
    let start_link = newest.find("rel=\"next\"").expect("a link to older events");
    let link = newest[..start_link].rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let older = auditor.page(&link).await;
    assert!(older.contains(&row(events - 50)) && !older.contains(&row(events - 49)), "{link}: {older}");

    fn grants_as_of(page: &str) -> &str {
        let section = &page[page.find("id=\"grants-as-of\"").expect("the grants as of")..];
        &section[..section.find("</section>").unwrap()]
    }
    let then = auditor.page(&format!("/ui/audit?as_of={}", time(before))).await;
    let section = grants_as_of(&then);
    assert!(section.contains("manager") && !section.contains("alice"), "before the approval: {section}");
    let now = auditor.page(&format!("/ui/audit?as_of={}", time(after))).await;
    let section = grants_as_of(&now);
    assert!(section.contains("alice") && section.contains("site-administrator"), "after the approval: {section}");
    let alices = auditor.page(&format!("/ui/audit?holder=alice&as_of={}", time(after))).await;
    let held_by_alice = grants_as_of(&alices);
    assert!(
        held_by_alice.contains("site-administrator") && !held_by_alice.contains("manager"),
        "one holder's grants: {held_by_alice}"
    );
    let kept = auditor.page(&format!("/ui/audit?type=RoleRequested&as_of={}", time(after))).await;
    assert_eq!(kept.matches("value=\"RoleRequested\"").count(), 2, "both forms keep the log's filter: {kept}");
    let api = app.get_as("aud", &format!("/api/v1/grants?as_of={}Z", time(after))).await;
    assert_eq!(
        section.matches("<tr>").count() - 1,
        api.body["items"].as_array().unwrap().len(),
        "the API's as_of, row for row"
    );

    let head = app.head().await;
    let verified = auditor.post("/ui/audit/verify", &[("csrf", &auditor.csrf().await)]).await;
    assert_eq!(verified.status(), 200);
    let page = verified.text().await.unwrap();
    assert!(page.contains("The log is intact") && page.contains(&format!("{head} events")), "{page}");
    assert_eq!(app.head().await, head, "verifying writes nothing");
}

async fn bulk_decide_reports_each_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let alices = world(&app).await;
    let mut ids = vec![alices.clone()];
    for user in ["bob", "carol"] {
        let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": format!("{user} on call")});
        ids.push(app.post_as(user, "/api/v1/requests", body).await.body["id"].as_str().unwrap().to_string());
    }
    let manager = Web::sign_in(&app, "manager").await;
    let queue = manager.page("/ui/decide").await;
    assert!(queue.contains("id=\"deciding\">3<") && queue.contains("form=\"several\""), "{queue}");
    // Someone else decides alice's meanwhile.
    assert_eq!(
        app.post_as("root", &format!("/api/v1/requests/{alices}/reject"), json!({"reason": "no"})).await.status,
        200
    );

    // An outsider's batch is refused request by request, writing nothing.
    let outsider = Web::sign_in(&app, "outsider").await;
    let head = app.head().await;
    let refused = outsider
        .post("/ui/decide", &[("csrf", &outsider.csrf().await), ("decision", "approve"), ("request", &ids[1])])
        .await;
    assert_eq!(refused.status(), 200);
    assert!(refused.text().await.unwrap().contains("1 not a decider"));
    assert_eq!(app.head().await, head);

    let csrf = csrf_of_form(&queue, "/ui/decide");
    let mut fields = vec![("csrf", csrf.as_str()), ("decision", "approve"), ("comment", "welcome all")];
    fields.extend(ids.iter().map(|id| ("request", id.as_str())));
    let answer = manager.post("/ui/decide", &fields).await;
    assert_eq!(answer.status(), 200);
    let page = answer.text().await.unwrap();
    assert!(page.contains("2 approved, 1 already decided"), "{page}");
    assert!(page.contains("id=\"deciding\">0<"), "the header counts after the decisions");
    for (id, status) in ids.iter().zip(["rejected", "approved", "approved"]) {
        let request = app.get_as("root", &format!("/api/v1/requests/{id}")).await;
        assert_eq!(request.body["status"], status, "{:?}", request.body);
    }
    let bob = app.get_as("root", &format!("/api/v1/requests/{}", ids[1])).await;
    assert_eq!(bob.body["approvals"][0]["comment"], "welcome all");
    assert_eq!(
        manager.post("/ui/decide", &[("csrf", &csrf), ("decision", "approve")]).await.status(),
        400,
        "nothing ticked"
    );
}

async fn unknown_pages_and_ids_answer_404_and_hidden_ones_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let request = world(&app).await;
    let outsider = Web::sign_in(&app, "outsider").await;
    for path in [
        "/ui/nothing-here",
        "/ui/requests/not-an-id",
        &format!("/ui/requests/{}", uuid::Uuid::nil()),
        "/ui/scopes/NOPE",
    ] {
        let answer = outsider.get(path).await;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(answer.headers().contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        let page = answer.text().await.unwrap();
        assert!(page.contains("404 Not Found") && page.contains("id=\"deciding\""), "{path}: {page}");
    }
    assert_eq!(
        browser().get(format!("{}/ui/nothing-here", app.address)).send().await.unwrap().status(),
        404,
        "signed out too"
    );
    let root = browser().get(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!((root.status().as_u16(), root.headers().get(header::LOCATION).unwrap().to_str().unwrap()), (303, "/ui"));
    // Typing the address of a request outside one's scopes: neither shown nor decided.
    let hidden = outsider.get(&format!("/ui/requests/{request}")).await;
    assert_eq!(hidden.status(), 403);
    let head = app.head().await;
    let csrf = outsider.csrf().await;
    for decision in ["approve", "reject"] {
        let typed =
            outsider.post(&format!("/ui/requests/{request}/decide"), &[("csrf", &csrf), ("decision", decision)]).await;
        assert_eq!(typed.status(), 403, "{decision}");
        assert!(!typed.text().await.unwrap().contains("I run the batch system"));
    }
    assert_eq!(app.head().await, head, "nothing written");
}

async fn dead_mail_is_retried_from_the_admin_page(backend: Backend) {
    let (app, port) = app_whose_mail_dies(backend).await;
    let root = Web::sign_in(&app, "root").await;
    let mut page = String::new();
    for _ in 0..100 {
        page = root.page("/ui/admin").await;
        if page.contains("id=\"dead-mail\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(page.contains("manager@example.org") && page.contains("cannot send"), "the dead mail is listed: {page}");
    let id = app.get_as("root", "/api/v1/outbox?state=dead").await.body["items"][0]["id"].as_i64().unwrap();
    let action = format!("/ui/admin/mail/{id}/retry");
    let manager = Web::sign_in(&app, "manager").await;
    assert_eq!(manager.post(&action, &[("csrf", &manager.csrf().await)]).await.status(), 403, "admins only");

    let _smtp = SmtpServer::start_on(port).await;
    assert_eq!(root.post(&action, &[("csrf", &csrf_of_form(&page, &action))]).await.status(), 303);
    let mut sent = json!([]);
    for _ in 0..100 {
        sent = app.get_as("root", "/api/v1/outbox?state=sent").await.body["items"].clone();
        if sent.as_array().is_some_and(|items| items.iter().any(|mail| mail["id"] == id)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent.as_array().unwrap().iter().any(|mail| mail["id"] == id), "retried and sent: {sent}");
    assert!(root.page("/ui/admin").await.contains("No undeliverable mail"));
}

async fn an_absurd_duration_on_the_request_page_is_refused_and_the_server_goes_on(backend: Backend) {
    let app = spawn_app(backend).await;
    world(&app).await;
    let bob = Web::sign_in(&app, "bob").await;
    let csrf = bob.csrf().await;
    let head = app.head().await;
    let mut fields =
        vec![("csrf", csrf.as_str()), ("scope", "SITE_A"), ("role", "site-administrator"), ("reason", "r")];
    fields.push(("duration", "P100000000D"));
    let refused = bob.post("/ui/request", &fields).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("longer than 100 years"), "said in words");
    assert_eq!(app.head().await, head, "nothing written");
    fields.pop();
    assert_eq!(bob.post("/ui/request", &fields).await.status(), 303, "the next request is written");
}

/// Clarive's change managers answer a question: the form asks it, refuses without the required
/// answer (keeping what was typed), and sends answers and ticket with the request.
async fn the_request_form_asks_the_roles_questions(backend: Backend) {
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    assert_eq!(app.create_scope("root", "alm", "project", &[]).await.status, 201);
    let cm = Web::sign_in(&app, "cm").await;
    let form = cm.page("/ui/request?scope=alm").await;
    assert!(form.contains("Which change advisory board do you sit on? (required)"), "{form}");
    assert!(form.contains("name=\"answer.change-manager.change-board\""), "{form}");
    let csrf = cm.csrf().await;
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("scope", "alm"),
        ("role", "change-manager"),
        ("reason", "r"),
        ("ticket", "CHG-9"),
    ];
    let head = app.head().await;
    let refused = cm.post("/ui/request", &fields).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("needs an answer") && page.contains("value=\"CHG-9\""), "{page}");
    assert_eq!(app.head().await, head, "nothing written");
    fields.extend([("answer.change-manager.change-board", "CAB-1"), ("answer.developer.ignored", "x")]);
    let created = cm.post("/ui/request", &fields).await;
    assert_eq!(created.status(), 303);
    let location = created.headers()[header::LOCATION].to_str().unwrap().to_string();
    let id = location.strip_prefix("/ui/requests/").expect("the request's page");
    let request = app.get_as("cm", &format!("/api/v1/requests/{id}")).await.body;
    assert_eq!((&request["answers"], &request["ticket"]), (&json!({"change-board": "CAB-1"}), &json!("CHG-9")));
    let page = cm.page(&location).await;
    assert!(
        page.contains("<dt>Ticket</dt><dd>CHG-9</dd>") && page.contains("<dt>change-board</dt><dd>CAB-1</dd>"),
        "{page}"
    );
}

on_both_backends!(
    the_request_form_asks_the_roles_questions,
    an_absurd_duration_on_the_request_page_is_refused_and_the_server_goes_on,
    a_scope_page_shows_the_grants_and_requests_the_api_shows,
    signing_in_sets_a_strict_http_only_session_cookie,
    development_mode_signs_in_a_picked_user,
    pages_redirect_to_sign_in_when_signed_out,
    posts_without_the_csrf_token_are_refused_and_write_nothing,
    a_request_page_is_shown_only_to_those_the_api_shows_it_to,
    a_request_made_on_the_page_is_decided_on_the_page,
    the_admin_page_is_for_admins_and_runs_the_apis_commands,
    the_audit_page_is_for_auditors_and_admins,
    bulk_decide_reports_each_request,
    unknown_pages_and_ids_answer_404_and_hidden_ones_403,
    dead_mail_is_retried_from_the_admin_page,
);
