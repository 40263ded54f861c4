//! Log and terminal injection: an input holding newlines, `\r`, ANSI and OSC escapes (screen
//! clears, hyperlinks, window titles) and bidi overrides is kept verbatim as evidence and travels
//! JSON-escaped, so no API answer or event carries a raw control byte. The CLI escapes it for the
//! terminal (`crates/gatehouse/src/display.rs`), the dashboard renders it as text (e2e tests).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::boundary::*;
use crate::support::TestDaemon;

const HOSTILE: &str = "ls\n[gatehouse] approved\r\u{1b}[2J\u{1b}]8;;http://evil.example/\u{1b}\\click\
                       \u{1b}]8;;\u{1b}\\\u{1b}]0;owned\u{7}\u{202e}fdp.exe\u{9b}31m\u{7f}";

/// No byte of a JSON answer is a C0 control or DEL outside what JSON allows between tokens.
#[track_caller]
fn assert_no_raw_controls(what: &str, bytes: &[u8]) {
    let raw = bytes
        .iter()
        .find(|b| (**b < 0x20 && **b != b'\n') || **b == 0x1b);
    assert_eq!(raw, None, "{what} carries a raw control byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_kept_verbatim_and_never_travels_as_raw_control_bytes() {
    let daemon = TestDaemon::start().await;
    let mut events = daemon.events().await;
    let body = json!({
        "tool": "Bash",
        "input": {"command": HOSTILE, HOSTILE: HOSTILE},
        "session_id": "s",
        "wait_ms": 0,
    });
    let response = post(&daemon, "/v1/check")
        .bearer_auth(&daemon.agent)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.unwrap();
    assert_no_raw_controls("the check's answer", &bytes);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["verdict"], "pending", "{answer}");
    let id = id_of(&answer);

    // The ledger keeps the evidence exactly as sent.
    let stored = daemon.action(&id).await;
    assert_eq!(stored["input"]["command"], HOSTILE);
    assert_eq!(stored["input"][HOSTILE], HOSTILE);
    for path in [
        format!("/v1/actions/{id}"),
        "/v1/actions?status=pending".to_owned(),
    ] {
        let response = get(&daemon, &path)
            .bearer_auth(&daemon.approver)
            .send()
            .await
            .unwrap();
        assert_no_raw_controls(&path, &response.bytes().await.unwrap());
    }
    let event = events.next_of("action.pending").await;
    assert_eq!(event["action"]["input"]["command"], HOSTILE);
    daemon.decide(&id, "deny").await;
    events.close().await;
}
