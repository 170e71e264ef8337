//! Many clients deciding the same requests at once: exactly one decision per request wins, every
//! other answer is 409 `not_pending`, and the log holds one decision per request.

use futures_util::future::join_all;
use serde_json::json;

use crate::{helpers::spawn_app, support::Backend};

const REQUESTS: usize = 50;
const DECIDERS: usize = 4;

async fn two_hundred_clients_decide_fifty_requests_once_each(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.egi_tree("root").await;
    let deciders: Vec<String> = (0..DECIDERS).map(|n| format!("manager{n}")).collect();
    for decider in &deciders {
        app.assign("root", decider, "site-operations-manager", "SITE_A").await;
    }
    let mut ids = Vec::new();
    for n in 0..REQUESTS {
        let user = format!("asker{n}");
        app.sign_in(&user).await;
        let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "r"});
        let answer = app.post_as(&user, "/api/v1/requests", body).await;
        assert_eq!(answer.status, 201);
        ids.push(answer.body["id"].as_str().unwrap().to_string());
    }
    // Every decider approves or rejects every request, all at once: 200 calls.
    let app = &app;
    let calls = ids.iter().flat_map(|id| {
        deciders.iter().enumerate().map(move |(n, decider)| {
            let (verb, body) =
                if n % 2 == 0 { ("approve", json!({"comment": "ok"})) } else { ("reject", json!({"reason": "no"})) };
            let path = format!("/api/v1/requests/{id}/{verb}");
            async move { (id.clone(), app.post_as(decider, &path, body).await) }
        })
    });
    let answers = join_all(calls).await;
    assert_eq!(answers.len(), REQUESTS * DECIDERS);
    for id in &ids {
        let mine: Vec<_> = answers.iter().filter(|(request, _)| request == id).map(|(_, answer)| answer).collect();
        let won = mine.iter().filter(|a| a.status == 200).count();
        assert_eq!(
            won,
            1,
            "request {id}: {:?}",
            mine.iter().map(|a| (a.status, a.code().to_string())).collect::<Vec<_>>()
        );
        for lost in mine.iter().filter(|a| a.status != 200) {
            lost.assert_problem(409, "not_pending");
        }
        let events = app.store.read_stream(&format!("request-{id}"), 1).await.unwrap();
        let decisions =
            events.iter().filter(|e| e.event_type == "RequestApproved" || e.event_type == "RequestRejected").count();
        assert_eq!(decisions, 1, "one decision in the log for {id}");
    }
    let grants = app.get_as("root", "/api/v1/grants?role=site-administrator&limit=1000").await;
    let approved = answers.iter().filter(|(_, a)| a.status == 200 && a.body["status"] == "approved").count();
    assert_eq!(grants.body["items"].as_array().unwrap().len(), approved, "one grant per approval, none twice");
}

on_both_backends!(two_hundred_clients_decide_fifty_requests_once_each);
