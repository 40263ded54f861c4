//! Hardened mode's check socket: checks over it are recorded with the caller's uid and pid, it
//! serves only the agent's routes, it never takes the approver token, its file has the
//! configured mode and goes away at shutdown.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gatehouse_client::protocol::{CheckRequest, Verdict};
use gatehouse_client::{CheckOptions, Client, ClientError};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TestDaemon, allowed, paused, rejected};

/// A daemon serving the check socket at `dir/check.sock` with `mode`.
async fn with_socket(dir: &Path, mode: &str) -> TestDaemon {
    let socket = dir.join("check.sock");
    let mode = mode.to_owned();
    Setup::default()
        .config(move |config| {
            config.hardened.socket = Some(socket);
            config.hardened.socket_mode = mode;
        })
        .start()
        .await
}

/// Plain HTTP over the socket, for requests the client library would not send.
struct SocketHttp {
    http: reqwest::Client,
}

impl SocketHttp {
    fn new(path: PathBuf) -> SocketHttp {
        SocketHttp {
            http: reqwest::Client::builder()
                .unix_socket(path)
                .build()
                .expect("client"),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("http://localhost{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request over the socket");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn check(&self, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, "/v1/check", token, Some(body))
            .await
    }
}

/// The uid this test process runs as: the owner of a directory it just made.
fn own_uid(dir: &Path) -> u32 {
    std::fs::metadata(dir).unwrap().uid()
}

#[tokio::test]
async fn a_check_over_the_socket_is_recorded_with_the_callers_uid_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = with_socket(dir.path(), "0666").await;
    let socket = SocketHttp::new(dir.path().join("check.sock"));

    // No token: the kernel vouches for the caller.
    let (status, body) = socket.check(None, allowed()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "allow");
    let action = daemon.action(body["action_id"].as_str().unwrap()).await;
    assert_eq!(action["peer_uid"], json!(own_uid(dir.path())), "{action}");
    assert_eq!(action["peer_pid"], json!(std::process::id()), "{action}");

    // The agent token may still be sent; a rejection is recorded the same way.
    let (status, body) = socket.check(Some(&daemon.agent), rejected()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "reject");
    let action = daemon.action(body["action_id"].as_str().unwrap()).await;
    assert_eq!(action["peer_pid"], json!(std::process::id()), "{action}");

    // Over TCP the kernel vouches for nobody: no peer is recorded.
    let (_, body) = daemon.check(allowed()).await;
    let action = daemon.action(body["action_id"].as_str().unwrap()).await;
    assert_eq!(action["peer_uid"], Value::Null, "{action}");
    assert_eq!(action["peer_pid"], Value::Null, "{action}");
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions WHERE peer_pid IS NOT NULL"),
        2
    );
}

#[tokio::test]
async fn approver_routes_are_not_served_on_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = with_socket(dir.path(), "0666").await;
    let socket = SocketHttp::new(dir.path().join("check.sock"));
    let (_, body) = daemon.check(paused(0)).await;
    let id = body["action_id"].as_str().unwrap().to_owned();
    let hash = daemon.action(&id).await["action_hash"].clone();

    use reqwest::Method;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/v1/actions/{id}/decision"),
            Some(json!({"decision": "approve", "action_hash": hash})),
        ),
        (Method::GET, "/v1/actions".to_owned(), None),
        (Method::GET, format!("/v1/actions/{id}/history"), None),
        (Method::GET, "/v1/disagreements".to_owned(), None),
        (Method::GET, "/v1/events".to_owned(), None),
        (Method::POST, "/v1/login-codes".to_owned(), Some(json!({}))),
        (Method::GET, "/v1/session".to_owned(), None),
        (Method::GET, "/".to_owned(), None),
        (Method::GET, "/metrics".to_owned(), None),
    ] {
        let (status, answer) = socket
            .send(method.clone(), &path, Some(&daemon.approver), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found", "{method} {path}");
    }
    let action = daemon.action(&id).await;
    assert_eq!(
        action["verdict"], "pending",
        "nothing was decided: {action}"
    );
    assert_eq!(daemon.decide(&id, "deny").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_approver_token_is_refused_on_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = with_socket(dir.path(), "0666").await;
    let socket = SocketHttp::new(dir.path().join("check.sock"));

    let (status, body) = socket.check(Some(&daemon.approver), allowed()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = socket.check(Some("not-a-token"), allowed()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The agent's poll answers the agent token or no token, never the approver's.
    let (_, body) = socket.check(None, allowed()).await;
    let poll = format!("/v1/actions/{}", body["action_id"].as_str().unwrap());
    let (status, body) = socket
        .send(reqwest::Method::GET, &poll, Some(&daemon.approver), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = socket.send(reqwest::Method::GET, &poll, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "allow");
    assert!(
        body.get("input").is_none(),
        "an agent gets the check response, not the ledger's record: {body}"
    );
    assert_eq!(
        daemon.count("SELECT count(*) FROM actions"),
        1,
        "refused requests record nothing"
    );
}

#[tokio::test]
async fn the_socket_file_has_its_mode_and_is_removed_at_shutdown() {
    for (mode, bits) in [("0666", 0o666), ("0660", 0o660)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.sock");
        let daemon = with_socket(dir.path(), mode).await;
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, bits, "mode {mode}");
        let _kept = daemon.stop().await;
        assert!(!path.exists(), "the socket file is removed at shutdown");
    }
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_refuses_a_second_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("check.sock");
    // What a killed daemon leaves behind: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let daemon = with_socket(dir.path(), "0666").await;
    let client = Client::unix(&path, "").unwrap();
    assert_eq!(client.health().await.unwrap().status, "ok");

    let second = tempfile::tempdir().unwrap();
    let mut config = gatehouse_daemon::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: Some(second.path().join("data")),
        ..Default::default()
    };
    config.classifier.kind = "none".into();
    config.hardened.socket = Some(path.clone());
    let err = gatehouse_daemon::Daemon::start(config, Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("another process is listening"), "{err}");
    assert_eq!(
        client.health().await.unwrap().status,
        "ok",
        "the first daemon keeps its socket"
    );
    drop(daemon);
}

#[tokio::test]
async fn the_client_checks_over_the_socket_through_a_pause_and_fails_closed_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = with_socket(dir.path(), "0666").await;
    let path = dir.path().join("check.sock");
    let client = Client::unix(&path, "").unwrap();
    let request = CheckRequest {
        tool: "Bash".into(),
        input: json!({"command": "git push origin main"})
            .as_object()
            .unwrap()
            .clone(),
        session_id: None,
        agent: None,
        tool_use_id: None,
        cwd: None,
        context: None,
        wait_ms: Some(100),
        can_confine: false,
    };
    let mut pending = daemon.events().await;
    let check = tokio::spawn({
        let client = client.clone();
        let request = request.clone();
        async move { client.check(&request, &CheckOptions::default()).await }
    });
    let event = pending.next_of("action.pending").await;
    let id = event["action"]["action_id"].as_str().unwrap().to_owned();
    assert_eq!(daemon.decide(&id, "approve").await.0, StatusCode::OK);
    let response = check.await.unwrap().unwrap();
    assert_eq!(
        (response.action_id.as_str(), response.verdict),
        (id.as_str(), Verdict::Allow)
    );

    // Without the socket there is no verdict, only an error.
    let gone = Client::unix(dir.path().join("nothing-here.sock"), "").unwrap();
    let failed = gone.check(&request, &CheckOptions::default()).await;
    assert!(
        matches!(failed, Err(ClientError::Unreachable(_))),
        "{failed:?}"
    );
}
