//! `gatehouse grants [list|revoke ID|suggestions|stats]`: the standing grants a person saved
//! ("approve and allow similar" in the dashboard), what they allowed, revoking one, the grants
//! suggested by repeated approvals, and the share of would-be prompts grants answered.

use std::process::ExitCode;

use anyhow::Result;
use gatehouse_protocol::grants::{GrantRecord, GrantStatus};

use super::Target;
use crate::display;

#[derive(Debug, clap::Subcommand)]
pub(super) enum GrantsCommand {
    /// Every grant, newest first: id, state, scope, expiry, how many actions it allowed, rules.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: it stops applying at once (the record stays in the ledger).
    Revoke { id: String },
    /// Kinds of action people approved again and again: grants to review in the dashboard
    /// (nothing is applied).
    Suggestions {
        #[arg(long)]
        json: bool,
    },
    /// Prompts and grant allows over the last 24 hours.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

fn scope_text(grant: &GrantRecord) -> String {
    match grant.scope.get("kind").and_then(|k| k.as_str()) {
        Some("session") => format!(
            "session {}",
            grant.scope["session_id"].as_str().unwrap_or_default()
        ),
        Some("project") => format!(
            "project {}",
            grant.scope["root"].as_str().unwrap_or_default()
        ),
        Some(other) => other.to_owned(),
        None => "?".into(),
    }
}

fn status_text(status: GrantStatus) -> &'static str {
    match status {
        GrantStatus::Active => "active",
        GrantStatus::Expired => "expired",
        GrantStatus::Revoked => "revoked",
    }
}

pub(super) async fn run(target: &Target, command: Option<GrantsCommand>) -> Result<ExitCode> {
    let client = target.approver()?;
    match command.unwrap_or(GrantsCommand::List { json: false }) {
        GrantsCommand::List { json } => {
            let list = client.grants().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.grants.is_empty() {
                println!(
                    "no grants (save one from a paused action in the dashboard: Approve and allow similar…)"
                );
            } else {
                println!(
                    "{:<30} {:<8} {:<21} {:<21} {:>7}  SCOPE / RULES",
                    "ID", "STATE", "CREATED", "EXPIRES", "ALLOWED"
                );
                for grant in &list.grants {
                    let expires = grant
                        .expires_at_ms
                        .map_or_else(|| "never".to_owned(), display::timestamp);
                    println!(
                        "{:<30} {:<8} {:<21} {:<21} {:>7}  {}",
                        grant.id,
                        status_text(grant.status),
                        display::timestamp(grant.created_at_ms),
                        expires,
                        grant.allowed,
                        display::terminal_safe(&scope_text(grant), 80)
                    );
                    for rule in &grant.rules {
                        println!(
                            "{:>30}   {}",
                            "",
                            display::terminal_safe(&rule.to_string(), 160)
                        );
                    }
                }
            }
        }
        GrantsCommand::Revoke { id } => {
            let grant = client.revoke_grant(&id).await?;
            println!("{}  {}", grant.id, status_text(grant.status));
        }
        GrantsCommand::Suggestions { json } => {
            let found = client.grant_suggestions().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else if found.suggestions.is_empty() {
                println!(
                    "no suggestions (a kind of action approved at least {} times in 30 days becomes one)",
                    found.min_approvals
                );
            } else {
                for suggestion in &found.suggestions {
                    println!(
                        "approved {:>3} times  {}  (latest {})",
                        suggestion.approvals,
                        display::terminal_safe(&suggestion.summary, 120),
                        suggestion.action_id
                    );
                }
            }
        }
        GrantsCommand::Stats { json } => {
            let stats = client.grant_stats(None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!(
                    "last 24 h: {} actions, {} paused for a person, {} allowed by grants ({:.0}% of would-be prompts), {} decided by people; {} grants active",
                    stats.actions,
                    stats.paused,
                    stats.granted,
                    stats.share_answered_by_grants * 100.0,
                    stats.decided_by_people,
                    stats.grants_active
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
