//! `probe()`: whether this kernel can confine commands (Landlock ABI, user namespaces, seccomp
//! user notification, a known architecture), without changing anything. `gatehouse doctor` and
//! `gatehouse sandbox probe` print it; `sandbox run` refuses to start when it fails.

use landlock::{Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, Scope};
use serde::Serialize;

use crate::confine::LANDLOCK_ABI;
use crate::sys;

/// Set (to a reason), this makes `probe()` report that the system cannot confine: `sandbox run`
/// refuses and hooks do not offer confinement, so confined rules get their fallback.
pub const UNSUPPORTED_ENV: &str = "GATEHOUSE_SANDBOX_UNSUPPORTED";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// Landlock with every right the launcher uses (ABI 6: files, TCP, scopes).
    pub landlock: bool,
    /// Unprivileged user namespaces (the PID and network namespaces are created in one).
    pub user_namespaces: bool,
    /// seccomp with user notification (denial reports) and filters.
    pub seccomp: bool,
    /// The architecture's system call table is known to the filters (x86_64, aarch64).
    pub architecture: bool,
    /// Why confinement is unavailable; empty when it is.
    pub problems: Vec<String>,
}

impl Support {
    /// Whether `sandbox run` can confine a command here.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Probes the running kernel. Reads /proc and creates (and drops) one Landlock ruleset; it does
/// not restrict or fork this process.
pub fn probe() -> Support {
    let mut problems = Vec::new();
    if !cfg!(target_os = "linux") {
        problems.push("confinement needs Linux (Landlock, namespaces, seccomp)".to_owned());
    }

    let landlock = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .and_then(|r| r.create())
        .is_ok();
    if !landlock {
        problems.push(
            "Landlock ABI 6 (Linux 6.12+, enabled at boot: lsm=…,landlock) is not available"
                .to_owned(),
        );
    }

    let mut user_namespaces = read_trimmed("/proc/sys/user/max_user_namespaces")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|max| max > 0);
    let root = rustix::process::geteuid().is_root();
    if !root {
        if read_trimmed("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            user_namespaces = false;
        }
        if read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
        {
            user_namespaces = false;
        }
    }
    if !user_namespaces {
        problems.push(
            "user namespaces are disabled (user.max_user_namespaces, unprivileged_userns_clone or AppArmor's restriction)"
                .to_owned(),
        );
    }

    let seccomp = read_trimmed("/proc/sys/kernel/seccomp/actions_avail")
        .is_some_and(|actions| actions.split_whitespace().any(|a| a == "user_notif"));
    if !seccomp {
        problems.push("seccomp user notification (Linux 5.5+) is not available".to_owned());
    }

    // A way to see the fallback on a machine that can confine (tests, and an operator who
    // wants confined rules paused): it can only take confinement away, never grant it.
    if let Some(reason) = std::env::var_os(UNSUPPORTED_ENV).filter(|v| !v.is_empty()) {
        problems.push(format!(
            "{UNSUPPORTED_ENV} is set ({})",
            reason.to_string_lossy()
        ));
    }

    let architecture = sys::AUDIT_ARCH.is_some();
    if !architecture {
        problems.push("the seccomp filters know x86_64 and aarch64 only".to_owned());
    }

    Support {
        landlock,
        user_namespaces,
        seccomp,
        architecture,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_can_confine() {
        // The development and CI machines run Linux 6.18 with Landlock ABI 7.
        if std::env::var_os(UNSUPPORTED_ENV).is_some() {
            return;
        }
        let support = probe();
        assert!(support.ok(), "{support:?}");
    }
}
