//! A bounded pool for CPU-bound inference, so a heavy model never runs on the async workers.
//!
//! Tokio's blocking threads are many (512 by default) and unbounded work there still starves the
//! machine; the pool's semaphore caps how many jobs run at once and makes the rest wait their turn.
//!
//! *Invariant*: a job holds its permit until the job itself returns, not until its caller stops
//! waiting. A caller that times out and drops the future does not free a slot while the job is
//! still burning a core, so the cap counts running work, not interested callers.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::ClassifierError;

/// Runs closures on Tokio's blocking threads, at most `size` at a time. Cheap to clone; clones share
/// the same slots.
#[derive(Clone, Debug)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
    size: usize,
}

impl BlockingPool {
    /// A pool running at most `size` jobs at once (a `size` of 0 is taken as 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many jobs may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many more jobs could start right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `f` on a blocking thread once a slot is free. A panic in `f` becomes
    /// [`ClassifierError::Failed`] with the message `classifier panicked`.
    ///
    /// Nothing happens until the returned future is polled; dropping it while it waits for a slot
    /// gives up the job, dropping it after the job started lets the job finish in the background.
    pub fn run<F, T>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, ClassifierError>> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permits = Arc::clone(&self.permits);
        async move {
            let permit = permits
                .acquire_owned()
                .await
                .map_err(|_| ClassifierError::Unavailable("blocking pool is closed".into()))?;
            let job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                f()
            });
            job.await.map_err(|error| {
                if error.is_panic() {
                    ClassifierError::Failed("classifier panicked".into())
                } else {
                    ClassifierError::Failed("classifier job was cancelled".into())
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};
    use tokio::time::timeout;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A job that reports when it starts, then blocks its thread until released.
    fn gated_job(
        started: mpsc::UnboundedSender<usize>,
        n: usize,
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    ) -> (impl FnOnce() -> usize + Send + 'static, oneshot::Sender<()>) {
        let (release, released) = oneshot::channel::<()>();
        let job = move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let _ = started.send(n);
            let _ = released.blocking_recv();
            running.fetch_sub(1, Ordering::SeqCst);
            n
        };
        (job, release)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_of_two_makes_the_third_job_wait() {
        let pool = BlockingPool::new(2);
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));

        let mut releases = Vec::new();
        let mut results = Vec::new();
        for n in 0..3 {
            let (job, release) = gated_job(started_tx.clone(), n, running.clone(), peak.clone());
            releases.push(Some(release));
            results.push(tokio::spawn(pool.run(job)));
        }

        let mut first_two = [
            timeout(LIMIT, started.recv()).await.unwrap().unwrap(),
            timeout(LIMIT, started.recv()).await.unwrap().unwrap(),
        ];
        assert_eq!(pool.available(), 0);
        // The third job must not start while two hold the pool. Only a time window can show a
        // thing did not happen; an unbounded pool starts it within microseconds.
        assert!(
            timeout(Duration::from_millis(200), started.recv())
                .await
                .is_err(),
            "a third job started while two held a pool of two"
        );

        // Free one slot: the waiting job starts.
        first_two.sort_unstable();
        let freed = first_two[0];
        releases[freed].take().unwrap().send(()).unwrap();
        let third = timeout(LIMIT, started.recv()).await.unwrap().unwrap();
        assert!(!first_two.contains(&third));

        for release in releases.iter_mut().filter_map(Option::take) {
            release.send(()).unwrap();
        }
        for (n, result) in results.into_iter().enumerate() {
            assert_eq!(timeout(LIMIT, result).await.unwrap().unwrap(), Ok(n));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.available(), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let pool = BlockingPool::new(1);
        let result: Result<(), _> = timeout(LIMIT, pool.run(|| panic!("model blew up")))
            .await
            .unwrap();
        assert_eq!(
            result,
            Err(ClassifierError::Failed("classifier panicked".into()))
        );
        assert_eq!(pool.available(), 1);
        assert_eq!(timeout(LIMIT, pool.run(|| 42)).await.unwrap(), Ok(42));
    }

    #[tokio::test]
    async fn a_job_keeps_its_slot_after_its_caller_gives_up() {
        let pool = BlockingPool::new(1);
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let (job, release) = gated_job(
            started_tx,
            0,
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let caller = tokio::spawn(pool.run(job));
        timeout(LIMIT, started.recv()).await.unwrap().unwrap();
        caller.abort();
        assert!(
            timeout(LIMIT, caller)
                .await
                .unwrap()
                .unwrap_err()
                .is_cancelled()
        );
        assert_eq!(
            pool.available(),
            0,
            "the running job must still hold its slot"
        );

        release.send(()).unwrap();
        assert_eq!(timeout(LIMIT, pool.run(|| 7)).await.unwrap(), Ok(7));
    }

    #[test]
    fn a_pool_of_zero_is_a_pool_of_one() {
        assert_eq!(BlockingPool::new(0).size(), 1);
    }
}
