use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::store::EventStore;

/// How long readiness waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers in time.
pub async fn readyz(store: web::Data<EventStore>) -> HttpResponse {
    let detail = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return HttpResponse::Ok().json(json!({"status": "ready", "database": store.backend_name()})),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("the database did not answer within {} s", READY_TIMEOUT.as_secs()),
    };
    HttpResponse::ServiceUnavailable()
        .content_type("application/problem+json")
        .insert_header(("Retry-After", "5"))
        .json(json!({
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": detail,
            "code": "database_unavailable",
        }))
}
