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
    modifiers(&BearerAuth),
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
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or rl_ API token").build()),
        );
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
