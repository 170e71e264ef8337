//! The web pages' end-to-end story in headless Chromium (tests/browser/story.mjs), against the
//! real server: a request made on the pages, approved on /ui/decide (ticked, decided with others),
//! seen as a grant on /ui, found by the auditor in the log and as of now, hidden from a manager of
//! another site; an admin's token made and revoked on /ui/admin. Fails, never skips, without Chromium or playwright-core
//! (`scripts/test` installs both).

use std::path::{Path, PathBuf};

use crate::{
    helpers::{spawn_app, token_for},
    support::Backend,
};

fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
}

#[tokio::test]
async fn the_story_in_chromium() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        chromium().exists(),
        "{} is missing: apt-get install -y chromium (scripts/test does)",
        chromium().display()
    );
    assert!(
        folder.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: npm ci in {} (scripts/test does)",
        folder.display()
    );

    let app = spawn_app(Backend::Sqlite).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "outsider", "site-operations-manager", "SITE_B").await;
    app.assign("root", "aud", "auditor", "global").await;
    // A review of SITE_A, for the review pages.
    let review =
        serde_json::json!({"scope": "SITE_A", "due": "P14D", "on_no_answer": "keep", "title": "SITE_A in spring"});
    assert_eq!(app.post_as("root", "/api/v1/reviews", review).await.status, 201);
    let mut story = std::process::Command::new("node");
    story.current_dir(&folder).arg("story.mjs").arg(&app.address);
    story.args(["requester", "manager", "outsider", "aud", "root"].map(token_for)).env("CHROMIUM", chromium());
    story.arg(app.mail_dir.path());
    // The server runs on this test's runtime: wait for the browser on another thread.
    let output = tokio::task::spawn_blocking(move || story.output()).await.unwrap().expect("node runs");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser story failed:\n{log}");
}

/// Sign-in through the OpenID Provider's own pages (tests/browser/oidc_story.mjs): "Sign in with …",
/// the provider's login and consent forms, back signed in on /ui, and sign-out through the
/// provider's end-session page.
#[tokio::test]
async fn the_oidc_story_in_chromium() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        chromium().exists(),
        "{} is missing: apt-get install -y chromium (scripts/test does)",
        chromium().display()
    );
    let setup = crate::oidc::setup(Backend::Sqlite).await;
    let mut story = std::process::Command::new("node");
    story.current_dir(&folder).arg("oidc_story.mjs").arg(&setup.server);
    story.arg(setup.provider.issuer.trim_start_matches("http://")).env("CHROMIUM", chromium());
    let output = tokio::task::spawn_blocking(move || story.output()).await.unwrap().expect("node runs");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the OpenID Connect story failed:\n{log}");
}
