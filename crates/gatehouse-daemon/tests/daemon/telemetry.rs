//! OpenTelemetry export (docs/TEAM.md, "Telemetry"). No OpenTelemetry collector can be
//! installed here, so the collector is faked: an OTLP/HTTP receiver on loopback (axum) that
//! parses the JSON `ExportLogsServiceRequest` bodies the daemon posts to `/v1/logs` and hands
//! each log record to the test. The collector-down case points the daemon at a closed port.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{Setup, TestDaemon, allowed, paused, rejected};

/// One log record as the receiver parsed it: its attributes, flattened.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    event: String,
    action_id: String,
    verdict: String,
    decided_by: String,
    tool: String,
    time_unix_nano: u128,
}

fn attr(attributes: &Value, key: &str) -> String {
    attributes
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Parses an OTLP JSON logs request the way a collector does; anything malformed fails the test.
fn parse(body: &Value) -> Vec<Received> {
    let mut out = Vec::new();
    for resource_logs in body["resourceLogs"].as_array().expect("resourceLogs") {
        let service = attr(&resource_logs["resource"]["attributes"], "service.name");
        for scope_logs in resource_logs["scopeLogs"].as_array().expect("scopeLogs") {
            for log in scope_logs["logRecords"].as_array().expect("logRecords") {
                let attributes = &log["attributes"];
                out.push(Received {
                    service: service.clone(),
                    event: attr(attributes, "event.name"),
                    action_id: attr(attributes, "gatehouse.action_id"),
                    verdict: attr(attributes, "gatehouse.verdict"),
                    decided_by: attr(attributes, "gatehouse.decided_by"),
                    tool: attr(attributes, "gatehouse.tool"),
                    // OTLP JSON carries 64-bit integers as strings.
                    time_unix_nano: log["timeUnixNano"]
                        .as_str()
                        .expect("timeUnixNano is a string")
                        .parse()
                        .expect("timeUnixNano is a number"),
                });
            }
        }
    }
    out
}

/// The fake collector: its endpoint, and the records it receives, in order.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, records) = mpsc::unbounded_channel();
    let app =
        axum::Router::new()
            .route(
                "/v1/logs",
                post(
                    |State(sender): State<mpsc::UnboundedSender<Received>>,
                     Json(body): Json<Value>| async move {
                        for record in parse(&body) {
                            let _ = sender.send(record);
                        }
                        Json(serde_json::json!({}))
                    },
                ),
            )
            .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // Stops with the test's runtime.
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, records)
}

async fn next(records: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), records.recv())
        .await
        .expect("a record arrives")
        .expect("receiver open")
}

#[tokio::test]
async fn verdicts_and_decisions_reach_the_collector_as_otlp_logs() {
    let (endpoint, mut records) = receiver().await;
    let daemon = Setup::default()
        .config(move |config| {
            config.telemetry.otlp_endpoint = endpoint;
            config.telemetry.service_name = "gatehouse-test".into();
            config.telemetry.flush_interval_ms = 20;
        })
        .start()
        .await;

    let (status, allow) = daemon.check(allowed()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, reject) = daemon.check(rejected()).await;
    let (_, pause) = daemon.check(paused(0)).await;
    assert_eq!(pause["verdict"], "pending");

    let mut verdicts = Vec::new();
    for _ in 0..3 {
        verdicts.push(next(&mut records).await);
    }
    for (answer, verdict) in [(&allow, "allow"), (&reject, "reject"), (&pause, "pending")] {
        let record = verdicts
            .iter()
            .find(|r| r.action_id == answer["action_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("no record of {answer}: {verdicts:?}"));
        assert_eq!(record.event, "gatehouse.verdict");
        assert_eq!(record.verdict, verdict);
        assert_eq!(record.tool, "Bash");
        assert_eq!(record.service, "gatehouse-test");
        assert!(
            record.time_unix_nano > 1_600_000_000_000_000_000,
            "{record:?}"
        );
    }
    assert_eq!(verdicts[0].decided_by, "rule");

    let id = pause["action_id"].as_str().unwrap();
    let (status, _) = daemon.decide(id, "approve").await;
    assert_eq!(status, StatusCode::OK);
    let decision = next(&mut records).await;
    assert_eq!(decision.event, "gatehouse.decision");
    assert_eq!(decision.action_id, id);
    assert_eq!(decision.verdict, "allow");
    assert_eq!(decision.decided_by, "human");

    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("gatehouse_telemetry_dropped_total 0"),
        "{metrics}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_collector_that_is_down_drops_records_and_never_fails_a_check() {
    // A port nothing listens on: bind one, note it, close it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let daemon = Setup::default()
        .config(move |config| {
            config.telemetry.otlp_endpoint = format!("http://{closed}");
            config.telemetry.flush_interval_ms = 5;
            config.telemetry.queue = 4;
            config.telemetry.batch = 2;
        })
        .start()
        .await;
    for _ in 0..50 {
        let (status, body) = daemon.check(allowed()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verdict"], "allow");
    }
    // Every record is either dropped at the full queue or with its failed batch: all 50 end up
    // counted (the exporter's posts to the closed port fail within milliseconds).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = daemon.metrics().await;
        let dropped = metric(&metrics, "gatehouse_telemetry_dropped_total");
        if dropped == 50 {
            assert_eq!(metric(&metrics, "gatehouse_telemetry_exported_total"), 0);
            assert!(metric(&metrics, "gatehouse_telemetry_failed_exports_total") >= 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records not all counted: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.stop().await;
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported() {
    let daemon = TestDaemon::start().await;
    let (status, _) = daemon.check(allowed()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!daemon.metrics().await.contains("gatehouse_telemetry"));
    daemon.stop().await;
}
