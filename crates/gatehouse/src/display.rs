//! Printing actions for a terminal: one line each, with control characters escaped so an
//! action's input cannot move the cursor, recolour the screen or fake another line.

use gatehouse_protocol::{ActionView, Verdict};

/// Escapes control characters (newlines, ANSI escapes, …) and truncates to `max` characters.
pub fn terminal_safe(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A one-line summary of what the action would do: a shell command, a path, or its input.
pub fn summary(action: &ActionView) -> String {
    let input = &action.input;
    let text = ["command", "file_path", "path", "url"]
        .iter()
        .find_map(|key| input.get(key).and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| input.to_string());
    terminal_safe(&text, 100)
}

pub fn line(action: &ActionView) -> String {
    let verdict = match (action.verdict, &action.decision) {
        (Verdict::Pending, _) => "PENDING".to_owned(),
        (v, _) => v.as_str().to_uppercase(),
    };
    let score = action
        .tier2
        .as_ref()
        .map(|t| format!(" score={:.2}", t.score))
        .unwrap_or_default();
    format!(
        "{}  {:<7} {:<8} {:<20} {}  [{}{}]",
        action.action_id,
        verdict,
        action.decided_by.as_str(),
        terminal_safe(&action.tool, 20),
        summary(action),
        terminal_safe(action.rule_id.as_deref().unwrap_or("-"), 40),
        score,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(terminal_safe("ls\n\u{1b}[31mrm", 100), "ls\\n\\u{1b}[31mrm");
        assert_eq!(terminal_safe("abc", 2), "ab…");
        assert_eq!(terminal_safe("a\u{202e}b", 10), "a\\u{202e}b");
    }
}
