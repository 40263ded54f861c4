//! `gatehouse policy replay CANDIDATE`: evaluates a candidate policy over the actions recorded in
//! the ledger (read-only, safe while the daemon runs) and reports what would change, as a table
//! with examples or as JSON (`gatehouse_daemon::replay` does the evaluating).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_daemon::Config;
use gatehouse_daemon::policy_store::{PolicySource, PolicyStore, protected_set};
use gatehouse_daemon::replay::{Change, Replay, ReplayReport};
use gatehouse_policy::Policy;

use crate::display::terminal_safe;

/// What `policy replay` was asked.
#[derive(Debug)]
pub struct ReplayRequest {
    pub candidate: PathBuf,
    pub since: Option<Duration>,
    pub examples: usize,
    pub json: bool,
    pub data_dir: Option<PathBuf>,
}

pub fn run(request: ReplayRequest) -> Result<ExitCode> {
    let (policy, source) = load_candidate(&request.candidate)?;
    let config = Config {
        data_dir: request.data_dir.clone(),
        ..Config::default()
    };
    let data_dir = config.resolve_data_dir();
    let ledger = data_dir.join("ledger.db");
    if !ledger.exists() {
        bail!(
            "there is no ledger at {} to replay (is --data-dir or GATEHOUSE_DATA_DIR right?)",
            ledger.display()
        );
    }
    // Self-protection as the daemon would combine it with the candidate in this data directory.
    let store = PolicyStore::new(policy.clone(), source);
    store.protect(&protected_set(&config, &data_dir, config.listen));
    let since_ms = match request.since {
        Some(window) => gatehouse_daemon::now_ms() - window.as_millis() as i64,
        None => 0,
    };
    let mut replay = Replay::new(&store, Arc::new(policy), request.examples);
    gatehouse_ledger::for_each_recorded_action_in_file(&ledger, since_ms, |action| {
        replay.add(&action);
        true
    })
    .with_context(|| format!("cannot read {}", ledger.display()))?;
    let report = replay.finish();
    if request.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &request);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_candidate(path: &Path) -> Result<(Policy, PolicySource)> {
    if let Some(source) = path.to_str().and_then(gatehouse_policy::builtin_source) {
        let policy = Policy::from_toml(source)
            .map_err(|errors| anyhow::anyhow!("{} has errors:\n{errors}", path.display()))?;
        return Ok((policy, PolicySource::Builtin));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let policy = Policy::from_toml(&text)
        .map_err(|errors| anyhow::anyhow!("{} has errors:\n{errors}", path.display()))?;
    Ok((policy, PolicySource::File(path.to_path_buf())))
}

/// `30d`, `12h`, `90m`, `45s`.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}`: give a unit, e.g. 30d, 12h, 90m"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number then a unit, e.g. 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h, d or w")),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a window"))
}

fn print_report(report: &ReplayReport, request: &ReplayRequest) {
    let window = request
        .since
        .map(|w| format!(" from the last {}", humanize(w)))
        .unwrap_or_default();
    println!(
        "replayed {} recorded action(s){window} against {}: {} would change",
        report.replayed,
        request.candidate.display(),
        report.changed()
    );
    if report.skipped_errors > 0 {
        println!(
            "({} failed check(s) not replayed: decided_by error)",
            report.skipped_errors
        );
    }
    let effects = ["allow", "pause", "reject"];
    println!();
    println!(
        "{:<12}{:>12}{:>12}{:>12}",
        "was \\ now", "allow", "pause", "reject"
    );
    for was in effects {
        let row = report.matrix.get(was);
        let cell = |now: &str| row.and_then(|r| r.get(now)).copied().unwrap_or(0);
        println!(
            "{:<12}{:>12}{:>12}{:>12}",
            was,
            cell("allow"),
            cell("pause"),
            cell("reject")
        );
    }
    section("NEWLY ALLOWED (read these first)", &report.newly_allowed);
    section("newly paused", &report.newly_paused);
    section("newly rejected", &report.newly_rejected);
}

fn section(title: &str, change: &Change) {
    if change.count == 0 {
        return;
    }
    println!();
    println!("{title}: {}", change.count);
    for example in &change.examples {
        println!(
            "  {}  {}  {}  {} ({}) -> {} ({})",
            example.action_id,
            terminal_safe(&example.tool, 40),
            terminal_safe(&example.summary, 100),
            example.was,
            example.was_rule.as_deref().unwrap_or("default"),
            example.now,
            example.now_rule.as_deref().unwrap_or("default"),
        );
    }
    if change.count as usize > change.examples.len() {
        println!(
            "  … and {} more (--examples N, or --json)",
            change.count as usize - change.examples.len()
        );
    }
}

fn humanize(window: Duration) -> String {
    let secs = window.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_their_units_and_refuse_the_rest() {
        assert_eq!(parse_window("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_window("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_window("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_window("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["30", "d", "30y", "-1d", "99999999999999999999d"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
