//! Bad input on the command line: a clear one-line error, a non-zero exit, no panic, nothing written.

use std::process::{Command, Output};

use crate::support::{Backend, TestDatabase};

pub(crate) fn roleledger(args: &[&str], folder: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roleledger"))
        .args(args)
        .current_dir(folder)
        .env_remove("ROLELEDGER_DATABASE")
        .env_remove("ROLELEDGER_CONFIG")
        .output()
        .expect("the binary runs")
}

/// Exit code 2 and exactly one line on stderr that starts with `error:` and says `what`.
pub(crate) fn assert_one_line_error(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(what), "{stderr}");
}

#[test]
fn unknown_url_scheme_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let output = roleledger(&["migrate", "--database", "mysql://localhost/roles"], folder.path());
    assert_one_line_error(&output, "unsupported database URL");
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0, "nothing written");
}

#[test]
fn unreachable_postgres_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let output = roleledger(&["migrate", "--database", "postgres://postgres@127.0.0.1:1/none"], folder.path());
    assert_one_line_error(&output, "Connection refused");
}

#[test]
fn corrupted_sqlite_file_is_refused_and_left_as_it_was() {
    let folder = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let path = folder.path().join("roleledger.db");
    std::fs::write(&path, &garbage).unwrap();
    for command in ["migrate", "verify"] {
        let output = roleledger(&[command], folder.path());
        assert_one_line_error(&output, "file is not a database");
    }
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file is untouched");
    assert!(
        !folder.path().join("roleledger.db-wal").exists()
            || std::fs::metadata(folder.path().join("roleledger.db-wal")).unwrap().len() == 0
    );
}

#[test]
fn read_only_sqlite_file_is_refused_for_writing() {
    let folder = tempfile::tempdir().unwrap();
    assert!(roleledger(&["migrate"], folder.path()).status.success());
    let read_only = "sqlite:roleledger.db?mode=ro";
    assert_one_line_error(&roleledger(&["migrate", "--database", read_only], folder.path()), "readonly database");
    // Reading a read-only file is fine.
    assert!(roleledger(&["verify", "--database", read_only], folder.path()).status.success());
}

#[test]
fn environment_variables_apply_and_flags_win_over_them() {
    let folder = tempfile::tempdir().unwrap();
    let with_env = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roleledger"))
            .args(args)
            .current_dir(folder.path())
            .env("ROLELEDGER_DATABASE", "mysql://from-env/x")
            .output()
            .unwrap()
    };
    assert_one_line_error(&with_env(&["migrate"]), "mysql://from-env/x");
    let output = with_env(&["migrate", "--database", "sqlite:flag.db"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(folder.path().join("flag.db").exists());
}

#[test]
fn configuration_file_applies_and_unknown_keys_are_refused() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("good.toml"), "database = \"sqlite:from-file.db\"\n").unwrap();
    assert!(roleledger(&["migrate", "--config", "good.toml"], folder.path()).status.success());
    assert!(folder.path().join("from-file.db").exists());
    std::fs::write(folder.path().join("bad.toml"), "databse = \"sqlite:x.db\"\n").unwrap();
    assert_one_line_error(&roleledger(&["migrate", "--config", "bad.toml"], folder.path()), "unknown field `databse`");
}

#[tokio::test]
async fn serve_refuses_an_address_it_cannot_bind() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let folder = tempfile::tempdir().unwrap();
    let workflow = crate::helpers::default_workflow();
    let output = roleledger(
        &[
            "serve",
            "--bind",
            "256.0.0.1:80",
            "--database",
            &db.url.to_string(),
            "--workflow",
            workflow.to_str().unwrap(),
            "--jwt-secret",
            "0123456789abcdef0123",
        ],
        folder.path(),
    );
    assert_one_line_error(&output, "cannot listen on 256.0.0.1:80");
}

#[test]
fn serve_refuses_a_missing_workflow_file() {
    let folder = tempfile::tempdir().unwrap();
    let output = roleledger(&["serve", "--workflow", "no/such.toml"], folder.path());
    assert_one_line_error(&output, "no/such.toml");
}

#[test]
fn serve_refuses_an_invalid_workflow_naming_file_and_line() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("broken.toml"),
        "[kinds.site]\ntitle = \"Site\"\n\n[roles.manager]\ntitle = \"Manager\"\nkinds = [\"site\"]\nincludes = [\"nobody\"]\n",
    )
    .unwrap();
    let output = roleledger(&["serve", "--workflow", "broken.toml"], folder.path());
    assert_one_line_error(&output, "broken.toml:");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nobody"), "{stderr}");
    assert!(!folder.path().join("roleledger.db").exists(), "nothing is created for a server that cannot start");
}

#[test]
fn token_prints_only_a_token_signed_with_the_kept_development_secret() {
    let folder = tempfile::tempdir().unwrap();
    let output =
        roleledger(&["token", "--user", "alice", "--email", "alice@example.org", "--ttl", "1h"], folder.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token on stdout: {stdout}");
    assert_eq!(lines[0].split('.').count(), 3, "a JWT: {stdout}");
    let secret_file = folder.path().join("roleledger.db.jwt-secret");
    let secret = std::fs::read_to_string(&secret_file).expect("the development secret is kept next to the database");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let settings = roleledger::configuration::JwtSettings {
        keys: roleledger::configuration::JwtKeys::Secret(roleledger::configuration::Secret::new(secret.trim())),
        issuer: None,
        audience: None,
    };
    let claims = roleledger::auth::JwtVerifier::from_settings(&settings).unwrap().verify(lines[0]).unwrap().claims;
    assert_eq!((claims.sub.as_str(), claims.email.as_deref()), ("alice", Some("alice@example.org")));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(secret.trim()), "the secret is never printed");
    // A second token uses the same kept secret.
    let again = roleledger(&["token", "--user", "bob"], folder.path());
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    // A usage error (clap's own message, with its hint line), exit code 2.
    let bad_ttl = roleledger(&["token", "--user", "bob", "--ttl", "forever"], folder.path());
    assert_eq!(bad_ttl.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("bad duration \"forever\""));
    assert!(bad_ttl.stdout.is_empty());
    // A well-formed but absurd one is an error too, never an overflow.
    let absurd_ttl = roleledger(&["token", "--user", "bob", "--ttl", "P100000000D"], folder.path());
    assert_eq!(absurd_ttl.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&absurd_ttl.stderr).starts_with("error: invalid duration"));
    assert!(absurd_ttl.stdout.is_empty());
}

#[test]
fn bootstrap_admin_then_check_answers_with_exit_codes() {
    let folder = tempfile::tempdir().unwrap();
    let workflow = crate::helpers::default_workflow();
    let workflow = workflow.to_str().unwrap();
    let bootstrap = roleledger(&["bootstrap-admin", "root", "--workflow", workflow], folder.path());
    assert!(bootstrap.status.success(), "{}", String::from_utf8_lossy(&bootstrap.stderr));
    // Twice is fine: nothing more to do.
    assert!(roleledger(&["bootstrap-admin", "root", "--workflow", workflow], folder.path()).status.success());
    let allowed = roleledger(&["check", "root", "scope.edit", "global", "--workflow", workflow], folder.path());
    assert_eq!(allowed.status.code(), Some(0), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert!(String::from_utf8_lossy(&allowed.stdout).starts_with("allowed"));
    let denied = roleledger(&["check", "alice", "scope.edit", "global", "--workflow", workflow], folder.path());
    assert_eq!(denied.status.code(), Some(1));
    let broken = roleledger(&["check", "alice", "scope.edit", "global", "--database", "mysql://x/y"], folder.path());
    assert_one_line_error(&broken, "unsupported database URL");
    // The grant is an event whose actor is the command line, in a log that verifies.
    assert!(roleledger(&["verify"], folder.path()).status.success());
}

/// Runs the real server at debug level, signs in, makes and uses an API token, sends a bad token,
/// and reads the whole log: neither tokens nor secrets appear in it.
#[tokio::test]
async fn the_server_logs_no_token_and_no_secret() {
    let folder = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = "log-hygiene-secret-0123456789";
    let workflow = crate::helpers::default_workflow();
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roleledger"));
        command.args(args).args(["--workflow", workflow.to_str().unwrap()]).current_dir(folder.path());
        command.env_remove("ROLELEDGER_DATABASE").env("ROLELEDGER_JWT_SECRET", secret).env("RUST_LOG", "debug");
        command
    };
    assert!(run(&["bootstrap-admin", "root"]).output().unwrap().status.success());
    let token =
        String::from_utf8(run(&["token", "--user", "root"]).output().unwrap().stdout).unwrap().trim().to_string();
    let log = std::fs::File::create(folder.path().join("server.log")).unwrap();
    let mut server = run(&["serve", "--bind", &format!("127.0.0.1:{port}")]).stderr(log).spawn().unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{address}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the server starts");
    let me = client.get(format!("{address}/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let created: serde_json::Value = client
        .post(format!("{address}/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_token = created["token"].as_str().expect("a secret").to_string();
    let check = format!("{address}/api/v1/check?user=root&permission=x&scope=global");
    assert_eq!(client.get(&check).bearer_auth(&api_token).send().await.unwrap().status(), 200);
    assert_eq!(client.get(&check).bearer_auth(format!("{token}x")).send().await.unwrap().status(), 401);
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(folder.path().join("server.log")).unwrap();
    assert!(log.contains("roleledger is listening"), "the log was written: {log}");
    for (what, text) in [("login token", token.as_str()), ("API token", api_token.as_str()), ("JWT secret", secret)] {
        assert!(!log.contains(text), "the {what} appears in the log");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token's signature appears in the log");
}

#[test]
fn development_sign_in_refuses_to_listen_beyond_loopback() {
    let folder = tempfile::tempdir().unwrap();
    let workflow = crate::helpers::default_workflow();
    let output = roleledger(&["serve", "--bind", "0.0.0.0:0", "--workflow", workflow.to_str().unwrap()], folder.path());
    assert_one_line_error(&output, "loopback");
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0, "nothing written, no secret made");
}

/// `serve --check` on each shipped workflow: a summary on stdout, exit 0, and no database, secret
/// or mail folder made.
#[test]
fn serve_check_summarises_each_shipped_workflow_without_a_database() {
    for (name, lines) in [
        ("egi", &["  site \"Site\" under ngi", "  service-group-administrator: on service-group; decides"][..]),
        (
            "clustercockpit",
            &["  api: on global; not requestable; API role; gives api.use", "  none: administrators decide every request", "every new user receives: user@global"],
        ),
        (
            "ucp",
            &["  collection \"Collection\" under global, collection", "roles at run time: immutable; deleting one in use is refused", "every new user receives: scheduler@shared"],
        ),
        (
            "clarive",
            &[
                "  role change-manager: decided by release-manager@same; stages release manager (1), second release manager (1)",
                "  release-manager: on project; decides; mailbox {scope}-release@example.org; gives action.job.* !action.job.delete",
                "roles at run time: editable; deleting one in use revokes its grants",
                "incompatible: developer and change-manager",
            ],
        ),
        (
            "rancher",
            &[
                "  cluster-creator: on cluster; this scope only; locked; gives cluster.transfer",
                "  every role on a project: decided by manage-project-members@same, cluster-owner@parent; stages approval (1)",
                "the creator of a cluster receives: cluster-owner, cluster-creator",
            ],
        ),
    ] {
        let folder = tempfile::tempdir().unwrap();
        let workflow = crate::helpers::shipped_workflow(name);
        let output = roleledger(&["serve", "--check", "--workflow", workflow.to_str().unwrap()], folder.path());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.starts_with(&format!("workflow \"{name}\" (")), "{stdout}");
        for line in lines {
            assert!(stdout.lines().any(|l| l.starts_with(line)), "{name}: {line:?} not in\n{stdout}");
        }
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0, "{name}: nothing written");
    }
}

/// Mistakes an operator could make writing the seed workflows, each refused by `serve --check`
/// (exit 2) with the file, the line and the problem.
#[test]
fn serve_check_names_file_line_and_problem_of_each_mistake() {
    let cases = [
        // (shipped workflow, text replaced, replacement, text on the faulty line, problem)
        ("clustercockpit", "api_role = true", "api_rol = true", "api_rol", "unknown field `api_rol`"),
        ("clustercockpit", "api_role = true", "api_role = true\ntoken_grantable = true # oops", "# oops", "cannot be token-grantable: it is an API role"),
        ("clustercockpit", "default_roles = [\"user\"]", "default_roles = [\"users\"]", "\"users\"", "unknown role \"users\" in default_roles"),
        ("ucp", "request_ttl = \"P7D\"", "request_ttl = \"a week\"", "a week", "bad duration"),
        (
            "ucp",
            "[roles.none]",
            "[[rules]]\nfor_kind = \"collection\"\ndeciders = [\"owner@same\"]\n\n[roles.none]",
            "owner@same",
            "unknown role \"owner\" in a rule's deciders",
        ),
        ("clarive", "\"developer\", \"change-manager\"", "\"developer\", \"release-mgr\"", "release-mgr", "unknown role \"release-mgr\" in incompatible"),
        ("clarive", "for_kind = \"project\"", "for_kind = \"projects\"", "\"projects\"", "unknown scope kind \"projects\" in for_kind"),
        (
            "rancher",
            "includes = [\"project-read-only\"]",
            "includes = [\"project-read-only\", \"project-owner\"]",
            "\"project-read-only\", \"project-owner\"",
            "roles include each other in a cycle: project-member -> project-owner -> project-member",
        ),
        (
            "rancher",
            "includes = [\"cluster-member\", \"manage-nodes\", \"manage-storage\"]",
            "includes = [\"cluster-member\", \"manage-nodes\", \"manage-storage\"]\ntoken_grantable = true # from the identity provider",
            "# from the identity provider",
            "role \"cluster-owner\" cannot be token-grantable: it decides requests",
        ),
        ("rancher", "creator_roles = { cluster", "creator_roles = { clusters", "{ clusters", "unknown scope kind \"clusters\" in creator_roles"),
        ("egi", "parents = [\"project\"]", "parents = [\"projects\"]", "\"projects\"", "unknown scope kind \"projects\" in parents"),
    ];
    for (name, replace, with, marker, problem) in cases {
        let folder = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string(crate::helpers::shipped_workflow(name)).unwrap();
        assert!(shipped.contains(replace), "{name} lacks {replace:?}");
        let text = shipped.replacen(replace, with, 1);
        std::fs::write(folder.path().join("bad.toml"), &text).unwrap();
        let line = text[..text.find(marker).expect("the marker")].matches('\n').count() + 1;
        let output = roleledger(&["serve", "--check", "--workflow", "bad.toml"], folder.path());
        assert_one_line_error(&output, &format!("bad.toml:{line}: "));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(problem), "{name}: {problem:?} not in {stderr}");
        assert!(output.stdout.is_empty(), "no summary for a broken file");
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "only bad.toml");
    }
}

/// Commands that only read never create a database: a missing SQLite file is an error naming it,
/// and there is still no file afterwards (nor a journal beside it).
#[test]
fn read_only_commands_refuse_a_missing_sqlite_file_and_create_none() {
    let folder = tempfile::tempdir().unwrap();
    let workflow = crate::helpers::default_workflow();
    let workflow = workflow.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["verify"],
        &["check", "root", "scope.edit", "global"],
        &["export"],
        &["replay"],
        &["simulate", "--candidate", "egi"],
    ];
    for command in commands {
        for database in ["missing.db", "sqlite:missing.db"] {
            let output =
                roleledger(&[command, &["--database", database, "--workflow", workflow]].concat(), folder.path());
            assert_one_line_error(&output, "missing.db does not exist");
            assert!(output.stdout.is_empty(), "{command:?}");
            assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0, "{command:?} created a file");
        }
    }
}

#[test]
fn a_port_out_of_range_is_called_invalid_in_development_mode_too() {
    let folder = tempfile::tempdir().unwrap();
    let workflow = crate::helpers::default_workflow();
    for bind in ["127.0.0.1:99999", "0.0.0.0:99999", "localhost:http"] {
        let output = roleledger(&["serve", "--bind", bind, "--workflow", workflow.to_str().unwrap()], folder.path());
        assert_one_line_error(&output, &format!("invalid --bind {bind}: invalid port"));
    }
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0, "nothing written, no secret made");
}
