//! `/openapi.json` as client generators see it (SPEC.md part two, "An API that client generators
//! understand"): a standard validator accepts it, and a client generated from it by a standard
//! generator runs the request → approve → check story. Both tools come from PyPI, installed by
//! `scripts/python-tools` into the target folder; without them these tests fail, never skip.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, token_for, TestApp},
    support::Backend,
};

/// The venv that `scripts/python-tools` makes, where `scripts/test` expects it.
fn python_tools() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"));
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(target).join("venv-openapi");
    let bin = venv.join("bin");
    for tool in ["python", "openapi-spec-validator", "openapi-python-client"] {
        assert!(
            bin.join(tool).exists(),
            "{} is missing: run scripts/python-tools (scripts/test does) to install the pinned \
             OpenAPI tools of tests/openapi/requirements.txt",
            bin.join(tool).display()
        );
    }
    bin
}

/// Runs a command off the test's runtime (the server under test answers on it meanwhile) and
/// asserts that it succeeded; its output.
async fn run(what: &str, mut command: Command) -> Output {
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("the tool runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", output.status);
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    output
}

/// The server's document, saved where the tools read it.
async fn saved_document(app: &TestApp, folder: &Path) -> PathBuf {
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let path = folder.join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    path
}

async fn a_standard_validator_accepts_the_document(backend: Backend) {
    let bin = python_tools();
    let app = spawn_app(backend).await;
    let folder = tempfile::tempdir().unwrap();
    let document = saved_document(&app, folder.path()).await;
    let mut validator = Command::new(bin.join("openapi-spec-validator"));
    validator.arg(&document);
    let output = run("openapi-spec-validator", validator).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK"), "{output:?}");
}

async fn a_generated_client_runs_the_story(backend: Backend) {
    let bin = python_tools();
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let folder = tempfile::tempdir().unwrap();
    let document = saved_document(&app, folder.path()).await;

    // Its post-generation hook runs ruff, from the same venv.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path))).unwrap();
    let mut generator = Command::new(bin.join("openapi-python-client"));
    generator
        .args(["generate", "--meta", "none", "--path"])
        .arg(&document)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/generator.yaml"))
        .arg("--output-path")
        .arg(folder.path().join("roleledger_client"))
        .env("PATH", path);
    let output = run("openapi-python-client generate", generator).await;
    // It warns of what it leaves out (an untyped answer, say) and still succeeds: no piece may be missing.
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!said.to_lowercase().contains("warning"), "the generator warned:\n{said}");

    let tokens: Value =
        ["root", "alice", "manager"].iter().map(|user| (user.to_string(), json!(token_for(user)))).collect();
    let mut story = Command::new(bin.join("python"));
    story
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/client_story.py"))
        .env("PYTHONPATH", folder.path())
        .env("ROLELEDGER_URL", &app.address)
        .env("ROLELEDGER_TOKENS", tokens.to_string());
    let output = run("the client story", story).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("client story: ok"), "{output:?}");
    // The story's approval is in the log.
    let grants = app.get_as("root", "/api/v1/grants?user=alice&role=site-administrator").await;
    assert_eq!(grants.body["items"].as_array().map(Vec::len), Some(1), "{:?}", grants.body);
}

/// What the generators rely on, checked without them: unique camelCase operation ids, a schema for
/// every body, the one `Problem` for every error, the streaming media types, paging on every list.
async fn the_document_types_every_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = document["components"]["schemas"].as_object().expect("components");
    let mut ids = std::collections::BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let route = format!("{method} {path}");
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{route}: no operationId"));
            assert!(ids.insert(id.to_string()), "{route}: operationId {id} twice");
            let camel = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric());
            assert!(camel, "{route}: {id} is not camelCase");
            if let Some(body) = operation.get("requestBody") {
                // JSON, but for the candidate workflow of `POST /audit/simulate`: a TOML file.
                let typed = |media: &str| body["content"][media]["schema"].is_object();
                assert!(typed("application/json") || typed("application/toml"), "{route}: untyped body");
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                let content = response["content"].as_object();
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"],
                        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}),
                        "{route} {status}"
                    );
                } else if status != "204" {
                    let content = content.unwrap_or_else(|| panic!("{route} {status}: no content"));
                    assert!(content.values().all(|c| c["schema"].is_object()), "{route} {status}: untyped");
                }
            }
            let answer = &operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
            if answer.as_str().is_some_and(|name| name.ends_with("Page")) {
                let params: Vec<&str> =
                    operation["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
                assert!(params.contains(&"cursor") && params.contains(&"limit"), "{route} pages without {params:?}");
            }
        }
    }
    for name in ["Problem", "Request", "Grant", "CheckAnswer", "Event"] {
        assert!(schemas.contains_key(name), "no {name} schema");
    }
    let content = |path: &str| document["paths"][path]["get"]["responses"]["200"]["content"].clone();
    assert!(content("/api/v1/events")["application/x-ndjson"].is_object(), "{}", content("/api/v1/events"));
    assert!(content("/api/v1/events/live")["text/event-stream"].is_object());
    assert_eq!(document["paths"]["/api/v1/users/{id}/approver-scopes"]["get"]["operationId"], "listApproverScopes");
}

on_both_backends!(
    a_standard_validator_accepts_the_document,
    a_generated_client_runs_the_story,
    the_document_types_every_answer,
);
