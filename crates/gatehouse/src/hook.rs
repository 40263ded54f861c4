//! `gatehouse hook <claude-code|codex|gemini|cursor>`: the command a host runs before (and
//! after) each tool call. It reads the host's payload on stdin, asks the daemon, and prints the
//! host's answer.
//!
//! *Invariant*: it never fails open. Daemon down, slow, refusing or answering garbage, a
//! payload it cannot read, an unknown option, an internal error or a panic: each becomes the
//! host's explicit deny (`answer::deny`: JSON on stdout, the reason on stderr, exit 2), and
//! the answer is written in one write, once (`emit`), by whichever comes first — the work, the
//! panic hook, or the watchdog that fires before the host's own timeout would.
//!
//! Start-up is lean: no async runtime, no database, a std-only HTTP client (`transport`).

pub(crate) mod transport;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_hosts::Host;
use gatehouse_hosts::answer::{self, HostAnswer};
use gatehouse_hosts::event::{self, HookEvent, MAX_PAYLOAD_BYTES, ToolCall, ToolOutcome};
use gatehouse_hosts::request;
use gatehouse_protocol::{CheckResponse, ErrorEnvelope, Verdict};
use serde_json::Value;

use transport::Endpoint;

/// Default `--url`, as for every other command.
const DEFAULT_URL: &str = "http://127.0.0.1:7400";
/// Default pause wait: the daemon's default approval deadline (120 s) and a little more, so a
/// paused call is decided (approved, denied or timed out) while the hook still waits.
pub const DEFAULT_WAIT_SECS: u64 = 125;
/// How long an outcome report may take.
const OUTCOME_BUDGET: Duration = Duration::from_secs(10);
/// Longest wait one request may ask the daemon for.
const MAX_WAIT_PER_REQUEST: Duration = Duration::from_millis(gatehouse_protocol::MAX_WAIT_MS);

/// Set once the answer is written; nothing is written after it.
static ANSWERED: Mutex<bool> = Mutex::new(false);

/// Writes `answer` (once per process, in one write each for stdout and stderr) and exits.
fn emit(answer: &HostAnswer) -> ! {
    let mut done = ANSWERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*done {
        *done = true;
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_all(&answer.stdout)
            .and_then(|()| stdout.flush());
        if !answer.stderr.is_empty() {
            let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
        }
        // A deny that could not be written is still a non-zero exit; an allow that could not be
        // written must not become one either way but "ran": exit 2 makes every host block.
        if written.is_err() {
            std::process::exit(2);
        }
        std::process::exit(i32::from(answer.exit_code));
    }
    drop(done);
    // Another thread is writing the answer and will exit; wait for it.
    loop {
        std::thread::park();
    }
}

/// Options of `gatehouse hook`.
#[derive(Debug, Clone)]
struct Options {
    host: Host,
    url: String,
    data_dir: Option<PathBuf>,
    wait: Duration,
    pause_ask: bool,
}

/// Entry point: `args` are the words after `hook`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let host = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse::<Host>().ok());
    // Until the host is known, deny with the answer that blocks in Claude Code, Codex and Gemini.
    let deny_host = host.unwrap_or(Host::ClaudeCode);
    std::panic::set_hook(Box::new(move |info| {
        emit(&answer::deny(
            deny_host,
            &format!("internal error in the hook ({info}); the call is blocked"),
        ))
    }));
    let result = std::panic::catch_unwind(|| {
        let options = match parse_options(host, &args) {
            Ok(options) => options,
            Err(reason) => return answer::deny(deny_host, &reason),
        };
        start_watchdog(&options);
        run(&options)
    });
    match result {
        Ok(answer) => emit(&answer),
        Err(_) => emit(&answer::deny(
            deny_host,
            "internal error in the hook; the call is blocked",
        )),
    }
}

fn parse_options(host: Option<Host>, args: &[OsString]) -> Result<Options, String> {
    let host = host.ok_or_else(|| {
        format!(
            "`gatehouse hook` needs a host (claude-code, codex, gemini or cursor), got {:?}",
            args.first()
        )
    })?;
    let mut options = Options {
        host,
        url: std::env::var("GATEHOUSE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned()),
        data_dir: std::env::var_os("GATEHOUSE_DATA_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
        wait: Duration::from_secs(DEFAULT_WAIT_SECS),
        pause_ask: false,
    };
    let mut words = args[1..].iter();
    while let Some(word) = words.next() {
        let word = word
            .to_str()
            .ok_or("an option of `gatehouse hook` is not UTF-8")?;
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (word, None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => words
                    .next()
                    .and_then(|v| v.to_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{name}` needs a value")),
            }
        };
        match name {
            "--url" => options.url = value()?,
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            "--wait" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|_| "`--wait` takes a number of seconds".to_owned())?;
                options.wait = Duration::from_secs(secs.min(3600));
            }
            "--pause" => match value()?.as_str() {
                "ask" => options.pause_ask = true,
                "wait" => options.pause_ask = false,
                other => return Err(format!("`--pause {other}`: expected ask or wait")),
            },
            other => return Err(format!("unknown option `{other}` for `gatehouse hook`")),
        }
    }
    Ok(options)
}

/// Answers with a deny before the host's own timeout (the pause wait plus 20 s; installers set
/// the host's timeout 30 s above the wait) if the work has not answered by then: a host that
/// kills a slow hook may treat the kill as "no opinion".
fn start_watchdog(options: &Options) {
    let limit = options.wait + Duration::from_secs(20);
    let host = options.host;
    let _ = std::thread::Builder::new()
        .name("hook-watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            emit(&answer::deny(
                host,
                "no answer from the Gatehouse daemon in time; the call is blocked",
            ))
        });
}

/// The work: read, ask, map. Every error is a deny.
fn run(options: &Options) -> HostAnswer {
    let host = options.host;
    let payload = match read_stdin() {
        Ok(payload) => payload,
        Err(reason) => return answer::deny(host, &reason),
    };
    let event = match event::read_event(host, &payload) {
        Ok(event) => event,
        Err(err) => {
            return answer::deny(host, &format!("cannot read the {host} hook payload: {err}"));
        }
    };
    let endpoint = match Endpoint::parse(&options.url) {
        Ok(endpoint) => endpoint,
        Err(reason) => return answer::deny(host, &reason),
    };
    let token = match agent_token(options, &endpoint) {
        Ok(token) => token,
        Err(reason) => return answer::deny(host, &reason),
    };
    match event {
        HookEvent::PreTool(call) => check(options, &endpoint, token.as_deref(), &call),
        HookEvent::PostTool(outcome) => report(options, &endpoint, token.as_deref(), &outcome),
    }
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut payload = Vec::with_capacity(8192);
    std::io::stdin()
        .lock()
        .take(MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|err| format!("cannot read the hook payload: {err}"))?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "the hook payload is larger than {MAX_PAYLOAD_BYTES} bytes"
        ));
    }
    Ok(payload)
}

/// `GATEHOUSE_TOKEN`, else the data directory's `agent.token`. On the check socket a token is
/// optional (hardened mode: the agent's user cannot read it).
fn agent_token(options: &Options, endpoint: &Endpoint) -> Result<Option<String>, String> {
    if let Ok(token) = std::env::var("GATEHOUSE_TOKEN")
        && !token.is_empty()
    {
        return Ok(Some(token));
    }
    let config = gatehouse_daemon::Config {
        data_dir: options.data_dir.clone(),
        ..gatehouse_daemon::Config::default()
    };
    let path = config
        .resolve_data_dir()
        .join(gatehouse_daemon::auth::AGENT_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(Some(token.trim().to_owned())),
        Err(_) if matches!(endpoint, Endpoint::Unix { .. }) => Ok(None),
        Err(err) => Err(format!(
            "cannot read the agent token {} ({err}); set GATEHOUSE_TOKEN or --data-dir",
            path.display()
        )),
    }
}

/// A check that offers confinement (`can_confine`) only where this kernel can confine: else the
/// daemon applies confined rules' fallback (pause by default) instead of an allow whose
/// rewritten command would refuse to run (docs/SANDBOX.md, "Fail closed").
fn without_unusable_confinement(mut body: Value) -> Value {
    if body.get("can_confine") == Some(&Value::Bool(true))
        && !gatehouse_sandbox::probe().ok()
        && let Some(fields) = body.as_object_mut()
    {
        fields.remove("can_confine");
    }
    body
}

/// The daemon's answer to a check or a poll, read strictly, with the confinement (if any).
fn read_check(response: transport::Response) -> Result<(CheckResponse, Option<String>), String> {
    if response.status != 200 {
        let detail = serde_json::from_slice::<ErrorEnvelope>(&response.body)
            .map(|e| format!("{} ({})", e.error.message, e.error.code))
            .unwrap_or_else(|_| format!("HTTP {}", response.status));
        return Err(format!("the Gatehouse daemon refused the check: {detail}"));
    }
    let parsed: CheckResponse = serde_json::from_slice(&response.body)
        .map_err(|err| format!("the Gatehouse daemon's answer is not a check response: {err}"))?;
    let confine = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| request::confine_profile(&v));
    Ok((parsed, confine))
}

fn check(
    options: &Options,
    endpoint: &Endpoint,
    token: Option<&str>,
    call: &ToolCall,
) -> HostAnswer {
    let host = options.host;
    let started = Instant::now();
    let deadline = started + options.wait + Duration::from_secs(10);
    let pause_to_host = options.pause_ask && answer::ask(host, &call.event, "").is_some();
    let wait = if pause_to_host {
        Duration::ZERO
    } else {
        options.wait.min(MAX_WAIT_PER_REQUEST)
    };
    let body = match request::check_body(call, wait.as_millis() as u64, pause_to_host)
        .map(without_unusable_confinement)
        .and_then(|b| serde_json::to_vec(&b).map_err(|e| e.to_string()))
    {
        Ok(body) => body,
        Err(reason) => return answer::deny(host, &reason),
    };
    let first = transport::request(endpoint, "POST", "/v1/check", token, Some(&body), deadline)
        .and_then(read_check);
    let (mut response, mut confine) = match first {
        Ok(answer) => answer,
        Err(reason) => return answer::deny(host, &unreachable_reason(options, &reason)),
    };
    // A pause: long-poll the action until it is decided or the hook's wait is over.
    while response.verdict == Verdict::Pending && !pause_to_host {
        let left = (started + options.wait).saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait_ms = left.min(MAX_WAIT_PER_REQUEST).as_millis();
        let path = format!("/v1/actions/{}?wait_ms={wait_ms}", response.action_id);
        match transport::request(endpoint, "GET", &path, token, None, deadline).and_then(read_check)
        {
            Ok(next) => (response, confine) = next,
            Err(reason) => return answer::deny(host, &unreachable_reason(options, &reason)),
        }
    }
    let gatehouse = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mapped = request::map_answer(
        call,
        &response,
        confine.as_deref(),
        &gatehouse,
        pause_to_host,
    );
    request::host_answer(call, mapped)
}

fn unreachable_reason(options: &Options, reason: &str) -> String {
    format!(
        "{reason} (daemon {}); the call is blocked. Is `gatehouse serve` running? `gatehouse doctor` checks the setup.",
        options.url
    )
}

fn report(
    options: &Options,
    endpoint: &Endpoint,
    token: Option<&str>,
    outcome: &ToolOutcome,
) -> HostAnswer {
    let warning = match serde_json::to_vec(&request::outcome_request(outcome)) {
        Err(err) => Some(format!("the outcome was not recorded: {err}")),
        Ok(body) => match transport::request(
            endpoint,
            "POST",
            "/v1/outcomes",
            token,
            Some(&body),
            Instant::now() + OUTCOME_BUDGET,
        ) {
            Ok(response) if response.status == 200 => None,
            Ok(response) => Some(format!(
                "the outcome was not recorded (HTTP {})",
                response.status
            )),
            Err(reason) => Some(format!("the outcome was not recorded: {reason}")),
        },
    };
    // The tool already ran: nothing to block. A lost outcome is said on stderr.
    answer::outcome_recorded(options.host, warning.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let a = args(&["codex", "--url", "unix:/s", "--wait=7", "--pause", "ask"]);
        let options = parse_options(Some(Host::Codex), &a).unwrap();
        assert_eq!(options.url, "unix:/s");
        assert_eq!(options.wait, Duration::from_secs(7));
        assert!(options.pause_ask);
        for bad in [
            &["codex", "--bogus"][..],
            &["codex", "--wait", "soon"],
            &["codex", "--wait"],
            &["codex", "--pause", "maybe"],
        ] {
            assert!(
                parse_options(Some(Host::Codex), &args(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(parse_options(None, &args(&["nope"])).is_err());
    }
}
