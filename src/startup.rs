use std::{
    net::{SocketAddr, TcpListener, ToSocketAddrs},
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{
    body::MessageBody,
    dev::{Server, Service, ServiceRequest, ServiceResponse},
    http::{
        header::{HeaderName, HeaderValue},
        StatusCode,
    },
    middleware::ErrorHandlers,
    web, App, HttpMessage, HttpServer,
};
use tokio::sync::watch;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder, TracingLogger};

use crate::{
    app::{mail_links::MailLinks, App as Ledger},
    auth::{http_client, Authenticator, JwtError, JwtVerifier, OidcProvider, RemoteKeys},
    configuration::{JwtKeys, Settings},
    mail::{spawn_delivery, DeliveryStats, MailError, Mailer, Templates, Transport},
    routes::{
        self, health, metrics, openapi, problem,
        ui::{self, UiSettings},
        AppState, CorrelationId,
    },
    store::Migrations,
    webhooks::{spawn_webhook_delivery, WebhookStats},
    workflow::Workflow,
};

/// The key web sessions of OpenID Connect sign-ins are signed with: derived from the client
/// secret (or the JWT secret), so that every process of a deployment accepts the others'
/// sessions and a restart keeps them; without either, a key of this process.
fn session_key(settings: &Settings) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let secret = settings.oidc.as_ref().and_then(|oidc| oidc.client_secret.clone()).or(match &settings.jwt.keys {
        JwtKeys::Secret(secret) => Some(secret.clone()),
        _ => None,
    });
    let mut key = [0; 32];
    match secret {
        Some(secret) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
            mac.update(b"roleledger web session key");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        None => getrandom::getrandom(&mut key).expect("the system's random source"),
    }
    key
}

/// How often each server process looks for requests and grants that are due to expire.
const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);
/// The largest body a route accepts.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// How long requests still running at a stop may take to finish (live tails end at once), so that
/// SIGTERM ends the server within 10 s.
const SHUTDOWN_TIMEOUT: u64 = 8;
/// How long readiness fails before the server stops after a background task stopped, so that a
/// load balancer's probe sees it first.
const TASK_STOPPED_DRAIN: Duration = Duration::from_secs(5);

/// The running server: bound (port 0 in tests picks a free port), migrated, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    app: Ledger,
    /// Tells the live tails that the server is stopping (they end with a last comment line).
    closing: watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url}: {source}")]
    Store { url: String, source: crate::store::StoreError },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("{0}")]
    Workflow(#[from] crate::workflow::WorkflowError),
    #[error(transparent)]
    Keys(#[from] JwtError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("invalid --bind {address}: {reason}")]
    InvalidBind { address: String, reason: String },
    #[error("the development sign-in (no JWT key configured) serves loopback addresses only, not {0}: bind 127.0.0.1 or configure --jwt-secret, --jwt-public-key or --jwks")]
    DevelopmentNotLoopback(String),
    #[error("{0}")]
    Snapshots(String),
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let development = matches!(settings.jwt.keys, JwtKeys::Development(_));
        // A port that cannot be is said so, before any question of which addresses are named.
        check_port(&settings.bind)?;
        // Anyone who reaches the development sign-in may act as anyone.
        if development && !is_loopback(&settings.bind)? {
            return Err(StartupError::DevelopmentNotLoopback(settings.bind.clone()));
        }
        let workflow = Arc::new(Workflow::load(&settings.workflow)?);
        let mut verifier = JwtVerifier::from_settings(&settings.jwt)?.with_claims(settings.claims.clone());
        // Keys over http(s) are fetched in the background: the server starts while their host is away.
        let mut provider = None;
        match (&settings.jwt.keys, &settings.oidc) {
            (_, Some(oidc)) => {
                let http = http_client();
                let keys = RemoteKeys::new(http.clone(), None);
                verifier = verifier.with_remote(keys.clone());
                let discovered = OidcProvider::new(oidc.clone(), http, keys);
                discovered.spawn_discovery(settings.key_refresh);
                provider = Some(discovered);
            }
            (JwtKeys::JwksUrl(url), None) => {
                let keys = RemoteKeys::new(http_client(), Some(url.clone()));
                keys.spawn_refresh(settings.key_refresh);
                verifier = verifier.with_remote(keys);
            }
            _ => {}
        }
        let mut auth = Authenticator::new(verifier).with_session_key(session_key(settings));
        if let Some(provider) = provider {
            auth = auth.with_provider(provider);
        }
        let transport = Transport::new(settings.smtp.as_deref(), settings.mail_dir.clone())?;
        let templates = Templates::load(settings.mail_templates.as_deref())?;
        let mailer = Mailer::new(transport, templates, &settings.mail_from, &settings.public_url)?;
        // Bound before the log is folded: an address that cannot be had is refused at once, and
        // no background task was started for nothing.
        let bind_error = |source| StartupError::Bind { address: settings.bind.clone(), source };
        let listener = TcpListener::bind(&settings.bind).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let store_error = |source| StartupError::Store { url: settings.database.to_string(), source };
        let snapshots = &settings.snapshots;
        let snapshot_key = match snapshots.every {
            0 => None,
            _ => snapshots.key.load(true).map_err(|error| StartupError::Snapshots(error.to_string()))?,
        };
        let standby = settings.read_database.as_ref();
        let ledger =
            Ledger::open_with_snapshots(&settings.database, standby, Migrations::Apply, workflow, snapshot_key)
                .await
                .map_err(store_error)?;
        ledger.keep_snapshots(snapshots.every);
        let store = ledger.store().clone();
        let mail_links = MailLinks::load(&store).await.map_err(store_error)?;
        let mailer = Arc::new(mailer.with_links(mail_links.clone()));
        crate::app::scheduler::spawn(ledger.clone(), EXPIRY_INTERVAL);
        let delivery = Arc::new(DeliveryStats::default());
        spawn_delivery(store.clone(), mailer, settings.mail_retry, delivery.clone());
        let webhook_stats = Arc::new(WebhookStats::default());
        spawn_webhook_delivery(ledger.clone(), settings.webhooks, webhook_stats.clone());
        let (closing, closing_rx) = watch::channel(false);
        let app = AppState {
            closing: closing_rx,
            app: ledger.clone(),
            store: store.clone(),
            auth,
            metrics: metrics::Metrics::default(),
            delivery,
            ui: UiSettings::new(development, settings.public_url.starts_with("https://")),
            mail_links,
            webhooks: settings.webhooks,
            webhook_stats,
        };
        let server = serve(listener, app).map_err(bind_error)?;
        Ok(Self { port, server, app: ledger, closing })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's application (tests read and seed through it).
    pub fn app(&self) -> Ledger {
        self.app.clone()
    }

    /// Runs until SIGTERM or SIGINT: then live tails end with a last comment line, and requests
    /// still running get `SHUTDOWN_TIMEOUT` to finish. If a background task of the store stops,
    /// readiness fails at once and the server stops `TASK_STOPPED_DRAIN` later with an error, so
    /// that the process exits non-zero and its supervisor starts it afresh (a new process replays
    /// the log; restarting the task in place could not trust the state it left).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        let stopped_task = tokio::select! {
            result = &mut server => return result,
            () = shutdown_signal() => None,
            task = self.app.store().task_stopped() => Some(task),
        };
        if let Some(task) = stopped_task {
            tracing::error!(task, "a background task stopped: readiness fails, and the server stops shortly");
            tokio::select! {
                result = &mut server => return result,
                () = shutdown_signal() => {}
                () = tokio::time::sleep(TASK_STOPPED_DRAIN) => {}
            }
        }
        let _ = self.closing.send(true);
        let (result, ()) = tokio::join!(server, handle.stop(true));
        result?;
        match stopped_task {
            Some(task) => Err(std::io::Error::other(format!(
                "the {task} task stopped; exiting so that a supervisor restarts the server"
            ))),
            None => Ok(()),
        }
    }
}

fn serve(listener: TcpListener, app: AppState) -> std::io::Result<Server> {
    let app = web::Data::new(app);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(ErrorHandlers::new().handler(StatusCode::METHOD_NOT_ALLOWED, problem::method_not_allowed))
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap_fn(|request, service| {
                let id = request_id(&request);
                request.extensions_mut().insert(CorrelationId(id.clone()));
                let (started, app) = (Instant::now(), request.app_data::<web::Data<AppState>>().cloned());
                let answer = service.call(request);
                async move {
                    let mut response = answer.await?;
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert(REQUEST_ID, value);
                    }
                    if let Some(app) = app {
                        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                        let method = response.request().method().to_string();
                        app.metrics.observe(&route, &method, response.status().as_u16(), started.elapsed());
                    }
                    Ok(response)
                }
            })
            .app_data(app.clone())
            .app_data(web::JsonConfig::default().limit(BODY_LIMIT).error_handler(problem::json_error))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(problem::query_error))
            .app_data(web::PathConfig::default().error_handler(problem::path_error))
            // A browser pointed at the server lands on the web pages.
            .service(web::redirect("/", "/ui").see_other())
            // Resources, not `App::route`: that makes the method a guard of the path, so another
            // method would answer 404 instead of 405 with `Allow`.
            .service(web::resource("/healthz").get(health::healthz))
            .service(web::resource("/readyz").get(health::readyz))
            .service(web::resource("/metrics").get(metrics::metrics))
            .service(web::resource("/openapi.json").get(openapi::openapi_json))
            .service(
                web::scope("/api/v1")
                    .wrap(actix_web::middleware::from_fn(routes::idempotency::idempotency))
                    .configure(routes::api::configure),
            )
            .service(ui::scope())
            .default_service(web::to(problem::no_route))
    })
    // Signals are handled by `run_until_stopped`, which ends the live tails first.
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT)
    .listen(listener)?
    .run();
    Ok(server)
}

/// `bind` must end in `:PORT` with a port from 0 to 65535.
fn check_port(bind: &str) -> Result<(), StartupError> {
    let invalid = |reason: String| StartupError::InvalidBind { address: bind.to_string(), reason };
    let port = bind.rsplit_once(':').map(|(_, port)| port).ok_or_else(|| invalid("expected HOST:PORT".into()))?;
    match port.parse::<u16>() {
        Ok(_) => Ok(()),
        Err(_) => Err(invalid(format!("invalid port {port:?} (a port is 0 to 65535)"))),
    }
}

/// Whether every address `bind` names is a loopback one; a name that does not resolve cannot be
/// listened on.
fn is_loopback(bind: &str) -> Result<bool, StartupError> {
    let addresses: Vec<SocketAddr> =
        bind.to_socket_addrs().map_err(|source| StartupError::Bind { address: bind.to_string(), source })?.collect();
    Ok(!addresses.is_empty() && addresses.iter().all(|address| address.ip().is_loopback()))
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The client's `X-Request-Id` when it is a sensible token (so that it can go into logs and
/// events as it is), else a new one.
fn request_id(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// What the request log says instead of a target holding a mail link's token: the link's page
/// (`/ui/m/{token}`), or a sign-in going back to one (`?next=/ui/m/…`). `None` for any other.
fn target_without_link_token(request: &ServiceRequest) -> Option<&'static str> {
    if request.path().starts_with("/ui/m/") {
        Some("/ui/m/{token}")
    } else if request.query_string().contains("next=") {
        Some("(a sign-in, its return path left out)")
    } else {
        None
    }
}

/// The request span carries the request id that the client sees and the events record.
struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request.extensions().get::<CorrelationId>().map(|id| id.0.clone()).unwrap_or_default();
        if let Some(target) = target_without_link_token(request) {
            return tracing::info_span!(
                "HTTP request",
                http.method = %request.method(),
                http.target = target,
                http.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                exception.message = tracing::field::Empty,
                exception.details = tracing::field::Empty,
                correlation_id = %id
            );
        }
        tracing_actix_web::root_span!(request, correlation_id = %id)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        if let Ok(response) = outcome {
            tracing::debug!(parent: &span, status = response.status().as_u16(), "answered");
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
