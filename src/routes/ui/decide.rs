//! `/ui/decide`: the requests the user may decide, one at a time or several at once. Each
//! decision, also in a batch, is its own command through `Caller::execute`, judged like the API's.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    html,
    pages::decider_name,
    see_other,
    session::{Header, Session},
    PageError,
};
use crate::{
    domain::Command,
    routes::{
        problem::ApiError,
        shared::{parse_id, stages},
        views::RequestView,
    },
};

struct Pending {
    request: RequestView,
    /// How long it has waited, in words ("3 days").
    age: String,
    /// Who else may decide it (admins who decide only as admins marked).
    others: Vec<String>,
}

/// What became of one request of a batch.
struct Outcome {
    request: String,
    result: String,
    /// Why, when refused.
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "web/decide.html")]
struct DecidePage {
    head: Option<Header>,
    csrf: String,
    pending: Vec<Pending>,
    /// After a batch: e.g. "3 approved, 1 already decided".
    summary: Option<String>,
    outcomes: Vec<Outcome>,
    /// How long the pending requests have waited, as bars of a small chart.
    ages: Vec<AgeBar>,
}

/// One bar of the age chart: the requests that have waited between two ages.
struct AgeBar {
    label: &'static str,
    count: usize,
    /// The bar's length in the chart's units (the longest bar is `AGE_CHART_WIDTH`).
    width: usize,
    y: usize,
}

/// The age chart's buckets: up to (excluded) so many hours.
const AGE_BUCKETS: [(&str, i64); 6] = [
    ("under a day", 24),
    ("1 to 3 days", 72),
    ("3 to 7 days", 168),
    ("1 to 2 weeks", 336),
    ("2 to 4 weeks", 672),
    ("4 weeks or more", i64::MAX),
];
const AGE_CHART_WIDTH: usize = 300;
const AGE_ROW_HEIGHT: usize = 20;

fn age_bars(hours: &[i64]) -> Vec<AgeBar> {
    let mut counts = [0usize; AGE_BUCKETS.len()];
    for age in hours {
        let bucket = AGE_BUCKETS.iter().position(|(_, below)| age < below).unwrap_or(AGE_BUCKETS.len() - 1);
        counts[bucket] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    AGE_BUCKETS
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(index, ((label, _), count))| AgeBar {
            label,
            count,
            width: count * AGE_CHART_WIDTH / most,
            y: index * AGE_ROW_HEIGHT,
        })
        .collect()
}

/// "5 hours", "3 days": how long a request has waited.
fn age_in_words(hours: i64) -> String {
    match hours {
        ..=0 => "under an hour".into(),
        1 => "1 hour".into(),
        2..=47 => format!("{hours} hours"),
        _ => format!("{} days", hours / 24),
    }
}

fn decide_page(session: &Session, outcomes: Vec<Outcome>) -> Result<DecidePage, PageError> {
    let caller = &session.caller;
    let now = Utc::now();
    let pending: Vec<Pending> = caller.read(|state, workflow| {
        let mut requests: Vec<_> =
            state.pending_for(workflow, caller.user(), now).iter().filter_map(|id| state.request(id)).collect();
        requests.sort_by_key(|r| r.created_at);
        requests
            .into_iter()
            .map(|r| Pending {
                age: age_in_words(now.signed_duration_since(r.created_at).num_hours()),
                request: RequestView::new(r, stages(workflow, state, r)),
                others: state
                    .deciders_for(workflow, &r.id, now)
                    .into_iter()
                    .filter(|d| d.user != caller.user())
                    .map(decider_name)
                    .collect(),
            })
            .collect()
    })?;
    let summary = (!outcomes.is_empty()).then(|| summarize(&outcomes));
    let hours: Vec<i64> = pending.iter().map(|p| now.signed_duration_since(p.request.created_at).num_hours()).collect();
    let ages = age_bars(&hours);
    Ok(DecidePage { head: session.head(), csrf: session.csrf_token(), pending, summary, outcomes, ages })
}

/// "3 approved, 1 already decided": each result with its count, decisions taken before refusals.
fn summarize(outcomes: &[Outcome]) -> String {
    let (taken, refused): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| o.detail.is_none());
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for outcome in taken.into_iter().chain(refused) {
        match counts.iter_mut().find(|(result, _)| *result == outcome.result) {
            Some((_, count)) => *count += 1,
            None => counts.push((&outcome.result, 1)),
        }
    }
    counts.iter().map(|(result, count)| format!("{count} {result}")).collect::<Vec<_>>().join(", ")
}

pub async fn decide_list(session: Session) -> Result<HttpResponse, PageError> {
    html(decide_page(&session, Vec::new())?)
}

#[derive(Deserialize)]
struct Decision {
    decision: String,
    #[serde(default)]
    comment: String,
}

impl Decision {
    fn command(&self, request: Uuid) -> Result<Command, PageError> {
        let comment = self.comment.clone();
        match self.decision.as_str() {
            "approve" => Ok(Command::Approve { request, comment, duration: None }),
            "reject" => Ok(Command::Reject { request, reason: comment }),
            other => Err(PageError::BadForm(format!("unknown decision \"{other}\""))),
        }
    }
}

/// One request's card: approve or reject it.
pub async fn decide(session: Session, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let decision: Decision = session.form(&body)?;
    session.caller.execute(decision.command(parse_id(&id)?)?).await?;
    Ok(see_other("/ui/decide"))
}

/// The ticked requests (`request`, repeated), all approved or all rejected with one comment;
/// answers the page with what became of each.
pub async fn decide_many(mut session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let decision: Decision = session.form(&body)?;
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|error| PageError::BadForm(error.to_string()))?;
    let ticked: Vec<&str> = fields.iter().filter(|(name, _)| name == "request").map(|(_, id)| id.as_str()).collect();
    if ticked.is_empty() {
        return Err(PageError::BadForm("tick at least one request".into()));
    }
    let mut outcomes = Vec::with_capacity(ticked.len());
    for id in ticked {
        let decided = match parse_id(id) {
            Ok(request) => session.caller.execute(decision.command(request)?).await.map(|_| request),
            Err(error) => Err(error),
        };
        outcomes.push(match decided {
            Ok(request) => {
                Outcome { request: id.to_string(), result: decided_words(&session, &decision, request)?, detail: None }
            }
            Err(refusal) => Outcome {
                request: id.to_string(),
                result: refusal_words(&refusal),
                detail: Some(refusal.public_detail()),
            },
        });
    }
    session.refresh_head()?;
    html(decide_page(&session, outcomes)?)
}

/// A decision taken: approved, rejected, or an approval that leaves its stage waiting for more.
fn decided_words(session: &Session, decision: &Decision, request: Uuid) -> Result<String, ApiError> {
    let still_pending = session.caller.read(|state, _| state.request(&request).is_some_and(|r| r.is_pending()))?;
    Ok(match decision.decision.as_str() {
        "approve" if still_pending => "approval recorded (more approvals needed)",
        "approve" => "approved",
        _ => "rejected",
    }
    .to_string())
}

/// A refusal in words: its stable code, spelled out.
fn refusal_words(refusal: &ApiError) -> String {
    match refusal.code() {
        "not_pending" => "already decided".to_string(),
        code => code.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::{age_bars, age_in_words, AGE_CHART_WIDTH};

    #[test]
    fn ages_fall_in_their_buckets_and_the_longest_bar_fills_the_chart() {
        let bars = age_bars(&[0, 5, 23, 24, 71, 200, 5_000]);
        let counts: Vec<usize> = bars.iter().map(|bar| bar.count).collect();
        assert_eq!(counts, vec![3, 2, 0, 1, 0, 1]);
        assert_eq!(bars[0].width, AGE_CHART_WIDTH);
        assert_eq!(bars[1].width, AGE_CHART_WIDTH * 2 / 3);
        assert_eq!(bars[2].width, 0);
        assert!(age_bars(&[]).iter().all(|bar| bar.count == 0 && bar.width == 0));
    }

    #[test]
    fn ages_in_words() {
        assert_eq!(age_in_words(-3), "under an hour");
        assert_eq!(age_in_words(1), "1 hour");
        assert_eq!(age_in_words(30), "30 hours");
        assert_eq!(age_in_words(24 * 9 + 5), "9 days");
    }
}
