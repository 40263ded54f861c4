//! Remote approvals (docs/APPROVALS.md, "Remote approvals"). There is no network here, so ntfy
//! and the webhook receiver are fakes: one axum server on loopback that takes ntfy's JSON
//! publish (`POST /`) and the signed webhook (`POST /hook`) and hands each request to the test,
//! which verifies the webhook's signature as a receiver would. The links they carry are then
//! used against the real daemon: a confirmation page, one decision, replay / expiry / withdrawal
//! refused, and with person presence on a link alone decides nothing.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use gatehouse_daemon::notify::webhook;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{Setup, TestDaemon, allowed, paused};

const SECRET: &str = "webhook-test-secret";

/// One request the fake receiver got: which endpoint, its headers, its body.
struct Received {
    path: &'static str,
    headers: HeaderMap,
    body: Bytes,
}

/// The fake ntfy server and webhook receiver on an ephemeral loopback port.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, received) = mpsc::unbounded_channel();
    let ntfy = |State(s): State<mpsc::UnboundedSender<Received>>,
                headers: HeaderMap,
                body: Bytes| async move {
        let _ = s.send(Received {
            path: "/",
            headers,
            body,
        });
        "{}"
    };
    let hook = |State(s): State<mpsc::UnboundedSender<Received>>,
                headers: HeaderMap,
                body: Bytes| async move {
        let _ = s.send(Received {
            path: "/hook",
            headers,
            body,
        });
        "ok"
    };
    let app = Router::new()
        .route("/", post(ntfy))
        .route("/hook", post(hook))
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

async fn next(received: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a notification arrives")
        .expect("the receiver runs")
}

/// A daemon announcing to the fake receiver; the webhook secret in a file.
async fn start(
    receiver: &str,
    edit: impl FnOnce(&mut gatehouse_daemon::Config),
) -> (TestDaemon, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let receiver = receiver.to_owned();
    let daemon = Setup::default()
        .config(move |config| {
            config.notify.ntfy.server = receiver.clone();
            config.notify.ntfy.topic = "gatehouse-test".into();
            config.notify.webhook.url = format!("{receiver}/hook");
            config.notify.webhook.secret_file = Some(secret_file);
            edit(config);
        })
        .start()
        .await;
    (daemon, secrets)
}

/// The ntfy message and the (verified) webhook body for one pause, whichever came first.
async fn both(received: &mut mpsc::UnboundedReceiver<Received>) -> (Value, Value) {
    let (mut ntfy, mut hook) = (None, None);
    while ntfy.is_none() || hook.is_none() {
        let r = next(received).await;
        if r.path == "/" {
            ntfy = Some(serde_json::from_slice::<Value>(&r.body).unwrap());
        } else {
            let timestamp: i64 = r.headers[webhook::TIMESTAMP_HEADER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let signature = r.headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
            let now = gatehouse_daemon::now_ms() / 1000;
            assert!(
                webhook::verify(SECRET.as_bytes(), timestamp, &r.body, signature, now, 300),
                "the webhook is signed with the shared secret over timestamp.body"
            );
            assert!(
                !webhook::verify(b"another secret", timestamp, &r.body, signature, now, 300),
                "a receiver with another secret rejects it"
            );
            assert!(
                !webhook::verify(
                    SECRET.as_bytes(),
                    timestamp,
                    &r.body,
                    signature,
                    now + 3_600,
                    300
                ),
                "a replay outside the window is rejected"
            );
            hook = Some(serde_json::from_slice::<Value>(&r.body).unwrap());
        }
    }
    (ntfy.unwrap(), hook.unwrap())
}

async fn paused_id(daemon: &TestDaemon) -> String {
    let (status, body) = daemon.check(paused(0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pending", "{body}");
    body["action_id"].as_str().unwrap().to_owned()
}

async fn get_page(daemon: &TestDaemon, url: &str) -> (StatusCode, String) {
    let response = daemon.http.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn confirm(daemon: &TestDaemon, url: &str, body: Value) -> (StatusCode, Value) {
    let response = daemon.http.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_pause_reaches_ntfy_and_the_webhook_and_its_link_decides_once_after_a_confirmation() {
    let (base, mut received) = receiver().await;
    let (daemon, _secrets) = start(&base, |_| {}).await;
    let id = paused_id(&daemon).await;
    let (ntfy, hook) = both(&mut received).await;

    assert_eq!(ntfy["topic"], "gatehouse-test");
    assert!(
        ntfy["message"]
            .as_str()
            .unwrap()
            .contains("git push origin main"),
        "{ntfy}"
    );
    let buttons = ntfy["actions"].as_array().unwrap();
    assert_eq!(buttons.len(), 2, "{ntfy}");
    assert_eq!(hook["type"], "action.pending");
    let pause = &hook["pause"];
    assert_eq!(pause["action_id"], id.as_str());
    assert_eq!(pause["input"]["command"], "git push origin main");
    let approve = pause["approve_url"].as_str().unwrap().to_owned();
    let deny = pause["deny_url"].as_str().unwrap().to_owned();
    assert_eq!(
        buttons[0]["url"],
        approve.as_str(),
        "both channels carry the same links"
    );
    assert_eq!(buttons[1]["url"], deny.as_str());
    assert!(
        !hook.to_string().contains(SECRET),
        "the secret is never in a notification"
    );

    // The link opens a confirmation page showing the action; opening it decides nothing.
    let (status, html) = get_page(&daemon, &approve).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("git push origin main") && html.contains(&id),
        "{html}"
    );
    assert!(html.contains("data-decision=\"approve\""));
    assert_eq!(daemon.action(&id).await["verdict"], "pending");

    // A link cannot carry an edited input (nor any other field).
    let (status, body) = confirm(
        &daemon,
        &approve,
        json!({"input": {"command": "git push --force"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(daemon.action(&id).await["verdict"], "pending");

    let (status, body) = confirm(&daemon, &approve, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "allow");
    assert_eq!(
        body["decision"]["action_hash"],
        daemon.action(&id).await["action_hash"]
    );

    // Replayed: refused. The other channel's link is withdrawn: "already decided".
    let (status, body) = confirm(&daemon, &approve, json!({})).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, html) = get_page(&daemon, &deny).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("already decided"), "{html}");
    let (status, _) = confirm(&daemon, &deny, json!({})).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(daemon.action(&id).await["verdict"], "allow");
    // A guessed link is refused too.
    let (status, _) = get_page(&daemon, &daemon.url("/confirm/not-a-link")).await;
    assert_eq!(status, StatusCode::GONE);

    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("gatehouse_notify_sent_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_notify_failed_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_decision_elsewhere_withdraws_the_links() {
    let (base, mut received) = receiver().await;
    let (daemon, _secrets) = start(&base, |_| {}).await;
    let id = paused_id(&daemon).await;
    let (_, hook) = both(&mut received).await;
    let (status, _) = daemon.decide(&id, "deny").await;
    assert_eq!(status, StatusCode::OK);
    let approve = hook["pause"]["approve_url"].as_str().unwrap();
    let (status, body) = confirm(&daemon, approve, json!({})).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(daemon.action(&id).await["verdict"], "reject");
}

#[tokio::test]
async fn with_person_presence_on_a_link_alone_decides_nothing() {
    let (base, mut received) = receiver().await;
    let (daemon, _secrets) = start(&base, |config| {
        config.approvals.presence = "webauthn".into()
    })
    .await;
    let id = paused_id(&daemon).await;
    let (_, hook) = both(&mut received).await;
    let approve = hook["pause"]["approve_url"].as_str().unwrap();
    let (status, html) = get_page(&daemon, approve).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-presence=\"webauthn\""), "{html}");
    let (status, body) = confirm(&daemon, approve, json!({})).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(
        body["error"]["code"]
            .as_str()
            .unwrap()
            .starts_with("presence"),
        "{body}"
    );
    assert_eq!(
        daemon.action(&id).await["verdict"],
        "pending",
        "nothing was decided"
    );
    // Not used up: the person may still confirm with their authenticator.
    let (status, _) = get_page(&daemon, approve).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_link_expires_with_its_action() {
    let (base, mut received) = receiver().await;
    let (daemon, _secrets) = start(&base, |config| config.approvals.deadline_ms = 300).await;
    let id = paused_id(&daemon).await;
    let (_, hook) = both(&mut received).await;
    assert!(hook["pause"]["expires_at_ms"].as_i64().unwrap() <= gatehouse_daemon::now_ms() + 300);
    daemon
        .wait_for_action(&id, |a| a["verdict"] != "pending")
        .await;
    let approve = hook["pause"]["approve_url"].as_str().unwrap();
    let (status, body) = confirm(&daemon, approve, json!({})).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(daemon.action(&id).await["decided_by"], "timeout");
}

#[tokio::test]
async fn an_unreachable_receiver_never_delays_or_fails_a_check() {
    // A closed port: every delivery fails, is retried with backoff, then counted.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (daemon, _secrets) = start(&closed, |_| {}).await;
    let (status, body) = daemon.check(allowed()).await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (StatusCode::OK, Some("allow"))
    );
    let id = paused_id(&daemon).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = daemon.metrics().await;
        if metrics.contains("gatehouse_notify_failed_total 2") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(daemon.action(&id).await["verdict"], "pending");
}

#[tokio::test]
async fn a_webhook_without_a_secret_is_refused_at_start() {
    let mut config = gatehouse_daemon::Config::default();
    config.notify.webhook.url = "http://127.0.0.1:9/hook".into();
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = Some(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.classifier.kind = "none".into();
    let Err(err) = gatehouse_daemon::Daemon::start(config, Default::default()).await else {
        panic!("a webhook without a secret must refuse to start");
    };
    assert!(err.to_string().contains("secret"), "{err}");
}

/// What the fake Slack saw: Web API calls (method, body) and Socket Mode acknowledgements.
enum SlackSaw {
    Call(String, Value),
    Ack(String),
}

/// A fake Slack (no network here): the Web API methods the daemon calls over HTTP
/// (`apps.connections.open`, `chat.postMessage`, `chat.update`) and a ws:// Socket Mode server
/// that sends one interactive envelope (a button click) after `hello` and reports the ack.
async fn fake_slack() -> (String, mpsc::UnboundedReceiver<SlackSaw>) {
    use axum::extract::Path;
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::routing::get;
    use futures::{SinkExt, StreamExt};

    let (sender, saw) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let socket_url = format!("ws://{}/socket", listener.local_addr().unwrap());
    let api = {
        let sender = sender.clone();
        move |Path(method): Path<String>, headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            let socket_url = socket_url.clone();
            async move {
                let auth = headers["authorization"].to_str().unwrap().to_owned();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let answer = match method.as_str() {
                    "apps.connections.open" => {
                        assert_eq!(
                            auth, "Bearer xapp-test",
                            "the app-level token opens the socket"
                        );
                        json!({"ok": true, "url": socket_url})
                    }
                    "chat.postMessage" | "chat.update" => {
                        assert_eq!(auth, "Bearer xoxb-test", "the bot token posts");
                        json!({"ok": true, "channel": "C42", "ts": "1700000000.000100"})
                    }
                    _ => json!({"ok": false, "error": "unknown_method"}),
                };
                let _ = sender.send(SlackSaw::Call(method, body));
                axum::Json(answer)
            }
        }
    };
    let socket = move |upgrade: WebSocketUpgrade| {
        let sender = sender.clone();
        async move {
            upgrade.on_upgrade(move |ws| async move {
                let (mut out, mut inbound) = ws.split();
                let _ = out.send(Message::Text(r#"{"type":"hello"}"#.into())).await;
                let click = json!({"envelope_id": "env-1", "type": "interactive",
                    "payload": {"type": "block_actions", "actions": [{"action_id": "gatehouse_approve"}]}});
                let _ = out.send(Message::Text(click.to_string().into())).await;
                while let Some(Ok(message)) = inbound.next().await {
                    if let Message::Text(text) = message {
                        let _ = sender.send(SlackSaw::Ack(text.to_string()));
                    }
                }
            })
        }
    };
    let app = Router::new()
        .route("/api/{method}", post(api))
        .route("/socket", get(socket));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, saw)
}

async fn next_slack(saw: &mut mpsc::UnboundedReceiver<SlackSaw>) -> SlackSaw {
    tokio::time::timeout(Duration::from_secs(10), saw.recv())
        .await
        .expect("the fake Slack hears from the daemon")
        .expect("the fake Slack runs")
}

#[tokio::test]
async fn slack_gets_a_message_with_link_buttons_acks_clicks_over_socket_mode_and_withdraws_them() {
    let (base, mut saw) = fake_slack().await;
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("bot"), "xoxb-test\n").unwrap();
    std::fs::write(secrets.path().join("app"), "xapp-test\n").unwrap();
    let daemon = Setup::default()
        .config(|config| {
            config.notify.slack.channel = "C42".into();
            config.notify.slack.api_url = format!("{base}/api");
            config.notify.slack.bot_token_file = Some(secrets.path().join("bot"));
            config.notify.slack.app_token_file = Some(secrets.path().join("app"));
        })
        .start()
        .await;
    let mut opened = false;
    let mut acked = false;
    let mut posted = None;
    let id = paused_id(&daemon).await;
    while !(opened && acked && posted.is_some()) {
        match next_slack(&mut saw).await {
            SlackSaw::Call(method, _) if method == "apps.connections.open" => opened = true,
            SlackSaw::Call(method, body) if method == "chat.postMessage" => posted = Some(body),
            SlackSaw::Call(method, body) => panic!("unexpected {method}: {body}"),
            SlackSaw::Ack(text) => {
                assert_eq!(
                    serde_json::from_str::<Value>(&text).unwrap(),
                    json!({"envelope_id": "env-1"})
                );
                acked = true;
            }
        }
    }
    // The click was acknowledged, and decided nothing.
    assert_eq!(daemon.action(&id).await["verdict"], "pending");
    let posted = posted.unwrap();
    assert_eq!(posted["channel"], "C42");
    assert!(
        posted["text"]
            .as_str()
            .unwrap()
            .contains("git push origin main"),
        "{posted}"
    );
    let buttons = posted["blocks"][1]["elements"].as_array().unwrap();
    let approve = buttons[0]["url"].as_str().unwrap().to_owned();
    assert!(buttons[1]["url"].as_str().unwrap().contains("/confirm/"));

    // The Slack button's link decides (presence off here), and the message is then updated:
    // no buttons, how it ended.
    let (status, body) = confirm(&daemon, &approve, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updated = loop {
        if let SlackSaw::Call(method, body) = next_slack(&mut saw).await
            && method == "chat.update"
        {
            break body;
        }
    };
    assert_eq!(updated["ts"], "1700000000.000100");
    assert_eq!(updated["channel"], "C42");
    assert!(
        updated["text"].as_str().unwrap().contains("approved"),
        "{updated}"
    );
    assert!(
        !updated.to_string().contains("/confirm/"),
        "the buttons are withdrawn: {updated}"
    );
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("gatehouse_notify_slack_socket_acks_total 1"),
        "{metrics}"
    );
}
