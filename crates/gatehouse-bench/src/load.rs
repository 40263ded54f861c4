//! The load generator: blocking `TcpStream` clients, one OS thread per keep-alive connection,
//! pre-serialised requests, every response checked, latencies in an HDR histogram.
//!
//! Two modes. *Open loop*: each connection sends at a fixed rate on a [`Schedule`] and latency
//! runs from the intended send time (coordinated-omission corrected); a request whose intended
//! time falls in the measured window is always waited for (up to a drain limit), so a stalled
//! server cannot hide its slow requests by stalling. *Closed loop*: each connection sends its
//! next request as soon as the previous answer is read (maximum throughput); latency runs from
//! the actual send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::http::{self, Expect};
use crate::pacing::{self, Pacer, Schedule};

/// A request ready to send and what its answer must say.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

/// How a load point drives its connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each connection sends at this many requests per second.
    Open { rate_per_connection: f64 },
    /// Each connection sends back to back.
    Closed,
}

/// One load point.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub connections: usize,
    pub mode: Mode,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Longest a single response may take before the request counts as an error.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after the window an open-loop connection keeps sending its backlog.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How many distinct error messages a load point keeps for the report.
const KEEP_ERRORS: usize = 3;

/// What one load point measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Latency in nanoseconds of every correct response in the window.
    pub hist: Histogram<u64>,
    /// Correct responses in the window.
    pub ok: u64,
    /// Wrong status, wrong verdict, malformed response, I/O error or never sent, in the window.
    pub errors: u64,
    /// Correct responses, warm-up included (each one is a ledger row the server must hold).
    pub ok_total: u64,
    /// The measured window's effective length (longer than asked if open-loop requests queued).
    pub window: Duration,
    pub error_samples: Vec<String>,
    /// Open loop: how late (ns) requests went out when the connection was idle at their intended
    /// time, i.e. the pacing error the client itself adds to every latency.
    pub send_late: Histogram<u64>,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q` in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn merge(&mut self, other: ConnResult) -> Result<()> {
        self.hist.add(&other.hist).context("merging histograms")?;
        self.send_late
            .add(&other.send_late)
            .context("merging histograms")?;
        self.ok += other.ok;
        self.errors += other.errors;
        self.ok_total += other.ok_total;
        if let Some(last) = other.last_done {
            self.window = self.window.max(last);
        }
        for e in other.error_samples {
            if self.error_samples.len() < KEEP_ERRORS && !self.error_samples.contains(&e) {
                self.error_samples.push(e);
            }
        }
        Ok(())
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 ns .. 100 s at 3 significant figures.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).context("creating histogram")
}

/// Runs one load point against `addr`, cycling through `requests`.
pub fn run(addr: SocketAddr, requests: &[Prepared], spec: &LoadSpec) -> Result<LoadResult> {
    anyhow::ensure!(!requests.is_empty(), "no requests to send");
    anyhow::ensure!(spec.connections > 0, "no connections");
    // Threads connect first, then all start together.
    let start = Instant::now()
        + Duration::from_millis(100)
        + Duration::from_micros(50 * spec.connections as u64);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..spec.connections)
            .map(|k| {
                std::thread::Builder::new()
                    .name(format!("load-{k}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        run_connection(addr, requests, spec, k, start)
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .map_err(|_| anyhow::anyhow!("a load thread panicked")),
                Err(e) => Err(anyhow::Error::new(e).context("spawning a load thread")),
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut total = LoadResult {
        hist: new_histogram()?,
        ok: 0,
        errors: 0,
        ok_total: 0,
        window: spec.measure,
        error_samples: Vec::new(),
        send_late: new_histogram()?,
    };
    for r in results {
        total.merge(r?)?;
    }
    Ok(total)
}

struct ConnResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    ok_total: u64,
    /// When this connection's last measured response arrived, from the window's start.
    last_done: Option<Duration>,
    error_samples: Vec<String>,
    send_late: Histogram<u64>,
}

impl ConnResult {
    fn error(&mut self, measured: bool, what: impl FnOnce() -> String) {
        if measured {
            self.errors += 1;
            if self.error_samples.len() < KEEP_ERRORS {
                self.error_samples.push(what());
            }
        }
    }
}

fn run_connection(
    addr: SocketAddr,
    requests: &[Prepared],
    spec: &LoadSpec,
    k: usize,
    start: Instant,
) -> Result<ConnResult> {
    let window_start = start + spec.warmup;
    let window_end = window_start + spec.measure;
    let mut out = ConnResult {
        hist: new_histogram()?,
        ok: 0,
        errors: 0,
        ok_total: 0,
        last_done: None,
        error_samples: Vec::new(),
        send_late: new_histogram()?,
    };
    let mut conn = Conn::connect(addr).ok();
    let record =
        |out: &mut ConnResult, conn: &mut Option<Conn>, i: u64, from: Instant, measured: bool| {
            let req = &requests[(i as usize + k) % requests.len()];
            let outcome = match conn {
                Some(c) => c.exchange(req),
                None => match Conn::connect(addr) {
                    Ok(c) => conn.insert(c).exchange(req),
                    Err(e) => Err(Failure {
                        msg: format!("connect: {e}"),
                        keep: false,
                    }),
                },
            };
            let done = Instant::now();
            match outcome {
                Ok(()) => {
                    out.ok_total += 1;
                    if measured {
                        out.ok += 1;
                        // Saturating: a latency beyond the histogram's range is still counted, at its top.
                        out.hist.saturating_record(
                            pacing::corrected_latency(from, done).as_nanos() as u64,
                        );
                        out.last_done = Some(done.saturating_duration_since(window_start));
                    }
                }
                Err(f) => {
                    out.error(measured, || f.msg);
                    if !f.keep {
                        *conn = None;
                    }
                }
            }
        };

    match spec.mode {
        Mode::Open {
            rate_per_connection,
        } => {
            let schedule = Schedule::new(
                start,
                rate_per_connection,
                Schedule::phase_of(k, spec.connections),
            );
            let mut pacer = Pacer::for_this_thread(Some(schedule.interval()));
            let first_measured = schedule.first_at_or_after(window_start);
            let end = schedule.first_at_or_after(window_end);
            for i in 0..end {
                let intended = schedule.intended(i);
                let idle = Instant::now() < intended;
                let late = pacer.wait_until(intended);
                let measured = i >= first_measured;
                if idle && measured {
                    out.send_late.saturating_record(late.as_nanos() as u64);
                }
                if Instant::now() > window_end + DRAIN_LIMIT {
                    let never = end - i.max(first_measured);
                    if never > 0 {
                        out.error(true, || {
                            format!("{never} requests never sent: server too far behind")
                        });
                        out.errors += never - 1;
                    }
                    break;
                }
                record(&mut out, &mut conn, i, intended, measured);
            }
        }
        Mode::Closed => {
            Pacer::new(None).wait_until(start);
            let mut i = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= window_end {
                    break;
                }
                let measured = sent >= window_start;
                let had_conn = conn.is_some();
                record(&mut out, &mut conn, i, sent, measured);
                if conn.is_none() && !had_conn {
                    // Could not connect: don't spin on a dead server.
                    std::thread::sleep(Duration::from_millis(1));
                }
                i += 1;
            }
            if out.ok > 0 {
                out.last_done = Some(spec.measure);
            }
        }
    }
    Ok(out)
}

/// Why one exchange failed; `keep`: the connection is still usable.
pub(crate) struct Failure {
    pub(crate) msg: String,
    keep: bool,
}

/// One keep-alive connection and its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
    body: Vec<u8>,
}

impl Conn {
    pub(crate) fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            body: Vec::with_capacity(1024),
        })
    }

    /// The body of the last response read.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Sends one request and reads and checks its response.
    pub(crate) fn exchange(&mut self, req: &Prepared) -> Result<(), Failure> {
        let io = |what: &str, e: std::io::Error| Failure {
            msg: format!("{what}: {e}"),
            keep: false,
        };
        self.stream
            .write_all(&req.bytes)
            .map_err(|e| io("write", e))?;
        loop {
            match http::parse_response(&self.buf[..self.filled], &mut self.body) {
                Ok(Some(head)) => {
                    // Keep any bytes past this response (there should be none without pipelining).
                    self.buf.copy_within(head.consumed..self.filled, 0);
                    self.filled -= head.consumed;
                    let keep = !head.close;
                    if head.status != 200 {
                        let body = String::from_utf8_lossy(&self.body);
                        let body: String = body.chars().take(160).collect();
                        return Err(Failure {
                            msg: format!("HTTP {}: {body}", head.status),
                            keep,
                        });
                    }
                    if !req.expect.matches(&self.body) {
                        let body = String::from_utf8_lossy(&self.body);
                        let body: String = body.chars().take(160).collect();
                        return Err(Failure {
                            msg: format!(
                                "expected verdict {} ({:?}), got {body}",
                                req.expect.verdict, req.expect.rule_id
                            ),
                            keep,
                        });
                    }
                    return if keep {
                        Ok(())
                    } else {
                        Err(Failure {
                            msg: "server closed the keep-alive connection".into(),
                            keep: false,
                        })
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure {
                        msg: format!("parse: {e}"),
                        keep: false,
                    });
                }
            }
            if self.filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    return Err(Failure {
                        msg: "connection closed mid-response".into(),
                        keep: false,
                    });
                }
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read", e)),
            }
        }
    }
}

/// One `GET` on a fresh connection; the status and body. For readiness probes and smoke checks.
pub fn get_once(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&http::get(host, path))?;
    let mut buf = Vec::with_capacity(4096);
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head) = http::parse_response(&buf, &mut body)? {
            return Ok((head.status, body));
        }
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "connection closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
    }
}
