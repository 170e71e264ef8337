//! `Idempotency-Key` on every POST of the API. A key belongs to (caller, route, key): the same
//! key from the same person on the same route pattern within 24 hours gets the first call's
//! status and body again (`Idempotent-Replayed: true`) without acting again; with another method,
//! path, query or body it is refused (422 `idempotency_key_reused`).
//!
//! Two records make that hold across processes and failovers, both in the database:
//! - the writer records the key with the command's events, in their transaction
//!   (`App::execute_once`): a repeat of the call finds it under the log-head lock and is not
//!   decided again, even when the first call's answer was lost (503 `commit_outcome_unknown`) or
//!   is still being made (a concurrent repeat waits for the writer, then repeats);
//! - this middleware keeps the answer under the key once it is made (`EventStore::keep_answer`),
//!   and gives it again. A repeat that finds the key recorded but no answer kept is answered by
//!   the handler from the recorded events, as the first one would have been.
//!
//! A secret that the first answer showed once is null in every repeat (`SHOWN_ONCE`).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        header::{self, HeaderName, HeaderValue},
        Method, StatusCode,
    },
    middleware::Next,
    web::{Bytes, BytesMut},
    HttpMessage, HttpResponse,
};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{caller, problem::ApiError};
use crate::{startup::BODY_LIMIT, store::CommandKey};

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header of an answer given again.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The fields of an answer that hold a secret shown once, by route pattern: null when the answer
/// is given again (and in the answer kept).
const SHOWN_ONCE: &[(&str, &str)] = &[("/api/v1/tokens", "token"), ("/api/v1/webhooks", "secret")];

/// A call that carries a key, for its handler's command (see `Caller::execute`).
#[derive(Debug)]
pub(crate) struct KeyedCall {
    key: CommandKey,
    taken: AtomicBool,
    repeated: AtomicBool,
}

impl KeyedCall {
    /// The key, for the first command the call runs (each API call runs one; a second one, were
    /// there any, would not be a repeat of the first).
    pub fn take(&self) -> Option<CommandKey> {
        (!self.taken.swap(true, Ordering::Relaxed)).then(|| self.key.clone())
    }

    /// The command had run before under this key: the answer repeats the first call's.
    pub fn repeated(&self) {
        self.repeated.store(true, Ordering::Relaxed);
    }
}

/// The middleware of the `/api/v1` scope (see the module's comment). A POST without the header,
/// or whose caller is not authenticated (the handler answers 401 then), passes through as it is.
pub async fn idempotency(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let key = match valid_key(&request) {
        Ok(key) => key.to_string(),
        Err(refusal) => return Ok(request.error_response(refusal)),
    };
    let app = caller::app(request.request());
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from);
    let Ok(principal) = app.auth.authenticate(&app.app, authorization.as_deref()).await else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let route = request.match_pattern().unwrap_or_else(|| request.path().to_string());
    let body = match read_body(&mut request).await {
        Ok(body) => body,
        Err(refusal) => return Ok(request.error_response(refusal)),
    };
    let fingerprint = fingerprint(&request, &body);
    let stored_key = serde_json::to_string(&(principal.user.as_str(), &route, &key)).expect("strings serialize");
    match app.store.kept_answer(&stored_key).await {
        Err(error) => return Ok(request.error_response(ApiError::Store(error))),
        Ok(Some(kept)) if kept.fingerprint == fingerprint => return Ok(replay(request, &kept.answer)),
        Ok(Some(_)) => return Ok(request.error_response(reused())),
        Ok(None) => {}
    }
    request.set_payload(Payload::from(body));
    let call = Arc::new(KeyedCall {
        key: CommandKey { key: stored_key.clone(), fingerprint: fingerprint.clone() },
        taken: AtomicBool::new(false),
        repeated: AtomicBool::new(false),
    });
    request.extensions_mut().insert(call.clone());
    let (request, response) = next.call(request).await?.into_parts();
    let (head, body) = response.into_parts();
    let body = actix_web::body::to_bytes(body).await.map_err(|error| {
        actix_web::error::ErrorInternalServerError(format!("an answer could not be read: {}", error.into()))
    })?;
    let repeated = call.repeated.load(Ordering::Relaxed);
    let once_hidden = without_secrets(&route, &body);
    let answer = Answer { status: head.status(), content_type: content_type(&head), body: once_hidden.clone() };
    if answer.worth_keeping() {
        if let Err(error) = app.store.keep_answer(&stored_key, &fingerprint, &answer.to_json()).await {
            // The key recorded with the events still keeps a repeat from acting twice.
            tracing::warn!(%error, "the answer to a call with an Idempotency-Key was not kept");
        }
    }
    let mut response = head.set_body(if repeated { once_hidden } else { body }).map_into_boxed_body();
    if repeated {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(ServiceResponse::new(request, response))
}

/// 1 to 255 visible ASCII characters, once.
fn valid_key(request: &ServiceRequest) -> Result<&str, ApiError> {
    let mut values = request.headers().get_all(IDEMPOTENCY_KEY);
    let key = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    };
    key.filter(|key| (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())).ok_or_else(|| {
        ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: "Idempotency-Key must be given once, as 1 to 255 visible ASCII characters".into(),
        }
    })
}

/// The whole body (the handler reads it again from what this returns), at most `BODY_LIMIT`.
async fn read_body(request: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let mut payload = request.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::BadRequest { code: "malformed_body", detail: error.to_string() })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What a repeat must ask exactly as the first call did: the method, the concrete path and
/// query, and the body.
fn fingerprint(request: &ServiceRequest, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [request.method().as_str(), request.path(), request.query_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(body);
    hex::encode(hash.finalize())
}

fn reused() -> ApiError {
    ApiError::Store(crate::store::StoreError::IdempotencyKeyReused(String::new()))
}

/// `body` with the route's secrets shown once set to null (as it is when not JSON).
fn without_secrets(route: &str, body: &Bytes) -> Bytes {
    let fields: Vec<&str> = SHOWN_ONCE.iter().filter(|(r, _)| *r == route).map(|(_, field)| *field).collect();
    if fields.is_empty() {
        return body.clone();
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else { return body.clone() };
    for field in fields {
        if let Some(value) = object.get_mut(field) {
            *value = Value::Null;
        }
    }
    Bytes::from(Value::Object(object).to_string())
}

fn content_type(head: &HttpResponse<()>) -> Option<String> {
    head.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from)
}

/// An answer as it is kept: status, content type and body (text).
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
}

impl Answer {
    /// Answers are kept like Stripe keeps them: successes and the client's errors, which a repeat
    /// would get again; not server errors (503 `commit_outcome_unknown` above all: its repeat is
    /// the way to learn the outcome), nor a refusal of the key itself, nor a body that is not text.
    fn worth_keeping(&self) -> bool {
        let about_the_key = serde_json::from_slice::<Value>(&self.body)
            .is_ok_and(|body| body["code"] == "idempotency_key_reused" || body["code"] == "invalid_idempotency_key");
        !self.status.is_server_error() && !about_the_key && std::str::from_utf8(&self.body).is_ok()
    }

    fn to_json(&self) -> Value {
        json!({
            "status": self.status.as_u16(),
            "content_type": self.content_type,
            "body": String::from_utf8_lossy(&self.body),
        })
    }

    fn from_json(kept: &Value) -> Option<Answer> {
        Some(Answer {
            status: StatusCode::from_u16(u16::try_from(kept["status"].as_u64()?).ok()?).ok()?,
            content_type: kept["content_type"].as_str().map(String::from),
            body: Bytes::from(kept["body"].as_str()?.to_string()),
        })
    }
}

/// The kept answer, given again.
fn replay(request: ServiceRequest, kept: &Value) -> ServiceResponse<BoxBody> {
    let Some(answer) = Answer::from_json(kept) else {
        let corrupt = crate::store::StoreError::CorruptAnswer("not an answer".into());
        return request.error_response(ApiError::Store(corrupt));
    };
    let mut response = HttpResponse::build(answer.status);
    if let Some(content_type) = &answer.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type.as_str()));
    }
    response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    request.into_response(response.body(answer.body))
}
