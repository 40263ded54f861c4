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

/// One action as one line, without colour (stderr messages, logs). See [`Style::line`].
pub fn line(action: &ActionView) -> String {
    Style::plain().line(action)
}

/// How listings are printed: colour only when stdout is a terminal and `NO_COLOR` is unset
/// (<https://no-color.org>), so files, pipes and logs never receive escape codes; ages are
/// counted from `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
    now_ms: i64,
}

impl Style {
    /// The style for this process's standard output.
    pub fn stdout() -> Style {
        use std::io::IsTerminal as _;
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_colour,
            now_ms: now_ms(),
        }
    }

    /// No colour, ages counted from now.
    pub fn plain() -> Style {
        Style {
            colour: false,
            now_ms: now_ms(),
        }
    }

    #[cfg(test)]
    fn fixed(colour: bool, now_ms: i64) -> Style {
        Style { colour, now_ms }
    }

    /// The column names above [`Style::line`]'s columns.
    pub fn header(&self) -> String {
        let header = format!(
            "{:<22}  {:<20} {:>12}  {:<7} {:<8} {:<20} {}  [RULE]",
            "ID", "CREATED (UTC)", "AGE", "VERDICT", "BY", "TOOL", "COMMAND"
        );
        if self.colour {
            format!("\u{1b}[1m{header}\u{1b}[0m")
        } else {
            header
        }
    }

    /// One action: id, when it was checked and how long ago, verdict (coloured on a terminal),
    /// who decided, tool, escaped command, rule and advisory score.
    pub fn line(&self, action: &ActionView) -> String {
        let verdict = action.verdict.as_str().to_uppercase();
        let verdict = self.paint(verdict_colour(action.verdict), &format!("{verdict:<7}"));
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
            "{:<22}  {:<20} {:>12}  {} {:<8} {:<20} {}  [{}{}{}]",
            terminal_safe(&action.action_id, 64),
            timestamp(action.created_at_ms),
            age(self.now_ms, action.created_at_ms),
            verdict,
            action.decided_by.as_str(),
            terminal_safe(&action.tool, 20),
            summary(action),
            terminal_safe(action.rule_id.as_deref().unwrap_or("-"), 40),
            observed,
            score,
        )
    }

    /// How long ago the action was checked (`3 min ago`).
    pub fn age_of(&self, action: &ActionView) -> String {
        age(self.now_ms, action.created_at_ms)
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.colour && !colour.is_empty() {
            format!("\u{1b}[{colour}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }
}

/// SGR colour of a verdict: green allow, red reject, yellow pending.
fn verdict_colour(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "32",
        Verdict::Reject => "31",
        Verdict::Pending => "33",
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2026-12-03 11:27:51Z` (UTC, to the second).
pub fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// How long ago `then_ms` was, for a person: `12 s ago`, `3 min ago`, `2 h ago`, `5 d ago`.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let secs = now_ms.saturating_sub(then_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
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

    #[test]
    fn timestamps_and_ages_read_as_a_person_would() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00Z");
        // 2026-12-03 11:27:51 UTC
        assert_eq!(timestamp(1_796_297_271_000), "2026-12-03 11:27:51Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(age(10_000, 0), "10 s ago");
        assert_eq!(age(3 * 60_000 + 5_000, 0), "3 min ago");
        assert_eq!(age(2 * 3_600_000, 0), "2 h ago");
        assert_eq!(age(5 * 86_400_000, 0), "5 d ago");
        // A clock that went backwards is "0 s ago", not a negative age.
        assert_eq!(age(0, 5_000), "0 s ago");
    }

    fn pending_action() -> ActionView {
        serde_json::from_value(serde_json::json!({
            "action_id": "act_1",
            "tool": "Bash",
            "input": {"command": "git push"},
            "session_id": null,
            "agent": null,
            "tool_use_id": null,
            "cwd": null,
            "verdict": "pending",
            "decided_by": "default",
            "rule_id": null,
            "reason": "no rule",
            "created_at_ms": 1_000,
            "deadline_ms": null,
            "tier2_status": "pending",
            "tier2": null,
            "tier2_error": null,
            "disagreement": false,
            "decision": null
        }))
        .expect("an action view")
    }

    #[test]
    fn colour_only_when_asked_and_the_line_is_the_same_text() {
        let action = pending_action();
        let plain = Style::fixed(false, 181_000).line(&action);
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        assert!(plain.contains("1970-01-01 00:00:01Z"), "{plain}");
        assert!(plain.contains("3 min ago"), "{plain}");
        assert!(plain.contains("PENDING"), "{plain}");
        assert!(plain.contains("git push"), "{plain}");
        let coloured = Style::fixed(true, 181_000).line(&action);
        assert!(coloured.contains("\u{1b}[33mPENDING"), "{coloured:?}");
        assert_eq!(
            coloured.replace("\u{1b}[33m", "").replace("\u{1b}[0m", ""),
            plain
        );
        assert!(!Style::fixed(false, 0).header().contains('\u{1b}'));
    }
}
