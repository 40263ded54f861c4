//! The CLI against a real `gatehouse serve` speaking HTTPS (`[tls]` with a certificate made
//! here by rcgen): it finds the https URL in DATA_DIR/daemon.url, trusts the daemon through
//! `GATEHOUSE_CA_FILE`, and fails closed without it (an unknown certificate is never trusted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::process::{Command, Output};

use support::{BIN, POLICY, spawn_serve};

fn check(data_dir: &std::path::Path, ca_file: Option<&std::path::Path>) -> Output {
    let mut command = Command::new(BIN);
    command
        .args([
            "check",
            "--tool",
            "Read",
            "--input",
            r#"{"file_path":"README.md"}"#,
        ])
        .env("GATEHOUSE_DATA_DIR", data_dir)
        .env_remove("GATEHOUSE_URL")
        .env_remove("GATEHOUSE_CA_FILE");
    if let Some(ca) = ca_file {
        command.env("GATEHOUSE_CA_FILE", ca);
    }
    command.output().unwrap()
}

#[test]
fn the_cli_checks_over_https_with_its_ca_file_and_fails_closed_without() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let signed =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, signed.cert.pem()).unwrap();
    std::fs::write(&key, signed.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let served = spawn_serve(dir.path(), "warn");
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let data_dir = dir.path().join("data");

    let allowed = check(&data_dir, Some(&cert));
    let stdout = String::from_utf8_lossy(&allowed.stdout);
    assert!(allowed.status.success(), "{allowed:?}");
    assert!(stdout.contains(r#""verdict": "allow""#), "{stdout}");

    let refused = check(&data_dir, None);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        !String::from_utf8_lossy(&refused.stdout).contains("allow"),
        "{refused:?}"
    );
}
