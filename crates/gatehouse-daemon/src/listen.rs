//! The check API's Unix-domain socket (hardened mode): binding the socket file safely (a stale
//! one is replaced only when nothing listens on it; the file appears with its final mode and
//! group), removing it at shutdown, and the peer credentials the kernel reports for each
//! connection (`SO_PEERCRED`), which the API hands to the check as a [`Peer`].

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use crate::check::Peer;

/// How the socket file is made.
#[derive(Debug, Clone)]
pub struct SocketSpec {
    pub path: PathBuf,
    /// Permission bits of the socket file (who may connect).
    pub mode: u32,
    /// Group name or numeric gid to give the socket file; `None` keeps the daemon's group.
    pub group: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("another process is listening on {0}; is another gatehouse daemon running?")]
    InUse(PathBuf),
    #[error("no group `{0}` (in /etc/group, or a numeric gid)")]
    UnknownGroup(String),
    #[error("cannot create the socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The bound check socket: the listener, and the file it owns (removed when this is dropped).
#[derive(Debug)]
pub struct CheckSocket {
    pub listener: UnixListener,
    pub file: SocketFile,
}

/// The socket file, removed on drop if it is still the one this daemon made (same inode), so a
/// daemon that lost its path to another one never removes the other's socket.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.file_type().is_socket() && meta.ino() == self.inode);
        if ours && let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "could not remove the check socket");
        }
    }
}

/// Binds the check socket at `spec.path`.
///
/// A file already there is replaced only if it is a socket nothing accepts connections on (a
/// daemon that was killed); a live socket or any other kind of file is an error. The socket is
/// bound under a temporary name beside the path, given its mode and group, then renamed into
/// place, so nobody can connect through a moment of wider permissions.
pub async fn bind(spec: &SocketSpec) -> Result<CheckSocket, SocketError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SocketError::Io { path, source }
    };
    let gid = spec.group.as_deref().map(resolve_group).transpose()?;
    clear_stale(&spec.path)?;
    let file_name = spec
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "check.sock".into());
    let staging = spec
        .path
        .with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    match std::fs::remove_file(&staging) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(io(&staging)(err)),
        _ => {}
    }
    let listener = UnixListener::bind(&staging).map_err(io(&spec.path))?;
    let placed = (|| {
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(spec.mode))?;
        if gid.is_some() {
            std::os::unix::fs::chown(&staging, None, gid)?;
        }
        std::fs::rename(&staging, &spec.path)?;
        std::fs::symlink_metadata(&spec.path).map(|meta| meta.ino())
    })();
    match placed {
        Ok(inode) => Ok(CheckSocket {
            listener,
            file: SocketFile {
                path: spec.path.clone(),
                inode,
            },
        }),
        Err(source) => {
            let _ = std::fs::remove_file(&staging);
            Err(SocketError::Io {
                path: spec.path.clone(),
                source,
            })
        }
    }
}

/// Removes a socket file left by a daemon that is gone; refuses anything else.
fn clear_stale(path: &Path) -> Result<(), SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io(err)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse(path.to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale check socket");
            std::fs::remove_file(path).map_err(io)
        }
        Err(err) => Err(io(err)),
    }
}

/// A group name from /etc/group, or a numeric gid.
fn resolve_group(group: &str) -> Result<u32, SocketError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").map_err(|source| SocketError::Io {
        path: "/etc/group".into(),
        source,
    })?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| SocketError::UnknownGroup(group.to_owned()))
}

/// Connection info of a check-socket connection: its peer as the kernel reported it when it
/// connected (`None` if it could not; such connections are refused by the API's guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketPeer(pub Option<Peer>);

impl Connected<IncomingStream<'_, UnixListener>> for SocketPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(cred) => SocketPeer(Some(Peer {
                uid: cred.uid(),
                pid: cred.pid(),
            })),
            Err(err) => {
                tracing::warn!(%err, "could not read a check-socket peer's credentials");
                SocketPeer(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: PathBuf, mode: u32) -> SocketSpec {
        SocketSpec {
            path,
            mode,
            group: None,
        }
    }

    #[tokio::test]
    async fn the_socket_gets_its_mode_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.sock");
        let socket = bind(&spec(path.clone(), 0o660)).await.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staging file is left behind"
        );
        drop(socket);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[tokio::test]
    async fn a_live_socket_or_another_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.sock");
        let first = bind(&spec(path.clone(), 0o666)).await.unwrap();
        let second = bind(&spec(path.clone(), 0o666)).await;
        assert!(matches!(second, Err(SocketError::InUse(_))), "{second:?}");
        drop(first);

        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "keep me").unwrap();
        let refused = bind(&spec(file.clone(), 0o666)).await;
        assert!(
            matches!(refused, Err(SocketError::NotASocket(_))),
            "{refused:?}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.sock");
        // A socket file nothing listens on, as a killed daemon leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let socket = bind(&spec(path.clone(), 0o666)).await.unwrap();
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("the new socket accepts connections");
        drop(socket);
    }

    #[tokio::test]
    async fn the_socket_gets_its_group() {
        let dir = tempfile::tempdir().unwrap();
        if std::fs::metadata(dir.path()).unwrap().uid() != 0 {
            eprintln!("skipped: giving a file to another group needs root (or membership)");
            return;
        }
        let path = dir.path().join("check.sock");
        let socket = bind(&SocketSpec {
            path: path.clone(),
            mode: 0o660,
            group: Some("65534".into()),
        })
        .await
        .unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.gid(), 65534);
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        drop(socket);
    }

    #[test]
    fn groups_resolve_by_number_or_name() {
        assert_eq!(resolve_group("4242").unwrap(), 4242);
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert!(matches!(
            resolve_group("no-such-group-here"),
            Err(SocketError::UnknownGroup(_))
        ));
    }
}
