//! The few system calls no safe crate wraps: a seccomp filter that hands chosen system calls to
//! a supervisor (`SECCOMP_FILTER_FLAG_NEW_LISTENER`), the three ioctls on its listener,
//! marking every inherited descriptor close-on-exec, and the launcher's `fork` and `_exit`.
//! Every `unsafe` block of the crate is here, each with its reason; docs/SANDBOX.md says why
//! they are needed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The architecture the filters are built for (`AUDIT_ARCH_*`), or `None` where the launcher
/// does not know the system call table (the launcher then refuses to run).
pub const AUDIT_ARCH: Option<u32> = if cfg!(target_arch = "x86_64") {
    Some(0xC000_003E)
} else if cfg!(target_arch = "aarch64") {
    Some(0xC000_00B7)
} else {
    None
};

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A classic-BPF program: for this architecture, the listed system calls go to the supervisor
/// (`SECCOMP_RET_USER_NOTIF`), all others are allowed (other filters still apply).
pub fn notify_program(arch: u32, syscalls: &[i64]) -> Vec<libc::sock_filter> {
    let n = syscalls.len().min(250);
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, 4), // seccomp_data.arch
        libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 1,
            jf: 0,
            k: arch,
        },
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD_W_ABS, 0), // seccomp_data.nr
    ];
    for (i, nr) in syscalls.iter().take(n).enumerate() {
        prog.push(libc::sock_filter {
            code: BPF_JEQ_K,
            jt: u8::try_from(n - i).unwrap_or(u8::MAX),
            jf: 0,
            k: u32::try_from(*nr).unwrap_or(u32::MAX),
        });
    }
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    prog.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    prog
}

/// Installs `prog` on the calling thread (no_new_privs must be set) and returns the listener.
pub fn install_listener(prog: &[libc::sock_filter]) -> io::Result<OwnedFd> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::other("filter too long"))?,
        filter: prog.as_ptr().cast_mut(),
    };
    #[expect(
        unsafe_code,
        reason = "seccomp(2) with NEW_LISTENER has no safe wrapper; fprog points into `prog`, alive for the call"
    )]
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("listener fd out of range"))?;
    #[expect(
        unsafe_code,
        reason = "the kernel just returned this descriptor to us; nothing else owns it"
    )]
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One notification: which task called which system call with which arguments.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    pub pid: u32,
    pub nr: i64,
    pub args: [u64; 6],
}

/// Waits for the next notification on `listener`.
pub fn receive(listener: &OwnedFd) -> io::Result<Notification> {
    #[expect(
        unsafe_code,
        reason = "seccomp_notif is plain data; all-zero is the state the RECV ioctl requires"
    )]
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    #[expect(
        unsafe_code,
        reason = "SECCOMP_IOCTL_NOTIF_RECV writes one seccomp_notif into `req`, which we own"
    )]
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: req.id,
        pid: req.pid,
        nr: i64::from(req.data.nr),
        args: req.data.args,
    })
}

/// Answers a notification: `None` lets the system call proceed (the kernel, with Landlock,
/// decides), `Some(errno)` fails it with that error.
pub fn respond(listener: &OwnedFd, id: u64, error: Option<i32>) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match error {
        None => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Some(errno) => resp.error = -errno,
    }
    #[expect(
        unsafe_code,
        reason = "SECCOMP_IOCTL_NOTIF_SEND reads one seccomp_notif_resp from `resp`, which we own"
    )]
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether notification `id` is still pending (its task has not died and its pid not been
/// reused): checked after reading the task's memory, before trusting what was read.
pub fn still_valid(listener: &OwnedFd, id: u64) -> bool {
    let mut id = id;
    #[expect(
        unsafe_code,
        reason = "SECCOMP_IOCTL_NOTIF_ID_VALID reads one u64 from `id`, which we own"
    )]
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    };
    rc == 0
}

/// Asks the kernel to hand the CPU straight from a notifying task to the supervisor and back
/// (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux 6.6): on a busy machine a notification then
/// costs a task switch instead of a wait for the scheduler. Best effort: older kernels refuse
/// it, and notifications work as before.
pub fn sync_wake_up(listener: &OwnedFd) -> bool {
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
    #[expect(
        unsafe_code,
        reason = "SECCOMP_IOCTL_NOTIF_SET_FLAGS takes its flags by value; no memory is involved"
    )]
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    rc == 0
}

/// Marks every descriptor from `first` up close-on-exec, so a confined command inherits only
/// stdin, stdout and stderr.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    #[expect(
        unsafe_code,
        reason = "close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag; no memory is involved"
    )]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Which side of a `fork` the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Child,
    Parent(rustix::process::Pid),
}

/// Whether this process has one thread (the only state in which the launcher forks: a child
/// of a multi-threaded process could inherit a lock another thread held).
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// fork(2). The launcher's stages are forks of the supervisor (no re-execution of the
/// binary: that cost most of its start-up). Callers check `single_threaded` first, and a child
/// never returns into its parent's code: it ends with `exit_now`.
pub fn fork() -> io::Result<Forked> {
    if !single_threaded() {
        return Err(io::Error::other(
            "the launcher must fork while single-threaded",
        ));
    }
    #[expect(
        unsafe_code,
        reason = "fork(2) of a single-threaded process (checked above): the child owns a copy of every lock in a released state, runs the stage and ends with _exit"
    )]
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => rustix::process::Pid::from_raw(pid)
            .map(Forked::Parent)
            .ok_or_else(|| io::Error::other("fork returned a bad pid")),
    }
}

/// Ends a forked stage at once with `code`: no destructor of its parent's state (the private
/// tmp directory, the proxy) and no exit handler runs in the child.
pub fn exit_now(code: i32) -> ! {
    #[expect(unsafe_code, reason = "_exit(2) takes no pointer and does not return")]
    unsafe {
        libc::_exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notify_program_jumps_to_the_notify_return() {
        let prog = notify_program(0xC000_003E, &[257, 42]);
        assert_eq!(prog.len(), 4 + 2 + 2);
        // Instruction 4 (nr 257) jumps 2 ahead past the next compare and the ALLOW.
        assert_eq!((prog[4].k, prog[4].jt), (257, 2));
        assert_eq!((prog[5].k, prog[5].jt), (42, 1));
        assert_eq!(
            prog[4 + 1 + prog[4].jt as usize].k,
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            prog[5 + 1 + prog[5].jt as usize].k,
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(prog[6].k, SECCOMP_RET_ALLOW);
    }
}
