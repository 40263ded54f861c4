//! Is the machine quiet? The 1-minute load average and how busy the CPUs were over a short
//! sample, read from `/proc` before measuring (other work on a 2-core box skews every figure).

use std::time::Duration;

use anyhow::{Context, Result};

/// What the sample saw.
#[derive(Debug, Clone, Copy)]
pub struct Quietness {
    pub load1: f64,
    /// Percent of all CPU time that was not idle during the sample.
    pub busy_pct: f64,
    pub cores: usize,
}

impl Quietness {
    /// Quiet: under 10 % busy, and the load average under half the cores.
    pub fn is_quiet(&self) -> bool {
        self.busy_pct < 10.0 && self.load1 < self.cores as f64 / 2.0
    }

    pub fn describe(&self) -> String {
        format!(
            "machine quiet: {} (load {:.2}, busy {:.1}%, {} cores)",
            if self.is_quiet() { "yes" } else { "no" },
            self.load1,
            self.busy_pct,
            self.cores
        )
    }
}

/// Samples `/proc/stat` over `over` and reads `/proc/loadavg`.
pub fn sample(over: Duration) -> Result<Quietness> {
    let before = read_cpu()?;
    std::thread::sleep(over);
    let after = read_cpu()?;
    let loadavg = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    let load1 = loadavg
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .context("parsing /proc/loadavg")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(Quietness {
        load1,
        busy_pct: busy_pct(before, after),
        cores,
    })
}

fn read_cpu() -> Result<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    stat.lines()
        .next()
        .and_then(parse_cpu_line)
        .context("parsing /proc/stat")
}

/// Cumulative jiffies from the aggregate `cpu` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    idle: u64,
    total: u64,
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is already
/// counted in user, so only the first eight fields add up to the total.
fn parse_cpu_line(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 5 {
        return None;
    }
    Some(CpuTimes {
        idle: values[3] + values[4],
        total: values.iter().sum(),
    })
}

fn busy_pct(before: CpuTimes, after: CpuTimes) -> f64 {
    let total = after.total.saturating_sub(before.total);
    let idle = after.idle.saturating_sub(before.idle);
    if total == 0 {
        0.0
    } else {
        100.0 * (total - idle.min(total)) as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_counts_idle_and_iowait_as_idle() {
        let t = parse_cpu_line("cpu  100 5 50 800 40 3 2 0 7 0").unwrap();
        assert_eq!(
            t,
            CpuTimes {
                idle: 840,
                total: 1000
            }
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_cpu_line("cpu  1 2 x 4 5"), None);
    }

    #[test]
    fn busy_share_is_the_non_idle_delta() {
        let before = CpuTimes {
            idle: 800,
            total: 1000,
        };
        let after = CpuTimes {
            idle: 880,
            total: 1200,
        };
        assert!((busy_pct(before, after) - 60.0).abs() < 1e-9);
        assert_eq!(busy_pct(before, before), 0.0);
        let q = Quietness {
            load1: 0.2,
            busy_pct: 3.0,
            cores: 2,
        };
        assert!(q.is_quiet());
        assert!(
            q.describe()
                .starts_with("machine quiet: yes (load 0.20, busy 3.0%")
        );
        assert!(!Quietness { load1: 1.5, ..q }.is_quiet());
    }
}
