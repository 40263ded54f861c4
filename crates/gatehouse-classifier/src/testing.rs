//! Classifiers with known behaviour, for the daemon's tests and benchmark.
//!
//! Each one stands for a way a real model behaves or misbehaves: slow ([`Fixed`] with a delay),
//! failing ([`Failing`]), faulting after it answered ([`ErrorAfterReply`]), panicking
//! ([`Panicking`]), hogging a core ([`CpuBound`]), or holding its answer until a test releases it
//! ([`Gated`]). [`Counting`] wraps any of them to count calls and concurrent scores.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::{BlockingPool, Classifier, ClassifierError, Score, ScoreRequest};

/// A score for `model`, or `Failed` if `score` is not a valid score (a mistake in the test).
fn checked(score: f64, label: &str, model: &str) -> Result<Score, ClassifierError> {
    if !Score::in_range(score) {
        return Err(ClassifierError::Failed(format!(
            "test classifier configured with score {score}, not within [0, 1]"
        )));
    }
    Ok(Score {
        score,
        label: label.to_owned(),
        model: model.to_owned(),
        explanation: None,
    })
}

/// Answers `score` and `label` after `delay` (a Tokio sleep, so paused test clocks apply).
/// Model name `fixed`.
#[derive(Clone, Debug)]
pub struct Fixed {
    pub score: f64,
    pub label: String,
    pub delay: Duration,
}

impl Fixed {
    /// Answers at once.
    pub fn new(score: f64, label: impl Into<String>) -> Self {
        Self {
            score,
            label: label.into(),
            delay: Duration::ZERO,
        }
    }
}

impl Classifier for Fixed {
    fn model(&self) -> &str {
        "fixed"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            checked(self.score, &self.label, self.model())
        })
    }
}

/// Scores 0.1 at once and labels the score with the request's history facts, so tests can see
/// what the daemon's deployment memory computed: `no-history`, `-` when every fact is false, or
/// the true facts joined by `+` (`first_tool_in_session+new_host`). Model name `history-label`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryLabel;

impl HistoryLabel {
    /// The label for a request's facts.
    pub fn label(history: Option<&crate::HistoryFacts>) -> String {
        let Some(h) = history else {
            return "no-history".into();
        };
        let named = [
            ("first_tool_in_session", h.first_tool_in_session),
            ("new_host", h.new_host),
            ("known_host", h.known_host),
            ("new_recipient", h.new_recipient),
            ("known_recipient", h.known_recipient),
        ];
        let on: Vec<&str> = named.iter().filter(|f| f.1).map(|f| f.0).collect();
        if on.is_empty() {
            "-".into()
        } else {
            on.join("+")
        }
    }
}

impl Classifier for HistoryLabel {
    fn model(&self) -> &str {
        "history-label"
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let label = Self::label(request.history.as_ref());
        Box::pin(async move { checked(0.1, &label, self.model()) })
    }
}

/// Fails with [`ClassifierError::Failed`] after `delay`. Model name `failing`.
#[derive(Clone, Debug, Default)]
pub struct Failing {
    pub delay: Duration,
}

impl Classifier for Failing {
    fn model(&self) -> &str {
        "failing"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Err(ClassifierError::Failed(
                "the failing test classifier failed".into(),
            ))
        })
    }
}

/// Answers a valid score (0.5, `benign`), and leaves behind a task that panics once the answer
/// is out: the "throwing after return" classifier. The caller gets its score; the panic lands in a
/// detached task the runtime must survive. Model name `error-after-reply`.
#[derive(Debug)]
pub struct ErrorAfterReply {
    panics: watch::Sender<u64>,
}

impl ErrorAfterReply {
    pub fn new() -> Self {
        Self {
            panics: watch::Sender::new(0),
        }
    }

    /// Counts the panics so far; wait on it with `wait_for` to know the aftermath has happened.
    pub fn panics(&self) -> watch::Receiver<u64> {
        self.panics.subscribe()
    }
}

impl Default for ErrorAfterReply {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier for ErrorAfterReply {
    fn model(&self) -> &str {
        "error-after-reply"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let panics = self.panics.clone();
        Box::pin(async move {
            tokio::spawn(async move {
                // Let the caller take the answer first.
                tokio::task::yield_now().await;
                panics.send_modify(|n| *n += 1);
                panic!("error-after-reply test classifier: fault after the reply");
            });
            checked(0.5, "benign", "error-after-reply")
        })
    }
}

/// Panics inside its score future (not when `score` is called). Model name `panicking`.
#[derive(Clone, Debug, Default)]
pub struct Panicking;

impl Classifier for Panicking {
    fn model(&self) -> &str {
        "panicking"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move { panic!("panicking test classifier") })
    }
}

/// Burns a core for `spin` on `pool`, then answers 0.0, `benign`: a stand-in for in-process
/// inference. Model name `cpu-bound`.
#[derive(Clone, Debug)]
pub struct CpuBound {
    pub spin: Duration,
    pub pool: BlockingPool,
}

impl Classifier for CpuBound {
    fn model(&self) -> &str {
        "cpu-bound"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        let spin = self.spin;
        let job = self.pool.run(move || {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < spin {
                x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        });
        Box::pin(async move {
            job.await?;
            checked(0.0, "benign", "cpu-bound")
        })
    }
}

/// Holds every score until [`Gated::open`], then answers `score` and `label`. Lets a test prove
/// that something happens before the score lands, without sleeping. Model name `gated`.
#[derive(Debug)]
pub struct Gated {
    pub score: f64,
    pub label: String,
    open: watch::Sender<bool>,
    waiting: watch::Sender<usize>,
}

impl Gated {
    pub fn new(score: f64, label: impl Into<String>) -> Self {
        Self {
            score,
            label: label.into(),
            open: watch::Sender::new(false),
            waiting: watch::Sender::new(0),
        }
    }

    /// Releases every held score, and lets later ones through at once.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Counts scores being held; `wait_for(|n| *n == 1)` on it waits until a score has arrived.
    pub fn waiting(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }
}

impl Classifier for Gated {
    fn model(&self) -> &str {
        "gated"
    }

    fn score(&self, _request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            let mut open = self.open.subscribe();
            self.waiting.send_modify(|n| *n += 1);
            let _held = OnDrop(|| self.waiting.send_modify(|n| *n -= 1));
            // The sender lives in `self`, so `wait_for` cannot fail while we are borrowed.
            let _ = open.wait_for(|open| *open).await;
            checked(self.score, &self.label, self.model())
        })
    }
}

/// Wraps a classifier and counts its calls: all of them, those in flight now, and the most in
/// flight at once. Share it as `Arc<Counting<C>>` to read the counts while the daemon holds it.
#[derive(Debug, Default)]
pub struct Counting<C> {
    inner: C,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl<C> Counting<C> {
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Scores started.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Scores started and not yet finished or dropped.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most scores in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl<C: Classifier> Classifier for Counting<C> {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let _done = OnDrop(|| {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
            self.inner.score(request).await
        })
    }
}

/// Runs a closure when dropped: on completion, on cancellation and on unwinding alike.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;
    use serde_json::json;
    use tokio::time::timeout;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    fn request() -> ScoreRequest {
        ScoreRequest::new(
            "a1",
            "Bash",
            json!({"command": "ls"}),
            Duration::from_secs(5),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_answers_after_its_delay() {
        let fixed = Fixed {
            score: 0.75,
            label: "suspicious".into(),
            delay: Duration::from_secs(3),
        };
        let start = tokio::time::Instant::now();
        let score = timeout(LIMIT, fixed.score(request()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(
            score,
            Score {
                score: 0.75,
                label: "suspicious".into(),
                model: "fixed".into(),
                explanation: None,
            }
        );
        assert_eq!(fixed.model(), "fixed");
    }

    #[tokio::test]
    async fn fixed_refuses_an_invalid_score() {
        for bad in [1.5, f64::NAN] {
            let result = timeout(LIMIT, Fixed::new(bad, "x").score(request()))
                .await
                .unwrap();
            assert!(matches!(result, Err(ClassifierError::Failed(_))), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failing_fails_after_its_delay() {
        let start = tokio::time::Instant::now();
        let failing = Failing {
            delay: Duration::from_millis(250),
        };
        let result = timeout(LIMIT, failing.score(request())).await.unwrap();
        assert!(matches!(result, Err(ClassifierError::Failed(_))));
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test]
    async fn error_after_reply_answers_then_a_task_panics_and_the_runtime_survives() {
        let classifier = ErrorAfterReply::new();
        let mut panics = classifier.panics();
        let score = timeout(LIMIT, classifier.score(request()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(score.score, 0.5);
        assert_eq!(score.model, "error-after-reply");
        timeout(LIMIT, panics.wait_for(|n| *n == 1))
            .await
            .unwrap()
            .unwrap();
        // The runtime is still serving: a second call works too.
        assert!(
            timeout(LIMIT, classifier.score(request()))
                .await
                .unwrap()
                .is_ok()
        );
        timeout(LIMIT, panics.wait_for(|n| *n == 2))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn panicking_panics_inside_the_future_not_at_the_call() {
        let classifier = Panicking;
        let future =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| classifier.score(request())))
                .expect("calling score must not panic");
        let outcome = timeout(LIMIT, std::panic::AssertUnwindSafe(future).catch_unwind())
            .await
            .unwrap();
        assert!(outcome.is_err(), "the future should panic");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cpu_bound_spins_on_its_pool() {
        let pool = BlockingPool::new(1);
        let classifier = CpuBound {
            spin: Duration::from_millis(50),
            pool: pool.clone(),
        };
        let start = Instant::now();
        let (a, b) = timeout(
            LIMIT,
            futures::future::join(classifier.score(request()), classifier.score(request())),
        )
        .await
        .unwrap();
        assert_eq!(a.unwrap().model, "cpu-bound");
        assert_eq!(b.unwrap().label, "benign");
        // A pool of one runs the two spins one after the other.
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(pool.available(), 1);
    }

    #[tokio::test]
    async fn gated_holds_scores_until_opened() {
        let gated = Arc::new(Gated::new(0.9, "malicious"));
        let mut waiting = gated.waiting();
        let held = tokio::spawn({
            let gated = Arc::clone(&gated);
            async move { gated.score(request()).await }
        });
        timeout(LIMIT, waiting.wait_for(|n| *n == 1))
            .await
            .unwrap()
            .unwrap();
        assert!(!held.is_finished());
        gated.open();
        let score = timeout(LIMIT, held).await.unwrap().unwrap().unwrap();
        assert_eq!((score.score, score.label.as_str()), (0.9, "malicious"));
        assert_eq!(*gated.waiting().borrow(), 0);
        // Once open, scores go straight through.
        assert!(
            timeout(LIMIT, gated.score(request()))
                .await
                .unwrap()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn counting_counts_calls_in_flight_and_peak_including_cancelled_ones() {
        let counting = Arc::new(Counting::new(Gated::new(0.1, "benign")));
        let mut waiting = counting.inner().waiting();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let counting = Arc::clone(&counting);
                tokio::spawn(async move { counting.score(request()).await })
            })
            .collect();
        timeout(LIMIT, waiting.wait_for(|n| *n == 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counting.in_flight(), 3);

        // A cancelled score leaves the in-flight count too.
        tasks[0].abort();
        timeout(LIMIT, waiting.wait_for(|n| *n == 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counting.in_flight(), 2);

        counting.inner().open();
        for task in tasks.into_iter().skip(1) {
            assert!(timeout(LIMIT, task).await.unwrap().unwrap().is_ok());
        }
        assert_eq!(counting.calls(), 3);
        assert_eq!(counting.in_flight(), 0);
        assert_eq!(counting.peak_in_flight(), 3);
        assert_eq!(counting.model(), "gated");
    }
}
