//! `gatehouse user add|list|remove|whoami`: named people with their own tokens and roles
//! (approver, reviewer, admin). Run by an admin: the owner (the data directory's approver
//! token) or a person with role admin (`GATEHOUSE_APPROVER_TOKEN=<their token>`).

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use gatehouse_protocol::Role;

use super::Target;
use crate::display;

#[derive(Debug, clap::Subcommand)]
pub(super) enum UserCommand {
    /// Add a person and print their token (shown once: hand it to them; they set
    /// GATEHOUSE_APPROVER_TOKEN to it).
    Add {
        name: String,
        /// approver (decides and labels), reviewer (labels only) or admin (also manages users
        /// and the policy).
        #[arg(long, default_value = "approver", value_parser = parse_role)]
        role: Role,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List the people (never their tokens).
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a person: their token and dashboard sessions stop working at once; what they
    /// decided stays in the ledger under their name.
    Remove { name: String },
    /// Who this credential is.
    Whoami,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("`{text}` is not a role: approver, reviewer or admin"))
}

pub(super) async fn run(target: &Target, command: UserCommand) -> Result<ExitCode> {
    let client = target.approver()?;
    match command {
        UserCommand::Add { name, role, json } => {
            let added = client.add_user(&name, role).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&added)?);
            } else {
                eprintln!(
                    "added {} ({}); their token, shown only now (they set GATEHOUSE_APPROVER_TOKEN to it):",
                    added.user.name,
                    added.user.role.as_str()
                );
                println!("{}", added.token);
            }
        }
        UserCommand::List { json } => {
            let list = client.users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.users.is_empty() {
                println!("no users (the owner's approver token decides alone)");
            } else {
                println!("{:<24} {:<9} {:<21} ADDED BY", "NAME", "ROLE", "ADDED");
                for user in &list.users {
                    println!(
                        "{:<24} {:<9} {:<21} {}",
                        user.name,
                        user.role.as_str(),
                        display::timestamp(user.added_at_ms),
                        user.added_by
                    );
                }
            }
        }
        UserCommand::Remove { name } => {
            client.remove_user(&name).await?;
            println!("removed {name}");
        }
        UserCommand::Whoami => {
            let me = client
                .whoami()
                .await
                .map_err(|err| anyhow!("cannot ask the daemon who this is: {err}"))?;
            println!("{} ({})", me.name, me.role.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}
