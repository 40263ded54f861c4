//! Remote access (docs/TEAM.md): the daemon serving HTTPS with a certificate generated here
//! (rcgen, self-signed for 127.0.0.1 and localhost), real TLS handshakes from reqwest and the
//! Rust client; plain http refused; `Secure` cookies; only the https origin accepted; a
//! non-loopback listen without TLS or a proxy refused; and the behind-a-proxy set-up.

use std::path::{Path, PathBuf};

use gatehouse_client::{Client, ClientError};
use gatehouse_daemon::{Config, Daemon, Overrides, StartError};
use gatehouse_protocol::{CheckRequest, Verdict};
use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN, SET_COOKIE};

use crate::support::{Setup, TestDaemon, allowed};

/// A self-signed certificate for the loopback names, written as PEM files.
struct Certificate {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn certificate() -> Certificate {
    let dir = tempfile::tempdir().unwrap();
    let signed =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, signed.cert.pem()).unwrap();
    std::fs::write(&key, signed.signing_key.serialize_pem()).unwrap();
    Certificate {
        _dir: dir,
        cert,
        key,
    }
}

async fn tls_daemon(certificate: &Certificate) -> TestDaemon {
    let (cert, key) = (certificate.cert.clone(), certificate.key.clone());
    Setup::default()
        .config(move |config| {
            config.tls.cert = Some(cert);
            config.tls.key = Some(key);
        })
        .start()
        .await
}

fn allowed_request() -> CheckRequest {
    serde_json::from_value(allowed()).unwrap()
}

/// A reqwest client that trusts only `ca` and follows no redirects.
fn https_client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_check_goes_over_https_and_plain_http_gets_no_answer() {
    let certificate = certificate();
    let daemon = tls_daemon(&certificate).await;
    assert_eq!(daemon.base, format!("https://127.0.0.1:{}", daemon.port));

    // The Rust client (as the CLI and hooks use it), trusting the test's CA file.
    let client =
        Client::with_ca_file(&daemon.base, &daemon.agent, Some(&certificate.cert)).unwrap();
    let answer = client.check_once(&allowed_request()).await.unwrap();
    assert_eq!(answer.verdict, Verdict::Allow, "{answer:?}");

    // Without the CA file the system roots do not know this certificate: refused, nothing sent.
    let untrusted = Client::with_ca_file(&daemon.base, &daemon.agent, None).unwrap();
    let refused = untrusted.check_once(&allowed_request()).await;
    assert!(
        matches!(refused, Err(ClientError::Unreachable(_))),
        "{refused:?}"
    );

    // Plain http to the TLS port: the handshake fails and no HTTP answer comes back.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", daemon.port))
        .send()
        .await;
    assert!(plain.is_err(), "plain http was answered: {plain:?}");

    // And the daemon still serves https afterwards.
    let health = https_client(&certificate.cert)
        .get(daemon.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    daemon.stop().await;
}

#[tokio::test]
async fn over_https_cookies_are_secure_and_only_the_https_origin_is_accepted() {
    let certificate = certificate();
    let daemon = tls_daemon(&certificate).await;
    let http = https_client(&certificate.cert);
    assert!(
        daemon.login_url.starts_with("https://127.0.0.1:"),
        "{}",
        daemon.login_url
    );

    let login = http.get(&daemon.login_url).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    let check = |origin: String| {
        http.post(daemon.url("/v1/check"))
            .bearer_auth(&daemon.agent)
            .header(ORIGIN, origin)
            .json(&allowed())
            .send()
    };
    let own = check(format!("https://127.0.0.1:{}", daemon.port))
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    for foreign in [
        "https://evil.example".to_owned(),
        // Our own address, but over plain http: not an origin this daemon serves.
        format!("http://127.0.0.1:{}", daemon.port),
        format!("https://127.0.0.1:{}.evil.example", daemon.port),
    ] {
        let refused = check(foreign.clone()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{foreign}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "forbidden_origin",
            "{foreign}: {body}"
        );
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_plain_loopback_daemon_keeps_plain_cookies() {
    let daemon = TestDaemon::start().await;
    let login = daemon.http.get(&daemon.login_url).send().await.unwrap();
    let cookie = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
    daemon.stop().await;
}

#[tokio::test]
async fn behind_a_proxy_the_public_https_origin_is_the_only_one() {
    let daemon = Setup::default()
        .config(|config| {
            config.tls.behind_proxy = true;
            config.tls.public_url = "https://gatehouse.example.com".into();
        })
        .start()
        .await;
    assert_eq!(daemon.base, "https://gatehouse.example.com");
    // The proxy forwards plain http on loopback with the public Host.
    let direct = format!("http://127.0.0.1:{}", daemon.port);
    let login_path = daemon
        .login_url
        .strip_prefix("https://gatehouse.example.com")
        .unwrap()
        .to_owned();
    let login = daemon
        .http
        .get(format!("{direct}{login_path}"))
        .header(HOST, "gatehouse.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    let check = |origin: &str| {
        daemon
            .http
            .post(format!("{direct}/v1/check"))
            .header(HOST, "gatehouse.example.com")
            .header(ORIGIN, origin)
            .bearer_auth(&daemon.agent)
            .json(&allowed())
            .send()
    };
    assert_eq!(
        check("https://gatehouse.example.com")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for foreign in [
        "http://gatehouse.example.com".to_owned(),
        format!("http://127.0.0.1:{}", daemon.port),
        "https://evil.example".to_owned(),
    ] {
        let refused = check(&foreign).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{foreign}");
    }
    // Another Host is still refused (DNS rebinding).
    let rebound = daemon
        .http
        .get(format!("{direct}/healthz"))
        .header(HOST, "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    daemon.stop().await;
}

#[tokio::test]
async fn a_remote_listen_without_tls_or_a_proxy_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        allow_remote: true,
        data_dir: Some(dir.path().join("data")),
        ..Config::default()
    };
    let refused = Daemon::start(config.clone(), Overrides::default()).await;
    let Err(StartError::Config(err)) = refused else {
        panic!("a remote listen in clear started");
    };
    assert!(err.to_string().contains("tls.behind_proxy"), "{err}");

    // A certificate that cannot be used is a start-up error, never a fall-back to plain http.
    let certificate = certificate();
    std::fs::write(
        &certificate.key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.allow_remote = false;
    config.tls.cert = Some(certificate.cert.clone());
    config.tls.key = Some(certificate.key.clone());
    let refused = Daemon::start(config, Overrides::default()).await;
    assert!(matches!(refused, Err(StartError::Tls(_))), "{refused:?}");
}
