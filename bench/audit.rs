//! Audit benchmark: prints figures, judges nothing. Run with `cargo bench --bench audit` (see
//! bench/README.md). On a log of domain events (requests, approvals, grants, revocations): the
//! rebuild of every projection beside `COPY events TO STDOUT` of the same log, the policy
//! simulation beside the rebuild, the latency of "grants as of a moment", and the NDJSON export rate.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "baseline.rs"]
mod baseline;
#[path = "populate.rs"]
mod populate;

use chrono::Utc;
use clap::Parser;
use populate::{populate, USERS};
use roleledger::{
    app::{simulate::simulate, App},
    auth::{JwtVerifier, LoginClaims},
    configuration::{JwtKeys, JwtSettings, Secret, Settings},
    domain::{Subject, UserId},
    projections::DomainModel,
    startup::Application,
    store::{DatabaseUrl, EventSelection, EventStore, ExportFormat, Migrations, Moment},
    workflow::Workflow,
};
use sqlx::{Connection, Executor};

#[derive(Parser)]
struct Options {
    /// Events in the log (about; whole requests are written).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// sqlite or postgres.
    #[arg(long, default_value = "postgres")]
    backend: String,
    /// "As of" queries per kind.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    #[arg(long, env = "ROLELEDGER_TEST_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

const WORKFLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/egi.toml");
fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize].as_secs_f64() * 1_000.0
}

/// Times `queries` moments of each kind as the API answers them: a page of the whole answer (the
/// API's default of 100 and its largest, 1,000), one user's grants (`?user=`), and for reference
/// the whole answer at once (what `roleledger replay` prints).
async fn bench_as_of(app: &App, queries: usize) {
    let store = app.store();
    let head = store.head().await.unwrap().position;
    let log_times = store.read_page(0, 1).await.unwrap()[0].recorded_at
        ..=store.read_page(head - 1, 1).await.unwrap()[0].recorded_at;
    println!("| `grants as of` | queries | grants per answer (mean) | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let kinds: [(&str, bool, bool, usize); 6] = [
        // (name, by time, one user, grants per answer)
        ("position, all grants, a page of 100", false, false, 100),
        ("position, all grants, a page of 1,000", false, false, 1_000),
        ("time, all grants, a page of 1,000", true, false, 1_000),
        ("position, one user", false, true, 1_000),
        ("time, one user", true, true, 1_000),
        ("position, every grant at once (replay)", false, false, usize::MAX),
    ];
    for (kind, by_time, one_user, page) in kinds {
        let mut timings = Vec::with_capacity(queries);
        let mut answered = 0usize;
        for q in 0..queries as i64 {
            let moment = if by_time {
                let span = (*log_times.end() - *log_times.start()).num_microseconds().unwrap().max(1);
                Moment::Time(*log_times.start() + chrono::Duration::microseconds(span * q / queries as i64))
            } else {
                Moment::Position(1 + head * q / queries as i64)
            };
            let user = Subject::User(UserId::known(format!("user-{}", q as u64 * 7_919 % USERS)));
            let started = Instant::now();
            // A page takes one grant more than it shows, as the API does, to tell whether another follows.
            let past = app
                .projections()
                .grants_as_of(store, moment, one_user.then_some(&user), None, page.saturating_add(1), |_, _| true)
                .await
                .unwrap();
            timings.push(started.elapsed());
            answered += past.grants.len().min(page);
        }
        timings.sort();
        println!(
            "| {kind} | {queries} | {:.1} | {:.2} | {:.2} | {:.2} |",
            answered as f64 / queries as f64,
            percentile(&timings, 0.5),
            percentile(&timings, 0.99),
            percentile(&timings, 1.0)
        );
    }
}

/// `roleledger simulate` over the log, beside the rebuild: the unchanged workflow as the
/// candidate (one fold, nothing can differ), other rules on the same roles (one fold, every
/// decision judged, the decision rights compared at the end), and a role changed (a fold under
/// each workflow; the grants compared at the end).
async fn bench_simulation(store: &EventStore, workflow: &Workflow, rebuild_rate: f64) {
    let egi = include_str!("../workflows/egi.toml");
    let ngi_deciders = "  \"ngi-security-officer@parent\",\n  \"ngi-operations-deputy-manager@parent\",\n  \"ngi-operations-manager@parent\",\n";
    let role = "[roles.site-security-officer]\n";
    let candidates = [
        ("the unchanged workflow", egi.to_string()),
        ("NGI managers no longer decide sites' roles", egi.replacen(ngi_deciders, "", 1)),
        (
            "site security officers for 30 days at most",
            egi.replacen(role, &format!("{role}max_duration = \"P30D\"\n"), 1),
        ),
    ];
    println!("\n| policy simulation, candidate | events | differences | events/s | rebuild events/s | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, text) in candidates {
        let candidate = Workflow::from_str(&text, "candidate.toml").unwrap();
        let started = Instant::now();
        let simulated = simulate(store, workflow, &candidate, None).await.unwrap();
        let rate = simulated.position as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {} | {rate:.0} | {rebuild_rate:.0} | {:.2} |",
            simulated.position,
            simulated.differences.len(),
            rate / rebuild_rate
        );
    }
}

async fn bench_export(store: &EventStore) {
    let started = Instant::now();
    let mut selected = store.select(EventSelection::default());
    let (mut events, mut bytes, mut line) = (0u64, 0usize, Vec::new());
    while let Some(event) = selected.next().await.unwrap() {
        line.clear();
        ExportFormat::Ndjson.write(&event, &mut line);
        bytes += line.len();
        events += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "\nNDJSON export of {events} events (encoded, written nowhere): {:.0} events/s, {:.1} MB/s",
        events as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let workflow = Arc::new(Workflow::from_file(WORKFLOW).unwrap());
    println!(
        "# Audit benchmark ({})\n\n{} cores, {}",
        options.backend,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _folder;
    let url = match options.backend.as_str() {
        "sqlite" => {
            let folder = tempfile::tempdir().unwrap();
            let url = DatabaseUrl::Sqlite(folder.path().join("bench.db").display().to_string());
            _folder = Some(folder);
            url
        }
        "postgres" => {
            let mut admin = sqlx::PgConnection::connect(&options.postgres).await.expect("PostgreSQL for the benchmark");
            let name = format!("rl_bench_audit_{}", std::process::id());
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
            let (server, _) = options.postgres.rsplit_once('/').unwrap();
            DatabaseUrl::Postgres(format!("{server}/{name}"))
        }
        other => panic!("unknown backend {other}: use sqlite or postgres"),
    };
    let store = EventStore::open(&url, Migrations::Apply).await.unwrap();
    populate(&store, options.events).await;

    let (baseline_rate, baseline_name) = baseline::raw_rows_per_second(&url).await;
    let started = Instant::now();
    let mut cursor = store.read_all(0);
    let mut read = 0u64;
    while let Some(event) = cursor.next().await.unwrap() {
        read += 1;
        std::hint::black_box(event);
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let model = DomainModel::rebuild(workflow.clone(), &store, |_| {}).await.unwrap();
    let rebuild_rate = model.position() as f64 / started.elapsed().as_secs_f64();
    println!("| | events | events/s | baseline ({baseline_name}) rows/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!("| the log read through the store's cursor (decoded, folded nowhere) | {read} | {read_rate:.0} | {baseline_rate:.0} | {:.2} |", read_rate / baseline_rate);
    println!(
        "| rebuild of every projection | {} | {rebuild_rate:.0} | {baseline_rate:.0} | {:.2} |",
        model.position(),
        rebuild_rate / baseline_rate
    );
    drop(model);
    bench_simulation(&store, &workflow, rebuild_rate).await;
    bench_export(&store).await;
    drop(store);

    println!();
    let app = App::open(&url, Migrations::RequireCurrent, workflow).await.unwrap();
    bench_as_of(&app, options.queries).await;
    drop(app);
    bench_timeline(&url, Path::new(WORKFLOW), options.queries).await;
    if let DatabaseUrl::Postgres(target) = &url {
        let name = target.rsplit('/').next().unwrap();
        let mut admin = sqlx::PgConnection::connect(&options.postgres).await.unwrap();
        admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
    }
}

/// `/ui/timeline` of one NGI's subtree (about 15,000 grants over its 40 sites, of which the page
/// draws the first 10,000) over the last year, through the real server and its session cookie:
/// p50 and p99 of the answer's time, and the page's size.
async fn bench_timeline(url: &DatabaseUrl, workflow: &Path, queries: usize) {
    let secret = "bench-secret-0123456789abcdef";
    let settings = Settings::for_tests(url.clone(), workflow.to_path_buf(), secret);
    let server = Application::build(&settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", server.port());
    let app = server.app();
    roleledger::cli::bootstrap_admin(&app, "root").await.unwrap();
    tokio::spawn(server.run_until_stopped());
    let keys = JwtSettings { keys: JwtKeys::Secret(Secret::new(secret)), issuer: None, audience: None };
    let claims =
        LoginClaims { sub: "root".into(), exp: Utc::now().timestamp() + 3600, email: None, name: None, roles: None };
    let token = JwtVerifier::from_settings(&keys).unwrap().sign(&claims).unwrap();
    let client = reqwest::Client::new();
    let mut timings = Vec::with_capacity(queries);
    let mut sizes = Vec::with_capacity(queries);
    let mut rows = 0;
    for _ in 0..queries {
        let started = Instant::now();
        let answer = client
            .get(format!("{address}/ui/timeline?scope=NGI_0"))
            .header("cookie", format!("rl_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let page = answer.text().await.unwrap();
        timings.push(started.elapsed());
        rows = page.matches("<g class=\"grant\"").count();
        sizes.push(page.len());
    }
    timings.sort();
    let svg = sizes.iter().sum::<usize>() / sizes.len().max(1);
    println!("\n| `/ui/timeline?scope=NGI_0` (a year) | answers | rows drawn | p50 ms | p99 ms | page KiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| through HTTP, signed in by cookie | {queries} | {rows} | {:.1} | {:.1} | {:.0} |",
        percentile(&timings, 0.5),
        percentile(&timings, 0.99),
        svg as f64 / 1024.0
    );
}
