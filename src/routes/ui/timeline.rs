//! `/ui/timeline`: who held what when, as an SVG drawn on the server (no script): a row per grant
//! with a bar for each span in which it gave its role during the period, its revocation or expiry
//! marked. At every moment of the period the bars cover exactly the grants that the API's `as_of`
//! gives for that time, judged by the same visibility.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Duration as Span, Utc};
use serde::{Deserialize, Serialize};

use super::{
    audit::moment,
    html,
    session::{Header, Session},
    PageError,
};
use crate::{
    domain::{Grant, GrantOrigin, GrantStatus, Subject},
    projections::HeldSpan,
    store::Moment,
};

/// The most rows one page draws (the first, in grant id order).
const ROWS_SHOWN: usize = 10_000;
/// The period when none is given: the year up to now.
const DEFAULT_DAYS: i64 = 365;
/// The longest period one page draws.
const LONGEST_DAYS: i64 = 100 * 366;

// The drawing's geometry, in SVG user units (it scales to the screen's width).
const LABEL_WIDTH: i64 = 300;
const CHART_WIDTH: i64 = 700;
const ROW_HEIGHT: i64 = 22;
const AXIS_HEIGHT: i64 = 30;
const TICKS: i64 = 6;

/// The page's query, as its form sends it: empty fields filter nothing.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct TimelineQuery {
    /// This scope and everything under it.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
    /// The period's start (a date, a `datetime-local` value taken as UTC, or RFC 3339).
    #[serde(default)]
    from: String,
    /// The period's end, excluded (the same forms; now by default).
    #[serde(default)]
    until: String,
}

/// A time typed in the form, as the audit page reads one; a log position is no time here.
fn time(field: &str, text: &str) -> Result<Option<DateTime<Utc>>, PageError> {
    match moment(field, text)? {
        None => Ok(None),
        Some(Moment::Time(time)) => Ok(Some(time)),
        Some(Moment::Position(_)) => Err(PageError::BadForm(format!("{field}: a date or a time, not a log position"))),
    }
}

impl TimelineQuery {
    /// The period drawn: from before until, at most `LONGEST_DAYS` long.
    fn period(&self, now: DateTime<Utc>) -> Result<Period, PageError> {
        let until = time("until", &self.until)?.unwrap_or(now);
        let from = match time("from", &self.from)? {
            Some(from) => from,
            None => until
                .checked_sub_signed(Span::days(DEFAULT_DAYS))
                .ok_or_else(|| PageError::BadForm("until: too early for a year before it".into()))?,
        };
        if from >= until {
            return Err(PageError::BadForm("from: the period must start before it ends".into()));
        }
        if until.signed_duration_since(from) > Span::days(LONGEST_DAYS) {
            return Err(PageError::BadForm(format!("the period is longer than {} years", LONGEST_DAYS / 366)));
        }
        Ok(Period { from, until })
    }

    fn wants(&self, grant: &Grant, is_within: impl Fn(&str, &str) -> bool) -> bool {
        let user = self.user.trim();
        let role = self.role.trim();
        let scope = self.scope.trim();
        (user.is_empty() || matches!(&grant.subject, Subject::User(id) if id.as_str() == user))
            && (role.is_empty() || grant.role.as_str() == role)
            && (scope.is_empty() || is_within(grant.scope.as_str(), scope))
    }
}

#[derive(Clone, Copy)]
struct Period {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl Period {
    /// Where `at` falls on the chart, clamped to it.
    fn x(&self, at: DateTime<Utc>) -> i64 {
        let whole = self.until.signed_duration_since(self.from).num_seconds().max(1) as i128;
        let into = at.clamp(self.from, self.until).signed_duration_since(self.from).num_seconds() as i128;
        LABEL_WIDTH + (into * i128::from(CHART_WIDTH) / whole) as i64
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
}

/// One span of a grant, as drawn.
struct Bar {
    x: i64,
    width: i64,
    /// The span's own times (RFC 3339), beyond the period when it goes on before or after it.
    from: String,
    /// Empty while the grant still gives its role.
    until: String,
    title: String,
}

/// A revocation or expiry within the period.
struct Ending {
    x: i64,
    /// `revoked` or `expired`.
    kind: &'static str,
    at: String,
}

struct Row {
    grant: String,
    y: i64,
    label: String,
    /// Its events: the grant's stream on the audit page for readers, else its request's page.
    href: Option<String>,
    bars: Vec<Bar>,
    ending: Option<Ending>,
}

struct Tick {
    x: i64,
    label: String,
}

#[derive(Template)]
#[template(path = "web/timeline.html")]
struct TimelinePage {
    head: Option<Header>,
    query: TimelineQuery,
    from: String,
    until: String,
    rows: Vec<Row>,
    /// More grants matched than the page draws.
    more: bool,
    width: i64,
    height: i64,
    ticks: Vec<Tick>,
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn row(period: Period, index: usize, grant: &Grant, spans: &[HeldSpan], reads_everything: bool) -> Row {
    let holder = match &grant.subject {
        Subject::User(user) => user.to_string(),
        Subject::Team(team) => format!("team {team}"),
    };
    let label = format!("{holder} · {} @ {}", grant.role, grant.scope);
    let bars = spans
        .iter()
        .map(|span| {
            let x = period.x(span.from);
            let end = span.until.unwrap_or(period.until);
            let until = span.until.map(|until| until.to_rfc3339()).unwrap_or_default();
            let to = span.until.map_or_else(|| "now".to_string(), day);
            Bar {
                x,
                width: (period.x(end) - x).max(1),
                from: span.from.to_rfc3339(),
                until,
                title: format!("{label}: {} to {to}", day(span.from)),
            }
        })
        .collect();
    let ending = match &grant.status {
        GrantStatus::Revoked { at, .. } => Some(("revoked", *at)),
        GrantStatus::Expired { at } => Some(("expired", *at)),
        GrantStatus::Active => None,
    };
    let ending = ending.filter(|(_, at)| period.contains(*at)).map(|(kind, at)| Ending {
        x: period.x(at),
        kind,
        at: at.to_rfc3339(),
    });
    let href = match &grant.origin {
        _ if reads_everything => Some(format!("/ui/audit?stream=grant-{}&order=oldest", grant.id)),
        GrantOrigin::Request { request } => Some(format!("/ui/requests/{request}")),
        _ => None,
    };
    let y = AXIS_HEIGHT + ROW_HEIGHT * index as i64;
    Row { grant: grant.id.to_string(), y, label, href, bars, ending }
}

pub async fn timeline_page(session: Session, query: web::Query<TimelineQuery>) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let now = Utc::now();
    let period = query.period(now)?;
    let caller = &session.caller;
    let reads_everything = caller.standing()?.reads_everything();
    let viewer = caller.read(|state, _| caller.viewer(state, now))?;
    let mut held =
        caller.app().app.projections().grants_held_during(period.from, period.until, ROWS_SHOWN + 1, |model, grant| {
            let state = model.state();
            query.wants(grant, |scope, ancestor| state.is_within(scope, ancestor))
                && viewer.sees_grant(state, model.workflow(), grant)
        });
    let more = held.len() > ROWS_SHOWN;
    held.truncate(ROWS_SHOWN);
    let rows: Vec<Row> = held
        .iter()
        .enumerate()
        .map(|(index, (grant, spans))| row(period, index, grant, spans, reads_everything))
        .collect();
    let whole = period.until.signed_duration_since(period.from);
    let ticks = (0..=TICKS)
        .map(|tick| {
            let at = period.from + whole * tick as i32 / TICKS as i32;
            Tick { x: period.x(at), label: day(at) }
        })
        .collect();
    let height = AXIS_HEIGHT + ROW_HEIGHT * rows.len().max(1) as i64;
    html(TimelinePage {
        head: session.head(),
        from: period.from.format("%Y-%m-%dT%H:%M").to_string(),
        until: period.until.format("%Y-%m-%dT%H:%M").to_string(),
        query,
        rows,
        more,
        width: LABEL_WIDTH + CHART_WIDTH + 40,
        height,
        ticks,
    })
}
