//! The supervisor's view of the sandbox: it receives a seccomp notification for every open,
//! creation, removal, rename, link and connect the confined processes make, reads the path or
//! address from the caller's memory, and when the plan denies it prints
//! `gatehouse sandbox: denied read /home/u/.ssh/id_rsa` (or `write PATH`, `connect HOST:PORT`).
//!
//! It reports; the kernel enforces. Every call is let through to the kernel (Landlock and the
//! namespaces decide, so a race on the caller's memory cannot widen access), except a connect
//! to anything but the proxy when the profile uses one, which it also fails. What it reports is
//! what the plan says the kernel will deny, computed from the same `Plan` that built the ruleset.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::DENIAL_PREFIX;
use crate::plan::{Plan, lexical};
use crate::profile::Network;
use crate::sys::{self, Notification};

/// Denials seen in one run, printed once each on stderr as they happen, each on a line of its
/// own: the command's stderr goes through `forward_stderr`, which knows where its lines end.
#[derive(Clone, Default)]
pub struct Reports(Arc<Mutex<ReportState>>);

#[derive(Default)]
struct ReportState {
    seen: Vec<String>,
    /// Whether the last byte written to stderr ended a line.
    mid_line: bool,
}

impl Reports {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records and prints `what` (e.g. `read /x`) unless already reported.
    pub fn deny(&self, what: String) {
        let Ok(mut state) = self.0.lock() else {
            return;
        };
        if state.seen.contains(&what) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let lead = if state.mid_line { "\n" } else { "" };
        let _ = writeln!(err, "{lead}{DENIAL_PREFIX}{what}");
        let _ = err.flush();
        state.mid_line = false;
        state.seen.push(what);
    }

    /// Copies the command's stderr to ours until it closes, keeping track of line ends.
    pub fn forward_stderr(&self, mut from: impl std::io::Read) {
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let Ok(mut state) = self.0.lock() else {
                return;
            };
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&buf[..n]);
            let _ = err.flush();
            state.mid_line = buf[n - 1] != b'\n';
        }
    }
}

const AT_FDCWD: i32 = -100;
const MAX_PATH: usize = 4096;

/// What the supervisor decided about one call.
struct Finding {
    report: Vec<String>,
    errno: Option<i32>,
}

/// Serves notifications until every confined process is gone (the listener hangs up).
pub fn serve(listener: &OwnedFd, plan: &Plan, reports: &Reports) {
    let mut memory = Memory::default();
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        let mut fds = [rustix::event::PollFd::new(
            listener,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        let revents = fds[0].revents();
        if !revents.contains(rustix::event::PollFlags::IN) {
            if revents.intersects(rustix::event::PollFlags::HUP | rustix::event::PollFlags::ERR) {
                return;
            }
            continue;
        }
        let notification = match sys::receive(listener) {
            Ok(n) => n,
            // The caller died (ENOENT) or a signal interrupted us: nothing to answer.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            Err(_) => return,
        };
        let finding = examine(&notification, plan, &mut memory);
        if !sys::still_valid(listener, notification.id) {
            memory.forget(notification.pid);
            continue;
        }
        for what in finding.report {
            if reported.insert(what.clone()) {
                reports.deny(what);
            }
        }
        let _ = sys::respond(listener, notification.id, finding.errno);
    }
}

/// Open `/proc/PID/mem` files, by task.
#[derive(Default)]
struct Memory(HashMap<u32, File>);

impl Memory {
    fn forget(&mut self, pid: u32) {
        self.0.remove(&pid);
    }

    fn read(&mut self, pid: u32, addr: u64, buf: &mut [u8]) -> Option<usize> {
        for _ in 0..2 {
            let file = match self.0.entry(pid) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(File::open(format!("/proc/{pid}/mem")).ok()?)
                }
            };
            match file.read_at(buf, addr) {
                Ok(n) if n > 0 => return Some(n),
                // A cached file of a task that exited (and whose pid was reused): reopen once.
                _ => self.forget(pid),
            }
        }
        None
    }

    /// A NUL-terminated string at `addr` (at most PATH_MAX bytes).
    fn c_string(&mut self, pid: u32, addr: u64) -> Option<PathBuf> {
        if addr == 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < MAX_PATH {
            // Read up to the end of the page, so an unmapped next page does not fail the read.
            let room = usize::try_from(4096 - (at % 4096)).unwrap_or(4096);
            let mut buf = vec![0u8; room.min(MAX_PATH - out.len())];
            let n = self.read(pid, at, &mut buf)?;
            if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
                out.extend_from_slice(&buf[..end]);
                let text: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(out);
                return Some(PathBuf::from(text));
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
        None
    }
}

fn examine(n: &Notification, plan: &Plan, memory: &mut Memory) -> Finding {
    let mut finding = Finding {
        report: Vec::new(),
        errno: None,
    };
    let a = n.args;
    let fd = |x: u64| x as i32;
    let nr = n.nr;
    let open2_flags = if nr == libc::SYS_openat2 {
        let mut how = [0u8; 8];
        memory
            .read(n.pid, a[2], &mut how)
            .filter(|r| *r == 8)
            .map(|_| u64::from_ne_bytes(how))
            .unwrap_or(0)
    } else {
        0
    };
    if nr == libc::SYS_connect {
        if let Some((what, deny)) = connect_denial(n.pid, a[1], a[2], plan, memory) {
            finding.report.push(what);
            if deny {
                finding.errno = Some(libc::EACCES);
            }
        }
        return finding;
    }
    let mut legacy = false;
    let mut check = |dirfd: i32, addr: u64, access: Access| {
        if let Some(what) = path_denial(n.pid, dirfd, addr, access, plan, memory) {
            finding.report.push(what);
        }
    };
    if nr == libc::SYS_openat {
        check(fd(a[0]), a[1], Access::open(a[2]));
    } else if nr == libc::SYS_openat2 {
        check(fd(a[0]), a[1], Access::open(open2_flags));
    } else if nr == libc::SYS_mkdirat || nr == libc::SYS_unlinkat {
        check(fd(a[0]), a[1], Access::Entry);
    } else if nr == libc::SYS_renameat || nr == libc::SYS_renameat2 {
        check(fd(a[0]), a[1], Access::Entry);
        check(fd(a[2]), a[3], Access::Entry);
    } else if nr == libc::SYS_symlinkat {
        check(fd(a[1]), a[2], Access::Entry);
    } else if nr == libc::SYS_linkat {
        check(fd(a[2]), a[3], Access::Entry);
    } else if nr != libc::SYS_connect {
        legacy = true;
    }
    if legacy {
        examine_legacy(n, plan, memory, &mut finding);
    }
    finding
}

#[cfg(target_arch = "x86_64")]
fn examine_legacy(n: &Notification, plan: &Plan, memory: &mut Memory, finding: &mut Finding) {
    let a = n.args;
    let mut check = |addr: u64, access: Access| {
        if let Some(what) = path_denial(n.pid, AT_FDCWD, addr, access, plan, memory) {
            finding.report.push(what);
        }
    };
    match n.nr {
        libc::SYS_open => check(a[0], Access::open(a[1])),
        libc::SYS_creat => check(a[0], Access::WriteFollow),
        libc::SYS_mkdir | libc::SYS_unlink => check(a[0], Access::Entry),
        libc::SYS_rename => {
            check(a[0], Access::Entry);
            check(a[1], Access::Entry);
        }
        libc::SYS_symlink | libc::SYS_link => check(a[1], Access::Entry),
        _ => {}
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn examine_legacy(_: &Notification, _: &Plan, _: &mut Memory, _: &mut Finding) {}

/// What a call does to the path it names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Open for reading (following a final symlink).
    Read,
    /// Open for writing or creating (following a final symlink, as open does).
    WriteFollow,
    /// Open without following a final symlink (O_NOFOLLOW) for writing.
    WriteNoFollow,
    /// Create, remove or rename the directory entry itself.
    Entry,
    /// O_PATH and the like: not checked by Landlock.
    None,
}

impl Access {
    fn open(flags: u64) -> Access {
        let flags = flags as i32;
        if flags & libc::O_PATH != 0 {
            return Access::None;
        }
        let mode = flags & libc::O_ACCMODE;
        let writes = mode != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0;
        if !writes {
            Access::Read
        } else if flags & libc::O_NOFOLLOW != 0 {
            Access::WriteNoFollow
        } else {
            Access::WriteFollow
        }
    }
}

/// The denial report for a path call, if the plan denies it.
fn path_denial(
    pid: u32,
    dirfd: i32,
    addr: u64,
    access: Access,
    plan: &Plan,
    memory: &mut Memory,
) -> Option<String> {
    if access == Access::None {
        return None;
    }
    let path = memory.c_string(pid, addr)?;
    let base = if path.is_absolute() {
        PathBuf::from("/")
    } else if dirfd == AT_FDCWD {
        std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?
    } else {
        std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}")).ok()?
    };
    let path = proc_self(pid, &lexical(&base, &path));
    let follow = matches!(access, Access::Read | Access::WriteFollow);
    let path = resolve(path, follow);
    // /proc is readable and decided per process by the kernel (ptrace rules), not by path.
    if path.starts_with("/proc") {
        return None;
    }
    match access {
        Access::Read if !plan.read_allowed(&path) => Some(format!("read {}", path.display())),
        Access::WriteFollow | Access::WriteNoFollow | Access::Entry
            if !plan.write_allowed(&path) =>
        {
            Some(format!("write {}", path.display()))
        }
        _ => None,
    }
}

/// `/proc/self` and `/dev/fd` as the caller sees them.
fn proc_self(pid: u32, path: &Path) -> PathBuf {
    for (alias, real) in [
        ("/proc/self", format!("/proc/{pid}")),
        ("/proc/thread-self", format!("/proc/{pid}/task/{pid}")),
        ("/dev/fd", format!("/proc/{pid}/fd")),
    ] {
        if let Ok(rest) = path.strip_prefix(alias) {
            return Path::new(&real).join(rest);
        }
    }
    path.to_path_buf()
}

/// The file a call reaches: symlinks resolved (the final one only when `follow`), including
/// dangling ones (a write through a dangling link creates its target).
fn resolve(mut path: PathBuf, follow: bool) -> PathBuf {
    for _ in 0..40 {
        if follow && let Ok(real) = std::fs::canonicalize(&path) {
            return real;
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return path;
        };
        let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        let joined = parent.join(name);
        if follow && let Ok(target) = std::fs::read_link(&joined) {
            path = lexical(&parent, &target);
            continue;
        }
        return joined;
    }
    path
}

/// The report for a connect (and whether the supervisor fails it too).
fn connect_denial(
    pid: u32,
    addr: u64,
    len: u64,
    plan: &Plan,
    memory: &mut Memory,
) -> Option<(String, bool)> {
    let len = usize::try_from(len).ok()?.min(128);
    let mut buf = vec![0u8; len];
    let n = memory.read(pid, addr, &mut buf)?;
    let buf = &buf[..n];
    let family = i32::from(u16::from_ne_bytes([*buf.first()?, *buf.get(1)?]));
    let port = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]);
    let ip = match family {
        libc::AF_INET => {
            let b: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(b))
        }
        libc::AF_INET6 => {
            let b: [u8; 16] = buf.get(8..24)?.try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    let target = SocketAddr::new(ip, port);
    match (plan.network, plan.proxy_port) {
        (Network::Proxy, Some(proxy)) if ip.is_loopback() && port == proxy => None,
        (Network::Proxy, _) => Some((format!("connect {target}"), true)),
        (Network::None, _) => Some((format!("connect {target}"), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_to_accesses() {
        assert!(Access::open(libc::O_RDONLY as u64) == Access::Read);
        assert!(Access::open((libc::O_WRONLY | libc::O_CREAT) as u64) == Access::WriteFollow);
        assert!(Access::open((libc::O_RDONLY | libc::O_TRUNC) as u64) == Access::WriteFollow);
        assert!(Access::open((libc::O_RDWR | libc::O_NOFOLLOW) as u64) == Access::WriteNoFollow);
        assert!(Access::open(libc::O_PATH as u64) == Access::None);
    }

    #[test]
    fn dangling_links_resolve_to_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere/file"), root.join("link")).unwrap();
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        assert_eq!(
            resolve(root.join("link"), true),
            root.join("elsewhere/file")
        );
        assert_eq!(resolve(root.join("link"), false), root.join("link"));
        assert_eq!(
            proc_self(7, Path::new("/proc/self/fd/3")),
            PathBuf::from("/proc/7/fd/3")
        );
    }
}
