//! `gatehouse doctor`: is every agent host that has Gatehouse installed actually guarded?
//!
//! Per host: where Gatehouse is installed (user, project, managed settings), the host's
//! version, whether the fail-closed option is in force (Claude Code `onFailure`, Cursor
//! `failClosed`), whether Codex trusts the hook as installed, settings that switch hooks off;
//! then the daemon: reachable, the agent token accepted, and a live harmless round trip (a
//! read the policy allows, marked as a doctor probe). Exit 1 when an installed host is left
//! unguarded or the daemon cannot answer, each problem with how to fix it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use gatehouse_hosts::Host;
use gatehouse_hosts::codex;
use gatehouse_hosts::install::{HostEnv, Scope, settings_path};
use gatehouse_hosts::settings::{self, Inspection};
use gatehouse_hosts::version::{self, Version};
use gatehouse_protocol::{CheckResponse, Health};
use serde_json::json;

use crate::hook::transport::{self, Endpoint};
use crate::install::{data_dir, probe_version};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The daemon's URL (as the hooks use it).
    #[arg(long, env = "GATEHOUSE_URL", default_value = "http://127.0.0.1:7400")]
    url: String,
    /// The daemon's data directory (where the agent token is).
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The project whose settings to check too (default: the current directory).
    #[arg(long)]
    project: Option<PathBuf>,
    /// Take the host versions as given instead of running the hosts' CLIs
    /// (`claude-code=2.1.328`, repeatable).
    #[arg(long = "host-version")]
    host_versions: Vec<String>,
}

/// One finding that leaves a host (or every host) unguarded, and how to fix it.
struct Problem {
    what: String,
    fix: String,
}

pub async fn run(args: DoctorArgs) -> Result<ExitCode> {
    let env = HostEnv::from_process();
    let project = match &args.project {
        Some(dir) => std::path::absolute(dir)?,
        None => std::env::current_dir()?,
    };
    let mut problems = Vec::new();
    let mut installed_any = false;
    for host in Host::ALL {
        let given = args.host_versions.iter().find_map(|entry| {
            let (name, version) = entry.split_once('=')?;
            (name.parse::<Host>().ok()? == host)
                .then(|| version.parse::<Version>().ok())
                .flatten()
        });
        installed_any |= check_host(host, &env, &project, given, &mut problems);
    }
    check_daemon(&args, installed_any, &mut problems);
    match sandbox_support() {
        Some(line) => println!("sandbox: {line}"),
        None => println!("sandbox: no kernel sandbox probe in this build"),
    }
    if problems.is_empty() {
        println!("ok: every installed host is guarded");
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    for problem in &problems {
        println!("PROBLEM: {}", problem.what);
        println!("    fix: {}", problem.fix);
    }
    Ok(ExitCode::from(1))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Reports one host; returns whether Gatehouse is installed for it anywhere.
fn check_host(
    host: Host,
    env: &HostEnv,
    project: &Path,
    given: Option<Version>,
    problems: &mut Vec<Problem>,
) -> bool {
    let mut layers: Vec<(Scope, PathBuf)> = Vec::new();
    for scope in [Scope::Managed, Scope::User, Scope::Project] {
        if let Ok(path) = settings_path(host, scope, Some(project), env) {
            layers.push((scope, path));
        }
    }
    let mut installed: Vec<(Scope, PathBuf)> = Vec::new();
    let mut disabled: Vec<String> = Vec::new();
    let mut json_found: Vec<(Scope, PathBuf, Inspection)> = Vec::new();
    let mut codex_found: Vec<(PathBuf, Vec<codex::FoundHook>)> = Vec::new();
    for (scope, path) in &layers {
        let Some(text) = read(path) else { continue };
        let shown = path.display().to_string();
        if host == Host::Codex {
            let source = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            match codex::inspect(&shown, &source.to_string_lossy(), &text) {
                Ok((found, off)) => {
                    disabled.extend(off);
                    if !found.is_empty() {
                        installed.push((*scope, path.clone()));
                        codex_found.push((path.clone(), found));
                    }
                }
                Err(err) => problems.push(Problem {
                    what: format!("{host}: {err}"),
                    fix: format!(
                        "fix {shown}; Codex falls back to defaults when it cannot read it"
                    ),
                }),
            }
        } else {
            match settings::inspect(host, &shown, &text) {
                Ok(inspection) => {
                    disabled.extend(inspection.hooks_disabled.clone());
                    if !inspection.ours.is_empty() {
                        installed.push((*scope, path.clone()));
                        json_found.push((*scope, path.clone(), inspection));
                    }
                }
                Err(err) => problems.push(Problem {
                    what: format!("{host}: {err}"),
                    fix: format!("fix {shown}: the host may ignore the whole file"),
                }),
            }
        }
    }
    if host == Host::ClaudeCode
        && let Some(text) = read(&project.join(".claude/settings.local.json"))
        && let Ok(inspection) = settings::inspect(host, ".claude/settings.local.json", &text)
    {
        disabled.extend(inspection.hooks_disabled);
    }
    if installed.is_empty() {
        println!("{host}: not installed (gatehouse install {host})");
        return false;
    }
    let places: Vec<String> = installed
        .iter()
        .map(|(scope, path)| format!("{}: {}", scope.as_str(), path.display()))
        .collect();
    let version = given.or_else(|| probe_version(host).map(|(v, _)| v));
    println!(
        "{host}: installed ({}), version {}",
        places.join(", "),
        version.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
    );
    if host.program().is_some() && version.is_none() {
        problems.push(Problem {
            what: format!(
                "{host}: cannot read its version (is `{}` on PATH?)",
                host.program().unwrap_or_default()
            ),
            fix: format!("run doctor where {host} runs, or pass --host-version {host}=X.Y.Z"),
        });
    }
    let commands: Vec<String> = json_found
        .iter()
        .flat_map(|(_, _, inspection)| inspection.ours.iter())
        .filter_map(|(_, handler)| handler.get("command").and_then(|c| c.as_str()))
        .map(str::to_owned)
        .chain(
            codex_found
                .iter()
                .flat_map(|(_, found)| found.iter().map(|f| f.command.clone())),
        )
        .collect();
    for command in &commands {
        let program = first_word(command);
        if !Path::new(&program).is_file() {
            problems.push(Problem {
                what: format!("{host}: the hook runs {program}, which does not exist"),
                fix: format!("gatehouse install {host} (with the gatehouse binary you run)"),
            });
        }
    }
    for reason in &disabled {
        problems.push(Problem {
            what: format!("{host}: hooks are switched off by {reason}"),
            fix: "remove that setting (or install with --scope managed, which a project cannot switch off)".into(),
        });
    }
    match host {
        Host::ClaudeCode | Host::Cursor => {
            for (_, path, inspection) in &json_found {
                if inspection.fail_closed(host) {
                    println!("  fail-closed: yes ({})", path.display());
                    continue;
                }
                let option = if host == Host::Cursor {
                    "\"failClosed\": true"
                } else {
                    "\"onFailure\": \"block\""
                };
                let supported =
                    version::features(host, version).on_failure_block || host == Host::Cursor;
                problems.push(Problem {
                    what: format!(
                        "{host}: the fail-closed option ({option}) is missing in {}: a crashed, slow or missing hook lets the call run",
                        path.display()
                    ),
                    fix: if supported {
                        format!("gatehouse install {host} (it sets {option})")
                    } else {
                        format!(
                            "upgrade {host} to {} or later, then gatehouse install {host}",
                            version::CLAUDE_ON_FAILURE
                        )
                    },
                });
            }
        }
        Host::Codex => {
            let user_config = env.codex_user_config();
            let trust_text = read(&user_config).unwrap_or_default();
            for (path, found) in &codex_found {
                // A project's .codex/config.toml is loaded only in a project Codex trusts.
                if *path != user_config
                    && let Some(project) = path.parent().and_then(Path::parent)
                {
                    let canonical = project
                        .canonicalize()
                        .unwrap_or_else(|_| project.to_path_buf());
                    if !codex::project_trusted(&trust_text, &[project, &canonical]) {
                        problems.push(Problem {
                            what: format!(
                                "codex: the project {} is not trusted by Codex ([projects.\"{}\"] trust_level = \"trusted\" in {}): Codex does not load {}, so its hooks never run",
                                project.display(),
                                canonical.display(),
                                user_config.display(),
                                path.display()
                            ),
                            fix: "trust the project in Codex (run codex there once and accept), or install for the user: gatehouse install codex --scope user".into(),
                        });
                    }
                }
                for hook in found {
                    let recorded = codex::recorded_trust("config.toml", &trust_text, &hook.key)
                        .ok()
                        .flatten();
                    match recorded {
                        Some(hash) if hash == hook.current_hash => {
                            println!("  trusted: yes ({} in {})", hook.event, path.display())
                        }
                        Some(_) => problems.push(Problem {
                            what: format!(
                                "codex: the {} hook in {} was changed after it was trusted: Codex skips it silently",
                                hook.event,
                                path.display()
                            ),
                            fix: "gatehouse install codex (it records the trust again)".into(),
                        }),
                        None => problems.push(Problem {
                            what: format!(
                                "codex: the {} hook in {} is not trusted: Codex skips it silently",
                                hook.event,
                                path.display()
                            ),
                            fix: "gatehouse install codex (it records the trust in Codex's config.toml)".into(),
                        }),
                    }
                }
            }
        }
        Host::Gemini => {
            println!(
                "  fail-closed: by the hook (Gemini has no option; every failure is an explicit deny)"
            );
        }
    }
    true
}

/// The first shell word of a hook command as `install` writes it (plain, or single-quoted).
fn first_word(command: &str) -> String {
    let command = command.trim_start();
    match command.strip_prefix('\'') {
        Some(rest) => {
            let mut word = String::new();
            let mut rest = rest;
            // `'\''` inside a single-quoted word is a literal quote.
            while let Some(end) = rest.find('\'') {
                word.push_str(&rest[..end]);
                match rest[end..].strip_prefix("'\\''") {
                    Some(after) => {
                        word.push('\'');
                        rest = after;
                    }
                    None => return word,
                }
            }
            word.push_str(rest);
            word
        }
        None => command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn agent_token(args: &DoctorArgs) -> Option<String> {
    if let Ok(token) = std::env::var("GATEHOUSE_TOKEN")
        && !token.is_empty()
    {
        return Some(token);
    }
    let path = data_dir(args.data_dir.as_deref()).join(gatehouse_daemon::auth::AGENT_TOKEN_FILE);
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_owned())
}

fn check_daemon(args: &DoctorArgs, installed_any: bool, problems: &mut Vec<Problem>) {
    let endpoint = match Endpoint::parse(&args.url) {
        Ok(endpoint) => endpoint,
        Err(reason) => {
            problems.push(Problem {
                what: format!("daemon: {reason}"),
                fix: "pass --url http://127.0.0.1:PORT".into(),
            });
            return;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = transport::request(&endpoint, "GET", "/healthz", None, None, deadline)
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| serde_json::from_slice::<Health>(&r.body).ok());
    let Some(health) = health else {
        let consequence = if installed_any {
            "every tool call of the installed hosts is denied until it runs"
        } else {
            "no agent can be checked"
        };
        problems.push(Problem {
            what: format!("daemon: not reachable at {} ({consequence})", args.url),
            fix: "start it: gatehouse serve (or pass --url where it listens)".into(),
        });
        return;
    };
    println!(
        "daemon: {} reachable (status {}, policy {})",
        args.url, health.status, health.policy
    );
    if health.status != "ok" {
        problems.push(Problem {
            what: format!("daemon: degraded: {}", health.reason.unwrap_or_default()),
            fix: "see `gatehouse ledger verify` and the daemon's log".into(),
        });
    }
    let token = agent_token(args);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let probe = json!({
        "tool": "Read",
        "input": {"file_path": cwd.join("gatehouse-doctor-probe").to_string_lossy()},
        "agent": "gatehouse-doctor",
        "session_id": "gatehouse-doctor",
        "cwd": cwd.to_string_lossy(),
        "context": {"doctor_probe": true},
        "wait_ms": 0,
    });
    let started = Instant::now();
    let body = probe.to_string().into_bytes();
    match transport::request(
        &endpoint,
        "POST",
        "/v1/check",
        token.as_deref(),
        Some(&body),
        Instant::now() + Duration::from_secs(5),
    ) {
        Ok(response) if response.status == 200 => {
            let elapsed = started.elapsed();
            match serde_json::from_slice::<CheckResponse>(&response.body) {
                Ok(answer) => println!(
                    "  round trip: a harmless read was answered `{}` ({}) in {:.1} ms (action {})",
                    answer.verdict.as_str(),
                    answer.reason,
                    elapsed.as_secs_f64() * 1000.0,
                    answer.action_id
                ),
                Err(err) => problems.push(Problem {
                    what: format!("daemon: the round trip's answer is not a check response: {err}"),
                    fix: "is something else listening there?".into(),
                }),
            }
        }
        Ok(response) if response.status == 401 => problems.push(Problem {
            what: "daemon: the agent token was refused (the hooks will deny every call)".into(),
            fix: "install with --data-dir pointing at the daemon's data directory, or set GATEHOUSE_TOKEN".into(),
        }),
        Ok(response) => problems.push(Problem {
            what: format!(
                "daemon: the round trip failed (HTTP {}): {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
            fix: "see the daemon's log".into(),
        }),
        Err(reason) => problems.push(Problem {
            what: format!("daemon: the round trip failed: {reason}"),
            fix: "see the daemon's log".into(),
        }),
    }
}

/// The kernel sandbox's support (`gatehouse_sandbox::probe()`), for hosts whose shell calls the
/// policy confines instead of pausing.
fn sandbox_support() -> Option<String> {
    let support = gatehouse_sandbox::probe();
    Some(if support.ok() {
        "this kernel can confine commands (Landlock, user namespaces, seccomp)".to_owned()
    } else {
        format!(
            "not available here ({}): calls the policy would confine are paused instead",
            support.problems.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::first_word;

    #[test]
    fn the_hooks_binary_is_the_first_shell_word() {
        assert_eq!(
            first_word("/usr/bin/gatehouse hook codex"),
            "/usr/bin/gatehouse"
        );
        assert_eq!(first_word("'/a b/gatehouse' hook codex"), "/a b/gatehouse");
        assert_eq!(
            first_word("'/it'\\''s/gatehouse' hook x"),
            "/it's/gatehouse"
        );
    }
}
