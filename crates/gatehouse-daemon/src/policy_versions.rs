//! Versioned policy: `gatehouse policy push FILE`, `policy history`, `policy rollback N`. Each
//! version is a chained ledger record (the whole text, who pushed it, when); pushing records
//! the version first and then puts it in force atomically (`PolicyStore::apply_version`); at
//! start-up the latest recorded version wins over the policy file.
//!
//! *Invariant*: a version that does not load is never recorded nor put in force (the push is
//! refused with every diagnostic), and versions are put in force in the order the ledger
//! numbered them (one push at a time).

use gatehouse_ledger::{Ledger, LedgerError, NewPolicyVersion, PolicyVersion};
use gatehouse_policy::Policy;
use gatehouse_protocol::{PolicyHistory, PolicyVersionView};

use crate::app::{ActionError, App};
use crate::auth::Person;
use crate::clock::now_ms;
use crate::policy_store::PolicyStore;

/// Largest policy text a push takes, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

fn view(version: &PolicyVersion, text: bool, diff: Option<String>) -> PolicyVersionView {
    PolicyVersionView {
        version: version.version,
        sha256: version.sha256.iter().map(|b| format!("{b:02x}")).collect(),
        pushed_by: version.pushed_by.clone(),
        pushed_at_ms: version.recorded_at_ms,
        rollback_of: version.rollback_of,
        text: text.then(|| version.text.clone()),
        diff,
    }
}

/// Puts the latest recorded version in force (at start-up). A recorded version that no longer
/// loads (a newer grammar refused it) leaves the file's policy in force, loudly.
pub async fn restore_latest(ledger: &Ledger, store: &PolicyStore) -> Result<(), LedgerError> {
    let versions = match ledger.policy_versions().await {
        Ok(versions) => versions,
        Err(LedgerError::Unsupported(_)) => return Ok(()),
        Err(err) => return Err(err),
    };
    if let Some(latest) = versions.last() {
        match Policy::from_toml(&latest.text) {
            Ok(policy) => store.apply_version(policy, latest.version),
            Err(err) => tracing::error!(
                version = latest.version,
                %err,
                "the latest policy version in the ledger does not load; the policy file stays in force"
            ),
        }
    }
    Ok(())
}

impl App {
    /// Records `text` as the next policy version (after checking it loads) and puts it in
    /// force. Admins only.
    pub async fn push_policy(
        &self,
        actor: &Person,
        text: String,
        rollback_of: Option<i64>,
    ) -> Result<PolicyVersionView, ActionError> {
        if !actor.role.may_administer() {
            return Err(ActionError::Forbidden(format!(
                "{} has role {}: only an admin pushes the policy",
                actor.name,
                actor.role.as_str()
            )));
        }
        if text.len() > MAX_POLICY_BYTES {
            return Err(ActionError::Invalid {
                field: "text",
                message: format!("a policy is at most {MAX_POLICY_BYTES} bytes"),
            });
        }
        let policy = Policy::from_toml(&text).map_err(|err| ActionError::Invalid {
            field: "text",
            message: format!("the policy does not load; nothing was pushed:\n{err}"),
        })?;
        let _one_at_a_time = self.policy.push_lock.lock().await;
        let recorded = self
            .ledger
            .push_policy(NewPolicyVersion {
                text,
                pushed_by: actor.name.clone(),
                rollback_of,
                recorded_at_ms: now_ms(),
            })
            .await?;
        self.policy.apply_version(policy, recorded.version);
        tracing::info!(version = recorded.version, by = %actor.name, "policy pushed");
        Ok(view(&recorded, false, None))
    }

    /// Pushes version `version`'s text again as a new version.
    pub async fn rollback_policy(
        &self,
        actor: &Person,
        version: i64,
    ) -> Result<PolicyVersionView, ActionError> {
        let text = self.policy_version(version).await?.text.unwrap_or_default();
        self.push_policy(actor, text, Some(version)).await
    }

    /// One version, with its text.
    pub async fn policy_version(&self, version: i64) -> Result<PolicyVersionView, ActionError> {
        let versions = self.ledger.policy_versions().await?;
        versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| view(v, true, None))
            .ok_or_else(|| ActionError::Missing(format!("no policy version {version}")))
    }

    /// Every version, newest first; with `diff`, each with its diff against the one before.
    pub async fn policy_history(&self, diff: bool) -> Result<PolicyHistory, ActionError> {
        let versions = self.ledger.policy_versions().await?;
        let mut views = Vec::with_capacity(versions.len());
        let mut previous: Option<&PolicyVersion> = None;
        for version in &versions {
            let changes = diff.then(|| {
                line_diff(
                    previous.map_or("", |p| p.text.as_str()),
                    &version.text,
                    previous.map_or(0, |p| p.version),
                    version.version,
                )
            });
            views.push(view(version, false, changes));
            previous = Some(version);
        }
        views.reverse();
        Ok(PolicyHistory {
            current: self.policy.version(),
            versions: views,
        })
    }
}

/// Longest texts `line_diff` compares line by line (beyond, it shows the whole change).
const MAX_DIFF_LINES: usize = 4000;

/// A unified-style diff of two texts (`-` removed, `+` added, ` ` kept), by the longest common
/// subsequence of their lines.
pub fn line_diff(old: &str, new: &str, old_version: i64, new_version: i64) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut out = format!("--- version {old_version}\n+++ version {new_version}\n");
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        a.iter().for_each(|l| out.push_str(&format!("-{l}\n")));
        b.iter().for_each(|l| out.push_str(&format!("+{l}\n")));
        return out;
    }
    // lcs[i][j]: the common subsequence length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_removed_added_and_kept_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nc\nd\n", 1, 2);
        assert_eq!(diff, "--- version 1\n+++ version 2\n a\n-b\n c\n+d\n");
        assert_eq!(
            line_diff("", "x\n", 0, 1),
            "--- version 0\n+++ version 1\n+x\n"
        );
    }
}
