//! The agent's calls: ask once, poll once, and [`Client::check`], which waits through a pause.
//!
//! *Invariant*: [`Client::check`] fails closed. It returns `Ok` only with an `allow` or `reject`
//! verdict from the daemon; a daemon that is down, slow past the deadline, answers non-2xx or
//! answers nonsense, and an action still `pending` at the deadline, are all `Err`.
//!
//! *Retries*: a `POST /v1/check` reaches the daemon at most once unless the request carries both
//! `session_id` and `tool_use_id` (the daemon re-attaches a re-sent check to the existing action);
//! only then is a connection lost mid-request retried. Polls are reads, and are retried after
//! connection failures. Both retry a few times with a short backoff, within the deadline.

use std::time::Duration;

use gatehouse_protocol::{CheckRequest, CheckResponse, DEFAULT_WAIT_MS, MAX_WAIT_MS, Verdict};
use reqwest::Method;
use tokio::time::Instant;

use crate::client::{Auth, Client};
use crate::error::{ClientError, Failure};

/// Longest margin an attempt's time limit keeps beyond the long-poll wait it asked for.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(5);
/// Polls that come back `pending` sooner than this are spaced out to it, so a daemon that ignores
/// `wait_ms` (or a `poll_wait` of zero) cannot turn the wait into a busy loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Retries after connection failures, per run of failures (a good answer resets the count).
const MAX_RETRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long [`Client::check`] waits, in all and per HTTP attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// From the first byte sent to the verdict; past it the check is [`ClientError::Timeout`].
    /// Default 10 minutes.
    pub total_deadline: Duration,
    /// Hard limit of one HTTP attempt. The long-poll wait asked of the daemon is shortened so the
    /// attempt keeps a margin (5 s, or half this limit if that is less). Default 65 s.
    pub request_timeout: Duration,
    /// How long one request asks the daemon to hold a paused action before answering `pending`
    /// (sent as `wait_ms`, at most [`MAX_WAIT_MS`]). Default 25 s.
    pub poll_wait: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            total_deadline: Duration::from_secs(10 * 60),
            request_timeout: Duration::from_secs(65),
            poll_wait: Duration::from_millis(DEFAULT_WAIT_MS),
        }
    }
}

impl CheckOptions {
    /// The wait to ask for (never more than `wanted`, the time left, [`MAX_WAIT_MS`], or what
    /// fits in `request_timeout` with its margin) and the time limit of that attempt.
    fn plan(&self, wanted: Duration, left: Duration) -> (Duration, Duration) {
        let margin = LONG_POLL_MARGIN.min(self.request_timeout / 2);
        let wait = wanted
            .min(left)
            .min(Duration::from_millis(MAX_WAIT_MS))
            .min(self.request_timeout.saturating_sub(margin));
        let limit = (wait + margin).min(self.request_timeout).min(left);
        (wait, limit)
    }
}

impl Client {
    /// Asks whether `request` may run and waits through a pause for a person's decision.
    ///
    /// Returns only `allow` or `reject` verdicts; everything else is an `Err` (see the module
    /// docs). The request's own `wait_ms` (or `opts.poll_wait` if it has none) is bounded by the
    /// time left; while the action is `pending`, `GET /v1/actions/{id}?wait_ms=N` is polled with
    /// `N = min(poll_wait, time left)`.
    pub async fn check(
        &self,
        request: &CheckRequest,
        opts: &CheckOptions,
    ) -> Result<CheckResponse, ClientError> {
        let deadline = deadline_after(opts.total_deadline);
        let mut response = self.post_check(request, opts, deadline).await?;
        if response.verdict != Verdict::Pending {
            return Ok(response);
        }
        let action_id = response.action_id.clone();
        if action_id.is_empty() {
            return Err(ClientError::BadResponse(
                "pending verdict without an action_id".into(),
            ));
        }
        let mut retries = Backoff::default();
        loop {
            let left = time_left(deadline)?;
            let (wait, limit) = opts.plan(opts.poll_wait, left);
            let started = Instant::now();
            match self.poll_attempt(&action_id, wait, limit).await {
                Ok(polled) => {
                    if polled.action_id != action_id {
                        return Err(ClientError::BadResponse(format!(
                            "polled action {action_id:?}, got an answer for {:?}",
                            polled.action_id
                        )));
                    }
                    retries = Backoff::default();
                    response = polled;
                    if response.verdict != Verdict::Pending {
                        return Ok(response);
                    }
                    let next = (started + MIN_POLL_INTERVAL).min(deadline);
                    tokio::time::sleep_until(next).await;
                }
                Err(Failure::NotSent(msg) | Failure::Interrupted(msg)) => {
                    retries.wait(deadline, msg).await?;
                }
                Err(Failure::Final(err)) => return Err(err),
            }
        }
    }

    /// One `POST /v1/check`, sent as given; the answer may be `pending`. Never retried. The
    /// attempt's time limit covers the request's `wait_ms` (or the daemon's default) plus 5 s.
    pub async fn check_once(&self, request: &CheckRequest) -> Result<CheckResponse, ClientError> {
        let wait = request.wait_ms.unwrap_or(DEFAULT_WAIT_MS).min(MAX_WAIT_MS);
        let limit = Duration::from_millis(wait) + LONG_POLL_MARGIN;
        let url = self.url(&["v1", "check"])?;
        self.attempt(Method::POST, url, Auth::Bearer, Some(request), limit)
            .await
            .map_err(ClientError::from)
    }

    /// One `GET /v1/actions/{id}?wait_ms=N` (agent token): the daemon holds it up to `wait`
    /// (at most [`MAX_WAIT_MS`]) for a decision. The answer may still be `pending`. Never retried.
    pub async fn poll_action(
        &self,
        action_id: &str,
        wait: Duration,
    ) -> Result<CheckResponse, ClientError> {
        let wait = wait.min(Duration::from_millis(MAX_WAIT_MS));
        self.poll_attempt(action_id, wait, wait + LONG_POLL_MARGIN)
            .await
            .map_err(ClientError::from)
    }

    async fn poll_attempt(
        &self,
        action_id: &str,
        wait: Duration,
        limit: Duration,
    ) -> Result<CheckResponse, Failure> {
        let mut url = self.action_url(action_id, &[])?;
        url.query_pairs_mut()
            .append_pair("wait_ms", &millis(wait).to_string());
        self.attempt(Method::GET, url, Auth::Bearer, None::<&()>, limit)
            .await
    }

    /// The first `POST /v1/check`, re-sent after a lost connection only when the daemon can
    /// re-attach it to the same action.
    async fn post_check(
        &self,
        request: &CheckRequest,
        opts: &CheckOptions,
        deadline: Instant,
    ) -> Result<CheckResponse, ClientError> {
        let url = self.url(&["v1", "check"])?;
        let reattachable = request.session_id.as_deref().is_some_and(|s| !s.is_empty())
            && request
                .tool_use_id
                .as_deref()
                .is_some_and(|s| !s.is_empty());
        let wanted = request
            .wait_ms
            .map_or(opts.poll_wait, Duration::from_millis);
        let mut body = request.clone();
        let mut retries = Backoff::default();
        // Whether an earlier attempt reached the daemon: then "connection refused" means it is
        // restarting, and the re-attaching re-send is worth a few more tries.
        let mut reached = false;
        loop {
            let left = time_left(deadline)?;
            let (wait, limit) = opts.plan(wanted, left);
            body.wait_ms = Some(millis(wait));
            match self
                .attempt(Method::POST, url.clone(), Auth::Bearer, Some(&body), limit)
                .await
            {
                Ok(response) => return Ok(response),
                Err(Failure::Interrupted(msg)) if reattachable => {
                    reached = true;
                    retries.wait(deadline, msg).await?;
                }
                Err(Failure::NotSent(msg)) if reattachable && reached => {
                    retries.wait(deadline, msg).await?;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }
}

/// Exponential backoff between retries after connection failures.
#[derive(Debug, Default)]
struct Backoff {
    retries: u32,
}

impl Backoff {
    /// Sleeps before the next retry, or gives up with `Unreachable(msg)` when the retries are used
    /// up or the pause would cross the deadline.
    async fn wait(&mut self, deadline: Instant, msg: String) -> Result<(), ClientError> {
        let delay = FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(self.retries))
            .min(MAX_BACKOFF);
        if self.retries >= MAX_RETRIES || Instant::now() + delay >= deadline {
            return Err(ClientError::Unreachable(msg));
        }
        self.retries += 1;
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

fn deadline_after(total: Duration) -> Instant {
    let now = Instant::now();
    // A deadline too far to represent is no deadline; a year stands in for it.
    now.checked_add(total)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

fn time_left(deadline: Instant) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ClientError::Timeout)
    } else {
        Ok(left)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn plan_bounds_the_wait_and_keeps_a_margin() {
        let opts = CheckOptions::default();
        // Plenty of time: the poll wait, plus the full margin.
        assert_eq!(opts.plan(25 * SEC, 600 * SEC), (25 * SEC, 30 * SEC));
        // Asked for more than the protocol allows: capped at MAX_WAIT_MS, still within 65 s.
        assert_eq!(opts.plan(120 * SEC, 600 * SEC), (60 * SEC, 65 * SEC));
        // Near the deadline: wait and limit both end at it.
        let left = Duration::from_millis(300);
        assert_eq!(opts.plan(25 * SEC, left), (left, left));
        // A short request_timeout shrinks the wait to fit with half of it as margin.
        let short = CheckOptions {
            request_timeout: 2 * SEC,
            ..opts
        };
        assert_eq!(short.plan(25 * SEC, 600 * SEC), (SEC, 2 * SEC));
    }

    #[test]
    fn an_unrepresentable_deadline_is_far_away() {
        let deadline = deadline_after(Duration::MAX);
        assert!(deadline > Instant::now() + 300 * 24 * 3600 * SEC);
    }
}
