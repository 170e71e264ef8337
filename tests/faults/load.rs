//! The mixed load: many clients asking for roles, deciding (each decision raced by a second,
//! opposite one), cancelling, revoking and reading, spread over one or more servers; every answer
//! judged, every 2xx remembered in a ledger that the checks hold against the log afterwards.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::{
    harness::{address, token, Database, ServerProcess},
    support::smtp::SmtpServer,
};

/// How long a client waits for an answer before it calls the server hung.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// A client's pause between calls where every mail must arrive within the scenario: the delivery
/// worker sends one mail per SMTP connection, a few hundred a second, so a load at full speed
/// (over a thousand mails a second) would leave minutes of backlog.
pub const PACE_FOR_MAIL: Duration = Duration::from_millis(50);
/// How long a client waits after finding the server down.
const UNREACHABLE_PAUSE: Duration = Duration::from_millis(100);
/// How many times an ask is sent again with its idempotency key (after a 503 or no answer, or to
/// see that a repeat acts once).
const ASK_RETRIES: usize = 5;
/// The longest pause before a retry (a 503's Retry-After, when it is shorter).
const LONGEST_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The reason of every request the load asks for begins so; the rest is the call's key.
pub const ASK_REASON: &str = "load ";
/// Site roles that users ask for (none of them decides anything, so a site's deciders stay its manager).
const ROLES: [&str; 3] = ["site-administrator", "site-security-officer", "site-operations-deputy-manager"];

/// The world the load plays in: project EGI ⊃ NGI ⊃ sites S0…, each site with a mailbox and one
/// manager `m<i>` who decides its requests, and users `u0…` who ask.
#[derive(Clone, Copy)]
pub struct World {
    pub sites: usize,
    pub users: usize,
}

impl World {
    pub const ADMIN: &'static str = "root";

    pub fn site(i: usize) -> String {
        format!("S{i}")
    }
    pub fn manager(site: usize) -> String {
        format!("m{site}")
    }
    pub fn user(i: usize) -> String {
        format!("u{i}")
    }

    /// Creates the world through the API (the admin was bootstrapped on the command line).
    pub async fn build(&self, api: &Api) {
        let admin = World::ADMIN;
        api.expect(
            201,
            Method::POST,
            "/api/v1/scopes",
            admin,
            Some(json!({"id": "EGI", "kind": "project", "title": "EGI"})),
        )
        .await;
        let ngi = json!({"id": "NGI", "kind": "ngi", "parents": ["EGI"], "title": "NGI"});
        api.expect(201, Method::POST, "/api/v1/scopes", admin, Some(ngi)).await;
        for i in 0..self.sites {
            let site = World::site(i);
            let body =
                json!({"id": site, "kind": "site", "parents": ["NGI"], "title": site, "mailbox": address(&site)});
            api.expect(201, Method::POST, "/api/v1/scopes", admin, Some(body)).await;
            let manager = World::manager(i);
            api.expect(200, Method::GET, "/api/v1/me", &manager, None).await;
            let grant = json!({"user": manager, "role": "site-operations-manager", "scope": site, "reason": "manages the site"});
            api.expect(201, Method::POST, "/api/v1/grants", admin, Some(grant)).await;
        }
        for i in 0..self.users {
            api.expect(200, Method::GET, "/api/v1/me", &World::user(i), None).await;
        }
    }
}

/// Which site's mailbox and manager a request or grant concerns, and whose it is.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user: String,
    pub site: usize,
    /// Asked with a duration: its grant is left to expire, nobody revokes it.
    pub timed: bool,
}

/// A call the server answered 2xx: it promised that the change is in the log.
#[derive(Debug, Clone)]
pub enum Ack {
    Requested { request: String, of: Subject },
    Approved { request: String, grant: String, of: Subject },
    Rejected { request: String, of: Subject },
    Cancelled { request: String, of: Subject },
    Revoked { grant: String, of: Subject },
}

impl Ack {
    /// The stream and type of the event the acknowledged call wrote.
    pub fn event(&self) -> (String, &'static str) {
        match self {
            Ack::Requested { request, .. } => (format!("request-{request}"), "RoleRequested"),
            Ack::Approved { request, .. } => (format!("request-{request}"), "RequestApproved"),
            Ack::Rejected { request, .. } => (format!("request-{request}"), "RequestRejected"),
            Ack::Cancelled { request, .. } => (format!("request-{request}"), "RequestCancelled"),
            Ack::Revoked { grant, .. } => (format!("grant-{grant}"), "GrantRevoked"),
        }
    }

    /// Who the event mails in this world: a new request its site's manager and mailbox; every
    /// other event the requester or holder and the site's mailbox.
    pub fn recipients(&self) -> [String; 2] {
        match self {
            Ack::Requested { of, .. } => [address(&World::manager(of.site)), address(&World::site(of.site))],
            Ack::Approved { of, .. }
            | Ack::Rejected { of, .. }
            | Ack::Cancelled { of, .. }
            | Ack::Revoked { of, .. } => [address(&of.user), address(&World::site(of.site))],
        }
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub body: Value,
    pub took: Duration,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// Why there is no answer.
#[derive(Debug)]
pub enum NoAnswer {
    /// Refused or reset: the server is down or was killed mid-call.
    Unreachable,
    /// No answer within `ANSWER_TIMEOUT`: a hang.
    Hung(Duration),
}

/// An HTTP client for one or more servers, with a login token per user.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    pub servers: Vec<String>,
    tokens: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Api {
    pub fn new(servers: Vec<String>) -> Api {
        let client = reqwest::Client::builder().timeout(ANSWER_TIMEOUT).build().unwrap();
        Api { client, servers, tokens: Arc::default() }
    }

    /// One token per user for the whole run (the server caches verified tokens).
    fn token(&self, user: &str) -> String {
        self.tokens.lock().unwrap().entry(user.to_string()).or_insert_with(|| token(user)).clone()
    }

    /// Calls server number `server` as `user`.
    pub async fn call_on(
        &self,
        server: usize,
        method: Method,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<Answer, NoAnswer> {
        self.call_keyed(server, method, path, user, body, None).await
    }

    /// Like `call_on`, with an `Idempotency-Key` when one is given.
    pub async fn call_keyed(
        &self,
        server: usize,
        method: Method,
        path: &str,
        user: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Result<Answer, NoAnswer> {
        let mut request =
            self.client.request(method, format!("{}{path}", self.servers[server])).bearer_auth(self.token(user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let started = Instant::now();
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                NoAnswer::Hung(started.elapsed())
            } else {
                NoAnswer::Unreachable
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let no_answer = failed(error);
                if matches!(no_answer, NoAnswer::Unreachable) {
                    // The server is down (killed, restarting): a client waits a little, as a real one would.
                    tokio::time::sleep(UNREACHABLE_PAUSE).await;
                }
                return Err(no_answer);
            }
        };
        let status = response.status();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
        let text = response.text().await.map_err(failed)?;
        Ok(Answer {
            status,
            retry_after,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            took: started.elapsed(),
        })
    }

    pub async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> Result<Answer, NoAnswer> {
        self.call_on(0, method, path, user, body).await
    }

    /// A call that must answer `status` (setup and checks, not load).
    pub async fn expect(&self, status: u16, method: Method, path: &str, user: &str, body: Option<Value>) -> Value {
        let answer =
            self.call(method.clone(), path, user, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        assert_eq!(answer.status.as_u16(), status, "{method} {path} as {user}: {}", answer.body);
        answer.body
    }
}

/// What the load saw, and what it may act on next.
#[derive(Default)]
pub struct Ledger {
    pub acks: Vec<Ack>,
    /// Answers by status and problem code (`201`, `409 not_pending`, `503 database_unavailable`).
    pub answers: BTreeMap<String, usize>,
    /// Answers that the API must never give under this load (a 500, a 503 without Retry-After, …).
    pub unexpected: Vec<String>,
    /// Calls that got no answer because the server was down.
    pub unreachable: usize,
    /// Calls that got no answer in time.
    pub hung: Vec<String>,
    /// Requests for which both racing decisions were answered 200.
    pub decided_twice: Vec<String>,
    /// The slowest answer.
    pub slowest: Duration,
    /// Asks sent again with their idempotency key (after a 503, no answer, or a 2xx).
    pub retried: usize,
    /// When each acknowledged write was answered, and how long it took.
    pub writes: Vec<(Instant, Duration)>,
    pending: Vec<(String, Subject)>,
    grants: Vec<(String, Subject)>,
}

impl Ledger {
    /// Counts an answer; true when it is a 2xx.
    fn judge(&mut self, what: &str, outcome: &Result<Answer, NoAnswer>) -> bool {
        let answer = match outcome {
            Ok(answer) => answer,
            Err(NoAnswer::Unreachable) => {
                self.unreachable += 1;
                return false;
            }
            Err(NoAnswer::Hung(after)) => {
                self.hung.push(format!("{what}: no answer after {after:?}"));
                return false;
            }
        };
        self.slowest = self.slowest.max(answer.took);
        let status = answer.status.as_u16();
        if answer.status.is_success() && what.starts_with("POST") {
            self.writes.push((Instant::now(), answer.took));
        }
        *self.answers.entry(format!("{status} {}", answer.code()).trim().to_string()).or_default() += 1;
        let expected = match status {
            200..=299 => return true,
            // Races and repeats that the rules refuse.
            409 => ["duplicate_request", "not_pending", "not_active"].contains(&answer.code()),
            // Unreachable before the commit, or while it was being committed.
            503 => {
                answer.retry_after.is_some()
                    && ["database_unavailable", "commit_outcome_unknown"].contains(&answer.code())
            }
            _ => false,
        };
        if !expected {
            self.unexpected.push(format!("{what}: {status} retry-after={:?} {}", answer.retry_after, answer.body));
        }
        false
    }

    pub fn summary(&self) -> String {
        format!(
            "{} acknowledged, answers {:?}, {} unreachable, {} asks retried with their key, slowest answer {:?}",
            self.acks.len(),
            self.answers,
            self.unreachable,
            self.retried,
            self.slowest
        )
    }

    /// The failures the load itself saw: unexpected answers, hangs, double decisions.
    pub fn assert_clean(&self) {
        assert!(self.hung.is_empty(), "calls hung: {:#?}", self.hung);
        assert!(
            self.decided_twice.is_empty(),
            "requests decided twice (both racing decisions answered 200): {:?}",
            self.decided_twice
        );
        assert!(
            self.unexpected.is_empty(),
            "unexpected answers ({}): {:#?}",
            self.unexpected.len(),
            &self.unexpected[..self.unexpected.len().min(20)]
        );
    }
}

/// How the load behaves.
#[derive(Clone, Copy)]
pub struct LoadSettings {
    pub clients: usize,
    /// A pause after each call of a client (none: as fast as the server answers).
    pub pause: Duration,
    /// The duration that every other request asks for (its grant ends that long after approval,
    /// and is left to expire).
    pub grant_duration: Option<&'static str>,
}

/// The clients, running until `stop`.
pub struct Load {
    pub ledger: Arc<Mutex<Ledger>>,
    running: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(api: &Api, world: World, settings: LoadSettings, seed: u64) -> Load {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let running = Arc::new(AtomicBool::new(true));
        let clients = (0..settings.clients)
            .map(|n| {
                let client = Client {
                    api: api.clone(),
                    world,
                    settings,
                    ledger: ledger.clone(),
                    random: Random::new(seed.wrapping_add(n as u64 * 0x9E37_79B9)),
                };
                let running = running.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    while running.load(Ordering::Relaxed) {
                        client.act().await;
                        tokio::time::sleep(settings.pause).await;
                    }
                })
            })
            .collect();
        Load { ledger, running, clients }
    }

    /// Stops the clients after their current call and hands back the ledger.
    pub async fn stop(self) -> Ledger {
        self.running.store(false, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a load client panicked");
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.ledger.lock().unwrap().acks.clone()
    }

    /// How many calls were answered 2xx so far.
    pub fn acknowledged(&self) -> usize {
        self.ledger.lock().unwrap().acks.len()
    }
}

struct Client {
    api: Api,
    world: World,
    settings: LoadSettings,
    ledger: Arc<Mutex<Ledger>>,
    random: Random,
}

impl Client {
    async fn act(&mut self) {
        match self.random.below(100) {
            0..=39 => self.ask().await,
            40..=64 => self.decide().await,
            65..=69 => self.cancel().await,
            70..=84 => self.revoke().await,
            _ => self.read().await,
        }
    }

    fn server(&mut self) -> usize {
        self.random.below(self.api.servers.len())
    }

    async fn ask(&mut self) {
        let user = World::user(self.random.below(self.world.users));
        let duration = self.settings.grant_duration.filter(|_| self.random.below(2) == 0);
        let of = Subject { user, site: self.random.below(self.world.sites), timed: duration.is_some() };
        let role = ROLES[self.random.below(ROLES.len())];
        // The key is in the reason too: the log shows whether a retried ask acted more than once.
        let key = uuid::Uuid::new_v4().to_string();
        let mut body = json!({"role": role, "scope": World::site(of.site), "reason": format!("{ASK_REASON}{key}")});
        if let Some(duration) = duration {
            body["duration"] = json!(duration);
        }
        // Sent again after a 503 or no answer, and now and then after a 2xx (a client whose
        // answer was lost): a repeat is answered with the first answer, never acts again.
        let mut acknowledged: Option<String> = None;
        for attempt in 0..=ASK_RETRIES {
            let server = self.server();
            let outcome = self
                .api
                .call_keyed(server, Method::POST, "/api/v1/requests", &of.user, Some(body.clone()), Some(&key))
                .await;
            let pause = {
                let mut ledger = self.ledger.lock().unwrap();
                if attempt > 0 {
                    ledger.retried += 1;
                }
                let answered = ledger.judge("POST /requests", &outcome);
                match (&acknowledged, &outcome) {
                    (None, Ok(answer)) if answered => {
                        let request = answer.body["id"].as_str().expect("a request id").to_string();
                        ledger.acks.push(Ack::Requested { request: request.clone(), of: of.clone() });
                        ledger.pending.push((request.clone(), of.clone()));
                        if self.random.below(8) != 0 {
                            return;
                        }
                        acknowledged = Some(request);
                        Duration::ZERO
                    }
                    (Some(first), Ok(answer)) if answered || answer.status != StatusCode::SERVICE_UNAVAILABLE => {
                        if answer.body["id"].as_str() != Some(first.as_str()) {
                            let problem =
                                format!("a repeat of ask {key} (request {first}): {} {}", answer.status, answer.body);
                            ledger.unexpected.push(problem);
                        }
                        return;
                    }
                    (_, Ok(answer)) if answer.status == StatusCode::SERVICE_UNAVAILABLE => answer
                        .retry_after
                        .as_deref()
                        .and_then(|seconds| seconds.parse().ok())
                        .map_or(LONGEST_RETRY_PAUSE, |seconds| Duration::from_secs(seconds).min(LONGEST_RETRY_PAUSE)),
                    (_, Ok(_)) => return,
                    (_, Err(_)) => UNREACHABLE_PAUSE,
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// An approval and a rejection of the same request, sent at once (to two servers when there
    /// are two): exactly one may win.
    async fn decide(&mut self) {
        let Some((request, of)) = self.take_pending() else { return self.read().await };
        let manager = World::manager(of.site);
        let (first, second) = (self.server(), self.server());
        let (approve, reject) =
            (format!("/api/v1/requests/{request}/approve"), format!("/api/v1/requests/{request}/reject"));
        let approve = self.api.call_on(first, Method::POST, &approve, &manager, Some(json!({"comment": "ok"})));
        let reject = self.api.call_on(second, Method::POST, &reject, &manager, Some(json!({"reason": "no"})));
        let (approved, rejected) = tokio::join!(approve, reject);
        let mut ledger = self.ledger.lock().unwrap();
        let approved_ok = ledger.judge("POST /approve", &approved);
        let rejected_ok = ledger.judge("POST /reject", &rejected);
        match (approved_ok, rejected_ok) {
            (true, true) => ledger.decided_twice.push(request),
            (true, false) => {
                let grant = approved.unwrap().body["grant"].as_str().expect("an approval names its grant").to_string();
                ledger.acks.push(Ack::Approved { request, grant: grant.clone(), of: of.clone() });
                if !of.timed {
                    ledger.grants.push((grant, of));
                }
            }
            (false, true) => ledger.acks.push(Ack::Rejected { request, of }),
            // Neither answered (a fault): it may still be pending.
            (false, false) if !answered_409(&approved) && !answered_409(&rejected) => {
                ledger.pending.push((request, of))
            }
            (false, false) => {}
        }
    }

    async fn cancel(&mut self) {
        let Some((request, of)) = self.take_pending() else { return self.read().await };
        let server = self.server();
        let outcome =
            self.api.call_on(server, Method::POST, &format!("/api/v1/requests/{request}/cancel"), &of.user, None).await;
        let mut ledger = self.ledger.lock().unwrap();
        if ledger.judge("POST /cancel", &outcome) {
            ledger.acks.push(Ack::Cancelled { request, of });
        } else if !answered_409(&outcome) {
            ledger.pending.push((request, of));
        }
    }

    async fn revoke(&mut self) {
        let taken = {
            let mut ledger = self.ledger.lock().unwrap();
            let count = ledger.grants.len();
            (count > 0).then(|| ledger.grants.swap_remove(self.random.below(count)))
        };
        let Some((grant, of)) = taken else { return self.read().await };
        let server = self.server();
        let body = json!({"reason": "load"});
        let outcome = self
            .api
            .call_on(
                server,
                Method::POST,
                &format!("/api/v1/grants/{grant}/revoke"),
                &World::manager(of.site),
                Some(body),
            )
            .await;
        let mut ledger = self.ledger.lock().unwrap();
        if ledger.judge("POST /revoke", &outcome) {
            ledger.acks.push(Ack::Revoked { grant, of });
        } else if !answered_409(&outcome) {
            ledger.grants.push((grant, of));
        }
    }

    async fn read(&mut self) {
        let user = World::user(self.random.below(self.world.users));
        let site = World::site(self.random.below(self.world.sites));
        let path = if self.random.below(2) == 0 {
            "/api/v1/me".to_string()
        } else {
            format!("/api/v1/check?user={user}&permission=scope.edit&scope={site}")
        };
        let server = self.server();
        let outcome = self.api.call_on(server, Method::GET, &path, &user, None).await;
        self.ledger.lock().unwrap().judge(&format!("GET {path}"), &outcome);
    }

    fn take_pending(&mut self) -> Option<(String, Subject)> {
        let mut ledger = self.ledger.lock().unwrap();
        let count = ledger.pending.len();
        (count > 0).then(|| ledger.pending.swap_remove(self.random.below(count)))
    }
}

/// A 409 means the item moved on (decided, cancelled, revoked): nothing more to do with it.
fn answered_409(outcome: &Result<Answer, NoAnswer>) -> bool {
    matches!(outcome, Ok(answer) if answer.status == StatusCode::CONFLICT)
}

/// xorshift64*: reproducible from the seed that each scenario prints.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed | 1)
    }

    /// A seed from the clock, or `ROLELEDGER_FAULTS_SEED` to repeat a run.
    pub fn seed() -> u64 {
        std::env::var("ROLELEDGER_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        })
    }

    pub fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound.max(1)
    }

    /// A duration between `low` and `high`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = (high - low).as_millis() as usize;
        low + Duration::from_millis(self.below(span + 1) as u64)
    }
}

/// A scenario's start: the admin bootstrapped on the command line, `servers` server processes on
/// the database, and the world built through the first of them.
pub async fn start_world(db: &Database, smtp: &SmtpServer, servers: usize, world: World) -> (Vec<ServerProcess>, Api) {
    db.bootstrap_admin(World::ADMIN).await;
    let mut processes = Vec::new();
    for n in 0..servers {
        processes.push(ServerProcess::start(&format!("server{n}"), db, smtp).await);
    }
    let api = Api::new(processes.iter().map(|server| server.url.clone()).collect());
    world.build(&api).await;
    (processes, api)
}
