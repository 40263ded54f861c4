//! The `team` scenario (issue 15, docs/TEAM.md "Sizing"): checks per second and p50/p99 of
//! the same closed-loop load against one daemon on SQLite, one replica on PostgreSQL and three
//! replicas sharing one PostgreSQL, in one run; then decision propagation between replicas: an
//! agent waits on replica A, a person decides on replica B, and the time from sending the
//! decision to A releasing the agent (LISTEN/NOTIFY) is measured (p50, p99), with how long the
//! pause took to appear on B.
//!
//! PostgreSQL: `GATEHOUSE_BENCH_POSTGRES_URL` (or `GATEHOUSE_TEST_POSTGRES_URL`), an admin URL
//! on which `psql` may `CREATE DATABASE`; else a throwaway cluster from `scripts/pg-cluster.sh`
//! when Debian's postgresql is installed. Without either the scenario prints why and skips.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::http::{self, Expect};
use crate::load::{self, LoadResult, LoadSpec, Mode, Prepared};
use crate::report::Summary;
use crate::servers::{self, Server};

/// Connections of the closed-loop load, spread evenly over the replicas.
const CONNECTIONS: usize = 12;

const POLICY: &str = r#"
default = "pause"
[[rules]]
id = "allow-ls"
effect = "allow"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "^ls( |$)"

[[rules]]
id = "reject-rm-rf"
effect = "reject"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = "rm -rf"
"#;

/// The checks the load cycles through: allowed and rejected by rules (each one a ledger commit).
const CHECKS: [(&str, &str, &str); 2] = [
    (
        r#"{"tool":"Bash","input":{"command":"ls -la"},"session_id":"bench-team"}"#,
        "allow",
        "allow-ls",
    ),
    (
        r#"{"tool":"Bash","input":{"command":"rm -rf /"},"session_id":"bench-team"}"#,
        "reject",
        "reject-rm-rf",
    ),
];

const BASE_CONFIG: &str =
    "[classifier]\nkind = \"none\"\n[approvals]\npresence = \"off\"\ndeadline_ms = 120000\n";

/// One line per figure, ready to print.
#[derive(Debug, Default)]
pub struct TeamResult {
    pub lines: Vec<String>,
}

/// A PostgreSQL to benchmark against: an admin URL, and the cluster to stop if we started it.
struct Postgres {
    admin: String,
    cluster: Option<(PathBuf, PathBuf)>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((script, dir)) = &self.cluster {
            let _ = Command::new(script).arg("stop").arg(dir).status();
        }
    }
}

/// The PostgreSQL to use, or why there is none.
fn postgres(root: &Path) -> Result<Postgres, String> {
    for var in [
        "GATEHOUSE_BENCH_POSTGRES_URL",
        "GATEHOUSE_TEST_POSTGRES_URL",
    ] {
        if let Ok(url) = std::env::var(var)
            && !url.is_empty()
        {
            return Ok(Postgres {
                admin: url,
                cluster: None,
            });
        }
    }
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| {
            versions
                .flatten()
                .any(|v| v.path().join("bin/initdb").exists())
        })
        .unwrap_or(false);
    if !installed {
        return Err(
            "no PostgreSQL: set GATEHOUSE_BENCH_POSTGRES_URL, or install Debian's postgresql \
             (scripts/pg-cluster.sh install)"
                .into(),
        );
    }
    let script = root.join("scripts/pg-cluster.sh");
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-pg-{}", std::process::id()));
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} start failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Postgres {
        admin: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        cluster: Some((script, dir)),
    })
}

impl Postgres {
    /// A new, empty database on the cluster, and its URL.
    fn database(&self, name: &str) -> Result<String> {
        let status = Command::new("psql")
            .args([&self.admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
            .status()
            .context("running psql")?;
        anyhow::ensure!(status.success(), "psql could not create {name}");
        let (base, _) = self
            .admin
            .rsplit_once('/')
            .context("the admin URL has no database part")?;
        Ok(format!("{base}/{name}"))
    }
}

/// Runs the scenario with `bin` (`gatehouse`), from the workspace at `root`.
pub fn run(bin: &Path, root: &Path, warmup: Duration, measure: Duration) -> Result<TeamResult> {
    let mut result = TeamResult::default();
    let pg = match postgres(root) {
        Ok(pg) => pg,
        Err(why) => {
            result.lines.push(format!("team: SKIPPED, {why}"));
            return Ok(result);
        }
    };
    let dir = tempfile::tempdir().context("creating a temp dir")?;
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY)?;
    let spec = |connections| LoadSpec {
        connections,
        mode: Mode::Closed,
        warmup,
        measure,
    };
    result.lines.push(format!(
        "team: closed loop, {CONNECTIONS} connections spread over the replicas, {} ms measured \
         after {} ms warm-up; every check a committed ledger row; client, daemons and PostgreSQL \
         share this machine",
        measure.as_millis(),
        warmup.as_millis()
    ));

    let sqlite = {
        let server = servers::start_gatehouse(bin, &policy, BASE_CONFIG)?;
        load::run(server.addr, &prepared(&server), &spec(CONNECTIONS))?
    };
    let sqlite = Summary::of(&sqlite);
    result.lines.push(format!(
        "team: SQLite, 1 daemon:         {}",
        brief(&sqlite)
    ));

    let pid = std::process::id();
    let one_url = pg.database(&format!("gh_bench_one_{pid}"))?;
    let one = {
        let server = start_replica(bin, &policy, &one_url)?;
        Summary::of(&load::run(
            server.addr,
            &prepared(&server),
            &spec(CONNECTIONS),
        )?)
    };
    result.lines.push(format!(
        "team: PostgreSQL, 1 replica:    {}; {:.2}x SQLite's checks/s",
        brief(&one),
        one.throughput / sqlite.throughput.max(1e-9)
    ));

    let three_url = pg.database(&format!("gh_bench_three_{pid}"))?;
    let replicas = (0..3)
        .map(|_| start_replica(bin, &policy, &three_url))
        .collect::<Result<Vec<_>>>()?;
    let three = Summary::of(&spread(&replicas, &spec(CONNECTIONS / replicas.len()))?);
    result.lines.push(format!(
        "team: PostgreSQL, 3 replicas:   {}; {:.2}x one replica's, {:.2}x SQLite's checks/s",
        brief(&three),
        three.throughput / one.throughput.max(1e-9),
        three.throughput / sqlite.throughput.max(1e-9)
    ));

    let rounds = if measure < Duration::from_secs(2) {
        20
    } else {
        60
    };
    let propagation = propagation(&replicas, rounds)?;
    result.lines.push(format!(
        "team: decision propagation, {rounds} rounds (decided on replica B, agent waiting on A): \
         released p50 {:.1} ms, p99 {:.1} ms after the decision was sent (the decision's own \
         round trip p50 {:.1} ms); the pause listed on B p50 {:.1} ms, p99 {:.1} ms after the agent sent its check to A",
        propagation.released.p50,
        propagation.released.p99,
        propagation.decision_rtt.p50,
        propagation.seen.p50,
        propagation.seen.p99,
    ));
    drop(replicas);
    Ok(result)
}

fn brief(s: &Summary) -> String {
    format!(
        "{:>6.0} checks/s, p50 {:.2} ms, p99 {:.2} ms ({} ok, {} errors{})",
        s.throughput,
        s.p50_us / 1000.0,
        s.p99_us / 1000.0,
        s.ok,
        s.errors,
        s.error_samples
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )
}

fn start_replica(bin: &Path, policy: &Path, url: &str) -> Result<Server> {
    servers::start_gatehouse(
        bin,
        policy,
        &format!("{BASE_CONFIG}[ledger]\nurl = \"{url}\"\n"),
    )
}

fn prepared(server: &Server) -> Vec<Prepared> {
    CHECKS
        .iter()
        .map(|(body, verdict, rule)| Prepared {
            bytes: http::post_check(&server.host, server.token.as_deref(), body.as_bytes()),
            expect: Expect::new(verdict, Some(rule)),
        })
        .collect()
}

/// The same load on every replica at once, merged as one.
fn spread(replicas: &[Server], spec: &LoadSpec) -> Result<LoadResult> {
    let results = std::thread::scope(|scope| {
        let runs: Vec<_> = replicas
            .iter()
            .map(|server| scope.spawn(move || load::run(server.addr, &prepared(server), spec)))
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|_| bail!("a load thread panicked"))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut merged: Option<LoadResult> = None;
    for r in results {
        match &mut merged {
            None => merged = Some(r),
            Some(m) => {
                m.hist.add(&r.hist).context("merging histograms")?;
                m.ok += r.ok;
                m.errors += r.errors;
                m.ok_total += r.ok_total;
                m.window = m.window.max(r.window);
                m.error_samples.extend(r.error_samples);
            }
        }
    }
    merged.context("no replicas")
}

/// p50 and p99 in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
struct Quantiles {
    p50: f64,
    p99: f64,
}

fn quantiles(samples: &Histogram<u64>) -> Quantiles {
    Quantiles {
        p50: samples.value_at_quantile(0.5) as f64 / 1000.0,
        p99: samples.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

struct Propagation {
    released: Quantiles,
    decision_rtt: Quantiles,
    seen: Quantiles,
}

/// `rounds` times: an agent's paused check waits on replica A; replica B lists it, decides it;
/// the time until A answers the agent is the propagation latency.
fn propagation(replicas: &[Server], rounds: usize) -> Result<Propagation> {
    let hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram");
    let (mut released, mut rtt, mut seen) = (hist()?, hist()?, hist()?);
    let approver =
        |server: &Server| server.read_startup_file("approver.token", Duration::from_secs(5));
    let approvers = replicas.iter().map(approver).collect::<Result<Vec<_>>>()?;
    for round in 0..rounds {
        let a = &replicas[round % replicas.len()];
        let b_index = (round + 1) % replicas.len();
        let b = &replicas[b_index];
        let tool_use_id = format!("prop-{}-{round}", std::process::id());
        let body =
            json!({"tool": "Bash", "input": {"command": format!("git push origin r{round}")},
                          "session_id": "bench-team", "tool_use_id": tool_use_id, "wait_ms": 60000})
            .to_string();
        let agent = a.token.clone().unwrap_or_default();
        let (addr, host) = (a.addr, a.host.clone());
        let recorded = Instant::now();
        let waiting = std::thread::spawn(move || {
            let answer = request(addr, &host, "POST", "/v1/check", &agent, &body);
            (answer, Instant::now())
        });
        // B lists the pause (recorded on A) ...
        let (id, hash) = loop {
            let listed = request(
                b.addr,
                &b.host,
                "GET",
                "/v1/actions?status=pending&limit=50",
                &approvers[b_index],
                "",
            )?;
            let found = listed.1["actions"].as_array().and_then(|actions| {
                actions
                    .iter()
                    .find(|a| a["tool_use_id"] == tool_use_id.as_str())
                    .map(|a| (a["action_id"].clone(), a["action_hash"].clone()))
            });
            if let Some((Value::String(id), hash)) = found {
                break (id, hash);
            }
            if recorded.elapsed() > Duration::from_secs(30) {
                bail!("the pause never showed on replica B");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        seen.record(micros(recorded.elapsed()))?;
        // ... and decides it; A releases its agent.
        let sent = Instant::now();
        let decided = request(
            b.addr,
            &b.host,
            "POST",
            &format!("/v1/actions/{id}/decision"),
            &approvers[b_index],
            &json!({"decision": "approve", "action_hash": hash}).to_string(),
        )?;
        rtt.record(micros(sent.elapsed()))?;
        anyhow::ensure!(decided.0 == 200, "the decision failed: {}", decided.1);
        let (answer, at) = waiting
            .join()
            .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
        let answer = answer?;
        anyhow::ensure!(
            answer.1["verdict"] == "allow",
            "the agent on A got {}",
            answer.1
        );
        released.record(micros(at.saturating_duration_since(sent)))?;
    }
    Ok(Propagation {
        released: quantiles(&released),
        decision_rtt: quantiles(&rtt),
        seen: quantiles(&seen),
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One request on its own connection: status and JSON body.
fn request(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(90)))?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status line in {response:?}"))?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers")?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
