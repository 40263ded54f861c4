//! Slack: a message per new pause in a channel (the bot token's `chat.postMessage`), with
//! "Approve…" and "Deny…" link buttons that open the daemon's confirmation page for each; once
//! the action is decided by any channel the message is updated (`chat.update`): the buttons are
//! withdrawn and it says how the action ended. Buttons are URL buttons, so a click alone never
//! decides (principle 4); a Slack app with interactivity on still gets a payload for each click,
//! which the Socket Mode connection (`socket`) acknowledges — no public URL needed.

use gatehouse_protocol::{ActionView, Verdict};
use serde_json::{Value, json};

use super::Pause;

/// The `chat.postMessage` body for `pause`.
pub fn post_message(channel: &str, pause: &Pause) -> Value {
    let text = format!(
        "Gatehouse: {} waits for you — {}",
        pause.tool, pause.summary
    );
    json!({
        "channel": channel,
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "plain_text", "text": format!(
                "{} waits for you\n{}\n{}\nagent {} · action {}",
                pause.tool, pause.summary, pause.reason,
                pause.agent.as_deref().unwrap_or("?"), pause.action_id) } },
            { "type": "actions", "block_id": "gatehouse", "elements": [
                { "type": "button", "action_id": "gatehouse_approve", "style": "primary",
                  "text": { "type": "plain_text", "text": "Approve…" }, "url": pause.approve_url },
                { "type": "button", "action_id": "gatehouse_deny", "style": "danger",
                  "text": { "type": "plain_text", "text": "Deny…" }, "url": pause.deny_url },
            ] },
        ],
    })
}

/// The `chat.update` body once `action` is decided: no buttons, how it ended.
pub fn decided_message(channel: &str, ts: &str, action: &ActionView) -> Value {
    let ended = match action.verdict {
        Verdict::Allow => "approved",
        Verdict::Reject => "denied",
        _ => "decided",
    };
    let text = format!(
        "{} {} ({}): {} — action {}",
        action.tool,
        ended,
        action.decided_by.as_str(),
        super::summary(action),
        action.action_id
    );
    json!({
        "channel": channel,
        "ts": ts,
        "text": text,
        "blocks": [ { "type": "section", "text": { "type": "plain_text", "text": text } } ],
    })
}
