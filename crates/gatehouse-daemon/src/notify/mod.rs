//! Remote approvals: a notification of each new pause to ntfy and/or a signed webhook, with
//! approve/deny links that open a confirmation page on the daemon (`crate::api::notify`).
//!
//! *Invariant*: off the fast path. A pause is noticed on the event bus after it is recorded;
//! delivery runs in its own task through a bounded queue, with a timeout per attempt and retries
//! with backoff; a full queue or a failed delivery is counted in `/metrics`, logged without the
//! secrets, and never delays or changes a check. A link never decides on its own (`links`).

pub mod links;
pub mod ntfy;
pub mod slack;
mod socket;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_protocol::{ActionView, Decision, Event};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::events::Events;
use links::{Link, LinkStore};

/// `[notify]`: where new pauses are announced. Every channel is off until configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// The base of the links in notifications (e.g. `https://laptop.tailnet.ts.net:7878`):
    /// where the person's phone reaches this daemon. Empty: the dashboard's own origin.
    pub public_url: String,
    pub ntfy: NtfySettings,
    pub webhook: WebhookSettings,
    pub slack: SlackSettings,
}

/// `[notify.slack]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// The channel to post in (its id, e.g. `C0123456789`); empty: Slack is off.
    pub channel: String,
    /// Slack's Web API (changed only to test against a fake).
    pub api_url: String,
    /// The bot token (`xoxb-…`, scope `chat:write`), from this file or this variable: required.
    pub bot_token_file: Option<std::path::PathBuf>,
    pub bot_token_env: Option<String>,
    /// The app-level token (`xapp-…`, `connections:write`) for Socket Mode, which acknowledges
    /// button clicks when the app's interactivity is on; optional.
    pub app_token_file: Option<std::path::PathBuf>,
    pub app_token_env: Option<String>,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            channel: String::new(),
            api_url: "https://slack.com/api".into(),
            bot_token_file: None,
            bot_token_env: None,
            app_token_file: None,
            app_token_env: None,
        }
    }
}

/// `[notify.ntfy]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NtfySettings {
    /// The ntfy server (`https://ntfy.sh` or your own); empty: ntfy is off.
    pub server: String,
    pub topic: String,
    /// An access token for the topic, read from this file or this environment variable.
    pub token_file: Option<std::path::PathBuf>,
    pub token_env: Option<String>,
}

/// `[notify.webhook]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where each pause is POSTed; empty: the webhook is off.
    pub url: String,
    /// The HMAC-SHA256 secret, from this file or this environment variable (one is required).
    pub secret_file: Option<std::path::PathBuf>,
    pub secret_env: Option<String>,
}

/// Why `[notify]` cannot be used; the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("[notify] {0}")]
pub struct NotifyConfigError(String);

fn read_secret(
    what: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<Option<String>, NotifyConfigError> {
    let value = match (file, env) {
        (Some(path), _) => std::fs::read_to_string(path).map_err(|err| {
            NotifyConfigError(format!("{what}: cannot read {}: {err}", path.display()))
        })?,
        (None, Some(name)) => std::env::var(name).map_err(|_| {
            NotifyConfigError(format!(
                "{what}: the environment variable {name} is not set"
            ))
        })?,
        (None, None) => return Ok(None),
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(NotifyConfigError(format!("{what}: the secret is empty")));
    }
    Ok(Some(value))
}

fn http_url(what: &str, url: &str) -> Result<(), NotifyConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(NotifyConfigError(format!(
            "{what}: `{url}` is not an http:// or https:// URL"
        )))
    }
}

/// One new pause as the channels show it.
#[derive(Debug, Clone, Serialize)]
pub struct Pause {
    pub action_id: String,
    pub action_hash: String,
    pub tool: String,
    pub summary: String,
    pub input: serde_json::Value,
    pub reason: String,
    pub rule_id: Option<String>,
    pub agent: Option<String>,
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub expires_at_ms: i64,
    /// Open a confirmation page on the daemon; neither decides by itself.
    pub approve_url: String,
    pub deny_url: String,
}

/// A short one-line view of an action's input: its command or path, else its JSON.
pub fn summary(view: &ActionView) -> String {
    let input = &view.input;
    let text = ["command", "file_path", "path", "url"]
        .iter()
        .find_map(|k| input.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| input.to_string());
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Delivery counts for `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyCounts {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Slack Socket Mode: envelopes acknowledged, and connection failures.
    pub socket_acks: AtomicU64,
    pub socket_failures: AtomicU64,
}

/// The notification side of the daemon: the link store the confirmation page reads, and the
/// delivery task.
#[derive(Debug, Default)]
pub struct Notifier {
    pub links: LinkStore,
    pub counts: NotifyCounts,
    /// Any channel configured.
    enabled: bool,
    /// The Slack message of each pending action (channel, ts), to update once it is decided.
    slack_messages: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

#[derive(Debug, Clone)]
struct Channels {
    base: String,
    ntfy: Option<(String, String, Option<String>)>,
    webhook: Option<(String, String)>,
    slack: Option<SlackChannel>,
}

#[derive(Debug, Clone)]
struct SlackChannel {
    api: String,
    channel: String,
    bot_token: String,
    app_token: Option<String>,
}

/// Queued deliveries at most; past it a notification is dropped (counted), never waited for.
const QUEUE: usize = 256;
/// Attempts per delivery, and the first backoff (doubled each time).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl Notifier {
    /// Reads `[notify]` (secrets included) and, when a channel is configured, starts following
    /// `events` for new pauses and decisions. `origin` is the dashboard's own origin.
    pub fn start(
        settings: &NotifySettings,
        origin: &str,
        events: &Events,
    ) -> Result<Arc<Notifier>, NotifyConfigError> {
        let base = if settings.public_url.trim().is_empty() {
            origin.trim_end_matches('/').to_owned()
        } else {
            http_url("notify.public_url", settings.public_url.trim())?;
            settings.public_url.trim().trim_end_matches('/').to_owned()
        };
        let ntfy = if settings.ntfy.server.trim().is_empty() {
            None
        } else {
            http_url("notify.ntfy.server", settings.ntfy.server.trim())?;
            if settings.ntfy.topic.trim().is_empty() {
                return Err(NotifyConfigError("notify.ntfy.topic: required".into()));
            }
            let token = read_secret(
                "notify.ntfy token",
                settings.ntfy.token_file.as_deref(),
                settings.ntfy.token_env.as_deref(),
            )?;
            Some((
                settings.ntfy.server.trim().trim_end_matches('/').to_owned(),
                settings.ntfy.topic.trim().to_owned(),
                token,
            ))
        };
        let webhook = if settings.webhook.url.trim().is_empty() {
            None
        } else {
            http_url("notify.webhook.url", settings.webhook.url.trim())?;
            let secret = read_secret(
                "notify.webhook secret",
                settings.webhook.secret_file.as_deref(),
                settings.webhook.secret_env.as_deref(),
            )?
            .ok_or_else(|| {
                NotifyConfigError(
                    "notify.webhook: a secret is required (secret_file or secret_env)".into(),
                )
            })?;
            Some((settings.webhook.url.trim().to_owned(), secret))
        };
        let slack = if settings.slack.channel.trim().is_empty() {
            None
        } else {
            http_url("notify.slack.api_url", settings.slack.api_url.trim())?;
            let bot_token = read_secret(
                "notify.slack bot token",
                settings.slack.bot_token_file.as_deref(),
                settings.slack.bot_token_env.as_deref(),
            )?
            .ok_or_else(|| {
                NotifyConfigError(
                    "notify.slack: a bot token is required (bot_token_file or bot_token_env)"
                        .into(),
                )
            })?;
            let app_token = read_secret(
                "notify.slack app token",
                settings.slack.app_token_file.as_deref(),
                settings.slack.app_token_env.as_deref(),
            )?;
            Some(SlackChannel {
                api: settings
                    .slack
                    .api_url
                    .trim()
                    .trim_end_matches('/')
                    .to_owned(),
                channel: settings.slack.channel.trim().to_owned(),
                bot_token,
                app_token,
            })
        };
        let enabled = ntfy.is_some() || webhook.is_some() || slack.is_some();
        let notifier = Arc::new(Notifier {
            enabled,
            ..Notifier::default()
        });
        if enabled {
            if let Some(SlackChannel {
                api,
                app_token: Some(app_token),
                ..
            }) = &slack
            {
                tokio::spawn(socket::run(
                    api.clone(),
                    app_token.clone(),
                    notifier.clone(),
                ));
            }
            let channels = Channels {
                base,
                ntfy,
                webhook,
                slack,
            };
            let (queue, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(follow(
                notifier.clone(),
                channels.clone(),
                events.subscribe(),
                queue,
            ));
            tokio::spawn(deliver(notifier.clone(), channels, receiver));
        }
        Ok(notifier)
    }

    /// The `/metrics` lines.
    pub fn metrics_text(&self) -> String {
        let sent = self.counts.sent.load(Ordering::Relaxed);
        let failed = self.counts.failed.load(Ordering::Relaxed);
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        let acks = self.counts.socket_acks.load(Ordering::Relaxed);
        let socket_failures = self.counts.socket_failures.load(Ordering::Relaxed);
        format!(
            "# HELP gatehouse_notify_sent_total Pause notifications delivered (ntfy, webhook).\n\
             # TYPE gatehouse_notify_sent_total counter\ngatehouse_notify_sent_total {sent}\n\
             # HELP gatehouse_notify_failed_total Pause notifications given up after their retries.\n\
             # TYPE gatehouse_notify_failed_total counter\ngatehouse_notify_failed_total {failed}\n\
             # HELP gatehouse_notify_dropped_total Pause notifications dropped: the delivery queue was full.\n\
             # TYPE gatehouse_notify_dropped_total counter\ngatehouse_notify_dropped_total {dropped}\n\
             # HELP gatehouse_notify_slack_socket_acks_total Slack Socket Mode envelopes acknowledged.\n\
             # TYPE gatehouse_notify_slack_socket_acks_total counter\ngatehouse_notify_slack_socket_acks_total {acks}\n\
             # HELP gatehouse_notify_slack_socket_failures_total Slack Socket Mode connections that failed.\n\
             # TYPE gatehouse_notify_slack_socket_failures_total counter\ngatehouse_notify_slack_socket_failures_total {socket_failures}\n"
        )
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// One delivery to one channel.
#[derive(Debug)]
enum Delivery {
    Ntfy(serde_json::Value),
    Webhook(Vec<u8>),
    SlackPost {
        action_id: String,
        body: serde_json::Value,
    },
    SlackUpdate(Box<ActionView>),
}

async fn follow(
    notifier: Arc<Notifier>,
    channels: Channels,
    mut events: tokio::sync::broadcast::Receiver<Arc<str>>,
    queue: mpsc::Sender<Delivery>,
) {
    loop {
        let text = match events.recv().await {
            Ok(text) => text,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                notifier.counts.dropped.fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(
                    missed,
                    "notify: fell behind the event bus; some pauses were not announced"
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Ok(event) = serde_json::from_str::<Event>(&text) else {
            continue;
        };
        match event {
            Event::ActionPending { action } => {
                let pause = announce(&notifier, &channels.base, &action);
                let mut deliveries = Vec::new();
                if let Some((_, topic, _)) = &channels.ntfy {
                    deliveries.push(Delivery::Ntfy(ntfy::message(topic, &pause)));
                }
                if channels.webhook.is_some() {
                    let body = serde_json::json!({ "type": "action.pending", "pause": pause });
                    deliveries.push(Delivery::Webhook(body.to_string().into_bytes()));
                }
                if let Some(slack) = &channels.slack {
                    deliveries.push(Delivery::SlackPost {
                        action_id: action.action_id.clone(),
                        body: slack::post_message(&slack.channel, &pause),
                    });
                }
                for delivery in deliveries {
                    if queue.try_send(delivery).is_err() {
                        notifier.counts.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(action_id = %action.action_id, "notify: delivery queue full; notification dropped");
                    }
                }
            }
            Event::ActionDecided { action } => {
                notifier.links.withdraw(&action.action_id);
                // The Slack message loses its buttons and says how the action ended.
                if channels.slack.is_some()
                    && queue
                        .try_send(Delivery::SlackUpdate(Box::new(action)))
                        .is_err()
                {
                    notifier.counts.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// Issues the pause's two links and describes it.
fn announce(notifier: &Notifier, base: &str, view: &ActionView) -> Pause {
    let now = now_ms();
    let expires_at_ms = view.deadline_ms.unwrap_or(now);
    let issue = |decision| {
        let secret = notifier.links.issue(
            Link {
                action_id: view.action_id.clone(),
                action_hash: view.action_hash.clone(),
                decision,
                expires_at_ms,
            },
            now,
        );
        format!("{base}/confirm/{secret}")
    };
    Pause {
        action_id: view.action_id.clone(),
        action_hash: view.action_hash.clone(),
        tool: view.tool.clone(),
        summary: summary(view),
        input: view.input.clone(),
        reason: view.reason.clone(),
        rule_id: view.rule_id.clone(),
        agent: view.agent.clone(),
        session_id: view.session_id.clone(),
        cwd: view.cwd.clone(),
        expires_at_ms,
        approve_url: issue(Decision::Approve),
        deny_url: issue(Decision::Deny),
    }
}

async fn deliver(notifier: Arc<Notifier>, channels: Channels, mut queue: mpsc::Receiver<Delivery>) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "notify: cannot build the HTTP client; notifications are off");
            return;
        }
    };
    while let Some(delivery) = queue.recv().await {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = send(&client, &notifier, &channels, &delivery).await;
            match result {
                Ok(()) => {
                    notifier.counts.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(problem) if attempt >= ATTEMPTS => {
                    notifier.counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%problem, attempts = attempt, "notify: delivery failed; given up");
                    break;
                }
                Err(problem) => {
                    tracing::debug!(%problem, attempt, "notify: delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

/// One attempt. The error names the channel and the status, never a secret.
async fn send(
    client: &reqwest::Client,
    notifier: &Notifier,
    channels: &Channels,
    delivery: &Delivery,
) -> Result<(), String> {
    if let Delivery::SlackPost { .. } | Delivery::SlackUpdate(_) = delivery {
        return send_slack(client, notifier, channels, delivery).await;
    }
    let request = match delivery {
        Delivery::Ntfy(message) => {
            let Some((server, _, token)) = &channels.ntfy else {
                return Ok(());
            };
            let request = client.post(server.as_str()).json(message);
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        }
        Delivery::Webhook(body) => {
            let Some((url, secret)) = &channels.webhook else {
                return Ok(());
            };
            let timestamp = now_ms() / 1000;
            client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header(webhook::TIMESTAMP_HEADER, timestamp.to_string())
                .header(
                    webhook::SIGNATURE_HEADER,
                    webhook::signature(secret.as_bytes(), timestamp, body),
                )
                .body(body.clone())
        }
        Delivery::SlackPost { .. } | Delivery::SlackUpdate(_) => return Ok(()),
    };
    let channel = match delivery {
        Delivery::Ntfy(_) => "ntfy",
        _ => "webhook",
    };
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{channel}: HTTP {}", response.status().as_u16())),
        Err(err) => Err(format!("{channel}: {}", err.without_url())),
    }
}

/// One Slack Web API call: `chat.postMessage` (its `ts` kept for the update) or `chat.update`.
/// Slack answers `200 {"ok": false, "error": …}` for its own refusals: those are failures too.
async fn send_slack(
    client: &reqwest::Client,
    notifier: &Notifier,
    channels: &Channels,
    delivery: &Delivery,
) -> Result<(), String> {
    let Some(slack) = &channels.slack else {
        return Ok(());
    };
    let (method, body) = match delivery {
        Delivery::SlackPost { body, .. } => ("chat.postMessage", body.clone()),
        Delivery::SlackUpdate(action) => {
            let known = notifier.slack_lock().remove(&action.action_id);
            let Some((channel, ts)) = known else {
                return Ok(()); // never posted (or already updated): nothing to withdraw
            };
            ("chat.update", slack::decided_message(&channel, &ts, action))
        }
        _ => return Ok(()),
    };
    let response = client
        .post(format!("{}/{method}", slack.api))
        .bearer_auth(&slack.bot_token)
        .json(&body)
        .send()
        .await
        .map_err(|err| format!("slack {method}: {}", err.without_url()))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .map_err(|_| format!("slack {method}: HTTP {} without JSON", status.as_u16()))?;
    if answer["ok"] != true {
        return Err(format!(
            "slack {method}: {}",
            answer["error"].as_str().unwrap_or("not ok")
        ));
    }
    if let Delivery::SlackPost { action_id, .. } = delivery
        && let (Some(channel), Some(ts)) = (answer["channel"].as_str(), answer["ts"].as_str())
    {
        notifier
            .slack_lock()
            .insert(action_id.clone(), (channel.to_owned(), ts.to_owned()));
    }
    Ok(())
}

impl Notifier {
    fn slack_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, String)>> {
        self.slack_messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
