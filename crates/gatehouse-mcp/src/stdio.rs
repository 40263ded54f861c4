//! The stdio transport: the MCP client on one side (our stdin/stdout), the server as a child
//! process on the other, one [`Session`] in between.
//!
//! Four small tasks move bytes (read client, read server, write client, write server); one loop
//! owns the session and handles one event at a time, so the session never sees two events at
//! once. Checks run as tasks that report back to the loop. Lines are bounded
//! ([`MAX_LINE_BYTES`]): a longer client message is refused with an error, a longer server
//! message is dropped and logged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checker::{CheckEvent, DaemonChecker};
use crate::message::{self, code};
use crate::pins::PinFile;
use crate::session::{Effect, Session};
use crate::tools::{DefinitionOutcome, ServerTools};

/// Longest message accepted in either direction.
pub const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;
/// How long withdrawals may take once the session ends.
const WITHDRAW_GRACE: Duration = Duration::from_secs(5);

/// One read from a peer.
#[derive(Debug)]
enum Read {
    Line(Vec<u8>),
    TooLong(usize),
    Eof,
}

#[derive(Debug)]
enum Event {
    Client(Read),
    Server(Read),
}

/// Where the pins of tool definitions are kept (`DATA_DIR/mcp-pins.json`).
#[derive(Debug, Clone)]
pub struct PinStore {
    pub path: PathBuf,
}

impl PinStore {
    pub fn load(&self) -> PinFile {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Saves one server's pins (read, merge, write a temp file, rename).
    pub fn save(&self, tools: &ServerTools) {
        let mut file = self.load();
        file.set_server(tools.server(), tools.pins().accepted());
        let Ok(text) = serde_json::to_vec_pretty(&file) else {
            return;
        };
        let tmp = self.path.with_extension("json.tmp");
        if let Err(err) =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path))
        {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot save the MCP tool pins");
        }
    }
}

/// Proxies one session until the client or the server leaves. Returns when both directions are
/// done and every withdrawal has been sent (or [`WITHDRAW_GRACE`] passed).
pub async fn proxy<CR, CW, SR, SW>(
    mut session: Session,
    checker: Arc<DaemonChecker>,
    pins: Option<PinStore>,
    client_in: CR,
    client_out: CW,
    server_in: SW,
    server_out: SR,
) where
    CR: AsyncRead + Unpin + Send + 'static,
    CW: AsyncWrite + Unpin + Send + 'static,
    SR: AsyncRead + Unpin + Send + 'static,
    SW: AsyncWrite + Unpin + Send + 'static,
{
    let (event_tx, mut events) = mpsc::channel::<Event>(64);
    let (check_tx, mut checks) = mpsc::unbounded_channel::<CheckEvent>();
    let readers = [
        tokio::spawn(read_lines(client_in, event_tx.clone(), Event::Client)),
        tokio::spawn(read_lines(server_out, event_tx, Event::Server)),
    ];
    let (to_client, client_writer) = writer(client_out);
    let (to_server, server_writer) = writer(server_in);
    let mut to_server = Some(to_server);
    let mut side_tasks = JoinSet::new();
    let mut check_tasks: HashMap<u64, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut client_open = true;
    let mut server_open = true;

    while client_open && server_open {
        let effects = tokio::select! {
            biased;
            Some(event) = checks.recv() => match event {
                CheckEvent::Paused { seq, action_id } => session.check_paused(seq, &action_id),
                CheckEvent::Done { seq, outcome } => {
                    check_tasks.remove(&seq);
                    session.check_done(seq, outcome)
                }
                CheckEvent::Definition { tool, hash, outcome } => {
                    let effects = session.definition(&tool, &hash, &outcome);
                    if outcome == DefinitionOutcome::Accepted
                        && let Some(store) = &pins
                    {
                        store.save(session.tools());
                    }
                    effects
                }
            },
            Some(event) = events.recv() => match event {
                Event::Client(Read::Line(line)) => session.client_line(&line),
                Event::Client(Read::TooLong(n)) => vec![Effect::ToClient(message::to_line(
                    &message::error_response(
                        &Value::Null,
                        code::INVALID_REQUEST,
                        &format!("message of {n}+ bytes is over the proxy's limit of {MAX_LINE_BYTES}"),
                    ),
                ))],
                Event::Client(Read::Eof) => {
                    client_open = false;
                    session.client_closed()
                }
                Event::Server(Read::Line(line)) => session.server_line(&line),
                Event::Server(Read::TooLong(n)) => {
                    tracing::warn!(bytes = n, "dropped a message from the MCP server over the size limit");
                    Vec::new()
                }
                Event::Server(Read::Eof) => {
                    server_open = false;
                    session.server_closed()
                }
            },
            else => break,
        };
        for effect in effects {
            match effect {
                Effect::ToServer(bytes) => {
                    if let Some(tx) = &to_server {
                        let _ = tx.send(bytes).await;
                    }
                }
                Effect::ToClient(bytes) => {
                    let _ = to_client.send(bytes).await;
                }
                Effect::Check { seq, request } => {
                    let checker = Arc::clone(&checker);
                    let tx = check_tx.clone();
                    let task = tokio::spawn(async move { checker.run(seq, *request, tx).await });
                    check_tasks.insert(seq, task);
                }
                Effect::StopCheck { .. } => {
                    // The check runs on until the daemon names its action, which is then
                    // withdrawn (Effect::Withdraw); its verdict is ignored by the session.
                }
                Effect::Withdraw { action_id } => {
                    let checker = Arc::clone(&checker);
                    side_tasks.spawn(async move {
                        if let Err(err) = checker.withdraw(&action_id).await {
                            tracing::warn!(%action_id, error = %err, "could not withdraw a paused MCP call");
                        }
                    });
                }
                Effect::RecordDefinition(definition) => {
                    if definition.change == "first_sight"
                        && let Some(store) = &pins
                    {
                        store.save(session.tools());
                    }
                    let checker = Arc::clone(&checker);
                    let tx = check_tx.clone();
                    tokio::spawn(async move { checker.record_definition(*definition, tx).await });
                }
            }
        }
    }

    // One side left. Closing the server's stdin asks a stdio server to exit.
    to_server.take();
    // Checks still running whose action must be withdrawn: wait for them to name it, briefly.
    let grace = tokio::time::sleep(WITHDRAW_GRACE);
    tokio::pin!(grace);
    while session.checks_running() > 0 {
        tokio::select! {
            Some(event) = checks.recv() => {
                let effects = match event {
                    CheckEvent::Paused { seq, action_id } => session.check_paused(seq, &action_id),
                    CheckEvent::Done { seq, outcome } => { session.check_stopped(seq); session.check_done(seq, outcome) }
                    CheckEvent::Definition { .. } => Vec::new(),
                };
                for effect in effects {
                    match effect {
                        Effect::Withdraw { action_id } => {
                            let checker = Arc::clone(&checker);
                            side_tasks.spawn(async move {
                                let _ = checker.withdraw(&action_id).await;
                            });
                        }
                        Effect::ToClient(bytes) => { let _ = to_client.send(bytes).await; }
                        _ => {}
                    }
                }
            }
            () = &mut grace => break,
        }
    }
    for task in check_tasks.values() {
        task.abort();
    }
    let _ = tokio::time::timeout(WITHDRAW_GRACE, async {
        while side_tasks.join_next().await.is_some() {}
    })
    .await;
    drop(to_client);
    let _ = client_writer.await;
    let _ = tokio::time::timeout(Duration::from_secs(1), server_writer).await;
    for reader in readers {
        reader.abort();
    }
}

/// A task writing lines to `out`; ends when every sender is dropped or the peer is gone.
fn writer<W>(mut out: W) -> (mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
    let task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if out.write_all(&bytes).await.is_err() {
                break;
            }
            // Flush only when nothing else is queued: a burst goes out in one write.
            if rx.is_empty() && out.flush().await.is_err() {
                break;
            }
        }
        let _ = out.shutdown().await;
    });
    (tx, task)
}

async fn read_lines<R>(input: R, tx: mpsc::Sender<Event>, wrap: fn(Read) -> Event)
where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    loop {
        let read = read_line(&mut reader, MAX_LINE_BYTES).await;
        let eof = matches!(read, Read::Eof);
        if tx.send(wrap(read)).await.is_err() || eof {
            return;
        }
    }
}

/// One newline-terminated line (without the newline; `\r\n` too), at most `max` bytes; a longer
/// line is skipped to its end. Empty lines are skipped.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> Read {
    let mut line: Vec<u8> = Vec::new();
    let mut skipped = 0usize;
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(_) => return Read::Eof,
        };
        if buf.is_empty() {
            // EOF: a last line without a newline still counts.
            if skipped > 0 {
                return Read::TooLong(skipped);
            }
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                return Read::Line(line);
            }
            return Read::Eof;
        }
        let (chunk, found) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if skipped > 0 || line.len() + chunk.len() > max {
            skipped += line.len() + chunk.len();
            line.clear();
        } else {
            line.extend_from_slice(chunk);
        }
        let consumed = found.unwrap_or(chunk.len());
        reader.consume(consumed);
        if found.is_some() {
            if skipped > 0 {
                return Read::TooLong(skipped);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                line.clear();
                continue;
            }
            return Read::Line(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_bounded_and_the_stream_goes_on() {
        let data = b"{\"a\":1}\r\n\n0123456789ABCDEF\n{\"b\":2}".to_vec();
        let mut reader = BufReader::with_capacity(4, &data[..]);
        assert!(matches!(read_line(&mut reader, 10).await, Read::Line(l) if l == b"{\"a\":1}"));
        assert!(matches!(
            read_line(&mut reader, 10).await,
            Read::TooLong(16)
        ));
        assert!(matches!(read_line(&mut reader, 10).await, Read::Line(l) if l == b"{\"b\":2}"));
        assert!(matches!(read_line(&mut reader, 10).await, Read::Eof));
    }
}
