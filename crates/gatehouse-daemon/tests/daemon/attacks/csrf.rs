//! Cross-site request forgery: a page on another origin can send "simple" requests (`text/plain`,
//! form and multipart bodies, no preflight) carrying the person's cookie, and navigate with GET.
//! Any request with a foreign `Origin` is refused before routing, a body not sent as JSON is
//! refused, state changes only on POST, and nothing is checked, allowed or decided.

use reqwest::{Method, StatusCode, header};

use crate::boundary::*;
use crate::support::{TestDaemon, allowed};

/// A browser sends `text/plain`, form and multipart bodies cross-origin without a preflight; a
/// JSON endpoint that parsed them anyway would be open to CSRF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_sent_as_json_is_refused_and_records_nothing() {
    let daemon = TestDaemon::start().await;
    let json_text = allowed().to_string();
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (Some("text/plain"), json_text.clone()),
        (Some("text/plain; charset=utf-8"), json_text.clone()),
        (Some(form), "tool=Bash&input=ls".to_owned()),
        (Some(form), json_text.clone()),
        (Some("multipart/form-data; boundary=x"), json_text.clone()),
        (Some("application/jsonx"), json_text.clone()),
        (None, json_text.clone()),
    ];
    for (content_type, body) in cases {
        let mut request = post(&daemon, "/v1/check").bearer_auth(&daemon.agent);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let reply = send(request.body(body)).await;
        let (status, code) = (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert_refused(format!("{content_type:?}"), &reply, status, code);
    }
    assert_eq!(
        actions(&daemon),
        0,
        "no check sent as something else was recorded"
    );
    // The same body sent as JSON (any case, with parameters) is taken.
    let request = post(&daemon, "/v1/check")
        .bearer_auth(&daemon.agent)
        .header(header::CONTENT_TYPE, "Application/JSON; charset=utf-8")
        .body(json_text);
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(actions(&daemon), 1);
}

/// The bodies a cross-site form or `fetch` can send without a CORS preflight.
fn simple_bodies() -> [(&'static str, String); 4] {
    let json_text = allowed().to_string();
    [
        ("text/plain", json_text.clone()),
        (
            "application/x-www-form-urlencoded",
            "decision=approve".to_owned(),
        ),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"decision\"\r\n\r\napprove\r\n--x--\r\n"
                .to_owned(),
        ),
        // A page cannot send JSON cross-origin without a preflight, but the Origin rule holds
        // even if a browser bug let it.
        ("application/json", json_text),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_from_another_origin_is_refused_whatever_it_carries_and_changes_nothing() {
    let daemon = TestDaemon::start().await;
    let session = log_in(&daemon, &daemon.login_url).await;
    let id = park(&daemon).await;
    let decision = format!("/v1/actions/{id}/decision");
    let label = format!("/v1/actions/{id}/label");
    for origin in ["http://evil.com", "http://localhost.evil.com", "null"] {
        for (content_type, body) in simple_bodies() {
            let credentials: [(&str, RequestBuilderEdit); 3] = [
                ("the session cookie", &|r| {
                    r.header(header::COOKIE, &session.cookie)
                }),
                ("the session cookie and its CSRF token", &|r| {
                    r.header(header::COOKIE, &session.cookie)
                        .header(CSRF, &session.csrf)
                }),
                ("a leaked agent token", &|r| r.bearer_auth(&daemon.agent)),
            ];
            for (who, with) in credentials {
                for path in [
                    "/v1/check",
                    decision.as_str(),
                    label.as_str(),
                    "/v1/login-codes",
                ] {
                    let request = post(&daemon, path)
                        .header(header::ORIGIN, origin)
                        .header(header::CONTENT_TYPE, content_type)
                        .body(body.clone());
                    let reply = send(with(request)).await;
                    let case = format!("{origin} {content_type} {who} {path}");
                    assert_refused(case, &reply, StatusCode::FORBIDDEN, "forbidden_origin");
                }
            }
        }
    }
    assert_pending(&daemon, &id).await;
    assert_eq!(decisions(&daemon), 0, "nothing was decided");
    assert_eq!(
        daemon.count("SELECT count(*) FROM labels"),
        0,
        "nothing was labelled"
    );
    assert_eq!(
        actions(&daemon),
        1,
        "nothing but the parked action was recorded"
    );
    assert_eq!(allowed_actions(&daemon), 0);
}

type RequestBuilderEdit<'a> = &'a dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder;

/// A link or an `<img>` is a GET: it must never decide, check or mint a login link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_never_changes_state() {
    let daemon = TestDaemon::start().await;
    let id = park(&daemon).await;
    let cases = [
        (
            format!("/v1/actions/{id}/decision?decision=approve"),
            daemon.approver.clone(),
        ),
        (
            "/v1/check?tool=Bash&command=ls".to_owned(),
            daemon.agent.clone(),
        ),
        ("/v1/login-codes".to_owned(), daemon.approver.clone()),
    ];
    for (path, token) in &cases {
        for method in [Method::GET, Method::HEAD] {
            let request = daemon.http.request(method.clone(), daemon.url(path));
            let reply = send(request.bearer_auth(token)).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if method == Method::GET {
                let (status, code) = (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
                assert_refused(format!("GET {path}"), &reply, status, code);
            }
        }
    }
    assert_pending(&daemon, &id).await;
    assert_eq!(decisions(&daemon), 0);
    assert_eq!(actions(&daemon), 1);
}
