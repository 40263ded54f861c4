//! OpenTelemetry export of verdicts and decisions (`[telemetry] otlp_endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`): each verdict an agent is given and each decision on a paused
//! action becomes one OTLP log record, sent in batches over OTLP/HTTP with JSON encoding to
//! `ENDPOINT/v1/logs` (docs/TEAM.md, "Telemetry").
//!
//! Off the fast path by construction: a check only builds a small record and `try_send`s it
//! into a bounded queue; one background task batches and posts. A full queue, or a collector
//! that is down, slow or answering errors, drops records — counted in `/metrics`
//! (`gatehouse_telemetry_dropped_total`) — and never slows or fails a check. The ledger, not
//! this export, is the record of what happened.
//!
//! A small hand-written exporter rather than the `opentelemetry` crates: one record shape, one
//! transport, and the daemon's own reqwest/tokio, without the SDK's dependency tree.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_protocol::{ActionView, CheckResponse, Event, Verdict};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::TelemetrySettings;
use crate::events::Events;

/// One record waiting to be exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `gatehouse.verdict` (what a check answered) or `gatehouse.decision` (a paused action
    /// decided by a person, its deadline, or a withdrawal).
    pub event: &'static str,
    pub time_unix_nano: u128,
    pub action_id: String,
    pub tool: String,
    pub verdict: Verdict,
    pub decided_by: &'static str,
    pub rule_id: Option<String>,
    pub session_id: Option<String>,
    pub agent: Option<String>,
    pub approver: Option<String>,
    pub reason: String,
}

#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed_posts: AtomicU64,
}

/// The exporter's handle: cheap to clone; a no-op when no endpoint is configured.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    queue: mpsc::Sender<Record>,
    counters: Arc<Counters>,
}

/// What the exporter was configured with, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Exporter {
    /// The full logs URL (`…/v1/logs`).
    pub logs_url: String,
    pub service_name: String,
    /// `service.instance.id`: which replica sent it.
    pub instance: String,
    pub queue: usize,
    pub batch: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
}

impl Exporter {
    /// The exporter `settings` ask for, if an endpoint is set.
    pub fn from_settings(settings: &TelemetrySettings, instance: String) -> Option<Exporter> {
        let endpoint = settings.otlp_endpoint.trim();
        if endpoint.is_empty() {
            return None;
        }
        Some(Exporter {
            logs_url: logs_url(endpoint),
            service_name: settings.service_name.clone(),
            instance,
            queue: settings.queue.max(1),
            batch: settings.batch.max(1),
            flush_interval: Duration::from_millis(settings.flush_interval_ms.max(1)),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
        })
    }
}

/// An OTLP/HTTP base endpoint gets the logs path appended (as the OTel spec says of
/// `OTEL_EXPORTER_OTLP_ENDPOINT`); one that already names `/v1/logs` is used as given.
pub fn logs_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/logs") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/logs")
    }
}

impl Telemetry {
    /// Starts the exporter task (on the current Tokio runtime), fed by the checks and by the
    /// decisions `events` carries. Without an exporter, a handle that does nothing.
    pub fn start(exporter: Option<Exporter>, events: &Events) -> Telemetry {
        let Some(exporter) = exporter else {
            return Telemetry::default();
        };
        let (queue, records) = mpsc::channel(exporter.queue);
        let counters = Arc::new(Counters::default());
        let telemetry = Telemetry {
            inner: Some(Arc::new(Inner {
                queue,
                counters: counters.clone(),
            })),
        };
        tracing::info!(url = %exporter.logs_url, "exporting verdicts and decisions as OTLP logs");
        tokio::spawn(follow_decisions(events.subscribe(), telemetry.clone()));
        tokio::spawn(export(exporter, records, counters));
        telemetry
    }

    /// Whether records are exported (so callers can skip building them).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `record`, or counts it dropped if the queue is full. Never waits.
    pub fn record(&self, record: Record) {
        if let Some(inner) = &self.inner
            && inner.queue.try_send(record).is_err()
        {
            inner.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    /// The verdict a check answered.
    pub fn verdict(
        &self,
        tool: String,
        session_id: Option<String>,
        agent: Option<String>,
        response: &CheckResponse,
    ) {
        if !self.enabled() {
            return;
        }
        self.record(Record {
            event: "gatehouse.verdict",
            time_unix_nano: now_nanos(),
            action_id: response.action_id.clone(),
            tool,
            verdict: response.verdict,
            decided_by: response.decided_by.as_str(),
            rule_id: response.rule_id.clone(),
            session_id,
            agent,
            approver: None,
            reason: response.reason.clone(),
        });
    }

    /// `/metrics` lines: records exported, dropped, and failed posts.
    pub fn metrics_text(&self) -> String {
        let Some(inner) = &self.inner else {
            return String::new();
        };
        let c = &inner.counters;
        format!(
            "# HELP gatehouse_telemetry_exported_total OTLP log records the collector accepted.\n\
             # TYPE gatehouse_telemetry_exported_total counter\n\
             gatehouse_telemetry_exported_total {}\n\
             # HELP gatehouse_telemetry_dropped_total OTLP log records dropped (queue full, collector down or refusing).\n\
             # TYPE gatehouse_telemetry_dropped_total counter\n\
             gatehouse_telemetry_dropped_total {}\n\
             # HELP gatehouse_telemetry_failed_exports_total OTLP batches the collector did not accept.\n\
             # TYPE gatehouse_telemetry_failed_exports_total counter\n\
             gatehouse_telemetry_failed_exports_total {}\n",
            c.exported.load(Relaxed),
            c.dropped.load(Relaxed),
            c.failed_posts.load(Relaxed),
        )
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A decided paused action, as a record.
pub fn decision_record(action: &ActionView) -> Option<Record> {
    let decision = action.decision.as_ref()?;
    Some(Record {
        event: "gatehouse.decision",
        time_unix_nano: u128::try_from(decision.decided_at_ms)
            .map(|ms| ms * 1_000_000)
            .unwrap_or_else(|_| now_nanos()),
        action_id: action.action_id.clone(),
        tool: action.tool.clone(),
        verdict: decision.verdict,
        decided_by: decision.decided_by.as_str(),
        rule_id: action.rule_id.clone(),
        session_id: action.session_id.clone(),
        agent: action.agent.clone(),
        approver: decision.approver.clone(),
        reason: decision.note.clone().unwrap_or_default(),
    })
}

/// Turns the decisions the dashboards are told about into records. Events a slow exporter
/// missed (the broadcast lagged) are counted as dropped.
async fn follow_decisions(
    mut events: tokio::sync::broadcast::Receiver<Arc<str>>,
    telemetry: Telemetry,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(json) => {
                if let Ok(Event::ActionDecided { action }) = serde_json::from_str::<Event>(&json)
                    && let Some(record) = decision_record(&action)
                {
                    telemetry.record(record);
                }
            }
            Err(RecvError::Lagged(missed)) => {
                if let Some(inner) = &telemetry.inner {
                    inner.counters.dropped.fetch_add(missed, Relaxed);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Batches records (up to `batch`, or whatever came within `flush_interval`) and posts them.
/// A failed post drops its batch: retrying would only hold the queue up behind a dead collector.
async fn export(exporter: Exporter, mut records: mpsc::Receiver<Record>, counters: Arc<Counters>) {
    let http = match reqwest::Client::builder()
        .timeout(exporter.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(%err, "telemetry: cannot build the HTTP client; not exporting");
            return;
        }
    };
    let mut batch = Vec::with_capacity(exporter.batch);
    loop {
        let Some(first) = records.recv().await else {
            return;
        };
        batch.push(first);
        let flush_at = tokio::time::Instant::now() + exporter.flush_interval;
        while batch.len() < exporter.batch {
            match tokio::time::timeout_at(flush_at, records.recv()).await {
                Ok(Some(record)) => batch.push(record),
                Ok(None) | Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        let body = otlp_logs(&exporter, &batch);
        batch.clear();
        let posted = http
            .post(&exporter.logs_url)
            .json(&body)
            .send()
            .await
            .and_then(|response| response.error_for_status());
        match posted {
            Ok(_) => {
                counters.exported.fetch_add(count, Relaxed);
            }
            Err(err) => {
                counters.failed_posts.fetch_add(1, Relaxed);
                counters.dropped.fetch_add(count, Relaxed);
                tracing::debug!(%err, count, "telemetry: the collector did not take a batch");
            }
        }
    }
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// An `ExportLogsServiceRequest` in OTLP's JSON encoding (64-bit integers as strings, enum
/// values as numbers, lowerCamelCase field names).
pub fn otlp_logs(exporter: &Exporter, records: &[Record]) -> Value {
    let log_records: Vec<Value> = records
        .iter()
        .map(|r| {
            // OTLP severity numbers: INFO = 9, WARN = 13.
            let (severity, text) = match r.verdict {
                Verdict::Reject => (13, "WARN"),
                Verdict::Allow | Verdict::Pending => (9, "INFO"),
            };
            let mut attributes = vec![
                string_attr("event.name", r.event),
                string_attr("gatehouse.action_id", &r.action_id),
                string_attr("gatehouse.tool", &r.tool),
                string_attr("gatehouse.verdict", r.verdict.as_str()),
                string_attr("gatehouse.decided_by", r.decided_by),
            ];
            let optional = [
                ("gatehouse.rule_id", &r.rule_id),
                ("gatehouse.session_id", &r.session_id),
                ("gatehouse.agent", &r.agent),
                ("gatehouse.approver", &r.approver),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    attributes.push(string_attr(key, value));
                }
            }
            let time = r.time_unix_nano.to_string();
            json!({
                "timeUnixNano": time,
                "observedTimeUnixNano": time,
                "severityNumber": severity,
                "severityText": text,
                "eventName": r.event,
                "body": {"stringValue": format!(
                    "{} {} {} ({}): {}",
                    r.event, r.tool, r.verdict.as_str(), r.decided_by, r.reason
                )},
                "attributes": attributes,
            })
        })
        .collect();
    json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                string_attr("service.name", &exporter.service_name),
                string_attr("service.version", env!("CARGO_PKG_VERSION")),
                string_attr("service.instance.id", &exporter.instance),
            ]},
            "scopeLogs": [{
                "scope": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")},
                "logRecords": log_records,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_protocol::DecidedBy;

    fn exporter(queue: usize) -> Exporter {
        Exporter {
            logs_url: "http://127.0.0.1:9/v1/logs".into(),
            service_name: "gatehouse".into(),
            instance: "test".into(),
            queue,
            batch: 10,
            flush_interval: Duration::from_millis(10),
            timeout: Duration::from_millis(100),
        }
    }

    fn response(verdict: Verdict) -> CheckResponse {
        CheckResponse {
            action_id: "01ACTION".into(),
            verdict,
            decided_by: DecidedBy::Rule,
            rule_id: Some("allow-ls".into()),
            reason: "listing files is harmless".into(),
            tier2: None,
            confine: None,
            note: None,
            updated_input: None,
        }
    }

    #[test]
    fn endpoints_get_the_logs_path_once() {
        assert_eq!(logs_url("http://c:4318"), "http://c:4318/v1/logs");
        assert_eq!(logs_url("http://c:4318/"), "http://c:4318/v1/logs");
        assert_eq!(logs_url("http://c:4318/v1/logs"), "http://c:4318/v1/logs");
        let mut settings = TelemetrySettings::default();
        assert_eq!(Exporter::from_settings(&settings, "a".into()), None);
        settings.otlp_endpoint = "https://otel.example.com:4318".into();
        let exporter = Exporter::from_settings(&settings, "a".into()).unwrap();
        assert_eq!(exporter.logs_url, "https://otel.example.com:4318/v1/logs");
    }

    #[test]
    fn records_are_otlp_json() {
        let record = Record {
            event: "gatehouse.verdict",
            time_unix_nano: 1_700_000_000_000_000_123,
            action_id: "01ACTION".into(),
            tool: "Bash".into(),
            verdict: Verdict::Reject,
            decided_by: "rule",
            rule_id: Some("reject-rm-rf".into()),
            session_id: None,
            agent: Some("claude-code".into()),
            approver: None,
            reason: "recursive forced delete".into(),
        };
        let body = otlp_logs(&exporter(1), &[record]);
        let log = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(log["timeUnixNano"], "1700000000000000123");
        assert_eq!(log["severityNumber"], 13);
        let attrs = log["attributes"].as_array().unwrap();
        let get = |key: &str| {
            attrs
                .iter()
                .find(|a| a["key"] == key)
                .map(|a| a["value"]["stringValue"].clone())
        };
        assert_eq!(get("gatehouse.verdict").unwrap(), "reject");
        assert_eq!(get("gatehouse.rule_id").unwrap(), "reject-rm-rf");
        assert_eq!(get("gatehouse.agent").unwrap(), "claude-code");
        assert_eq!(get("gatehouse.session_id"), None);
        let resource = &body["resourceLogs"][0]["resource"]["attributes"][0];
        assert_eq!(resource["key"], "service.name");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        // No task drains this queue: every record past its one slot is dropped at once.
        let (queue, _records) = mpsc::channel(1);
        let telemetry = Telemetry {
            inner: Some(Arc::new(Inner {
                queue,
                counters: Arc::default(),
            })),
        };
        for _ in 0..5 {
            telemetry.verdict("Bash".into(), None, None, &response(Verdict::Allow));
        }
        let text = telemetry.metrics_text();
        assert!(
            text.contains("gatehouse_telemetry_dropped_total 4"),
            "{text}"
        );
        assert!(Telemetry::default().metrics_text().is_empty());
    }
}
