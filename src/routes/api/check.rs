//! `GET /check`: may U do P on S? Answered from memory, with the grants that justify a yes.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::{caller::Caller, problem::ApiError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    user: String,
    permission: String,
    scope: String,
}

/// Serialized straight from the struct: this is the hottest route, and a `Value` costs a map.
#[derive(Serialize, ToSchema)]
#[schema(as = CheckAnswer)]
struct Answer {
    allowed: bool,
    /// The grants that give the permission (empty when not allowed).
    via: Vec<Via>,
}

/// A grant that gives the permission; `team` when it is held through a team.
#[derive(Serialize, ToSchema)]
#[schema(as = CheckVia)]
struct Via {
    grant: String,
    role: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/check", tag = "check", operation_id = "check",
    params(("user" = String, Query,), ("permission" = String, Query, description = "a dotted permission, optionally :qualified"), ("scope" = String, Query,)),
    responses((status = 200, description = "whether the user may, and through which grants", body = Answer), (status = 400, description = "a parameter is missing"), (status = 403, description = "not an API token, an admin, an auditor or the user themself")))]
pub async fn check(caller: Caller, query: web::Query<CheckQuery>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let answer = caller.read(|state, _| {
        let asks_for_self = query.user == caller.user();
        if !asks_for_self && !caller.via_api_token() && !caller.standing_in(state, now).reads_everything() {
            return Err(ApiError::forbidden("checks for other users are for API tokens, auditors and admins"));
        }
        let result = state.check(&query.user, &query.permission, &query.scope, now);
        let via: Vec<Via> = result
            .via
            .iter()
            .filter_map(|id| state.grant(id))
            .map(|g| Via {
                grant: g.id.to_string(),
                role: g.role.clone(),
                scope: g.scope.to_string(),
                team: match &g.subject {
                    crate::domain::Subject::Team(team) => Some(team.to_string()),
                    crate::domain::Subject::User(_) => None,
                },
            })
            .collect();
        Ok(Answer { allowed: result.allowed, via })
    })??;
    Ok(HttpResponse::Ok().json(answer))
}
