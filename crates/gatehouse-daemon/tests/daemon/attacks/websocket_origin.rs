//! Cross-site WebSocket hijacking: a page on another origin opens `/v1/events` with the person's
//! cookie. A handshake from a foreign Origin, or a cookie handshake with no Origin (browsers always
//! send one), is refused; bearer clients (the CLI) send none and are accepted.

use serde_json::Value;

use crate::boundary::*;
use crate::support::TestDaemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_takes_approvers_from_our_own_origin_only() {
    let daemon = TestDaemon::start().await;
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    let approver = bearer(&daemon.approver);
    let other_port = format!("http://127.0.0.1:{}", daemon.port.wrapping_add(1));
    let refused: Vec<(&str, Headers, u16, &str)> = vec![
        ("no credentials", vec![], 401, "unauthorized"),
        ("wrong token", vec![bearer("nope")], 401, "unauthorized"),
        ("agent token", vec![bearer(&daemon.agent)], 403, "forbidden"),
        (
            "foreign origin",
            vec![approver.clone(), ("origin", "http://evil.com".into())],
            403,
            "forbidden_origin",
        ),
        (
            "our host on another port",
            vec![approver.clone(), ("origin", other_port)],
            403,
            "forbidden_origin",
        ),
    ];
    for (case, headers, status, code) in refused {
        let refusal = ws_connect(&daemon, headers).await;
        let (got, body) = refusal.expect_err(case);
        assert_eq!(got, status, "{case}: {body}");
        assert_envelope(&body);
        assert_eq!(body["error"]["code"], code, "{case}");
    }
    // A dashboard session from a foreign origin is refused too.
    let session = log_in(&daemon, &daemon.login_url).await;
    let cookie = ("cookie", session.cookie);
    let evil = vec![cookie.clone(), ("origin", "http://evil.com".into())];
    let (status, body) = ws_connect(&daemon, evil).await.expect_err("foreign");
    assert_eq!(status, 403, "{body}");

    // From our own origin, the approver token and the session are accepted and get events.
    let ours = ("origin", daemon.base.clone());
    let mut by_token = ws_connect(&daemon, vec![approver, ours.clone()])
        .await
        .expect("the approver token from our origin is accepted");
    let mut by_session = ws_connect(&daemon, vec![cookie, ours])
        .await
        .expect("a session from our origin is accepted");
    let id = park(&daemon).await;
    for socket in [&mut by_token, &mut by_session] {
        let event = next_event(socket).await;
        assert_eq!(event["type"], "action.pending", "{event}");
        assert_eq!(event["action"]["action_id"], id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_handshake_without_our_origin_is_refused() {
    let daemon = TestDaemon::start().await;
    let session = log_in(&daemon, &daemon.login_url).await;
    let cookie = ("cookie", session.cookie.clone());
    let refused: Vec<(&str, Headers)> = vec![
        ("cookie, no Origin", vec![cookie.clone()]),
        (
            "cookie, null Origin",
            vec![cookie.clone(), ("origin", "null".into())],
        ),
        (
            "cookie, lookalike Origin",
            vec![
                cookie.clone(),
                (
                    "origin",
                    format!("http://127.0.0.1:{}.evil.com", daemon.port),
                ),
            ],
        ),
    ];
    for (case, headers) in refused {
        let (status, body) = ws_connect(&daemon, headers).await.expect_err(case);
        assert_eq!(status, 403, "{case}: {body}");
        assert_eq!(body["error"]["code"], "forbidden_origin", "{case}: {body}");
    }
    // The approver token without an Origin is a CLI (`gatehouse ledger --follow`): accepted.
    let bearer = ("authorization", format!("Bearer {}", daemon.approver));
    let mut socket = ws_connect(&daemon, vec![bearer])
        .await
        .expect("bearer accepted");
    let id = park(&daemon).await;
    let event: Value = next_event(&mut socket).await;
    assert_eq!(event["action"]["action_id"], id.as_str(), "{event}");
}
