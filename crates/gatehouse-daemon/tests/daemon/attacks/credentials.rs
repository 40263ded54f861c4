//! Stolen roles: the agent token on approver routes and approver credentials (token or
//! dashboard session) on the agent's `/v1/check` are refused, and nothing is decided or recorded.

use reqwest::header;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::boundary::*;
use crate::support::{TestDaemon, allowed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_token_cannot_reach_any_approver_route() {
    let daemon = TestDaemon::start().await;
    let id = park(&daemon).await;
    let approve = json!({"decision": "approve"});
    let routes = [
        (Method::GET, "/v1/actions".to_owned(), None),
        (Method::GET, "/v1/actions?status=pending".to_owned(), None),
        (Method::GET, "/v1/disagreements".to_owned(), None),
        (
            Method::POST,
            format!("/v1/actions/{id}/decision"),
            Some(approve),
        ),
        (Method::GET, format!("/v1/actions/{id}/history"), None),
        (
            Method::POST,
            format!("/v1/actions/{id}/label"),
            Some(json!({"label": "benign"})),
        ),
        (Method::GET, "/v1/review".to_owned(), None),
        (Method::GET, "/v1/classifier".to_owned(), None),
        (Method::POST, "/v1/login-codes".to_owned(), Some(json!({}))),
        (Method::GET, "/v1/events".to_owned(), None),
        (Method::GET, "/v1/session".to_owned(), None),
    ];
    for (method, path, body) in routes {
        let mut request = daemon.http.request(method.clone(), daemon.url(&path));
        request = request.bearer_auth(&daemon.agent);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = send(request).await;
        let case = format!("{method} {path}");
        assert_refused(case, &reply, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_pending(&daemon, &id).await;
    assert_eq!(decisions(&daemon), 0, "the agent decided nothing");
    assert_eq!(
        daemon.count("SELECT count(*) FROM labels"),
        0,
        "the agent labelled nothing"
    );
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approver_credentials_cannot_check_for_an_agent() {
    let daemon = TestDaemon::start().await;
    let check = || post(&daemon, "/v1/check").json(&allowed());
    let reply = send(check().bearer_auth(&daemon.approver)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    // Nor can a dashboard session, even with its CSRF token and our own Origin.
    let session = log_in(&daemon, &daemon.login_url).await;
    let by_session = check()
        .header(header::COOKIE, &session.cookie)
        .header(CSRF, &session.csrf)
        .header(header::ORIGIN, &daemon.base);
    let reply = send(by_session).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(actions(&daemon), 0, "a refused check records nothing");
}
