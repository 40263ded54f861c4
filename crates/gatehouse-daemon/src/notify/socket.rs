//! Slack Socket Mode: the daemon opens the WebSocket itself (`apps.connections.open` with the
//! app-level token), so a laptop needs no public URL. Slack sends each button click of the
//! app's messages as an envelope; every envelope is acknowledged (`{"envelope_id": …}`) and
//! nothing else is done with it: the buttons are links to the confirmation page, and a click
//! never decides (principle 4). Reconnects on `disconnect` or any failure, with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

use super::Notifier;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Keeps one Socket Mode connection open for the daemon's lifetime.
pub async fn run(api: String, app_token: String, notifier: Arc<Notifier>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "slack socket mode: cannot build the HTTP client");
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        match session(&client, &api, &app_token, &notifier).await {
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(problem) => {
                notifier
                    .counts
                    .socket_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%problem, "slack socket mode: connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection, until Slack closes it or asks to reconnect.
async fn session(
    client: &reqwest::Client,
    api: &str,
    app_token: &str,
    notifier: &Notifier,
) -> Result<(), String> {
    let answer: Value = client
        .post(format!("{api}/apps.connections.open"))
        .bearer_auth(app_token)
        .send()
        .await
        .map_err(|err| format!("apps.connections.open: {}", err.without_url()))?
        .json()
        .await
        .map_err(|_| "apps.connections.open: not JSON".to_owned())?;
    if answer["ok"] != true {
        return Err(format!(
            "apps.connections.open: {}",
            answer["error"].as_str().unwrap_or("not ok")
        ));
    }
    let url = answer["url"]
        .as_str()
        .ok_or("apps.connections.open: no url")?;
    let stream = connect(url).await?;
    let (socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|err| format!("socket handshake: {err}"))?;
    let (mut sink, mut messages) = socket.split();
    while let Some(message) = messages.next().await {
        match message.map_err(|err| format!("socket: {err}"))? {
            Message::Text(text) => {
                let Ok(envelope) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = envelope["envelope_id"].as_str() {
                    let ack = json!({ "envelope_id": id }).to_string();
                    sink.send(Message::Text(ack.into()))
                        .await
                        .map_err(|err| format!("socket ack: {err}"))?;
                    notifier.counts.socket_acks.fetch_add(1, Ordering::Relaxed);
                }
                if envelope["type"] == "disconnect" {
                    return Ok(());
                }
            }
            Message::Ping(payload) => {
                let _ = sink.send(Message::Pong(payload)).await;
            }
            Message::Close(_) => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

/// A TCP connection to the socket URL's host, inside TLS for `wss://` (the system's roots).
async fn connect(url: &str) -> Result<Box<dyn Io>, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err("the socket URL is not ws:// or wss://".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
            host.trim_matches(['[', ']']).to_owned(),
            port.parse::<u16>()
                .map_err(|_| "bad port in the socket URL")?,
        ),
        _ => (authority.to_owned(), if tls { 443 } else { 80 }),
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|err| format!("socket connect: {err}"))?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| format!("tls: {err}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls_pki_types::ServerName::try_from(host).map_err(|_| "bad host in the socket URL")?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|err| format!("tls: {err}"))?;
    Ok(Box::new(stream))
}
