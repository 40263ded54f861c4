//! `gatehouse ledger`: recent actions (and `--follow` over the event stream), and the file-level
//! commands `verify`, `outcomes` and `checkpoint`, which read the ledger itself, not the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use futures::StreamExt;
use gatehouse_client::ActionQuery;
use gatehouse_daemon::auth::APPROVER_TOKEN_FILE;
use gatehouse_daemon::{Config, LEDGER_KEY_FILE};
use gatehouse_protocol::{Event, Verdict};

use super::Target;
use crate::display;

#[derive(Debug, Subcommand)]
pub(super) enum LedgerCommand {
    /// Verify the ledger file in the data directory: SQLite's integrity, the hash chain and
    /// the signed checkpoints (exit 0 intact, 4 tampered or damaged, 1 cannot check).
    Verify {
        /// Check only the newest this-many chain entries (and the latest checkpoint).
        #[arg(long)]
        tail: Option<u64>,
        /// Run SQLite's full integrity_check instead of quick_check.
        #[arg(long)]
        full_integrity_check: bool,
        /// A checkpoint exported earlier (`ledger checkpoint --export`) that the chain must
        /// still match; repeatable.
        #[arg(long)]
        anchor: Vec<PathBuf>,
        /// Verify the shared PostgreSQL ledger at this URL (team mode) instead of the data
        /// directory's file: the hash chain and that every record is chained.
        #[arg(long, value_name = "URL")]
        ledger: Option<String>,
        /// Verify an export (`ledger export --format jsonl`) offline instead of the ledger:
        /// its records against their chain entries and its signed checkpoint.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Stream actions as JSON lines (with the chain proof) or CSV, to stdout or a file.
    Export(super::ledger_export::ExportArgs),
    /// One action as the daemon recorded it: input, verdict, reason and the sandbox confinement
    /// its rule required (profile and digest, or the fallback a client that cannot confine got).
    Show {
        /// The action id (a unique prefix is enough).
        id: String,
        /// Print the action view as JSON (the `GET /v1/actions/{id}` shape).
        #[arg(long)]
        json: bool,
    },
    /// What happened to tool calls after their hosts ran them (agent hooks' outcomes), newest
    /// first; `--flagged`: only those that ran around the firewall.
    Outcomes {
        #[arg(long)]
        flagged: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Signed checkpoints of the chain head.
    Checkpoint {
        /// Write the latest signed checkpoint as JSON to this file (`-` for stdout).
        #[arg(long)]
        export: PathBuf,
    },
}

/// `gatehouse ledger show ID`: one action, its confinement included.
async fn show(target: &Target, id: &str, json: bool) -> Result<ExitCode> {
    let client = target.approver()?;
    let id = super::decide::resolve_action_id(&client, id, false).await?;
    let action = client.action(&id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&action)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Inputs, reasons and rule ids come from agents and files: keep them inert.
    let safe = |text: &str| display::terminal_safe(text, 2000);
    println!("action   {}", safe(&action.action_id));
    println!("tool     {}", safe(&action.tool));
    println!("input    {}", safe(&action.input.to_string()));
    if let Some(cwd) = &action.cwd {
        println!("cwd      {}", safe(cwd));
    }
    println!(
        "verdict  {} by {}{}",
        action.verdict.as_str(),
        action.decided_by.as_str(),
        action
            .rule_id
            .as_deref()
            .map(|rule| format!(" (rule {})", safe(rule)))
            .unwrap_or_default()
    );
    println!("reason   {}", safe(&action.reason));
    if let Some(c) = &action.confinement {
        let digest = c
            .profile_digest
            .as_deref()
            .map(|d| format!(", profile sha256 {d}"))
            .unwrap_or_default();
        match c.applied {
            gatehouse_protocol::ConfinementApplied::Confined => println!(
                "sandbox  runs confined: profile {}{digest}",
                safe(&c.profile)
            ),
            gatehouse_protocol::ConfinementApplied::Fallback => println!(
                "sandbox  required profile {}{digest}; this client cannot confine it, so the rule's fallback applied: {}",
                safe(&c.profile),
                c.fallback.as_deref().unwrap_or("pause")
            ),
        }
        if let Some(summary) = &c.summary {
            println!("         {}", safe(summary));
        }
    }
    println!("hash     {}", action.action_hash);
    Ok(ExitCode::SUCCESS)
}

/// Exit code of `gatehouse ledger verify` for a ledger that failed verification.
const EXIT_TAMPERED: u8 = 4;

/// `ledger verify --ledger postgres://...`: walks the shared ledger's chain in one snapshot.
fn verify_shared(url: &str, tail: Option<u64>) -> Result<ExitCode> {
    let options = gatehouse_ledger::VerifyOptions {
        tail,
        ..gatehouse_ledger::VerifyOptions::default()
    };
    let outcome = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(gatehouse_ledger::postgres::verify_url(url, &options))
    });
    match outcome {
        Ok(report) => {
            println!(
                "ledger intact: {} chain entries ({} checked), head {} at entry {}",
                report.entries,
                report.checked,
                hex(&report.head.hash),
                report.head.seq
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure)
            if failure.detail.contains("could not be read")
                || failure.detail.contains("connect") =>
        {
            eprintln!("gatehouse: cannot check the shared ledger: {failure}");
            Ok(ExitCode::FAILURE)
        }
        Err(failure) => {
            println!("LEDGER VERIFICATION FAILED (PostgreSQL): {failure}");
            Ok(ExitCode::from(EXIT_TAMPERED))
        }
    }
}

/// `ledger verify` and `ledger checkpoint`: they read the ledger file itself (read-only), so
/// they work whether or not the daemon runs, and do not trust it.
pub(super) fn ledger_file(target: &Target, command: LedgerCommand) -> Result<ExitCode> {
    let data_dir = Config {
        data_dir: target.data_dir.clone(),
        ..Config::default()
    }
    .resolve_data_dir();
    let path = data_dir.join("ledger.db");
    if let LedgerCommand::Verify {
        ledger: Some(url),
        tail,
        ..
    } = &command
    {
        return verify_shared(url, *tail);
    }
    match command {
        LedgerCommand::Verify {
            export: Some(export),
            ..
        } => super::ledger_export::verify(
            &export,
            gatehouse_ledger::public_key(&data_dir.join(LEDGER_KEY_FILE))?,
        ),
        LedgerCommand::Export(args) => super::ledger_export::export(&path, args),
        LedgerCommand::Show { id, json } => tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(show(target, &id, json))
        }),
        LedgerCommand::Verify {
            tail,
            full_integrity_check,
            anchor,
            ledger: _,
            export: None,
        } => {
            // No ledger and no signing key: nothing was ever recorded here (a wrong --data-dir,
            // most likely) — "cannot check", not "tampered". A key without its ledger is
            // different: the ledger existed and is gone, which verification reports below.
            if !path.exists() && !data_dir.join(LEDGER_KEY_FILE).exists() {
                eprintln!(
                    "gatehouse: cannot check: there is no ledger at {} (is --data-dir or GATEHOUSE_DATA_DIR right?)",
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            let mut anchors = Vec::new();
            for file in &anchor {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                anchors.push(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not an exported checkpoint", file.display())
                })?);
            }
            let options = gatehouse_ledger::VerifyOptions {
                tail,
                full_integrity_check,
                public_key: gatehouse_ledger::public_key(&data_dir.join(LEDGER_KEY_FILE))?,
                anchors,
            };
            match gatehouse_ledger::verify_file(&path, &options) {
                Ok(report) => {
                    println!(
                        "ledger intact: {} chain entries ({} checked), head {} at entry {}, {} checkpoint(s) checked",
                        report.entries,
                        report.checked,
                        hex(&report.head.hash),
                        report.head.seq,
                        report.checkpoints
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(failure) => {
                    println!("LEDGER VERIFICATION FAILED ({}): {failure}", path.display());
                    Ok(ExitCode::from(EXIT_TAMPERED))
                }
            }
        }
        LedgerCommand::Outcomes { flagged, limit } => {
            crate::outcomes::print(&target.url(), target.data_dir.as_deref(), flagged, limit)
        }
        LedgerCommand::Checkpoint { export } => {
            let checkpoint = gatehouse_ledger::latest_checkpoint_in_file(&path)?.ok_or_else(|| {
                anyhow!("the ledger has no signed checkpoint yet (the daemon signs one every ledger.sign_interval_secs and at shutdown)")
            })?;
            let json = serde_json::to_string_pretty(&checkpoint)? + "\n";
            if export.as_os_str() == "-" {
                print!("{json}");
            } else {
                std::fs::write(&export, json)
                    .with_context(|| format!("cannot write {}", export.display()))?;
                eprintln!(
                    "checkpoint of chain entry {} written to {}",
                    checkpoint.chain_seq,
                    export.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn ledger(
    target: &Target,
    status: Option<String>,
    limit: u32,
    follow: bool,
    json: bool,
) -> Result<ExitCode> {
    let client = target.approver()?;
    let mut list = client
        .actions(&ActionQuery {
            status,
            limit: Some(limit),
            before: None,
        })
        .await?;
    list.actions.reverse();
    let style = display::Style::stdout();
    // What has been printed, so each action's verdict is shown once per change.
    let mut shown = std::collections::HashSet::new();
    if json && !follow {
        println!("{}", serde_json::to_string_pretty(&list.actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !json && !follow {
        println!("{}", style.header());
    }
    for action in &list.actions {
        shown.insert(action.action_id.clone());
        if json {
            println!(
                "{}",
                serde_json::json!({"type": "action.listed", "action": action})
            );
        } else {
            println!("{}", style.line(action));
        }
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let token = target.token(APPROVER_TOKEN_FILE, "GATEHOUSE_APPROVER_TOKEN")?;
    let ws_url = format!(
        "{}/v1/events",
        target.url().trim_end_matches('/').replacen("http", "ws", 1)
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("cannot open the daemon's event stream")?;
    while let Some(message) = socket.next().await {
        let message = message?;
        let Ok(text) = message.to_text() else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let event = serde_json::from_str::<Event>(text)
            .map_err(|err| anyhow!("unexpected event from the daemon: {err}"))?;
        // Actions the rules allowed or rejected at once have no event of their own; every
        // action is scored, so the first event about an unseen action fetches it and shows
        // its verdict (`checked`).
        if let Event::ActionScored { action_id, .. } = &event
            && shown.insert(action_id.clone())
            && let Ok(action) = client.action(action_id).await
            && action.verdict != Verdict::Pending
        {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"type": "action.checked", "action": action})
                );
            } else {
                println!("checked  {}", style.line(&action));
            }
        }
        if let Event::ActionPending { action } | Event::ActionDecided { action } = &event {
            shown.insert(action.action_id.clone());
        }
        if json {
            println!("{}", serde_json::to_string(&event)?);
            continue;
        }
        match event {
            Event::ActionPending { action } => println!("paused   {}", style.line(&action)),
            Event::ActionDecided { action } => println!("decided  {}", style.line(&action)),
            Event::ActionScored {
                action_id,
                tier2,
                tier2_status,
                disagreement,
            } => println!(
                "scored   {}  {}{}{}",
                display::terminal_safe(&action_id, 64),
                tier2_status.as_str(),
                tier2
                    .map(|t| format!(
                        " {:.2} {} ({})",
                        t.score,
                        display::terminal_safe(&t.label, 30),
                        display::terminal_safe(&t.model, 30)
                    ))
                    .unwrap_or_default(),
                if disagreement { "  DISAGREEMENT" } else { "" }
            ),
            Event::ActionLabelled { action_id, label } => println!(
                "labelled {}  {}{}",
                display::terminal_safe(&action_id, 64),
                label.label.as_str(),
                label
                    .reviewer
                    .map(|r| format!(" by {}", display::terminal_safe(&r, 40)))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
