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
        (r#"{ args_within = "$CWD" }"#, "cat \"$F\"", false), // unknown path
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
    // Reject rules: the conditions alone decide (allow rules also need the positive model; see
    // tests/grammar.rs).
    for (condition, command, holds) in cases {
        let policy = load(&format!(
            "[[rules]]\nid = \"r\"\neffect = \"reject\"\ncommand = {condition}\n"
        ));
        let expected = if *holds {
            Effect::Reject
        } else {
            Effect::Pause
        };
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

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("object expected, got {other}"),
    }
}

/// Each case: one matcher (TOML), an input, whether an allow rule holding it matches.
#[test]
fn in_numeric_and_exists_matchers() {
    let cases: &[(&str, Value, bool)] = &[
        (
            r#"{ pointer = "/env", in = ["staging", "dev"] }"#,
            json!({"env": "dev"}),
            true,
        ),
        (
            r#"{ pointer = "/env", in = ["staging", "dev"] }"#,
            json!({"env": "prod"}),
            false,
        ),
        (
            r#"{ pointer = "/n", in = [1, 2] }"#,
            json!({"n": 2.0}),
            true,
        ),
        (
            r#"{ pointer = "/n", in = [1, 2] }"#,
            json!({"n": "2"}),
            false,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": 500.01}),
            true,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": 500}),
            false,
        ),
        (
            r#"{ pointer = "/amount", ge = 500 }"#,
            json!({"amount": 500}),
            true,
        ),
        (
            r#"{ pointer = "/amount", lt = 0.5 }"#,
            json!({"amount": 0.25}),
            true,
        ),
        (
            r#"{ pointer = "/amount", le = -1 }"#,
            json!({"amount": -1}),
            true,
        ),
        // Numeric strings compare by value; anything else never matches.
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": "1200"}),
            true,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": "1.2e3"}),
            true,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": "$1200"}),
            false,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": " 1200"}),
            false,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": "0x4b0"}),
            false,
        ),
        (
            r#"{ pointer = "/amount", gt = 500 }"#,
            json!({"amount": true}),
            false,
        ),
        (r#"{ pointer = "/amount", gt = 500 }"#, json!({}), false),
        // Big integers keep every digit.
        (
            r#"{ pointer = "/n", gt = 9007199254740992 }"#,
            json!({"n": 9_007_199_254_740_993_u64}),
            true,
        ),
        (
            r#"{ pointer = "/to", exists = true }"#,
            json!({"to": null}),
            true,
        ),
        (r#"{ pointer = "/to", exists = true }"#, json!({}), false),
        (r#"{ pointer = "/to", exists = false }"#, json!({}), true),
        (
            r#"{ pointer = "/to", exists = false }"#,
            json!({"to": "x"}),
            false,
        ),
    ];
    for (matcher, input, expected) in cases {
        let policy = load(&format!(
            "[[rules]]\nid = \"r\"\neffect = \"allow\"\nargs = [{matcher}]\n"
        ));
        let got = verdict(&policy, "pay", input.clone(), None).0 == Effect::Allow;
        assert_eq!(got, *expected, "{matcher} on {input}");
    }
}

#[test]
fn new_condition_mistakes_are_reported_with_positions() {
    // (rule line, the text the problem is pinned to, message)
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"args = [{ pointer = "/a", gt = "500" }]"#,
            r#""500""#,
            "`gt` must be a number",
        ),
        (
            r#"args = [{ pointer = "/a", in = [] }]"#,
            "[]",
            "`in` must be a non-empty array",
        ),
        (
            r#"args = [{ pointer = "/a", in = "x" }]"#,
            r#""x""#,
            "`in` must be a non-empty array of values, found string",
        ),
        (
            r#"args = [{ pointer = "/a", exists = 1 }]"#,
            "1 ",
            "`exists` must be `true` or `false`",
        ),
        (
            r#"args = [{ pointer = "/a", le = nan }]"#,
            "nan",
            "`nan` and `inf`",
        ),
        (
            r#"args = [{ pointer = "/a", lt = 1, gt = 2 }]"#,
            "gt",
            "has both `lt` and `gt`",
        ),
        (
            "priority = \"high\"",
            "\"high\"",
            "`priority` must be an integer",
        ),
        (
            r#"path = { within = "project" }"#,
            r#""project""#,
            "`project` is not a root",
        ),
        (r#"path = { glob = "[" }"#, r#""[""#, "invalid glob"),
        (
            r#"path = { deep = true }"#,
            "deep",
            "unknown key `deep` in a path condition",
        ),
        (
            r#"path = {}"#,
            "{}",
            "a path condition needs `glob`, `within` or `outside`",
        ),
        (
            r#"host = ["github.com", "10.0.0.0/33"]"#,
            r#""10.0.0.0/33""#,
            "prefix length must be 0 to 32",
        ),
        (
            r#"host = ["https://github.com"]"#,
            r#""https"#,
            "is not a host",
        ),
        (
            r#"url = { scheme = 1 }"#,
            "1 ",
            "`scheme` must be a string or a non-empty array",
        ),
    ];
    for (line, at, needle) in cases {
        let source = format!("[[rules]]\nid = \"r\"\neffect = \"reject\"\n{line}\n");
        let error = Policy::from_toml(&source).unwrap_err();
        let found = error
            .diagnostics
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("{line}: {error}"));
        let column = line.find(at).unwrap() + 1;
        assert_eq!((found.line, found.column), (4, column), "{line}: {error}");
    }
    let error = Policy::from_toml("mode = \"audit\"\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 1, column 8: invalid mode `audit`; expected `enforce` or `observe`"
    );
    let error = Policy::from_toml("[paths]\npointers = [\"file\"]\n").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("line 2, column 13: pointer `file` must start with '/'"),
        "{error}"
    );
}

/// Priority orders rules within one effect: which rule is reported. It never crosses effects.
#[test]
fn priority_orders_rules_within_an_effect_only() {
    let policy = load(
        r#"
        [[rules]]
        id = "pause-network"
        effect = "pause"
        command = { program = "curl" }

        [[rules]]
        id = "pause-secrets"
        effect = "pause"
        priority = 10
        reason = "names a secret"
        command = { arg = "*/.netrc" }

        [[rules]]
        id = "allow-everything"
        effect = "allow"
        priority = 1000000
        tool = "Bash"

        [[rules]]
        id = "reject-rm"
        effect = "reject"
        priority = -5
        command = { program = "rm" }
        "#,
    );
    let cases = [
        ("curl https://x.io", Effect::Pause, "pause-network"),
        (
            "curl -K ~/.netrc https://x.io",
            Effect::Pause,
            "pause-secrets",
        ),
        // Across simple commands too: the higher-priority pause is the one reported.
        (
            "curl https://x.io; cat ~/.netrc",
            Effect::Pause,
            "pause-secrets",
        ),
        ("rm x", Effect::Reject, "reject-rm"),
        ("ls", Effect::Allow, "allow-everything"),
    ];
    for (command, effect, rule) in cases {
        let (got, id) = verdict(&policy, "Bash", json!({ "command": command }), Some(CWD));
        assert_eq!((got, id.as_deref()), (effect, Some(rule)), "{command}");
    }
}

/// The file tools' paths and the shell's file arguments alike, `~`/`cwd`/`..` resolved.
#[test]
fn path_conditions_cover_file_tools_and_shell_arguments() {
    let policy = load(
        r#"
        [[rules]]
        id = "no-keys"
        effect = "reject"
        path = { glob = ["*/.ssh/id_*", "~/.ssh/id_*"] }

        [[rules]]
        id = "edit-in-project"
        effect = "allow"
        tool = ["Write", "Edit"]
        path = { within = "cwd" }

        [[rules]]
        id = "outside-pauses"
        effect = "pause"
        tool = ["Write", "Edit"]
        path = { outside = ["cwd", "/tmp"] }

        [[rules]]
        id = "cat-in-project"
        effect = "allow"
        command = { program = "cat" }
        path = { within = "cwd" }

        [[rules]]
        id = "notebooks"
        effect = "allow"
        tool = "NotebookEdit"
        path = { glob = "/home/dev/project/notebooks/*.ipynb" }
        "#,
    );
    let cases: &[(&str, Value, Effect, Option<&str>)] = &[
        (
            "Write",
            json!({"file_path": "src/lib.rs"}),
            Effect::Allow,
            Some("edit-in-project"),
        ),
        (
            "Edit",
            json!({"file_path": "/home/dev/project/a/../b.rs"}),
            Effect::Allow,
            Some("edit-in-project"),
        ),
        (
            "Write",
            json!({"file_path": "../other/x"}),
            Effect::Pause,
            Some("outside-pauses"),
        ),
        ("Write", json!({"file_path": "/tmp/x"}), Effect::Pause, None),
        (
            "Write",
            json!({"file_path": "../.ssh/id_rsa"}),
            Effect::Reject,
            Some("no-keys"),
        ),
        (
            "Read",
            json!({"file_path": "~/.ssh/id_ed25519"}),
            Effect::Reject,
            Some("no-keys"),
        ),
        (
            "Write",
            json!({"path": "src/x"}),
            Effect::Allow,
            Some("edit-in-project"),
        ),
        ("Write", json!({"content": "no path"}), Effect::Pause, None),
        (
            "NotebookEdit",
            json!({"notebook_path": "notebooks/a.ipynb"}),
            Effect::Allow,
            Some("notebooks"),
        ),
        (
            "NotebookEdit",
            json!({"notebook_path": "notebooks/../../a.ipynb"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "cat src/a.rs README.md"}),
            Effect::Allow,
            Some("cat-in-project"),
        ),
        (
            "Bash",
            json!({"command": "cat ../../etc/passwd"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "cat < ~/.ssh/id_rsa"}),
            Effect::Reject,
            Some("no-keys"),
        ),
        (
            "Bash",
            json!({"command": "cp ../.ssh/id_rsa x"}),
            Effect::Reject,
            Some("no-keys"),
        ),
        (
            "Bash",
            json!({"command": "cat \"$F\""}),
            Effect::Pause,
            None,
        ),
    ];
    for (tool, input, effect, rule) in cases {
        let (got, id) = verdict(&policy, tool, input.clone(), Some(CWD));
        assert_eq!((got, id.as_deref()), (*effect, *rule), "{tool} {input}");
    }
}

/// Symlinks: /home/dev/project/link -> /home/dev/.ssh; /home/dev/project/gone cannot be resolved.
struct Links;

impl gatehouse_policy::PathResolver for Links {
    fn canonicalize(&self, path: &std::path::Path) -> Option<std::path::PathBuf> {
        let text = path.to_str()?;
        if text.starts_with("/home/dev/project/gone") {
            return None;
        }
        Some(std::path::PathBuf::from(
            text.replace("/home/dev/project/link", "/home/dev/.ssh"),
        ))
    }

    fn home(&self) -> Option<std::path::PathBuf> {
        Some("/home/dev".into())
    }
}

#[test]
fn path_rules_use_written_and_canonical_forms() {
    let policy = load(
        r#"
        [[rules]]
        id = "no-keys"
        effect = "reject"
        path = { glob = "~/.ssh/*" }

        [[rules]]
        id = "edit-in-project"
        effect = "allow"
        tool = "Write"
        path = { within = "cwd" }
        "#,
    );
    let decide = |path: &str, resolver: &dyn gatehouse_policy::PathResolver| {
        let input = object(json!({ "file_path": path }));
        let mut action = ActionRef::new("Write", &input);
        action.cwd = Some(CWD);
        let verdict = policy.evaluate_with(&action, resolver);
        (verdict.effect, verdict.rule_id.map(|r| r.to_string()))
    };
    // Written inside the project, canonically ~/.ssh: rejected (either form matches).
    assert_eq!(decide("link/config", &Links).0, Effect::Reject);
    assert_eq!(
        decide("link/config", &gatehouse_policy::NoResolver).0,
        Effect::Allow
    );
    // The home directory is known: /home/dev/.ssh is ~/.ssh.
    assert_eq!(decide("/home/dev/.ssh/config", &Links).0, Effect::Reject);
    // A path the resolver cannot resolve is never allowed by a path rule.
    assert_eq!(decide("gone/x", &Links), (Effect::Pause, None));
    assert_eq!(decide("src/x", &Links).0, Effect::Allow);
}

#[test]
fn host_and_url_conditions() {
    let policy = load(
        r#"
        [[rules]]
        id = "no-metadata"
        effect = "reject"
        host = ["169.254.169.254", "fd00:ec2::254", "metadata.google.internal"]

        [[rules]]
        id = "docs"
        effect = "allow"
        tool = "WebFetch"
        url = { host = ["docs.rs", "github.com"], scheme = "https" }

        [[rules]]
        id = "local-dev"
        effect = "allow"
        command = { program = "curl" }
        host = ["localhost", "127.0.0.0/8", "::1"]

        [[rules]]
        id = "ssh-internal"
        effect = "allow"
        command = { program = "ssh" }
        host = "10.0.0.0/8"
        "#,
    );
    let cases: &[(&str, Value, Effect, Option<&str>)] = &[
        (
            "WebFetch",
            json!({"url": "https://docs.rs/serde"}),
            Effect::Allow,
            Some("docs"),
        ),
        (
            "WebFetch",
            json!({"url": "https://api.github.com/x"}),
            Effect::Allow,
            Some("docs"),
        ),
        (
            "WebFetch",
            json!({"url": "https://evilgithub.com/x"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "http://docs.rs/serde"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "https://github.com@evil.io/"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "http://2852039166/latest/meta-data"}),
            Effect::Reject,
            Some("no-metadata"),
        ),
        (
            "WebFetch",
            json!({"url": "http://[::ffff:a9fe:a9fe]/"}),
            Effect::Reject,
            Some("no-metadata"),
        ),
        (
            "WebFetch",
            json!({"url": "http://0xa9.0xfe.0xa9.0xfe/"}),
            Effect::Reject,
            Some("no-metadata"),
        ),
        (
            "WebFetch",
            json!({"url": "http://Metadata.Google.Internal./"}),
            Effect::Reject,
            Some("no-metadata"),
        ),
        (
            "Bash",
            json!({"command": "curl -s http://localhost:3000/health"}),
            Effect::Allow,
            Some("local-dev"),
        ),
        (
            "Bash",
            json!({"command": "curl http://2130706433/"}),
            Effect::Allow,
            Some("local-dev"),
        ),
        (
            "Bash",
            json!({"command": "curl http://0x7f.1:8080/"}),
            Effect::Allow,
            Some("local-dev"),
        ),
        (
            "Bash",
            json!({"command": "curl http://localhost@evil.io/"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "curl http://localhost.evil.io/"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "curl http://localhost/ https://evil.io/"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "curl $TARGET"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "wget -qO- 169.254.169.254/latest"}),
            Effect::Reject,
            Some("no-metadata"),
        ),
        (
            "Bash",
            json!({"command": "ssh -i key dev@10.1.2.3 uptime"}),
            Effect::Allow,
            Some("ssh-internal"),
        ),
        (
            "Bash",
            json!({"command": "ssh dev@11.1.2.3"}),
            Effect::Pause,
            None,
        ),
    ];
    for (tool, input, effect, rule) in cases {
        let (got, id) = verdict(&policy, tool, input.clone(), Some(CWD));
        assert_eq!((got, id.as_deref()), (*effect, *rule), "{tool} {input}");
    }
    // Configurable pointers.
    let policy = load(
        "[network]\npointers = [\"/target\"]\n[[rules]]\nid = \"r\"\neffect = \"reject\"\nhost = \"evil.io\"\n",
    );
    let (got, _) = verdict(
        &policy,
        "mcp__http__get",
        json!({"target": "https://evil.io"}),
        None,
    );
    assert_eq!(got, Effect::Reject);
    let (got, _) = verdict(
        &policy,
        "mcp__http__get",
        json!({"url": "https://evil.io"}),
        None,
    );
    assert_eq!(got, Effect::Pause);
}

#[test]
fn observe_mode_allows_and_records_the_would_be_verdict() {
    let policy = load(
        "mode = \"observe\"\n[[rules]]\nid = \"no-rm\"\neffect = \"reject\"\nreason = \"deletes\"\ncommand = { program = \"rm\" }\n[[rules]]\nid = \"ls\"\neffect = \"allow\"\ncommand = { program = \"ls\" }\n",
    );
    assert!(policy.is_observe());
    let decide = |command: &str| {
        let input = bash(command);
        let mut action = ActionRef::new("Bash", &input);
        action.cwd = Some(CWD);
        policy.evaluate(&action)
    };
    let rm = decide("rm -r x");
    assert_eq!(rm.effect, Effect::Allow);
    assert_eq!(rm.observed, Some(Effect::Reject));
    assert_eq!(rm.rule_id.as_deref(), Some("no-rm"));
    assert_eq!(&*rm.reason, "observe mode: would reject: deletes");
    let ls = decide("ls");
    assert_eq!((ls.effect, ls.observed), (Effect::Allow, None));
    let other = decide("make");
    assert_eq!(
        (other.effect, other.observed),
        (Effect::Allow, Some(Effect::Pause))
    );
    // Gatehouse's own decisions are never relaxed.
    let opaque = decide("eval \"$X\"");
    assert_eq!((opaque.effect, opaque.observed), (Effect::Pause, None));
    assert_eq!(opaque.rule_id.as_deref(), Some("builtin:opaque"));
    let long = decide(&"ls ".repeat(30_000));
    assert_eq!(long.effect, Effect::Pause);
    assert_eq!(long.rule_id.as_deref(), Some("builtin:input-too-long"));

    // builtin:observe is builtin:developer, observed; a file can switch it back to enforce.
    let observe = load("include = [\"builtin:observe\"]\n");
    let enforce = load("include = [\"builtin:observe\"]\nmode = \"enforce\"\n");
    let wipe = decide_with(&observe, "rm -rf ~");
    assert_eq!(
        (wipe.effect, wipe.observed),
        (Effect::Allow, Some(Effect::Reject))
    );
    assert_eq!(
        wipe.rule_id.as_deref(),
        Some("reject-delete-outside-project")
    );
    assert_eq!(decide_with(&enforce, "rm -rf ~").effect, Effect::Reject);
    assert_eq!(decide_with(&observe, "git status").observed, None);
}

fn decide_with(policy: &Policy, command: &str) -> Evaluation {
    decide(policy, command)
}

/// `explain` gives evaluate's verdict for every corpus command, and the deciding rule is listed
/// as matched.
#[test]
fn explain_agrees_with_evaluate_across_the_corpus() {
    let policy = Policy::builtin_default();
    for (command, _) in entries(DANGEROUS).into_iter().chain(entries(BENIGN)) {
        let input = bash(&command);
        let mut action = ActionRef::new("Bash", &input);
        action.cwd = Some(CWD);
        let evaluation = policy.evaluate(&action);
        let explanation = policy.explain(&action, &gatehouse_policy::NoResolver);
        assert_eq!(explanation.verdict.effect, evaluation.effect, "{command}");
        assert_eq!(
            explanation.verdict.rule_id.as_deref(),
            evaluation.rule_id.as_deref(),
            "{command}"
        );
        assert_eq!(explanation.verdict.reason, &*evaluation.reason, "{command}");
        if let Some(id) = evaluation
            .rule_id
            .as_deref()
            .filter(|id| !id.starts_with("builtin:"))
        {
            assert!(
                explanation
                    .rules
                    .iter()
                    .any(|r| r.rule_id == id && r.matched),
                "{command}: {id} not listed as matched:\n{explanation}"
            );
        }
        // No rule listed as matched is stronger than the verdict.
        let strongest = explanation
            .rules
            .iter()
            .filter(|r| r.matched)
            .map(|r| r.effect)
            .max_by_key(|e| match e {
                Effect::Allow => 0,
                Effect::Pause => 1,
                Effect::Reject => 2,
            });
        if evaluation.effect == Effect::Allow {
            assert_eq!(strongest, Some(Effect::Allow), "{command}:\n{explanation}");
        }
    }
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
        "`dynamic` is no longer supported",
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
    // Without the resolver: a file named like a key in the project pauses; it is not rejected.
    assert_eq!(policy.evaluate(&action).effect, Effect::Pause);
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

        /// Adding an allow rule, with any priority, never turns a rejected action into an
        /// allowed one.
        #[test]
        fn an_allow_rule_never_overrides_a_reject(line in command_line(), program in "[a-z]{1,4}|rm|git|ls", priority in any::<i64>()) {
            let base = Policy::builtin_default();
            let extended = load(&format!(
                "include = [\"builtin:developer\"]\n[[rules]]\nid = \"extra\"\neffect = \"allow\"\npriority = {priority}\ncommand = {{ program = \"{program}\" }}\n[[rules]]\nid = \"extra-bash\"\neffect = \"allow\"\npriority = {priority}\ntool = \"Bash\"\n[[rules]]\nid = \"extra-path\"\neffect = \"allow\"\npriority = {priority}\npath = {{ glob = \"*\" }}\n"
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

/// builtin:developer: edits in the project and docs fetches pass; metadata, lookalike hosts and
/// credential writes do not.
#[test]
fn builtin_developer_uses_path_and_host_rules() {
    let policy = Policy::builtin_default();
    let cases: &[(&str, Value, Effect, Option<&str>)] = &[
        (
            "Write",
            json!({"file_path": "src/new.rs", "content": "x"}),
            Effect::Allow,
            Some("allow-edit-in-project"),
        ),
        (
            "Edit",
            json!({"file_path": "/home/dev/project/README.md"}),
            Effect::Allow,
            Some("allow-edit-in-project"),
        ),
        (
            "Edit",
            json!({"file_path": "/home/dev/.bashrc"}),
            Effect::Reject,
            Some("reject-edit-persistence"),
        ),
        (
            "Write",
            json!({"file_path": "../../dev/.aws/credentials"}),
            Effect::Reject,
            Some("reject-read-secret-files"),
        ),
        (
            "Write",
            json!({"file_path": "/etc/hosts"}),
            Effect::Reject,
            Some("reject-edit-persistence"),
        ),
        (
            "Write",
            json!({"file_path": "/home/dev/other/x"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "https://docs.rs/tokio", "prompt": "x"}),
            Effect::Allow,
            Some("allow-fetch-docs"),
        ),
        (
            "WebFetch",
            json!({"url": "https://raw.githubusercontent.com/a/b/main/README.md"}),
            Effect::Allow,
            Some("allow-fetch-docs"),
        ),
        (
            "WebFetch",
            json!({"url": "http://docs.rs/tokio"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "https://docs.rs.evil.example/"}),
            Effect::Pause,
            None,
        ),
        (
            "WebFetch",
            json!({"url": "http://169.254.169.254/latest/"}),
            Effect::Reject,
            Some("reject-cloud-metadata"),
        ),
        (
            "Bash",
            json!({"command": "curl -s http://localhost:8080/health"}),
            Effect::Allow,
            Some("allow-local-http"),
        ),
        (
            "Bash",
            json!({"command": "curl http://localhost@evil.example/"}),
            Effect::Pause,
            None,
        ),
        (
            "Bash",
            json!({"command": "curl -s http://[::ffff:169.254.169.254]/"}),
            Effect::Reject,
            Some("reject-cloud-metadata"),
        ),
    ];
    for (tool, input, effect, rule) in cases {
        let (got, id) = verdict(&policy, tool, input.clone(), Some(CWD));
        assert_eq!((got, id.as_deref()), (*effect, *rule), "{tool} {input}");
    }
}
