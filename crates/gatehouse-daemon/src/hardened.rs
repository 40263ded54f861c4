//! Hardened mode's start-up audit: the daemon refuses to start when anyone but its own user could
//! change what it trusts — the data directory (ledger, tokens, signing key), the secrets in it,
//! the policy file, or a directory above them or above the check socket (whoever could write one
//! could put their own socket in its place and answer the agents) — or read its secrets.
//!
//! It reports every problem at once, and it runs before the data directory is prepared (which
//! would otherwise quietly tighten a loose directory and hide that it had been open).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::LEDGER_KEY_FILE;
use crate::auth::{AGENT_TOKEN_FILE, APPROVER_TOKEN_FILE};

/// Write permission for the group or others.
const SHARED_WRITE: u32 = 0o022;
/// Any permission for the group or others.
const SHARED_ANY: u32 = 0o077;
/// The sticky bit: in such a directory only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// What the daemon trusts, as the configuration names it.
#[derive(Debug, Clone, Copy)]
pub struct Trusted<'a> {
    pub data_dir: &'a Path,
    pub policy: Option<&'a Path>,
    pub socket: Option<&'a Path>,
}

/// Every reason `trusted` is not safe to run hardened over, as the process `uid`.
pub fn audit(trusted: Trusted<'_>, uid: u32) -> Result<(), Vec<String>> {
    let Trusted {
        data_dir,
        policy,
        socket,
    } = trusted;
    let mut problems = Vec::new();
    if let Some(socket) = socket {
        audit_ancestors(socket, uid, &mut problems);
    }
    audit_ancestors(data_dir, uid, &mut problems);
    match std::fs::metadata(data_dir) {
        Ok(meta) => {
            owned_by_daemon(data_dir, &meta, uid, &mut problems);
            if mode(&meta) & SHARED_WRITE != 0 {
                problems.push(format!(
                    "the data directory {} is writable by other users (mode {:04o}); `chmod 0700` it",
                    data_dir.display(),
                    mode(&meta)
                ));
            }
            for secret in [APPROVER_TOKEN_FILE, AGENT_TOKEN_FILE, LEDGER_KEY_FILE] {
                audit_file(&data_dir.join(secret), SHARED_ANY, uid, &mut problems);
            }
            for ledger in ["ledger.db", "ledger.db-wal", "ledger.db-shm"] {
                audit_file(&data_dir.join(ledger), SHARED_WRITE, uid, &mut problems);
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => problems.push(format!(
            "cannot inspect the data directory {}: {err}",
            data_dir.display()
        )),
    }
    if let Some(policy) = policy {
        audit_ancestors(policy, uid, &mut problems);
        match std::fs::metadata(policy) {
            Ok(meta) => {
                if meta.uid() != uid && meta.uid() != 0 {
                    problems.push(format!(
                        "the policy file {} is owned by uid {}, not by the daemon's user (uid {uid}) or root",
                        policy.display(),
                        meta.uid()
                    ));
                }
                if mode(&meta) & SHARED_WRITE != 0 {
                    problems.push(format!(
                        "the policy file {} is writable by other users (mode {:04o}); `chmod go-w` it",
                        policy.display(),
                        mode(&meta)
                    ));
                }
            }
            Err(err) => problems.push(format!(
                "cannot inspect the policy file {}: {err}",
                policy.display()
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn mode(meta: &std::fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

fn owned_by_daemon(path: &Path, meta: &std::fs::Metadata, uid: u32, problems: &mut Vec<String>) {
    if meta.uid() != uid {
        problems.push(format!(
            "{} is owned by uid {}, not by the daemon's user (uid {uid})",
            path.display(),
            meta.uid()
        ));
    }
}

/// A file in the data directory, if it exists: the daemon's, with none of `forbidden` set.
fn audit_file(path: &Path, forbidden: u32, uid: u32, problems: &mut Vec<String>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        problems.push(format!(
            "{} is a symbolic link; the daemon's files must be its own",
            path.display()
        ));
        return;
    }
    owned_by_daemon(path, &meta, uid, problems);
    if mode(&meta) & forbidden != 0 {
        let fix = if forbidden == SHARED_ANY {
            "chmod 0600"
        } else {
            "chmod go-w"
        };
        problems.push(format!(
            "{} is {} by other users (mode {:04o}); `{fix}` it",
            path.display(),
            if forbidden == SHARED_ANY {
                "accessible"
            } else {
                "writable"
            },
            mode(&meta)
        ));
    }
}

/// The directories above `path`: whoever may write one (without the sticky bit) could rename
/// what is below it and put their own in its place. Each must be the daemon's user's or root's.
fn audit_ancestors(path: &Path, uid: u32, problems: &mut Vec<String>) {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    for dir in absolute.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let open = mode(&meta) & SHARED_WRITE != 0 && mode(&meta) & STICKY == 0;
        let foreign = meta.uid() != uid && meta.uid() != 0;
        if open || foreign {
            problems.push(format!(
                "{} (above {}) {}; another user could replace what is below it",
                dir.display(),
                path.display(),
                if open {
                    format!(
                        "is writable by other users (mode {:04o}) without the sticky bit",
                        mode(&meta)
                    )
                } else {
                    format!("is owned by uid {}", meta.uid())
                }
            ));
        }
    }
}

/// The effective uid of this process (the owner of what it creates).
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A data directory and policy as `gatehouse serve --hardened` wants them.
    fn tidy() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::auth::prepare_data_dir(&data).unwrap();
        crate::auth::Tokens::load_or_create(&data).unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, "default = \"pause\"\n").unwrap();
        chmod(&policy, 0o644);
        (dir, data, policy)
    }

    fn trusted<'a>(data: &'a Path, policy: &'a Path) -> Trusted<'a> {
        Trusted {
            data_dir: data,
            policy: Some(policy),
            socket: None,
        }
    }

    #[test]
    fn a_socket_in_a_directory_others_can_write_is_refused() {
        let (dir, data, policy) = tidy();
        let sockets = dir.path().join("run");
        std::fs::create_dir(&sockets).unwrap();
        chmod(&sockets, 0o777);
        let socket = sockets.join("check.sock");
        let audited = Trusted {
            socket: Some(&socket),
            ..trusted(&data, &policy)
        };
        let problems = audit(audited, effective_uid()).unwrap_err().join("\n");
        assert!(
            problems.contains("above") && problems.contains("check.sock"),
            "{problems}"
        );
        chmod(&sockets, 0o755);
        audit(audited, effective_uid()).unwrap();
    }

    #[test]
    fn a_private_data_dir_and_policy_pass() {
        let (_dir, data, policy) = tidy();
        audit(trusted(&data, &policy), effective_uid()).unwrap();
    }

    #[test]
    fn writable_by_others_is_refused_with_every_reason() {
        let (_dir, data, policy) = tidy();
        chmod(&data, 0o770);
        chmod(&policy, 0o666);
        chmod(&data.join(APPROVER_TOKEN_FILE), 0o640);
        let problems = audit(trusted(&data, &policy), effective_uid()).unwrap_err();
        let all = problems.join("\n");
        assert_eq!(problems.len(), 3, "{all}");
        assert!(
            all.contains("data directory") && all.contains("0770"),
            "{all}"
        );
        assert!(all.contains("policy file") && all.contains("0666"), "{all}");
        assert!(
            all.contains(APPROVER_TOKEN_FILE) && all.contains("0640"),
            "{all}"
        );
    }

    #[test]
    fn an_open_directory_above_is_refused_unless_sticky() {
        let (dir, data, policy) = tidy();
        chmod(dir.path(), 0o777);
        let problems = audit(trusted(&data, &policy), effective_uid()).unwrap_err();
        assert!(
            problems
                .iter()
                .all(|p| p.contains("without the sticky bit")),
            "{problems:?}"
        );
        chmod(dir.path(), 0o1777);
        audit(trusted(&data, &policy), effective_uid()).unwrap();
    }

    #[test]
    fn files_of_another_user_are_refused() {
        let (_dir, data, policy) = tidy();
        // As if the daemon ran as another user than the one who made these files.
        let other = effective_uid().wrapping_add(1);
        let problems = audit(trusted(&data, &policy), other)
            .unwrap_err()
            .join("\n");
        assert!(problems.contains("not by the daemon's user"), "{problems}");
    }
}
