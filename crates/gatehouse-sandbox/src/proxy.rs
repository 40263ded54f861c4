//! The filtering HTTP proxy for `network = "proxy"` profiles: listens on 127.0.0.1 (the only
//! TCP destination Landlock lets the sandbox reach), tunnels `CONNECT host:port` and forwards
//! plain `GET http://host/…` for the profile's hosts only, and answers 403 (and reports
//! `connect host:port`) for any other.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::supervise::Reports;

const MAX_HEAD: usize = 16 * 1024;

/// The proxy's socket, on a free port of 127.0.0.1 (bound before the launcher forks, so the
/// plan can name its port; served by `spawn` after).
pub fn bind() -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

/// Serves the proxy on `listener` (threads that end with the process).
pub fn spawn(listener: TcpListener, hosts: Vec<String>, reports: Reports) -> io::Result<()> {
    std::thread::Builder::new()
        .name("sandbox-proxy".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let hosts = hosts.clone();
                let reports = reports.clone();
                let _ = std::thread::Builder::new()
                    .name("sandbox-proxy-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, &hosts, &reports);
                    });
            }
        })?;
    Ok(())
}

/// Whether `host` is one of `hosts` or a subdomain of one (case-insensitive).
pub fn host_allowed(host: &str, hosts: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    hosts.iter().any(|allowed| {
        let allowed = allowed.trim_end_matches('.').to_ascii_lowercase();
        host == allowed || host.ends_with(&format!(".{allowed}"))
    })
}

/// Splits `host:port` (`[v6]:port` too); `default` when no port is given.
fn host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

fn serve(mut client: TcpStream, hosts: &[String], reports: &Reports) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if head.len() > MAX_HEAD {
            return client.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let (authority, rewritten) = if method.eq_ignore_ascii_case("CONNECT") {
        (target.to_owned(), None)
    } else if let Some(rest) = target.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut out = format!("{method} {path} {version}\r\n");
        for line in lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        (authority.to_owned(), Some(out))
    } else {
        return client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    };
    let default_port = if rewritten.is_some() { 80 } else { 443 };
    let Some((host, port)) = host_port(&authority, default_port) else {
        return client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    };
    if !host_allowed(&host, hosts) {
        reports.deny(format!("connect {host}:{port} (not a host of the profile)"));
        return client.write_all(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 39\r\n\r\nblocked by the gatehouse sandbox proxy\n",
        );
    }
    let Some(addr) = (host.as_str(), port).to_socket_addrs()?.next() else {
        return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
    };
    let mut upstream = match TcpStream::connect_timeout(&addr, Duration::from_secs(15)) {
        Ok(s) => s,
        Err(_) => return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
    };
    match rewritten {
        None => client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?,
        Some(request) => upstream.write_all(request.as_bytes())?,
    }
    upstream.write_all(&head[end..])?;
    client.set_read_timeout(None)?;
    let mut client_read = client.try_clone()?;
    let mut upstream_write = upstream.try_clone()?;
    let to_upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = to_upstream.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_as_subdomains() {
        let hosts = vec!["crates.io".to_owned(), "127.0.0.1".to_owned()];
        assert!(host_allowed("crates.io", &hosts));
        assert!(host_allowed("static.crates.io", &hosts));
        assert!(host_allowed("Static.Crates.IO.", &hosts));
        assert!(!host_allowed("evilcrates.io", &hosts));
        assert!(!host_allowed("crates.io.evil.com", &hosts));
        assert!(host_allowed("127.0.0.1", &hosts));
        assert_eq!(host_port("a.com:8443", 443), Some(("a.com".into(), 8443)));
        assert_eq!(host_port("[::1]:80", 443), Some(("::1".into(), 80)));
        assert_eq!(host_port("a.com", 80), Some(("a.com".into(), 80)));
    }
}
