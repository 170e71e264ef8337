//! The pieces every scenario uses: its scale, a database of its own, the server as a child process
//! (started, killed, restarted), the command line, and login tokens.

use std::{
    fs::File,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use roleledger::{
    auth::{JwtVerifier, LoginClaims},
    configuration::{JwtKeys, JwtSettings, Secret},
};

use crate::support::{postgres_admin_url, smtp::SmtpServer, Backend};

/// The secret the servers check login tokens with, and the tests sign them with.
pub const JWT_SECRET: &str = "faults-secret-0123456789abcdef";
/// Every address of the test world ends so; the test SMTP server takes them all.
pub const MAIL_DOMAIN: &str = "mail.test";

/// One scenario at a time: each measures time, latency or memory on a 2-core machine. (An async
/// lock: it is held across the scenario's awaits; a failed scenario leaves it free for the next.)
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Short figures for CI, the figures with `ROLELEDGER_FAULTS_LONG=1`, and any single one
/// overridden by its own variable (`ROLELEDGER_FAULTS_KILLS=5`).
pub fn scale(name: &str, short: u64, long: u64) -> u64 {
    let variable = format!("ROLELEDGER_FAULTS_{name}");
    if let Ok(value) = std::env::var(&variable) {
        return value.parse().unwrap_or_else(|_| panic!("{variable}={value:?} is not a whole number"));
    }
    let long_run = std::env::var("ROLELEDGER_FAULTS_LONG").is_ok_and(|value| value == "1");
    if long_run {
        long
    } else {
        short
    }
}

/// The binary under test: `ROLELEDGER_BIN` (the release build in `scripts/faults`) or the one
/// cargo built with this test.
pub fn binary() -> PathBuf {
    std::env::var_os("ROLELEDGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_roleledger")))
}

fn workflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/egi.toml")
}

/// A free TCP port on the loopback interface (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A database of the scenario's own: a SQLite file in a temporary folder, or a fresh PostgreSQL
/// database `rl_fault_<uuid>` (dropped at the end) on the shared server or a private one.
pub struct Database {
    pub backend: Backend,
    pub url: String,
    /// The folder for the SQLite file, the server logs and anything else of the scenario.
    pub folder: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Database {
    pub fn new(backend: Backend) -> Database {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite:{}", folder.path().join("roleledger.db").display());
                Database { backend, url, folder, postgres: None }
            }
            Backend::Postgres => Database::on_postgres(&postgres_admin_url()),
        }
    }

    /// A fresh database on the PostgreSQL server that `admin_url` reaches.
    pub fn on_postgres(admin_url: &str) -> Database {
        let name = format!("rl_fault_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        let (server, _) = admin_url.rsplit_once('/').expect("the admin URL names a database");
        Database {
            backend: Backend::Postgres,
            url: format!("{server}/{name}"),
            folder: tempfile::tempdir().expect("a temporary folder"),
            postgres: Some((admin_url.to_string(), name)),
        }
    }

    /// The same database reached through `url` (several hosts, say), and dropped at the end
    /// through `admin_url` (a host that is still there).
    pub fn reached_through(&mut self, url: String, admin_url: &str) {
        self.url = url;
        if let Some((admin, _)) = self.postgres.as_mut() {
            *admin = admin_url.to_string();
        }
    }

    /// Runs the real command line on this database; panics if it cannot run at all.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(binary());
        command.args(args).current_dir(self.folder.path());
        command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.env("ROLELEDGER_DATABASE", &self.url).env("ROLELEDGER_WORKFLOW", workflow());
        command.env("ROLELEDGER_JWT_SECRET", JWT_SECRET).env("RUST_LOG", "warn");
        tokio::task::spawn_blocking(move || command.output().expect("the roleledger binary runs")).await.unwrap()
    }

    /// Makes `user` an administrator with `roleledger bootstrap-admin`.
    pub async fn bootstrap_admin(&self, user: &str) {
        let output = self.cli(&["bootstrap-admin", user]).await;
        assert!(output.status.success(), "bootstrap-admin failed: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// One SQL statement through `psql` (the test's own admin work, outside the server under test).
fn psql(url: &str, sql: &str) {
    let output = Command::new("psql").args([url, "-XAtqc", sql]).output().expect("psql runs");
    assert!(output.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// `roleledger serve` as a child process on a fixed port, mailing to the test SMTP server.
pub struct ServerProcess {
    pub name: String,
    pub url: String,
    host: Host,
    port: u16,
    database: String,
    smtp: String,
    log: PathBuf,
    /// Settings beyond the common ones, as environment variables.
    extra: Vec<(String, String)>,
    child: Option<Child>,
    /// How many times the process was started.
    pub starts: u32,
}

/// Memory and open files of a process, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub rss_kib: u64,
    pub open_files: usize,
}

impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RSS {:.1} MiB, {} open files", self.rss_kib as f64 / 1024.0, self.open_files)
    }
}

/// Where a server runs: on this machine's loopback, or on a test host of `scripts/cluster` (its
/// network namespace and address).
#[derive(Clone)]
pub struct Host {
    pub namespace: Option<String>,
    pub ip: String,
}

impl Host {
    fn loopback() -> Host {
        Host { namespace: None, ip: "127.0.0.1".into() }
    }
}

impl ServerProcess {
    /// Starts a server named `name` (its log is `<name>.log` in the database's folder) and waits
    /// until it answers.
    pub async fn start(name: &str, db: &Database, smtp: &SmtpServer) -> ServerProcess {
        Self::start_with(name, db, smtp, Vec::new()).await
    }

    /// Like `start`, with more settings (environment variables such as `ROLELEDGER_READ_DATABASE`).
    pub async fn start_with(
        name: &str,
        db: &Database,
        smtp: &SmtpServer,
        extra: Vec<(String, String)>,
    ) -> ServerProcess {
        Self::start_on(name, Host::loopback(), free_port(), db, smtp, extra).await
    }

    /// Like `start_with`, on `host` and `port`.
    pub async fn start_on(
        name: &str,
        host: Host,
        port: u16,
        db: &Database,
        smtp: &SmtpServer,
        extra: Vec<(String, String)>,
    ) -> ServerProcess {
        let mut server = ServerProcess {
            name: name.to_string(),
            url: format!("http://{}:{port}", host.ip),
            host,
            port,
            database: db.url.clone(),
            smtp: smtp.url(),
            log: db.folder.path().join(format!("{name}.log")),
            extra,
            child: None,
            starts: 0,
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let log = File::options().create(true).append(true).open(&self.log).expect("the server log opens");
        // `ip netns exec` runs the server itself in the namespace (the pid is the server's).
        let mut command = match &self.host.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        // In the scenario's folder: a key file the server makes (beside no SQLite file, it goes to
        // the working folder) stays out of the repository and is shared by the scenario's servers.
        let child = command
            .arg("serve")
            .current_dir(self.log.parent().expect("the log is in the scenario's folder"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ROLELEDGER_DATABASE", &self.database)
            .env("ROLELEDGER_BIND", format!("{}:{}", self.host.ip, self.port))
            .env("ROLELEDGER_WORKFLOW", workflow())
            .env("ROLELEDGER_JWT_SECRET", JWT_SECRET)
            .env("ROLELEDGER_SMTP", &self.smtp)
            // No rate limit: the scenarios wait for every mail of their load to arrive.
            .env("ROLELEDGER_MAIL_RATE", "0")
            .env("RUST_LOG", "warn")
            .envs(self.extra.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        self.child = Some(child);
        self.starts += 1;
        self.wait_until_healthy().await;
    }

    async fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Ok(answer) = client.get(format!("{}/healthz", self.url)).send().await {
                if answer.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server {} exited with {status} while starting; its log:\n{}", self.name, self.log_tail());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "server {} did not answer within 120 s:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown of any kind, as a crash or the OOM killer would do it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL is delivered");
            child.wait().expect("the killed server is reaped");
        }
    }

    /// Starts it again on the same port and database.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        self.launch().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    pub fn resources(&self) -> Resources {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd").count();
        Resources { rss_kib, open_files }
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A login token for `user` (mail address `user@mail.test`), valid for three hours.
pub fn token(user: &str) -> String {
    let settings = JwtSettings { keys: JwtKeys::Secret(Secret::new(JWT_SECRET)), issuer: None, audience: None };
    let claims = LoginClaims {
        sub: user.into(),
        exp: chrono::Utc::now().timestamp() + 3 * 3600,
        email: Some(address(user)),
        name: None,
        roles: None,
    };
    JwtVerifier::from_settings(&settings).expect("a signer").sign(&claims).expect("signed")
}

/// The mail address of a user or a scope's mailbox.
pub fn address(name: &str) -> String {
    format!("{}@{MAIL_DOMAIN}", name.to_lowercase())
}

/// Whether this process runs as root (PostgreSQL then has to run as another user).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Waits until `condition` holds, polling; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
