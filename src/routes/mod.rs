//! The HTTP adapter: every route of SPEC.md's API table, around the domain and the store.

mod caller;
mod catalogue;
mod check;
pub mod health;
mod log;
mod me;
pub mod metrics;
pub mod openapi;
mod paging;
pub mod problem;
mod requests;
mod grants;
mod scopes;
mod tokens;
mod views;

use actix_web::web;

pub use caller::RequestId;

use crate::{auth::Authenticator, store::EventStore};

/// What every handler shares.
pub struct AppState {
    pub store: EventStore,
    pub auth: Authenticator,
    pub metrics: metrics::Metrics,
}

/// The `/api/v1` routes.
pub fn api(config: &mut web::ServiceConfig) {
    config
        .route("/me", web::get().to(me::me))
        .route("/users/{id}/approver-scopes", web::get().to(me::approver_scopes))
        .route("/scopes", web::post().to(scopes::create))
        .route("/scopes", web::get().to(scopes::list))
        .route("/scopes/{id}", web::get().to(scopes::show))
        .route("/scopes/{id}", web::delete().to(scopes::delete))
        .route("/roles", web::get().to(catalogue::list_roles))
        .route("/roles", web::post().to(catalogue::create_role))
        .route("/roles/{id}", web::get().to(catalogue::show_role))
        .route("/roles/{id}", web::put().to(catalogue::edit_role))
        .route("/roles/{id}", web::delete().to(catalogue::delete_role))
        .route("/roles/{id}/duplicate", web::post().to(catalogue::duplicate_role))
        .route("/teams", web::post().to(catalogue::create_team))
        .route("/teams", web::get().to(catalogue::list_teams))
        .route("/teams/{id}", web::get().to(catalogue::show_team))
        .route("/teams/{id}/members/{user}", web::put().to(catalogue::add_member))
        .route("/teams/{id}/members/{user}", web::delete().to(catalogue::remove_member))
        .route("/requests", web::post().to(requests::create))
        .route("/requests", web::get().to(requests::list))
        .route("/requests/{id}", web::get().to(requests::show))
        .route("/requests/{id}/approve", web::post().to(requests::approve))
        .route("/requests/{id}/reject", web::post().to(requests::reject))
        .route("/requests/{id}/cancel", web::post().to(requests::cancel))
        .route("/grants", web::post().to(grants::assign))
        .route("/grants", web::get().to(grants::list))
        .route("/grants/{id}", web::get().to(grants::show))
        .route("/grants/{id}/revoke", web::post().to(grants::revoke))
        .route("/check", web::get().to(check::check))
        .route("/tokens", web::post().to(tokens::create))
        .route("/tokens", web::get().to(tokens::list))
        .route("/tokens/{id}", web::delete().to(tokens::revoke))
        .route("/events", web::get().to(log::events))
        .route("/events/live", web::get().to(log::live))
        .route("/audit/verify", web::get().to(log::verify));
}

/// A JSON body that may be left out (then its default): decisions without a comment.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, problem::ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| problem::ApiError::BadRequest { code: "malformed_body", detail: error.to_string() })
}
