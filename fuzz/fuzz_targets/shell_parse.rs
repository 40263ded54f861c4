//! Fuzzes the shell parser and the builtin policy's evaluation of arbitrary command text:
//! neither may panic, an opaque command may never be allowed, and one holding a NUL is opaque.
#![no_main]

use std::sync::OnceLock;

use gatehouse_policy::{ActionRef, Effect, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let policy = POLICY.get_or_init(Policy::builtin_default);
    let text = String::from_utf8_lossy(data);
    let text_has_nul = text.contains('\0');
    let parsed = gatehouse_policy::shell::parse(&text);
    let mut input = serde_json::Map::new();
    input.insert(
        "command".into(),
        serde_json::Value::String(text.into_owned()),
    );
    let mut action = ActionRef::new("Bash", &input);
    action.cwd = Some("/home/dev/project");
    let verdict = policy.evaluate(&action);
    if parsed.is_opaque() {
        assert_ne!(verdict.effect, Effect::Allow);
    }
    // A shell would cut the command at a NUL, the parser would not: never judged by its words.
    if text_has_nul {
        assert!(parsed.is_opaque(), "a command holding a NUL is opaque");
    }
});
