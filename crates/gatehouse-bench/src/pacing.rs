//! Open-loop pacing: when each request of a fixed-rate connection is *meant* to be sent, and a
//! precise wait until then.
//!
//! Latency in an open-loop run is measured from the intended send time, not from when the request
//! actually left: if the server stalls, the requests queued behind the stall are charged the time
//! they waited to be sent (the coordinated-omission correction). The schedule is computed from the
//! start instant and the request index (never by adding intervals), so it does not drift.

use std::time::{Duration, Instant};

/// The intended send times of one connection: `start + (i + phase) / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
    phase: f64,
}

impl Schedule {
    /// `rate` requests per second; `phase` in `[0, 1)` shifts this connection by that fraction of
    /// an interval so that `n` connections with phases `k/n` interleave evenly.
    pub fn new(start: Instant, rate: f64, phase: f64) -> Self {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        assert!((0.0..1.0).contains(&phase), "phase must be in [0, 1)");
        Schedule {
            start,
            interval_ns: 1e9 / rate,
            phase,
        }
    }

    /// Time between two sends.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns.round() as u64)
    }

    /// The phase of connection `k` of `n`.
    pub fn phase_of(k: usize, n: usize) -> f64 {
        if n == 0 {
            0.0
        } else {
            (k % n) as f64 / n as f64
        }
    }

    /// When request `i` is meant to be sent.
    pub fn intended(&self, i: u64) -> Instant {
        let offset_ns = ((i as f64 + self.phase) * self.interval_ns).round();
        self.start + Duration::from_nanos(offset_ns as u64)
    }

    /// How many requests this schedule intends to send in `[from, to)`.
    #[cfg(test)]
    pub fn count_between(&self, from: Instant, to: Instant) -> u64 {
        self.first_at_or_after(to) - self.first_at_or_after(from)
    }

    /// The index of the first request intended at or after `t`.
    pub fn first_at_or_after(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.start).as_nanos() as f64;
        let mut i = (since / self.interval_ns - self.phase).ceil().max(0.0) as u64;
        // Float rounding may land one off either way; settle it against `intended` itself.
        while i > 0 && self.intended(i - 1) >= t {
            i -= 1;
        }
        while self.intended(i) < t {
            i += 1;
        }
        i
    }
}

/// The latency charged to a request: from when it was meant to be sent until its response was read.
pub fn corrected_latency(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

/// Waits for intended send times precisely: sleeps until a margin before the deadline, then
/// spins. The margin adapts to how late this thread's sleeps actually wake (timer slack plus
/// wake-up latency: 100–200 µs on a small VM, where a fixed 100 µs margin sends late), and the
/// spin yields the CPU while more than a few microseconds remain, so a client sharing two cores
/// with the server under test takes as little from it as precise pacing allows.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    /// Estimate of how far past its target a sleep wakes up.
    overshoot: Duration,
    /// The margin's ceiling: a quarter of the interval between sends, so that on a loaded
    /// machine (where sleeps wake milliseconds late) the client still sleeps most of the time
    /// instead of spinning away the CPU the server under test needs.
    max_margin: Duration,
}

/// Bounds of the sleep margin.
const MIN_MARGIN: Duration = Duration::from_micros(50);
const MAX_MARGIN: Duration = Duration::from_millis(2);
/// Safety added to the overshoot estimate.
const MARGIN_SLACK: Duration = Duration::from_micros(30);

impl Pacer {
    /// A pacer for sends `interval` apart (`None`: a single wait).
    pub fn new(interval: Option<Duration>) -> Self {
        let max_margin = interval.map_or(MAX_MARGIN, |i| (i / 4).clamp(MIN_MARGIN, MAX_MARGIN));
        Pacer {
            overshoot: Duration::from_micros(150),
            max_margin,
        }
    }

    /// A pacer for the calling thread; lowers the thread's timer slack where the kernel allows.
    pub fn for_this_thread(interval: Option<Duration>) -> Self {
        lower_timer_slack();
        Pacer::new(interval)
    }

    /// How long before a deadline the sleep ends and the spin begins.
    pub fn margin(&self) -> Duration {
        (self.overshoot + MARGIN_SLACK).clamp(MIN_MARGIN, self.max_margin)
    }

    /// Folds one observed overshoot into the estimate: up at once, down slowly (1/64 per sample),
    /// so the margin covers the tail of wake-ups, not their average.
    pub fn observe(&mut self, overshoot: Duration) {
        if overshoot >= self.overshoot {
            self.overshoot = overshoot.min(MAX_MARGIN);
        } else {
            self.overshoot -= (self.overshoot - overshoot) / 64;
        }
    }

    /// Waits until `deadline`. Returns how late the wait ended (zero if `deadline` had passed
    /// already, which is the caller's backlog, not pacing error).
    pub fn wait_until(&mut self, deadline: Instant) -> Duration {
        let now = Instant::now();
        if deadline <= now {
            return Duration::ZERO;
        }
        let margin = self.margin();
        if deadline - now > margin {
            let wake_at = deadline - margin;
            std::thread::sleep(wake_at - now);
            self.observe(Instant::now().saturating_duration_since(wake_at));
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                return now - deadline;
            }
            if deadline - now > Duration::from_micros(10) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Asks Linux for 1 ns of timer slack on this thread (default 50 µs), best effort: a thread can
/// set its own through `/proc/<tid>/timerslack_ns`.
fn lower_timer_slack() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    let Some(tid) = link.file_name() else { return };
    let path = std::path::Path::new("/proc")
        .join(tid)
        .join("timerslack_ns");
    let _ = std::fs::write(path, "1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_follow_rate_and_phase_without_drift() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 500.0, 0.0);
        assert_eq!(s.intended(0), t0);
        assert_eq!(s.interval(), Duration::from_millis(2));
        assert_eq!(s.intended(1) - t0, Duration::from_millis(2));
        assert_eq!(s.intended(500) - t0, Duration::from_secs(1));
        // A rate whose interval is not a whole number of nanoseconds still lands exactly.
        let third = Schedule::new(t0, 3.0, 0.0);
        assert_eq!(
            third.intended(3_000_000) - t0,
            Duration::from_secs(1_000_000)
        );
        let shifted = Schedule::new(t0, 500.0, 0.5);
        assert_eq!(shifted.intended(0) - t0, Duration::from_millis(1));
    }

    #[test]
    fn connections_interleave_evenly() {
        let t0 = Instant::now();
        // 4 connections at 500/s each: together one request every 500 µs.
        let mut times: Vec<Duration> = (0..4)
            .flat_map(|k| {
                let s = Schedule::new(t0, 500.0, Schedule::phase_of(k, 4));
                (0..3).map(move |i| s.intended(i) - t0)
            })
            .collect();
        times.sort();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|&g| g == Duration::from_micros(500)),
            "{gaps:?}"
        );
        assert_eq!(Schedule::phase_of(0, 0), 0.0);
    }

    #[test]
    fn window_counts_match_the_rate() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 20.0, 0.0);
        let warm = t0 + Duration::from_secs(1);
        let end = warm + Duration::from_secs(5);
        assert_eq!(s.first_at_or_after(t0), 0);
        assert_eq!(s.first_at_or_after(warm), 20);
        assert_eq!(s.first_at_or_after(warm + Duration::from_nanos(1)), 21);
        assert_eq!(s.count_between(warm, end), 100);
        let fast = Schedule::new(t0, 2000.0 / 4.0, 0.25);
        assert_eq!(fast.count_between(warm, end), 2500);
    }

    #[test]
    fn latency_is_charged_from_the_intended_time() {
        let intended = Instant::now();
        // The server stalled: the request went out 40 ms late and took 1 ms.
        let done = intended + Duration::from_millis(41);
        assert_eq!(corrected_latency(intended, done), Duration::from_millis(41));
        // A response can't precede its intended time, but never underflow.
        assert_eq!(corrected_latency(done, intended), Duration::ZERO);
    }

    #[test]
    fn wait_until_never_returns_early() {
        let mut pacer = Pacer::for_this_thread(None);
        for micros in [0, 50, 300, 2_000, 10_000] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            let late = pacer.wait_until(deadline);
            let now = Instant::now();
            assert!(now >= deadline);
            assert!(late <= now - deadline);
        }
        assert_eq!(
            pacer.wait_until(Instant::now() - Duration::from_millis(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn margin_rises_at_once_and_falls_slowly() {
        let mut pacer = Pacer::new(None);
        assert_eq!(pacer.margin(), Duration::from_micros(180));
        pacer.observe(Duration::from_micros(400));
        assert_eq!(pacer.margin(), Duration::from_micros(430));
        pacer.observe(Duration::from_micros(80));
        assert_eq!(pacer.margin(), Duration::from_micros(425));
        for _ in 0..1000 {
            pacer.observe(Duration::ZERO);
        }
        assert_eq!(pacer.margin(), MIN_MARGIN);
        pacer.observe(Duration::from_secs(1));
        assert_eq!(pacer.margin(), MAX_MARGIN);
        // At 2 ms between sends the client spins at most a quarter of the time.
        let mut fast = Pacer::new(Some(Duration::from_millis(2)));
        fast.observe(Duration::from_secs(1));
        assert_eq!(fast.margin(), Duration::from_micros(500));
    }
}
