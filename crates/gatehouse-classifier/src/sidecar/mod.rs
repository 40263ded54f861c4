//! The sidecar classifier: the user's model in a child process, spoken to in JSON lines.
//!
//! The daemon writes one request line per action to the child's stdin and matches reply lines from
//! its stdout by `id`, so any number of requests can be in flight and replies may come in any
//! order. The protocol, with a worked example, is in `docs/SIDECAR.md`.
//!
//! Three kinds of task serve one child process (a *generation*): a writer draining a bounded
//! queue of request lines into stdin, a reader delivering reply lines to waiting requests, and a
//! logger forwarding stderr lines to `tracing`. A supervisor task watches the generation; when the
//! child exits or a pipe closes it fails everything still waiting with
//! [`ClassifierError::Unavailable`], and starts a new generation after a backoff (100 ms doubling
//! to 5 s, back to 100 ms after a generation that served for 5 s). Dropping the
//! [`SidecarClassifier`] stops the supervisor, which kills the child.
//!
//! *Invariant*: every request registered with a generation gets exactly one answer: its reply, an
//! error from a malformed reply, `Unavailable` when the generation ends, or nothing because the
//! caller stopped waiting (its registration is removed when its future is dropped).
//!
//! *Boundary*: the sidecar is untrusted input. Reply lines are capped at
//! [`MAX_REPLY_LINE_BYTES`], scores are checked, and lines that are not replies are ignored and
//! logged (the parse error only, as they may echo tool inputs; at most one log line per 10 s with
//! a count, so a sidecar cannot flood the daemon's log). A sidecar that writes more than
//! [`MAX_IGNORED_LINES`] of them within [`FLOOD_WINDOW`] is flooding: its generation ends and it
//! is restarted like a crashed one, so it cannot keep a core of the daemon busy reading junk.

mod lines;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{self, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::lines::{Line, LineReader};
use self::wire::WireReply;
use crate::{Classifier, ClassifierError, Score, ScoreRequest, millis};

/// Longest reply line read from a sidecar; the rest of a longer line is skipped and its request,
/// if its `id` can be read, fails with [`ClassifierError::Protocol`].
pub const MAX_REPLY_LINE_BYTES: usize = 1024 * 1024;
/// Wait before the first restart of a sidecar that stopped.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between restarts; a generation that served this long resets the backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Longest stderr line logged; the rest is skipped.
const MAX_STDERR_LINE_BYTES: usize = 8 * 1024;
/// Request lines queued for the writer before callers wait (until their deadline).
const WRITE_QUEUE: usize = 256;
/// After the child exits, how long its last replies may take to come out of the pipe; after a pipe
/// closes, how long the child may take to exit before it is killed.
const EXIT_DRAIN: Duration = Duration::from_secs(1);
/// How long to wait for a killed child to be reaped before leaving it to Tokio.
const REAP: Duration = Duration::from_secs(1);
/// Model name when neither the config nor the reply gives one.
const DEFAULT_MODEL: &str = "sidecar";

/// How to start a sidecar.
#[derive(Clone, Default)]
pub struct SidecarConfig {
    /// Program and arguments, e.g. `["python3", "tools/sidecar/reference_sidecar.py"]`.
    pub command: Vec<String>,
    /// Model name for the ledger when a reply does not name one; `sidecar` if unset.
    pub model_name: Option<String>,
    /// Extra environment variables for the child (it also inherits the daemon's environment).
    pub env: Vec<(String, String)>,
}

/// Shows environment variable names only: their values are often API keys.
impl fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SidecarConfig")
            .field("command", &self.command)
            .field("model_name", &self.model_name)
            .field("env", &env)
            .finish()
    }
}

/// A [`Classifier`] backed by a child process speaking the sidecar protocol.
pub struct SidecarClassifier {
    model: Arc<str>,
    next_id: AtomicU64,
    restarts: Arc<AtomicU64>,
    state: watch::Receiver<State>,
    /// Dropped with the classifier, which tells the supervisor to kill the child.
    _stop: oneshot::Sender<()>,
}

impl SidecarClassifier {
    /// Starts the sidecar and the task supervising it. Must be called within a Tokio runtime.
    ///
    /// Fails with [`ClassifierError::Unavailable`] if the command is empty or cannot be started;
    /// a sidecar that starts and then exits is restarted rather than reported here.
    pub fn spawn(config: SidecarConfig) -> Result<Self, ClassifierError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClassifierError::Unavailable("starting a sidecar needs a Tokio runtime".into())
        })?;
        let model: Arc<str> = config.model_name.as_deref().unwrap_or(DEFAULT_MODEL).into();
        let process = Process::spawn(&config, &model)?;
        let (state_tx, state) = watch::channel(State::Running(Arc::clone(&process.generation)));
        let (stop, stopped) = oneshot::channel();
        let restarts = Arc::new(AtomicU64::new(0));
        runtime.spawn(supervise(Supervisor {
            config,
            model: Arc::clone(&model),
            state: state_tx,
            restarts: Arc::clone(&restarts),
            stop: stopped,
            process,
        }));
        Ok(Self {
            model,
            next_id: AtomicU64::new(1),
            restarts,
            state,
            _stop: stop,
        })
    }

    /// How many times the sidecar has been started again after stopping.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Requests sent to the running sidecar and still waiting for a reply.
    pub fn in_flight(&self) -> usize {
        match &*self.state.borrow() {
            State::Running(generation) => generation.in_flight(),
            State::Restarting { .. } => 0,
        }
    }

    /// Sends `request` to the sidecar serving now and waits for its reply. The caller bounds this
    /// with the deadline.
    async fn exchange(
        &self,
        request: &ScoreRequest,
        deadline: Instant,
    ) -> Result<Score, ClassifierError> {
        let generation = self.serving(deadline).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = wire::encode_request(
            id,
            request,
            deadline.saturating_duration_since(Instant::now()),
        )?;
        let reply = generation.register(id)?;
        let _registration = Registration {
            generation: &generation,
            id,
        };
        generation
            .lines
            .send(line)
            .await
            .map_err(|_| ClassifierError::Unavailable("sidecar stdin is closed".into()))?;
        reply
            .await
            .map_err(|_| ClassifierError::Unavailable("sidecar stopped".into()))?
    }

    /// The generation serving now, waiting for a restart if it is due before `deadline`.
    async fn serving(&self, deadline: Instant) -> Result<Arc<Generation>, ClassifierError> {
        let mut state = self.state.clone();
        loop {
            let restart_at = match &*state.borrow_and_update() {
                State::Running(generation) => return Ok(Arc::clone(generation)),
                State::Restarting { at } => *at,
            };
            if restart_at > deadline {
                return Err(ClassifierError::Unavailable("sidecar is restarting".into()));
            }
            state.changed().await.map_err(|_| {
                ClassifierError::Unavailable("sidecar supervisor has stopped".into())
            })?;
        }
    }
}

impl Classifier for SidecarClassifier {
    fn model(&self) -> &str {
        &self.model
    }

    fn score(&self, request: ScoreRequest) -> BoxFuture<'_, Result<Score, ClassifierError>> {
        Box::pin(async move {
            let now = Instant::now();
            // A deadline too far away to represent is as good as none.
            let deadline = now
                .checked_add(request.deadline)
                .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
            tokio::time::timeout_at(deadline, self.exchange(&request, deadline))
                .await
                .unwrap_or(Err(ClassifierError::Timeout))
        })
    }

    fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// What requests see of the supervisor.
#[derive(Clone)]
enum State {
    Running(Arc<Generation>),
    /// The sidecar stopped; the next start is due `at`.
    Restarting {
        at: Instant,
    },
}

type Reply = Result<Score, ClassifierError>;

/// One run of the child process, as requests see it: where to send lines, who waits for replies.
struct Generation {
    lines: mpsc::Sender<Vec<u8>>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// Set when the generation ended: why. No request registers after that.
    closed: Option<String>,
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
}

impl Generation {
    fn new(lines: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            lines,
            pending: Mutex::default(),
        }
    }

    /// No code panics while holding the lock, so a poisoned lock still holds consistent data.
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, id: u64) -> Result<oneshot::Receiver<Reply>, ClassifierError> {
        let mut pending = self.pending();
        if let Some(reason) = &pending.closed {
            return Err(ClassifierError::Unavailable(reason.clone()));
        }
        let (tx, rx) = oneshot::channel();
        pending.waiting.insert(id, tx);
        Ok(rx)
    }

    /// Hands `reply` to request `id`; false if no request `id` is waiting.
    fn resolve(&self, id: u64, reply: Reply) -> bool {
        let waiter = self.pending().waiting.remove(&id);
        match waiter {
            Some(waiter) => {
                // The caller may have just given up; its answer then goes nowhere.
                let _ = waiter.send(reply);
                true
            }
            None => false,
        }
    }

    /// Fails every waiting request with `Unavailable(reason)` and refuses new ones.
    fn close(&self, reason: &str) {
        let waiting = {
            let mut pending = self.pending();
            pending.closed = Some(reason.to_owned());
            std::mem::take(&mut pending.waiting)
        };
        for waiter in waiting.into_values() {
            let _ = waiter.send(Err(ClassifierError::Unavailable(reason.to_owned())));
        }
    }

    fn in_flight(&self) -> usize {
        self.pending().waiting.len()
    }

    /// Handles one line from the sidecar's stdout; says what the line was if it was ignored.
    fn deliver(&self, line: Line<'_>, default_model: &str) -> Option<Ignored> {
        if line.truncated {
            let error = ClassifierError::Protocol(format!(
                "reply line is longer than {MAX_REPLY_LINE_BYTES} bytes"
            ));
            return match wire::find_id(line.bytes) {
                Some(id) if self.resolve(id, Err(error)) => None,
                _ => Some(Ignored::OverLong),
            };
        }
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
            return Some(Ignored::Blank);
        }
        match serde_json::from_slice::<WireReply>(line.bytes) {
            Ok(reply) => {
                let id = reply.id;
                if self.resolve(id, reply.into_result(default_model)) {
                    None
                } else {
                    Some(Ignored::Unasked)
                }
            }
            Err(error) => {
                let failure = ClassifierError::Protocol(format!("malformed reply: {error}"));
                match wire::find_id(line.bytes) {
                    Some(id) if self.resolve(id, Err(failure)) => None,
                    _ => Some(Ignored::NotAReply(error.to_string())),
                }
            }
        }
    }
}

/// A stdout line that answered no request.
#[derive(Debug)]
enum Ignored {
    /// Empty or whitespace only: allowed, never logged, but counted towards a flood.
    Blank,
    /// Longer than [`MAX_REPLY_LINE_BYTES`], with no readable `id` of a waiting request.
    OverLong,
    /// A well-formed reply for an id nobody waits for (late, after a timeout, or made up).
    Unasked,
    /// Not a reply: the parse error.
    NotAReply(String),
}

/// Logs ignored stdout lines without letting a sidecar flood the daemon's log: the first one is
/// logged, then at most one summary (with the count) per [`IGNORED_LOG_INTERVAL`].
#[derive(Debug, Default)]
struct IgnoredLog {
    /// Ignored since the last log line.
    unlogged: u64,
    last_logged: Option<Instant>,
}

/// Least time between two log lines about ignored sidecar output.
const IGNORED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Most stdout lines that are not replies a sidecar may write within [`FLOOD_WINDOW`]; past it the
/// sidecar is flooding (its reader would take a core from the daemon) and is stopped and
/// restarted, with the usual backoff.
pub const MAX_IGNORED_LINES: u32 = 1_000;
/// The window [`MAX_IGNORED_LINES`] is counted over.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(1);

/// Why a generation's reader stopped reading: the sidecar flooded its stdout.
#[derive(Debug)]
struct Flooded;

impl fmt::Display for Flooded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the sidecar flooded its stdout (more than {MAX_IGNORED_LINES} lines that are not \
             replies within {} ms); stopping it",
            FLOOD_WINDOW.as_millis()
        )
    }
}

impl std::error::Error for Flooded {}

/// Counts ignored lines per [`FLOOD_WINDOW`] to tell a flood from the odd stray line.
#[derive(Debug, Default)]
struct FloodGuard {
    window_start: Option<Instant>,
    in_window: u32,
}

impl FloodGuard {
    /// Counts one ignored line at `now`; true if this window has now seen too many.
    fn flooded(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) < FLOOD_WINDOW => self.in_window += 1,
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
            }
        }
        self.in_window > MAX_IGNORED_LINES
    }
}

impl IgnoredLog {
    /// Counts one ignored line; logs it (with the count since the last log line) if it is time.
    /// Returns the count logged, if it logged.
    fn note(&mut self, ignored: Ignored, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < IGNORED_LOG_INTERVAL)
        {
            return None;
        }
        let count = std::mem::take(&mut self.unlogged);
        self.last_logged = Some(now);
        match ignored {
            Ignored::Blank => {}
            // A late reply is normal after a timeout: not worth a warning.
            Ignored::Unasked => tracing::debug!(
                count,
                "ignoring replies no request waits for (late or unknown ids)"
            ),
            Ignored::OverLong => tracing::warn!(
                count,
                "ignoring over-long lines from the sidecar (this one and any since the last report)"
            ),
            // Only the parse error: the line may echo tool inputs.
            Ignored::NotAReply(error) => tracing::warn!(
                %error,
                count,
                "ignoring lines from the sidecar that are not replies (this one and any since the last report)"
            ),
        }
        Some(count)
    }
}

/// A request waiting on a generation; dropping it (reply received, or the caller gave up) removes
/// the request from the waiting map.
struct Registration<'a> {
    generation: &'a Generation,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.generation.pending().waiting.remove(&self.id);
    }
}

/// One running child process and the tasks serving it.
struct Process {
    child: Child,
    generation: Arc<Generation>,
    reader: JoinHandle<io::Result<()>>,
    writer: JoinHandle<io::Result<()>>,
    started: Instant,
}

impl Process {
    fn spawn(config: &SidecarConfig, model: &Arc<str>) -> Result<Self, ClassifierError> {
        let (program, args) = config
            .command
            .split_first()
            .ok_or_else(|| ClassifierError::Unavailable("the sidecar command is empty".into()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(config.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group: a Ctrl-C at the terminal reaches the daemon, which stops the
        // sidecar itself, rather than killing the sidecar under it mid-shutdown.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|error| {
            ClassifierError::Unavailable(format!("cannot start sidecar `{program}`: {error}"))
        })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ClassifierError::Unavailable(
                "sidecar started without its pipes".into(),
            ));
        };
        let (lines, queue) = mpsc::channel(WRITE_QUEUE);
        let generation = Arc::new(Generation::new(lines));
        let reader = tokio::spawn(read_replies(
            stdout,
            Arc::clone(&generation),
            Arc::clone(model),
        ));
        let writer = tokio::spawn(write_requests(stdin, queue));
        // Runs until the child's stderr closes, so a crashing sidecar's last words are logged.
        tokio::spawn(log_stderr(stderr, pid));
        tracing::info!(?pid, "sidecar started");
        Ok(Self {
            child,
            generation,
            reader,
            writer,
            started: Instant::now(),
        })
    }

    /// Waits until the sidecar can no longer serve, and says why.
    async fn stopped(&mut self) -> String {
        let pipe_closed = tokio::select! {
            status = self.child.wait() => {
                // Replies written just before the exit are still in the pipe: deliver them.
                let _ = tokio::time::timeout(EXIT_DRAIN, &mut self.reader).await;
                return exit_reason(status);
            }
            read = &mut self.reader => match read {
                // The daemon's own decision: stop it now, whatever it would do next.
                Ok(Err(error)) if error.get_ref().is_some_and(|e| e.is::<Flooded>()) => {
                    return error.to_string();
                }
                Ok(Ok(())) => "sidecar closed its stdout".to_owned(),
                Ok(Err(error)) => format!("cannot read from the sidecar: {error}"),
                Err(_) => "sidecar reader task stopped".to_owned(),
            },
            write = &mut self.writer => match write {
                Ok(Ok(())) => "sidecar request queue closed".to_owned(),
                Ok(Err(error)) => format!("cannot write to the sidecar: {error}"),
                Err(_) => "sidecar writer task stopped".to_owned(),
            },
        };
        // A pipe usually closes because the child is exiting; its exit status says more.
        match tokio::time::timeout(EXIT_DRAIN, self.child.wait()).await {
            Ok(status) => exit_reason(status),
            Err(_) => pipe_closed,
        }
    }

    /// Fails what still waits with `reason`, then kills and reaps the child.
    async fn finish(mut self, reason: &str) {
        self.generation.close(reason);
        self.reader.abort();
        self.writer.abort();
        // An error here means the child is already gone.
        let _ = self.child.start_kill();
        // If reaping takes longer, dropping the `Child` leaves it to Tokio's orphan reaper.
        let _ = tokio::time::timeout(REAP, self.child.wait()).await;
    }
}

fn exit_reason(status: io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => format!("sidecar exited ({status})"),
        Err(error) => format!("cannot wait for the sidecar: {error}"),
    }
}

async fn read_replies(
    stdout: ChildStdout,
    generation: Arc<Generation>,
    model: Arc<str>,
) -> io::Result<()> {
    let mut lines = LineReader::new(BufReader::new(stdout), MAX_REPLY_LINE_BYTES);
    let mut ignored = IgnoredLog::default();
    let mut flood = FloodGuard::default();
    while let Some(line) = lines.next_line().await? {
        if let Some(what) = generation.deliver(line, &model) {
            let now = Instant::now();
            if flood.flooded(now) {
                return Err(io::Error::other(Flooded));
            }
            ignored.note(what, now);
        }
    }
    Ok(())
}

async fn write_requests(
    mut stdin: ChildStdin,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(line) = queue.recv().await {
        stdin.write_all(&line).await?;
        stdin.flush().await?;
    }
    Ok(())
}

/// Forwards the sidecar's stderr to the log, line by line. What a sidecar prints there is logged
/// as is: it should not print tool inputs.
async fn log_stderr(stderr: ChildStderr, pid: Option<u32>) {
    let mut lines = LineReader::new(BufReader::new(stderr), MAX_STDERR_LINE_BYTES);
    loop {
        match lines.next_line().await {
            // Debug-formatted: a sidecar may echo an agent's text, and a raw `\r`, newline or
            // escape sequence must not forge or garble the daemon's own log lines.
            Ok(Some(line)) => tracing::info!(
                ?pid,
                truncated = line.truncated,
                "sidecar stderr: {:?}",
                String::from_utf8_lossy(line.bytes)
            ),
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(?pid, %error, "cannot read the sidecar's stderr");
                return;
            }
        }
    }
}

/// The delay before each restart: doubling from [`INITIAL_BACKOFF`] to [`MAX_BACKOFF`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: INITIAL_BACKOFF,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(MAX_BACKOFF);
        delay
    }

    /// A generation that served for [`MAX_BACKOFF`] was healthy: the next failure starts over.
    fn served(&mut self, uptime: Duration) {
        if uptime >= MAX_BACKOFF {
            self.next = INITIAL_BACKOFF;
        }
    }
}

struct Supervisor {
    config: SidecarConfig,
    model: Arc<str>,
    state: watch::Sender<State>,
    restarts: Arc<AtomicU64>,
    stop: oneshot::Receiver<()>,
    process: Process,
}

/// Keeps a sidecar running until the classifier is dropped.
async fn supervise(supervisor: Supervisor) {
    let Supervisor {
        config,
        model,
        state,
        restarts,
        mut stop,
        mut process,
    } = supervisor;
    let mut backoff = Backoff::new();
    loop {
        let reason = tokio::select! {
            reason = process.stopped() => reason,
            _ = &mut stop => {
                process.finish("the sidecar classifier was dropped").await;
                return;
            }
        };
        backoff.served(process.started.elapsed());
        let mut delay = backoff.next_delay();
        // Publish first, so no request picks the ended generation once it fails the waiting ones.
        state.send_replace(State::Restarting {
            at: Instant::now() + delay,
        });
        tracing::warn!(
            %reason,
            restart_in_ms = millis(delay),
            "sidecar stopped; failing its pending requests and restarting it"
        );
        process.finish(&reason).await;

        process = loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = &mut stop => return,
            }
            match Process::spawn(&config, &model) {
                Ok(process) => break process,
                Err(error) => {
                    delay = backoff.next_delay();
                    state.send_replace(State::Restarting {
                        at: Instant::now() + delay,
                    });
                    tracing::warn!(%error, retry_in_ms = millis(delay), "cannot restart the sidecar");
                }
            }
        };
        restarts.fetch_add(1, Ordering::Relaxed);
        state.send_replace(State::Running(Arc::clone(&process.generation)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_healthy_run() {
        let mut backoff = Backoff::new();
        let delays: Vec<u128> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);

        backoff.served(Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), MAX_BACKOFF);
        backoff.served(MAX_BACKOFF);
        assert_eq!(backoff.next_delay(), INITIAL_BACKOFF);
    }

    #[test]
    fn ignored_lines_are_logged_once_per_interval_with_their_count() {
        let mut log = IgnoredLog::default();
        let t0 = Instant::now();
        let junk = || Ignored::NotAReply("expected value".into());
        assert_eq!(log.note(junk(), t0), Some(1));
        for i in 0..100_000 {
            let at = t0 + IGNORED_LOG_INTERVAL * i / 100_000;
            assert_eq!(log.note(junk(), at), None);
        }
        assert_eq!(
            log.note(Ignored::OverLong, t0 + IGNORED_LOG_INTERVAL),
            Some(100_001)
        );
        assert_eq!(
            log.note(Ignored::Unasked, t0 + IGNORED_LOG_INTERVAL * 2),
            Some(1)
        );
    }

    #[test]
    fn a_flood_is_too_many_ignored_lines_within_one_window() {
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        for i in 0..MAX_IGNORED_LINES {
            assert!(!guard.flooded(t0 + FLOOD_WINDOW * i / MAX_IGNORED_LINES / 2));
        }
        // The odd stray line, window after window, is never a flood.
        let mut steady = FloodGuard::default();
        for second in 0..100u32 {
            for _ in 0..MAX_IGNORED_LINES {
                assert!(!steady.flooded(t0 + FLOOD_WINDOW * second));
            }
        }
        assert!(guard.flooded(t0 + FLOOD_WINDOW / 2));
        // A new window starts the count again.
        assert!(!guard.flooded(t0 + FLOOD_WINDOW));
    }

    #[test]
    fn config_debug_hides_environment_values() {
        let config = SidecarConfig {
            command: vec!["python3".into()],
            model_name: None,
            env: vec![("OPENAI_API_KEY".into(), "sk-secret".into())],
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("OPENAI_API_KEY"));
        assert!(!shown.contains("sk-secret"));
    }
}
