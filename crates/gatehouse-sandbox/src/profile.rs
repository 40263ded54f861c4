//! Confinement profiles as data: what a confined command may read, write and reach. The builtin
//! ones live in `profiles/builtin.toml`; a profile file of the same shape can add more. A profile
//! names *places* (`~/.npm`, `{project}`, `@caches`); `plan.rs` turns them into paths.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SandboxError;

const BUILTIN: &str = include_str!("../profiles/builtin.toml");

/// Whether and how a confined command reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// No network at all: a private network namespace (no interface up) and no TCP.
    #[default]
    None,
    /// Only the hosts listed, through the launcher's filtering HTTP proxy (HTTPS_PROXY); the
    /// kernel allows TCP connections to the proxy's port only.
    Proxy,
}

/// One profile, as written in a profile file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line for `gatehouse sandbox profiles` and `policy explain`.
    #[serde(default)]
    pub description: String,
    /// Places the command may read (and execute). The secret set is always cut out.
    #[serde(default)]
    pub read: Vec<String>,
    /// Places the command may write (create, remove, rename under); also readable.
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub network: Network,
    /// With `network = "proxy"`: the hosts the proxy lets through (`example.com` also allows
    /// its subdomains), or `@SET`.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// A profile file: named place sets and profiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub sets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl ProfileFile {
    /// Parses a profile file; every `@set` a profile names must exist.
    pub fn parse(text: &str) -> Result<Self, SandboxError> {
        let file: ProfileFile =
            toml::from_str(text).map_err(|err| SandboxError::Profile(err.to_string()))?;
        for (name, profile) in &file.profiles {
            for place in profile
                .read
                .iter()
                .chain(&profile.write)
                .chain(&profile.hosts)
            {
                if let Some(set) = place.strip_prefix('@')
                    && !file.sets.contains_key(set)
                    && !builtin_file().sets.contains_key(set)
                {
                    return Err(SandboxError::Profile(format!(
                        "profile {name:?} names the unknown set @{set}"
                    )));
                }
            }
            if profile.network == Network::None && !profile.hosts.is_empty() {
                return Err(SandboxError::Profile(format!(
                    "profile {name:?} lists hosts but its network is \"none\" (use \"proxy\")"
                )));
            }
        }
        Ok(file)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| SandboxError::Profile(format!("{}: {err}", path.display())))?;
        Self::parse(&text).map_err(|err| match err {
            SandboxError::Profile(msg) => {
                SandboxError::Profile(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// `@set` entries replaced by the set's members (a file's own sets first, then the
    /// builtin ones); other entries as written.
    pub fn expand(&self, places: &[String]) -> Vec<String> {
        let builtin = builtin_file();
        let mut out = Vec::new();
        for place in places {
            match place.strip_prefix('@') {
                Some(set) => {
                    let members = self.sets.get(set).or_else(|| builtin.sets.get(set));
                    out.extend(members.into_iter().flatten().cloned());
                }
                None => out.push(place.clone()),
            }
        }
        out
    }
}

/// The builtin profile file (embedded at build time; a parse error is a bug caught by tests).
pub fn builtin_file() -> ProfileFile {
    toml::from_str(BUILTIN).unwrap_or_default()
}

/// The names of the builtin profiles.
pub fn builtin_names() -> Vec<String> {
    builtin_file().profiles.into_keys().collect()
}

/// A builtin profile by name, with its sets expanded.
pub fn builtin(name: &str) -> Option<Profile> {
    let file = builtin_file();
    let profile = file.profiles.get(name)?;
    Some(expanded(&file, profile))
}

/// `profile` with every `@set` of `file` (or the builtin sets) expanded.
pub fn expanded(file: &ProfileFile, profile: &Profile) -> Profile {
    Profile {
        description: profile.description.clone(),
        read: file.expand(&profile.read),
        write: file.expand(&profile.write),
        network: profile.network,
        hosts: file.expand(&profile.hosts),
    }
}

/// What the ledger records of a profile an action was confined by: a digest of the profile
/// as resolved (places with its sets expanded, network, hosts), so a later change of the
/// profile shows as another digest, and a one-line summary of what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 of the expanded profile's canonical JSON (description excluded: it allows nothing).
    pub digest: [u8; 32],
    pub summary: String,
}

impl Profile {
    /// The profile's [`Fingerprint`] (call it on an [`expanded`] profile).
    pub fn fingerprint(&self) -> Fingerprint {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!({
            "read": self.read,
            "write": self.write,
            "network": self.network,
            "hosts": self.hosts,
        });
        Fingerprint {
            digest: Sha256::digest(canonical.to_string().as_bytes()).into(),
            summary: self.summary(),
        }
    }

    /// What it allows in one line, the same words `sandbox profiles` and `policy explain` use:
    /// the writable places, the network, the hosts. Reads are the system and toolchains minus
    /// the secret set for every builtin profile, so the line leaves them out.
    pub fn summary(&self) -> String {
        let network = match self.network {
            Network::None => "no network".to_owned(),
            Network::Proxy if self.hosts.is_empty() => {
                "network through the proxy to no host".to_owned()
            }
            Network::Proxy => format!(
                "network only through the filtering proxy to {} host{} ({}{})",
                self.hosts.len(),
                if self.hosts.len() == 1 { "" } else { "s" },
                self.hosts
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if self.hosts.len() > 4 { ", …" } else { "" }
            ),
        };
        let writes = if self.write.is_empty() {
            "nothing".to_owned()
        } else {
            self.write.join(" ")
        };
        format!("writes only {writes}; {network}; secrets never readable")
    }
}

/// What a profile allows, for people: its description, the one-line summary, then the places
/// it reads and writes and its network. `gatehouse sandbox explain` and `gatehouse policy
/// explain` print the same text.
pub fn describe(name: &str, profile: &Profile) -> String {
    let network = match profile.network {
        Network::None => "none".to_owned(),
        Network::Proxy => format!("proxy to {}", profile.hosts.join(" ")),
    };
    format!(
        "sandbox profile {name}: {}\n  allows:  {}\n  read:    {}\n  write:   {}\n  network: {network}\n",
        profile.description,
        profile.summary(),
        profile.read.join(" "),
        profile.write.join(" "),
    )
}

/// The fingerprint of a builtin profile by name, computed once per process (the daemon asks on
/// every confined allow). `None` for a name no builtin profile has.
pub fn builtin_fingerprint(name: &str) -> Option<&'static Fingerprint> {
    static FINGERPRINTS: std::sync::OnceLock<BTreeMap<String, Fingerprint>> =
        std::sync::OnceLock::new();
    FINGERPRINTS
        .get_or_init(|| {
            let file = builtin_file();
            file.profiles
                .iter()
                .map(|(name, profile)| (name.clone(), expanded(&file, profile).fingerprint()))
                .collect()
        })
        .get(name)
}

/// Finds a profile: a builtin name, or `NAME` in `extra` (a profile file) first.
pub fn find(name: &str, extra: Option<&ProfileFile>) -> Result<Profile, SandboxError> {
    if let Some(file) = extra
        && let Some(profile) = file.profiles.get(name)
    {
        return Ok(expanded(file, profile));
    }
    builtin(name).ok_or_else(|| {
        SandboxError::Profile(format!(
            "unknown profile {name:?} (builtin: {})",
            builtin_names().join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_parses_and_names_known_sets() {
        let file = ProfileFile::parse(BUILTIN).unwrap();
        assert!(file.profiles.contains_key("build"));
        assert!(file.profiles.contains_key("build-net"));
        assert!(file.profiles.contains_key("read-only"));
        let build = builtin("build").unwrap();
        assert!(build.write.contains(&"{project}".to_owned()));
        assert!(build.read.contains(&"/usr".to_owned()));
        assert_eq!(build.network, Network::None);
        let net = builtin("build-net").unwrap();
        assert!(net.hosts.contains(&"registry.npmjs.org".to_owned()));
    }

    #[test]
    fn a_fingerprint_changes_with_what_the_profile_allows_only() {
        let build = builtin("build").unwrap();
        let same = builtin_fingerprint("build").unwrap();
        assert_eq!(build.fingerprint(), *same);
        let mut reworded = build.clone();
        reworded.description = "another description".into();
        assert_eq!(reworded.fingerprint().digest, same.digest);
        let mut wider = build.clone();
        wider.write.push("~/.ssh".into());
        assert_ne!(wider.fingerprint().digest, same.digest);
        let net = builtin_fingerprint("build-net").unwrap();
        assert_ne!(net.digest, same.digest);
        assert!(
            same.summary.contains("writes only {project} {tmp}"),
            "{}",
            same.summary
        );
        assert!(same.summary.contains("no network"), "{}", same.summary);
        assert!(
            net.summary.contains("registry.npmjs.org") || net.summary.contains("crates.io"),
            "{}",
            net.summary
        );
        assert!(builtin_fingerprint("nope").is_none());
        let text = describe("build", &build);
        assert!(
            text.starts_with("sandbox profile build: Build and test"),
            "{text}"
        );
        assert!(
            text.contains(&format!("  allows:  {}\n", same.summary)),
            "{text}"
        );
        assert!(text.contains("  network: none\n"), "{text}");
    }

    #[test]
    fn unknown_keys_sets_and_hosts_without_proxy_are_refused() {
        assert!(ProfileFile::parse("[profiles.x]\nwrite = []\nbogus = 1\n").is_err());
        assert!(ProfileFile::parse("[profiles.x]\nread = [\"@nope\"]\n").is_err());
        assert!(ProfileFile::parse("[profiles.x]\nhosts = [\"a.com\"]\n").is_err());
        assert!(find("nope", None).is_err());
        let file = ProfileFile::parse(
            "[sets]\nmine = [\"/srv\"]\n[profiles.x]\nread = [\"@mine\", \"@system\"]\n",
        )
        .unwrap();
        let x = find("x", Some(&file)).unwrap();
        assert!(x.read.contains(&"/srv".to_owned()) && x.read.contains(&"/usr".to_owned()));
    }
}
