use std::path::PathBuf;

use roleledger::{configuration::Settings, startup::Application};

use crate::support::{Backend, TestDatabase};

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
}

pub fn default_workflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/egi.toml")
}

/// Starts the real server on a free port over a fresh database of the given backend.
pub async fn spawn_app(backend: Backend) -> TestApp {
    roleledger::telemetry::init("warn");
    let db = TestDatabase::new(backend).await;
    let settings = Settings { bind: "127.0.0.1:0".into(), database: db.url.clone(), workflow: default_workflow() };
    let app = Application::build(&settings).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp { address, db, client: reqwest::Client::new() }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("the server answers")
    }
}
