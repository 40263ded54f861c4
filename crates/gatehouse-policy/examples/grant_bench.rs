//! Benchmark of standing grants on the check path: Tier 1 as the daemon runs it
//! (`protect::evaluate`, builtin:developer and self-protection) against the same with grants in
//! force (`grant::evaluate`), for an action the rules allow (grants are not consulted) and one
//! they pause (grants are), with 1 and 100 grants; each printed with its ratio to the baseline
//! measured in the same run.
//!
//! Run: `cargo run --release -p gatehouse-policy --example grant_bench`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use gatehouse_policy::grant::{self, GrantScope, GrantSet, GrantSpec};
use gatehouse_policy::protect::{self, ProtectedSet, SelfProtection};
use gatehouse_policy::{ActionRef, NoResolver, Policy};
use serde_json::{Map, Value, json};

const ITERATIONS: usize = 5_000;
const CWD: &str = "/home/dev/project";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `count` grants: the first `count - 1` for other programs, the last for `docker ps -a`.
fn grants(count: usize) -> GrantSet {
    let mut specs: Vec<GrantSpec> = (1..count)
        .map(|i| GrantSpec {
            id: format!("g{i}"),
            rules: vec![object(json!({
                "tool": "Bash",
                "command": { "program": format!("prog{i}"), "args_prefix": ["sub"] }
            }))],
            scope: GrantScope::Project { root: CWD.into() },
            expires_at_ms: None,
            hosts: Vec::new(),
        })
        .collect();
    specs.push(GrantSpec {
        id: "docker".into(),
        rules: vec![object(json!({
            "tool": "Bash",
            "command": { "program": "docker", "args_prefix": ["ps"], "has_all_flags": ["--all"] }
        }))],
        scope: GrantScope::Project { root: CWD.into() },
        expires_at_ms: None,
        hosts: Vec::new(),
    });
    let (set, errors) = GrantSet::compile(&specs);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// Median nanoseconds of `run` over [`ITERATIONS`].
fn median_ns(mut run: impl FnMut()) -> f64 {
    for _ in 0..200 {
        run();
    }
    let mut samples: Vec<u128> = (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2] as f64
}

fn main() {
    let policy = Policy::builtin_default();
    let protection = SelfProtection::new(
        &ProtectedSet {
            data_dir: PathBuf::from("/home/dev/.local/share/gatehouse"),
            home: Some(PathBuf::from("/home/dev")),
            ..ProtectedSet::default()
        },
        &NoResolver,
    );
    let one = grants(1);
    let hundred = grants(100);
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "case", "p50 µs", "ratio", "verdict"
    );
    for (name, command) in [
        ("allowed (git log)", "git log --oneline -5"),
        ("paused, granted (docker ps -a)", "docker ps -a"),
        ("paused, no grant (docker images)", "docker images"),
    ] {
        let input = object(json!({ "command": command }));
        let action = ActionRef {
            tool: "Bash",
            input: &input,
            session_id: Some("s"),
            agent: None,
            cwd: Some(CWD),
        };
        let baseline = median_ns(|| {
            black_box(protect::evaluate(
                &policy,
                &protection,
                &action,
                &NoResolver,
            ));
        });
        let verdict = protect::evaluate(&policy, &protection, &action, &NoResolver).effect;
        println!(
            "{:<34} {:>10.2} {:>10} {:>10}",
            format!("{name}: no grants"),
            baseline / 1_000.0,
            "1.00",
            verdict.as_str()
        );
        for (label, set) in [("1 grant", &one), ("100 grants", &hundred)] {
            let granted = median_ns(|| {
                black_box(grant::evaluate(
                    &policy,
                    &protection,
                    set,
                    &action,
                    &NoResolver,
                    0,
                ));
            });
            let verdict =
                grant::evaluate(&policy, &protection, set, &action, &NoResolver, 0).effect;
            println!(
                "{:<34} {:>10.2} {:>10.2} {:>10}",
                format!("{name}: {label}"),
                granted / 1_000.0,
                granted / baseline,
                verdict.as_str()
            );
        }
    }
}
