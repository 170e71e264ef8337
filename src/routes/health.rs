use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// How long readiness waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `{"status": "ok"}`, or with the database `{"status": "ready", "database": "sqlite"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    /// sqlite or postgres (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'static str>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", operation_id = "healthz", security(()),
    responses((status = 200, description = "the process answers", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", database: None })
}

/// Readiness: the database answers in time.
#[utoipa::path(get, path = "/readyz", tag = "service", operation_id = "readyz", security(()),
    responses((status = 200, description = "the database answers", body = Health), (status = 503, description = "the database is unreachable")))]
pub async fn readyz(app: web::Data<AppState>) -> HttpResponse {
    let store = &app.store;
    // A stopped writer or follower does not come back in this process (it is stopping).
    if let Some(task) = store.stopped_tasks().first() {
        let detail = format!("the {task} task stopped; the server is stopping so that its supervisor restarts it");
        return unavailable("task_stopped", &detail);
    }
    let detail = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return HttpResponse::Ok().json(Health { status: "ready", database: Some(store.backend_name()) }),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("the database did not answer within {} s", READY_TIMEOUT.as_secs()),
    };
    unavailable("database_unavailable", &detail)
}

fn unavailable(code: &str, detail: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("application/problem+json")
        .insert_header(("Retry-After", "5"))
        .body(super::problem::problem_body(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, code, detail))
}
