//! Sign-in through a real OpenID Provider (tests/oidc/provider.mjs: oidc-provider, on 127.0.0.2)
//! to the real server (on 127.0.0.1), over real HTTP: the code flow through the provider's own
//! login and consent forms, every refusal (nothing signed in, nothing written), the provider's
//! JWTs on the API, key rotation while the server runs, the provider away, and sign-out.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use roleledger::configuration::{JwtKeys, OidcSettings, Secret};
use serde_json::{json, Value};

use crate::{
    helpers::{held_in, shipped_workflow, spawn_app_with, TestApp},
    support::{eventually, Backend},
};

const CLIENT_ID: &str = "roleledger";
const CLIENT_SECRET: &str = "roleledger-secret";

/// The provider, a child process killed on drop.
pub struct Provider {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0)).expect("a free port").local_addr().unwrap().port()
}

impl Provider {
    /// Starts tests/oidc/provider.mjs on `port`, for a server at `server`; node and the
    /// provider's packages must be there (scripts/test installs them): their absence fails.
    fn start(port: u16, server: &str) -> Provider {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            folder.join("node_modules/oidc-provider").is_dir(),
            "tests/oidc/node_modules is missing: run `npm ci` in tests/oidc (scripts/test does)"
        );
        let users = json!({
            "alice": {"email": "alice@example.org", "name": "Alice Example", "voperson_id": "alice-vo@egi.eu",
                      "roles": ["support", "no-such-role"]},
            "bob": {"email": "bob@example.org", "name": "Bob Example", "roles": []},
            "ev\u{200b}il": {"login": "zwsp", "email": "evil@example.org", "roles": []},
            "carl": {"email": "carl@example.org", "name": "Carl", "roles": ["support"]},
        });
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&folder)
            .env("OIDC_HOST", "127.0.0.2")
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URIS", format!("{server}/ui/oidc/callback"))
            .env("OIDC_POST_LOGOUT_REDIRECT_URIS", format!("{server}/ui/signin"))
            .env("OIDC_USERS", users.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (install nodejs: scripts/test does)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the provider's first line");
        let issuer = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("not ready: {line:?}")).to_string();
        Provider { child, issuer, http: reqwest::Client::new() }
    }

    async fn test_route(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.issuer)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    /// An access token signed as the provider signs its own.
    async fn mint(&self, body: Value) -> String {
        self.test_route("/test/mint", body).await["token"].as_str().unwrap().to_string()
    }
}

/// A browser without a browser: cookies per host (names and values; removals honoured), no
/// redirect followed.
struct Browser {
    http: reqwest::Client,
    jars: HashMap<String, HashMap<String, String>>,
}

struct Page {
    status: u16,
    location: Option<String>,
    text: String,
    set_cookies: Vec<String>,
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, jars: HashMap::new() }
    }

    fn host(url: &str) -> String {
        url.split('/').nth(2).unwrap_or_default().split(':').next().unwrap_or_default().to_string()
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jars.get(&Self::host(url)).and_then(|jar| jar.get(name)).cloned()
    }

    async fn request(&mut self, method: reqwest::Method, url: &str, form: Option<&[(String, String)]>) -> Page {
        let jar = self.jars.entry(Self::host(url)).or_default();
        let mut request = self.http.request(method, url);
        if !jar.is_empty() {
            let header: Vec<String> = jar.iter().map(|(name, value)| format!("{name}={value}")).collect();
            request = request.header("cookie", header.join("; "));
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).unwrap());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut set_cookies = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap().to_string();
            let (pair, attributes) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attributes = attributes.to_ascii_lowercase();
            if attributes.contains("max-age=0") || value.is_empty() || attributes.contains("expires=thu, 01 jan 1970") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.to_string());
            }
            set_cookies.push(text);
        }
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        Page { status, location, text, set_cookies }
    }

    async fn get(&mut self, url: &str) -> Page {
        self.request(reqwest::Method::GET, url, None).await
    }

    /// Through the provider's login and consent forms, from its authorization URL to the redirect
    /// back to `server` (returned, not followed).
    async fn authorize(&mut self, authorization: &str, login: &str, server: &str) -> String {
        let mut url = authorization.to_string();
        for _ in 0..12 {
            let page = self.get(&url).await;
            if let Some(location) = page.location {
                let next = absolute(&url, &location);
                if next.starts_with(server) {
                    return next;
                }
                url = next;
                continue;
            }
            assert_eq!(page.status, 200, "{url}: {}", page.text);
            let (action, mut fields) = form_of(&page.text);
            if fields.iter().any(|(name, value)| name == "prompt" && value == "login") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "anything".into()));
            }
            let action = absolute(&url, &action);
            let answer = self.request(reqwest::Method::POST, &action, Some(&fields)).await;
            url = absolute(&action, &answer.location.unwrap_or_else(|| panic!("{action}: {}", answer.text)));
        }
        panic!("the provider never sent the browser back");
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin: Vec<&str> = base.splitn(4, '/').collect();
    format!("{}//{}{location}", origin[0], origin[2])
}

/// The first form of an HTML page: its action and hidden fields.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let action = html.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a form");
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let attribute = |name: &str| {
            input.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).map(String::from)
        };
        if attribute("type").as_deref() == Some("hidden") {
            fields.push((attribute("name").unwrap(), attribute("value").unwrap_or_default()));
        }
    }
    (action.replace("&amp;", "&"), fields)
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

pub struct Setup {
    pub app: TestApp,
    pub provider: Provider,
    pub server: String,
}

/// The server (clustercockpit's workflow: `support` is token-grantable) with the provider as its
/// issuer; the server starts first, while the provider is not there yet.
pub async fn setup(backend: Backend) -> Setup {
    let provider_port = free_port("127.0.0.2");
    let server_port = free_port("127.0.0.1");
    let server = format!("http://127.0.0.1:{server_port}");
    let issuer = format!("http://127.0.0.2:{provider_port}");
    let app = {
        let (server, issuer) = (server.clone(), issuer.clone());
        spawn_app_with(backend, move |settings| {
            settings.workflow = shipped_workflow("clustercockpit");
            settings.bind = format!("127.0.0.1:{server_port}");
            settings.public_url = server.clone();
            settings.jwt.keys = JwtKeys::Issuer;
            settings.jwt.issuer = Some(issuer.clone());
            settings.jwt.audience = Some(CLIENT_ID.into());
            settings.key_refresh = Duration::from_secs(1);
            settings.oidc = Some(OidcSettings {
                issuer,
                client_id: CLIENT_ID.into(),
                client_secret: Some(Secret::new(CLIENT_SECRET)),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
                redirect_uri: format!("{server}/ui/oidc/callback"),
                post_logout_redirect_uri: format!("{server}/ui/signin"),
            });
        })
        .await
    };
    let provider = Provider::start(provider_port, &server);
    assert_eq!(provider.issuer, format!("http://127.0.0.2:{provider_port}"));
    let setup = Setup { app, provider, server };
    let browser_url = format!("{}/ui/signin", setup.server);
    eventually("the sign-in page offers the provider", 20, || {
        let url = browser_url.clone();
        async move {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            text.contains("id=\"oidc-signin\"")
        }
    })
    .await;
    setup
}

/// A browser that has started a sign-in here: the provider's authorization URL.
async fn start_sign_in(setup: &Setup, browser: &mut Browser) -> String {
    let page = browser.get(&format!("{}/ui/oidc/login", setup.server)).await;
    assert_eq!(page.status, 303, "{}", page.text);
    let state = page.set_cookies.iter().find(|c| c.starts_with("rl_oidc=")).expect("the login-state cookie");
    let lowered = state.to_ascii_lowercase();
    assert!(
        lowered.contains("samesite=lax") && lowered.contains("httponly") && lowered.contains("max-age="),
        "{state}"
    );
    let location = page.location.unwrap();
    assert!(location.starts_with(&setup.provider.issuer), "{location}");
    for (name, value) in [("code_challenge_method", Some("S256")), ("client_id", Some(CLIENT_ID))] {
        assert_eq!(query_value(&location, name).as_deref(), value, "{location}");
    }
    assert!(query_value(&location, "state").is_some() && query_value(&location, "nonce").is_some());
    location
}

/// The whole sign-in of `login`; the callback's page.
async fn sign_in(setup: &Setup, browser: &mut Browser, login: &str) -> Page {
    let authorization = start_sign_in(setup, browser).await;
    let callback = browser.authorize(&authorization, login, &setup.server).await;
    browser.get(&callback).await
}

fn assert_signed_in(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("http-equiv=\"refresh\"") && page.text.contains("url=/ui"), "{}", page.text);
    let session = page.set_cookies.iter().find(|c| c.starts_with("rl_session=")).expect("a session cookie");
    assert!(session.to_ascii_lowercase().contains("samesite=strict"), "{session}");
}

/// Refused: a 4xx page, no session cookie, /ui still asks to sign in.
async fn assert_refused(setup: &Setup, browser: &mut Browser, page: &Page, words: &str) {
    assert!((400..500).contains(&page.status), "{}: {}", page.status, page.text);
    assert!(page.text.contains(words), "{words}: {}", page.text);
    assert!(!page.set_cookies.iter().any(|c| c.starts_with("rl_session=") && !c.starts_with("rl_session=;")));
    assert!(browser.cookie(&setup.server, "rl_session").is_none());
    let home = browser.get(&format!("{}/ui", setup.server)).await;
    assert_eq!((home.status, home.location.as_deref()), (303, Some("/ui/signin")));
}

async fn me(setup: &Setup, token: &str) -> (u16, Value) {
    let response =
        reqwest::Client::new().get(format!("{}/api/v1/me", setup.server)).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn signing_in_registers_the_user_with_profile_and_token_roles(backend: Backend) {
    let setup = setup(backend).await;
    let signin = reqwest::get(format!("{}/ui/signin", setup.server)).await.unwrap().text().await.unwrap();
    assert!(signin.contains(&format!("Sign in with {}", setup.provider.issuer.trim_start_matches("http://"))));
    let mut browser = Browser::new();
    let page = sign_in(&setup, &mut browser, "alice").await;
    assert_signed_in(&page);
    let home = browser.get(&format!("{}/ui", setup.server)).await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("alice"), "{}", home.text);
    let user = setup
        .app
        .application
        .read_model(|model| model.state().user("alice").map(|user| (user.email.clone(), user.name.clone())));
    assert_eq!(user, Some((Some("alice@example.org".to_string()), Some("Alice Example".to_string()))));
    // Only the token-grantable role of the roles claim counts.
    let token = setup.provider.mint(json!({"sub": "alice"})).await;
    let (status, body) = me(&setup, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(held_in(&body), ["support@global", "user@global"]);
}

async fn each_refusal_signs_nobody_in_and_writes_nothing(backend: Backend) {
    let setup = setup(backend).await;
    let head = setup.app.head().await;
    // A wrong state: the answer is for another sign-in.
    let mut browser = Browser::new();
    let authorization = start_sign_in(&setup, &mut browser).await;
    let callback = browser.authorize(&authorization, "bob", &setup.server).await;
    let state = query_value(&callback, "state").unwrap();
    let forged = callback.replace(&format!("state={state}"), "state=forged");
    let page = browser.get(&forged).await;
    assert_refused(&setup, &mut browser, &page, "wrong state").await;
    // A replayed code: the first use signs in, the second (same login state) is refused.
    let mut browser = Browser::new();
    let authorization = start_sign_in(&setup, &mut browser).await;
    let login_state = browser.cookie(&setup.server, "rl_oidc").unwrap();
    let callback = browser.authorize(&authorization, "bob", &setup.server).await;
    assert_signed_in(&browser.get(&callback).await);
    let head_after_bob = setup.app.head().await;
    let mut replay = Browser::new();
    replay.jars.entry("127.0.0.1".into()).or_default().insert("rl_oidc".into(), login_state);
    let page = replay.get(&callback).await;
    assert_refused(&setup, &mut replay, &page, "refused the sign-in code").await;
    assert_eq!(setup.app.head().await, head_after_bob);
    // ID tokens the provider's token endpoint returns tampered with (re-signed by its key).
    let cases = [
        (json!({"nonce": "another-nonce"}), "wrong nonce"),
        (json!({"aud": "other-client"}), "for another client"),
        (json!({"iss": "http://127.0.0.3:1"}), "by another issuer"),
        (json!({"sub": ""}), "empty"),
        (json!({"sub": "a".repeat(256)}), "255"),
        (json!({"sub": "al ice"}), "whitespace"),
        (json!({"sub": "system"}), "reserved"),
        (json!({"sub": "system:mail"}), "reserved"),
    ];
    for (claims, words) in cases {
        setup.provider.test_route("/test/tamper-next", json!({"claims": claims})).await;
        let mut browser = Browser::new();
        let page = sign_in(&setup, &mut browser, "carl").await;
        assert_refused(&setup, &mut browser, &page, words).await;
        assert_eq!(setup.app.head().await, head_after_bob, "{claims}");
    }
    // A subject holding U+200B, from the provider itself.
    let mut browser = Browser::new();
    let page = sign_in(&setup, &mut browser, "zwsp").await;
    assert_refused(&setup, &mut browser, &page, "invisible").await;
    // No login state at all.
    let mut browser = Browser::new();
    let page = browser.get(&format!("{}/ui/oidc/callback?code=x&state=y", setup.server)).await;
    assert_refused(&setup, &mut browser, &page, "did not start a sign-in").await;
    assert_eq!(setup.app.head().await, head_after_bob);
    assert!(head_after_bob > head);
    assert!(setup.app.application.read_model(|model| model.state().user("carl").is_none()));
}

async fn the_providers_jwts_work_on_the_api_and_keys_rotate_without_restart(backend: Backend) {
    let setup = setup(backend).await;
    let token = setup.provider.mint(json!({"sub": "carl"})).await;
    assert_eq!(me(&setup, &token).await.0, 200);
    // Rotation: the new key's tokens work at once (an unknown kid fetches the keys again); the old
    // key's stop once it is dropped.
    let rotated = setup.provider.test_route("/test/rotate-keys", json!({})).await;
    let previous = rotated["previous"][0].as_str().unwrap().to_string();
    let new_token = setup.provider.mint(json!({"sub": "bob"})).await;
    assert_eq!(me(&setup, &new_token).await.0, 200, "a token of the new key, no restart");
    let old_token = setup.provider.mint(json!({"sub": "alice", "kid": previous})).await;
    setup.provider.test_route("/test/drop-old-keys", json!({})).await;
    let (s, old) = (&setup, &old_token);
    eventually("the dropped key's tokens are refused", 20, || async move { me(s, old).await.0 == 401 }).await;
    // Strict claims, keys not for signatures, an unpublished key.
    let head = setup.app.head().await;
    for refused in [
        json!({"sub": "bob", "claims": {"iss": null}}),
        json!({"sub": "bob", "claims": {"aud": null}}),
        json!({"sub": "bob", "aud": "another-api"}),
        json!({"sub": "bob", "claims": {"iss": "http://127.0.0.3:1"}}),
        json!({"sub": "bob", "kid": "unpublished"}),
        json!({"sub": "bo\u{200b}b"}),
    ] {
        let token = setup.provider.mint(refused.clone()).await;
        assert_eq!(me(&setup, &token).await.0, 401, "{refused}");
    }
    for extra in [json!({"use": "enc"}), json!({"use": null, "key_ops": ["encrypt"]})] {
        let kid = setup.provider.test_route("/test/add-key", extra.clone()).await["kid"].as_str().unwrap().to_string();
        let token = setup.provider.mint(json!({"sub": "bob", "kid": kid})).await;
        assert_eq!(me(&setup, &token).await.0, 401, "{extra}");
    }
    assert_eq!(setup.app.head().await, head, "refused tokens write nothing");
    // The provider away: cached keys still verify, and the sign-in page says so (200).
    setup.provider.test_route("/test/outage", json!({"enabled": true})).await;
    let during = setup.provider.mint(json!({"sub": "bob"})).await;
    assert_eq!(me(&setup, &during).await.0, 200, "cached keys keep working");
    let url = format!("{}/ui/signin", setup.server);
    eventually("the sign-in page says the provider is unreachable", 20, || {
        let url = url.clone();
        async move {
            let response = reqwest::get(&url).await.unwrap();
            response.status() == 200 && response.text().await.unwrap().contains("cannot be reached")
        }
    })
    .await;
    setup.provider.test_route("/test/outage", json!({"enabled": false})).await;
    eventually("the sign-in page offers the provider again", 20, || {
        let url = url.clone();
        async move { reqwest::get(&url).await.unwrap().text().await.unwrap().contains("id=\"oidc-signin\"") }
    })
    .await;
}

async fn signing_out_ends_the_session_and_goes_to_the_provider(backend: Backend) {
    let setup = setup(backend).await;
    let mut browser = Browser::new();
    assert_signed_in(&sign_in(&setup, &mut browser, "alice").await);
    let home = browser.get(&format!("{}/ui", setup.server)).await;
    let (_, fields) = form_of(&home.text[home.text.find("class=\"signout\"").unwrap() - 6..]);
    let fields: Vec<(String, String)> = fields.into_iter().filter(|(name, _)| name == "csrf").take(1).collect();
    let page = browser.request(reqwest::Method::POST, &format!("{}/ui/signout", setup.server), Some(&fields)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let link =
        page.text.split("id=\"continue\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(link.starts_with(&format!("{}/session/end", setup.provider.issuer)), "{link}");
    assert_eq!(query_value(&link, "post_logout_redirect_uri"), Some(format!("{}/ui/signin", setup.server)));
    assert!(query_value(&link, "id_token_hint").is_some(), "{link}");
    assert!(browser.cookie(&setup.server, "rl_session").is_none());
    let home = browser.get(&format!("{}/ui", setup.server)).await;
    assert_eq!(home.status, 303);
    // The provider's page asks to confirm, then sends the browser to the sign-in page.
    let confirm = browser.get(&link).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    let (action, mut fields) = form_of(&confirm.text);
    fields.push(("logout".into(), "yes".into()));
    let done = browser.request(reqwest::Method::POST, &absolute(&link, &action), Some(&fields)).await;
    assert!(done.location.unwrap_or_default().starts_with(&format!("{}/ui/signin", setup.server)));
}

/// The server starts while its provider is away: the sign-in page says so (200), starting a
/// sign-in answers 503, never 500.
#[tokio::test]
async fn the_server_starts_while_the_provider_is_away() {
    let issuer = format!("http://127.0.0.2:{}", free_port("127.0.0.2"));
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.jwt.keys = JwtKeys::Issuer;
        settings.jwt.issuer = Some(issuer.clone());
        settings.jwt.audience = Some(CLIENT_ID.into());
        settings.oidc = Some(OidcSettings {
            issuer: issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            redirect_uri: "http://127.0.0.1:1/ui/oidc/callback".into(),
            post_logout_redirect_uri: "http://127.0.0.1:1/ui/signin".into(),
        });
    })
    .await;
    let signin = reqwest::get(format!("{}/ui/signin", app.address)).await.unwrap();
    assert_eq!(signin.status(), 200);
    let text = signin.text().await.unwrap();
    assert!(text.contains("cannot be reached") && !text.contains("id=\"oidc-signin\""), "{text}");
    assert!(!text.contains("Development mode"), "no development sign-in with an issuer");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.get(format!("{}/ui/oidc/login", app.address)).send().await.unwrap();
    assert_eq!(login.status(), 503);
    // Bearer tokens with a key id are refused (no keys yet), not a 500.
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2ln";
    let me = client.get(format!("{}/api/v1/me", app.address)).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), 401);
}

/// `--jwks` as an http(s) URL: the provider's keys, fetched by the server, verify its tokens.
#[tokio::test]
async fn jwks_may_be_a_url() {
    let provider = Provider::start(free_port("127.0.0.2"), "http://127.0.0.1:1");
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", provider.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks = discovery["jwks_uri"].as_str().unwrap().to_string();
    let issuer = provider.issuer.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.jwt.keys = JwtKeys::JwksUrl(jwks);
        settings.jwt.issuer = Some(issuer);
        settings.jwt.audience = Some(CLIENT_ID.into());
    })
    .await;
    let token = provider.mint(json!({"sub": "carl"})).await;
    let url = format!("{}/api/v1/me", app.address);
    let (url, token) = (&url, &token);
    eventually("the provider's token verifies", 20, || async move {
        reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().status() == 200
    })
    .await;
}

on_both_backends!(
    signing_in_registers_the_user_with_profile_and_token_roles,
    each_refusal_signs_nobody_in_and_writes_nothing,
    the_providers_jwts_work_on_the_api_and_keys_rotate_without_restart,
    signing_out_ends_the_session_and_goes_to_the_provider,
);
