//! `gatehouse sandbox run|profiles|probe`: run a command confined by a profile, list the
//! profiles, say whether this kernel can confine. Runs before (and without) the async runtime:
//! the launcher forks its stages, which needs a single-threaded process (gatehouse-sandbox's
//! crate docs).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_sandbox::{EXIT_SETUP, Plan, ProfileFile, RunRequest, profile};

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SandboxCommand {
    /// Run a command confined: writes only under the profile's places, no secrets readable,
    /// network as the profile says. Exits with the command's status (125: it could not be
    /// confined and did not run). Denials are printed on stderr as `gatehouse sandbox: denied …`.
    Run {
        /// A builtin profile (build, build-net, read-only) or one from --profile-file.
        #[arg(long, default_value = "build")]
        profile: String,
        /// A TOML file of extra profiles (docs/SANDBOX.md).
        #[arg(long)]
        profile_file: Option<PathBuf>,
        /// The working directory: the profile's {project}. Default: the current directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// List the profiles (with --explain, the paths one resolves to here).
    Profiles {
        #[arg(long)]
        profile_file: Option<PathBuf>,
        /// Print the resolved plan of this profile for --cwd (JSON).
        #[arg(long)]
        explain: Option<String>,
        #[arg(long)]
        cwd: Option<PathBuf>,
    },
    /// What a profile allows: the summary `policy explain` shows, and the places it reads and
    /// writes (with --json, the plan it resolves to for --cwd).
    Explain {
        profile: String,
        #[arg(long)]
        profile_file: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Say whether this system can confine commands (exit 0 yes, 1 no).
    Probe {
        #[arg(long)]
        json: bool,
    },
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn fail(message: impl std::fmt::Display, code: i32) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "gatehouse sandbox: {message}");
    exit(code)
}

fn extra_profiles(
    file: Option<&PathBuf>,
) -> Result<Option<ProfileFile>, gatehouse_sandbox::SandboxError> {
    file.map(|f| ProfileFile::load(f)).transpose()
}

/// Runs `gatehouse sandbox …`.
pub fn main(args: SandboxArgs) -> ExitCode {
    match args.command {
        SandboxCommand::Run {
            profile,
            profile_file,
            cwd,
            command,
        } => {
            let extra = match extra_profiles(profile_file.as_ref()) {
                Ok(extra) => extra,
                Err(err) => return fail(err, EXIT_SETUP),
            };
            let found = match profile::find(&profile, extra.as_ref()) {
                Ok(found) => found,
                Err(err) => return fail(err, EXIT_SETUP),
            };
            let cwd = match cwd.map_or_else(std::env::current_dir, Ok) {
                Ok(cwd) => cwd,
                Err(err) => return fail(format!("current directory: {err}"), EXIT_SETUP),
            };
            match gatehouse_sandbox::run(RunRequest {
                profile_name: profile,
                profile: found,
                cwd,
                command,
            }) {
                Ok(code) => exit(code),
                Err(err) => fail(format!("{err} (the command did not run)"), EXIT_SETUP),
            }
        }
        SandboxCommand::Profiles {
            profile_file,
            explain,
            cwd,
        } => {
            let extra = match extra_profiles(profile_file.as_ref()) {
                Ok(extra) => extra,
                Err(err) => return fail(err, 1),
            };
            if let Some(name) = explain {
                return explain_profile(&name, extra.as_ref(), cwd);
            }
            let builtin = profile::builtin_file();
            let mut out = std::io::stdout().lock();
            for (name, file) in [("builtin", Some(&builtin)), ("file", extra.as_ref())] {
                let Some(file) = file else { continue };
                for (profile_name, p) in &file.profiles {
                    let p = profile::expanded(file, p);
                    let _ = writeln!(out, "{profile_name} ({name}): {}", p.description);
                    let _ = writeln!(out, "  read:    {}", p.read.join(" "));
                    let _ = writeln!(out, "  write:   {}", p.write.join(" "));
                    let network = match p.network {
                        gatehouse_sandbox::Network::None => "none".to_owned(),
                        gatehouse_sandbox::Network::Proxy => {
                            format!("proxy to {}", p.hosts.join(" "))
                        }
                    };
                    let _ = writeln!(out, "  network: {network}");
                }
            }
            let _ = writeln!(
                out,
                "Secrets (SSH, cloud, registry credentials, keyrings, browser profiles, histories, Gatehouse's data, agents' settings) are never readable."
            );
            ExitCode::SUCCESS
        }
        SandboxCommand::Explain {
            profile: name,
            profile_file,
            cwd,
            json,
        } => {
            let extra = match extra_profiles(profile_file.as_ref()) {
                Ok(extra) => extra,
                Err(err) => return fail(err, 1),
            };
            if json {
                return explain_profile(&name, extra.as_ref(), cwd);
            }
            match profile::find(&name, extra.as_ref()) {
                Ok(found) => {
                    print!("{}", profile::describe(&name, &found));
                    ExitCode::SUCCESS
                }
                Err(err) => fail(err, 1),
            }
        }
        SandboxCommand::Probe { json } => {
            let support = gatehouse_sandbox::probe();
            if json {
                println!("{}", serde_json::to_string(&support).unwrap_or_default());
            } else if support.ok() {
                println!(
                    "sandbox: supported (Landlock ABI 6+, user namespaces, seccomp user notification)"
                );
            } else {
                println!("sandbox: NOT supported: {}", support.problems.join("; "));
            }
            if support.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn explain_profile(name: &str, extra: Option<&ProfileFile>, cwd: Option<PathBuf>) -> ExitCode {
    let found = match profile::find(name, extra) {
        Ok(found) => found,
        Err(err) => return fail(err, 1),
    };
    let cwd = match cwd.map_or_else(std::env::current_dir, Ok) {
        Ok(cwd) => cwd,
        Err(err) => return fail(err, 1),
    };
    let tmp = std::env::temp_dir().join("gatehouse-sandbox-XXXX");
    let places = match gatehouse_sandbox::plan::Places::from_env(&cwd, &tmp) {
        Ok(places) => places,
        Err(err) => return fail(err, 1),
    };
    match Plan::resolve(name, &found, &places) {
        Ok(plan) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(err, 1),
    }
}
