//! The authenticated caller of a route, with what every handler needs: who they are, the request
//! id and client address for the event metadata, and the store.

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};

use super::{idempotency::KeyedCall, problem::ApiError, AppState};
use crate::{
    app::{Origin, Principal, Via},
    domain::{Actor, Command, Standing, State, Viewer},
    projections::DomainModel,
    store::RecordedEvent,
    workflow::Workflow,
};

/// The call's id: the client's `X-Request-Id`, or one made up on arrival; the events it writes
/// carry it as their `correlation_id`.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

pub struct Caller {
    pub principal: Principal,
    /// The call's `Idempotency-Key`, when it carries one (see `idempotency`).
    keyed: Option<Arc<KeyedCall>>,
    pub request_id: String,
    /// Formatted only when an event records it.
    client_address: Option<std::net::SocketAddr>,
    app: web::Data<AppState>,
}

/// The web pages' session cookie: a login token (see `ui::session`).
pub const SESSION_COOKIE: &str = "rl_session";

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authorization =
            request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from);
        Box::pin(Caller::authenticate(request, authorization))
    }
}

/// The state every handler shares.
pub fn app(request: &HttpRequest) -> web::Data<AppState> {
    request.app_data::<web::Data<AppState>>().cloned().expect("the app state is registered")
}

impl Caller {
    /// The caller behind an `Authorization` value: the API's header, or the web pages' session.
    pub fn authenticate(
        request: &HttpRequest,
        authorization: Option<String>,
    ) -> impl Future<Output = Result<Caller, ApiError>> + 'static {
        let app = app(request);
        let request_id = request.extensions().get::<CorrelationId>().map(|id| id.0.clone()).unwrap_or_default();
        let client_address = request.peer_addr();
        let keyed = request.extensions().get::<Arc<KeyedCall>>().cloned();
        async move {
            let principal = app.auth.authenticate(&app.app, authorization.as_deref()).await?;
            Ok(Caller { principal, keyed, request_id, client_address, app })
        }
    }

    pub fn user(&self) -> &str {
        &self.principal.user
    }

    pub fn via_api_token(&self) -> bool {
        matches!(self.principal.via, Via::ApiToken(_))
    }

    pub fn actor(&self) -> Actor {
        Actor::User(self.principal.user.clone())
    }

    /// Reads the model as this process knows it (including this caller's own writes).
    pub fn read<R>(&self, read: impl FnOnce(&State, &Workflow) -> R) -> Result<R, ApiError> {
        Ok(self.app.app.read_model(|model: &DomainModel| read(model.state(), model.workflow())))
    }

    pub fn standing_in(&self, state: &State, now: DateTime<Utc>) -> Standing {
        state.standing(&self.principal.user, now)
    }

    /// The caller as a viewer of requests and grants, judged at `now`.
    pub fn viewer(&self, state: &State, now: DateTime<Utc>) -> Viewer {
        Viewer::new(state, self.actor(), now)
    }

    pub fn standing(&self) -> Result<Standing, ApiError> {
        self.read(|state, _| self.standing_in(state, Utc::now()))
    }

    /// Decides and records a command as this caller. Auditors who are not also administrators
    /// change nothing, whatever else they hold.
    pub async fn execute(&self, command: Command) -> Result<Vec<RecordedEvent>, ApiError> {
        let origin = Origin::Person {
            principal: self.principal.clone(),
            request_id: Some(self.request_id.clone()),
            client_address: self.client_address.map(|address| address.ip()),
        };
        let Some((call, key)) = self.keyed.as_ref().and_then(|call| Some((call, call.take()?))) else {
            return Ok(self.app.app.execute(origin, command).await?);
        };
        let executed = self.app.app.execute_once(origin, command, key).await?;
        if executed.repeated {
            call.repeated();
        }
        Ok(executed.events)
    }

    pub fn app(&self) -> &AppState {
        &self.app
    }
}
