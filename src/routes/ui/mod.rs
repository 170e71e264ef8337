//! Server-rendered web pages under `/ui`: plain HTML forms over the same callers, reads and
//! commands as the JSON API, so a rule lives in one place. A session is a cookie holding the login
//! token; every form carries a CSRF token derived from that cookie.

mod admin;
mod audit;
mod decide;
mod mail_link;
mod oidc;
mod pages;
mod reviews;
mod scope_tree;
mod session;
mod timeline;
mod webhooks;

use actix_web::{
    dev::{Service, ServiceResponse},
    http::{header, StatusCode},
    middleware::DefaultHeaders,
    web, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use askama::Template;
use serde::Deserialize;

pub use session::UiSettings;

use super::problem::ApiError;
use crate::{domain::DomainError, workflow::Duration};

/// No script at all, styles from this server only, no framing, forms posting here only.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The `/ui` routes, static paths first (as for the API); any other path under `/ui` is the 404 page.
pub fn scope() -> impl actix_web::dev::HttpServiceFactory {
    use web::{get, post, resource};
    web::scope("/ui")
        .wrap_fn(|request, service| {
            let answer = service.call(request);
            async move { answer.await.map(with_signed_in_header) }
        })
        .wrap(
            DefaultHeaders::new()
                .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((header::REFERRER_POLICY, "no-referrer"))
                .add((header::CACHE_CONTROL, "no-store")),
        )
        .service(resource("").route(get().to(pages::home)))
        .service(resource("/style.css").route(get().to(pages::stylesheet)))
        .service(resource("/signin").route(get().to(pages::signin_form)).route(post().to(pages::signin)))
        .service(resource("/signout").route(post().to(pages::signout)))
        .service(resource("/oidc/login").route(get().to(oidc::login)))
        .service(resource("/oidc/callback").route(get().to(oidc::callback)))
        .service(resource("/request").route(get().to(pages::request_form)).route(post().to(pages::request)))
        .service(resource("/decide").route(get().to(decide::decide_list)).route(post().to(decide::decide_many)))
        .service(resource("/audit").route(get().to(audit::audit_page)))
        .service(resource("/audit/verify").route(post().to(audit::verify)))
        .service(resource("/audit/live").route(get().to(audit::live_page)))
        .service(resource("/live.js").route(get().to(audit::live_script)))
        .service(resource("/admin").route(get().to(admin::admin_page)))
        .service(resource("/admin/scopes").route(post().to(admin::create_scope)))
        .service(resource("/admin/roles").route(post().to(admin::define_role)))
        .service(resource("/admin/users").route(post().to(admin::register_user)))
        .service(resource("/admin/teams").route(post().to(admin::create_team)))
        .service(resource("/admin/teams/members").route(post().to(admin::add_team_member)))
        .service(resource("/admin/tokens").route(post().to(admin::create_token)))
        .service(resource("/admin/tokens/{id}/revoke").route(post().to(admin::revoke_token)))
        .service(resource("/admin/mail/{id}/retry").route(post().to(admin::retry_mail)))
        .service(resource("/requests/{id}").route(get().to(pages::request_page)))
        .service(resource("/scopes/{id}").route(get().to(pages::scope_page)))
        .service(resource("/requests/{id}/decide").route(post().to(decide::decide)))
        .service(resource("/requests/{id}/cancel").route(post().to(pages::cancel)))
        // ----- access reviews -----
        .service(resource("/reviews").route(get().to(reviews::reviews_page)))
        .service(resource("/reviews/{id}").route(get().to(reviews::review)))
        .service(resource("/reviews/{id}/decide").route(post().to(reviews::decide_many)))
        .service(resource("/reviews/{id}/close").route(post().to(reviews::close)))
        // ----- pictures -----
        .service(resource("/timeline").route(get().to(timeline::timeline_page)))
        .service(resource("/scopes").route(get().to(scope_tree::scope_tree)))
        // ----- policy simulation -----
        .service(resource("/audit/simulate").route(get().to(audit::simulate_page)).route(post().to(audit::simulate)))
        // ----- deciding from the mail -----
        .service(resource("/m/{token}").route(get().to(mail_link::show)).route(post().to(mail_link::confirm)))
        .service(resource("/preferences").route(post().to(pages::set_preferences)))
        // ----- webhooks -----
        .service(
            resource("/admin/webhooks").route(get().to(webhooks::webhooks_page)).route(post().to(webhooks::create)),
        )
        .service(resource("/admin/webhooks/{id}/delete").route(post().to(webhooks::delete)))
        .service(resource("/admin/webhooks/{id}/deliveries/{delivery}/retry").route(post().to(webhooks::retry)))
        .default_service(web::to(unknown_page))
}

/// After a form: on to `location` (303), or, refused, the page again with the refusal's status and
/// words (`again`). Failures of the store are error pages, as everywhere.
async fn after_form<Again, Page>(
    done: Result<(), ApiError>,
    location: &str,
    again: Again,
) -> Result<HttpResponse, PageError>
where
    Again: FnOnce(StatusCode, String) -> Page,
    Page: std::future::Future<Output = Result<HttpResponse, PageError>>,
{
    match done {
        Ok(()) => Ok(see_other(location)),
        Err(error) => {
            let refused = refusal(error)?;
            again(refused.status_code(), refused.to_string()).await
        }
    }
}

/// A path under `/ui` that is no page (the header shows when the browser is signed in).
async fn unknown_page(request: HttpRequest, _session: Option<session::Session>) -> Result<HttpResponse, PageError> {
    Err(ApiError::NotFound(format!("the page {}", request.path())).into())
}

/// An error page answered to a signed-in browser gets the header its other pages have (the
/// session leaves it in the request); the error itself was judged by `PageError` alone.
fn with_signed_in_header(answer: ServiceResponse) -> ServiceResponse {
    let head = answer.request().extensions().get::<session::Header>().cloned();
    let Some(head) = head else { return answer };
    let page =
        answer.response().error().and_then(|error| error.as_error::<PageError>()).map(|error| error.page(Some(head)));
    match page {
        Some(page) => answer.into_response(page),
        None => answer,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not signed in")]
    SignedOut,
    #[error("the form's security token is missing or wrong: reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadForm(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the page cannot be rendered: {0}")]
    Render(#[from] askama::Error),
    #[error("the cookie cannot be set: {0}")]
    Cookie(#[from] actix_web::error::HttpError),
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage {
    head: Option<session::Header>,
    status: u16,
    title: String,
    detail: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::Api(error) => error.status_code(),
            PageError::Render(_) | PageError::Cookie(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.page(None)
    }
}

impl PageError {
    /// The error page, with the signed-in header when there is one.
    fn page(&self, head: Option<session::Header>) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            PageError::SignedOut => return see_other("/ui/signin"),
            PageError::Api(error) => error.public_detail(),
            PageError::Render(_) | PageError::Cookie(_) => {
                tracing::error!(error = %self, "page not answered");
                "an internal error occurred; it has been logged".into()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let page = ErrorPage { head, status: status.as_u16(), title, detail };
        match page.render() {
            Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
            Err(_) => HttpResponse::build(status).finish(),
        }
    }
}

/// A refusal (a rule the command broke), to be said next to the form that caused it; failures of
/// the store or of the session are error pages.
fn refusal(error: ApiError) -> Result<ApiError, PageError> {
    match error {
        error @ (ApiError::Store(_) | ApiError::Unauthenticated(_)) => Err(error.into()),
        refusal => Ok(refusal),
    }
}

/// An optional duration typed in a form field (`30d`, `PT12H`, `P30D`), refused as the API refuses one.
fn optional_duration(field: &str, text: &str) -> Result<Option<Duration>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        text => text.parse().map(Some).map_err(|error| DomainError::Invalid(format!("{field}: {error}")).into()),
    }
}

/// A rendered page, 200.
fn html(page: impl Template) -> Result<HttpResponse, PageError> {
    html_with(StatusCode::OK, page)
}

fn html_with(status: StatusCode, page: impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(page.render()?))
}

/// `?next=`: where a sign-in goes back to.
#[derive(Deserialize)]
pub struct ReturnQuery {
    next: Option<String>,
}

/// Where a sign-in goes back to: a path of these pages (`/ui`, `/ui/…`, `/ui?…`), else `/ui`.
/// Never another site: no scheme, no `//host`, no backslash (browsers read it as a slash), no
/// `..`, nothing but printable ASCII.
fn return_path(next: Option<&str>) -> &str {
    let of_these_pages = |path: &str| {
        (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
            && path.len() <= 2048
            && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            && !path.contains("//")
            && !path.split(['/', '?']).any(|segment| segment == "..")
    };
    next.filter(|path| of_these_pages(path)).unwrap_or("/ui")
}

/// The sign-in page, coming back to `path` afterwards.
fn signin_returning_to(path: &str) -> String {
    let query = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
    format!("/ui/signin?{query}")
}

/// After a form: the browser loads `location` with GET (so reloading does not post again).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}
