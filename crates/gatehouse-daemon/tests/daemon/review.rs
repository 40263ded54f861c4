//! The review queue (`GET /v1/review`) and reviewers' labels (`POST /v1/actions/{id}/label`):
//! which actions are queued and why, labels chained in the ledger (latest wins, history keeps
//! all), the thresholds shown, and the credential and input boundaries.

use futures::future::BoxFuture;
use gatehouse_classifier::{Classifier, ClassifierError, Score, ScoreRequest};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use crate::boundary::{CSRF, assert_error, assert_invalid, get, log_in, post, send};
use crate::support::{Setup, TestDaemon};

/// Scores each action with the number in its input's `score` field (0.1 without one), so one
/// daemon can hold actions on both sides of every threshold. Model name `by-input`.
struct ByInput;

impl Classifier for ByInput {
    fn model(&self) -> &str {
        "by-input"
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let score = request.input["score"].as_f64().unwrap_or(0.1);
        Box::pin(async move {
            Ok(Score {
                score,
                label: if score >= 0.5 { "malicious" } else { "benign" }.into(),
                model: "by-input".into(),
                explanation: None,
            })
        })
    }
}

async fn start() -> TestDaemon {
    Setup::default()
        .classifier(ByInput)
        .config(|c| {
            c.classifier.flag_threshold = 0.5;
            c.classifier.disagreement_threshold = 0.8;
        })
        .start()
        .await
}

/// A rules-allowed action (`ls`) with this score, once its detached score is recorded.
async fn allowed_scored(daemon: &TestDaemon, score: f64) -> String {
    let (status, body) = daemon
        .check(json!({"tool": "Bash", "input": {"command": "ls -la", "score": score}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "allow");
    let id = body["action_id"].as_str().unwrap().to_owned();
    daemon
        .wait_for_action(&id, |a| a["tier2_status"] == "scored")
        .await;
    id
}

/// A paused action (`git push`) with this score, decided by a person.
async fn decided_scored(daemon: &TestDaemon, score: f64, decision: &str) -> String {
    let (status, body) = daemon
        .check(json!({
            "tool": "Bash",
            "input": {"command": "git push origin main", "score": score},
            "wait_ms": 0,
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pending");
    let id = body["action_id"].as_str().unwrap().to_owned();
    daemon
        .wait_for_action(&id, |a| a["tier2_status"] == "scored")
        .await;
    let (status, body) = daemon.decide(&id, decision).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn queue(daemon: &TestDaemon, query: &str) -> Value {
    let (status, body) = daemon
        .get(&daemon.approver.clone(), &format!("/v1/review{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `(action_id, reason)` of each item, in the order listed.
fn entries(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["action"]["action_id"].as_str().unwrap().to_owned(),
                item["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn label(daemon: &TestDaemon, id: &str, body: Value) -> (StatusCode, Value) {
    daemon
        .post(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/label"),
            body,
        )
        .await
}

fn labels(daemon: &TestDaemon) -> i64 {
    daemon.count("SELECT count(*) FROM labels")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_holds_disagreements_and_decisions_against_the_score_newest_first() {
    let daemon = start().await;
    let disagreement = allowed_scored(&daemon, 0.9).await;
    let flagged_allowed = allowed_scored(&daemon, 0.6).await;
    let _quiet = allowed_scored(&daemon, 0.1).await;
    let approved_flagged = decided_scored(&daemon, 0.7, "approve").await;
    let denied_flagged = decided_scored(&daemon, 0.7, "deny").await;
    let denied_unflagged = decided_scored(&daemon, 0.2, "deny").await;
    let _approved_unflagged = decided_scored(&daemon, 0.2, "approve").await;
    let (_, rejected) = daemon
        .check(json!({"tool": "Bash", "input": {"command": "rm -rf /", "score": 0.95}}))
        .await;
    let rejected = rejected["action_id"].as_str().unwrap().to_owned();
    daemon
        .wait_for_action(&rejected, |a| a["tier2_status"] == "scored")
        .await;

    let list = queue(&daemon, "").await;
    assert_eq!(
        entries(&list),
        [
            (denied_unflagged.clone(), "denied_unflagged".to_owned()),
            (approved_flagged.clone(), "approved_flagged".to_owned()),
            (disagreement.clone(), "disagreement".to_owned()),
        ],
        "{list}"
    );
    assert_eq!(list["unlabelled"], 3);
    assert_eq!(list["labelled"], 0);
    assert_eq!(list["next_before"], Value::Null);
    let first = &list["items"][0];
    assert_eq!(first["label"], Value::Null);
    assert_eq!(first["action"]["tier2"]["score"], 0.2);
    assert_eq!(first["action"]["tier2"]["model"], "by-input");
    assert_eq!(first["action"]["decision"]["decided_by"], "human");
    assert_eq!(first["action"]["decision"]["verdict"], "reject");
    assert_eq!(list["classifier"]["flag_threshold"], 0.5);
    assert_eq!(list["classifier"]["disagreement_threshold"], 0.8);
    assert_eq!(list["classifier"]["model"], "by-input");

    // Asked for, every flagged action is listed too; the specific reason still wins.
    let list = queue(&daemon, "?include=flagged").await;
    assert_eq!(
        entries(&list),
        [
            (rejected, "flagged".to_owned()),
            (denied_unflagged, "denied_unflagged".to_owned()),
            (denied_flagged, "flagged".to_owned()),
            (approved_flagged, "approved_flagged".to_owned()),
            (flagged_allowed, "flagged".to_owned()),
            (disagreement, "disagreement".to_owned()),
        ],
        "{list}"
    );
    assert_eq!(list["unlabelled"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_pages_with_before() {
    let daemon = start().await;
    let older = allowed_scored(&daemon, 0.85).await;
    let newer = allowed_scored(&daemon, 0.95).await;
    let page = queue(&daemon, "?limit=1").await;
    assert_eq!(entries(&page), [(newer.clone(), "disagreement".to_owned())]);
    assert_eq!(page["next_before"], newer.as_str());
    assert_eq!(page["unlabelled"], 2, "counts cover the whole queue");
    let page = queue(&daemon, &format!("?limit=1&before={newer}")).await;
    assert_eq!(entries(&page), [(older.clone(), "disagreement".to_owned())]);
    let page = queue(&daemon, &format!("?limit=1&before={older}")).await;
    assert_eq!(entries(&page), []);
    assert_eq!(page["next_before"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_is_chained_in_the_ledger_moves_the_item_and_the_latest_wins() {
    let daemon = start().await;
    let id = allowed_scored(&daemon, 0.9).await;
    let mut events = daemon.events().await;

    let (status, body) = label(
        &daemon,
        &id,
        json!({"label": "malicious", "note": "exfiltrates keys"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action_id"], id.as_str());
    assert_eq!(body["label"]["label"], "malicious");
    assert_eq!(body["label"]["reviewer"], "owner");
    assert_eq!(body["label"]["note"], "exfiltrates keys");
    // Durable before the answer: the row and its chain entry are in the file.
    assert_eq!(labels(&daemon), 1);
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind = 'label'"),
        1
    );
    let event = events.next_of("action.labelled").await;
    assert_eq!(event["action_id"], id.as_str());
    assert_eq!(event["label"]["label"], "malicious");

    assert_eq!(entries(&queue(&daemon, "").await), []);
    let labelled = queue(&daemon, "?status=labelled").await;
    assert_eq!(
        entries(&labelled),
        [(id.clone(), "disagreement".to_owned())]
    );
    assert_eq!(labelled["items"][0]["label"]["label"], "malicious");
    assert_eq!(labelled["unlabelled"], 0);
    assert_eq!(labelled["labelled"], 1);

    // Relabelling appends: the latest counts, the history keeps both.
    let (status, body) = label(&daemon, &id, json!({"label": "benign"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(labels(&daemon), 2);
    let all = queue(&daemon, "?status=all").await;
    assert_eq!(all["items"][0]["label"]["label"], "benign");
    assert_eq!(all["items"][0]["label"]["note"], Value::Null);
    let (_, history) = daemon
        .get(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/history"),
        )
        .await;
    let labelled: Vec<&Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["kind"] == "labelled")
        .map(|entry| &entry["detail"]["label"])
        .collect();
    assert_eq!(labelled, [&json!("malicious"), &json!("benign")]);
    // The harness verifies the hash chain, label records included, when the daemon drops.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_labels_with_its_csrf_token_and_is_named_as_the_reviewer() {
    let daemon = start().await;
    let id = allowed_scored(&daemon, 0.9).await;
    let session = log_in(&daemon, &daemon.login_url).await;
    let path = format!("/v1/actions/{id}/label");
    let body = json!({"label": "benign"});

    let reply = send(
        post(&daemon, &path)
            .header(header::COOKIE, &session.cookie)
            .header(header::ORIGIN, &daemon.base)
            .json(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(labels(&daemon), 0, "no CSRF token: nothing recorded");

    let reply = send(
        post(&daemon, &path)
            .header(header::COOKIE, &session.cookie)
            .header(header::ORIGIN, &daemon.base)
            .header(CSRF, &session.csrf)
            .json(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["label"]["reviewer"], "owner");

    let reply =
        send(get(&daemon, "/v1/review?status=labelled").header(header::COOKIE, &session.cookie))
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["items"][0]["action"]["action_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_strangers_cannot_read_the_queue_or_label() {
    let daemon = start().await;
    let id = allowed_scored(&daemon, 0.9).await;
    let agent = daemon.agent.clone();
    for path in ["/v1/review", "/v1/classifier"] {
        let reply = send(get(&daemon, path).bearer_auth(&agent)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
        let reply = send(get(&daemon, path)).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let path = format!("/v1/actions/{id}/label");
    let reply = send(
        post(&daemon, &path)
            .bearer_auth(&agent)
            .json(&json!({"label": "benign"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let reply = send(post(&daemon, &path).json(&json!({"label": "benign"}))).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(labels(&daemon), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_labels_and_queries_are_refused_naming_the_field_and_record_nothing() {
    let daemon = start().await;
    let id = allowed_scored(&daemon, 0.9).await;
    let approver = daemon.approver.clone();
    let path = format!("/v1/actions/{id}/label");
    let cases = [
        ("unknown label", json!({"label": "suspicious"}), "label"),
        ("missing label", json!({"note": "x"}), "label"),
        (
            "unknown field",
            json!({"label": "benign", "by": "me"}),
            "by",
        ),
        (
            "note too long",
            json!({"label": "benign", "note": "n".repeat(4097)}),
            "note",
        ),
    ];
    for (case, body, field) in cases {
        let reply = send(post(&daemon, &path).bearer_auth(&approver).json(&body)).await;
        assert_invalid(case, &reply, field);
    }
    let reply = send(
        post(&daemon, "/v1/actions/act_nope/label")
            .bearer_auth(&approver)
            .json(&json!({"label": "benign"})),
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(labels(&daemon), 0);

    for (query, field) in [
        ("?status=maybe", "status"),
        ("?include=everything", "include"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?colour=red", "colour"),
    ] {
        let reply = send(get(&daemon, &format!("/v1/review{query}")).bearer_auth(&approver)).await;
        assert_invalid(query, &reply, field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classifier_endpoint_shows_the_thresholds_in_force() {
    let daemon = Setup::default()
        .classifier(ByInput)
        .config(|c| {
            c.classifier.flag_threshold = 0.35;
            c.classifier.disagreement_threshold = 0.65;
        })
        .start()
        .await;
    let (status, body) = daemon.get(&daemon.approver.clone(), "/v1/classifier").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"model": "by-input", "flag_threshold": 0.35, "disagreement_threshold": 0.65})
    );
    // The queue applies them: 0.7 is a disagreement at 0.65, and a denial of 0.4 is not
    // against the score at a flag threshold of 0.35.
    let disagreement = allowed_scored(&daemon, 0.7).await;
    let _denied_flagged = decided_scored(&daemon, 0.4, "deny").await;
    assert_eq!(
        entries(&queue(&daemon, "").await),
        [(disagreement, "disagreement".to_owned())]
    );
}
