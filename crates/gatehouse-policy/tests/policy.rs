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

fn load(source: &str) -> Policy {
    Policy::from_toml(source).unwrap_or_else(|error| panic!("{error}\n--- in ---\n{source}"))
}

fn verdict(
    policy: &Policy,
    tool: &str,
    input: Value,
    cwd: Option<&str>,
) -> (Effect, Option<String>) {
    let Value::Object(input) = input else {
        panic!("object")
    };
    let mut action = ActionRef::new(tool, &input);
    action.cwd = cwd;
    let evaluation = policy.evaluate(&action);
    (
        evaluation.effect,
        evaluation.rule_id.map(|id| id.to_string()),
    )
}

fn shell_effect(policy: &Policy, command: &str) -> Effect {
    verdict(policy, "Bash", json!({ "command": command }), Some(CWD)).0
}

/// Each case: one command condition, a command, whether the condition holds (an allow rule with
/// default pause shows it as allow vs pause).
#[test]
fn command_conditions() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"{ program = "git" }"#, "git status", true),
        (r#"{ program = "git" }"#, "/usr/bin/git status", true),
        (r#"{ program = "git" }"#, "./git status", false), // untrusted path never allowed
        (r#"{ program = "gi?" }"#, "git status", true),
        (
            r#"{ program = "git", args_prefix = ["push"] }"#,
            "git push",
            true,
        ),
        (
            r#"{ program = "git", args_prefix = ["push"] }"#,
            "git -C x push",
            true,
        ),
        (
            r#"{ program = "git", args_prefix = ["push"] }"#,
            "git status push",
            false,
        ),
        (
            r#"{ program = "git", args_prefix = ["{status,diff}"] }"#,
            "git diff --stat",
            true,
        ),
        (
            r#"{ program = "rm", has_flag = ["--recursive"] }"#,
            "rm -fr x",
            true,
        ),
        (
            r#"{ program = "rm", has_flag = ["--recursive"] }"#,
            "rm -f x",
            false,
        ),
        (
            r#"{ program = "rm", has_all_flags = ["--recursive", "--force"] }"#,
            "rm -r -f x",
            true,
        ),
        (
            r#"{ program = "rm", has_all_flags = ["--recursive", "--force"] }"#,
            "rm -r x",
            false,
        ),
        (
            r#"{ program = "curl", has_flag = ["--data"] }"#,
            "curl --data-binary @f u",
            true,
        ),
        (r#"{ arg = ["*.key"] }"#, "cat a b/c.key", true),
        (r#"{ arg = ["*.key"] }"#, "cat a b/c.pem", false),
        (
            r#"{ args_all = ["target", "dist"] }"#,
            "rm -rf target dist/",
            true,
        ),
        (
            r#"{ args_all = ["target", "dist"] }"#,
            "rm -rf target src",
            false,
        ),
        (r#"{ args_within = "$CWD" }"#, "cat src/a ./b", true),
        (r#"{ args_within = "$CWD" }"#, "cat ../x", false),
        (
            r#"{ args_within = "$CWD" }"#,
            "cat /home/dev/project/x",
            true,
        ),
        (r#"{ args_within = ["$CWD", "/tmp"] }"#, "cat /tmp/x", true),
        (r#"{ args_within = "$CWD" }"#, "cat ~/x", false),
        (r#"{ args_within = "$CWD" }"#, "cat \"$F\"", false), // not static
        (
            r#"{ args_within = "$CWD", dynamic = true }"#,
            "cat \"$F\"",
            false,
        ), // unknown path
        (
            r#"{ program = "echo", dynamic = true }"#,
            "echo \"$F\"",
            true,
        ),
        (r#"{ args_outside = "$CWD" }"#, "cat x /etc/passwd", true),
        (r#"{ args_outside = "$CWD" }"#, "cat x y", false),
        (r#"{ writes = ["*.log"] }"#, "make > build.log", true),
        (r#"{ writes = ["*.log"] }"#, "make < build.log", false),
        (r#"{ reads = ["*.log"] }"#, "wc < build.log", true),
        (
            r#"{ redirects_outside = ["$CWD"] }"#,
            "echo x > /etc/x",
            true,
        ),
        (r#"{ redirects_outside = ["$CWD"] }"#, "echo x > out", false),
    ];
    for (condition, command, holds) in cases {
        let policy = load(&format!(
            "[[rules]]\nid = \"r\"\neffect = \"allow\"\ncommand = {condition}\n"
        ));
        let expected = if *holds { Effect::Allow } else { Effect::Pause };
        assert_eq!(
            shell_effect(&policy, command),
            expected,
            "{condition} on {command}"
        );
    }
}

#[test]
fn compound_commands_take_the_most_restrictive_verdict() {
    let policy = load(
        r#"
        [[rules]]
        id = "allow-ls"
        effect = "allow"
        command = { program = "ls" }

        [[rules]]
        id = "allow-git"
        effect = "allow"
        command = { program = "git", args_prefix = ["status"] }

        [[rules]]
        id = "pause-curl"
        effect = "pause"
        command = { program = "curl" }

        [[rules]]
        id = "no-force-push"
        effect = "reject"
        command = { program = "git", args_prefix = ["push"], has_flag = ["--force"] }
        "#,
    );
    let cases = [
        ("ls && git status", Effect::Allow, Some("allow-ls")),
        ("ls; git log", Effect::Pause, None),
        ("ls | curl x", Effect::Pause, Some("pause-curl")),
        (
            "ls; git push -f; curl x",
            Effect::Reject,
            Some("no-force-push"),
        ),
        (
            "echo $(git push --force)",
            Effect::Reject,
            Some("no-force-push"),
        ),
        ("ls $(eval x)", Effect::Pause, Some("builtin:opaque")),
        ("", Effect::Pause, None),
    ];
    for (command, effect, rule) in cases {
        assert_eq!(
            verdict(&policy, "Bash", json!({ "command": command }), Some(CWD)),
            (effect, rule.map(str::to_owned)),
            "{command}"
        );
    }
}

#[test]
fn opaque_commands_are_never_allowed_even_by_whole_action_rules() {
    let policy = load(
        r#"
        opaque = "reject"
        [[rules]]
        id = "allow-all-bash"
        effect = "allow"
        tool = "Bash"
        "#,
    );
    assert_eq!(shell_effect(&policy, "ls -la"), Effect::Allow);
    assert_eq!(shell_effect(&policy, "curl x | sh"), Effect::Reject);
    assert_eq!(shell_effect(&policy, "$X"), Effect::Reject);
    let error = Policy::from_toml("opaque = \"allow\"\n").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`opaque` must be `pause` or `reject`"),
        "{error}"
    );
}

#[test]
fn inputs_over_the_cap_are_never_allowed() {
    let policy = load(
        r#"
        max_input_bytes = 100
        [[rules]]
        id = "allow-echo"
        effect = "allow"
        command = { program = "echo" }
        [[rules]]
        id = "allow-write"
        effect = "allow"
        tool = "Write"
        "#,
    );
    assert_eq!(shell_effect(&policy, "echo hi"), Effect::Allow);
    let long = format!("echo {}", "a".repeat(200));
    assert_eq!(
        verdict(&policy, "Bash", json!({ "command": long }), None),
        (Effect::Pause, Some("builtin:input-too-long".to_owned()))
    );
    let big = json!({ "file_path": "x", "content": "b".repeat(200) });
    assert_eq!(verdict(&policy, "Write", big, None).0, Effect::Pause);
    // The default cap is 64 KiB.
    let default = Policy::builtin_default();
    let huge = format!("ls {}", "a ".repeat(40 * 1024));
    assert_eq!(shell_effect(&default, &huge), Effect::Pause);
    assert!(Policy::from_toml("max_input_bytes = 0\n").is_err());
}

#[test]
fn shell_tools_and_pointers_are_configurable() {
    let policy = load(
        r#"
        [shell]
        tools = ["run_*"]
        pointer = "/cmd"

        [[rules]]
        id = "allow-ls"
        effect = "allow"
        command = { program = "ls" }

        [[rules]]
        id = "allow-runner-ls"
        effect = "allow"
        tool = "runner"
        command = { program = "ls" }

        [[rules]]
        id = "allow-script-ls"
        effect = "allow"
        tool = "mcp__ci__exec"
        command = { pointer = "/script", program = "ls" }
        "#,
    );
    assert_eq!(
        verdict(&policy, "run_cmd", json!({"cmd": "ls"}), None).0,
        Effect::Allow
    );
    assert_eq!(
        verdict(&policy, "run_cmd", json!({"cmd": "ls; rm x"}), None).0,
        Effect::Pause
    );
    assert_eq!(
        verdict(&policy, "Bash", json!({"command": "ls"}), None).0,
        Effect::Pause
    );
    // A command rule naming its own tool reads the policy's pointer from that tool's input.
    assert_eq!(
        verdict(&policy, "runner", json!({"cmd": "ls"}), None).0,
        Effect::Allow
    );
    assert_eq!(
        verdict(&policy, "runner", json!({"cmd": "ls; $x"}), None).0,
        Effect::Pause
    );
    assert_eq!(
        verdict(&policy, "mcp__ci__exec", json!({"script": "ls"}), None).0,
        Effect::Allow
    );
    assert_eq!(
        verdict(
            &policy,
            "mcp__ci__exec",
            json!({"script": "ls; eval x"}),
            None
        )
        .0,
        Effect::Pause
    );
}

#[test]
fn command_condition_mistakes_are_reported_with_positions() {
    let source = r#"[[rules]]
id = "r"
effect = "reject"
command = { program = [], has_flag = "force", args_within = "relative", colour = 1, dynamic = "yes" }
"#;
    let error = Policy::from_toml(source).unwrap_err();
    let messages: Vec<String> = error
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    let text = messages.join("\n");
    for needle in [
        "`program` is an empty list",
        "flag `force` must start with `-`",
        "`relative` is not a root",
        "unknown key `colour` in a command condition",
        "`dynamic` must be a boolean",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(messages.iter().all(|m| m.starts_with("4:")), "{text}");
    let error =
        Policy::from_toml("[[rules]]\nid = \"builtin:x\"\neffect = \"allow\"\n").unwrap_err();
    assert!(error.to_string().contains("must not start with `builtin:`"));
}

/// A resolver that knows one symlink: /home/dev/project/link -> /home/dev/.ssh
struct OneLink;

impl gatehouse_policy::PathResolver for OneLink {
    fn canonicalize(&self, path: &std::path::Path) -> Option<std::path::PathBuf> {
        let text = path.to_str()?;
        text.strip_prefix("/home/dev/project/link")
            .map(|rest| std::path::PathBuf::from(format!("/home/dev/.ssh{rest}")))
    }
}

#[test]
fn symlinks_resolved_by_the_caller_are_judged_by_where_they_lead() {
    let policy = Policy::builtin_default();
    let input = bash("cat link/id_rsa");
    let mut action = ActionRef::new("Bash", &input);
    action.cwd = Some(CWD);
    assert_eq!(policy.evaluate(&action).effect, Effect::Allow);
    assert_eq!(
        policy.evaluate_with(&action, &OneLink).effect,
        Effect::Reject
    );
}

mod properties {
    use gatehouse_policy::shell::parse;
    use proptest::prelude::*;

    use super::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("rm".to_owned()),
            Just("-rf".to_owned()),
            Just("-r".to_owned()),
            Just("--force".to_owned()),
            Just("~".to_owned()),
            Just("/".to_owned()),
            Just("git".to_owned()),
            Just("push".to_owned()),
            Just("-f".to_owned()),
            Just("sudo".to_owned()),
            Just("ls".to_owned()),
            Just("'a b'".to_owned()),
            Just("\"$HOME\"".to_owned()),
            Just("$(ls)".to_owned()),
            Just("|".to_owned()),
            Just(";".to_owned()),
            Just("&&".to_owned()),
            "[a-z./~-]{1,6}",
        ]
    }

    fn command_line() -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 1..8).prop_map(|words| words.join(" "))
    }

    /// Renders what the parser extracted back into shell text.
    fn render(line: &str) -> Option<String> {
        let parsed = parse(line);
        if parsed.is_opaque() {
            return None;
        }
        let commands: Option<Vec<String>> = parsed
            .commands
            .iter()
            .map(|c| {
                let mut words = vec![c.program.clone()];
                for w in &c.words {
                    let text = w.text.as_deref()?;
                    if !text
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-_./~=:@+,".contains(ch))
                    {
                        return None;
                    }
                    words.push(text.to_owned());
                }
                Some(words.join(" "))
            })
            .collect();
        commands.map(|c| c.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Parsing is deterministic, and normalising already-normalised commands changes nothing.
        #[test]
        fn normalisation_is_stable(line in command_line()) {
            prop_assert_eq!(parse(&line), parse(&line));
            if let Some(once) = render(&line) {
                let twice = render(&once);
                prop_assert_eq!(Some(once), twice);
            }
        }

        /// The parser and the loader never panic, whatever they are given (a smoke run of what
        /// the fuzz targets in fuzz/ explore further).
        #[test]
        fn parsing_and_loading_never_panic(text in "\\PC{0,120}", bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&text);
            let _ = parse(&String::from_utf8_lossy(&bytes));
            let _ = Policy::from_toml(&text);
            let _ = super::decide(&Policy::builtin_default(), &text);
        }

        /// Adding an allow rule never turns a rejected action into an allowed one.
        #[test]
        fn an_allow_rule_never_overrides_a_reject(line in command_line(), program in "[a-z]{1,4}|rm|git|ls") {
            let base = Policy::builtin_default();
            let extended = load(&format!(
                "include = [\"builtin:developer\"]\n[[rules]]\nid = \"extra\"\neffect = \"allow\"\ncommand = {{ program = \"{program}\", dynamic = true }}\n[[rules]]\nid = \"extra-bash\"\neffect = \"allow\"\ntool = \"Bash\"\n"
            ));
            let before = super::decide(&base, &line);
            let after = super::decide(&extended, &line);
            if before.effect == Effect::Reject {
                prop_assert_eq!(after.effect, Effect::Reject, "{}", line);
            }
            if parse(&line).is_opaque() {
                prop_assert_ne!(after.effect, Effect::Allow, "{}", line);
            }
        }
    }
}
