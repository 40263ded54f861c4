//! The `paused-flood` scenario: fast-path latency and the daemon's memory with 10 000 paused
//! actions waiting for a person, against the same daemon idle.
//!
//! One gatehouse daemon (crash-safe, no classifier, `approvals.max_pending` and
//! `max_pending_per_session` at 10 000): the steady load (4 × 500/s) idle, then [`PARKED`]
//! checks the rules pause (`wait_ms: 0`, from [`PARKERS`] keep-alive connections), then up to
//! [`MAX_WAITERS`] long-polls (`GET /v1/actions/{id}?wait_ms=60000`) held open on them, then the
//! steady load again. The daemon's RSS is read from `/proc` at each step.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::http::Expect;
use crate::load::{Conn, Prepared};

/// Paused actions parked at once.
pub const PARKED: usize = 10_000;
/// Long-polls held open at once (fewer if the open-file limit is lower).
pub const MAX_WAITERS: usize = 2_000;
/// Connections parking in parallel.
const PARKERS: usize = 8;

/// The daemon's config for this scenario.
pub const CONFIG: &str = "[ledger]\ndurability = \"crash-safe\"\n\n[classifier]\nkind = \"none\"\n\n\
                          [approvals]\ndeadline_ms = 600000\nmax_pending = 10000\n\
                          max_pending_per_session = 10000\nmax_pending_per_agent = 10000\n";

/// A check `bench/policy.toml` pauses (no rule matches `git push` without `--force`).
const PAUSE: &str = r#"{"tool":"Bash","input":{"command":"git push origin main"},"session_id":"flood","wait_ms":0}"#;

/// The daemon's memory at each step, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// After the idle load.
    pub idle: u64,
    /// With every action parked.
    pub parked: u64,
    /// With the long-polls held too.
    pub waiting: u64,
    /// After the load on the parked daemon.
    pub after_load: u64,
}

impl Memory {
    /// What parking added per paused action.
    pub fn per_parked(&self) -> u64 {
        self.parked.saturating_sub(self.idle) / PARKED as u64
    }

    /// What a held long-poll added.
    pub fn per_waiter(&self, waiters: usize) -> u64 {
        self.waiting.saturating_sub(self.parked) / waiters.max(1) as u64
    }
}

/// Parks [`PARKED`] actions; returns their ids in order and how long it took.
pub fn park(addr: SocketAddr, host: &str, token: &str) -> Result<(Vec<String>, Duration)> {
    let request = Prepared {
        bytes: crate::http::post_check(host, Some(token), PAUSE.as_bytes()),
        expect: Expect::new("pending", None),
    };
    let started = Instant::now();
    let ids = std::thread::scope(|scope| {
        let parkers: Vec<_> = (0..PARKERS)
            .map(|p| {
                let request = &request;
                scope.spawn(move || -> Result<Vec<String>> {
                    let mut conn = Conn::connect(addr).context("connecting")?;
                    let share = (p..PARKED).step_by(PARKERS).count();
                    let mut ids = Vec::with_capacity(share);
                    for _ in 0..share {
                        if let Err(failure) = conn.exchange(request) {
                            bail!("parking failed: {}", failure.msg);
                        }
                        ids.push(action_id(conn.body())?);
                    }
                    Ok(ids)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(PARKED);
        for parker in parkers {
            all.extend(
                parker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a parking thread panicked"))??,
            );
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    Ok((ids, started.elapsed()))
}

fn action_id(body: &[u8]) -> Result<String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).context("parsing a check answer")?;
    value["action_id"]
        .as_str()
        .map(str::to_owned)
        .context("a check answer without action_id")
}

/// How many long-polls this process (and the daemon it started, which inherits the limit) can
/// hold: [`MAX_WAITERS`], or fewer under a low open-file limit.
pub fn waiters_allowed() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    MAX_WAITERS.min(soft.saturating_sub(256))
}

/// Opens one long-poll per id and leaves it waiting; the streams hold them open.
pub fn hold_waiters(
    addr: SocketAddr,
    host: &str,
    token: &str,
    ids: &[String],
) -> Result<Vec<TcpStream>> {
    ids.iter()
        .map(|id| {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .context("opening a long-poll")?;
            let request = format!(
                "GET /v1/actions/{id}?wait_ms=60000 HTTP/1.1\r\nHost: {host}\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .context("sending a long-poll")?;
            Ok(stream)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_policy_pauses_the_flood_check() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/policy.toml");
        let policy =
            gatehouse_policy::Policy::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
        let check: serde_json::Value = serde_json::from_str(PAUSE).unwrap();
        let eval = policy.evaluate(&gatehouse_policy::ActionRef::new(
            "Bash",
            check["input"].as_object().unwrap(),
        ));
        assert_eq!(eval.effect.as_str(), "pause");
        assert_eq!(check["wait_ms"], 0);
    }

    #[test]
    fn memory_per_action_and_per_waiter() {
        let m = Memory {
            idle: 10 << 20,
            parked: (10 << 20) + PARKED as u64 * 1000,
            waiting: (10 << 20) + PARKED as u64 * 1000 + 2000 * 500,
            after_load: 0,
        };
        assert_eq!(m.per_parked(), 1000);
        assert_eq!(m.per_waiter(2000), 500);
        assert_eq!(m.per_waiter(0), 1_000_000);
    }

    #[test]
    fn the_config_raises_both_caps_to_the_flood() {
        assert!(CONFIG.contains("max_pending = 10000\n"));
        assert!(CONFIG.contains("max_pending_per_session = 10000\n"));
    }
}
