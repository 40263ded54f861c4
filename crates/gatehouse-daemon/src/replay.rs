//! Policy replay: a candidate policy evaluated over recorded actions exactly as the daemon
//! would evaluate it now (shell parsing, paths resolved on this filesystem, self-protection
//! combined after the policy), and what would change: counts from each recorded effect to each
//! new one, and examples of what becomes allowed, paused or rejected.
//!
//! Pure apart from the filesystem reads path rules make; the caller streams the actions in
//! (`gatehouse_ledger::for_each_recorded_action_in_file`) and prints the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use gatehouse_ledger::{RecordedAction, RecordedEffect};
use gatehouse_policy::{ActionRef, Effect, Policy};
use serde::Serialize;

use crate::policy_store::PolicyStore;

/// How many examples of each change a report keeps by default.
pub const DEFAULT_EXAMPLES: usize = 10;

/// One action whose effect would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayExample {
    pub action_id: String,
    pub created_at_ms: i64,
    pub tool: String,
    /// The command, path or URL the action was about (or its input as JSON), at most 200
    /// characters; may hold any character (escape it before printing to a terminal).
    pub summary: String,
    pub was: &'static str,
    pub was_rule: Option<String>,
    pub now: &'static str,
    pub now_rule: Option<String>,
    pub now_reason: String,
}

/// Actions that would now get one effect they did not get before.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Change {
    pub count: u64,
    pub examples: Vec<ReplayExample>,
}

/// What replaying a candidate policy over the ledger found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplayReport {
    /// Actions evaluated (those the rules decided; failed checks are counted apart).
    pub replayed: u64,
    /// Actions whose check had failed (`decided_by: "error"`): not replayed.
    pub skipped_errors: u64,
    /// `matrix[was][now]`: how many actions went from the recorded effect to the new one.
    pub matrix: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Allowed now, paused or rejected before: the changes to read first.
    pub newly_allowed: Change,
    pub newly_paused: Change,
    pub newly_rejected: Change,
}

impl ReplayReport {
    /// Actions whose effect changes.
    pub fn changed(&self) -> u64 {
        self.newly_allowed.count + self.newly_paused.count + self.newly_rejected.count
    }
}

/// Evaluates recorded actions under a candidate policy, one at a time.
pub struct Replay<'a> {
    store: &'a PolicyStore,
    policy: Arc<Policy>,
    examples: usize,
    report: ReplayReport,
}

impl<'a> Replay<'a> {
    /// `store` supplies self-protection (and its path resolution); `policy` is the candidate.
    pub fn new(store: &'a PolicyStore, policy: Arc<Policy>, examples: usize) -> Replay<'a> {
        Replay {
            store,
            policy,
            examples,
            report: ReplayReport::default(),
        }
    }

    pub fn add(&mut self, action: &RecordedAction) {
        let was = match action.effect {
            RecordedEffect::Error => {
                self.report.skipped_errors += 1;
                return;
            }
            other => other.as_str(),
        };
        let evaluation = self.store.evaluate(
            &self.policy,
            &ActionRef {
                tool: &action.tool,
                input: &action.input,
                session_id: action.session_id.as_deref(),
                agent: action.agent.as_deref(),
                cwd: action.cwd.as_deref(),
            },
        );
        // In observe mode the candidate allows everything and says what it would have done:
        // replay compares what its rules decide.
        let now = evaluation.observed.unwrap_or(evaluation.effect).as_str();
        self.report.replayed += 1;
        *self
            .report
            .matrix
            .entry(was)
            .or_default()
            .entry(now)
            .or_default() += 1;
        if was == now {
            return;
        }
        let change = match evaluation.observed.unwrap_or(evaluation.effect) {
            Effect::Allow => &mut self.report.newly_allowed,
            Effect::Pause => &mut self.report.newly_paused,
            Effect::Reject => &mut self.report.newly_rejected,
        };
        change.count += 1;
        if change.examples.len() < self.examples {
            change.examples.push(ReplayExample {
                action_id: action.id.clone(),
                created_at_ms: action.created_at_ms,
                tool: action.tool.clone(),
                summary: summary(action),
                was,
                was_rule: action.rule_id.clone(),
                now,
                now_rule: evaluation.rule_id.as_deref().map(str::to_owned),
                now_reason: evaluation.reason.to_string(),
            });
        }
    }

    pub fn finish(self) -> ReplayReport {
        self.report
    }
}

/// What the action was about, in a line: a shell command, a path, a URL, or the input as JSON.
fn summary(action: &RecordedAction) -> String {
    const MAX: usize = 200;
    let text = [
        "command",
        "file_path",
        "path",
        "notebook_path",
        "url",
        "pattern",
    ]
    .iter()
    .find_map(|key| action.input.get(*key).and_then(|v| v.as_str()))
    .map(str::to_owned)
    .unwrap_or_else(|| serde_json::Value::Object(action.input.clone()).to_string());
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_store::PolicySource;
    use serde_json::json;

    fn recorded(id: &str, command: &str, effect: RecordedEffect) -> RecordedAction {
        RecordedAction {
            id: id.into(),
            created_at_ms: 1,
            tool: "Bash".into(),
            input: json!({ "command": command }).as_object().unwrap().clone(),
            session_id: None,
            agent: None,
            cwd: Some("/tmp".into()),
            effect,
            rule_id: None,
        }
    }

    fn policy(toml: &str) -> Arc<Policy> {
        Arc::new(Policy::from_toml(toml).unwrap())
    }

    #[test]
    fn counts_every_transition_and_keeps_examples_of_changes() {
        let recorded_under = policy(
            r#"
default = "pause"
[[rules]]
id = "allow-ls"
effect = "allow"
command = { program = "ls" }
"#,
        );
        let candidate = policy(
            r#"
default = "reject"
[[rules]]
id = "allow-ls-and-cat"
effect = "allow"
command = { program = ["ls", "cat"] }
"#,
        );
        let store = PolicyStore::new((*recorded_under).clone(), PolicySource::Builtin);
        let mut replay = Replay::new(&store, candidate, 1);
        for action in [
            recorded("a1", "ls", RecordedEffect::Allow),
            recorded("a2", "cat README.md", RecordedEffect::Pause),
            recorded("a3", "cat Cargo.toml", RecordedEffect::Pause),
            recorded("a4", "make", RecordedEffect::Pause),
            recorded("a5", "whatever", RecordedEffect::Error),
        ] {
            replay.add(&action);
        }
        let report = replay.finish();
        assert_eq!(report.replayed, 4);
        assert_eq!(report.skipped_errors, 1);
        assert_eq!(report.matrix["allow"]["allow"], 1);
        assert_eq!(report.matrix["pause"]["allow"], 2);
        assert_eq!(report.matrix["pause"]["reject"], 1);
        assert_eq!(report.newly_allowed.count, 2);
        assert_eq!(
            report.newly_allowed.examples.len(),
            1,
            "capped at one example"
        );
        let example = &report.newly_allowed.examples[0];
        assert_eq!(example.action_id, "a2");
        assert_eq!(example.summary, "cat README.md");
        assert_eq!(
            (example.was, example.now),
            ("pause", "allow"),
            "{example:?}"
        );
        assert_eq!(example.now_rule.as_deref(), Some("allow-ls-and-cat"));
        assert_eq!(report.newly_rejected.count, 1);
        assert_eq!(report.newly_paused.count, 0);
        assert_eq!(report.changed(), 3);
    }

    #[test]
    fn self_protection_still_applies_to_a_candidate_that_allows_everything() {
        let store = PolicyStore::new(
            Policy::from_toml("default = \"allow\"").unwrap(),
            PolicySource::Builtin,
        );
        let candidate = policy("default = \"allow\"");
        let mut replay = Replay::new(&store, candidate, 5);
        // Killing the daemon (this process) is refused whatever the policy says.
        let command = format!("kill -9 {}", std::process::id());
        replay.add(&recorded("k", &command, RecordedEffect::Reject));
        let report = replay.finish();
        assert_eq!(report.newly_allowed.count, 0, "{report:?}");
        assert_eq!(report.matrix["reject"]["reject"], 1);
    }

    #[test]
    fn a_long_input_is_summarised_in_200_characters() {
        let action = recorded("l", &"x".repeat(500), RecordedEffect::Allow);
        let text = summary(&action);
        assert_eq!(text.chars().count(), 201);
        assert!(text.ends_with('…'));
    }
}
