//! The web pages over real HTTP: the session cookie's flags, redirects when signed out, CSRF
//! refusals that write nothing, the API's visibility rules on pages, the security headers.

use reqwest::{header, redirect, Client, Response};
use serde_json::json;

use crate::{
    helpers::{spawn_app, spawn_app_with, token_for, TestApp},
    support::Backend,
};

/// A browser without a cookie jar: tests send and read cookies themselves.
fn browser() -> Client {
    Client::builder().redirect(redirect::Policy::none()).build().expect("a client")
}

/// The value of cookie `name` set by a response, with the whole header.
fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookie| {
        let value = cookie.strip_prefix(&format!("{name}="))?.split(';').next()?;
        Some((value.to_string(), cookie.to_string()))
    })
}

/// The first form's CSRF token in a page.
fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().unwrap().to_string()
}

/// A browser's session on one server.
struct Web {
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

    async fn sign_in(app: &TestApp, user: &str) -> Web {
        let answer = Web::sign_in_with(app, &[("token", &token_for(user))]).await;
        assert_eq!(answer.status(), 303);
        let (cookie, _) = set_cookie(&answer, "rl_session").expect("a session cookie");
        Web { address: app.address.clone(), client: browser(), cookie }
    }

    async fn get(&self, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.address));
        request.header(header::COOKIE, format!("rl_session={}", self.cookie)).send().await.unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let answer = self.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
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
    let (alice, manager) = (Web::sign_in(&app, "alice").await, Web::sign_in(&app, "manager").await);
    let head = app.head().await;
    let request_form = [("scope", "SITE_B"), ("role", "site-administrator"), ("reason", "r")];
    let cases = [
        (&alice, format!("/ui/requests/{request}/cancel"), vec![]),
        (&alice, "/ui/request".to_string(), request_form.to_vec()),
        (&manager, format!("/ui/requests/{request}/decide"), vec![("decision", "approve")]),
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

    let approved = manager.post(&format!("/ui/requests/{request}/decide"), &[("csrf", &manager.csrf().await), ("decision", "approve"), ("comment", "welcome")]).await;
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
    let fields = [("csrf", csrf.as_str()), ("scope", "SITE_A"), ("role", "site-administrator"), ("reason", "on call"), ("duration", "30d")];
    let created = bob.post("/ui/request", &fields).await;
    assert_eq!(created.status(), 303);
    let location = created.headers()[header::LOCATION].to_str().unwrap().to_string();
    let id = location.strip_prefix("/ui/requests/").expect("the request's page").to_string();

    // The same again is a duplicate, said in words next to the form.
    let duplicate = bob.post("/ui/request", &fields).await;
    assert_eq!(duplicate.status(), 409);
    let page = duplicate.text().await.unwrap();
    assert!(page.contains("already holds or has requested") && page.contains("id=\"request-form\""), "{page}");
    let wrong_kind = bob.post("/ui/request", &[("csrf", &csrf), ("scope", "SITE_A"), ("role", "ngi-operations-manager"), ("reason", "r")]).await;
    assert_eq!(wrong_kind.status(), 422);
    let bad_duration = bob.post("/ui/request", &[("csrf", &csrf), ("scope", "SITE_B"), ("role", "site-administrator"), ("reason", "r"), ("duration", "soon")]).await;
    assert_eq!(bad_duration.status(), 422);
    assert!(bad_duration.text().await.unwrap().contains("duration"));

    let queue = manager.page("/ui/decide").await;
    assert!(queue.contains(&id) && queue.contains("on call"), "{queue}");
    assert!(queue.contains("id=\"deciding\">2<"), "the header counts alice's and bob's requests");
    let approved = manager.post(&format!("/ui/requests/{id}/decide"), &[("csrf", &manager.csrf().await), ("decision", "approve")]).await;
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
    assert!(manager.contains("deputy") && manager.contains(&request), "the manager sees who holds what and waits: {manager}");
    let outsider = page("outsider").await;
    assert!(!outsider.contains("deputy") && !outsider.contains(&request), "another site's manager sees neither: {outsider}");
    let alice = page("alice").await;
    assert!(alice.contains(&request) && !alice.contains("deputy"), "the requester sees her request only: {alice}");
    assert!(page("root").await.contains("deputy"), "admins see everything");
    let unknown = Web::sign_in(&app, "alice").await.get("/ui/scopes/NOPE").await;
    assert_eq!(unknown.status(), 404);
}

on_both_backends!(
    a_scope_page_shows_the_grants_and_requests_the_api_shows,
    signing_in_sets_a_strict_http_only_session_cookie,
    development_mode_signs_in_a_picked_user,
    pages_redirect_to_sign_in_when_signed_out,
    posts_without_the_csrf_token_are_refused_and_write_nothing,
    a_request_page_is_shown_only_to_those_the_api_shows_it_to,
    a_request_made_on_the_page_is_decided_on_the_page,
);
