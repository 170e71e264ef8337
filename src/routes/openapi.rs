//! `/openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{
    api::{catalogue, check, delegations, grants, log, me, outbox, requests, reviews, scopes, tokens, users, webhooks},
    health, metrics,
    problem::Problem,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "roleledger", description = "Event-sourced role-request workflow server"),
    paths(
        health::healthz, health::readyz, metrics::metrics, openapi_json,
        me::me, me::approver_scopes,
        users::create, users::list,
        scopes::create, scopes::list, scopes::show, scopes::delete,
        catalogue::list_roles, catalogue::create_role, catalogue::show_role, catalogue::edit_role,
        catalogue::duplicate_role, catalogue::delete_role,
        catalogue::create_team, catalogue::list_teams, catalogue::show_team, catalogue::add_member, catalogue::remove_member,
        requests::create, requests::list, requests::show, requests::approve, requests::reject, requests::cancel,
        grants::assign, grants::list, grants::show, grants::revoke, grants::extend,
        check::check,
        tokens::create, tokens::list, tokens::revoke,
        outbox::list, outbox::retry,
        log::events, log::live, log::verify,
        delegations::create, delegations::list, delegations::end,
        reviews::start, reviews::list, reviews::show, reviews::items, reviews::report, reviews::decide, reviews::close,
        log::simulate,
        me::preferences, me::set_preferences,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries, webhooks::retry,
    ),
    modifiers(&BearerAuth, &CommonProblems, &IdempotencyKeys),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or rl_ API token").build(),
            ),
        );
    }
}

/// The problems any `/api/v1` route may answer, whatever its handler says: a malformed query or
/// body (400), no valid token (401), an unreachable database (503 with Retry-After); and for the
/// routes that write, an auditor's `read_only` (403), a body over 64 KiB (413) and a rule broken (422).
/// Every error answer of the document, these and the handlers' own, then gets the one shared
/// `Problem` schema (a reference, so that generators type them all alike).
struct CommonProblems;

impl utoipa::Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            content::Content,
            header::Header,
            schema::{ObjectBuilder, Ref, Type},
            ResponseBuilder,
        };
        use utoipa::{PartialSchema, ToSchema};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(Problem::name().into_owned(), Problem::schema());
        let everywhere = [
            ("400", "malformed_body, bad_query, unsupported_media_type"),
            ("401", "unauthenticated, token_expired"),
            ("503", "database_unavailable (with Retry-After)"),
        ];
        let writing = [
            ("403", "read_only (an auditor), or not allowed"),
            ("413", "payload_too_large"),
            ("422", "valid JSON that breaks a rule (its code says which)"),
        ];
        let header = |description: &str| {
            let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
            header.description = Some(description.to_string());
            header
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            let operations =
                [(&mut item.get, false), (&mut item.delete, true), (&mut item.post, true), (&mut item.put, true)];
            for (operation, writes) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                if let Some(body) = operation.request_body.as_mut() {
                    optional_body_as_its_schema(body);
                }
                let responses = &mut operation.responses.responses;
                let extra = everywhere.iter().chain(writing.iter().filter(|_| writes)).filter(|_| api);
                for (status, description) in extra {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| ResponseBuilder::new().description(*description).build().into());
                }
                for (status, response) in responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else { continue };
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    response.content.clear();
                    response.content.insert(
                        "application/problem+json".into(),
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    );
                    match status.as_str() {
                        "401" => response.headers.insert("WWW-Authenticate".into(), header("Bearer")),
                        "503" => response.headers.insert("Retry-After".into(), header("seconds to wait")),
                        _ => None,
                    };
                }
            }
        }
    }
}

/// Every POST of the API takes an optional `Idempotency-Key` (see `routes::idempotency`): the
/// header, `Idempotent-Replayed` on the answers given again, and the codes about the key among the
/// answers that `CommonProblems` declared.
struct IdempotencyKeys;

impl utoipa::Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            header::Header,
            path::{ParameterBuilder, ParameterIn},
            schema::{ObjectBuilder, Type},
            RefOr, Required,
        };
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[!-~]+$"));
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes the call idempotent for 24 hours: a repeat with the same key (by the same caller, on the same \
                 route) gets the first answer again without acting again; secrets shown once are null in it.",
            ))
            .schema(Some(key))
            .build();
        let mut replayed = Header::new(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])));
        replayed.description = Some("the answer is the one given to an earlier call with this Idempotency-Key".into());
        let codes = [
            ("400", "invalid_idempotency_key"),
            ("422", "idempotency_key_reused (the Idempotency-Key was used for another call)"),
            ("503", "commit_outcome_unknown (repeat with the same Idempotency-Key)"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(operation) = item.post.as_mut().filter(|_| path.starts_with("/api/v1/")) else { continue };
            operation.parameters.get_or_insert_with(Vec::new).push(parameter.clone());
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else { continue };
                if status.starts_with('2') {
                    response.headers.insert("Idempotent-Replayed".into(), replayed.clone());
                }
                if let Some((_, code)) = codes.iter().find(|(with, _)| with == status) {
                    response.description = format!("{}; {code}", response.description);
                }
            }
        }
    }
}

/// A body that may be left out (`request_body = Option<Approval>`) is rendered by utoipa as
/// `oneOf: [null, Approval]`; a JSON `null` is no decision comment though, only no body is. It is
/// said as OpenAPI means it: the body's schema, with the body not required.
fn optional_body_as_its_schema(body: &mut utoipa::openapi::request_body::RequestBody) {
    use utoipa::openapi::{
        schema::{Schema, SchemaType},
        RefOr, Required, Type,
    };
    if body.required == Some(Required::True) {
        return;
    }
    let null = SchemaType::Type(Type::Null);
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else { continue };
        let is_null = |item: &&RefOr<Schema>| matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == null);
        let mut not_null = one_of.items.iter().filter(|item| !is_null(item));
        if let (Some(only), None) = (not_null.next(), not_null.next()) {
            content.schema = Some(only.clone());
        }
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi", security(()),
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
