//! Installing and running anywhere: the five workflows are built into the binary (`--workflow
//! NAME`, the built-in `egi` by default), `workflow show`, shell completions and the man page.

use std::path::PathBuf;

use crate::{
    cli::{assert_one_line_error, roleledger},
    helpers::{shipped_workflow, spawn_app_with},
    support::Backend,
};

const NAMES: [&str; 5] = ["egi", "clustercockpit", "ucp", "clarive", "rancher"];

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

fn is_empty(folder: &std::path::Path) -> bool {
    std::fs::read_dir(folder).unwrap().next().is_none()
}

#[test]
fn workflow_show_prints_each_built_in_workflow_byte_for_byte() {
    let folder = tempfile::tempdir().unwrap();
    for name in NAMES {
        let output = roleledger(&["workflow", "show", name], folder.path());
        assert_eq!(output.stdout, std::fs::read(shipped_workflow(name)).unwrap(), "{name}");
    }
    assert!(is_empty(folder.path()), "nothing written");
}

#[test]
fn an_unknown_workflow_name_exits_2_naming_the_built_in_ones() {
    let folder = tempfile::tempdir().unwrap();
    let output = roleledger(&["workflow", "show", "gocdb"], folder.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("gocdb"), "{stderr}");
    for name in NAMES {
        assert!(stderr.contains(name), "{stderr} should name {name}");
    }
    // The same for --workflow: a value without / or .toml must be a built-in name.
    let output = roleledger(&["serve", "--check", "--workflow", "gocdb"], folder.path());
    assert_one_line_error(&output, "gocdb: no built-in workflow has this name (built in: egi, clustercockpit, ucp");
    assert!(is_empty(folder.path()), "nothing written");
}

/// With no configuration at all, the built-in EGI workflow is used: `serve --check` in an empty
/// folder; a name picks another built-in one, and a path still names a file.
#[test]
fn serve_check_runs_in_an_empty_folder_on_a_built_in_workflow() {
    let folder = tempfile::tempdir().unwrap();
    let summary = stdout(&roleledger(&["serve", "--check"], folder.path()));
    assert!(summary.starts_with("workflow \"egi\" (built-in egi): "), "{summary}");
    let summary = stdout(&roleledger(&["serve", "--check", "--workflow", "ucp"], folder.path()));
    assert!(summary.starts_with("workflow \"ucp\" (built-in ucp): "), "{summary}");
    let file = shipped_workflow("rancher");
    let summary = stdout(&roleledger(&["serve", "--check", "--workflow", file.to_str().unwrap()], folder.path()));
    assert!(summary.starts_with(&format!("workflow \"rancher\" ({}): ", file.display())), "{summary}");
    // A bare file name ending in .toml is a file, looked for in the working directory.
    std::fs::copy(shipped_workflow("clarive"), folder.path().join("mine.toml")).unwrap();
    let summary = stdout(&roleledger(&["serve", "--check", "--workflow", "mine.toml"], folder.path()));
    assert!(summary.starts_with("workflow \"clarive\" (mine.toml): "), "{summary}");
    std::fs::remove_file(folder.path().join("mine.toml")).unwrap();
    assert!(is_empty(folder.path()), "no database, secret or mail folder");
}

/// Read-only commands with the built-in default workflow still create no database.
#[test]
fn read_only_commands_with_the_default_workflow_create_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 4] = [&["verify"], &["check", "root", "scope.edit", "global"], &["export"], &["replay"]];
    for command in commands {
        let output = roleledger(command, folder.path());
        assert_one_line_error(&output, "roleledger.db does not exist");
        assert!(is_empty(folder.path()), "{command:?} created a file");
    }
}

/// `verify` folds the projections under the built-in workflow when no file is named, and says
/// so when a named file is missing.
#[test]
fn verify_checks_projections_under_the_built_in_workflow() {
    let folder = tempfile::tempdir().unwrap();
    assert!(roleledger(&["bootstrap-admin", "root"], folder.path()).status.success());
    let report = stdout(&roleledger(&["verify"], folder.path()));
    assert!(report.contains("projections match a rebuild at position"), "{report}");
    let report = stdout(&roleledger(&["verify", "--workflow", "gone/egi.toml"], folder.path()));
    assert!(report.contains("projections not checked: no workflow file at gone/egi.toml"), "{report}");
}

#[test]
fn completions_and_the_man_page_name_the_subcommands() {
    let folder = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&roleledger(&["completions", shell], folder.path()));
        for word in ["roleledger", "serve", "bootstrap-admin", "workflow", "completions", "database"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = stdout(&roleledger(&["man"], folder.path()));
    assert!(man.starts_with(".ie") || man.contains(".TH roleledger"), "{}", &man[..man.len().min(200)]);
    for word in ["serve", "verify", "bootstrap\\-admin", "workflow", "completions"] {
        assert!(man.contains(word), "the man page lacks {word}");
    }
    let output = roleledger(&["completions", "tcsh"], folder.path());
    assert_eq!(output.status.code(), Some(2), "an unknown shell is a usage error");
    // Neither needs (nor reads) a configuration: a broken one does not stop them.
    std::fs::write(folder.path().join("broken.toml"), "nonsense = [").unwrap();
    let output = roleledger(&["man", "--config", "broken.toml"], folder.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_file(folder.path().join("broken.toml")).unwrap();
    assert!(is_empty(folder.path()), "nothing written");
}

/// A server started on a built-in workflow by name: UCP's roles are served.
async fn a_server_runs_a_built_in_workflow_by_name(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.workflow = PathBuf::from("ucp")).await;
    app.bootstrap_admin("root").await;
    let roles = app.get_as("root", "/api/v1/roles").await;
    assert_eq!(roles.status, 200, "{:?}", roles.body);
    let ids: Vec<&str> = roles.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    for role in ["scheduler", "full-control", "restricted-control", "admin"] {
        assert!(ids.contains(&role), "{ids:?} lacks {role}");
    }
    assert!(!ids.contains(&"site-administrator"), "not EGI's");
}

on_both_backends!(a_server_runs_a_built_in_workflow_by_name);

/// The binary the tests built, as `cargo install` would leave it: `serve` in an empty folder with
/// no flag, no configuration and no `ROLELEDGER_*` variable answers `/healthz` and keeps its log
/// in `roleledger.db` there. (`scripts/install-check`, run by `scripts/test --long`, does the same
/// with a real `cargo install`.)
#[tokio::test]
async fn serve_in_an_empty_folder_with_no_configuration_answers_healthz() {
    let folder = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_roleledger"));
    command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]).current_dir(folder.path());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("ROLELEDGER_")) {
        command.env_remove(name);
    }
    let mut child = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let client = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    let answered = async {
        loop {
            if let Ok(answer) = client.get(&healthz).send().await {
                return answer.status();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), answered).await;
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let ended = child.wait().unwrap();
    assert_eq!(status.expect("the server answers within 30 s"), 200);
    assert!(ended.success(), "SIGTERM ends it cleanly: {ended:?}");
    assert!(folder.path().join("roleledger.db").exists(), "the log is kept in the folder it runs in");
}
