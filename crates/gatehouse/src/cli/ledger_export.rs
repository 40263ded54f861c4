//! `gatehouse ledger export` and `ledger verify --export FILE`: actions streamed as JSON lines
//! (with the chain proof, verifiable offline) or CSV, from the ledger file itself.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use gatehouse_ledger::{ExportFilter, ExportFormat};
use gatehouse_protocol::Verdict;

/// Exit code of a verification that failed (as `ledger verify`).
const EXIT_TAMPERED: u8 = 4;

#[derive(Debug, clap::Args)]
pub(super) struct ExportArgs {
    /// jsonl (with the chain proof: `ledger verify --export FILE` checks it offline) or csv
    /// (each row with its chain entry's seq and hash).
    #[arg(long, default_value = "jsonl", value_parser = parse_format)]
    format: ExportFormat,
    /// Only actions recorded in this window: 30d, 12h, 90m...
    #[arg(long, value_parser = crate::policy_replay::parse_window)]
    since: Option<std::time::Duration>,
    /// Only actions whose verdict (the decision's once decided) is allow, reject or pending.
    #[arg(long, value_parser = parse_verdict)]
    verdict: Option<Verdict>,
    /// Only actions of this tool (exact name).
    #[arg(long)]
    tool: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn parse_format(text: &str) -> Result<ExportFormat, String> {
    ExportFormat::parse(text).ok_or_else(|| format!("`{text}` is not a format: jsonl or csv"))
}

fn parse_verdict(text: &str) -> Result<Verdict, String> {
    Verdict::parse(text)
        .ok_or_else(|| format!("`{text}` is not a verdict: allow, reject or pending"))
}

/// Streams the export of the ledger at `path`.
pub(super) fn export(path: &Path, args: ExportArgs) -> Result<ExitCode> {
    if !path.exists() {
        return Err(anyhow!(
            "there is no ledger at {} (is --data-dir or GATEHOUSE_DATA_DIR right?)",
            path.display()
        ));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let filter = ExportFilter {
        since_ms: args
            .since
            .map(|window| now_ms.saturating_sub(window.as_millis() as i64)),
        verdict: args.verdict,
        tool: args.tool,
    };
    let summary = match &args.output {
        Some(file) => {
            let handle = std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            let mut out = BufWriter::new(handle);
            let summary = gatehouse_ledger::export_file(path, &filter, args.format, &mut out)?;
            out.flush()?;
            summary
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let summary = gatehouse_ledger::export_file(path, &filter, args.format, &mut out)?;
            out.flush()?;
            summary
        }
    };
    eprintln!(
        "exported {} action(s){}",
        summary.actions,
        match (summary.from_seq, summary.to_seq, args.format) {
            (Some(from), Some(to), ExportFormat::Jsonl) => format!(
                " with chain entries {from}..{to}{}",
                summary
                    .checkpoint_seq
                    .map(|seq| format!(", signed through entry {seq}"))
                    .unwrap_or_else(|| ", no signed checkpoint yet".into())
            ),
            _ => String::new(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `ledger verify --export FILE`: checks an export offline, against `public_key` when the data
/// directory has one.
pub(super) fn verify(file: &Path, public_key: Option<[u8; 32]>) -> Result<ExitCode> {
    let handle =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    match gatehouse_ledger::verify_export(BufReader::new(handle), public_key) {
        Ok(report) => {
            let range = match (report.from_seq, report.to_seq) {
                (Some(from), Some(to)) => format!("chain entries {from}..{to}"),
                _ => "no chain entries".into(),
            };
            let signed = match (report.signed_through, &report.public_key) {
                (Some(seq), Some(key)) => format!("signed through entry {seq} by key {key}"),
                _ => "NOT covered by a signed checkpoint".into(),
            };
            println!(
                "export intact: {} action(s), {} ({} entries), {signed}",
                report.actions, range, report.entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("EXPORT VERIFICATION FAILED ({}): {failure}", file.display());
            Ok(ExitCode::from(EXIT_TAMPERED))
        }
    }
}
