//! `/openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{catalogue, check, grants, health, log, me, metrics, outbox, requests, scopes, tokens};

#[derive(OpenApi)]
#[openapi(
    info(title = "roleledger", description = "Event-sourced role-request workflow server"),
    paths(
        health::healthz, health::readyz, metrics::metrics, openapi_json,
        me::me, me::approver_scopes,
        scopes::create, scopes::list, scopes::show, scopes::delete,
        catalogue::list_roles, catalogue::create_role, catalogue::show_role, catalogue::edit_role,
        catalogue::duplicate_role, catalogue::delete_role,
        catalogue::create_team, catalogue::list_teams, catalogue::show_team, catalogue::add_member, catalogue::remove_member,
        requests::create, requests::list, requests::show, requests::approve, requests::reject, requests::cancel,
        grants::assign, grants::list, grants::show, grants::revoke,
        check::check,
        tokens::create, tokens::list, tokens::revoke,
        outbox::list, outbox::retry,
        log::events, log::live, log::verify,
    ),
    modifiers(&BearerAuth, &CommonProblems),
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
struct CommonProblems;

impl utoipa::Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            content::Content,
            schema::{ObjectBuilder, Type},
            ResponseBuilder,
        };
        let problem = ObjectBuilder::new()
            .property("type", ObjectBuilder::new().schema_type(Type::String))
            .property("title", ObjectBuilder::new().schema_type(Type::String))
            .property("status", ObjectBuilder::new().schema_type(Type::Integer))
            .property("detail", ObjectBuilder::new().schema_type(Type::String))
            .property("code", ObjectBuilder::new().schema_type(Type::String))
            .required("type")
            .required("title")
            .required("status")
            .required("code")
            .build();
        let answer = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", Content::new(Some(problem.clone())))
                .build()
        };
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
        for (_, item) in openapi.paths.paths.iter_mut().filter(|(path, _)| path.starts_with("/api/v1/")) {
            let operations =
                [(&mut item.get, false), (&mut item.delete, true), (&mut item.post, true), (&mut item.put, true)];
            for (operation, writes) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                let extra = everywhere.iter().chain(writing.iter().filter(|_| writes));
                for (status, description) in extra {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| answer(description).into());
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
