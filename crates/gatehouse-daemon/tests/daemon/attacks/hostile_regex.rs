//! Hostile regexes in a policy: catastrophic-backtracking shapes, huge repetition counts and
//! over-long patterns. Patterns that would compile too large are refused at load with a
//! diagnostic naming their line; the rest run in time linear in the input (the `regex` crate has
//! no backtracking), so a 100 KB hostile input is judged like any other.

use gatehouse_policy::Policy;
use reqwest::StatusCode;
use serde_json::json;

use crate::boundary::*;
use crate::support::Setup;

/// A policy whose one rule rejects a Bash command matching `pattern`.
fn policy_with(pattern: &str) -> String {
    format!(
        r#"default = "pause"

[[rules]]
id = "hostile"
effect = "reject"
tool = "Bash"
[[rules.args]]
pointer = "/command"
regex = '''{pattern}'''
"#
    )
}

#[test]
fn patterns_that_compile_too_large_are_refused_at_load_naming_their_line() {
    let too_large = [
        ("nested huge repetition", "a{100000}{100000}".to_owned()),
        ("huge repetition", "(?:a|b){1000000}".to_owned()),
        ("huge class repetition", r"\w{100000}".to_owned()),
        ("over-long pattern", "(?:ab|cd)".repeat(200_000)),
    ];
    for (case, pattern) in too_large {
        let error = Policy::from_toml(&policy_with(&pattern)).expect_err(case);
        let diagnostic = error.diagnostics.first().expect("a diagnostic");
        assert_eq!(diagnostic.line, 9, "{case}: {diagnostic}");
        assert!(
            diagnostic.message.contains("regex") || diagnostic.message.contains("size"),
            "{case}: {}",
            diagnostic.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catastrophic_backtracking_shapes_judge_a_100_kb_input_correctly() {
    for pattern in ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^(.*a){20}$"] {
        let daemon = Setup {
            policy: policy_with(pattern),
            ..Setup::default()
        }
        .start()
        .await;
        let matching = "a".repeat(100_000);
        // The classic input that makes a backtracking engine explore exponentially many paths.
        let near_miss = format!("{}!", "a".repeat(100_000));
        let check =
            |command: String| json!({"tool": "Bash", "input": {"command": command}, "wait_ms": 0});
        let (status, reply) = daemon.check(check(matching)).await;
        assert_eq!(status, StatusCode::OK, "{pattern}: {reply}");
        assert_eq!(reply["verdict"], "reject", "{pattern} matches");
        assert_eq!(reply["rule_id"], "hostile");
        let (status, reply) = daemon.check(check(near_miss)).await;
        assert_eq!(status, StatusCode::OK, "{pattern}: {reply}");
        assert_eq!(
            reply["verdict"], "pending",
            "{pattern} does not match: the default"
        );
        assert_eq!(allowed_actions(&daemon), 0);
    }
}
