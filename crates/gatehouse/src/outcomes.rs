//! `gatehouse ledger outcomes`: what happened to tool calls after their hosts ran them, newest
//! first, with the ones that ran around the firewall marked (`GET /v1/outcomes`, approver).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use gatehouse_protocol::{ErrorEnvelope, OutcomeList};

use crate::hook::transport::{self, Endpoint};
use crate::install::data_dir;

fn approver_token(data: Option<&Path>) -> Result<String> {
    if let Ok(token) = std::env::var("GATEHOUSE_APPROVER_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    let path = data_dir(data).join(gatehouse_daemon::auth::APPROVER_TOKEN_FILE);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|err| {
            anyhow!(
                "cannot read {} ({err}); set GATEHOUSE_APPROVER_TOKEN or --data-dir",
                path.display()
            )
        })
}

pub fn print(url: &str, data: Option<&Path>, flagged: bool, limit: u32) -> Result<ExitCode> {
    let endpoint = Endpoint::parse(url).map_err(|e| anyhow!(e))?;
    let token = approver_token(data)?;
    let path = format!("/v1/outcomes?limit={limit}&flagged={flagged}");
    let response = transport::request(
        &endpoint,
        "GET",
        &path,
        Some(&token),
        None,
        Instant::now() + Duration::from_secs(10),
    )
    .map_err(|e| anyhow!(e))?;
    if response.status != 200 {
        let detail = serde_json::from_slice::<ErrorEnvelope>(&response.body)
            .map(|e| e.error.message)
            .unwrap_or_else(|_| format!("HTTP {}", response.status));
        bail!("the daemon refused: {detail}");
    }
    let list: OutcomeList = serde_json::from_slice(&response.body)?;
    if list.outcomes.is_empty() {
        println!("no outcomes recorded");
    }
    for outcome in &list.outcomes {
        let flag = match outcome.flag {
            Some(flag) => format!("  !! {} (ran around the firewall)", flag.as_str()),
            None => String::new(),
        };
        let status = match (outcome.ran, outcome.exit_code, &outcome.error) {
            (false, _, _) => "did not run".to_owned(),
            (true, _, Some(error)) => format!("failed: {}", error.lines().next().unwrap_or("")),
            (true, Some(code), None) => format!("ran, exit {code}"),
            (true, None, None) => "ran".to_owned(),
        };
        println!(
            "{:>6}  {}  {}  {}  {}{}{}",
            outcome.outcome_id,
            outcome.action_id.as_deref().unwrap_or("(no action)"),
            outcome.agent.as_deref().unwrap_or("-"),
            outcome.tool,
            status,
            outcome
                .duration_ms
                .map(|d| format!(" in {d} ms"))
                .unwrap_or_default(),
            flag
        );
        for finding in &outcome.findings {
            println!("        {finding}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
