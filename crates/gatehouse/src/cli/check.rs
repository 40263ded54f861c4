//! `gatehouse check`: one tool call asked of the daemon as an agent would (exit 0 allow, 3 reject,
//! 1 error or still pending at the timeout), telling the person on stderr how to decide a pause.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_client::Client;
use gatehouse_protocol::{CheckRequest, Verdict};

use super::Target;
use crate::display;

#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// Tool name, e.g. Bash.
    #[arg(long)]
    tool: String,
    /// The tool's input as a JSON object, e.g. '{"command":"ls"}'.
    #[arg(long)]
    input: String,
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long)]
    tool_use_id: Option<String>,
    #[arg(long)]
    cwd: Option<String>,
    /// Give up (and fail closed) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Ask over the daemon's check socket (hardened mode) instead of --url.
    #[arg(long, env = "GATEHOUSE_SOCKET")]
    socket: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

pub(super) async fn run(args: CheckArgs) -> Result<ExitCode> {
    let CheckArgs {
        tool,
        input,
        session_id,
        tool_use_id,
        cwd,
        timeout,
        socket,
        target,
    } = args;
    let input: serde_json::Value = serde_json::from_str(&input).context("--input is not JSON")?;
    let serde_json::Value::Object(input) = input else {
        bail!("--input must be a JSON object");
    };
    let request = CheckRequest {
        tool,
        input,
        session_id,
        agent: Some("gatehouse-cli".into()),
        tool_use_id,
        cwd,
        context: None,
        wait_ms: None,
        can_confine: false,
    };
    let client = match &socket {
        Some(socket) => target.socket_agent(socket)?,
        None => target.agent()?,
    };
    let Some(response) = check_telling_the_person(&client, request, timeout).await? else {
        return Ok(ExitCode::FAILURE);
    };
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(match response.verdict {
        // Edit then approve: the call as asked must not run; the edited input is in the JSON.
        Verdict::Allow if response.updated_input.is_some() => {
            eprintln!(
                "gatehouse: action {} was approved only with an edited input (`updated_input` above): the call as asked must not run",
                response.action_id
            );
            ExitCode::from(3)
        }
        Verdict::Allow => ExitCode::SUCCESS,
        _ => ExitCode::from(3),
    })
}

/// `gatehouse check`: asks once without waiting, so that a pause can be announced on stderr
/// (which action, how to approve or deny it) before waiting for the decision; then waits, like
/// [`Client::check`], until `timeout_secs`. `None`: still pending at the deadline (said on
/// stderr, with the id) — the caller fails closed.
async fn check_telling_the_person(
    client: &Client,
    mut request: CheckRequest,
    timeout_secs: u64,
) -> Result<Option<gatehouse_protocol::CheckResponse>> {
    let timeout = Duration::from_secs(timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    request.wait_ms = Some(0);
    let first = client.check_once(&request).await?;
    if first.verdict != Verdict::Pending {
        return Ok(Some(first));
    }
    let id = display::terminal_safe(&first.action_id, 64);
    eprintln!(
        "gatehouse: action {id} ({} {}) is paused for a person's decision: approve it with \
         `gatehouse approve {id}` (or `gatehouse deny {id}`), or in the dashboard \
         (`gatehouse dashboard` prints a login link); waiting up to {timeout_secs} s…",
        display::terminal_safe(&request.tool, 40),
        display::terminal_safe(&compact_input(&request.input), 100),
    );
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            eprintln!(
                "gatehouse: timed out: action {id} is still pending after {timeout_secs} s; \
                 treated as not allowed (exit 1). It stays in `gatehouse pending` until decided \
                 or its deadline."
            );
            return Ok(None);
        }
        let wait = left.min(Duration::from_secs(25));
        let polled = match client.poll_action(&first.action_id, wait).await {
            Ok(polled) => polled,
            Err(gatehouse_client::ClientError::Timeout) => continue,
            Err(err) => return Err(err.into()),
        };
        if polled.verdict != Verdict::Pending {
            return Ok(Some(polled));
        }
    }
}

/// The command of a shell tool, or the input as JSON: what the person is asked about.
fn compact_input(input: &serde_json::Map<String, serde_json::Value>) -> String {
    match input.get("command").and_then(|c| c.as_str()) {
        Some(command) => command.to_owned(),
        None => serde_json::Value::Object(input.clone()).to_string(),
    }
}
