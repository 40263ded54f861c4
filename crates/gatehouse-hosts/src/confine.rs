//! Confining an allowed shell call: the host is answered with the command rewritten to run
//! under `gatehouse sandbox run`, so what the rules allowed runs inside the profile the daemon
//! named.
//!
//! `<gatehouse> sandbox run --profile P --cwd CWD -- /bin/sh -c '<original command>'`, every
//! word single-quoted, so no character of the original (quotes, `$`, backticks, newlines) is
//! read by the outer shell.

use serde_json::{Map, Value};

use crate::event::ToolCall;

/// Why a call cannot be confined (and so must not be allowed as it stands).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    #[error("the host cannot rewrite this call's input, so it cannot be confined")]
    NotRewritable,
    #[error("the shell command holds a NUL byte, which no shell can take as written")]
    Nul,
    #[error("the call has no working directory to confine it to")]
    NoCwd,
}

/// `word` as one shell word, single-quoted (`'` becomes `'\''`).
pub fn shell_quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Quotes `word` only when the shell would read it as more or other than itself.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@%+,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        shell_quote(word)
    }
}

/// The confined command line for `command`.
pub fn confined_command(
    gatehouse: &str,
    profile: &str,
    cwd: &str,
    command: &str,
) -> Result<String, ConfineError> {
    if [gatehouse, profile, cwd, command]
        .iter()
        .any(|part| part.contains('\0'))
    {
        return Err(ConfineError::Nul);
    }
    Ok(format!(
        "{} sandbox run --profile {} --cwd {} -- /bin/sh -c {}",
        shell_quote(gatehouse),
        shell_quote(profile),
        shell_quote(cwd),
        shell_quote(command)
    ))
}

/// The call's input with its shell command confined, for the host's `updatedInput`.
pub fn rewrite_input(
    call: &ToolCall,
    gatehouse: &str,
    profile: &str,
) -> Result<Map<String, Value>, ConfineError> {
    let field = call
        .rewritable_shell_field
        .ok_or(ConfineError::NotRewritable)?;
    let command = call
        .input
        .get(field)
        .and_then(Value::as_str)
        .ok_or(ConfineError::NotRewritable)?;
    let cwd = call.cwd.as_deref().ok_or(ConfineError::NoCwd)?;
    let mut input = call.input.clone();
    input.insert(
        field.to_owned(),
        Value::String(confined_command(gatehouse, profile, cwd, command)?),
    );
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the quoted command through a real `sh` and returns what `printf %s` printed.
    fn through_sh(word: &str) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(word)))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_quoting_survives_a_real_shell_unchanged() {
        for word in [
            "it's",
            "'",
            "''",
            "a'\\''b",
            "$(touch /tmp/gatehouse-pwned) `id` $HOME ${X:-y}",
            "line1\nline2; rm -rf /",
            "\"double\" 'single' \\back",
            "-n",
            "",
            "ünïcødé ✓",
        ] {
            assert_eq!(through_sh(word), word, "{word:?}");
        }
    }

    #[test]
    fn the_confined_command_runs_the_original_under_sh_c() {
        let line = confined_command(
            "/opt/gh bin/gatehouse",
            "build",
            "/w d",
            "echo 'hi'; x=$(y)",
        )
        .unwrap();
        assert_eq!(
            line,
            "'/opt/gh bin/gatehouse' sandbox run --profile 'build' --cwd '/w d' -- /bin/sh -c 'echo '\\''hi'\\''; x=$(y)'"
        );
        assert_eq!(
            confined_command("g", "p", "/", "a\0b"),
            Err(ConfineError::Nul)
        );
    }

    #[test]
    fn plain_words_stay_unquoted() {
        assert_eq!(shell_word("/usr/bin/gatehouse"), "/usr/bin/gatehouse");
        assert_eq!(shell_word("/a b"), "'/a b'");
        assert_eq!(shell_word(""), "''");
    }
}
