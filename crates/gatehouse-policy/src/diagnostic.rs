//! Load-time problems in a policy file, each pinned to a 1-based line and column.

use std::fmt;
use std::ops::Range;

/// One problem found while loading a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes) from the start of the line.
    pub column: usize,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Every problem found while loading a policy file; never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_lines(.diagnostics))]
pub struct PolicyError {
    /// The problems, in the order they appear in the file.
    pub diagnostics: Vec<Diagnostic>,
}

fn render_lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems as byte spans and turns them into [`Diagnostic`]s at the end.
pub(crate) struct Diagnostics<'s> {
    lines: LineIndex<'s>,
    found: Vec<(Range<usize>, String)>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Diagnostics {
            lines: LineIndex::new(source),
            found: Vec::new(),
        }
    }

    /// The 1-based line holding a byte offset, for messages that point elsewhere in the file.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.lines.position(offset).0
    }

    pub(crate) fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span, message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Sorts the problems into file order and resolves their positions.
    pub(crate) fn into_error(mut self) -> PolicyError {
        self.found.sort_by_key(|(span, _)| span.start);
        // Syntax-error recovery can report the same problem twice.
        self.found.dedup_by(|(a, a_message), (b, b_message)| {
            a.start == b.start && a_message == b_message
        });
        let lines = self.lines;
        let diagnostics = self
            .found
            .into_iter()
            .map(|(span, message)| {
                let (line, column) = lines.position(span.start);
                Diagnostic {
                    line,
                    column,
                    message: one_line(&message),
                }
            })
            .collect();
        PolicyError { diagnostics }
    }
}

/// Messages from `toml` and `regex` may span several lines; a diagnostic holds one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Byte offset to 1-based (line, column) conversion.
struct LineIndex<'s> {
    source: &'s str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(source: &'s str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { source, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = match self.source.get(start..offset) {
            Some(text) => text.chars().count(),
            None => offset - start,
        };
        (line.max(1), column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let source = "ab\n\u{e9}t\u{e9} = 1\n\nlast";
        let lines = LineIndex::new(source);
        let cases = [
            (0, (1, 1)),
            (1, (1, 2)),
            (2, (1, 3)), // the newline itself
            (3, (2, 1)),
            (source.find('t').unwrap(), (2, 2)), // after a two-byte character
            (source.find('=').unwrap(), (2, 5)),
            (source.find("\n\n").unwrap() + 1, (3, 1)),
            (source.find("last").unwrap(), (4, 1)),
            (source.len(), (4, 5)),
            (source.len() + 10, (4, 5)),
        ];
        for (offset, expected) in cases {
            assert_eq!(lines.position(offset), expected, "offset {offset}");
        }
    }

    #[test]
    fn error_lists_every_diagnostic_in_file_order_one_per_line() {
        let mut found = Diagnostics::new("a = 1\nb = 2\n");
        found.report(6..7, "second");
        found.report(0..1, "first\n  spread over\tlines");
        found.report(6..7, "second");
        let error = found.into_error();
        assert_eq!(
            error.to_string(),
            "line 1, column 1: first spread over lines\nline 2, column 1: second"
        );
        assert_eq!(error.diagnostics.len(), 2);
    }
}
