//! Quote removal: the static value of one shell word, or why it has none.

use tree_sitter::Node;

/// The value of a word after quote removal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    /// Known statically; `$HOME`, `${HOME}` and a leading `~` are spelled `~`.
    Literal(String),
    /// Depends on run-time state (a variable, a command substitution, a glob brace expansion).
    Dynamic,
    /// A deliberate obfuscation (`$IFS`): the whole command line is opaque.
    Opaque(&'static str),
}

impl Text {
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self {
            Text::Literal(text) => Some(text),
            _ => None,
        }
    }
}

/// Spells `$HOME/...` and `${HOME}/...` as `~/...`.
pub(crate) fn home_form(text: &str) -> String {
    for prefix in ["${HOME}", "$HOME"] {
        if let Some(rest) = text.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("~{rest}");
        }
    }
    text.to_owned()
}

/// The static value of `node` (any word-like node), or why it has none.
pub(crate) fn literal(node: Node<'_>, source: &[u8]) -> Text {
    let mut out = String::new();
    match append(node, source, &mut out) {
        Ok(()) => Text::Literal(out),
        Err(text) => text,
    }
}

fn append(node: Node<'_>, source: &[u8], out: &mut String) -> Result<(), Text> {
    let raw = node.utf8_text(source).unwrap_or("");
    match node.kind() {
        "word" | "number" | "command_name" => {
            if node.kind() == "command_name"
                && let Some(child) = node.named_child(0)
            {
                return append(child, source, out);
            }
            if is_brace_expansion(raw) || globs_hidden_files(raw) {
                return Err(Text::Dynamic);
            }
            unescape_unquoted(raw, out);
            Ok(())
        }
        "raw_string" => {
            out.push_str(raw.get(1..raw.len().saturating_sub(1)).unwrap_or(""));
            Ok(())
        }
        "ansi_c_string" => {
            let inner = raw
                .strip_prefix("$'")
                .and_then(|s| s.strip_suffix('\''))
                .unwrap_or("");
            decode_ansi_c(inner, out);
            Ok(())
        }
        "string" | "translated_string" => {
            let mut cursor = node.walk();
            let parts: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
            if parts.is_empty() {
                return Ok(());
            }
            // Text between named children (e.g. a lone `$`) is literal too; walk by byte ranges.
            let start = node.start_byte() + if node.kind() == "string" { 1 } else { 2 };
            let end = node.end_byte().saturating_sub(1);
            let mut at = start;
            for part in parts {
                if part.start_byte() > at {
                    let gap = source.get(at..part.start_byte()).unwrap_or(&[]);
                    unescape_double_quoted(&String::from_utf8_lossy(gap), out);
                }
                if part.kind() == "string_content" {
                    unescape_double_quoted(part.utf8_text(source).unwrap_or(""), out);
                } else {
                    append(part, source, out)?;
                }
                at = part.end_byte();
            }
            if end > at {
                let gap = source.get(at..end).unwrap_or(&[]);
                unescape_double_quoted(&String::from_utf8_lossy(gap), out);
            }
            Ok(())
        }
        "concatenation" => {
            // `.[e]nv` parses as several parts; the glob reaches hidden files as a whole.
            if globs_hidden_files(raw) {
                return Err(Text::Dynamic);
            }
            let mut cursor = node.walk();
            let parts: Vec<Node<'_>> = node.children(&mut cursor).collect();
            let mut result = Ok(());
            for part in parts {
                let step = if part.is_named() {
                    append(part, source, out)
                } else {
                    out.push_str(part.utf8_text(source).unwrap_or(""));
                    Ok(())
                };
                // Keep looking: a later `$IFS` must still make the whole line opaque.
                if let Err(error) = step {
                    if matches!(error, Text::Opaque(_)) {
                        return Err(error);
                    }
                    result = Err(error);
                }
            }
            result
        }
        "simple_expansion" | "expansion" => {
            let name = raw
                .trim_start_matches('$')
                .trim_start_matches('{')
                .trim_end_matches('}');
            if name.contains("IFS") {
                return Err(Text::Opaque("uses $IFS to hide word boundaries"));
            }
            if name == "HOME" && out.is_empty() {
                out.push('~');
                return Ok(());
            }
            Err(Text::Dynamic)
        }
        // `$(cat <<'EOF' ... EOF)`: the engine expands it itself (agents write commit
        // messages this way); any other substitution is not known statically.
        "command_substitution" => match static_heredoc(node, source) {
            Some(text) => {
                out.push_str(&text);
                Ok(())
            }
            None => Err(Text::Dynamic),
        },
        "process_substitution" | "arithmetic_expansion" => Err(Text::Dynamic),
        "string_content" => {
            unescape_double_quoted(raw, out);
            Ok(())
        }
        // Anything else in a word position (arrays, brace expressions, extglobs...) is not a
        // static string.
        _ => Err(Text::Dynamic),
    }
}

/// The output of `$(cat <<'EOF' ... EOF)` (or a here-document without expansions): its text
/// without the trailing newlines, as the shell would substitute it. `None` for anything else.
fn static_heredoc(node: Node<'_>, source: &[u8]) -> Option<String> {
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
    let [statement] = children.as_slice() else {
        return None;
    };
    if statement.kind() != "redirected_statement" {
        return None;
    }
    let body = statement.child_by_field_name("body")?;
    if body.kind() != "command" || body.named_child_count() != 1 {
        return None;
    }
    let name = body.child_by_field_name("name")?;
    if name.utf8_text(source).ok()? != "cat" {
        return None;
    }
    let mut cursor = statement.walk();
    let redirects: Vec<Node<'_>> = statement
        .named_children(&mut cursor)
        .filter(|child| child.id() != body.id())
        .collect();
    let [redirect] = redirects.as_slice() else {
        return None;
    };
    if redirect.kind() != "heredoc_redirect" {
        return None;
    }
    let mut cursor = redirect.walk();
    let mut quoted = false;
    let mut text = None;
    for child in redirect.children(&mut cursor) {
        match child.kind() {
            "<<" | "heredoc_end" => {}
            "heredoc_start" => {
                quoted = child
                    .utf8_text(source)
                    .is_ok_and(|start| start.contains(['\'', '"', '\\']));
            }
            "heredoc_body" => {
                let mut inner = child.walk();
                let dynamic = child.named_children(&mut inner).any(|part| {
                    matches!(
                        part.kind(),
                        "expansion"
                            | "simple_expansion"
                            | "command_substitution"
                            | "arithmetic_expansion"
                    )
                });
                if dynamic && !quoted {
                    return None;
                }
                text = Some(child.utf8_text(source).ok()?.to_owned());
            }
            // `<<-`, a pipeline hanging off the here-document, a descriptor...
            _ => return None,
        }
    }
    let text = text?;
    if !quoted && text.contains('\\') {
        return None;
    }
    Some(text.trim_end_matches('\n').to_owned())
}

/// `.en?`, `~/.ss?/id_rsa`, `.*`: an unquoted glob that can reach hidden files, whose names a
/// rule could not see.
fn globs_hidden_files(raw: &str) -> bool {
    raw.split('/')
        .any(|part| part.starts_with('.') && part.contains(['*', '?', '[']))
}

/// Most words one brace expansion may produce before the engine gives up (the word is then not
/// literal).
const MAX_BRACE_WORDS: usize = 64;

/// The words an unquoted brace expansion produces (`.{env,x}` → `.env`, `.x`;
/// `file{1..3}` → `file1`, `file2`, `file3`), when the word is plain text otherwise (no quotes,
/// expansions or escapes). `None` when it holds no brace expansion or cannot be expanded here.
pub(crate) fn brace_words(node: Node<'_>, source: &[u8]) -> Option<Vec<String>> {
    if !matches!(node.kind(), "word" | "concatenation") {
        return None;
    }
    let raw = node.utf8_text(source).ok()?;
    if !is_brace_expansion(raw) || raw.contains(['\'', '"', '$', '`', '\\']) {
        return None;
    }
    let words = expand_braces(raw)?;
    if words.iter().any(|w| globs_hidden_files(w)) {
        return None;
    }
    Some(words)
}

/// Bash brace expansion of plain text: the first `{...}` holding a top-level `,` (or a `a..b`
/// sequence) is expanded, then the rest recursively.
fn expand_braces(text: &str) -> Option<Vec<String>> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(open) = text.get(start..)?.find('{').map(|at| at + start) {
        let mut depth = 0;
        let mut commas = Vec::new();
        let mut close = None;
        for (at, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(at);
                        break;
                    }
                }
                b',' if depth == 1 => commas.push(at),
                _ => {}
            }
        }
        let close = close?;
        let prefix = text.get(..open)?;
        let suffix = text.get(close + 1..)?;
        let inner = text.get(open + 1..close)?;
        let alternatives: Vec<String> = if commas.is_empty() {
            match sequence(inner) {
                Some(items) => items,
                None => {
                    start = open + 1;
                    continue;
                }
            }
        } else {
            let mut parts = Vec::new();
            let mut from = open + 1;
            for comma in commas.iter().copied().chain(std::iter::once(close)) {
                parts.push(text.get(from..comma)?.to_owned());
                from = comma + 1;
            }
            parts
        };
        let mut out = Vec::new();
        for alternative in alternatives {
            for word in expand_braces(&format!("{prefix}{alternative}{suffix}"))? {
                out.push(word);
                if out.len() > MAX_BRACE_WORDS {
                    return None;
                }
            }
        }
        return Some(out);
    }
    Some(vec![text.to_owned()])
}

/// `1..3`, `a..c`, `10..1..3`.
fn sequence(inner: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = inner.split("..").collect();
    let (from, to, step) = match parts.as_slice() {
        [from, to] => (*from, *to, 1i64),
        [from, to, step] => (*from, *to, step.parse::<i64>().ok()?.abs().max(1)),
        _ => return None,
    };
    if let (Ok(a), Ok(b)) = (from.parse::<i64>(), to.parse::<i64>()) {
        let count = (a - b).abs() / step + 1;
        if count > MAX_BRACE_WORDS as i64 {
            return None;
        }
        let mut items = Vec::new();
        let mut n = a;
        for _ in 0..count {
            items.push(n.to_string());
            n += if a <= b { step } else { -step };
        }
        return Some(items);
    }
    let (a, b) = (from.chars().next()?, to.chars().next()?);
    if from.len() != 1 || to.len() != 1 || !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
        return None;
    }
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut items: Vec<String> = (low..=high).map(String::from).collect();
    if a > b {
        items.reverse();
    }
    Some(items)
}

/// `{a,b}` and `{1..3}` outside quotes expand to several words.
fn is_brace_expansion(raw: &str) -> bool {
    let Some(open) = raw.find('{') else {
        return false;
    };
    raw[open..]
        .find('}')
        .is_some_and(|close| raw[open..open + close].contains([',']) || raw.contains(".."))
}

/// Removes backslash escapes from an unquoted word (`\rm` → `rm`), and spells a leading
/// `$HOME`-free `~` as is.
fn unescape_unquoted(raw: &str, out: &mut String) {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\n') | None => {}
                Some(next) => out.push(next),
            }
        } else {
            out.push(c);
        }
    }
}

/// Inside double quotes, a backslash escapes only `$`, `` ` ``, `"`, `\` and a newline.
fn unescape_double_quoted(raw: &str, out: &mut String) {
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('$' | '`' | '"' | '\\') => {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                }
                Some('\n') => {
                    chars.next();
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
}

/// Decodes the escapes of `$'...'` (`\x72\x6d` is `rm`).
fn decode_ansi_c(raw: &str, out: &mut String) {
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(kind) = chars.next() else {
            out.push('\\');
            break;
        };
        let mut number = |radix: u32, max: usize, first: Option<char>| {
            let mut digits = String::new();
            if let Some(first) = first {
                digits.push(first);
            }
            while digits.len() < max {
                match chars.peek() {
                    Some(d) if d.is_digit(radix) => {
                        digits.push(*d);
                        chars.next();
                    }
                    _ => break,
                }
            }
            u32::from_str_radix(&digits, radix)
                .ok()
                .and_then(char::from_u32)
        };
        let decoded = match kind {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            '?' => Some('?'),
            'x' => number(16, 2, None),
            'u' => number(16, 4, None),
            'U' => number(16, 8, None),
            '0'..='7' => number(8, 3, Some(kind)),
            other => {
                out.push('\\');
                Some(other)
            }
        };
        if let Some(decoded) = decoded {
            out.push(decoded);
        }
    }
}
