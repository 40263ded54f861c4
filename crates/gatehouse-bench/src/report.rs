//! The benchmark's report: one Markdown document (printed and optionally written to a file) with a
//! table per durability, gatehouse's ratios to the peer and the floor, the slow-classifier
//! comparison, the targets with PASS/MISS, and the ledger check.

use std::fmt::Write as _;

use crate::load::LoadResult;
use crate::paused_flood::{self, Memory};
use crate::sidecar_faults::{Sidecar, Tier2Counts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Floor,
    Peer,
    Gatehouse,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Floor => "floor",
            ServerKind::Peer => "peer",
            ServerKind::Gatehouse => "gatehouse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    CrashSafe,
    PowerSafe,
}

impl Durability {
    pub const ALL: [Durability; 2] = [Durability::CrashSafe, Durability::PowerSafe];

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::CrashSafe => "crash-safe",
            Durability::PowerSafe => "power-safe",
        }
    }
}

/// The three load points every server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// 1 connection at 20 checks/s: one agent.
    Agent,
    /// 4 connections at 2 000 checks/s in total.
    Steady,
    /// 32 connections, closed loop.
    Max,
}

impl LoadKind {
    pub const ALL: [LoadKind; 3] = [LoadKind::Agent, LoadKind::Steady, LoadKind::Max];

    pub fn label(self) -> &'static str {
        match self {
            LoadKind::Agent => "1 conn × 20/s",
            LoadKind::Steady => "4 conn × 500/s",
            LoadKind::Max => "32 conn, closed",
        }
    }
}

/// The figures of one measured load point.
#[derive(Debug, Clone)]
pub struct Summary {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub throughput: f64,
    pub ok: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Open loop: p99 of how late the client sent on an idle connection (its own pacing error).
    pub send_late_p99_us: Option<f64>,
}

impl Summary {
    pub fn of(r: &LoadResult) -> Self {
        Summary {
            p50_us: r.quantile_us(0.50),
            p99_us: r.quantile_us(0.99),
            p999_us: r.quantile_us(0.999),
            throughput: r.throughput(),
            ok: r.ok,
            errors: r.errors,
            error_samples: r.error_samples.clone(),
            send_late_p99_us: (!r.send_late.is_empty())
                .then(|| r.send_late.value_at_quantile(0.99) as f64 / 1000.0),
        }
    }

    /// Usable for comparisons: something answered and nothing was wrong.
    fn clean(&self) -> bool {
        self.ok > 0 && self.errors == 0
    }

    pub fn one_line(&self) -> String {
        format!(
            "p50 {} µs, p99 {} µs, p99.9 {} µs, {:.0} checks/s, {} ok, {} errors, send late p99 {} µs",
            us(self.p50_us),
            us(self.p99_us),
            us(self.p999_us),
            self.throughput,
            self.ok,
            self.errors,
            self.late()
        )
    }

    fn late(&self) -> String {
        self.send_late_p99_us.map_or_else(|| "–".into(), us)
    }
}

/// A load point's result, or why it was not measured.
#[derive(Debug, Clone)]
pub enum Outcome {
    Measured(Summary),
    Skipped(String),
}

impl Outcome {
    fn summary(&self) -> Option<&Summary> {
        match self {
            Outcome::Measured(s) => Some(s),
            Outcome::Skipped(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub server: ServerKind,
    /// `None` for the floor, which has no ledger.
    pub durability: Option<Durability>,
    pub load: LoadKind,
    pub outcome: Outcome,
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub quiet: String,
    pub settings: String,
    pub cells: Vec<Cell>,
    /// Without and with the saturated slow classifier (gatehouse, crash-safe, steady load).
    pub classifier: Option<(Outcome, Outcome)>,
    /// The `sidecar-faults` scenario, the baseline first.
    pub sidecar_faults: Vec<SidecarFaultRow>,
    /// The `paused-flood` scenario.
    pub paused_flood: Option<PausedFloodResult>,
    /// One line per server instance: ledger rows left after SIGKILL vs. checks answered.
    pub ledger_checks: Vec<String>,
    /// Loud warnings (a server that could not run) and error samples.
    pub notes: Vec<String>,
}

/// One sidecar of the `sidecar-faults` scenario: the steady load's figures and what `/metrics`
/// said about tier 2 afterwards.
#[derive(Debug, Clone)]
pub struct SidecarFaultRow {
    pub sidecar: Sidecar,
    pub outcome: Outcome,
    pub tier2: Option<Tier2Counts>,
}

/// The `paused-flood` scenario: the steady load on one daemon idle, then with the actions parked.
#[derive(Debug, Clone)]
pub struct PausedFloodResult {
    pub idle: Outcome,
    pub parked: Outcome,
    pub memory: Option<Memory>,
    /// Long-polls held open during the parked load.
    pub waiters: usize,
    pub parked_in: Option<std::time::Duration>,
}

impl Default for PausedFloodResult {
    fn default() -> Self {
        PausedFloodResult {
            idle: Outcome::Skipped("not run".into()),
            parked: Outcome::Skipped("not run".into()),
            memory: None,
            waiters: 0,
            parked_in: None,
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn us(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

impl Report {
    fn cell(
        &self,
        server: ServerKind,
        durability: Option<Durability>,
        load: LoadKind,
    ) -> Option<&Outcome> {
        self.cells
            .iter()
            .find(|c| c.server == server && c.durability == durability && c.load == load)
            .map(|c| &c.outcome)
    }

    fn summary(
        &self,
        server: ServerKind,
        durability: Durability,
        load: LoadKind,
    ) -> Option<&Summary> {
        let durability = (server != ServerKind::Floor).then_some(durability);
        self.cell(server, durability, load)?.summary()
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Gatehouse fast-path benchmark\n");
        let _ = writeln!(md, "{}\n", self.quiet);
        let _ = writeln!(md, "{}\n", self.settings);
        if !self.cells.is_empty() {
            for d in Durability::ALL {
                self.durability_section(&mut md, d);
            }
        }
        self.classifier_section(&mut md);
        if !self.cells.is_empty() || self.classifier.is_some() {
            self.targets_section(&mut md);
        }
        self.sidecar_faults_section(&mut md);
        self.paused_flood_section(&mut md);
        if !self.ledger_checks.is_empty() {
            let _ = writeln!(
                md,
                "## Ledger check (rows on disk after SIGKILL vs. checks answered)\n"
            );
            for line in &self.ledger_checks {
                let _ = writeln!(md, "- {line}");
            }
            md.push('\n');
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "## Notes\n");
            for line in &self.notes {
                let _ = writeln!(md, "- {line}");
            }
            md.push('\n');
        }
        md
    }

    fn durability_section(&self, md: &mut String, d: Durability) {
        let _ = writeln!(md, "## {}\n", d.as_str());
        let _ = writeln!(
            md,
            "| server | load | p50 µs | p99 µs | p99.9 µs | checks/s | errors | send late p99 µs |\n\
             |---|---|---:|---:|---:|---:|---:|---:|"
        );
        for server in [ServerKind::Floor, ServerKind::Peer, ServerKind::Gatehouse] {
            for load in LoadKind::ALL {
                let durability = (server != ServerKind::Floor).then_some(d);
                let name = server.as_str();
                let label = load.label();
                match self.cell(server, durability, load) {
                    Some(Outcome::Measured(s)) => {
                        let _ = writeln!(
                            md,
                            "| {name} | {label} | {} | {} | {} | {:.0} | {} | {} |",
                            us(s.p50_us),
                            us(s.p99_us),
                            us(s.p999_us),
                            s.throughput,
                            s.errors,
                            s.late()
                        );
                    }
                    Some(Outcome::Skipped(why)) => {
                        let _ = writeln!(
                            md,
                            "| {name} | {label} | – | – | – | – | not run: {why} | – |"
                        );
                    }
                    None => {}
                }
            }
        }
        let _ = writeln!(
            md,
            "\nRatios (latency: below 1 is better; throughput: above 1 is better):\n\n\
             | load | p50 g/peer | p99 g/peer | p99.9 g/peer | checks/s g/peer | p50 g/floor | p99 g/floor | p99.9 g/floor | checks/s g/floor |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for load in LoadKind::ALL {
            let g = self.summary(ServerKind::Gatehouse, d, load);
            let mut row = format!("| {} ", load.label());
            for other in [ServerKind::Peer, ServerKind::Floor] {
                match (g, self.summary(other, d, load)) {
                    (Some(g), Some(o)) => {
                        let _ = write!(
                            row,
                            "| {} | {} | {} | {} ",
                            ratio(g.p50_us, o.p50_us),
                            ratio(g.p99_us, o.p99_us),
                            ratio(g.p999_us, o.p999_us),
                            ratio(g.throughput, o.throughput)
                        );
                    }
                    _ => row.push_str("| – | – | – | – "),
                }
            }
            let _ = writeln!(md, "{row}|");
        }
        md.push('\n');
    }

    fn classifier_section(&self, md: &mut String) {
        let Some((without, with)) = &self.classifier else {
            return;
        };
        let _ = writeln!(
            md,
            "## Saturated slow classifier (gatehouse, crash-safe, {})\n\n\
             | classifier | p50 µs | p99 µs | p99.9 µs | checks/s | errors |\n|---|---:|---:|---:|---:|---:|",
            LoadKind::Steady.label()
        );
        for (name, o) in [
            ("none", without),
            ("fixed, 1 s delay, max_detached 4", with),
        ] {
            match o {
                Outcome::Measured(s) => {
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {} | {:.0} | {} |",
                        us(s.p50_us),
                        us(s.p99_us),
                        us(s.p999_us),
                        s.throughput,
                        s.errors
                    );
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(md, "| {name} | – | – | – | – | not run: {why} |");
                }
            }
        }
        if let (Some(a), Some(b)) = (without.summary(), with.summary()) {
            let _ = writeln!(md, "\np99 with / without: {}", ratio(b.p99_us, a.p99_us));
        }
        md.push('\n');
    }

    fn sidecar_faults_section(&self, md: &mut String) {
        if self.sidecar_faults.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "## Faulty classifier sidecars (gatehouse, crash-safe, {})\n\n\
             Ratios are against the run without a classifier (below 1 is better); restarts and \
             scorings by outcome are the daemon's `/metrics` after the load.\n\n\
             | sidecar | p50 µs | p99 µs | p99.9 µs | checks/s | errors | p50 ×base | p99 ×base | p99.9 ×base | restarts | scored | error | timeout | dropped |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            LoadKind::Steady.label()
        );
        let base = self
            .sidecar_faults
            .iter()
            .find(|r| r.sidecar == Sidecar::None)
            .and_then(|r| r.outcome.summary());
        for row in &self.sidecar_faults {
            let name = row.sidecar.label();
            let tier2 = row.tier2.map_or_else(
                || "– | – | – | – | –".to_owned(),
                |t| {
                    format!(
                        "{} | {} | {} | {} | {}",
                        t.restarts, t.scored, t.errors, t.timeouts, t.dropped
                    )
                },
            );
            match (&row.outcome, base) {
                (Outcome::Measured(s), base) => {
                    let r =
                        |f: fn(&Summary) -> f64| base.map_or("–".into(), |b| ratio(f(s), f(b)));
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {tier2} |",
                        us(s.p50_us),
                        us(s.p99_us),
                        us(s.p999_us),
                        s.throughput,
                        s.errors,
                        r(|s| s.p50_us),
                        r(|s| s.p99_us),
                        r(|s| s.p999_us),
                    );
                }
                (Outcome::Skipped(why), _) => {
                    let _ = writeln!(
                        md,
                        "| {name} | – | – | – | – | not run: {why} | – | – | – | {tier2} |"
                    );
                }
            }
        }
        md.push('\n');
    }

    fn paused_flood_section(&self, md: &mut String) {
        let Some(flood) = &self.paused_flood else {
            return;
        };
        let _ = writeln!(
            md,
            "## {} paused actions (gatehouse, crash-safe, {})\n\n\
             One daemon: the load idle, then with the actions parked (`wait_ms: 0`) and {} \
             long-polls held open on them.\n\n\
             | daemon | RSS | p50 µs | p99 µs | p99.9 µs | checks/s | errors |\n\
             |---|---:|---:|---:|---:|---:|---:|",
            paused_flood::PARKED,
            LoadKind::Steady.label(),
            flood.waiters
        );
        let rss = |f: fn(&Memory) -> u64| flood.memory.map_or("–".into(), |m| mib(f(&m)));
        for (name, outcome, memory) in [
            ("idle", &flood.idle, rss(|m| m.idle)),
            ("parked + long-polls", &flood.parked, rss(|m| m.waiting)),
        ] {
            match outcome {
                Outcome::Measured(s) => {
                    let _ = writeln!(
                        md,
                        "| {name} | {memory} | {} | {} | {} | {:.0} | {} |",
                        us(s.p50_us),
                        us(s.p99_us),
                        us(s.p999_us),
                        s.throughput,
                        s.errors
                    );
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(md, "| {name} | {memory} | – | – | – | – | not run: {why} |");
                }
            }
        }
        if let (Some(idle), Some(parked)) = (flood.idle.summary(), flood.parked.summary()) {
            let _ = writeln!(
                md,
                "\nparked / idle: p50 {}, p99 {}, p99.9 {}",
                ratio(parked.p50_us, idle.p50_us),
                ratio(parked.p99_us, idle.p99_us),
                ratio(parked.p999_us, idle.p999_us)
            );
        }
        if let (Some(m), Some(took)) = (flood.memory, flood.parked_in) {
            let _ = writeln!(
                md,
                "\nParking took {took:.2?}. RSS idle {}, parked {}, with the long-polls {}, after the \
                 load {}: {} bytes per paused action, {} bytes per held long-poll.",
                mib(m.idle),
                mib(m.parked),
                mib(m.waiting),
                mib(m.after_load),
                m.per_parked(),
                m.per_waiter(flood.waiters)
            );
        }
        md.push('\n');
    }

    /// The targets of issue 14, each with its measured value and PASS/MISS. Ratios compare
    /// servers measured in the same run; a row is PASS only when its runs had no errors.
    pub fn targets(&self) -> Vec<Target> {
        use Durability::{CrashSafe, PowerSafe};
        use LoadKind::{Agent, Max, Steady};
        use ServerKind::{Floor, Gatehouse, Peer};
        let vs = |g: Option<&Summary>, p: Option<&Summary>, f: fn(&Summary) -> f64| {
            let (g, p) = (g?, p?);
            Some((f(g) / f(p), g.clean() && p.clean()))
        };
        let p50 = |s: &Summary| s.p50_us;
        let p50_vs = |server: ServerKind, d: Durability, load: LoadKind| {
            vs(
                self.summary(Gatehouse, d, load),
                self.summary(server, d, load),
                p50,
            )
        };
        let classifier = self
            .classifier
            .as_ref()
            .and_then(|(a, b)| Some((a.summary()?, b.summary()?)));
        let paused = self
            .paused_flood
            .as_ref()
            .and_then(|f| Some((f.idle.summary()?, f.parked.summary()?)));
        let idle_rss = self
            .paused_flood
            .as_ref()
            .and_then(|f| Some((f.memory?.idle, f.idle.summary()?.clean())));

        // p99.9 at 4 × 500/s: at most 1 ms, or 1.5× the floor's own when the floor's exceeds it.
        let g_steady = self.summary(Gatehouse, CrashSafe, Steady);
        let floor_p999 = self.summary(Floor, CrashSafe, Steady).map(|f| f.p999_us);
        let p999_limit = floor_p999.map_or(1000.0, |f| (1.5 * f).max(1000.0));
        let mut p999 = Target::new(
            "crash-safe, 4 × 500/s: p99.9 ≤ 1 ms (≤ 1.5× the floor's when the floor's exceeds 1 ms)",
            g_steady.map(|g| (g.p999_us, g.clean())),
            Bound::AtMost(p999_limit),
            " µs",
        );
        p999.measured = format!("{} (limit {:.0} µs)", p999.measured, p999_limit);

        vec![
            Target::new(
                "crash-safe, 1 × 20/s: p50 ≤ 0.9× peer",
                p50_vs(Peer, CrashSafe, Agent),
                Bound::AtMost(0.9),
                "×",
            ),
            Target::new(
                "crash-safe, 1 × 20/s: p50 ≤ 2× floor",
                p50_vs(Floor, CrashSafe, Agent),
                Bound::AtMost(2.0),
                "×",
            ),
            Target::new(
                "crash-safe, 4 × 500/s: p50 ≤ 0.9× peer",
                p50_vs(Peer, CrashSafe, Steady),
                Bound::AtMost(0.9),
                "×",
            ),
            Target::new(
                "power-safe, 1 × 20/s: p50 ≤ 0.9× peer",
                p50_vs(Peer, PowerSafe, Agent),
                Bound::AtMost(0.9),
                "×",
            ),
            Target::new(
                "power-safe, 4 × 500/s: p50 ≤ 0.9× peer",
                p50_vs(Peer, PowerSafe, Steady),
                Bound::AtMost(0.9),
                "×",
            ),
            p999,
            Target::new(
                "crash-safe, 32 conn closed loop ≥ 1.5× peer",
                vs(
                    self.summary(Gatehouse, CrashSafe, Max),
                    self.summary(Peer, CrashSafe, Max),
                    |s| s.throughput,
                ),
                Bound::AtLeast(1.5),
                "×",
            ),
            Target::new(
                "power-safe, 32 conn closed loop ≥ 50 000 checks/s",
                self.summary(Gatehouse, PowerSafe, Max)
                    .map(|g| (g.throughput, g.clean())),
                Bound::AtLeast(50_000.0),
                " checks/s",
            ),
            Target::new(
                "fast-path p99 with a saturated 1 s classifier ≤ 1.25× without",
                classifier.map(|(a, b)| (b.p99_us / a.p99_us, a.clean() && b.clean())),
                Bound::AtMost(1.25),
                "×",
            ),
            Target::new(
                "idle RSS ≤ 30 MB",
                idle_rss.map(|(bytes, clean)| (bytes as f64 / 1e6, clean)),
                Bound::AtMost(30.0),
                " MB",
            ),
            Target::new(
                "fast-path p50 with 10 000 parked + long-polls held ≤ 1.25× idle",
                paused.map(|(idle, parked)| {
                    (parked.p50_us / idle.p50_us, idle.clean() && parked.clean())
                }),
                Bound::AtMost(1.25),
                "×",
            ),
        ]
    }

    fn targets_section(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## Targets\n\n| target | measured | result |\n|---|---:|---|"
        );
        for t in self.targets() {
            let _ = writeln!(md, "| {} | {} | {} |", t.name, t.measured, t.verdict);
        }
        md.push('\n');
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub measured: String,
    /// `PASS`, `MISS`, `MISS (errors)` or `NOT RUN`.
    pub verdict: &'static str,
}

impl Target {
    /// `value`: the measured figure and whether the runs behind it were error-free.
    fn new(name: &'static str, value: Option<(f64, bool)>, bound: Bound, unit: &str) -> Self {
        let Some((v, clean)) = value else {
            return Target {
                name,
                measured: "–".into(),
                verdict: "NOT RUN",
            };
        };
        if !v.is_finite() {
            // A ratio against a run that answered nothing.
            return Target {
                name,
                measured: "–".into(),
                verdict: "MISS (errors)",
            };
        }
        let measured = if unit == "×" {
            format!("{v:.2}×")
        } else {
            format!("{v:.0}{unit}")
        };
        let met = match bound {
            Bound::AtMost(limit) => v <= limit,
            Bound::AtLeast(limit) => v >= limit,
        };
        let verdict = match (met, clean) {
            (_, false) => "MISS (errors)",
            (true, true) => "PASS",
            (false, true) => "MISS",
        };
        Target {
            name,
            measured,
            verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p50: f64, p99: f64, p999: f64, throughput: f64, errors: u64) -> Outcome {
        Outcome::Measured(Summary {
            p50_us: p50,
            p99_us: p99,
            p999_us: p999,
            throughput,
            ok: 100,
            errors,
            error_samples: vec![],
            send_late_p99_us: Some(12.0),
        })
    }

    fn cell(
        server: ServerKind,
        durability: Option<Durability>,
        load: LoadKind,
        outcome: Outcome,
    ) -> Cell {
        Cell {
            server,
            durability,
            load,
            outcome,
        }
    }

    #[test]
    fn fault_scenarios_report_ratios_against_their_own_baselines() {
        let counts = Tier2Counts {
            restarts: 5,
            scored: 594,
            errors: 24,
            timeouts: 0,
            dropped: 13_378,
        };
        let report = Report {
            sidecar_faults: vec![
                SidecarFaultRow {
                    sidecar: Sidecar::None,
                    outcome: s(200.0, 1000.0, 2000.0, 2000.0, 0),
                    tier2: Some(Tier2Counts::default()),
                },
                SidecarFaultRow {
                    sidecar: Sidecar::Crashing,
                    outcome: s(220.0, 3000.0, 2000.0, 2000.0, 0),
                    tier2: Some(counts),
                },
                SidecarFaultRow {
                    sidecar: Sidecar::Flooding,
                    outcome: Outcome::Skipped("did not start (see notes)".into()),
                    tier2: None,
                },
            ],
            paused_flood: Some(PausedFloodResult {
                idle: s(200.0, 1000.0, 2000.0, 2000.0, 0),
                parked: s(100.0, 1500.0, 2000.0, 2000.0, 0),
                memory: Some(Memory {
                    idle: 16 << 20,
                    parked: (16 << 20) + paused_flood::PARKED as u64 * 2048,
                    waiting: 100 << 20,
                    after_load: 101 << 20,
                }),
                waiters: 2000,
                parked_in: Some(std::time::Duration::from_secs(2)),
            }),
            ..Report::default()
        };
        let md = report.to_markdown();
        // No fast-path run: no durability tables and no targets.
        assert!(
            !md.contains("## crash-safe") && !md.contains("## Targets"),
            "{md}"
        );
        assert!(
            md.contains("| crashing (exits every 100 requests) | 220 | 3000 | 2000 | 2000 | 0 | 1.10× | 3.00× | 1.00× | 5 | 594 | 24 | 0 | 13378 |"),
            "{md}"
        );
        assert!(
            md.contains("| flooding (junk lines non-stop) | – | – | – | – | not run: did not start (see notes) |"),
            "{md}"
        );
        assert!(
            md.contains("parked / idle: p50 0.50×, p99 1.50×, p99.9 1.00×"),
            "{md}"
        );
        assert!(md.contains("| idle | 16.0 MiB | 200 |"), "{md}");
        assert!(md.contains("2048 bytes per paused action"), "{md}");
    }

    #[test]
    fn targets_compare_gatehouse_with_the_peer() {
        use Durability::*;
        use LoadKind::*;
        use ServerKind::*;
        let report = Report {
            cells: vec![
                cell(
                    Peer,
                    Some(CrashSafe),
                    Steady,
                    s(100.0, 1000.0, 2000.0, 2000.0, 0),
                ),
                cell(
                    Gatehouse,
                    Some(CrashSafe),
                    Steady,
                    s(80.0, 800.0, 900.0, 2000.0, 0),
                ),
                cell(Peer, Some(CrashSafe), Max, s(0.0, 0.0, 0.0, 10_000.0, 0)),
                cell(
                    Gatehouse,
                    Some(CrashSafe),
                    Max,
                    s(0.0, 0.0, 0.0, 14_000.0, 3),
                ),
            ],
            classifier: Some((
                s(50.0, 100.0, 200.0, 2000.0, 0),
                s(50.0, 120.0, 300.0, 2000.0, 0),
            )),
            ..Report::default()
        };
        let verdicts: Vec<(&str, String)> = report
            .targets()
            .into_iter()
            .map(|t| (t.verdict, t.measured))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("NOT RUN", "–".to_string()),
                ("NOT RUN", "–".to_string()),
                ("PASS", "0.80×".to_string()),
                ("NOT RUN", "–".to_string()),
                ("NOT RUN", "–".to_string()),
                ("PASS", "900 µs (limit 1000 µs)".to_string()),
                ("MISS (errors)", "1.40×".to_string()),
                ("NOT RUN", "–".to_string()),
                ("PASS", "1.20×".to_string()),
                ("NOT RUN", "–".to_string()),
                ("NOT RUN", "–".to_string()),
            ]
        );
        let md = report.to_markdown();
        assert!(
            md.contains("| gatehouse | 4 conn × 500/s | 80.0 | 800 | 900 | 2000 | 0 | 12.0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 4 conn × 500/s | 0.80× | 0.80× | 0.45× | 1.00× | – | – | – | – |"),
            "{md}"
        );
        assert!(md.contains("p99 with / without: 1.20×"), "{md}");
    }

    #[test]
    fn targets_hold_gatehouse_to_the_floor_and_the_floors_own_tail() {
        use Durability::*;
        use LoadKind::*;
        use ServerKind::*;
        let report = Report {
            cells: vec![
                cell(Floor, None, Agent, s(100.0, 200.0, 300.0, 20.0, 0)),
                cell(
                    Peer,
                    Some(CrashSafe),
                    Agent,
                    s(300.0, 500.0, 600.0, 20.0, 0),
                ),
                cell(
                    Gatehouse,
                    Some(CrashSafe),
                    Agent,
                    s(250.0, 400.0, 500.0, 20.0, 0),
                ),
                // The floor's own p99.9 is past 1 ms: the limit is 1.5× it.
                cell(Floor, None, Steady, s(40.0, 900.0, 2000.0, 2000.0, 0)),
                cell(
                    Gatehouse,
                    Some(CrashSafe),
                    Steady,
                    s(80.0, 800.0, 2900.0, 2000.0, 0),
                ),
                cell(
                    Peer,
                    Some(PowerSafe),
                    Agent,
                    s(1000.0, 2000.0, 3000.0, 20.0, 0),
                ),
                cell(
                    Gatehouse,
                    Some(PowerSafe),
                    Agent,
                    s(950.0, 2000.0, 3000.0, 20.0, 0),
                ),
                cell(
                    Gatehouse,
                    Some(PowerSafe),
                    Max,
                    s(0.0, 0.0, 0.0, 51_000.0, 0),
                ),
                // A peer that answered nothing: no ratio, and not a pass.
                cell(Peer, Some(PowerSafe), Steady, s(0.0, 0.0, 0.0, 0.0, 10_000)),
                cell(
                    Gatehouse,
                    Some(PowerSafe),
                    Steady,
                    s(500.0, 900.0, 990.0, 2000.0, 0),
                ),
            ],
            paused_flood: Some(PausedFloodResult {
                idle: s(200.0, 1000.0, 2000.0, 2000.0, 0),
                parked: s(260.0, 1500.0, 2000.0, 2000.0, 0),
                memory: Some(Memory {
                    idle: 31_000_000,
                    ..Memory::default()
                }),
                waiters: 2000,
                parked_in: None,
            }),
            ..Report::default()
        };
        let verdicts: Vec<(&str, String)> = report
            .targets()
            .into_iter()
            .map(|t| (t.verdict, t.measured))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("PASS", "0.83×".to_string()),
                ("MISS", "2.50×".to_string()),
                ("NOT RUN", "–".to_string()),
                ("MISS", "0.95×".to_string()),
                ("MISS (errors)", "–".to_string()),
                ("PASS", "2900 µs (limit 3000 µs)".to_string()),
                ("NOT RUN", "–".to_string()),
                ("PASS", "51000 checks/s".to_string()),
                ("NOT RUN", "–".to_string()),
                ("MISS", "31 MB".to_string()),
                ("MISS", "1.30×".to_string()),
            ]
        );
    }
}
