//! DNS rebinding: a page whose host name resolves to 127.0.0.1 sends its own name as `Host`. Any
//! request not addressed to the daemon's own loopback names (`evil.com`, `localhost.evil.com`,
//! `127.0.0.1.nip.io`, `localhost:PORT.evil.com`, userinfo, no Host, two Hosts, an absolute-form
//! target naming another host) is refused with 403 before routing and auth.

use reqwest::StatusCode;
use reqwest::header;

use crate::boundary::*;
use crate::support::{TestDaemon, allowed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_before_auth_and_records_nothing() {
    let daemon = TestDaemon::start().await;
    let port = daemon.port;
    let hosts = [
        "evil.com".to_owned(),
        format!("evil.com:{port}"),
        format!("localhost.evil.com:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}.evil.com"),
        format!("localhost:{port}.evil.com"),
        format!("user@127.0.0.1:{port}"),
        String::new(),
    ];
    for host in &hosts {
        // A valid agent token does not help.
        let request = post(&daemon, "/v1/check")
            .header(header::HOST, host)
            .bearer_auth(&daemon.agent)
            .json(&allowed());
        let reply = send(request).await;
        let case = format!("Host {host:?}");
        assert_refused(case, &reply, StatusCode::FORBIDDEN, "forbidden_host");
    }
    // Before routing and auth: the page, the open endpoints, an unknown route, the login link
    // and the event stream are refused alike.
    let login = daemon.login_url.strip_prefix(&daemon.base).expect("ours");
    for path in ["/", "/healthz", "/metrics", "/nope", "/v1/actions", login] {
        let request = get(&daemon, path)
            .header(header::HOST, "evil.com")
            .bearer_auth(&daemon.approver);
        let reply = send(request).await;
        assert_refused(path, &reply, StatusCode::FORBIDDEN, "forbidden_host");
    }
    let approver = format!("Bearer {}", daemon.approver);
    let headers = vec![("host", "evil.com".into()), ("authorization", approver)];
    let (status, body) = ws_connect(&daemon, headers).await.expect_err("refused");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_host");
    // The refused request did not spend the login code.
    let reply = send(daemon.http.get(&daemon.login_url)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(actions(&daemon), 0, "a refused check records nothing");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_no_host_header_is_refused() {
    let daemon = TestDaemon::start().await;
    let body = allowed().to_string();
    let request = |version: &str, host: &str| {
        format!(
            "POST /v1/check {version}\r\n{host}Authorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            daemon.agent,
            body.len()
        )
    };
    for version in ["HTTP/1.0", "HTTP/1.1"] {
        let (status, reply) = raw_http(daemon.port, &request(version, "")).await;
        assert_eq!(status, 403, "{version}: {reply}");
        assert_envelope(&reply);
        assert_eq!(reply["error"]["code"], "forbidden_host", "{version}");
    }
    assert_eq!(actions(&daemon), 0, "a refused check records nothing");
    // The same raw request with our own Host goes through: the refusal was the Host rule.
    let host = format!("Host: 127.0.0.1:{}\r\n", daemon.port);
    let (status, reply) = raw_http(daemon.port, &request("HTTP/1.1", &host)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["verdict"], "allow");
    assert_eq!(actions(&daemon), 1);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_answers_to_its_own_loopback_names() {
    let daemon = TestDaemon::start().await;
    let port = daemon.port;
    let hosts = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ];
    for host in &hosts {
        let request = post(&daemon, "/v1/check")
            .header(header::HOST, host)
            .bearer_auth(&daemon.agent)
            .json(&allowed());
        let reply = send(request).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "Host {host:?}: {}",
            reply.body
        );
        assert_eq!(reply.body["verdict"], "allow");
    }
    assert_eq!(actions(&daemon), hosts.len() as i64);
}

/// Requests `reqwest` will not send: an absolute-form target (whose authority HTTP says
/// overrides Host), two Host headers, userinfo in the Host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_targets_and_doubled_hosts_naming_another_host_are_refused() {
    let daemon = TestDaemon::start().await;
    let port = daemon.port;
    let ours = format!("127.0.0.1:{port}");
    let body = allowed().to_string();
    let request = |target: &str, hosts: &[&str]| {
        let hosts: String = hosts.iter().map(|h| format!("Host: {h}\r\n")).collect();
        format!(
            "POST {target} HTTP/1.1\r\n{hosts}Authorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            daemon.agent,
            body.len()
        )
    };
    let evil_port = format!("localhost:{port}.evil.com");
    let userinfo = format!("user@{ours}");
    let cases = [
        (
            "absolute-form naming evil.com",
            request("http://evil.com/v1/check", &[&ours]),
        ),
        (
            "absolute-form naming localhost:PORT.evil.com",
            request(&format!("http://{evil_port}/v1/check"), &[&ours]),
        ),
        (
            "absolute-form with userinfo",
            request(&format!("http://{userinfo}/v1/check"), &[&ours]),
        ),
        (
            "two Hosts, ours first",
            request("/v1/check", &[&ours, "evil.com"]),
        ),
        (
            "two Hosts, ours last",
            request("/v1/check", &["evil.com", &ours]),
        ),
        (
            "two Hosts, both ours",
            request("/v1/check", &[&ours, &ours]),
        ),
        ("Host with userinfo", request("/v1/check", &[&userinfo])),
    ];
    for (case, raw) in &cases {
        let (status, reply) = raw_http(port, raw).await;
        assert_eq!(status, 403, "{case}: {reply}");
        assert_envelope(&reply);
        assert_eq!(reply["error"]["code"], "forbidden_host", "{case}");
    }
    assert_eq!(actions(&daemon), 0, "a refused check records nothing");
    // An absolute-form target naming us is served: the refusals were about the names.
    let raw = request(&format!("http://{ours}/v1/check"), &[&ours]);
    let (status, reply) = raw_http(port, &raw).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["verdict"], "allow");
    assert_eq!(allowed_actions(&daemon), 1);
}
