//! The servers under test as child processes: starting them on a free loopback port, waiting
//! until they answer `GET /healthz`, and killing them whatever happens.
//!
//! *Invariant*: every child is in [`CHILDREN`] from spawn until its [`ChildGuard`] drops, and the
//! guard's `Drop` kills and reaps it, so a panic unwinding through the benchmark leaves nothing
//! running; the Ctrl-C handler calls [`kill_all`] before exiting. Children are stopped with SIGKILL
//! on purpose: counting ledger rows afterwards checks that every answered check survived a crash.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::load;

/// Every running child, by pid.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Kills and reaps every child still running (the Ctrl-C path).
pub fn kill_all() {
    let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    children.clear();
}

/// Owns one child process: dropping the guard kills it.
#[derive(Debug)]
pub struct ChildGuard {
    pid: u32,
}

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let pid = child.id();
        children.push(child);
        Ok(ChildGuard { pid })
    }

    /// The exit status if the child has already exited.
    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
        let child = children.iter_mut().find(|c| c.id() == self.pid)?;
        child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = children.iter().position(|c| c.id() == self.pid) {
            let mut child = children.swap_remove(pos);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago (the child binds it; the race is harmless on a quiet box).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// A running server under test.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// The `Host` header to send (the daemon checks it).
    pub host: String,
    /// The agent token, for servers that want one.
    pub token: Option<String>,
    guard: ChildGuard,
    dir: TempDir,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd` (which must listen on `port`) with output to a log file in `dir`, and waits
    /// until `/healthz` answers 200.
    pub fn start(
        mut cmd: Command,
        port: u16,
        dir: TempDir,
        ready_within: Duration,
    ) -> Result<Self> {
        let log = dir.path().join("server.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let guard = ChildGuard::spawn(&mut cmd)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let server = Server {
            addr,
            host: format!("127.0.0.1:{port}"),
            token: None,
            guard,
            dir,
            log,
        };
        server.wait_ready(ready_within)?;
        Ok(server)
    }

    /// Polls the TCP connect and `GET /healthz` until 200, the child dies, or `within` passes.
    fn wait_ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.guard.exited() {
                bail!(
                    "the server exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            let last = match load::get_once(
                self.addr,
                &self.host,
                "/healthz",
                Duration::from_millis(500),
            ) {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "not ready within {within:?} (last: {last}); its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) for a file the server writes at start-up and returns its trimmed text.
    pub fn read_startup_file(&self, name: &str, within: Duration) -> Result<String> {
        let path = self.dir.path().join(name);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.trim().is_empty()
            {
                return Ok(text.trim().to_owned());
            }
            if Instant::now() >= deadline {
                bail!("{} did not appear within {within:?}", path.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's resident set size in bytes (`VmRSS` in `/proc/PID/status`).
    pub fn rss_bytes(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.guard.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// The last lines the server printed.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills the server (SIGKILL: a crash) and counts the ledger rows it left on disk.
    /// `None` if no ledger table (one with a `verdict` column) was found.
    pub fn kill_and_count_rows(self) -> Result<Option<u64>> {
        let Server { guard, dir, .. } = self;
        drop(guard);
        count_ledger_rows(dir.path())
    }
}

/// Starts `gatehouse serve` (`program`) on a free port over a fresh data directory, with `policy`
/// and a config file holding `config`, and reads its agent token.
pub fn start_gatehouse(program: &Path, policy: &Path, config: &str) -> Result<Server> {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-bench-")
        .tempdir()
        .context("creating a temp dir")?;
    let port = free_port()?;
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let mut cmd = Command::new(program);
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .arg("--policy")
        .arg(policy)
        .arg("--config")
        .arg(&config_path);
    // The config file alone decides: no GATEHOUSE_* from the caller's environment.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    let mut server = Server::start(cmd, port, dir, Duration::from_secs(60))?;
    server.token = Some(server.read_startup_file("agent.token", Duration::from_secs(10))?);
    Ok(server)
}

/// The largest row count of any table with a `verdict` column in any SQLite database under `dir`.
fn count_ledger_rows(dir: &Path) -> Result<Option<u64>> {
    let mut best: Option<u64> = None;
    for db in sqlite_files(dir)? {
        let conn =
            rusqlite::Connection::open(&db).with_context(|| format!("opening {}", db.display()))?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for table in tables {
            let has_verdict: bool = conn.query_row(
                "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = 'verdict'",
                [&table],
                |row| row.get(0),
            )?;
            if has_verdict {
                let quoted = table.replace('"', "\"\"");
                let n: i64 =
                    conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |row| {
                        row.get(0)
                    })?;
                let n = u64::try_from(n).unwrap_or(0);
                best = Some(best.map_or(n, |b| b.max(n)));
            }
        }
    }
    Ok(best)
}

/// Files under `dir` (recursively) that start with the SQLite header.
fn sqlite_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut header = [0u8; 16];
            if File::open(&path)
                .and_then(|mut f| f.read_exact(&mut header))
                .is_ok()
                && &header == b"SQLite format 3\0"
            {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// Runs a command to completion, returning its combined output's tail on failure.
pub fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    match cmd.stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let lines: Vec<&str> = text.lines().collect();
            Err(format!(
                "{:?} failed ({}):\n{}",
                cmd.get_program(),
                out.status,
                lines[lines.len().saturating_sub(20)..].join("\n")
            ))
        }
        Err(e) => Err(format!("{:?} could not start: {e}", cmd.get_program())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_kills_its_child_on_drop() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("30")).unwrap();
        let pid = guard.pid;
        assert!(guard.exited().is_none());
        drop(guard);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // Reaped, so the pid may only be reused by an unrelated process.
                let stat =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !stat.starts_with("sleep")
            }
        );
        assert!(CHILDREN.lock().unwrap().iter().all(|c| c.id() != pid));
    }

    #[test]
    fn ledger_rows_are_counted_in_the_table_with_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE meta (k TEXT);
             CREATE TABLE actions (id TEXT, verdict TEXT);
             INSERT INTO actions VALUES ('a', 'allow'), ('b', 'reject');",
        )
        .unwrap();
        std::fs::write(dir.path().join("agent.token"), "not a database").unwrap();
        assert_eq!(count_ledger_rows(dir.path()).unwrap(), Some(2));
        drop(conn);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(count_ledger_rows(empty.path()).unwrap(), None);
    }
}
