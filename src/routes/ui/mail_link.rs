//! `/ui/m/{token}`: the Approve and Reject links of a decider's mail. The token (see
//! `app::mail_links`) names the request, its recipient, the action and the link's expiry.
//! Signed out, the page shows nothing of the request and moves on to the sign-in page, which
//! comes back here. A GET never decides (mail scanners open links): it shows the request and a
//! button. The button's POST (with the session's CSRF token) decides as the recipient, with the
//! authority they have now, through the same command as the API's. A link of someone else
//! answers 403; a token this server did not sign, 404; a used or expired link shows the outcome.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{
    html_with, oidc, refusal,
    session::{self, Header, Session},
    PageError,
};
use crate::{
    app::mail_links::{LinkAction, MailLink},
    domain::{Command, RequestStatus},
    routes::{problem::ApiError, shared::visible_request, views::RequestView},
};

#[derive(Template)]
#[template(path = "web/mail_link.html")]
struct MailLinkPage {
    head: Option<Header>,
    csrf: String,
    /// The link's path (the form posts back to it).
    path: String,
    /// "approve" or "reject".
    verb: &'static str,
    request: Option<RequestView>,
    /// Why the link decides nothing now (already decided, expired), or what it just did.
    outcome: Option<String>,
    /// A refusal of the decision, said as the API says it.
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Confirmation {
    #[serde(default)]
    comment: String,
}

/// The link the token names, if this server signed it: a token it did not sign is no page.
fn opened(request: &HttpRequest, token: &str) -> Result<MailLink, PageError> {
    session::app(request)
        .mail_links
        .open(token)
        .ok_or_else(|| ApiError::NotFound("this link (it is not one this server sent)".into()).into())
}

/// The signed-in recipient of the link, or the page that goes to sign-in and back (a page that
/// moves on, not a redirect: coming from a mail, the browser sends the SameSite=Strict session
/// cookie only from a navigation that starts here).
fn recipient(
    link: &MailLink,
    path: &str,
    session: Result<Session, PageError>,
) -> Result<Result<Session, HttpResponse>, PageError> {
    let session = match session {
        Ok(session) => session,
        Err(PageError::SignedOut) => {
            let signin = super::signin_returning_to(path);
            return Ok(Err(oidc::continuation("Sign in to continue", "Sign in to decide this request", &signin)?));
        }
        Err(other) => return Err(other),
    };
    if session.caller.user() != link.recipient.as_str() {
        return Err(ApiError::forbidden("this link was sent to someone else: sign in as its recipient").into());
    }
    Ok(Ok(session))
}

/// Why the link decides nothing now, if it does not: the request is decided, or the link expired.
fn spent(session: &Session, link: &MailLink) -> Result<Option<String>, PageError> {
    let status = session.caller.read(|state, _| state.request(&link.request).map(|r| r.status))?;
    let status = status.ok_or_else(|| ApiError::NotFound(format!("request {}", link.request)))?;
    Ok(if status != RequestStatus::Pending {
        Some(format!("This request is already {status}: the link decides nothing any more."))
    } else if Utc::now() >= link.expires_at {
        Some(format!("This link expired with the request at {}: it decides nothing.", link.expires_at.to_rfc3339()))
    } else {
        None
    })
}

/// The page; `request` is shown when the recipient may see it now (else only the outcome or refusal).
fn page(
    session: &Session,
    path: String,
    link: &MailLink,
    request: Option<RequestView>,
    outcome: Option<String>,
    refusal: Option<String>,
) -> MailLinkPage {
    MailLinkPage {
        head: session.head(),
        csrf: session.csrf_token(),
        path,
        verb: link.action.verb(),
        request,
        outcome,
        refusal,
    }
}

/// `GET /ui/m/{token}`: the request and a button; nothing is decided.
pub async fn show(
    request: HttpRequest,
    token: web::Path<String>,
    session: Result<Session, PageError>,
) -> Result<HttpResponse, PageError> {
    let link = opened(&request, &token)?;
    let path = request.path().to_string();
    let session = match recipient(&link, &path, session)? {
        Ok(session) => session,
        Err(to_signin) => return Ok(to_signin),
    };
    // The request page's rule: only those who may see the request see it here.
    let shown = visible_request(&session.caller, link.request)?;
    let outcome = spent(&session, &link)?;
    html_with(StatusCode::OK, page(&session, path, &link, Some(shown), outcome, None))
}

/// `POST /ui/m/{token}`: the confirmation; decides as the API would, unless the link is spent.
pub async fn confirm(
    request: HttpRequest,
    token: web::Path<String>,
    session: Result<Session, PageError>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let link = opened(&request, &token)?;
    let path = request.path().to_string();
    let mut session = match recipient(&link, &path, session)? {
        Ok(session) => session,
        Err(to_signin) => return Ok(to_signin),
    };
    let Confirmation { comment } = session.form(&body)?;
    // Shown only while the recipient may see it: their authority may be gone since the mail.
    let shown = |session: &Session| visible_request(&session.caller, link.request).ok();
    if let Some(outcome) = spent(&session, &link)? {
        return html_with(StatusCode::CONFLICT, page(&session, path, &link, shown(&session), Some(outcome), None));
    }
    let command = match link.action {
        LinkAction::Approve => Command::Approve { request: link.request, comment, duration: None },
        LinkAction::Reject => Command::Reject { request: link.request, reason: comment },
    };
    match session.caller.execute(command).await {
        Ok(_) => {
            session.refresh_head()?;
            let done = format!("Done: you chose to {} this request.", link.action.verb());
            html_with(StatusCode::OK, page(&session, path, &link, shown(&session), Some(done), None))
        }
        Err(error) => {
            let refused = refusal(error)?;
            let status = actix_web::ResponseError::status_code(&refused);
            let detail = Some(refused.public_detail());
            html_with(status, page(&session, path, &link, shown(&session), None, detail))
        }
    }
}
