//! The real `roleledger serve` process from outside: how it ends (SIGTERM with a live tail open, a
//! background task that stopped), what its log looks like when stderr is not a terminal, and
//! that a killed server loses no webhook.

use std::{
    io::Read,
    process::{Child, Command, ExitStatus, Stdio},
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::json;

const SECRET: &str = "process-test-secret-0123456789";

/// A server process on a free port over a SQLite file in its own folder, where `root` is an
/// administrator; its stderr is a pipe, read to the end by a thread.
struct Served {
    child: Child,
    address: String,
    stderr: Option<JoinHandle<String>>,
    /// Shared with a process started again over the same database.
    folder: Arc<tempfile::TempDir>,
}

impl Served {
    async fn start() -> Served {
        Served::start_with(&[]).await
    }

    /// Like `start`, with more flags for `serve`.
    async fn start_with(flags: &[&str]) -> Served {
        let folder = tempfile::tempdir().unwrap();
        let bootstrap = run_in(folder.path(), &["bootstrap-admin", "root"]).output().unwrap();
        assert!(bootstrap.status.success(), "{}", String::from_utf8_lossy(&bootstrap.stderr));
        Served::serve_in(Arc::new(folder), flags).await
    }

    /// A server process over the SQLite file in `folder` (another process's, ended).
    async fn serve_in(folder: Arc<tempfile::TempDir>, flags: &[&str]) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bind = format!("127.0.0.1:{port}");
        let mut child = run_in(folder.path(), &[&["serve", "--bind", &bind], flags].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        });
        let served = Served { child, address: format!("http://127.0.0.1:{port}"), stderr: Some(stderr), folder };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client.get(format!("{}/healthz", served.address)).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "the server starts");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    }

    fn token(&self, user: &str) -> String {
        let output = run_in(self.folder.path(), &["token", "--user", user]).output().unwrap();
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end (failing after `limit`): its status, and how long it took.
    async fn exit_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if started.elapsed() > limit {
                self.child.kill().unwrap();
                panic!("the server was still running after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process wrote to stderr (once it has ended).
    fn stderr(&mut self) -> String {
        self.stderr.take().unwrap().join().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_in(folder: &std::path::Path, args: &[&str]) -> Command {
    let workflow = crate::helpers::default_workflow();
    let mut command = Command::new(env!("CARGO_BIN_EXE_roleledger"));
    command.args(args).args(["--workflow", workflow.to_str().unwrap()]).current_dir(folder);
    command.env_remove("ROLELEDGER_DATABASE").env_remove("ROLELEDGER_CONFIG").env_remove("RUST_LOG");
    command.env("ROLELEDGER_JWT_SECRET", SECRET);
    command
}

#[tokio::test]
async fn sigterm_ends_the_server_within_10_s_closing_an_open_live_tail() {
    let mut served = Served::start().await;
    let url = format!("{}/api/v1/events/live?after=0", served.address);
    let mut tail = reqwest::Client::new().get(url).bearer_auth(served.token("root")).send().await.unwrap();
    assert_eq!(tail.status(), 200);
    // The tail is open and streaming: the bootstrap's events have come.
    let mut received = String::new();
    while !received.contains("id: 2\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), tail.chunk()).await.unwrap().unwrap();
        received.push_str(std::str::from_utf8(&chunk.expect("the tail is open")).unwrap());
    }

    served.terminate();
    let (status, took) = served.exit_within(Duration::from_secs(10)).await;
    println!("SIGTERM with an open live tail: the server ended in {took:?}");
    assert!(status.success(), "{status}: {}", served.stderr());
    // The tail ended with a last comment line rather than being cut.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), tail.chunk()).await.unwrap().unwrap() {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(received.ends_with(": the server is stopping; resume with Last-Event-ID\n\n"), "{received}");
}

#[tokio::test]
async fn a_stopped_writer_makes_the_server_exit_non_zero() {
    let mut served = Served::start().await;
    let client = reqwest::Client::new();
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": roleledger::testing::STOP_WRITER});
    let url = format!("{}/api/v1/requests", served.address);
    let answer = client.post(url).bearer_auth(served.token("alice")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 503);
    let (status, _) = served.exit_within(Duration::from_secs(20)).await;
    let stderr = served.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains("the writer task stopped"), "{stderr}");
}

/// Logs written to a pipe (a file, the journal) carry no terminal colour codes.
#[tokio::test]
async fn logs_into_a_pipe_have_no_colour_codes() {
    let mut served = Served::start().await;
    served.terminate();
    served.exit_within(Duration::from_secs(10)).await;
    let stderr = served.stderr();
    assert!(stderr.contains("roleledger is listening"), "{stderr}");
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}

/// Events written, the server killed (SIGKILL) while their first delivery hangs in the receiver,
/// started again: the receiver gets every event, in log order (at least once: the one in flight
/// may come twice, with the same webhook-id).
#[tokio::test]
async fn a_killed_server_loses_no_webhook() {
    let receiver = crate::webhooks::Receiver::start();
    receiver.mode("hang").await;
    let mut served = Served::start_with(&["--webhook-allow-private"]).await;
    let client = reqwest::Client::new();
    let root = served.token("root");
    let body = json!({"url": receiver.url("killed"), "events": ["UserRegistered"]});
    let created = client.post(format!("{}/api/v1/webhooks", served.address)).bearer_auth(&root).json(&body);
    let created: serde_json::Value = created.send().await.unwrap().json().await.unwrap();
    receiver.secret("killed", created["secret"].as_str().expect("a secret")).await;
    let users = ["alice", "bob", "carol", "dave", "erin"];
    for user in users {
        let me = client.get(format!("{}/api/v1/me", served.address)).bearer_auth(served.token(user));
        assert_eq!(me.send().await.unwrap().status(), 200);
    }
    crate::support::eventually("a delivery in flight", 20, || async { receiver.attempts().await >= 1 }).await;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    receiver.mode("up").await;
    let again = Served::serve_in(served.folder.clone(), &["--webhook-allow-private"]).await;
    // The claim of the killed process ends with its lease (20 s); then the line moves on.
    let arrived = || async {
        let mut seen: Vec<String> = receiver.received("killed").await.iter().map(|(id, _)| id.clone()).collect();
        seen.dedup();
        seen.len() >= users.len()
    };
    crate::support::eventually("every event after the restart", 60, arrived).await;
    let received = receiver.received("killed").await;
    let mut users_seen: Vec<String> =
        received.iter().map(|(_, event)| event["data"]["user"].as_str().unwrap().to_string()).collect();
    users_seen.dedup();
    assert_eq!(users_seen, users, "each event, in log order");
    drop(again);
}
