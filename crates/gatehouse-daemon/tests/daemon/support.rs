//! `TestDaemon`: the real daemon on an ephemeral loopback port with a temporary data
//! directory, plus helpers to call it. Dropping it checks the ledger's invariants, so a test
//! that leaves the ledger inconsistent fails even if its own assertions passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gatehouse_classifier::Classifier;
use gatehouse_daemon::{Config, Daemon, Overrides, now_ms};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The policy most tests run under.
pub const TEST_POLICY: &str = r#"
default = "pause"

[[rules]]
id = "allow-read"
effect = "allow"
tool = "Read"

[[rules]]
id = "allow-ls"
effect = "allow"
tool = "Bash"
reason = "listing files is harmless"
[[rules.args]]
pointer = "/command"
regex = "^ls( |$)"

[[rules]]
id = "reject-rm-rf"
effect = "reject"
tool = "Bash"
reason = "recursive forced delete"
[[rules.args]]
pointer = "/command"
regex = "rm -rf"

[[rules]]
id = "pause-push"
effect = "pause"
tool = "Bash"
reason = "pushes leave the machine"
[[rules.args]]
pointer = "/command"
prefix = "git push"
"#;

pub fn allowed() -> Value {
    json!({"tool": "Bash", "input": {"command": "ls -la"}})
}

pub fn rejected() -> Value {
    json!({"tool": "Bash", "input": {"command": "rm -rf /"}})
}

pub fn paused(wait_ms: u64) -> Value {
    json!({"tool": "Bash", "input": {"command": "git push origin main"}, "wait_ms": wait_ms})
}

/// How to start a test daemon.
pub struct Setup {
    pub config: Config,
    pub classifier: Option<Arc<dyn Classifier>>,
    pub policy: String,
    /// Reuse a data directory (to restart a daemon over the same ledger).
    pub data_dir: Option<tempfile::TempDir>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            // Tests choose their classifier; by default none, so tier-2 facts are deterministic.
            config: {
                let mut config = Config::default();
                config.classifier.kind = "none".into();
                // Tests decide with the approver token alone; presence has its own tests
                // (approval_presence.rs), which turn it back on.
                config.approvals.presence = "off".into();
                config
            },
            classifier: None,
            policy: TEST_POLICY.to_owned(),
            data_dir: None,
        }
    }
}

impl Setup {
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Some(Arc::new(classifier));
        self
    }

    pub fn config(mut self, edit: impl FnOnce(&mut Config)) -> Self {
        edit(&mut self.config);
        self
    }

    pub fn data_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.data_dir = Some(dir);
        self
    }

    pub async fn start(self) -> TestDaemon {
        TestDaemon::start_with(self).await
    }
}

pub struct TestDaemon {
    pub base: String,
    pub port: u16,
    pub agent: String,
    pub approver: String,
    pub login_url: String,
    pub http: reqwest::Client,
    pub state: gatehouse_daemon::AppState,
    dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Setup::default().start().await
    }

    pub async fn start_with(setup: Setup) -> TestDaemon {
        let dir = match setup.data_dir {
            Some(dir) => dir,
            None => tempfile::tempdir().expect("temp dir"),
        };
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, &setup.policy).expect("write policy");
        let mut config = setup.config;
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.data_dir = Some(dir.path().join("data"));
        config.policy = Some(policy_path);
        let daemon = Daemon::start(
            config,
            Overrides {
                classifier: setup.classifier,
            },
        )
        .await
        .expect("daemon starts");
        let base = daemon.base_url();
        let port = daemon.local_addr().port();
        let agent = daemon.tokens().agent.clone();
        let approver = daemon.tokens().approver.clone();
        let login_url = daemon.login_url().to_owned();
        let state = daemon.state();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.serve(async move {
            let _ = stop.await;
        }));
        TestDaemon {
            base,
            port,
            agent,
            approver,
            login_url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            state,
            dir: Some(dir),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.as_ref().expect("dir").path().join("data")
    }

    /// The policy file the daemon watches.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.as_ref().expect("dir").path().join("policy.toml")
    }

    /// Polls `/healthz` until `done` holds (bounded): for a reload the watcher does on its own.
    pub async fn wait_for_health(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, health) = self.get("", "/healthz").await;
            if done(&health) {
                return health;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health never got there: {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir().join("ledger.db")
    }

    /// Stops the daemon gracefully and hands back its directory (to restart over it).
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shut_down().await;
        check_ledger_invariants(&self.ledger_path());
        self.dir.take().expect("dir")
    }

    async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("daemon stops within its drain limit")
                .expect("serve task")
                .expect("serve ends cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/check` with the agent token.
    pub async fn check(&self, body: Value) -> (StatusCode, Value) {
        self.post(&self.agent.clone(), "/v1/check", body).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        into_json(response).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        into_json(response).await
    }

    /// The approver's view of one action.
    pub async fn action(&self, id: &str) -> Value {
        let (status, body) = self
            .get(&self.approver.clone(), &format!("/v1/actions/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Decides the action the way a person does: naming the `action_hash` it was shown.
    pub async fn decide(&self, id: &str, decision: &str) -> (StatusCode, Value) {
        let shown = self.action(id).await;
        self.post(
            &self.approver.clone(),
            &format!("/v1/actions/{id}/decision"),
            json!({"decision": decision, "action_hash": shown["action_hash"]}),
        )
        .await
    }

    /// Polls the approver's view until `done` holds (bounded), for facts that land after a
    /// response by design (back-filled scores).
    pub async fn wait_for_action(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let action = self.action(id).await;
            if done(&action) {
                return action;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition never held: {action}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Opens the dashboard event stream with the approver token.
    pub async fn events(&self) -> EventStream {
        let url = format!("ws://127.0.0.1:{}/v1/events", self.port);
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .expect("ws url");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.approver).parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connects");
        EventStream { socket }
    }

    /// A raw read-only connection to the ledger file.
    pub fn ledger(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.ledger_path()).expect("open ledger")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.ledger()
            .query_row(sql, [], |row| row.get(0))
            .expect("count")
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(dir) = &self.dir
            && !std::thread::panicking()
        {
            check_ledger_invariants(&dir.path().join("data/ledger.db"));
        }
    }
}

/// What must hold in any ledger a test leaves behind.
pub fn check_ledger_invariants(path: &Path) {
    if let Err(failure) =
        gatehouse_ledger::verify_file(path, &gatehouse_ledger::VerifyOptions::default())
    {
        // Tests that tamper with the ledger on purpose say so by breaking it; the rest must not.
        let untouched = !path.with_file_name("tampered").exists();
        assert!(
            !untouched,
            "the ledger's hash chain does not verify: {failure:?}"
        );
        return;
    }
    let conn = rusqlite::Connection::open(path).expect("open ledger");
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).expect(sql) };
    assert_eq!(
        q(
            "SELECT count(*) FROM decisions d JOIN actions a ON a.id = d.action_id WHERE a.verdict != 'pending'"
        ),
        0,
        "only paused actions are decided"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM scores s LEFT JOIN actions a ON a.id = s.action_id WHERE a.id IS NULL"
        ),
        0,
        "every score belongs to an action"
    );
    let overdue = format!(
        "SELECT count(*) FROM actions a LEFT JOIN decisions d ON d.action_id = a.id
         WHERE a.verdict = 'pending' AND d.action_id IS NULL AND a.deadline_ms < {}",
        now_ms() - 5_000
    );
    assert_eq!(
        q(&overdue),
        0,
        "no paused action outlives its deadline undecided"
    );
}

async fn into_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub struct EventStream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl EventStream {
    /// The next event of the given type (others are skipped), within 10 s.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        let wait = async {
            while let Some(message) = self.socket.next().await {
                let message = message.expect("ws message");
                if let Ok(text) = message.to_text()
                    && let Ok(event) = serde_json::from_str::<Value>(text)
                    && event["type"] == kind
                {
                    return event;
                }
            }
            panic!("event stream closed before a {kind} event");
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("event arrives in time")
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = self
            .socket
            .send(tokio_tungstenite::tungstenite::Message::Close(None))
            .await;
    }
}
