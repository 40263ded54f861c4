//! Server-sent events as the HTTP transport needs them: reading the JSON-RPC messages of an
//! upstream answer as they arrive (JSON or an SSE stream), and writing a message as an event.
//! Pure: bytes in, JSON values out.

use serde_json::Value;

/// Reads the JSON-RPC messages of one upstream answer, chunk by chunk.
///
/// An SSE answer yields each event's message as soon as the event is complete (so the proxy
/// knows a `tools/list` before the client can act on it); a JSON answer yields its message at
/// the end. Gives up (yields nothing more) past `limit` bytes of one event or body.
#[derive(Debug)]
pub struct MessageScan {
    sse: bool,
    limit: usize,
    buf: Vec<u8>,
    overflow: bool,
}

impl MessageScan {
    /// `content_type`: the answer's `Content-Type`.
    pub fn new(content_type: Option<&str>, limit: usize) -> MessageScan {
        MessageScan {
            sse: content_type.is_some_and(|c| c.trim_start().starts_with("text/event-stream")),
            limit,
            buf: Vec::new(),
            overflow: false,
        }
    }

    /// Whether a message was too big to read (and so was not).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// A chunk of the answer; returns the messages of the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Value> {
        if self.overflow {
            return Vec::new();
        }
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        if self.sse {
            while let Some((end, skip)) = event_end(&self.buf) {
                if let Some(value) = event_data(&self.buf[..end]) {
                    out.push(value);
                }
                self.buf.drain(..end + skip);
            }
        }
        if self.buf.len() > self.limit {
            self.overflow = true;
            self.buf = Vec::new();
        }
        out
    }

    /// The end of the answer: a JSON body's message, or a last event without its blank line.
    pub fn finish(&mut self) -> Vec<Value> {
        if self.overflow {
            return Vec::new();
        }
        let rest = std::mem::take(&mut self.buf);
        let value = if self.sse {
            event_data(&rest)
        } else {
            serde_json::from_slice(&rest).ok()
        };
        value.into_iter().collect()
    }
}

/// Where the first event of `buf` ends: (its length, the length of the blank line after it).
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

/// The JSON message in one event's `data:` lines (joined by newlines), if any.
fn event_data(event: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(event);
    let mut data = String::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data).ok()
}

/// One JSON-RPC message as an SSE `message` event.
pub fn event(message: &Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

/// The messages of a JSON body that is not a single JSON value, as SSE `data:` lines.
pub fn raw_event(body: &[u8]) -> Vec<u8> {
    let mut out = b"event: message\n".to_vec();
    for line in String::from_utf8_lossy(body).lines() {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sse_events_are_read_as_they_complete_across_chunks() {
        let mut scan = MessageScan::new(Some("text/event-stream"), 1024);
        assert!(scan.push(b"event: message\nid: 1\nda").is_empty());
        let got = scan.push(b"ta: {\"id\":1,\"result\":{}}\n\ndata: {\"a\"");
        assert_eq!(got, vec![json!({"id": 1, "result": {}})]);
        assert_eq!(scan.push(b":2}\r\n\r\n"), vec![json!({"a": 2})]);
        assert!(scan.finish().is_empty());
    }

    #[test]
    fn a_json_body_is_read_at_its_end_and_size_is_bounded() {
        let mut scan = MessageScan::new(Some("application/json"), 1024);
        assert!(scan.push(b"{\"id\":").is_empty());
        assert!(scan.push(b"2}").is_empty());
        assert_eq!(scan.finish(), vec![json!({"id": 2})]);
        let mut small = MessageScan::new(Some("text/event-stream"), 8);
        assert!(small.push(b"data: {\"long\": true}").is_empty());
        assert!(small.overflowed());
        assert!(small.push(b"\n\n").is_empty());
        assert!(small.finish().is_empty());
    }

    #[test]
    fn events_round_trip() {
        let message = json!({"jsonrpc": "2.0", "method": "notifications/progress"});
        let mut scan = MessageScan::new(Some("text/event-stream"), 1024);
        assert_eq!(scan.push(&event(&message)), vec![message]);
        let mut scan = MessageScan::new(Some("text/event-stream"), 1024);
        assert_eq!(
            scan.push(&raw_event(b"{\n\"a\": 1\n}")),
            vec![json!({"a": 1})]
        );
    }
}
