//! Auditors, over real HTTP and the real binary: the log (pages, NDJSON, live tail), who held what
//! at any moment compared with a replay, export and import, verification of a log changed behind
//! the server's back, request histories, and the auditor who reads everything and changes nothing.

use std::{collections::BTreeSet, time::Duration};

use chrono::Utc;
use reqwest::Method;
use roleledger::{
    app::AppError,
    domain::{Actor, Command, Context, Event, GrantStatus, IdSource, ScopeId, State, Subject, UserId},
    store::{EventStore, Metadata, Migrations, RecordedEvent},
    workflow::Workflow,
};
use serde_json::{json, Value};

use crate::{
    helpers::{default_workflow, spawn_app, spawn_app_over, token_for, TestApp},
    support::{tamperings, unguard_log, Backend, TestDatabase},
};

/// xorshift64*: a deterministic random source, so that a failing history can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];
const ROLES: [&str; 3] = ["site-administrator", "site-security-officer", "site-operations-deputy-manager"];
const SITES: [&str; 2] = ["SITE_A", "SITE_B"];

/// Decides and records a command as the server would, from a documentation address.
async fn run(app: &TestApp, actor: Actor, command: Command) -> Result<Vec<RecordedEvent>, AppError> {
    let metadata = Metadata {
        actor: Some(actor.user().unwrap_or("command-line").to_string()),
        client_address: Some("192.0.2.1".into()),
        ..Metadata::default()
    };
    app.application.execute_in(Context::new(actor, Utc::now(), IdSource::Random), command, metadata).await
}

/// A random history of `steps` commands after the EGI tree is set up: requests, approvals,
/// rejections, cancellations, assignments, revocations and expiries, with durations drawn from
/// `durations` (`None`: no end).
async fn random_history(app: &TestApp, seed: u64, steps: usize, durations: &[Option<&str>]) {
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    for user in USERS {
        app.sign_in(user).await;
    }
    let root = || Actor::User(UserId::known("root"));
    let mut rng = Rng(seed);
    for _ in 0..steps {
        let (pending, active, due) = app.application.read_model(|model| {
            let (state, now) = (model.state(), Utc::now());
            let active = |g: &&roleledger::domain::Grant| g.status == GrantStatus::Active && g.role != "admin";
            let pending: Vec<_> = state.requests().filter(|r| r.is_pending()).map(|r| r.id).collect();
            let ids: Vec<_> = state.grants().filter(active).map(|g| g.id).collect();
            let due: Vec<_> = state
                .grants()
                .filter(active)
                .filter(|g| g.ends_at.is_some_and(|end| end <= now))
                .map(|g| g.id)
                .collect();
            (pending, ids, due)
        });
        let duration = rng.pick(durations).flatten().map(|d| d.parse().unwrap());
        let (user, role, scope) =
            (USERS[rng.below(USERS.len())], ROLES[rng.below(ROLES.len())], SITES[rng.below(SITES.len())]);
        let (actor, command) = match rng.below(9) {
            0..=2 => {
                let command = Command::RequestRole {
                    role: role.into(),
                    scope: ScopeId::known(scope),
                    reason: "work".into(),
                    duration,
                    asked: Default::default(),
                };
                (Actor::User(UserId::known(user)), command)
            }
            3 | 4 => match rng.pick(&pending) {
                Some(request) => (root(), Command::Approve { request, comment: "fine".into(), duration: None }),
                None => continue,
            },
            5 => match rng.pick(&pending) {
                Some(request) => (root(), Command::Reject { request, reason: "no".into() }),
                None => continue,
            },
            6 => {
                let subject = Subject::User(UserId::known(user));
                (
                    root(),
                    Command::AssignRole {
                        subject,
                        role: role.into(),
                        scope: ScopeId::known(scope),
                        reason: "r".into(),
                        duration,
                        starts_at: None,
                    },
                )
            }
            7 => match rng.pick(&active) {
                Some(grant) => (root(), Command::Revoke { grant, reason: "done".into() }),
                None => continue,
            },
            _ => match rng.pick(&due) {
                Some(grant) => (Actor::CommandLine, Command::ExpireGrant { grant }),
                None => continue,
            },
        };
        match run(app, actor, command).await {
            Ok(_) | Err(AppError::Rejected(_)) => {}
            Err(error) => panic!("the store failed: {error}"),
        }
        if rng.below(15) == 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

fn workflow() -> Workflow {
    Workflow::from_file(default_workflow()).expect("egi.toml loads")
}

async fn whole_log(store: &EventStore) -> Vec<RecordedEvent> {
    let mut cursor = store.read_all(0);
    let mut events = Vec::new();
    while let Some(event) = cursor.next().await.unwrap() {
        events.push(event);
    }
    events
}

fn subject_name(subject: &Subject) -> String {
    match subject {
        Subject::User(user) => format!("user:{user}"),
        Subject::Team(team) => format!("team:{team}"),
    }
}

/// A listed grant as (id, subject, role, scope).
fn listed(grant: &Value) -> (String, String, String, String) {
    let subject = match grant["user"].as_str() {
        Some(user) => format!("user:{user}"),
        None => format!("team:{}", grant["team"].as_str().unwrap()),
    };
    let text = |field: &str| grant[field].as_str().unwrap().to_string();
    (text("id"), subject, text("role"), text("scope"))
}

/// Every grant of a list, page after page (as root), in the order listed.
async fn walk_pages(app: &TestApp, first: &str) -> Vec<(String, String, String, String)> {
    let (mut seen, mut path) = (Vec::new(), first.to_string());
    loop {
        let answer = app.get_as("root", &path).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        let items = answer.body["items"].as_array().unwrap();
        assert!(items.len() <= 3, "{path}: a page holds at most its limit");
        seen.extend(items.iter().map(listed));
        match answer.body["next"].as_str() {
            Some(next) => {
                assert!(!items.is_empty(), "{path}: an empty page names no next one");
                path = format!("{first}&cursor={next}");
            }
            None => break,
        }
    }
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "pages follow each other in id order");
    seen
}

async fn grants_as_of_any_moment_equal_a_replay_up_to_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let seed = Utc::now().timestamp_micros() as u64 | 1;
    random_history(&app, seed, 250, &[None, None, Some("1s"), Some("30d")]).await;
    let workflow = workflow();
    let log = whole_log(&app.store).await;
    assert!(log.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at), "one process records times in order");
    let events: Vec<Option<Event>> = log.iter().map(|e| Event::from_parts(&e.event_type, &e.data).ok()).collect();
    let (first, last) = (log[0].recorded_at, log[log.len() - 1].recorded_at);
    let span = (last - first).num_microseconds().unwrap() + 1_000_000;
    let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut replays = 0;
    for round in 0..200 {
        // A position, a time between events, or the very time of an event (bounds are inclusive).
        let (as_of, prefix, judged_at) = match round % 3 {
            0 => {
                let position = rng.below(log.len() + 1);
                let judged_at = position.checked_sub(1).map(|index| log[index].recorded_at);
                (position.to_string(), position, judged_at)
            }
            kind => {
                let time = match kind {
                    1 => {
                        first - chrono::Duration::seconds(1)
                            + chrono::Duration::microseconds((rng.below(1 << 30) as i64 * 7919) % span)
                    }
                    _ => log[rng.below(log.len())].recorded_at,
                };
                let prefix = log.partition_point(|e| e.recorded_at <= time);
                (roleledger::store::event::format_time(&time), prefix, Some(time))
            }
        };
        let replayed = State::replay(&workflow, events[..prefix].iter().flatten());
        let expected: BTreeSet<_> = judged_at
            .map(|at| {
                replayed
                    .grants()
                    .filter(|g| g.gives_at(at))
                    .map(|g| (g.id.to_string(), subject_name(&g.subject), g.role.clone(), g.scope.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        replays += usize::from(!expected.is_empty());
        let answer = app.get_as("root", &format!("/api/v1/grants?as_of={as_of}&limit=1000")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert!(answer.body["next"].is_null());
        let items = answer.body["items"].as_array().unwrap();
        assert!(items.iter().all(|g| g["status"] == "active"), "shown as they stood: {items:?}");
        let actual: BTreeSet<_> = items.iter().map(listed).collect();
        assert_eq!(actual, expected, "seed {seed}, as_of={as_of} (the first {prefix} events)");
        if round % 10 == 0 {
            // Small pages, followed to the end, give the same answer: no gap, no repeat.
            let paged = walk_pages(&app, &format!("/api/v1/grants?as_of={as_of}&limit=3")).await;
            assert_eq!(paged.len(), expected.len(), "seed {seed}, as_of={as_of}: no grant twice");
            assert_eq!(
                paged.into_iter().collect::<BTreeSet<_>>(),
                expected,
                "seed {seed}, as_of={as_of}, in pages of 3"
            );
        }
    }
    assert!(replays > 100, "most moments had grants to compare ({replays})");

    // The command line answers the same, from the same history.
    let middle = log.len() / 2;
    let replay = app.cli(&["replay", "--until", &middle.to_string()]);
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let printed: BTreeSet<String> = String::from_utf8(replay.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.rsplit('\t').next().unwrap().to_string())
        .collect();
    let answer = app.get_as("root", &format!("/api/v1/grants?as_of={middle}&limit=1000")).await;
    let listed: BTreeSet<String> = answer.body["items"].as_array().unwrap().iter().map(|g| listed(g).0).collect();
    assert_eq!(printed, listed);
    let rebuild = app.cli(&["rebuild"]);
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    let said = String::from_utf8(rebuild.stdout).unwrap();
    assert!(said.starts_with(&format!("rebuilt from {} events", app.head().await)), "{said}");
    assert!(String::from_utf8_lossy(&rebuild.stderr).contains("rebuild: 100%"), "plain progress lines off a terminal");
}

async fn export_then_import_gives_the_same_head_projections_and_events(backend: Backend) {
    let app = spawn_app(backend).await;
    // No grant or request falls due during the test, so no server expires anything meanwhile.
    random_history(&app, 7, 80, &[None, Some("30d")]).await;
    let head = app.head().await;
    let export = app.cli(&["export"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let ndjson = String::from_utf8(export.stdout).unwrap();
    assert_eq!(ndjson.lines().count() as i64, head);
    let csv = app.cli(&["export", "--format", "csv", "--from", "2", "--until", "5"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "position,stream,version,type,recorded_at,actor,hash,data");
    assert_eq!(rows[1..].iter().map(|row| row.split(',').next().unwrap()).collect::<Vec<_>>(), ["2", "3", "4", "5"]);

    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("export.ndjson");
    std::fs::write(&file, &ndjson).unwrap();
    let file = file.to_str().unwrap();
    let original = whole_log(&app.store).await;
    let as_of = format!("/api/v1/grants?as_of={head}&limit=1000");
    let (grants, requests) =
        (app.get_as("root", &as_of).await.body, app.get_as("root", "/api/v1/requests?limit=1000").await.body);
    let verified = app.get_as("root", "/api/v1/audit/verify").await.body;
    assert_eq!(verified["ok"], true, "{verified}");
    for target in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDatabase::new(target).await;
        let import = import_into(&db, file);
        assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
        assert!(String::from_utf8_lossy(&import.stdout).contains(verified["head"]["hash"].as_str().unwrap()));
        let again = import_into(&db, file);
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("import only into an empty one"));
        let copy = spawn_app_over(db).await;
        assert_eq!(
            whole_log(&copy.store).await,
            original,
            "{target:?}: positions, versions, ids, times, metadata, hashes"
        );
        assert_eq!(copy.get_as("root", "/api/v1/audit/verify").await.body, verified, "{target:?}");
        assert_eq!(copy.get_as("root", &as_of).await.body, grants, "{target:?}");
        assert_eq!(copy.get_as("root", "/api/v1/requests?limit=1000").await.body, requests, "{target:?}");
    }

    // A changed line is refused by its number, and nothing is imported.
    let mut lines: Vec<String> = ndjson.lines().map(String::from).collect();
    let mut event: Value = serde_json::from_str(&lines[4]).unwrap();
    event["metadata"]["actor"] = json!("mallory");
    lines[4] = event.to_string();
    let tampered = folder.path().join("tampered.ndjson");
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    let db = TestDatabase::new(backend).await;
    let refused = import_into(&db, tampered.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tampered.ndjson:5: position 5: hash mismatch"), "{stderr}");
    assert_eq!(EventStore::open(&db.url, Migrations::RequireCurrent).await.unwrap().head().await.unwrap().position, 0);
}

fn import_into(db: &TestDatabase, file: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_roleledger"))
        .args(["import", file, "--database", &db.url.to_string()])
        .env_remove("ROLELEDGER_DATABASE")
        .env_remove("ROLELEDGER_CONFIG")
        .output()
        .expect("the binary runs")
}

async fn events_are_paged_or_streamed_with_the_same_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    random_history(&app, 11, 40, &[None]).await;
    app.assign("root", "aud", "auditor", "global").await;
    let head = app.head().await;
    let ndjson = |query: &str| {
        let request = app.client.get(format!("{}/api/v1/events{query}", app.address)).bearer_auth(token_for("aud"));
        async move {
            let response = request.header("accept", "application/x-ndjson").send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "application/x-ndjson");
            let text = response.text().await.unwrap();
            text.lines().map(|line| serde_json::from_str::<RecordedEvent>(line).unwrap()).collect::<Vec<_>>()
        }
    };
    let everything = ndjson("").await;
    assert_eq!(everything, whole_log(&app.store).await, "the whole log, exactly as recorded");
    for query in ["?type=RoleGranted", "?actor=root&after=3", "?from=2&until=9", "?stream=scope-SITE_A"] {
        let streamed = ndjson(query).await;
        assert!(!streamed.is_empty(), "{query}");
        let mut paged = Vec::new();
        let mut next = String::new();
        loop {
            let separator = if query.is_empty() { "?" } else { "&" };
            let page = app.get_as("aud", &format!("/api/v1/events{query}{separator}limit=7{next}")).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            paged.extend(
                page.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| serde_json::from_value::<RecordedEvent>(e.clone()).unwrap()),
            );
            match page.body["next"].as_str() {
                Some(cursor) => next = format!("&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(streamed, paged, "{query}");
    }
    assert!(ndjson("?type=RoleGranted").await.iter().all(|e| e.event_type == "RoleGranted"));
    let positions: Vec<i64> = ndjson("?from=2&until=9").await.iter().map(|e| e.position).collect();
    assert_eq!(positions, (2..=9).collect::<Vec<_>>());
    let from = everything[4].recorded_at;
    let by_time = ndjson(&format!("?from={}", roleledger::store::event::format_time(&from))).await;
    assert!(by_time.iter().all(|e| e.recorded_at >= from) && by_time.iter().any(|e| e.position == 5));
    assert_eq!(ndjson(&format!("?after={head}")).await, Vec::new());
}

/// One server-sent event: its id (a log position), its event name (the type), its data.
#[derive(Debug)]
struct Frame {
    id: i64,
    event: String,
    data: RecordedEvent,
}

struct Tail {
    response: reqwest::Response,
    buffer: String,
}

impl Tail {
    async fn open(app: &TestApp, user: &str, query: &str, last_event_id: Option<i64>) -> Tail {
        Tail::open_with(app, &token_for(user), query, last_event_id).await
    }

    async fn open_with(app: &TestApp, token: &str, query: &str, last_event_id: Option<i64>) -> Tail {
        let mut request = app.client.get(format!("{}/api/v1/events/live{query}", app.address)).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Tail { response, buffer: String::new() }
    }

    /// Frames until the one with id `last` (failing after 10 s without one).
    async fn until(&mut self, last: i64) -> Vec<Frame> {
        let mut frames = Vec::new();
        while frames.last().is_none_or(|frame: &Frame| frame.id < last) {
            while let Some(end) = self.buffer.find("\n\n") {
                let text: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)).map(str::to_string);
                if let Some(id) = field("id: ") {
                    let data = serde_json::from_str(&field("data: ").unwrap()).unwrap();
                    frames.push(Frame { id: id.parse().unwrap(), event: field("event: ").unwrap(), data });
                }
            }
            if frames.last().is_some_and(|frame| frame.id >= last) {
                break;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await;
            let chunk = chunk.expect("an event within 10 s").unwrap().expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        frames
    }

    /// Reads on until the server ends the stream (failing if it is still open after `limit`);
    /// the text since the last frame read.
    async fn ended_within(mut self, limit: Duration) -> String {
        let started = std::time::Instant::now();
        while let Some(chunk) = tokio::time::timeout(limit.saturating_sub(started.elapsed()), self.response.chunk())
            .await
            .unwrap_or_else(|_| panic!("the tail is still open after {limit:?}: {}", self.buffer))
            .unwrap()
        {
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        self.buffer
    }
}

/// An open tail ends (with a comment line saying why) once its caller may no longer read the
/// log: the auditor's grant revoked, or the API token it was opened with revoked.
async fn live_tail_ends_when_the_caller_loses_the_right_to_read(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    let grant = app.assign("root", "aud", "auditor", "global").await;
    let created = app.post_as("root", "/api/v1/tokens", json!({"name": "tail"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let api_token = created.body["token"].as_str().unwrap().to_string();
    let token_id = created.body["id"].as_str().unwrap().to_string();

    let mut by_auditor = Tail::open(&app, "aud", "?after=0", None).await;
    let mut by_api_token = Tail::open_with(&app, &api_token, "?after=0", None).await;
    let head = app.head().await;
    by_auditor.until(head).await;
    by_api_token.until(head).await;

    let revoked = app.post_as("root", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "moved on"})).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let last = by_auditor.ended_within(Duration::from_secs(5)).await;
    assert!(last.ends_with("\n\n") && last.contains(": access ended: the log is for auditors"), "{last:?}");

    // The API token's tail was not affected by that; it ends when its token is revoked.
    let after_revocation = app.head().await;
    by_api_token.until(after_revocation).await;
    assert_eq!(app.delete_as("root", &format!("/api/v1/tokens/{token_id}")).await.status, 204);
    let last = by_api_token.ended_within(Duration::from_secs(5)).await;
    assert!(last.contains(": access ended: the API token is unknown, revoked or expired"), "{last:?}");
}

async fn live_tail_delivers_every_event_once_across_a_reconnect(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    app.sign_in("alice").await;
    assert_eq!(app.call(Method::GET, "/api/v1/events/live", None, None).await.status, 401);
    app.get_as("alice", "/api/v1/events/live?after=0").await.assert_problem(403, "forbidden");

    let mut tail = Tail::open(&app, "aud", "?after=0", None).await;
    let mut frames = tail.until(app.head().await).await;
    // Events written while the tail is open arrive as they commit.
    app.egi_tree("root").await;
    frames.extend(tail.until(app.head().await).await);
    drop(tail);
    // Written while nobody listens; the reconnection names the last id it had, which wins over `after`.
    for user in ["bob", "carol", "dave"] {
        app.sign_in(user).await;
    }
    let mut tail = Tail::open(&app, "aud", "?after=0", Some(frames.last().unwrap().id)).await;
    app.assign("root", "bob", "site-administrator", "SITE_A").await;
    frames.extend(tail.until(app.head().await).await);

    let head = app.head().await;
    assert_eq!(
        frames.iter().map(|f| f.id).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "each event once, in order"
    );
    assert_eq!(frames.iter().map(|f| f.data.clone()).collect::<Vec<_>>(), whole_log(&app.store).await);
    assert!(frames.iter().all(|f| f.event == f.data.event_type));
    // Without a position, the tail starts at the head: only what comes next.
    let mut tail = Tail::open(&app, "root", "", None).await;
    app.sign_in("erin").await;
    let next = tail.until(head + 1).await;
    assert_eq!(next.iter().map(|f| f.id).collect::<Vec<_>>(), [head + 1]);
}

/// Every writing route, as (method, path, body); the auditor must be refused each with `read_only`.
fn writing_routes(request: &str, grant: &str, role: &Value) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/api/v1/scopes".into(),
            Some(json!({"id": "SITE_C", "kind": "site", "parents": ["NGI_A"], "title": "C"})),
        ),
        (Method::DELETE, "/api/v1/scopes/SITE_B".into(), None),
        (
            Method::POST,
            "/api/v1/roles".into(),
            Some(json!({"id": "viewer", "title": "Viewer", "kinds": ["site"], "permissions": ["scope.view"]})),
        ),
        (Method::PUT, "/api/v1/roles/site-administrator".into(), Some(role.clone())),
        (Method::POST, "/api/v1/roles/site-administrator/duplicate".into(), None),
        (Method::DELETE, "/api/v1/roles/site-administrator".into(), None),
        (Method::POST, "/api/v1/teams".into(), Some(json!({"id": "support", "title": "Support"}))),
        (Method::PUT, "/api/v1/teams/ops/members/bob".into(), None),
        (Method::DELETE, "/api/v1/teams/ops/members/bob".into(), None),
        (
            Method::POST,
            "/api/v1/requests".into(),
            Some(json!({"role": "site-administrator", "scope": "SITE_B", "reason": "r"})),
        ),
        (Method::POST, format!("/api/v1/requests/{request}/approve"), Some(json!({"comment": "ok"}))),
        (Method::POST, format!("/api/v1/requests/{request}/reject"), Some(json!({"reason": "no"}))),
        (Method::POST, format!("/api/v1/requests/{request}/cancel"), None),
        (
            Method::POST,
            "/api/v1/grants".into(),
            Some(json!({"user": "bob", "role": "site-administrator", "scope": "SITE_A", "reason": "r"})),
        ),
        (Method::POST, format!("/api/v1/grants/{grant}/revoke"), Some(json!({"reason": "r"}))),
        (Method::POST, "/api/v1/tokens".into(), Some(json!({"name": "mine"}))),
        (Method::DELETE, format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()), None),
        (Method::POST, "/api/v1/users".into(), Some(json!({"id": "newcomer"}))),
    ]
}

async fn an_auditor_reads_everything_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "aud", "auditor", "global").await;
    let grant = app.assign("root", "carol", "site-administrator", "SITE_B").await;
    assert_eq!(app.post_as("root", "/api/v1/teams", json!({"id": "ops", "title": "Operators"})).await.status, 201);
    app.sign_in("alice").await;
    app.sign_in("bob").await;
    let asked = app
        .post_as("alice", "/api/v1/requests", json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"}))
        .await;
    let request = asked.body["id"].as_str().unwrap().to_string();
    let head = app.head().await;

    for path in [
        "/api/v1/events".to_string(),
        "/api/v1/audit/verify".into(),
        "/api/v1/grants?as_of=3".into(),
        format!("/api/v1/grants/{grant}"),
        format!("/api/v1/requests/{request}"),
        "/api/v1/users/alice/approver-scopes".into(),
        "/api/v1/check?user=carol&permission=scope.edit&scope=SITE_B".into(),
        "/api/v1/scopes".into(),
        "/api/v1/roles".into(),
        "/api/v1/teams".into(),
    ] {
        let answer = app.get_as("aud", &path).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
    }
    for list in ["/api/v1/grants", "/api/v1/requests"] {
        assert_eq!(
            app.get_as("aud", list).await.body,
            app.get_as("root", list).await.body,
            "{list}: everything, as an admin sees it"
        );
    }
    let events = app.get_as("aud", "/api/v1/events?limit=1000").await;
    assert_eq!(events.body["items"].as_array().unwrap().len() as i64, head);

    let role = app.get_as("root", "/api/v1/roles/site-administrator").await.body;
    for (method, path, body) in writing_routes(&request, &grant, &role) {
        let answer = app.call(method.clone(), &path, Some(&token_for("aud")), body).await;
        answer.assert_problem(403, "read_only");
        assert_eq!(app.head().await, head, "{method} {path} wrote nothing");
    }
}

async fn a_log_changed_behind_the_servers_back_fails_verify_at_its_position(backend: Backend) {
    for tampering in tamperings(backend) {
        let app = spawn_app(backend).await;
        app.bootstrap_admin("root").await;
        app.egi_tree("root").await;
        let verified = app.get_as("root", "/api/v1/audit/verify").await.body;
        assert_eq!(verified["ok"], true, "{verified}");
        assert_eq!(verified["projections_checked_at"], app.head().await);
        tampering.apply(&app.db).await;
        let answer = app.get_as("root", "/api/v1/audit/verify").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["ok"], false, "{}: {:?}", tampering.what, answer.body);
        assert_eq!(answer.body["problem"]["position"], 3, "{}: {:?}", tampering.what, answer.body);
        let cli = app.cli(&["verify"]);
        assert_eq!(cli.status.code(), Some(1), "{}", tampering.what);
        assert!(String::from_utf8_lossy(&cli.stdout).starts_with("FAILED at position 3"), "{}", tampering.what);
    }
}

/// Someone rewrites the log and its whole chain after a revocation, consistently: the chain
/// verifies, but a server that folded the original log finds its projections differ from a
/// rebuild, naming the rewritten event. (A fresh process cannot tell: keep the head hash elsewhere.)
async fn a_consistently_rewritten_chain_is_caught_by_the_projections(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    let grant = app.assign("root", "carol", "site-administrator", "SITE_B").await;
    let revoked = app.post_as("root", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "left"})).await;
    assert_eq!(revoked.status, 200);
    app.sign_in("alice").await;

    let mut log = whole_log(&app.store).await;
    let forged = log.iter().position(|e| e.event_type == "GrantRevoked").unwrap();
    log[forged].data["reason"] = json!("never happened");
    let mut previous =
        if forged == 0 { roleledger::store::GENESIS_HASH.to_string() } else { log[forged - 1].hash.clone() };
    for event in &mut log[forged..] {
        event.hash = event.chained_hash(&previous);
        previous.clone_from(&event.hash);
    }
    let empty_the_log =
        format!("DELETE FROM events; UPDATE log_head SET position = 0, hash = '{}'", roleledger::store::GENESIS_HASH);
    app.db.execute(&format!("{} {empty_the_log}", unguard_log(backend))).await;
    app.db.store().await.import(log.into_iter().map(Ok::<_, String>)).await.unwrap();

    let answer = app.get_as("root", "/api/v1/audit/verify").await;
    assert_eq!(answer.body["ok"], false, "{:?}", answer.body);
    assert_eq!(answer.body["problem"]["position"], forged as i64 + 1, "{:?}", answer.body);
    let problem = answer.body["problem"]["problem"].as_str().unwrap();
    assert!(problem.contains(&format!("grant-{grant}")) && problem.contains("differ from a rebuild"), "{problem}");
    let cli = app.cli(&["verify"]);
    assert!(String::from_utf8_lossy(&cli.stdout).starts_with("ok:"), "a fresh process folds the rewritten log");
}

async fn request_history_says_who_decided_when_why_and_from_where(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    app.assign("root", "aud", "auditor", "global").await;
    app.sign_in("alice").await;
    let ask = |role: &str| {
        app.post_as("alice", "/api/v1/requests", json!({"role": role, "scope": "SITE_A", "reason": "needed"}))
    };
    let approved = ask("site-administrator").await.body["id"].as_str().unwrap().to_string();
    let rejected = ask("site-security-officer").await.body["id"].as_str().unwrap().to_string();
    let answer =
        app.post_as("manager", &format!("/api/v1/requests/{approved}/approve"), json!({"comment": "welcome"})).await;
    let grant = answer.body["grant"].as_str().unwrap().to_string();
    app.post_as("manager", &format!("/api/v1/requests/{rejected}/reject"), json!({"reason": "one role is enough"}))
        .await;
    app.post_as("manager", &format!("/api/v1/grants/{grant}/revoke"), json!({"reason": "left the site"})).await;

    let app = &app;
    let history =
        |id: String| async move { app.get_as("aud", &format!("/api/v1/requests/{id}")).await.body["history"].clone() };
    let approved = history(approved).await;
    let types: Vec<&str> = approved.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["RoleRequested", "RequestApproved", "RoleGranted", "GrantRevoked"]);
    let rejected = history(rejected).await;
    let mut decisions = vec![(&approved[1], "comment", "welcome"), (&approved[3], "reason", "left the site")];
    decisions.push((&rejected[1], "reason", "one role is enough"));
    for (entry, field, text) in decisions {
        assert_eq!(entry["actor"], "manager", "{entry}");
        assert_eq!(entry["data"]["by"], json!({"user": "manager"}), "{entry}");
        assert_eq!(entry["data"][field], text, "{entry}");
        assert_eq!(entry["metadata"]["client_address"], "127.0.0.1", "{entry}");
        assert!(
            entry["recorded_at"].as_str().is_some_and(|t| t.ends_with('Z')) && entry["hash"].is_string(),
            "{entry}"
        );
        assert!(entry["metadata"]["correlation_id"].is_string(), "{entry}");
    }
}

on_both_backends!(
    grants_as_of_any_moment_equal_a_replay_up_to_it,
    export_then_import_gives_the_same_head_projections_and_events,
    events_are_paged_or_streamed_with_the_same_filters,
    live_tail_delivers_every_event_once_across_a_reconnect,
    live_tail_ends_when_the_caller_loses_the_right_to_read,
    an_auditor_reads_everything_and_changes_nothing,
    a_log_changed_behind_the_servers_back_fails_verify_at_its_position,
    a_consistently_rewritten_chain_is_caught_by_the_projections,
    request_history_says_who_decided_when_why_and_from_where,
);
