//! Integration tests of the policy engine: the bypass corpus gate and property tests.

use gatehouse_policy::{ActionRef, Effect, Evaluation, Policy};
use serde_json::{Map, Value, json};

const CWD: &str = "/home/dev/project";
const DANGEROUS: &str = include_str!("corpus/dangerous.txt");
const BENIGN: &str = include_str!("corpus/benign.txt");

/// The share of benign commands builtin:developer must allow (measured: see the test output).
const BENIGN_ALLOWED_FLOOR: f64 = 0.90;

/// (command, technique) for each entry of a corpus file.
fn entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (command, technique) = line.rsplit_once(" #: ").unwrap_or((line, "?"));
            (command.replace('⏎', "\n"), technique.to_owned())
        })
        .collect()
}

fn bash(command: &str) -> Map<String, Value> {
    match json!({ "command": command, "description": "corpus" }) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn decide(policy: &Policy, command: &str) -> Evaluation {
    let input = bash(command);
    let mut action = ActionRef::new("Bash", &input);
    action.cwd = Some(CWD);
    policy.evaluate(&action)
}

#[test]
fn corpus_has_enough_entries() {
    assert!(entries(DANGEROUS).len() >= 150);
    assert!(entries(BENIGN).len() >= 150);
}

/// The gate: no dangerous command is allowed by builtin:developer.
#[test]
fn no_dangerous_command_is_allowed() {
    let policy = Policy::builtin_default();
    let mut allowed = Vec::new();
    let mut rejected = 0;
    let entries = entries(DANGEROUS);
    for (command, technique) in &entries {
        let verdict = decide(&policy, command);
        match verdict.effect {
            Effect::Allow => {
                allowed.push(format!("{technique}: {command:?} by {:?}", verdict.rule_id))
            }
            Effect::Reject => rejected += 1,
            Effect::Pause => {}
        }
    }
    println!(
        "dangerous corpus: {} commands, {rejected} rejected, {} paused, {} allowed",
        entries.len(),
        entries.len() - rejected - allowed.len(),
        allowed.len()
    );
    assert!(
        allowed.is_empty(),
        "allowed dangerous commands:\n{}",
        allowed.join("\n")
    );
}

/// Approval fatigue: the share of everyday commands allowed without asking.
#[test]
fn most_benign_commands_are_allowed() {
    let policy = Policy::builtin_default();
    let entries = entries(BENIGN);
    let mut not_allowed = Vec::new();
    for (command, what) in &entries {
        let verdict = decide(&policy, command);
        if verdict.effect != Effect::Allow {
            not_allowed.push(format!(
                "{what}: {command:?} -> {} ({:?}: {})",
                verdict.effect, verdict.rule_id, verdict.reason
            ));
        }
    }
    let share = 1.0 - not_allowed.len() as f64 / entries.len() as f64;
    println!(
        "benign corpus: {} of {} allowed ({:.1}%); not allowed:\n{}",
        entries.len() - not_allowed.len(),
        entries.len(),
        share * 100.0,
        not_allowed.join("\n")
    );
    assert!(
        share >= BENIGN_ALLOWED_FLOOR,
        "benign share {share:.3} below the floor"
    );
}
