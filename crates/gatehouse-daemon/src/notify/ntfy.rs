//! ntfy: a push notification per new pause, with "Approve…" and "Deny…" buttons that open the
//! daemon's confirmation page for each (ntfy's JSON publishing: `POST {server}` with the topic
//! in the body, `Authorization: Bearer` when the topic needs a token).

use serde_json::{Value, json};

use super::Pause;

/// The JSON message ntfy publishes for `pause`.
pub fn message(topic: &str, pause: &Pause) -> Value {
    json!({
        "topic": topic,
        "title": format!("Gatehouse: {} waits for you", pause.tool),
        "message": format!(
            "{}\n{}\nagent {} · action {}",
            pause.summary,
            pause.reason,
            pause.agent.as_deref().unwrap_or("?"),
            pause.action_id,
        ),
        "tags": ["lock"],
        "priority": 4,
        "click": pause.approve_url,
        "actions": [
            { "action": "view", "label": "Approve…", "url": pause.approve_url, "clear": true },
            { "action": "view", "label": "Deny…", "url": pause.deny_url, "clear": true },
        ],
    })
}
