//! The launcher: `run` (the supervisor side of `gatehouse sandbox run`) and its inner and init
//! stages, forks of the supervisor (never re-executions: loading the binary twice more was
//! most of the start-up). See the crate docs for the shape.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::plan::{Places, Plan};
use crate::profile::{Network, Profile};
use crate::{SandboxError, confine, probe, proxy, supervise, sys};

/// The exit status when the command could not be confined (it did not run).
pub const EXIT_SETUP: i32 = 125;

/// One confined run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub profile_name: String,
    pub profile: Profile,
    /// The command's working directory: the profile's `{project}`.
    pub cwd: PathBuf,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// `gatehouse sandbox run --profile PROFILE --cwd CWD -- ARGV…` as a `Command` (this binary,
/// re-executed), for callers that confine a process they start, such as `mcp stdio --confine`.
pub fn command(profile: &str, cwd: &Path, argv: &[OsString]) -> std::io::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("sandbox")
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--cwd")
        .arg(cwd)
        .arg("--")
        .args(argv);
    Ok(cmd)
}

/// Runs `request` confined and returns the command's exit status (128 + N for a signal).
/// Must be called while the process has a single thread (the binary calls it before its async
/// runtime): the stages are forks of this process. An error means the command did not run.
pub fn run(request: RunRequest) -> Result<i32, SandboxError> {
    let support = probe();
    if !support.ok() {
        return Err(SandboxError::Unsupported(support.problems.join("; ")));
    }
    if request.command.is_empty() {
        return Err(SandboxError::Setup("no command given".into()));
    }
    let tmp = tempfile::Builder::new()
        .prefix("gatehouse-sandbox-")
        .tempdir()
        .map_err(|e| SandboxError::Setup(format!("private tmp: {e}")))?;
    let cwd = std::path::absolute(&request.cwd)
        .map_err(|e| SandboxError::Setup(format!("--cwd: {e}")))?;
    let places = Places::from_env(&cwd, tmp.path())?;
    let mut plan = Plan::resolve(&request.profile_name, &request.profile, &places)?;
    let reports = supervise::Reports::new();

    // The proxy's port goes into the plan (Landlock allows connecting to it only); its threads
    // start after the fork, which needs a single-threaded process.
    let proxy = if plan.network == Network::Proxy {
        let listener =
            proxy::bind().map_err(|e| SandboxError::Setup(format!("filtering proxy: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| SandboxError::Setup(format!("filtering proxy: {e}")))?
            .port();
        plan.proxy_port = Some(port);
        let url = format!("http://127.0.0.1:{port}");
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "npm_config_proxy",
            "npm_config_https_proxy",
            "CARGO_HTTP_PROXY",
        ] {
            plan.env_set.push((name.to_owned(), url.clone()));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            plan.env_set.push((name.to_owned(), String::new()));
        }
        Some(listener)
    } else {
        None
    };

    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SandboxError::Setup(format!("socketpair: {e}")))?;
    // The stages' stderr goes through the supervisor, which knows where its lines end.
    let (err_read, err_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| SandboxError::Setup(format!("pipe: {e}")))?;
    let supervisor = rustix::process::getpid();
    let inner = match sys::fork().map_err(|e| SandboxError::Setup(format!("fork: {e}")))? {
        sys::Forked::Child => {
            drop(ours);
            drop(err_read);
            drop(proxy);
            let code =
                stage(|| inner_stage(&plan, &request.command, supervisor, theirs, err_write));
            sys::exit_now(code)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(theirs);
    drop(err_write);
    let forwarder = {
        let reports = reports.clone();
        let stderr = std::fs::File::from(err_read);
        std::thread::spawn(move || reports.forward_stderr(stderr))
    };
    if let Some(listener) = proxy {
        proxy::spawn(listener, plan.hosts.clone(), reports.clone())
            .map_err(|e| SandboxError::Setup(format!("filtering proxy: {e}")))?;
    }

    // The init stage sends the seccomp listener once it is confined; if the launch fails
    // before, the stages exit (with the reason on stderr) and nothing is sent.
    let listener = loop {
        match receive_fd(&ours, Duration::from_millis(100)) {
            Ok(Some(fd)) => break fd,
            Ok(None) => {
                if let Ok(Some(status)) =
                    rustix::process::waitpid(Some(inner), rustix::process::WaitOptions::NOHANG)
                {
                    let _ = forwarder.join();
                    let code = wait_code(status.1);
                    return Err(SandboxError::Setup(format!(
                        "the launcher stopped before the command started (status {code})"
                    )));
                }
            }
            Err(e) => {
                let _ = rustix::process::kill_process(inner, rustix::process::Signal::KILL);
                let _ =
                    rustix::process::waitpid(Some(inner), rustix::process::WaitOptions::empty());
                let _ = forwarder.join();
                return Err(SandboxError::Setup(format!("seccomp listener: {e}")));
            }
        }
    };
    drop(ours);
    sys::sync_wake_up(&listener);
    let (done_tx, done_rx) = mpsc::channel();
    let supervisor_plan = plan.clone();
    let supervisor_reports = reports.clone();
    std::thread::Builder::new()
        .name("sandbox-supervisor".into())
        .spawn(move || {
            supervise::serve(&listener, &supervisor_plan, &supervisor_reports);
            let _ = done_tx.send(());
        })
        .map_err(|e| SandboxError::Setup(format!("supervisor thread: {e}")))?;

    let status = loop {
        match rustix::process::waitpid(Some(inner), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(SandboxError::Setup(format!("waiting for the command: {e}")));
            }
        }
    };
    // Every process in the sandbox is gone once init exits; the listener then hangs up.
    let _ = done_rx.recv_timeout(Duration::from_secs(5));
    let _ = forwarder.join();
    drop(tmp);
    Ok(wait_code(status))
}

/// The exit code a wait status stands for (128 + N for a signal N).
fn wait_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        return code;
    }
    if let Some(signal) = status.terminating_signal() {
        return 128 + signal;
    }
    EXIT_SETUP
}

/// Runs a forked stage's body: its error (or panic) on stderr and exit 125, or its status.
fn stage(body: impl FnOnce() -> Result<i32, SandboxError>) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(code)) => code,
        Ok(Err(err)) => {
            let _ = writeln!(std::io::stderr(), "gatehouse sandbox: {err}");
            EXIT_SETUP
        }
        Err(_) => EXIT_SETUP,
    }
}

/// Waits up to `timeout` for one descriptor on `sock`.
fn receive_fd(sock: &OwnedFd, timeout: Duration) -> std::io::Result<Option<OwnedFd>> {
    let mut fds = [rustix::event::PollFd::new(
        sock,
        rustix::event::PollFlags::IN,
    )];
    let ts = rustix::event::Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(1),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let ready = rustix::event::poll(&mut fds, Some(&ts))?;
    if ready == 0 {
        return Ok(None);
    }
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let msg = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if msg.bytes == 0 && ancillary.drain().next().is_none() {
        return Err(std::io::Error::other("the launcher closed its socket"));
    }
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(Some(fd));
        }
    }
    Err(std::io::Error::other(
        "no descriptor in the launcher's message",
    ))
}

fn die_with_parent(parent: rustix::process::Pid) -> Result<(), SandboxError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| SandboxError::Setup(format!("parent-death signal: {e}")))?;
    if rustix::process::getppid() != Some(parent) {
        // The parent died before the parent-death signal was set.
        return Err(SandboxError::Setup("the launcher's parent is gone".into()));
    }
    Ok(())
}

/// Inner stage (a fork of the supervisor): new user and PID namespaces (and network, without
/// network), the uid mapped to itself; forks init as PID 1 and exits with its status.
fn inner_stage(
    plan: &Plan,
    command: &[OsString],
    supervisor: rustix::process::Pid,
    sock: OwnedFd,
    stderr: OwnedFd,
) -> Result<i32, SandboxError> {
    die_with_parent(supervisor)?;
    rustix::stdio::dup2_stderr(&stderr).map_err(|e| SandboxError::Setup(format!("stderr: {e}")))?;
    drop(stderr);
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let mut flags = nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWPID;
    if plan.network == Network::None {
        flags |= nix::sched::CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags)
        .map_err(|e| SandboxError::Setup(format!("namespaces (unshare): {e}")))?;
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|e| SandboxError::Setup(format!("{path}: {e}")))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;

    let init = match sys::fork().map_err(|e| SandboxError::Setup(format!("init stage: {e}")))? {
        sys::Forked::Child => sys::exit_now(stage(|| init_stage(plan, command, sock))),
        sys::Forked::Parent(pid) => pid,
    };
    drop(sock);
    loop {
        match rustix::process::waitpid(Some(init), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(wait_code(status)),
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SandboxError::Setup(format!("init stage: {e}"))),
        }
    }
}

/// Init stage (PID 1 of the sandbox's PID namespace, a fork of the inner stage): confines
/// itself, hands the seccomp listener to the supervisor, runs the command, reaps orphans, exits
/// with the command's status.
fn init_stage(plan: &Plan, command_line: &[OsString], sock: OwnedFd) -> Result<i32, SandboxError> {
    // PID 1's parent is outside its namespace (getppid reads 0), so only the death signal is
    // set here; if the inner stage is already gone, so is the supervisor, and sending it the
    // listener below fails before the command runs.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| SandboxError::Setup(format!("parent-death signal: {e}")))?;
    std::env::set_current_dir(&plan.project)
        .map_err(|e| SandboxError::Setup(format!("{}: {e}", plan.project.display())))?;

    confine::landlock(plan)?;
    confine::seccomp_escapes(plan)?;
    let listener = confine::seccomp_listener()?;
    let fds = [listener.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    if !ancillary.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(SandboxError::Setup("launcher message too small".into()));
    }
    rustix::net::sendmsg(
        &sock,
        &[std::io::IoSlice::new(b"L")],
        &mut ancillary,
        SendFlags::empty(),
    )
    .map_err(|e| SandboxError::Setup(format!("sending the seccomp listener: {e}")))?;
    drop(listener);
    drop(sock);
    sys::cloexec_from(3).map_err(|e| SandboxError::Setup(format!("close_range: {e}")))?;

    let mut command = Command::new(&command_line[0]);
    command.args(&command_line[1..]);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_none_or(Plan::env_removed) {
            command.env_remove(&name);
        }
    }
    for (name, value) in &plan.env_set {
        command.env(name, value);
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse sandbox: {}: {e}",
                command_line[0].to_string_lossy()
            );
            return Ok(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pid = i32::try_from(child.id()).unwrap_or(-1);
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((reaped, status))) if reaped.as_raw_nonzero().get() == pid => {
                if let Some(code) = status.exit_status() {
                    return Ok(code);
                }
                if let Some(signal) = status.terminating_signal() {
                    return Ok(128 + signal);
                }
                return Ok(EXIT_SETUP);
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SandboxError::Setup(format!("wait: {e}"))),
        }
    }
}
