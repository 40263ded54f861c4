//! The `gatehouse` binary: `serve` runs the daemon; the other subcommands talk to a running one.

mod cli;
mod display;
mod doctor;
mod env_vars;
mod hook;
mod install;
mod mcp;
mod offline;
mod outcomes;
mod policy_replay;
mod retrain;
mod sandbox;
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `gatehouse hook` runs before every tool call: no async runtime, and no argument parser
    // that could exit with anything but the host's deny (hook.rs).
    let mut words = std::env::args_os().skip(1);
    if words.next().is_some_and(|word| word == "hook") {
        return hook::main(words.collect());
    }
    // Not for `hook` (above): its stderr is the host's, and it must stay lean.
    env_vars::warn_unknown();
    let args = match cli::Args::parse().into_sandbox() {
        Ok(sandbox_args) => return sandbox::main(sandbox_args),
        Err(args) => args,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gatehouse: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gatehouse: {err:#}");
            if let Some(hint) = hint_for(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A next step for errors a new user meets first: no daemon where the CLI looked for one.
fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    let unreachable = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<gatehouse_client::ClientError>(),
            Some(gatehouse_client::ClientError::Unreachable(_))
        )
    });
    unreachable.then_some(
        "no gatehouse daemon answered there: start one with `gatehouse serve`, or point the CLI \
         at yours with --url / GATEHOUSE_URL (and --data-dir / GATEHOUSE_DATA_DIR for its tokens)",
    )
}
