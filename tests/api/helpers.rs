use std::{path::PathBuf, sync::Arc};

use reqwest::{Method, Response};
use roleledger::{
    app::App,
    auth::{JwtVerifier, LoginClaims},
    configuration::{JwtKeys, JwtSettings, Secret, Settings},
    startup::Application,
    store::EventStore,
};
use serde_json::{json, Value};

use crate::support::{Backend, TestDatabase};

/// The shared secret the test servers check login tokens with.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef";

pub struct TestApp {
    pub address: String,
    pub db: Arc<TestDatabase>,
    /// Where the server writes its mail as .eml files (no --smtp given).
    pub mail_dir: Arc<tempfile::TempDir>,
    pub store: EventStore,
    /// The server's application (commands run and the model read in the server's own process).
    pub application: App,
    pub client: reqwest::Client,
}

pub fn default_workflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/egi.toml")
}

/// A workflow shipped in `workflows/`, by name: `ucp` is `workflows/ucp.toml`.
pub fn shipped_workflow(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("workflows/{name}.toml"))
}

/// Starts the real server with a shipped workflow instead of EGI's.
pub async fn spawn_app_on(backend: Backend, workflow: &str) -> TestApp {
    let workflow = shipped_workflow(workflow);
    spawn_app_with(backend, |settings| settings.workflow = workflow).await
}

/// Starts the real server on a free port over a fresh database of the given backend.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the real server over a database that already holds a log.
pub async fn spawn_app_over(db: TestDatabase) -> TestApp {
    start(Arc::new(db), |_| {}).await
}

/// Like `spawn_app`, with settings changed first.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> TestApp {
    start(Arc::new(TestDatabase::new(backend).await), change).await
}

async fn start(db: Arc<TestDatabase>, change: impl FnOnce(&mut Settings)) -> TestApp {
    roleledger::telemetry::init("warn");
    let mail_dir = Arc::new(tempfile::tempdir().expect("a mail folder"));
    let mut settings = Settings::for_tests(db.url.clone(), default_workflow(), JWT_SECRET);
    settings.mail_dir = mail_dir.path().to_path_buf();
    change(&mut settings);
    let app = Application::build(&settings).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let application = app.app();
    let store = application.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp { address, db, mail_dir, store, application, client: reqwest::Client::new() }
}

fn signer(secret: &str) -> JwtVerifier {
    let settings = JwtSettings { keys: JwtKeys::Secret(Secret::new(secret)), issuer: None, audience: None };
    JwtVerifier::from_settings(&settings).expect("a signer")
}

/// A login token for `user`, valid for an hour, signed with the servers' secret.
pub fn token_for(user: &str) -> String {
    login_token(LoginClaims {
        sub: user.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        email: Some(format!("{user}@example.org")),
        name: None,
        roles: None,
    })
}

pub fn login_token(claims: LoginClaims) -> String {
    signer(JWT_SECRET).sign(&claims).expect("signed")
}

/// A token the servers must refuse: signed with another secret.
pub fn forged_token_for(user: &str) -> String {
    let claims = LoginClaims {
        sub: user.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        email: None,
        name: None,
        roles: None,
    };
    signer("another-secret-0123456789abcdef").sign(&claims).expect("signed")
}

/// A token that expired an hour ago.
pub fn expired_token_for(user: &str) -> String {
    login_token(LoginClaims {
        sub: user.into(),
        exp: chrono::Utc::now().timestamp() - 3600,
        email: None,
        name: None,
        roles: None,
    })
}

/// An unsigned token (`alg: none`) claiming to be `user`.
pub fn unsigned_token_for(user: &str) -> String {
    let encode = |value: Value| base64_url(value.to_string().as_bytes());
    let header = encode(json!({"alg": "none", "typ": "JWT"}));
    let payload = encode(json!({"sub": user, "exp": chrono::Utc::now().timestamp() + 3600}));
    format!("{header}.{payload}.")
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The grants of a `GET /me` answer as `role@scope`, sorted.
pub fn held_in(me: &Value) -> Vec<String> {
    let mut held: Vec<String> = me["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .map(|g| format!("{}@{}", g["role"].as_str().unwrap(), g["scope"].as_str().unwrap()))
        .collect();
    held.sort();
    held
}

/// A response read whole: status, headers and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(response: Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, content_type, headers, body }
    }

    /// The problem's machine code.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Asserts a problem answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.code(), code, "{:?}", self.body);
        assert!(self.content_type.starts_with("application/problem+json"), "{}", self.content_type);
        for field in ["type", "title", "status", "detail"] {
            assert!(!self.body[field].is_null(), "problem without {field}: {:?}", self.body);
        }
    }
}

impl TestApp {
    /// Another server process's worth (its own store, pool, writer and read model) on the same database.
    pub async fn second_process(&self) -> TestApp {
        self.second_process_with(|_| {}).await
    }

    /// Like `second_process`, with settings changed first.
    pub async fn second_process_with(&self, change: impl FnOnce(&mut Settings)) -> TestApp {
        let mail_dir = self.mail_dir.path().to_path_buf();
        start(self.db.clone(), |settings| {
            settings.mail_dir = mail_dir;
            change(settings);
        })
        .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("the server answers")
    }

    /// Calls the API with a bearer token (or none) and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::from(request.send().await.expect("the server answers")).await
    }

    pub async fn get_as(&self, user: &str, path: &str) -> Answer {
        self.call(Method::GET, path, Some(&token_for(user)), None).await
    }

    pub async fn post_as(&self, user: &str, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(&token_for(user)), Some(body)).await
    }

    pub async fn put_as(&self, user: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(Method::PUT, path, Some(&token_for(user)), body).await
    }

    /// `check` asked by `user` about themselves; asserts a 200 answer.
    pub async fn check(&self, user: &str, permission: &str, scope: &str) -> Answer {
        let path = format!("/api/v1/check?user={user}&permission={permission}&scope={scope}");
        let answer = self.get_as(user, &path).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer
    }

    /// Whether `check` allows `user` `permission` on `scope`.
    pub async fn allowed(&self, user: &str, permission: &str, scope: &str) -> bool {
        self.check(user, permission, scope).await.body["allowed"].as_bool().expect("allowed is a boolean")
    }

    /// `actor` creates a scope; the answer is returned unchecked.
    pub async fn create_scope(&self, actor: &str, id: &str, kind: &str, parents: &[&str]) -> Answer {
        let body = json!({"id": id, "kind": kind, "parents": parents, "title": id});
        self.post_as(actor, "/api/v1/scopes", body).await
    }

    /// The roles of `user`'s current grants as `role@scope`, sorted, from `GET /me`.
    pub async fn held(&self, user: &str) -> Vec<String> {
        let me = self.get_as(user, "/api/v1/me").await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        held_in(&me.body)
    }

    pub async fn delete_as(&self, user: &str, path: &str) -> Answer {
        self.call(Method::DELETE, path, Some(&token_for(user)), None).await
    }

    /// Runs the real `roleledger` binary on this server's database, under its default workflow
    /// (the built-in `egi`, the one the test servers run).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_roleledger"))
            .args(args)
            .args(["--database", &self.db.url.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("ROLELEDGER_DATABASE")
            .env_remove("ROLELEDGER_CONFIG")
            .output()
            .expect("the binary runs")
    }

    /// Makes `user` an administrator, as `roleledger bootstrap-admin` does.
    pub async fn bootstrap_admin(&self, user: &str) {
        roleledger::cli::bootstrap_admin(&self.application, user).await.expect("bootstrap");
    }

    /// The log's head position: unchanged when a refused call wrote nothing.
    pub async fn head(&self) -> i64 {
        self.store.head().await.expect("the head").position
    }

    /// Signs `user` in (registering them) without doing anything else.
    pub async fn sign_in(&self, user: &str) {
        let answer = self.get_as(user, "/api/v1/me").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    /// Admin creates the EGI tree used by most tests: project EGI ⊃ NGI NGI_A ⊃ sites SITE_A, SITE_B.
    pub async fn egi_tree(&self, admin: &str) {
        self.egi_tree_with_mailboxes(admin, &[]).await
    }

    /// Like `egi_tree`, the scopes named in `mailboxes` with their mailbox.
    pub async fn egi_tree_with_mailboxes(&self, admin: &str, mailboxes: &[(&str, &str)]) {
        for (id, kind, parents) in [
            ("EGI", "project", vec![]),
            ("NGI_A", "ngi", vec!["EGI"]),
            ("SITE_A", "site", vec!["NGI_A"]),
            ("SITE_B", "site", vec!["NGI_A"]),
        ] {
            let mailbox = mailboxes.iter().find(|(scope, _)| *scope == id).map(|(_, mailbox)| *mailbox);
            let body = json!({"id": id, "kind": kind, "parents": parents, "title": id, "mailbox": mailbox});
            let answer = self.post_as(admin, "/api/v1/scopes", body).await;
            assert_eq!(answer.status, 201, "{:?}", answer.body);
        }
    }

    /// Admin assigns `role` on `scope` to `user` directly; returns the grant id.
    pub async fn assign(&self, admin: &str, user: &str, role: &str, scope: &str) -> String {
        self.sign_in(user).await;
        let body = json!({"user": user, "role": role, "scope": scope, "reason": "test setup"});
        let answer = self.post_as(admin, "/api/v1/grants", body).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        answer.body["id"].as_str().unwrap().to_string()
    }
}
