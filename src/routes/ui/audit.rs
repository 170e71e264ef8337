//! `/ui/audit`, for auditors and admins (as the API's log routes): the log filtered and paged
//! (the API's event pages, also newest first), the grants as they stood at a moment (the API's
//! `as_of`), the log's verification on demand, the live view (one same-origin script on the
//! live tail), and `/ui/audit/simulate`: a candidate workflow judged against the recorded history
//! (the API's `POST /audit/simulate`).

use actix_web::{http::header, web, HttpResponse};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use strum::VariantNames;

use super::{
    html,
    pages::{Empty, Step},
    session::{Header, Session},
    PageError,
};
use crate::{
    app::simulate::{simulate as simulate_log, Simulated},
    domain::{Event, Subject, UserId},
    routes::{
        problem::ApiError,
        shared::visible_grants_as_of,
        shared::{events_page, require_reader, Order},
        views::GrantView,
    },
    store::{EventSelection, Moment, VerifyReport},
    workflow::Workflow,
};

/// Events per page.
const EVENTS_SHOWN: usize = 50;
/// How many of the grants as of a moment the page shows.
const GRANTS_SHOWN: usize = 500;

/// The page's query, as its forms send it: empty fields filter nothing. Times are UTC, as a
/// `datetime-local` field gives them (`2026-01-31T09:30[:15]`), or RFC 3339, or log positions.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    /// `newest` (the default) or `oldest` first.
    #[serde(default)]
    order: String,
    /// Where the page starts: after this position (oldest first) or before it (newest first).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
    /// The moment of "grants as of".
    #[serde(default)]
    as_of: String,
    /// Only this user's grants as of then (the API's `as_of` with `user=`).
    #[serde(default)]
    holder: String,
}

/// A field's text, or nothing when left empty.
fn filled(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|text| !text.is_empty())
}

/// A moment typed in a form: a `datetime-local` value or a date taken as UTC, an RFC 3339 time,
/// or a position.
pub(super) fn moment(field: &str, text: &str) -> Result<Option<Moment>, PageError> {
    let Some(text) = filled(text) else { return Ok(None) };
    let local =
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"].iter().find_map(|f| NaiveDateTime::parse_from_str(&text, f).ok());
    let day = || NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok().and_then(|day| day.and_hms_opt(0, 0, 0));
    match local.or_else(day) {
        Some(local) => Ok(Some(Moment::Time(local.and_utc()))),
        None => text.parse().map(Some).map_err(|error| PageError::BadForm(format!("{field}: {error}"))),
    }
}

impl AuditQuery {
    fn order(&self) -> Result<Order, PageError> {
        match self.order.as_str() {
            "" | "newest" => Ok(Order::NewestFirst),
            "oldest" => Ok(Order::OldestFirst),
            other => Err(PageError::BadForm(format!("order: \"{other}\" is neither newest nor oldest"))),
        }
    }

    fn cursor(&self) -> Result<Option<i64>, PageError> {
        filled(&self.cursor)
            .map(|cursor| cursor.parse().map_err(|_| PageError::BadForm("cursor: not a log position".into())))
            .transpose()
    }

    fn selection(&self) -> Result<EventSelection, PageError> {
        Ok(EventSelection {
            after: 0,
            from: moment("from", &self.from)?,
            until: moment("until", &self.until)?,
            stream: filled(&self.stream),
            event_type: filled(&self.event_type),
            actor: filled(&self.actor),
        })
    }

    /// The address of the page that continues this one.
    fn continued_at(&self, cursor: i64) -> String {
        let next = AuditQuery { cursor: cursor.to_string(), ..self.clone() };
        format!("/ui/audit?{}", serde_urlencoded::to_string(&next).unwrap_or_default())
    }
}

#[derive(Template)]
#[template(path = "web/audit.html")]
struct AuditPage {
    head: Option<Header>,
    csrf: String,
    query: AuditQuery,
    newest_first: bool,
    events: Vec<Step>,
    /// The next page's address, if the selection goes on.
    more: Option<String>,
    /// The grants as they stood at `query.as_of`, when one was given (the first `GRANTS_SHOWN`).
    grants_as_of: Option<Vec<GrantView>>,
    /// Whether more grants stood then than are shown.
    more_grants: bool,
    verified: Option<VerifyReport>,
}

async fn audit_answer(
    session: &Session,
    query: AuditQuery,
    verified: Option<VerifyReport>,
) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    require_reader(caller)?;
    let order = query.order()?;
    let page = events_page(&caller.app().store, &query.selection()?, EVENTS_SHOWN, order, query.cursor()?).await?;
    let (grants_as_of, more_grants) = match moment("as of", &query.as_of)? {
        Some(moment) => {
            let holder = filled(&query.holder).map(|holder| Subject::User(UserId::known(holder)));
            let mut grants =
                visible_grants_as_of(caller, moment, holder.as_ref(), None, GRANTS_SHOWN + 1, |_| true).await?;
            let more = grants.len() > GRANTS_SHOWN;
            grants.truncate(GRANTS_SHOWN);
            (Some(grants), more)
        }
        None => (None, false),
    };
    html(AuditPage {
        head: session.head(),
        csrf: session.csrf_token(),
        newest_first: order == Order::NewestFirst,
        events: caller.read(|state, _| page.items.iter().map(|event| Step::new(state, event)).collect())?,
        more: page.next.map(|cursor| query.continued_at(cursor)),
        query,
        grants_as_of,
        more_grants,
        verified,
    })
}

pub async fn audit_page(session: Session, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    audit_answer(&session, query.into_inner(), None).await
}

/// Verifies the log on demand (it reads the whole log, so not on every load); a POST so that a
/// link or a prefetch cannot start it.
pub async fn verify(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    session.form::<Empty>(&body)?;
    require_reader(&session.caller)?;
    let report = session.caller.app().app.verify().await.map_err(ApiError::from)?;
    audit_answer(&session, AuditQuery::default(), Some(report)).await
}

/// The live view's page may run one script, this server's `/ui/live.js`; nothing inline.
const LIVE_CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "web/live.html")]
struct LivePage {
    head: Option<Header>,
    /// Every event type, for the script to listen to (server-sent events are named by type).
    types: String,
}

/// `/ui/audit/live`: the log as it is written, for auditors and admins.
pub async fn live_page(session: Session) -> Result<HttpResponse, PageError> {
    require_reader(&session.caller)?;
    let page = LivePage { head: session.head(), types: Event::VARIANTS.join(" ") };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, LIVE_CONTENT_SECURITY_POLICY))
        .body(page.render()?))
}

pub async fn live_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../../../templates/web/live.js"))
}

#[derive(Default, Deserialize)]
struct SimulateForm {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    until: String,
}

#[derive(Template)]
#[template(path = "web/simulate.html")]
struct SimulatePage {
    head: Option<Header>,
    csrf: String,
    workflow: String,
    until: String,
    /// Why the candidate (or the moment) cannot be used, with the candidate's line.
    problem: Option<String>,
    simulated: Option<Simulated>,
}

pub async fn simulate_page(session: Session) -> Result<HttpResponse, PageError> {
    require_reader(&session.caller)?;
    html(SimulatePage {
        head: session.head(),
        csrf: session.csrf_token(),
        workflow: String::new(),
        until: String::new(),
        problem: None,
        simulated: None,
    })
}

/// Runs the simulation (it reads the whole log, so a POST: a link or a prefetch cannot start it);
/// a candidate that does not load is shown with its line, beside the text to correct.
pub async fn simulate(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: SimulateForm = session.form(&body)?;
    require_reader(&session.caller)?;
    let until = moment("until", &form.until)?;
    let (problem, simulated) = match Workflow::from_str(&form.workflow, "candidate.toml") {
        Err(error) => (Some(error.to_string()), None),
        Ok(candidate) => {
            let app = &session.caller.app().app;
            let current = app.read_model(|model| model.workflow().clone());
            let simulated = simulate_log(app.store(), &current, &candidate, until).await.map_err(ApiError::from)?;
            (None, Some(simulated))
        }
    };
    html(SimulatePage {
        head: session.head(),
        csrf: session.csrf_token(),
        workflow: form.workflow,
        until: form.until,
        problem,
        simulated,
    })
}
