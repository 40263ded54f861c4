//! TLS for the daemon's TCP listener (`[tls] cert`/`key`, docs/TEAM.md "Remote access"):
//! loading the PEM certificate chain and key into a rustls server configuration, and a
//! [`TlsListener`] that axum serves like a `TcpListener`.
//!
//! Handshakes run in their own tasks (bounded in number and in time), so one slow or silent
//! client never holds up the accept loop; a connection that does not complete a TLS handshake
//! (a plain-http client, a port scanner) is closed without an answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its TLS handshake.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; past it new connections wait in the kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS {what} {path} holds no usable PEM {expected}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        message: String,
    },
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {message}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// The certificate chain (leaf first) and private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads both files and builds the server configuration (TLS 1.2 and 1.3, HTTP/1.1 by
    /// ALPN, no client certificates). Every problem names its file.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let config_error = |message: String| TlsError::Config {
            cert: self.cert.clone(),
            key: self.key.clone(),
            message,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| config_error(err.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| config_error(err.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem("certificate", path)?;
    let bad = |message: String| TlsError::Pem {
        what: "certificate",
        path: path.to_owned(),
        expected: "CERTIFICATE block",
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad(err.to_string()))?;
    if certs.is_empty() {
        return Err(bad("the file has none".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| TlsError::Pem {
        what: "key",
        path: path.to_owned(),
        expected: "PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)",
        message: err.to_string(),
    })
}

/// A TCP listener whose connections are TLS sessions, for `axum::serve`.
///
/// A background task accepts TCP connections and completes each handshake in its own task;
/// finished sessions queue here. Dropping the listener stops accepting and closes the port.
pub struct TlsListener {
    sessions: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl TlsListener {
    /// Serves TLS on `listener` (already bound) with `config`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (sender, sessions) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), sender));
        Ok(TlsListener {
            sessions,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sessions: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%err, "accepting a TLS connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Answers are small and latency is the point: no Nagle delay on them.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                Ok(Ok(session)) => {
                    let _ = sessions.send((session, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.sessions.recv().await {
            Some(session) => session,
            // The accept loop ended (it only does when the listener is dropped): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let err = missing.server_config().unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");

        let empty = TlsFiles {
            cert: write(dir.path(), "cert.pem", "not pem at all\n"),
            key: write(dir.path(), "key.pem", "nor this\n"),
        };
        let err = empty.server_config().unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("CERTIFICATE"),
            "{err}"
        );

        let signed = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let mismatched = TlsFiles {
            cert: write(dir.path(), "a.pem", &signed.cert.pem()),
            key: write(dir.path(), "b.key", &other.signing_key.serialize_pem()),
        };
        let err = mismatched.server_config().unwrap_err().to_string();
        assert!(err.contains("cannot be used together"), "{err}");

        let good = TlsFiles {
            cert: write(dir.path(), "good.pem", &signed.cert.pem()),
            key: write(dir.path(), "good.key", &signed.signing_key.serialize_pem()),
        };
        good.server_config().unwrap();
    }
}
