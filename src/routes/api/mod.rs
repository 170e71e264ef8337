//! The JSON API under `/api/v1`, one file per feature of SPEC.md's table.

pub(super) mod catalogue;
pub(super) mod check;
pub(super) mod delegations;
pub(super) mod grants;
pub(super) mod log;
pub(super) mod me;
pub(super) mod outbox;
pub(super) mod requests;
pub(super) mod reviews;
pub(super) mod scopes;
pub(super) mod tokens;
pub(super) mod users;
pub(super) mod webhooks;

use actix_web::web;

use super::problem;

/// The `/api/v1` routes, one resource per path. Static paths come first: actix tries resources in
/// order, and each path with a `{segment}` costs a regex match (the `check` route is the hot one).
pub fn configure(config: &mut web::ServiceConfig) {
    use web::{delete, get, post, put, resource};
    config
        .service(resource("/check").route(get().to(check::check)))
        .service(resource("/me").route(get().to(me::me)))
        .service(resource("/scopes").route(post().to(scopes::create)).route(get().to(scopes::list)))
        .service(resource("/roles").route(get().to(catalogue::list_roles)).route(post().to(catalogue::create_role)))
        .service(resource("/teams").route(post().to(catalogue::create_team)).route(get().to(catalogue::list_teams)))
        .service(resource("/requests").route(post().to(requests::create)).route(get().to(requests::list)))
        .service(resource("/grants").route(post().to(grants::assign)).route(get().to(grants::list)))
        .service(resource("/tokens").route(post().to(tokens::create)).route(get().to(tokens::list)))
        .service(resource("/users").route(post().to(users::create)).route(get().to(users::list)))
        .service(resource("/outbox").route(get().to(outbox::list)))
        .service(resource("/delegations").route(post().to(delegations::create)).route(get().to(delegations::list)))
        .service(resource("/events").route(get().to(log::events)))
        .service(resource("/events/live").route(get().to(log::live)))
        .service(resource("/audit/verify").route(get().to(log::verify)))
        .service(resource("/users/{id}/approver-scopes").route(get().to(me::approver_scopes)))
        .service(resource("/scopes/{id}").route(get().to(scopes::show)).route(delete().to(scopes::delete)))
        .service(
            resource("/roles/{id}")
                .route(get().to(catalogue::show_role))
                .route(put().to(catalogue::edit_role))
                .route(delete().to(catalogue::delete_role)),
        )
        .service(resource("/roles/{id}/duplicate").route(post().to(catalogue::duplicate_role)))
        .service(resource("/teams/{id}").route(get().to(catalogue::show_team)))
        .service(
            resource("/teams/{id}/members/{user}")
                .route(put().to(catalogue::add_member))
                .route(delete().to(catalogue::remove_member)),
        )
        .service(resource("/requests/{id}").route(get().to(requests::show)))
        .service(resource("/requests/{id}/approve").route(post().to(requests::approve)))
        .service(resource("/requests/{id}/reject").route(post().to(requests::reject)))
        .service(resource("/requests/{id}/cancel").route(post().to(requests::cancel)))
        .service(resource("/grants/{id}").route(get().to(grants::show)))
        .service(resource("/grants/{id}/revoke").route(post().to(grants::revoke)))
        .service(resource("/grants/{id}/extend").route(post().to(grants::extend)))
        .service(resource("/tokens/{id}").route(delete().to(tokens::revoke)))
        .service(resource("/outbox/{id}/retry").route(post().to(outbox::retry)))
        .service(resource("/delegations/{id}").route(delete().to(delegations::end)))
        // ----- access reviews -----
        .service(resource("/reviews").route(post().to(reviews::start)).route(get().to(reviews::list)))
        .service(resource("/reviews/{id}").route(get().to(reviews::show)))
        .service(resource("/reviews/{id}/items").route(get().to(reviews::items)))
        .service(resource("/reviews/{id}/report").route(get().to(reviews::report)))
        .service(resource("/reviews/{id}/close").route(post().to(reviews::close)))
        .service(resource("/reviews/{id}/items/{item}/decide").route(post().to(reviews::decide)))
        // ----- policy simulation -----
        .service(resource("/audit/simulate").route(post().to(log::simulate)))
        // ----- mail preferences -----
        .service(resource("/me/preferences").route(get().to(me::preferences)).route(put().to(me::set_preferences)))
        // ----- webhooks -----
        .service(resource("/webhooks").route(post().to(webhooks::create)).route(get().to(webhooks::list)))
        .service(resource("/webhooks/{id}").route(delete().to(webhooks::delete)))
        .service(resource("/webhooks/{id}/deliveries").route(get().to(webhooks::deliveries)))
        .service(resource("/webhooks/{id}/deliveries/{delivery}/retry").route(post().to(webhooks::retry)));
}

/// A JSON body that may be left out (then its default): decisions without a comment.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, problem::ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| problem::ApiError::BadRequest { code: "malformed_body", detail: error.to_string() })
}
