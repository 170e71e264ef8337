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
}

fn decide_page(session: &Session, outcomes: Vec<Outcome>) -> Result<DecidePage, PageError> {
    let caller = &session.caller;
    let now = Utc::now();
    let pending = caller.read(|state, workflow| {
        let mut requests: Vec<_> =
            state.pending_for(workflow, caller.user(), now).iter().filter_map(|id| state.request(id)).collect();
        requests.sort_by_key(|r| r.created_at);
        requests
            .into_iter()
            .map(|r| Pending {
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
    Ok(DecidePage { head: session.head(), csrf: session.csrf_token(), pending, summary, outcomes })
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
