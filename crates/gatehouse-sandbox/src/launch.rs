//! The launcher: `run` (the supervisor side of `gatehouse sandbox run`) and `stage_main` (the
//! inner and init stages, re-executions of the same binary). See the crate docs for the shape.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::plan::{Places, Plan};
use crate::profile::{Network, Profile};
use crate::{SandboxError, confine, probe, proxy, supervise, sys};

/// The hidden argument that selects a launcher stage: `gatehouse sandbox __stage …`.
pub const STAGE_ARG: &str = "__stage";

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
/// Must be called before any other thread starts (the binary calls it before its async
/// runtime). An error means the command did not run.
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

    if plan.network == Network::Proxy {
        let port = proxy::start(plan.hosts.clone(), reports.clone())
            .map_err(|e| SandboxError::Setup(format!("filtering proxy: {e}")))?;
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
    }

    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SandboxError::Setup(format!("socketpair: {e}")))?;
    // Inherited by the inner stage (no CLOEXEC), then passed on to init by number.
    let inherited =
        rustix::io::dup(&theirs).map_err(|e| SandboxError::Setup(format!("dup: {e}")))?;
    drop(theirs);
    // The plan goes to the stages in a file (it can be larger than one argument may be); they
    // read it before anything runs, and it is removed once the command has started.
    let plan_json =
        serde_json::to_string(&plan).map_err(|e| SandboxError::Setup(format!("plan: {e}")))?;
    let mut plan_file = tempfile::Builder::new()
        .prefix("gatehouse-sandbox-plan-")
        .tempfile()
        .map_err(|e| SandboxError::Setup(format!("plan file: {e}")))?;
    plan_file
        .write_all(plan_json.as_bytes())
        .and_then(|()| plan_file.flush())
        .map_err(|e| SandboxError::Setup(format!("plan file: {e}")))?;
    let plan_arg = format!("@{}", plan_file.path().display());
    let fd_number = rustix::fd::AsRawFd::as_raw_fd(&inherited).to_string();
    let mut inner = Command::new("/proc/self/exe")
        .arg("sandbox")
        .arg(STAGE_ARG)
        .arg("inner")
        .arg(&fd_number)
        .arg(std::process::id().to_string())
        .arg(&plan_arg)
        .arg("--")
        .args(&request.command)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SandboxError::Setup(format!("launcher stage: {e}")))?;
    drop(inherited);
    let forwarder = inner.stderr.take().map(|stderr| {
        let reports = reports.clone();
        std::thread::spawn(move || reports.forward_stderr(stderr))
    });

    // The init stage sends the seccomp listener once it is confined; if the launch fails
    // before, the stages exit (with the reason on stderr) and nothing is sent.
    let listener = loop {
        match receive_fd(&ours, Duration::from_millis(100)) {
            Ok(Some(fd)) => break fd,
            Ok(None) => {
                if let Ok(Some(status)) = inner.try_wait() {
                    if let Some(forwarder) = forwarder {
                        let _ = forwarder.join();
                    }
                    let code = status.code().unwrap_or(EXIT_SETUP);
                    return Err(SandboxError::Setup(format!(
                        "the launcher stopped before the command started (status {code})"
                    )));
                }
            }
            Err(e) => {
                let _ = inner.kill();
                let _ = inner.wait();
                return Err(SandboxError::Setup(format!("seccomp listener: {e}")));
            }
        }
    };
    drop(ours);
    drop(plan_file);
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

    let status = inner
        .wait()
        .map_err(|e| SandboxError::Setup(format!("waiting for the command: {e}")))?;
    // Every process in the sandbox is gone once init exits; the listener then hangs up.
    let _ = done_rx.recv_timeout(Duration::from_secs(5));
    if let Some(forwarder) = forwarder {
        let _ = forwarder.join();
    }
    drop(tmp);
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(EXIT_SETUP)
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

/// Entry point of a launcher stage: `args` are what follows `STAGE_ARG`. Returns the exit
/// status for the process.
pub fn stage_main(args: &[OsString]) -> i32 {
    let result = match args.first().and_then(|s| s.to_str()) {
        Some("inner") => inner_stage(&args[1..]),
        Some("init") => init_stage(&args[1..]),
        _ => Err(SandboxError::Setup("unknown launcher stage".into())),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "gatehouse sandbox: {err}");
            EXIT_SETUP
        }
    }
}

/// The parsed arguments of a stage: FD SUPERVISOR_PID PLAN_JSON -- ARGV…
struct StageArgs {
    fd: i32,
    supervisor: u32,
    plan: Plan,
    command: Vec<OsString>,
}

fn parse_stage(args: &[OsString]) -> Result<StageArgs, SandboxError> {
    let bad = || SandboxError::Setup("malformed launcher stage arguments".into());
    let text = |i: usize| args.get(i).and_then(|s| s.to_str()).ok_or_else(bad);
    let fd = text(0)?.parse().map_err(|_| bad())?;
    let supervisor = text(1)?.parse().map_err(|_| bad())?;
    let plan_text = match text(2)?.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| SandboxError::Setup(format!("plan file {path}: {e}")))?,
        None => text(2)?.to_owned(),
    };
    let plan = serde_json::from_str(&plan_text).map_err(|_| bad())?;
    if args.get(3).map(OsString::as_os_str) != Some(OsStr::new("--")) || args.len() < 5 {
        return Err(bad());
    }
    Ok(StageArgs {
        fd,
        supervisor,
        plan,
        command: args[4..].to_vec(),
    })
}

fn die_with_parent() -> Result<(), SandboxError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| SandboxError::Setup(format!("parent-death signal: {e}")))
}

/// Inner stage: new user and PID namespaces (and network, without network), the uid mapped to
/// itself; starts init as PID 1 and exits with its status.
fn inner_stage(args: &[OsString]) -> Result<i32, SandboxError> {
    die_with_parent()?;
    let stage = parse_stage(args)?;
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get())
        != i32::try_from(stage.supervisor).ok()
    {
        // The supervisor died before the parent-death signal was set.
        return Ok(EXIT_SETUP);
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let mut flags = nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWPID;
    if stage.plan.network == Network::None {
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

    let mut init = Command::new("/proc/self/exe")
        .arg("sandbox")
        .arg(STAGE_ARG)
        .arg("init")
        .args(args)
        .spawn()
        .map_err(|e| SandboxError::Setup(format!("init stage: {e}")))?;
    let status = init
        .wait()
        .map_err(|e| SandboxError::Setup(format!("init stage: {e}")))?;
    Ok(exit_code(status))
}

/// Init stage (PID 1 of the sandbox's PID namespace): confines itself, hands the seccomp
/// listener to the supervisor, runs the command, reaps orphans, exits with the command's status.
fn init_stage(args: &[OsString]) -> Result<i32, SandboxError> {
    die_with_parent()?;
    let stage = parse_stage(args)?;
    let sock = sys::adopt_fd(stage.fd)
        .map_err(|e| SandboxError::Setup(format!("launcher socket: {e}")))?;
    let plan = &stage.plan;
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

    let mut command = Command::new(&stage.command[0]);
    command.args(&stage.command[1..]);
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
                stage.command[0].to_string_lossy()
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
