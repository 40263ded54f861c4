//! The client side of HTTP/1.1 for the load generator: pre-serialised requests and a minimal,
//! allocation-free response parser (status line, `Content-Length` or chunked framing,
//! `Connection: close`), plus the check that a response carries the expected verdict.
//!
//! The parser is incremental: it is handed everything read so far and answers "need more bytes",
//! a complete response (and how many bytes it used), or an error. Keep-alive only works when the
//! framing is known, so a response delimited by closing the connection is an error here.

use std::fmt;

/// Largest response head accepted before giving up on a server.
const MAX_HEAD: usize = 64 * 1024;

/// A `POST /v1/check` request, serialised once and sent many times.
pub fn post_check(host: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /v1/check HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        req.push_str("Authorization: Bearer ");
        req.push_str(token);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A `GET` that closes the connection afterwards (readiness probes).
pub fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The parts of a complete response the load generator looks at; the body is copied out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
    /// Bytes of the input this response used (head and body).
    pub consumed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    HeadTooLarge,
    BadStatusLine,
    BadHeader,
    BadContentLength,
    BadChunk,
    /// Neither `Content-Length` nor chunked: the body would end at close, which keep-alive can't use.
    NoFraming,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ParseError::HeadTooLarge => "response head too large",
            ParseError::BadStatusLine => "malformed status line",
            ParseError::BadHeader => "malformed header line",
            ParseError::BadContentLength => "malformed Content-Length",
            ParseError::BadChunk => "malformed chunked body",
            ParseError::NoFraming => "response has no Content-Length and is not chunked",
        };
        f.write_str(what)
    }
}

impl std::error::Error for ParseError {}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from the start of `buf`. `Ok(None)`: incomplete, read more. On success the
/// body (de-chunked) is in `body`, which is cleared first and keeps its capacity between calls.
pub fn parse_response(buf: &[u8], body: &mut Vec<u8>) -> Result<Option<Head>, ParseError> {
    let Some(head_len) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(ParseError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let head = &buf[..head_len];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(ParseError::BadStatusLine)?;
    let (http10, status) = parse_status_line(status_line)?;

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = http10;
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeader)?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let text = std::str::from_utf8(value).map_err(|_| ParseError::BadContentLength)?;
            let n = text.parse().map_err(|_| ParseError::BadContentLength)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(ParseError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }

    let body_start = head_len + 4;
    let rest = &buf[body_start..];
    body.clear();
    let body_len = if chunked {
        match parse_chunked(rest, body)? {
            Some(used) => used,
            None => return Ok(None),
        }
    } else if let Some(n) = content_length {
        if rest.len() < n {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..n]);
        n
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        0
    } else {
        return Err(ParseError::NoFraming);
    };
    Ok(Some(Head {
        status,
        close,
        consumed: body_start + body_len,
    }))
}

/// `HTTP/1.x SSS reason` → (is HTTP/1.0, status).
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), ParseError> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(ParseError::BadStatusLine)?;
    let (&minor, rest) = rest.split_first().ok_or(ParseError::BadStatusLine)?;
    let rest = rest.strip_prefix(b" ").ok_or(ParseError::BadStatusLine)?;
    if rest.len() < 3 || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(ParseError::BadStatusLine);
    }
    let mut status = 0u16;
    for &d in &rest[..3] {
        if !d.is_ascii_digit() {
            return Err(ParseError::BadStatusLine);
        }
        status = status * 10 + u16::from(d - b'0');
    }
    Ok((minor == b'0', status))
}

/// De-chunks a chunked body into `out`; `Ok(None)` if incomplete, else the bytes used.
fn parse_chunked(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ParseError> {
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            return if buf.len() - pos > 1024 {
                Err(ParseError::BadChunk)
            } else {
                Ok(None)
            };
        };
        let line = &buf[pos..pos + eol];
        let size_text = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(line)
            .trim_ascii();
        let size_text = std::str::from_utf8(size_text).map_err(|_| ParseError::BadChunk)?;
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ParseError::BadChunk)?;
        pos += eol + 2;
        if size == 0 {
            // Trailers (usually none), then the final empty line.
            loop {
                let Some(eol) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let end = pos.checked_add(size).ok_or(ParseError::BadChunk)?;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ParseError::BadChunk);
        }
        out.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

/// What a correct answer to one check request looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub verdict: &'static str,
    /// `None`: the server does not name rules (the floor).
    pub rule_id: Option<&'static str>,
    verdict_needle: Vec<u8>,
    rule_needle: Option<Vec<u8>>,
}

impl Expect {
    pub fn new(verdict: &'static str, rule_id: Option<&'static str>) -> Self {
        Expect {
            verdict,
            rule_id,
            verdict_needle: format!("\"verdict\":\"{verdict}\"").into_bytes(),
            rule_needle: rule_id.map(|id| format!("\"rule_id\":\"{id}\"").into_bytes()),
        }
    }

    /// Whether `body` (a JSON object) carries this verdict and rule. A byte search for compact
    /// JSON first (what every server here sends), then a real parse so whitespace can't fail it.
    pub fn matches(&self, body: &[u8]) -> bool {
        let compact = find(body, &self.verdict_needle).is_some()
            && self
                .rule_needle
                .as_ref()
                .is_none_or(|n| find(body, n).is_some());
        if compact {
            return true;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return false;
        };
        value.get("verdict").and_then(|v| v.as_str()) == Some(self.verdict)
            && self
                .rule_id
                .is_none_or(|id| value.get("rule_id").and_then(|v| v.as_str()) == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<(Head, Vec<u8>)>, ParseError> {
        let mut body = Vec::new();
        Ok(parse_response(input, &mut body)?.map(|h| (h, body)))
    }

    #[test]
    fn content_length_response_parses_and_reports_bytes_used() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{\"verdict\":\"allow\"}NEXT";
        let (head, body) = parse(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert!(!head.close);
        assert_eq!(body, br#"{"verdict":"allow"}"#);
        assert_eq!(&raw[head.consumed..], b"NEXT");
    }

    #[test]
    fn every_prefix_of_a_response_is_incomplete_not_an_error() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for n in 0..raw.len() {
            assert_eq!(parse(&raw[..n]).unwrap(), None, "prefix of {n} bytes");
        }
        assert!(parse(raw).unwrap().is_some());
    }

    #[test]
    fn chunked_body_is_dechunked_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\nA\r\n:\"bcdefghi\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let (head, body) = parse(raw).unwrap().unwrap();
        assert_eq!(body, br#"{"a":"bcdefghi}"#);
        assert_eq!(head.consumed, raw.len());
        for n in 0..raw.len() {
            assert_eq!(parse(&raw[..n]).unwrap(), None, "prefix of {n} bytes");
        }
    }

    #[test]
    fn connection_close_and_http10_are_noticed() {
        let (head, _) =
            parse(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((head.status, head.close), (503, true));
        let (head, _) = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.close);
        let (head, _) =
            parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(!head.close);
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(
            parse(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(ParseError::BadStatusLine)
        );
        assert_eq!(
            parse(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Err(ParseError::BadStatusLine)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
            Err(ParseError::BadHeader)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\n\r\nbody"),
            Err(ParseError::NoFraming)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ParseError::BadChunk)
        );
        assert_eq!(
            parse(&vec![b'a'; MAX_HEAD + 1]),
            Err(ParseError::HeadTooLarge)
        );
    }

    #[test]
    fn no_content_statuses_need_no_framing() {
        let (head, body) = parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.status, body.len()), (204, 0));
    }

    #[test]
    fn request_is_framed_with_auth_when_given() {
        let req = post_check("127.0.0.1:9", Some("tok"), b"{}");
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("Authorization: Bearer tok\r\n\r\n{}"));
        assert!(
            !String::from_utf8(post_check("h", None, b"{}"))
                .unwrap()
                .contains("Authorization")
        );
    }

    #[test]
    fn expectations_check_verdict_and_rule() {
        let allow_ls = Expect::new("allow", Some("allow-ls"));
        assert!(allow_ls.matches(br#"{"action_id":"a","verdict":"allow","rule_id":"allow-ls"}"#));
        assert!(allow_ls.matches(b"{ \"verdict\" : \"allow\", \"rule_id\": \"allow-ls\" }"));
        assert!(!allow_ls.matches(br#"{"verdict":"reject","rule_id":"allow-ls"}"#));
        assert!(!allow_ls.matches(br#"{"verdict":"allow","rule_id":"allow-git"}"#));
        assert!(!allow_ls.matches(b"<html>allow</html>"));
        let floor = Expect::new("allow", None);
        assert!(floor.matches(br#"{"verdict":"allow"}"#));
        assert!(!floor.matches(br#"{"verdict":"pending"}"#));
    }
}
