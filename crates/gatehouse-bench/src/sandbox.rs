//! The `sandbox` benchmark: what confinement costs. Start-up: `gatehouse sandbox run --profile
//! build -- true` against `true` run directly (the p50 overhead should stay under 5 ms); a real
//! build: the Rust fixture's `cargo test --offline` (after touching its source) and the Node
//! fixture's `npm test`, confined and unconfined, alternated in the same run (the confined/
//! unconfined wall-time ratio should stay under 1.1×). Each target ends in a PASS/FAIL line.
//! Run it as `cargo run --release -p gatehouse-bench -- sandbox` (after `cargo build --release
//! -p gatehouse`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs the scenario and prints its figures.
pub fn run(
    root: &Path,
    gatehouse: Option<PathBuf>,
    startup_runs: usize,
    build_runs: usize,
) -> Result<()> {
    let gatehouse = match gatehouse.or_else(|| std::env::var_os("GATEHOUSE_BIN").map(PathBuf::from))
    {
        Some(path) => path,
        None => {
            let release = root.join("target/release/gatehouse");
            if release.exists() {
                release
            } else {
                root.join("target/debug/gatehouse")
            }
        }
    };
    if !gatehouse.exists() {
        bail!(
            "{} does not exist (build it, or pass --gatehouse)",
            gatehouse.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project)?;
    println!("sandbox benchmark: {}", gatehouse.display());

    // Start-up.
    let confined = |argv: &[&str], cwd: &Path| {
        let mut cmd = Command::new(&gatehouse);
        cmd.args(["sandbox", "run", "--profile", "build", "--cwd"])
            .arg(cwd)
            .arg("--")
            .args(argv);
        cmd
    };
    let direct = |argv: &[&str], cwd: &Path| {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).current_dir(cwd);
        cmd
    };
    let true_bin = ["/bin/true"];
    for _ in 0..3 {
        time(confined(&true_bin, &project))?;
    }
    let (mut plain, mut boxed) = (Vec::new(), Vec::new());
    for _ in 0..startup_runs {
        plain.push(time(direct(&true_bin, &project))?);
        boxed.push(time(confined(&true_bin, &project))?);
    }
    let (p50_plain, p50_boxed) = (percentile(&mut plain, 50), percentile(&mut boxed, 50));
    let (p90_plain, p90_boxed) = (percentile(&mut plain, 90), percentile(&mut boxed, 90));
    let overhead = p50_boxed.saturating_sub(p50_plain);
    let ratio = p50_boxed.as_secs_f64() / p50_plain.as_secs_f64().max(1e-9);
    println!(
        "start-up, {startup_runs} runs each: true p50 {:.2} ms (p90 {:.2}); sandbox run -- true p50 {:.2} ms (p90 {:.2}), {ratio:.1}× direct; overhead p50 {:.2} ms",
        ms(p50_plain),
        ms(p90_plain),
        ms(p50_boxed),
        ms(p90_boxed),
        ms(overhead),
    );
    verdict(
        "start-up overhead p50 ≤ 5 ms",
        overhead <= Duration::from_millis(5),
        &format!("{:.2} ms", ms(overhead)),
    );

    // Real builds: each fixture in two copies (confined, unconfined), warmed, then alternated.
    let fixtures = root.join("tests/sandbox");
    let scenarios: [(&str, &[&str], Option<&str>); 2] = [
        (
            "rust: cargo test --offline",
            &["cargo", "test", "--offline", "-q"],
            Some("src/lib.rs"),
        ),
        ("node: npm test", &["npm", "test", "--silent"], None),
    ];
    for (name, argv, touch) in scenarios {
        let short = name.split(':').next().unwrap_or_default();
        let fixture = fixtures.join(short);
        let a = dir.path().join(format!("{short}-plain"));
        let b = dir.path().join(format!("{short}-boxed"));
        for copy in [&a, &b] {
            copy_dir(&fixture, copy)?;
        }
        let run_once = |boxed: bool| -> Result<Duration> {
            let cwd = if boxed { &b } else { &a };
            if let Some(file) = touch {
                let path = cwd.join(file);
                let text = std::fs::read_to_string(&path)?;
                std::fs::write(&path, text)?;
            }
            let cmd = if boxed {
                confined(argv, cwd)
            } else {
                direct(argv, cwd)
            };
            time(cmd)
        };
        run_once(false)?;
        run_once(true)?;
        let (mut plain, mut boxed) = (Vec::new(), Vec::new());
        for _ in 0..build_runs {
            plain.push(run_once(false)?);
            boxed.push(run_once(true)?);
        }
        let (p, c) = (percentile(&mut plain, 50), percentile(&mut boxed, 50));
        let ratio = c.as_secs_f64() / p.as_secs_f64().max(1e-9);
        println!(
            "{name}, {build_runs} runs each: unconfined p50 {:.0} ms, confined p50 {:.0} ms, ratio {ratio:.3}×",
            ms(p),
            ms(c),
        );
        verdict(
            &format!("{name} confined/unconfined ≤ 1.1×"),
            ratio <= 1.1,
            &format!("{ratio:.3}×"),
        );
    }
    Ok(())
}

/// One target's line: `PASS` or `FAIL`, what it is, and the figure measured.
fn verdict(target: &str, met: bool, measured: &str) {
    println!(
        "{} sandbox: {target} (measured {measured})",
        if met { "PASS" } else { "FAIL" }
    );
}

fn time(mut cmd: Command) -> Result<Duration> {
    let started = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(elapsed)
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    let index = (samples.len().saturating_sub(1) * p) / 100;
    samples.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
