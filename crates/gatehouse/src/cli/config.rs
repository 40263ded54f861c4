//! `gatehouse config`: the default configuration file and the environment variables read.

use std::process::ExitCode;

use clap::Subcommand;
use gatehouse_daemon::Config;

#[derive(Debug, Subcommand)]
pub(super) enum ConfigCommand {
    /// Print the default configuration file.
    PrintDefault,
    /// List the GATEHOUSE_* environment variables gatehouse reads, and what each is for.
    Env,
}

pub(super) fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::PrintDefault => print!("{}", Config::default_toml()),
        ConfigCommand::Env => crate::env_vars::print_known(),
    }
    ExitCode::SUCCESS
}
