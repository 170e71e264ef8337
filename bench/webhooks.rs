//! Webhook benchmark: prints figures, judges nothing. Run with `cargo bench --bench webhooks` (see
//! bench/README.md). The real server in this process (SQLite or PostgreSQL) with one subscription
//! of every event to a receiver on loopback that answers 204 without verifying, while requests
//! that nobody may decide each mail the administrators' mailbox (`.eml` files, `--mail-rate 0`):
//! webhook deliveries a second beside mails a second of the same run, and beside plain POSTs to
//! the same receiver from one kept-alive client (what HTTP alone costs on this machine).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App as HttpApp, HttpResponse, HttpServer};
use clap::Parser;
use futures_util::{stream, StreamExt};
use roleledger::{
    app::{Origin, Principal, Via},
    configuration::Settings,
    domain::{Command, ScopeId, UserId},
    startup::Application,
    store::DatabaseUrl,
};
use sqlx::{Connection, Executor};

#[derive(Parser)]
struct Options {
    /// Requests written (each also registers its requester: two events and one mail a request).
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, env = "ROLELEDGER_TEST_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

/// As many at once as the webhook worker keeps in flight.
const CONCURRENCY: usize = 20;

/// A receiver that counts what it is sent and answers 204; its port.
fn receiver(received: Arc<AtomicU64>) -> u16 {
    let server = HttpServer::new(move || {
        let received = received.clone();
        HttpApp::new().default_service(web::to(move |_body: web::Bytes| {
            received.fetch_add(1, Ordering::Relaxed);
            async { HttpResponse::NoContent().finish() }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    port
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 minutes for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    println!(
        "# Webhook benchmark ({}, {} requests)\n\n{} cores, {}\n",
        options.backend,
        options.requests,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let folder = tempfile::tempdir().unwrap();
    let url = match options.backend.as_str() {
        "sqlite" => DatabaseUrl::Sqlite(folder.path().join("bench.db").display().to_string()),
        "postgres" => {
            let mut admin = sqlx::PgConnection::connect(&options.postgres).await.expect("PostgreSQL for the benchmark");
            let name = format!("rl_bench_webhooks_{}", std::process::id());
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
            let (server, _) = options.postgres.rsplit_once('/').unwrap();
            DatabaseUrl::Postgres(format!("{server}/{name}"))
        }
        other => panic!("unknown backend {other}: use sqlite or postgres"),
    };
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/egi.toml").into();
    let mut settings = Settings::for_tests(url.clone(), workflow, "bench-secret-0123456789abcdef");
    settings.mail_dir = folder.path().join("mail");
    settings.mail_retry.rate = None;
    settings.webhooks.allow_private = true;
    let server = Application::build(&settings).await.unwrap();
    let app = server.app();
    tokio::spawn(server.run_until_stopped());

    let received = Arc::new(AtomicU64::new(0));
    let port = receiver(received.clone());
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    roleledger::cli::bootstrap_admin(&app, "root").await.unwrap();
    for (id, kind, parents) in [("EGI", "project", vec![]), ("NGI", "ngi", vec!["EGI"]), ("SITE", "site", vec!["NGI"])]
    {
        let parents = parents.into_iter().map(ScopeId::known).collect();
        let scope = Command::CreateScope {
            id: ScopeId::known(id),
            kind: kind.into(),
            parents,
            title: id.into(),
            mailbox: None,
        };
        app.execute(Origin::CommandLine, scope).await.unwrap();
    }
    let id = uuid::Uuid::now_v7();
    app.store().keep_webhook_secret(&id.to_string(), &roleledger::webhooks::new_webhook_secret()).await.unwrap();
    let subscribe =
        Command::CreateWebhook { id, url: hook_url.clone(), events: vec![], scope: None, description: None };
    app.execute(Origin::CommandLine, subscribe).await.unwrap();

    // Plain POSTs first, with the server idle: what the receiver and HTTP take alone.
    let client = reqwest::Client::new();
    let posts = options.requests * 2;
    let started = Instant::now();
    stream::iter(0..posts)
        .for_each_concurrent(CONCURRENCY, |_| {
            let request = client.post(&hook_url).header("content-type", "application/json").body("{}");
            async move {
                request.send().await.unwrap();
            }
        })
        .await;
    let plain = posts as f64 / started.elapsed().as_secs_f64();
    received.store(0, Ordering::Relaxed);

    // Each request: its requester signs in (UserRegistered), then asks (RoleRequested); nobody
    // may decide a site's administrator but the site's managers, and there are none: the
    // administrators' mailbox is mailed.
    let started = Instant::now();
    stream::iter(0..options.requests)
        .for_each_concurrent(64, |n| {
            let app = app.clone();
            async move {
                let user = UserId::known(format!("user-{n}"));
                let register = Command::RegisterUser { user: user.clone(), email: None, name: None };
                app.execute(Origin::SignIn { user: user.clone() }, register).await.unwrap();
                let principal = Principal { user, via: Via::LoginToken };
                let origin = Origin::Person { principal, request_id: None, client_address: None };
                let ask = Command::RequestRole {
                    role: "site-administrator".into(),
                    scope: ScopeId::known("SITE"),
                    reason: "benchmark".into(),
                    duration: None,
                    asked: Default::default(),
                };
                app.execute(origin, ask).await.unwrap();
            }
        })
        .await;
    let written = started.elapsed();
    let events = options.requests as u64 * 2;
    let mails = options.requests as i64;
    let webhooks = async {
        wait_for("the webhooks", || received.load(Ordering::Relaxed) >= events).await;
        started.elapsed()
    };
    let mail = async {
        while app.store().outbox_counts().await.unwrap().get("sent").copied().unwrap_or(0) < mails {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    };
    let (webhooks_done, mail_done) = tokio::join!(webhooks, mail);
    let rate = |count: f64, took: Duration| count / took.as_secs_f64();
    println!("| | count | seconds | per second |");
    println!("|---|---:|---:|---:|");
    println!(
        "| events written (two a request, 64 callers) | {events} | {:.2} | {:.0} |",
        written.as_secs_f64(),
        rate(events as f64, written)
    );
    println!(
        "| webhook deliveries, signed, one subscription, from the first event | {events} | {:.2} | {:.0} |",
        webhooks_done.as_secs_f64(),
        rate(events as f64, webhooks_done)
    );
    println!(
        "| mails to `.eml` files, the same run | {mails} | {:.2} | {:.0} |",
        mail_done.as_secs_f64(),
        rate(mails as f64, mail_done)
    );
    println!("| baseline: plain POSTs to the same receiver, one kept-alive client, {CONCURRENCY} at once | {posts} | | {plain:.0} |");
    println!("\nwebhooks / plain POSTs: {:.2}", rate(events as f64, webhooks_done) / plain);
    if let DatabaseUrl::Postgres(target) = &url {
        let name = target.rsplit('/').next().unwrap();
        let mut admin = sqlx::PgConnection::connect(&options.postgres).await.unwrap();
        admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
    }
}
