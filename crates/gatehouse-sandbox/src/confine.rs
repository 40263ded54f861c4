//! What the launcher's last stage applies to itself before it starts the command (and the
//! command inherits): the Landlock ruleset of a `Plan` (files, TCP, signals and abstract sockets
//! scoped), no_new_privs, the seccomp filter against the usual escapes, and the seccomp listener
//! whose notifications the supervisor turns into denial reports.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

use crate::SandboxError;
use crate::plan::Plan;
use crate::profile::Network;
use crate::sys;

/// The Landlock ABI the launcher needs: 6 (Linux 6.12) for TCP rules, device ioctls, and the
/// signal and abstract-socket scopes.
pub const LANDLOCK_ABI: ABI = ABI::V6;

fn setup(what: &str) -> impl Fn(String) -> SandboxError + '_ {
    move |err| SandboxError::Setup(format!("{what}: {err}"))
}

/// Applies the plan's Landlock ruleset to the calling thread (and sets no_new_privs). Fails
/// unless the kernel enforces all of it.
pub fn landlock(plan: &Plan) -> Result<(), SandboxError> {
    let err = setup("Landlock");
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(|e| err(e.to_string()))?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
        .map_err(|e| err(e.to_string()))?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(|e| err(e.to_string()))?
        .create()
        .map_err(|e| err(e.to_string()))?;
    for (paths, access) in [(&plan.read, read), (&plan.write, all)] {
        for path in paths {
            if let Some(rule) = path_rule(path, access) {
                ruleset = ruleset.add_rule(rule).map_err(|e| err(e.to_string()))?;
            }
        }
    }
    if let (Network::Proxy, Some(port)) = (plan.network, plan.proxy_port) {
        ruleset = ruleset
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(|e| err(e.to_string()))?;
    }
    let status = ruleset.restrict_self().map_err(|e| err(e.to_string()))?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(err(format!("not fully enforced ({status:?})")));
    }
    Ok(())
}

/// A rule for one path (file rules get the file rights only); `None` if it cannot be opened
/// (the path then stays denied).
fn path_rule(path: &Path, access: BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    let fd = PathFd::new(path).ok()?;
    // fstat of the descriptor just opened: no second walk of the path.
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        .unwrap_or(false);
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(LANDLOCK_ABI)
    };
    Some(PathBeneath::new(fd, access))
}

fn target_arch() -> Result<seccompiler::TargetArch, SandboxError> {
    if cfg!(target_arch = "x86_64") {
        Ok(seccompiler::TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(seccompiler::TargetArch::aarch64)
    } else {
        Err(SandboxError::Unsupported(
            "seccomp filters are built for x86_64 and aarch64 only".into(),
        ))
    }
}

/// System calls that fail with EPERM inside the sandbox: tracing and reading other processes,
/// namespaces and mounts, kernel keyrings, BPF, perf, modules, io_uring (it would bypass the
/// supervisor), handles that escape a directory, and the like.
fn escape_syscalls() -> Vec<i64> {
    let mut list = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_uselib]);
    list
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, len, op, value)
        .map_err(|e| SandboxError::Setup(format!("seccomp condition: {e}")))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conditions).map_err(|e| SandboxError::Setup(format!("seccomp rule: {e}")))
}

/// The escape filter: EPERM for `escape_syscalls`, clone with a namespace flag, TIOCSTI and
/// TIOCLINUX ioctls, Unix-domain sockets (the agent's ssh-agent, D-Bus, Docker and Gatehouse's
/// own sockets), and with the proxy, UDP and raw sockets (DNS and other tunnels); ENOSYS for
/// clone3 (its flags cannot be inspected; libc falls back to clone). Foreign-architecture
/// system calls kill the process.
pub fn seccomp_escapes(plan: &Plan) -> Result<(), SandboxError> {
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{Eq, MaskedEq};
    let arch = target_arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in escape_syscalls() {
        rules.insert(nr, Vec::new());
    }
    let namespaces = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ];
    let mut clone_rules = Vec::new();
    for flag in namespaces {
        let flag = u64::try_from(flag).unwrap_or(u64::MAX);
        clone_rules.push(rule(vec![cond(0, Qword, MaskedEq(flag), flag)?])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(1, Dword, Eq, libc::TIOCSTI)?])?,
            rule(vec![cond(1, Dword, Eq, libc::TIOCLINUX)?])?,
        ],
    );
    let mut socket_rules = vec![rule(vec![cond(0, Dword, Eq, libc::AF_UNIX as u64)?])?];
    if plan.network == Network::Proxy {
        for family in [libc::AF_INET, libc::AF_INET6] {
            for kind in [libc::SOCK_DGRAM, libc::SOCK_RAW] {
                socket_rules.push(rule(vec![
                    cond(0, Dword, Eq, family as u64)?,
                    cond(1, Dword, MaskedEq(0xf), kind as u64)?,
                ])?);
            }
        }
        socket_rules.push(rule(vec![cond(0, Dword, Eq, libc::AF_PACKET as u64)?])?);
    }
    rules.insert(libc::SYS_socket, socket_rules);
    apply(rules, SeccompAction::Errno(libc::EPERM as u32), arch)?;

    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    apply(clone3, SeccompAction::Errno(libc::ENOSYS as u32), arch)
}

fn apply(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    action: SeccompAction,
    arch: seccompiler::TargetArch,
) -> Result<(), SandboxError> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch)
        .map_err(|e| SandboxError::Setup(format!("seccomp filter: {e}")))?;
    let program: seccompiler::BpfProgram =
        filter.try_into().map_err(|e: seccompiler::BackendError| {
            SandboxError::Setup(format!("seccomp filter: {e}"))
        })?;
    seccompiler::apply_filter(&program)
        .map_err(|e| SandboxError::Setup(format!("seccomp filter: {e}")))
}

/// The system calls the supervisor is told about (to report denials): opens, creations,
/// removals, renames, links and connects.
pub fn reported_syscalls() -> Vec<i64> {
    let mut list = vec![
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_symlinkat,
        libc::SYS_linkat,
        libc::SYS_connect,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_mkdir,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_symlink,
        libc::SYS_link,
    ]);
    list
}

/// Installs the reporting filter and returns its listener (for the supervisor).
pub fn seccomp_listener() -> Result<OwnedFd, SandboxError> {
    let arch = sys::AUDIT_ARCH.ok_or_else(|| {
        SandboxError::Unsupported("seccomp filters are built for x86_64 and aarch64 only".into())
    })?;
    sys::install_listener(&sys::notify_program(arch, &reported_syscalls()))
        .map_err(|e| SandboxError::Setup(format!("seccomp listener: {e}")))
}
