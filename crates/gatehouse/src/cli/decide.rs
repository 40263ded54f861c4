//! `gatehouse pending`, `approve` and `deny`: what waits for a person, and deciding it by the hash
//! of what was shown (id prefixes accepted); with person presence on, the CLI only points to the
//! dashboard and waits.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use gatehouse_client::{ActionQuery, Client};
use gatehouse_protocol::{Decision, Verdict};

use super::Target;
use crate::display;

pub(super) async fn decide(
    target: &Target,
    id: &str,
    decision: Decision,
    note: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    // The decision names the action as shown here, by the hash of what is shown: an action
    // that is not the one displayed (another, or an edited one) is refused by the daemon.
    let client = target.approver()?;
    let id = &resolve_action_id(&client, id, true).await?;
    let shown = client.action(id).await?;
    let verb = match decision {
        Decision::Approve => "approving",
        Decision::Deny => "denying",
    };
    eprintln!("{verb}: {}", display::line(&shown));
    let hash = shown_action_hash(&shown)?;
    let action = match client
        .decide(id, decision, note.as_deref(), Some(&hash))
        .await
    {
        Ok(action) => action,
        // Person presence (the default): a token is not a person. The person confirms in the
        // dashboard with their authenticator; this waits for the decision and shows it.
        Err(gatehouse_client::ClientError::Api { code, .. }) if code == "presence_required" => {
            confirm_in_dashboard(target, &client, id).await?
        }
        Err(err) => return Err(err.into()),
    };
    report(&action, decision, json)
}

/// Prints the decided action and the exit code: 0 only if it ended as asked.
fn report(
    action: &gatehouse_protocol::ActionView,
    decision: Decision,
    json: bool,
) -> Result<ExitCode> {
    let verb = match decision {
        Decision::Approve => "approving",
        Decision::Deny => "denying",
    };
    if json {
        println!("{}", serde_json::to_string_pretty(action)?);
    } else {
        println!("{}", display::Style::stdout().line(action));
    }
    // Exit 0 only if the action ended as asked: meanwhile the person may have decided otherwise
    // in the dashboard, or its deadline rejected it.
    let asked = match decision {
        Decision::Approve => Verdict::Allow,
        Decision::Deny => Verdict::Reject,
    };
    Ok(if action.verdict == asked {
        ExitCode::SUCCESS
    } else {
        if action.verdict == Verdict::Pending && !action.approvals.is_empty() {
            // A rule with `approvals = N`: this approval is recorded; another person decides.
            let names: Vec<&str> = action
                .approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect();
            eprintln!(
                "approval recorded; the action waits for another approver (approved so far by {})",
                names.join(", ")
            );
        } else {
            eprintln!("not {verb}: the action is {}", action.verdict.as_str());
        }
        ExitCode::from(4)
    })
}

/// `gatehouse approve ID --input JSON|@FILE`: edit then approve. The edited input (a JSON
/// object) replaces the action's input; the daemon re-checks it with the rules and
/// self-protection (`422 edit_refused`, nothing decided) and binds the approval to the action as
/// shown here (its hash). With person presence on, a token cannot approve an edit: the person
/// edits and confirms in the dashboard.
pub(super) async fn approve_edited(
    target: &Target,
    id: &str,
    input: &str,
    note: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let edited = edited_input(input)?;
    let client = target.approver()?;
    let id = &resolve_action_id(&client, id, true).await?;
    let shown = client.action(id).await?;
    eprintln!("approving, edited: {}", display::line(&shown));
    let hash = shown_action_hash(&shown)?;
    let request = gatehouse_protocol::DecisionRequest {
        decision: Decision::Approve,
        note,
        action_hash: Some(hash),
        presence: None,
        input: Some(edited),
    };
    let action = match client.decide_with(id, &request).await {
        Ok(action) => action,
        Err(gatehouse_client::ClientError::Api { code, .. }) if code == "presence_required" => {
            let origin =
                target
                    .url()
                    .trim_end_matches('/')
                    .replacen("://127.0.0.1:", "://localhost:", 1);
            bail!(
                "nothing was decided: decisions need the person's presence (approvals.presence = \"webauthn\"), \
                 and a token cannot confirm an edit; edit and approve it in the dashboard (\"Edit…\"): {origin}/#action={}",
                display::terminal_safe(id, 64)
            );
        }
        Err(err) => return Err(err.into()),
    };
    report(&action, Decision::Approve, json)
}

/// The edited input from `--input`: a JSON object, given inline or as `@FILE`.
fn edited_input(given: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|err| anyhow!("--input @{path}: cannot read it: {err}"))?,
        None => given.to_owned(),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(input)) => Ok(input),
        Ok(_) => bail!("--input: the edited input must be a JSON object (the tool's whole input)"),
        Err(err) => bail!("--input: not JSON: {err}"),
    }
}

/// How long `gatehouse approve`/`deny` waits for the person to confirm in the dashboard.
const CONFIRM_WAIT: Duration = Duration::from_secs(300);

/// Prints where to confirm (the dashboard on `localhost`, where the authenticator works) and
/// waits, polling, until the action is decided or `CONFIRM_WAIT` passes. The CLI itself never
/// decides: an agent that runs it gets the same answer and nothing more.
async fn confirm_in_dashboard(
    target: &Target,
    client: &gatehouse_client::Client,
    id: &str,
) -> Result<gatehouse_protocol::ActionView> {
    let origin = target
        .url()
        .trim_end_matches('/')
        .replacen("://127.0.0.1:", "://localhost:", 1)
        .replacen("://[::1]:", "://localhost:", 1);
    eprintln!(
        "confirm it in the dashboard with your authenticator: {origin}/#action={}\n\
         (decisions need the person's presence: approvals.presence = \"webauthn\"; run \
         `gatehouse dashboard` for a login link) — waiting up to {} s…",
        display::terminal_safe(id, 64),
        CONFIRM_WAIT.as_secs()
    );
    let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
    loop {
        let action = client.action(id).await?;
        if action.verdict != Verdict::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(action);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The hash of the action as displayed, computed here rather than taken on trust; it must be
/// the one the daemon reports.
pub(crate) fn shown_action_hash(shown: &gatehouse_protocol::ActionView) -> Result<String> {
    let input = shown
        .input
        .as_object()
        .ok_or_else(|| anyhow!("action {}: its input is not a JSON object", shown.action_id))?;
    let hash = gatehouse_ledger::action_hash::to_hex(
        &gatehouse_ledger::ActionIdentity {
            tool: &shown.tool,
            input,
            cwd: shown.cwd.as_deref(),
            session_id: shown.session_id.as_deref(),
            tool_use_id: shown.tool_use_id.as_deref(),
        }
        .hash(),
    );
    if hash != shown.action_hash {
        bail!(
            "action {}: the daemon's action_hash does not match the action it showed; nothing was decided",
            shown.action_id
        );
    }
    Ok(hash)
}

/// `gatehouse pending`: the actions waiting for a person, oldest first (the newest ends up next
/// to the prompt), as a table or (`--json`) an array.
pub(super) async fn pending(target: &Target, json: bool) -> Result<ExitCode> {
    let query = ActionQuery {
        status: Some("pending".into()),
        limit: Some(500),
        before: None,
    };
    let mut list = target.approver()?.actions(&query).await?;
    list.actions.reverse();
    if json {
        println!("{}", serde_json::to_string_pretty(&list.actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.actions.is_empty() {
        println!("no pending actions");
        return Ok(ExitCode::SUCCESS);
    }
    let style = display::Style::stdout();
    println!("{}", style.header());
    for action in &list.actions {
        println!("{}", style.line(action));
    }
    Ok(ExitCode::SUCCESS)
}

/// The shortest prefix people type for an action id (`act_` and at least this many more).
const MIN_ID_PREFIX: usize = 4;

/// The full id of the action `given` names: itself if the daemon knows it, else the one action
/// whose id starts with it — among the pending actions when `pending_only`, else among the
/// ledger's newest 500. An ambiguous prefix is an error listing the candidates.
pub(super) async fn resolve_action_id(
    client: &Client,
    given: &str,
    pending_only: bool,
) -> Result<String> {
    match client.action(given).await {
        Ok(_) => return Ok(given.to_owned()),
        // Not found, or refused as malformed: it may still be a prefix.
        Err(gatehouse_client::ClientError::Api {
            status: 404 | 400, ..
        }) => {}
        Err(err) => return Err(err.into()),
    }
    let typed = given.strip_prefix("act_").unwrap_or(given);
    if typed.chars().count() < MIN_ID_PREFIX {
        bail!(
            "no action {} (an id prefix needs at least {MIN_ID_PREFIX} characters after `act_`)",
            display::terminal_safe(given, 64)
        );
    }
    let query = ActionQuery {
        status: pending_only.then(|| "pending".to_owned()),
        limit: Some(500),
        before: None,
    };
    let list = client.actions(&query).await?;
    let prefix = format!("act_{typed}");
    let candidates: Vec<_> = list
        .actions
        .iter()
        .filter(|a| a.action_id.starts_with(&prefix))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.action_id.clone()),
        [] => bail!(
            "no {}action starts with {}",
            if pending_only { "pending " } else { "" },
            display::terminal_safe(given, 64)
        ),
        many => bail!(
            "{} is ambiguous: it starts {} actions:\n{}",
            display::terminal_safe(given, 64),
            many.len(),
            many.iter()
                .map(|a| format!("  {}", display::line(a)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}
