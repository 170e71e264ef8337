//! The HTTP layer's one error type, and its one mapping to `application/problem+json`.

use actix_web::{
    dev::ServiceResponse,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{header, StatusCode},
    middleware::ErrorHandlerResponse,
    HttpRequest, HttpResponse, ResponseError,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{app::AppError, auth::AuthError, domain::DomainError, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("the body is larger than the 64 KiB allowed")]
    PayloadTooLarge,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A body of a type the route does not read (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A body that is well-formed for its type but cannot be used (422), outside the domain's rules.
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
}

impl ApiError {
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden { code: "forbidden", detail: detail.into() }
    }

    pub fn bad_query(detail: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "bad_query", detail: detail.into() }
    }

    /// What the client is told: driver messages stay in the log, the client learns only that
    /// something failed.
    pub fn public_detail(&self) -> String {
        match self {
            ApiError::Store(error @ (StoreError::CommitOutcomeUnknown(_) | StoreError::IdempotencyKeyReused(_))) => {
                store_detail(error).to_string()
            }
            ApiError::Store(error) | ApiError::Unauthenticated(AuthError::Store(error)) if !error.is_unavailable() => {
                tracing::error!(%error, "store error");
                "an internal error occurred; it has been logged".to_string()
            }
            other => other.to_string(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(AuthError::Store(error)) | ApiError::Store(error) => store_code(error),
            ApiError::Unauthenticated(AuthError::Expired) => "token_expired",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden { code, .. }
            | ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Domain(error) => error.code(),
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }
}

fn store_code(error: &StoreError) -> &'static str {
    match error {
        error if error.is_unavailable() => "database_unavailable",
        StoreError::Conflict { .. } => "conflict",
        StoreError::CommitOutcomeUnknown(_) => "commit_outcome_unknown",
        StoreError::IdempotencyKeyReused(_) => "idempotency_key_reused",
        _ => "internal",
    }
}

/// What the client is told of the store's errors about idempotency keys (the store's own
/// messages name the key as the store holds it).
fn store_detail(error: &StoreError) -> &'static str {
    match error {
        StoreError::IdempotencyKeyReused(_) => {
            "this Idempotency-Key was used for another call (another body, path or query) within 24 hours"
        }
        _ => {
            "the database's answer to the commit was lost: it may have been written; repeat the call with the \
              same Idempotency-Key to learn which (it acts once)"
        }
    }
}

fn store_status(error: &StoreError) -> StatusCode {
    match error {
        error if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        // The one place where a (stream, version) clash becomes an answer.
        StoreError::Conflict { .. } => StatusCode::CONFLICT,
        StoreError::CommitOutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Rejected(refusal) => ApiError::Domain(refusal),
            AppError::ReadOnly => ApiError::Forbidden { code: "read_only", detail: error.to_string() },
            AppError::Store(error) => ApiError::Store(error),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(AuthError::Store(error)) | ApiError::Store(error) => store_status(error),
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Domain(error) => domain_status(error),
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = self.public_detail();
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response.body(problem_body(status, self.code(), &detail))
    }
}

/// Every error answer, as RFC 9457 describes it (`application/problem+json`); `/openapi.json`
/// shows this one schema for all of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem<'a> {
    /// `https://roleledger.dev/problems/{code}`
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The status's reason phrase.
    pub title: &'a str,
    pub status: u16,
    /// What went wrong, in plain words.
    pub detail: &'a str,
    /// The machine-readable cause (`not_pending`, `bad_query`, …).
    pub code: &'a str,
}

/// The body of an error answer.
pub fn problem_body(status: StatusCode, code: &str, detail: &str) -> String {
    let problem = Problem {
        problem_type: format!("https://roleledger.dev/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
    };
    serde_json::to_string(&problem).expect("a problem serializes")
}

/// Bodies that are not JSON, too large, or that do not fit the expected shape.
pub fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => {
            ApiError::BadRequest { code: "unsupported_media_type", detail: "send the body as application/json".into() }
        }
        JsonPayloadError::Deserialize(error) => {
            ApiError::BadRequest { code: "malformed_body", detail: error.to_string() }
        }
        other => ApiError::BadRequest { code: "malformed_body", detail: other.to_string() },
    };
    api_error.into()
}

pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::bad_query(error.to_string()).into()
}

pub fn path_error(error: PathError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("the path ({error})")).into()
}

/// A path served, asked with a method it does not take: the same problem shape as every error,
/// keeping the `Allow` header that actix's resource put on its empty 405 (the methods its routes
/// registered), so every resource names its methods without a list of its own.
pub fn method_not_allowed<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (request, original) = response.into_parts();
    let detail = format!("{} does not take {}", request.path(), request.method());
    let mut answer = HttpResponse::MethodNotAllowed();
    if let Some(allow) = original.headers().get(header::ALLOW) {
        answer.insert_header((header::ALLOW, allow.clone()));
    }
    let answer = answer.content_type("application/problem+json").body(problem_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &detail,
    ));
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, answer).map_into_right_body()))
}

/// Any path that is no route.
pub async fn no_route(request: HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("route {}", request.path())).error_response()
}

/// The one table from the domain's refusals to HTTP statuses (SPEC.md's status codes): 403 not
/// allowed, 404 unknown id in the path, 409 conflict with the current state, 422 a well-formed
/// body that breaks a rule.
fn domain_status(error: &DomainError) -> StatusCode {
    use DomainError as E;
    match error {
        E::NotADecider { .. } | E::SelfApproval | E::Forbidden(_) | E::NoAuthorityToDelegate | E::NotAReviewer => {
            StatusCode::FORBIDDEN
        }
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::DuplicateRequest { .. }
        | E::NotPending(_)
        | E::Expired(_)
        | E::AlreadyApproved
        | E::InUse(_)
        | E::AlreadyExists(_)
        | E::NotActive
        | E::NotDue(_)
        | E::AlreadyDecided
        | E::ReviewClosed => StatusCode::CONFLICT,
        E::WrongScopeKind { .. }
        | E::UnknownRole(_)
        | E::UnknownScope(_)
        | E::UnknownUser(_)
        | E::UnknownTeam(_)
        | E::NotRequestable(_)
        | E::IncompatibleRole { .. }
        | E::RoleLocked(_)
        | E::Invalid(_)
        | E::InvalidDuration(_)
        | E::ApprovalsRequired { .. }
        | E::DurationTooLong { .. }
        | E::ReservedId(_)
        | E::DelegationTooLong(_)
        | E::UntilInPast(_)
        | E::SelfDelegation
        | E::NoEnd
        | E::MissingAnswer(_)
        | E::UnknownQuestion { .. }
        | E::ReasonRequired
        | E::InvalidStartsAt(_)
        | E::InvalidPreferences(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::UnknownEventType(_) | E::InvalidUrl(_) | E::WebhookTargetRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_and_statuses_follow_the_spec() {
        use DomainError as E;
        let cases = [
            (
                E::DuplicateRequest { subject: String::new(), role: String::new(), scope: String::new() },
                "duplicate_request",
                409,
            ),
            (E::WrongScopeKind { role: String::new(), kind: String::new() }, "wrong_scope_kind", 422),
            (E::UnknownRole(String::new()), "unknown_role", 422),
            (E::UnknownScope(String::new()), "unknown_scope", 422),
            (E::NotRequestable(String::new()), "not_requestable", 422),
            (E::IncompatibleRole { role: String::new(), held: String::new() }, "incompatible_role", 422),
            (E::NotPending(crate::domain::RequestStatus::Approved), "not_pending", 409),
            (E::Expired(chrono::Utc::now()), "expired", 409),
            (E::NotADecider { role: String::new(), scope: String::new() }, "not_a_decider", 403),
            (E::SelfApproval, "self_approval", 403),
            (E::AlreadyApproved, "already_approved", 409),
            (E::Forbidden(String::new()), "forbidden", 403),
            (E::InUse(String::new()), "in_use", 409),
            (E::NotFound(String::new()), "not_found", 404),
            (E::Invalid(String::new()), "invalid", 422),
            (E::InvalidDuration(String::new()), "invalid_duration", 422),
            (E::ApprovalsRequired { role: String::new(), approvals: 2 }, "approvals_required", 422),
            (E::ReservedId(String::new()), "reserved_id", 422),
            (E::DelegationTooLong(chrono::Utc::now()), "delegation_too_long", 422),
            (E::UntilInPast(chrono::Utc::now()), "until_in_past", 422),
            (E::SelfDelegation, "self_delegation", 422),
            (E::NoAuthorityToDelegate, "no_authority_to_delegate", 403),
            (E::NotActive, "not_active", 409),
            (E::NoEnd, "no_end", 422),
            (E::MissingAnswer(String::new()), "missing_answer", 422),
            (E::UnknownQuestion { role: String::new(), question: String::new() }, "unknown_question", 422),
            (E::ReasonRequired, "reason_required", 422),
            (E::InvalidStartsAt(String::new()), "invalid_starts_at", 422),
            (E::NotAReviewer, "not_a_reviewer", 403),
            (E::AlreadyDecided, "already_decided", 409),
            (E::ReviewClosed, "review_closed", 409),
            (E::InvalidPreferences(String::new()), "invalid_preferences", 422),
            (E::UnknownEventType(String::new()), "unknown_event_type", 422),
            (E::InvalidUrl(String::new()), "invalid_url", 422),
            (E::WebhookTargetRefused(String::new()), "webhook_target_refused", 422),
        ];
        for (error, code, status) in cases {
            assert_eq!((error.code(), domain_status(&error).as_u16()), (code, status), "{error:?}");
        }
    }
}
