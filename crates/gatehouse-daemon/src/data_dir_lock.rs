//! One daemon per data directory: an exclusive lock on `DATA_DIR/daemon.lock`, held for the
//! daemon's lifetime, naming the process that holds it.
//!
//! Two daemons appending to one ledger interleave their hash chains: the second one's records
//! take sequence numbers the first believes are free, and its checks start failing. The lock
//! makes the second daemon refuse to start and say which process owns the directory. It is an
//! advisory `flock`, released by the kernel when the holder exits however it exits (kill -9
//! included), so a crashed daemon never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "daemon.lock";

/// Holds the data directory's lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {dir} is in use by another gatehouse daemon{}; stop it first, or give this one another --data-dir",
        .holder.as_ref().map(|pid| format!(" (pid {pid}, lock file {})", .lock.display())).unwrap_or_default()
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        holder: Option<u32>,
    },
    #[error("cannot lock the data directory with {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock without waiting, and writes this process's id into the lock file.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: data_dir.to_path_buf(),
                    lock: path.clone(),
                    holder: holder_pid(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote, if it wrote one (it may be between locking and writing).
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        match &err {
            LockError::Held { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(err.to_string().contains(&std::process::id().to_string()));
        drop(first);
        // Released on drop: the directory can be taken again.
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn other_directories_are_independent() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let _a = DataDirLock::acquire(a.path()).unwrap();
        let _b = DataDirLock::acquire(b.path()).unwrap();
    }
}
