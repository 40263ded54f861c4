//! The hook process's HTTP/1.1 client: one request per connection over TCP or the daemon's
//! check socket, with std only (no async runtime to start), a deadline on every step, and a cap
//! on what it reads. Anything unexpected is an error; the caller turns every error into a deny.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Largest response the hook reads.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `http://HOST:PORT` (the Host header names it as given).
    Tcp { authority: String },
    /// `unix:PATH`: the check socket.
    Unix { path: String },
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path".into());
            }
            return Ok(Endpoint::Unix {
                path: path.to_owned(),
            });
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("the daemon URL `{url}` must start with http:// (or be unix:PATH)")
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "the daemon URL `{url}` must be http://HOST:PORT with no path"
            ));
        }
        Ok(Endpoint::Tcp {
            authority: authority.to_owned(),
        })
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

trait Stream: Read + Write {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()>;
}

impl Stream for TcpStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl Stream for UnixStream {
    fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "the daemon did not answer in time".to_owned())
}

fn connect(endpoint: &Endpoint, deadline: Instant) -> Result<Box<dyn Stream>, String> {
    match endpoint {
        Endpoint::Unix { path } => {
            let stream = UnixStream::connect(path)
                .map_err(|err| format!("cannot connect to the daemon at unix:{path}: {err}"))?;
            Ok(Box::new(stream))
        }
        Endpoint::Tcp { authority } => {
            let addrs = authority
                .to_socket_addrs()
                .map_err(|err| format!("cannot resolve {authority}: {err}"))?;
            let mut last = format!("{authority} has no address");
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(Box::new(stream));
                    }
                    Err(err) => last = format!("cannot connect to the daemon at {addr}: {err}"),
                }
            }
            Err(last)
        }
    }
}

/// Sends one request and reads the whole response before `deadline`.
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    deadline: Instant,
) -> Result<Response, String> {
    let mut stream = connect(endpoint, deadline)?;
    let host = match endpoint {
        Endpoint::Tcp { authority } => authority.as_str(),
        Endpoint::Unix { .. } => "localhost",
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        if token.contains(['\r', '\n']) {
            return Err("the agent token holds a line break".into());
        }
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
    stream
        .set_timeouts(remaining(deadline)?)
        .map_err(|err| format!("socket: {err}"))?;
    stream
        .write_all(&out)
        .map_err(|err| format!("cannot send to the daemon: {err}"))?;
    let mut received = Vec::with_capacity(4096);
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .set_timeouts(remaining(deadline)?)
            .map_err(|err| format!("socket: {err}"))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if received.len() > MAX_RESPONSE_BYTES {
                    return Err("the daemon's answer is too large".into());
                }
                if complete(&received) {
                    break;
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("the daemon did not answer in time".into());
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("reading the daemon's answer: {err}")),
        }
    }
    parse_response(&received)
}

/// The head is in and the body is as long as its Content-Length says.
fn complete(received: &[u8]) -> bool {
    let Some(end) = find(received, b"\r\n\r\n") else {
        return false;
    };
    match header(&received[..end], "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => received.len() >= end + 4 + length,
        None => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header(head: &[u8], name: &str) -> Option<String> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn parse_response(received: &[u8]) -> Result<Response, String> {
    let end = find(received, b"\r\n\r\n").ok_or("the daemon's answer is not HTTP")?;
    let head = &received[..end];
    let status_line = std::str::from_utf8(head)
        .ok()
        .and_then(|h| h.split("\r\n").next())
        .ok_or("the daemon's answer is not HTTP")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("the daemon's answer is not HTTP: {status_line:?}"))?;
    let raw = &received[end + 4..];
    let body = if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(raw)?
    } else if let Some(length) = header(head, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| "the daemon's answer has a bad Content-Length".to_owned())?;
        if raw.len() < length {
            return Err("the daemon's answer was cut short".into());
        }
        raw[..length].to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n").ok_or("the daemon's chunked answer was cut short")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size".to_owned())?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if raw.len() < size + 2 {
            return Err("the daemon's chunked answer was cut short".into());
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_tcp_authorities_or_unix_paths() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:7400/").unwrap(),
            Endpoint::Tcp {
                authority: "127.0.0.1:7400".into()
            }
        );
        assert_eq!(
            Endpoint::parse("unix:/run/g.sock").unwrap(),
            Endpoint::Unix {
                path: "/run/g.sock".into()
            }
        );
        for bad in ["https://x", "http://", "http://a/b", "ftp://x", "unix:"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_parse_with_length_or_chunks_and_refuse_garbage() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"{}");
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"SSH-2.0 x\r\n\r\n").is_err());
    }
}
