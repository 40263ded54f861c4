//! `gatehouse review`: the queue of flagged allows and decisions against the score, and labels.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use gatehouse_client::ReviewQuery;
use gatehouse_protocol::ReviewLabel;

use super::Target;
use super::decide::resolve_action_id;
use crate::display;

#[derive(Debug, Subcommand)]
pub(super) enum ReviewCommand {
    /// Record a label on an action in the ledger (labelling again appends; the latest counts).
    Label {
        id: String,
        #[arg(value_parser = ["malicious", "benign"])]
        label: String,
        /// Why (saved with the label).
        #[arg(long)]
        note: Option<String>,
    },
}

/// `gatehouse review`: the newest page of the queue, printed oldest first (the newest ends up
/// next to the prompt), with why each action is there and its latest label.
pub(super) async fn review(
    target: &Target,
    status: Option<String>,
    include_flagged: bool,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let list = target
        .approver()?
        .review(&ReviewQuery {
            status,
            include_flagged,
            limit: Some(limit),
            before: None,
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let style = display::Style::stdout();
    println!(
        "{} unlabelled, {} labelled  (model {}, flag >= {:.2}, disagreement >= {:.2})",
        list.unlabelled,
        list.labelled,
        display::terminal_safe(&list.classifier.model, 40),
        list.classifier.flag_threshold,
        list.classifier.disagreement_threshold,
    );
    for item in list.items.iter().rev() {
        let label = item.label.as_ref().map_or("-", |l| l.label.as_str());
        println!(
            "{:<16} {:<9} {}",
            item.reason.as_str(),
            label,
            style.line(&item.action)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse review label ID LABEL [--note]`.
pub(super) async fn label(target: &Target, command: ReviewCommand) -> Result<ExitCode> {
    let ReviewCommand::Label { id, label, note } = command;
    let label = ReviewLabel::parse(&label)
        .ok_or_else(|| anyhow!("`{label}` is not malicious or benign"))?;
    let client = target.approver()?;
    let id = resolve_action_id(&client, &id, false).await?;
    let labelled = client.label(&id, label, note.as_deref()).await?;
    println!(
        "{}  labelled {}",
        labelled.action_id,
        labelled.label.label.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
