use std::{net::TcpListener, sync::Arc};

use actix_web::{dev::Server, web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::{
    configuration::Settings,
    routes::health,
    store::{EventStore, Migrations},
    workflow::Workflow,
};

/// How often each server process looks for requests and grants that are due to expire.
const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// The running server: bound (port 0 in tests picks a free port), migrated, ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url}: {source}")]
    Store { url: String, source: crate::store::StoreError },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("{0}")]
    Workflow(#[from] crate::workflow::WorkflowError),
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let workflow = Arc::new(Workflow::from_file(&settings.workflow)?);
        let store = EventStore::open_with_workflow(&settings.database, Migrations::Apply, workflow)
            .await
            .map_err(|source| StartupError::Store { url: settings.database.to_string(), source })?;
        crate::expiry::spawn(store.clone(), EXPIRY_INTERVAL);
        let bind_error = |source| StartupError::Bind { address: settings.bind.clone(), source };
        let listener = TcpListener::bind(&settings.bind).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let server = serve(listener, store).map_err(bind_error)?;
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGTERM or SIGINT; in-flight requests finish before it returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn serve(listener: TcpListener, store: EventStore) -> std::io::Result<Server> {
    let store = web::Data::new(store);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(store.clone())
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
    })
    .listen(listener)?
    .run();
    Ok(server)
}
