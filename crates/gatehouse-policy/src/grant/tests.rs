//! Grants under builtin:developer and the built-in self-protection: what is offered, what is
//! never offered (one test per class), and that a grant only ever turns a pause into an allow.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::*;
use crate::command::NoResolver;
use crate::protect::ProtectedSet;

const HOME: &str = "/home/dev";
const PROJECT: &str = "/home/dev/proj";

fn protection() -> SelfProtection {
    let set = ProtectedSet {
        data_dir: PathBuf::from("/home/dev/.local/share/gatehouse"),
        home: Some(PathBuf::from(HOME)),
        ..ProtectedSet::default()
    };
    SelfProtection::new(&set, &NoResolver)
}

fn input(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn action<'a>(tool: &'a str, input: &'a Map<String, Value>, session: &'a str) -> ActionRef<'a> {
    ActionRef {
        tool,
        input,
        session_id: Some(session),
        agent: None,
        cwd: Some(PROJECT),
    }
}

fn known(_: &str) -> bool {
    true
}

fn never_seen(_: &str) -> bool {
    false
}

fn offer(
    tool: &str,
    value: Value,
    known_host: &dyn Fn(&str) -> bool,
) -> Result<Proposal, Ineligible> {
    let policy = Policy::builtin_default();
    let input = input(value);
    propose(
        &policy,
        &protection(),
        &action(tool, &input, "s1"),
        &NoResolver,
        known_host,
    )
}

fn bash(command: &str) -> Value {
    json!({ "command": command })
}

fn grant(id: &str, rules: Vec<Map<String, Value>>, scope: GrantScope, hosts: &[&str]) -> GrantSpec {
    GrantSpec {
        id: id.into(),
        rules,
        scope,
        expires_at_ms: None,
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
    }
}

fn set(specs: &[GrantSpec]) -> GrantSet {
    let (set, errors) = GrantSet::compile(specs);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn decide(grants: &GrantSet, tool: &str, value: Value, session: &str, now_ms: i64) -> Evaluation {
    let policy = Policy::builtin_default();
    let input = input(value);
    evaluate(
        &policy,
        &protection(),
        grants,
        &action(tool, &input, session),
        &NoResolver,
        now_ms,
    )
}

fn rule(value: Value) -> Map<String, Value> {
    input(value)
}

#[test]
fn a_proposal_is_the_program_subcommand_and_options_and_allows_only_what_is_similar() {
    let proposal = offer("Bash", bash("docker ps -a"), &known).unwrap();
    assert_eq!(proposal.rules.len(), 1);
    let command = &proposal.rules[0]["command"];
    assert_eq!(command["program"], "docker");
    assert_eq!(command["args_prefix"], json!(["ps"]));
    assert!(
        command["has_all_flags"]
            .as_array()
            .is_some_and(|f| f.len() == 1)
    );
    assert!(
        proposal.toml.contains("effect = \"allow\""),
        "{}",
        proposal.toml
    );
    assert_eq!(
        proposal.scopes,
        vec![
            GrantScope::Session {
                session_id: "s1".into()
            },
            GrantScope::Project {
                root: PROJECT.into()
            },
            GrantScope::Everywhere
        ]
    );
    let grants = set(&[grant("g1", proposal.rules, GrantScope::Everywhere, &[])]);
    let allowed = decide(&grants, "Bash", bash("docker ps -a"), "s2", 0);
    assert_eq!(allowed.effect, Effect::Allow);
    assert_eq!(allowed.rule_id.as_deref(), Some("grant:g1"));
    assert_eq!(granted_by(allowed.rule_id.as_deref()), Some("g1"));
    assert!(allowed.reason.contains("g1"), "{}", allowed.reason);
    // Unrelated actions still pause: another subcommand, the same without the option.
    assert_eq!(
        decide(&grants, "Bash", bash("docker images"), "s2", 0).effect,
        Effect::Pause
    );
    assert_eq!(
        decide(&grants, "Bash", bash("docker ps"), "s2", 0).effect,
        Effect::Pause
    );
}

#[test]
fn paths_outside_the_project_are_granted_exactly() {
    let proposal = offer("Bash", bash("du -sh /var/log"), &known).unwrap();
    assert_eq!(proposal.rules[0]["path"], json!({ "glob": ["/var/log"] }));
    let grants = set(&[grant("g", proposal.rules, GrantScope::Everywhere, &[])]);
    assert_eq!(
        decide(&grants, "Bash", bash("du -sh /var/log"), "s", 0).effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&grants, "Bash", bash("du -sh /var/lib"), "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn an_mcp_tool_is_granted_with_its_arguments() {
    let args = json!({ "repo": "acme/site", "title": "Typo" });
    let proposal = offer("mcp__github__create_issue", args.clone(), &known).unwrap();
    let grants = set(&[grant("g", proposal.rules, GrantScope::Everywhere, &[])]);
    assert_eq!(
        decide(&grants, "mcp__github__create_issue", args, "s", 0).effect,
        Effect::Allow
    );
    let other = json!({ "repo": "acme/bank", "title": "Typo" });
    assert_eq!(
        decide(&grants, "mcp__github__create_issue", other, "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn never_offered_when_a_reject_rule_decided() {
    let err = offer("Bash", bash("git push --force origin main"), &known).unwrap_err();
    assert!(matches!(err, Ineligible::Rejected { .. }), "{err:?}");
    // And a grant written to cover everything does not override it.
    let grants = set(&[grant(
        "all",
        vec![rule(json!({ "tool": "Bash" }))],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_eq!(
        decide(
            &grants,
            "Bash",
            bash("git push --force origin main"),
            "s",
            0
        )
        .effect,
        Effect::Reject
    );
}

#[test]
fn never_offered_when_self_protection_touched_it() {
    let token = json!({ "file_path": "/home/dev/.local/share/gatehouse/approver.token" });
    let err = offer("Read", token.clone(), &known).unwrap_err();
    assert!(matches!(err, Ineligible::SelfProtection { .. }), "{err:?}");
    let grants = set(&[grant(
        "all",
        vec![rule(json!({ "tool": "Read" }))],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_ne!(decide(&grants, "Read", token, "s", 0).effect, Effect::Allow);
}

#[test]
fn never_offered_for_secrets() {
    let env = json!({ "file_path": "/home/dev/proj/.env" });
    let err = offer("Read", env.clone(), &known).unwrap_err();
    assert!(matches!(err, Ineligible::Secrets { .. }), "{err:?}");
    let grants = set(&[grant(
        "all",
        vec![rule(json!({ "tool": "Read" }))],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_eq!(decide(&grants, "Read", env, "s", 0).effect, Effect::Pause);
}

#[test]
fn never_offered_for_persistence() {
    let envrc = json!({ "file_path": "/home/dev/proj/.envrc", "content": "export X=1" });
    let err = offer("Write", envrc.clone(), &known).unwrap_err();
    assert!(matches!(err, Ineligible::Persistence { .. }), "{err:?}");
    let grants = set(&[grant(
        "all",
        vec![rule(json!({ "tool": "Write" }))],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_eq!(
        decide(&grants, "Write", envrc, "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn never_offered_for_egress_to_a_new_host_and_granted_hosts_bind() {
    let fetch = bash("curl https://example.com/x");
    let err = offer("Bash", fetch.clone(), &never_seen).unwrap_err();
    assert_eq!(
        err,
        Ineligible::NewHost {
            host: "example.com".into()
        }
    );
    let proposal = offer("Bash", fetch.clone(), &known).unwrap();
    assert_eq!(proposal.hosts, vec!["example.com".to_owned()]);
    assert_eq!(proposal.rules[0]["host"], json!(["example.com"]));
    let grants = set(&[grant(
        "g",
        proposal.rules,
        GrantScope::Everywhere,
        &["example.com"],
    )]);
    assert_eq!(decide(&grants, "Bash", fetch, "s", 0).effect, Effect::Allow);
    // A grant never lets an action reach a host it was not made for, however its rules read.
    let broad = set(&[grant(
        "broad",
        vec![rule(
            json!({ "tool": "Bash", "command": { "program": "curl" } }),
        )],
        GrantScope::Everywhere,
        &["example.com"],
    )]);
    assert_eq!(
        decide(&broad, "Bash", bash("curl https://evil.io/x"), "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn not_fully_understood_still_pauses_under_any_grant() {
    let err = offer("Bash", bash("docker run alpine"), &known).unwrap_err();
    assert!(matches!(err, Ineligible::NotUnderstood { .. }), "{err:?}");
    let grants = set(&[grant(
        "docker",
        vec![rule(
            json!({ "tool": "Bash", "command": { "program": "docker" } }),
        )],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_eq!(
        decide(&grants, "Bash", bash("docker ps"), "s", 0).effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&grants, "Bash", bash("docker run alpine"), "s", 0).effect,
        Effect::Pause
    );
    assert_eq!(
        decide(&grants, "Bash", bash("docker ps $(id)"), "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn a_command_allowed_only_confined_is_never_granted_unconfined() {
    let err = offer("Bash", bash("cargo build && docker ps"), &known).unwrap_err();
    assert_eq!(err, Ineligible::NeedsConfinement);
    let grants = set(&[grant(
        "both",
        vec![
            rule(json!({ "tool": "Bash", "command": { "program": "cargo" } })),
            rule(json!({ "tool": "Bash", "command": { "program": "docker" } })),
        ],
        GrantScope::Everywhere,
        &[],
    )]);
    assert_eq!(
        decide(&grants, "Bash", bash("cargo build && docker ps"), "s", 0).effect,
        Effect::Pause
    );
}

#[test]
fn scope_and_expiry_bound_a_grant() {
    let rules = vec![rule(
        json!({ "tool": "Bash", "command": { "program": "docker", "args_prefix": ["ps"] } }),
    )];
    let session = set(&[grant(
        "s",
        rules.clone(),
        GrantScope::Session {
            session_id: "s1".into(),
        },
        &[],
    )]);
    assert_eq!(
        decide(&session, "Bash", bash("docker ps"), "s1", 0).effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&session, "Bash", bash("docker ps"), "s2", 0).effect,
        Effect::Pause
    );
    let elsewhere = set(&[grant(
        "p",
        rules.clone(),
        GrantScope::Project {
            root: "/home/dev/other".into(),
        },
        &[],
    )]);
    assert_eq!(
        decide(&elsewhere, "Bash", bash("docker ps"), "s1", 0).effect,
        Effect::Pause
    );
    let project = set(&[grant(
        "p",
        rules.clone(),
        GrantScope::Project {
            root: "/home/dev".into(),
        },
        &[],
    )]);
    assert_eq!(
        decide(&project, "Bash", bash("docker ps"), "s1", 0).effect,
        Effect::Allow
    );
    let mut expiring = grant("e", rules, GrantScope::Everywhere, &[]);
    expiring.expires_at_ms = Some(1_000);
    let expiring = set(&[expiring]);
    assert_eq!(
        decide(&expiring, "Bash", bash("docker ps"), "s1", 999).effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&expiring, "Bash", bash("docker ps"), "s1", 1_000).effect,
        Effect::Pause
    );
}

#[test]
fn a_grant_never_touches_what_the_rules_already_decided() {
    let grants = set(&[grant(
        "all",
        vec![rule(json!({ "tool": "Bash" }))],
        GrantScope::Everywhere,
        &[],
    )]);
    let allowed = decide(&grants, "Bash", bash("git log --oneline"), "s", 0);
    assert_eq!(allowed.rule_id.as_deref(), Some("allow-git"));
    let confined = decide(&grants, "Bash", bash("cargo build"), "s", 0);
    assert_eq!(confined.effect, Effect::Allow);
    assert!(confined.confine.is_some(), "the rule's confinement stands");
}

#[test]
fn grant_rules_are_checked_before_they_are_compiled() {
    let no_tool = compile_rules("g", &[rule(json!({ "command": { "program": "ls" } }))]);
    assert_eq!(no_tool.unwrap_err(), GrantError::NoTool { index: 0 });
    let effect = compile_rules("g", &[rule(json!({ "tool": "Bash", "effect": "reject" }))]);
    assert!(matches!(effect, Err(GrantError::ForbiddenKey { ref key, .. }) if key == "effect"));
    let null = compile_rules("g", &[rule(json!({ "tool": null }))]);
    assert!(matches!(null, Err(GrantError::NotToml { .. })), "{null:?}");
    let bad = compile_rules(
        "g",
        &[rule(
            json!({ "tool": "Bash", "command": { "programme": "ls" } }),
        )],
    );
    assert!(
        matches!(bad, Err(GrantError::Invalid(ref m)) if m.contains("programme")),
        "{bad:?}"
    );
    assert_eq!(compile_rules("g", &[]).unwrap_err(), GrantError::NoRules);
}
