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
        if must_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters a terminal acts on or that reorder or hide text: C0 and C1 controls (newlines,
/// `\r`, ESC starting ANSI/OSC sequences, the 8-bit CSI U+009B), DEL, zero-width and bidi
/// formatting characters (U+202E makes `exe.pdf` read `fdp.exe`), line and paragraph separators
/// and the byte-order mark; and the other invisible characters the dashboard escapes too (soft
/// hyphen, grapheme joiner, Hangul and Khmer fillers, variation selectors, interlinear
/// annotation marks, tag characters).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
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
    // Observe mode: allowed, and what the rules would have decided.
    let observed = action
        .observed
        .map(|effect| format!(" would {}", effect.as_str()))
        .unwrap_or_default();
    format!(
        "{}  {:<7} {:<8} {:<20} {}  [{}{}{}]",
        action.action_id,
        verdict,
        action.decided_by.as_str(),
        terminal_safe(&action.tool, 20),
        summary(action),
        terminal_safe(action.rule_id.as_deref().unwrap_or("-"), 40),
        observed,
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

    /// What each attack would do to a terminal if printed raw; escaped, none reaches it.
    #[test]
    fn terminal_attacks_are_shown_as_text() {
        let attacks = [
            ("clear screen", "\u{1b}[2J"),
            (
                "OSC 8 hyperlink",
                "\u{1b}]8;;http://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\",
            ),
            ("window title", "\u{1b}]0;owned\u{7}"),
            ("8-bit CSI", "\u{9b}31m"),
            ("carriage return over the line", "rm -rf ~\rls"),
            ("fake second line", "ls\nabc  ALLOW"),
            ("bidi override", "\u{202e}fdp.exe"),
            ("bidi isolate", "\u{2067}x\u{2069}"),
            ("arabic letter mark", "\u{061c}x"),
            ("line separator", "ls\u{2028}rm"),
            ("zero-width joiner", "r\u{200d}m"),
            ("byte-order mark", "\u{feff}ls"),
            ("soft hyphen", "r\u{ad}m"),
            ("Hangul filler", "ls\u{3164}"),
            ("variation selector", "l\u{fe0f}s"),
            ("tag characters", "ls\u{e0072}\u{e006d}"),
            ("delete", "ls\u{7f}"),
            ("NUL", "ls\u{0}rm"),
        ];
        for (case, attack) in attacks {
            let shown = terminal_safe(attack, 200);
            assert!(!shown.chars().any(must_escape), "{case}: {shown:?}");
            assert!(shown.contains('\\'), "{case}: escaped visibly: {shown:?}");
        }
    }

    #[test]
    fn a_hostile_action_prints_as_one_inert_line() {
        let hostile = "ls\n\u{1b}]0;t\u{7}\u{202e}\r\u{9b}2J";
        let action: ActionView = serde_json::from_value(serde_json::json!({
            "action_id": "act_1",
            "tool": hostile,
            "input": {"command": hostile},
            "session_id": hostile,
            "agent": null,
            "tool_use_id": null,
            "cwd": null,
            "verdict": "pending",
            "decided_by": "rule",
            "rule_id": hostile,
            "reason": hostile,
            "created_at_ms": 0,
            "deadline_ms": null,
            "tier2_status": "pending",
            "tier2": null,
            "tier2_error": null,
            "disagreement": false,
            "decision": null
        }))
        .expect("an action view");
        let printed = line(&action);
        assert!(!printed.chars().any(must_escape), "{printed:?}");
        // A summary of a non-string input is its JSON, escaped the same way.
        let mut other = action.clone();
        other.input = serde_json::json!({"x": hostile});
        assert!(
            !summary(&other).chars().any(must_escape),
            "{}",
            summary(&other)
        );
    }
}
