//! Shell commands parsed, not pattern-matched: a command line becomes the list of simple commands
//! it would run, each normalised, plus the reasons (if any) it cannot be known statically.
//!
//! [`parse`] runs the `tree-sitter-bash` grammar and walks the whole tree: every simple command
//! inside lists, pipelines, subshells, brace groups, control flow, function bodies, command and
//! process substitutions is extracted on its own. [`normalise`](self::normalise) then removes
//! quotes, reduces `/bin/rm` and `\rm` to `rm`, unwraps wrappers (`sudo`, `env`, `timeout`,
//! `xargs`, `find -exec`, ...), parses literal `sh -c` scripts recursively and spells the options
//! of known commands one way (`-rf` = `-r -f` = `--recursive --force`).
//!
//! *Invariant*: whatever cannot be known statically is recorded in [`ParsedCommand::opaque`]; the
//! policy never allows an action whose command is opaque.

mod normalise;
mod spelling;
mod state;
pub(crate) mod words;

use std::cell::RefCell;

use tree_sitter::{Node, Parser};

pub use normalise::{Redirect, SimpleCommand, Word, WordKind};
use state::LineState;
use words::{Text, literal};

/// How deep `sh -c '...'` scripts may nest before the command is declared opaque.
pub(crate) const MAX_SCRIPT_DEPTH: u8 = 4;
/// How deep the syntax tree may nest before the command is declared opaque (guards the stack).
const MAX_TREE_DEPTH: usize = 200;

/// A shell command line, taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedCommand {
    /// Every simple command the line would run (wrapped and wrapper both), in source order.
    pub commands: Vec<SimpleCommand>,
    /// Why parts of the line cannot be known statically; empty when everything is known.
    pub opaque: Vec<String>,
}

impl ParsedCommand {
    /// Whether anything in the line cannot be known statically.
    pub fn is_opaque(&self) -> bool {
        !self.opaque.is_empty()
    }

    fn mark_opaque(&mut self, why: impl Into<String>) {
        let why = why.into();
        if !self.opaque.contains(&why) {
            self.opaque.push(why);
        }
    }
}

thread_local! {
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

/// Parses a command line as bash would read it.
pub fn parse(source: &str) -> ParsedCommand {
    let mut out = ParsedCommand::default();
    parse_into(source, 0, &mut out, LineState::default());
    out
}

/// Parses `source` (a script at nesting `depth`) and appends what it runs to `out`.
pub(crate) fn parse_into(source: &str, depth: u8, out: &mut ParsedCommand, state: LineState) {
    if depth > MAX_SCRIPT_DEPTH {
        out.mark_opaque("shell scripts nested too deeply");
        return;
    }
    // A shell's argv is C strings: it would run the text up to a NUL, while the parser reads past
    // it (`ls -la\0; rm -rf ~`). Never judge such a line by its words.
    if source.contains('\0') {
        out.mark_opaque("the command holds a NUL byte");
        return;
    }
    // tree-sitter-bash 0.25's scanner calls C `isdigit` on the character after `{` (and after
    // `{N.`): a non-ASCII one there is undefined behaviour, and large code points crash the
    // process (`{\u{fd6bc}`). Such a line is never parsed.
    if brace_before_non_ascii(source) {
        out.mark_opaque(
            "a non-ASCII character right after `{`, which the parser cannot read safely",
        );
        return;
    }
    let tree = PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut parser = Parser::new();
            if parser
                .set_language(&tree_sitter_bash::LANGUAGE.into())
                .is_err()
            {
                return None;
            }
            *slot = Some(parser);
        }
        slot.as_mut().and_then(|parser| parser.parse(source, None))
    });
    let Some(tree) = tree else {
        out.mark_opaque("the shell parser failed");
        return;
    };
    let root = tree.root_node();
    if root.has_error() {
        out.mark_opaque("shell syntax error");
    }
    let first = out.commands.len();
    let mut walker = Walker {
        source: source.as_bytes(),
        depth,
        out,
        state,
    };
    walker.visit(root, Stdin::Inherit, 0);
    if walker.state.poisoned {
        for command in walker.out.commands.iter_mut().skip(first) {
            command.analysis.problem.get_or_insert_with(|| {
                "the working directory changes inside a loop or function body".to_owned()
            });
        }
    }
}

/// `{` followed (after digits and dots) by a non-ASCII character: see `parse_into`.
fn brace_before_non_ascii(source: &str) -> bool {
    let bytes = source.as_bytes();
    bytes.iter().enumerate().any(|(at, &b)| {
        b == b'{'
            && bytes
                .get(at + 1..)
                .and_then(|rest| rest.iter().find(|c| !(c.is_ascii_digit() || **c == b'.')))
                .is_some_and(|c| !c.is_ascii())
    })
}

/// Where a simple command's standard input comes from, as far as it matters for opacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stdin {
    Inherit,
    /// The output of an earlier pipeline stage.
    Pipe,
    /// A here-document or here-string; `None` when its text is not static.
    Text(Option<String>),
}

/// A simple command as written: before wrappers are unwrapped and options normalised.
#[derive(Debug)]
pub(crate) struct RawCommand {
    pub(crate) name: Text,
    pub(crate) args: Vec<Text>,
    pub(crate) assignments: Vec<(String, Text)>,
    pub(crate) redirects: Vec<Redirect>,
    pub(crate) stdin: Stdin,
}

struct Walker<'s, 'o> {
    source: &'s [u8],
    depth: u8,
    out: &'o mut ParsedCommand,
    /// The working directory and environment as earlier commands left them.
    state: LineState,
}

impl Walker<'_, '_> {
    fn text(&self, node: Node<'_>) -> &str {
        node.utf8_text(self.source).unwrap_or("")
    }

    fn visit(&mut self, node: Node<'_>, stdin: Stdin, level: usize) {
        if level > MAX_TREE_DEPTH {
            self.out.mark_opaque("command nested too deeply");
            return;
        }
        if node.is_error() || node.is_missing() {
            self.out.mark_opaque("shell syntax error");
        }
        match node.kind() {
            "command" => self.command(node, stdin, Vec::new(), level),
            "redirected_statement" => self.redirected(node, stdin, level),
            "pipeline" => {
                let mut cursor = node.walk();
                let stages: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for (index, stage) in stages.into_iter().enumerate() {
                    let input = if index == 0 {
                        stdin.clone()
                    } else {
                        Stdin::Pipe
                    };
                    // Every stage runs in a subshell: its `cd` does not leak.
                    let saved = self.state.clone();
                    self.visit(stage, input, level + 1);
                    self.restore(saved);
                }
            }
            // `cd dir && make`: `make` runs only if the `cd` succeeded, so only in `dir`.
            "list" => {
                let mut cursor = node.walk();
                let parts: Vec<Node<'_>> = node.children(&mut cursor).collect();
                let mut left_end: Option<state::Cwd> = None;
                let mut or = false;
                for part in parts {
                    if part.is_named() {
                        self.visit(part, stdin.clone(), level + 1);
                        continue;
                    }
                    left_end = Some(self.state.cwd.clone());
                    match part.kind() {
                        "&&" => {
                            if let Some(cwd) = self.state.succeeded.take() {
                                self.state.cwd = cwd;
                            }
                        }
                        _ => {
                            or = true;
                            self.state.succeeded = None;
                        }
                    }
                }
                if let Some(left_end) = left_end {
                    self.state.after_list(&left_end);
                }
                if or {
                    self.state.succeeded = None;
                }
            }
            "subshell" => {
                let saved = self.state.clone();
                self.children(node, stdin, level);
                self.restore(saved);
            }
            "for_statement"
            | "c_style_for_statement"
            | "while_statement"
            | "function_definition" => {
                self.state.in_loop += 1;
                self.children(node, stdin, level);
                self.state.in_loop = self.state.in_loop.saturating_sub(1);
            }
            "variable_assignment" => self.assignment(node, level),
            // `$(<file)`: bash reads the file, like `cat`.
            "file_redirect" => {
                let mut redirects = Vec::new();
                let mut stdin = stdin;
                self.redirect(node, &mut redirects, &mut stdin, level);
                self.out
                    .commands
                    .push(SimpleCommand::synthetic("cat", Vec::new(), redirects));
            }
            "declaration_command" | "unset_command" => self.declaration(node, level),
            "comment" | "heredoc_start" | "heredoc_end" | "file_descriptor" => {}
            _ => self.children(node, stdin, level),
        }
    }

    /// Leaves a subshell: its directory and variables are gone; a poisoned directory stays so.
    fn restore(&mut self, saved: LineState) {
        let poisoned = self.state.poisoned;
        self.state = saved;
        self.state.poisoned |= poisoned;
    }

    fn children(&mut self, node: Node<'_>, stdin: Stdin, level: usize) {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for child in children {
            self.visit(child, stdin.clone(), level + 1);
        }
    }

    /// Visits the substitutions inside a word (their commands run too).
    fn nested(&mut self, node: Node<'_>, level: usize) {
        if level > MAX_TREE_DEPTH {
            self.out.mark_opaque("command nested too deeply");
            return;
        }
        match node.kind() {
            "command_substitution" | "process_substitution" => {
                let saved = self.state.clone();
                self.children(node, Stdin::Inherit, level + 1);
                self.restore(saved);
            }
            _ => {
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for child in children {
                    self.nested(child, level + 1);
                }
            }
        }
    }

    fn word(&mut self, node: Node<'_>, level: usize) -> Text {
        self.nested(node, level);
        let text = literal(node, self.source);
        if let Text::Opaque(why) = &text {
            self.out.mark_opaque(*why);
        }
        text
    }

    fn redirected(&mut self, node: Node<'_>, stdin: Stdin, level: usize) {
        let mut redirects = Vec::new();
        let mut stdin = stdin;
        let mut cursor = node.walk();
        let parts: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for part in &parts {
            if node
                .child_by_field_name("body")
                .is_some_and(|body| body.id() == part.id())
            {
                continue;
            }
            self.redirect(*part, &mut redirects, &mut stdin, level);
        }
        let Some(body) = node.child_by_field_name("body") else {
            return;
        };
        if body.kind() == "command" {
            self.command(body, stdin, redirects, level + 1);
        } else {
            let first = self.out.commands.len();
            self.visit(body, stdin, level + 1);
            for command in self.out.commands.iter_mut().skip(first) {
                command.redirects.extend(redirects.iter().cloned());
            }
        }
    }

    fn redirect(
        &mut self,
        node: Node<'_>,
        redirects: &mut Vec<Redirect>,
        stdin: &mut Stdin,
        level: usize,
    ) {
        match node.kind() {
            "file_redirect" => {
                let mut operator = "";
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    if !child.is_named() {
                        operator = child.kind();
                    }
                }
                let operator = operator.to_owned();
                let mut cursor = node.walk();
                let destinations: Vec<Node<'_>> = node
                    .children_by_field_name("destination", &mut cursor)
                    .collect();
                for destination in destinations {
                    let target = self.word(destination, level + 1);
                    let target = match target {
                        Text::Literal(text) => Some(words::home_form(&text)),
                        _ => None,
                    };
                    if target
                        .as_deref()
                        .is_some_and(|t| t == "-" || t.bytes().all(|b| b.is_ascii_digit()))
                    {
                        continue; // 2>&1, >&-: descriptors, not files
                    }
                    let read = operator.starts_with('<');
                    let write = operator != "<" && operator != "<&";
                    redirects.push(Redirect {
                        target,
                        read,
                        write,
                    });
                }
            }
            "heredoc_redirect" => {
                let mut quoted = false;
                let mut body = None;
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for child in children {
                    match child.kind() {
                        "heredoc_start" => {
                            let start = self.text(child);
                            quoted = start.contains(['\'', '"', '\\']);
                        }
                        "heredoc_body" => {
                            self.nested(child, level + 1);
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
                            body = (quoted || !dynamic).then(|| self.text(child).to_owned());
                        }
                        // `cat <<EOF | sh`: the rest of the pipeline hangs off the redirect.
                        "pipeline" | "command" | "file_redirect" | "herestring_redirect" => {
                            self.visit(child, Stdin::Inherit, level + 1);
                        }
                        _ => {}
                    }
                }
                *stdin = Stdin::Text(body);
            }
            "herestring_redirect" => {
                let mut cursor = node.walk();
                let content: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                let mut text = None;
                for part in content {
                    if part.kind() == "file_descriptor" {
                        continue;
                    }
                    text = match self.word(part, level + 1) {
                        Text::Literal(value) => Some(value),
                        _ => None,
                    };
                }
                *stdin = Stdin::Text(text);
            }
            _ => self.visit(node, Stdin::Inherit, level + 1),
        }
    }

    fn command(&mut self, node: Node<'_>, stdin: Stdin, redirects: Vec<Redirect>, level: usize) {
        let mut raw = RawCommand {
            name: Text::Literal(String::new()),
            args: Vec::new(),
            assignments: Vec::new(),
            redirects,
            stdin,
        };
        let mut has_name = false;
        let mut cursor = node.walk();
        let children: Vec<(Option<&str>, Node<'_>)> = {
            let mut list = Vec::new();
            if cursor.goto_first_child() {
                loop {
                    let child = cursor.node();
                    if child.is_named() {
                        list.push((cursor.field_name(), child));
                    } else if child.kind() == "$" || child.kind() == "==" || child.kind() == "=~" {
                        list.push((Some("argument"), child));
                    }
                    if !cursor.goto_next_sibling() {
                        break;
                    }
                }
            }
            list
        };
        for (field, child) in children {
            match (field, child.kind()) {
                (Some("name"), _) => {
                    has_name = true;
                    raw.name = match child.named_child(0) {
                        Some(word) => self.word(word, level + 1),
                        None => Text::Literal(self.text(child).to_owned()),
                    };
                }
                (Some("redirect"), _) | (_, "file_redirect" | "herestring_redirect") => {
                    let mut stdin = raw.stdin.clone();
                    self.redirect(child, &mut raw.redirects, &mut stdin, level + 1);
                    raw.stdin = stdin;
                }
                (_, "variable_assignment") => {
                    let name = child
                        .child_by_field_name("name")
                        .map(|n| self.text(n).to_owned())
                        .unwrap_or_default();
                    let value = match child.child_by_field_name("value") {
                        Some(value) => self.word(value, level + 1),
                        None => Text::Literal(String::new()),
                    };
                    raw.assignments.push((name, value));
                }
                (_, "subshell") => self.visit(child, Stdin::Inherit, level + 1),
                (_, "comment") => {}
                _ => {
                    if child.is_named() {
                        // `src/{a,b}.rs` is two words, expanded here as bash would.
                        match words::brace_words(child, self.source) {
                            Some(expanded) => {
                                raw.args.extend(expanded.into_iter().map(Text::Literal));
                            }
                            None => {
                                let word = self.word(child, level + 1);
                                raw.args.push(word);
                            }
                        }
                    } else {
                        raw.args.push(Text::Literal(child.kind().to_owned()));
                    }
                }
            }
        }
        if !has_name {
            return;
        }
        normalise::normalise(raw, self.depth, self.out, &mut self.state);
    }

    fn assignment(&mut self, node: Node<'_>, level: usize) {
        let name = node
            .child_by_field_name("name")
            .map(|n| self.text(n).to_owned())
            .unwrap_or_default();
        if let Some(value) = node.child_by_field_name("value") {
            let _ = self.word(value, level + 1);
        }
        if normalise::dangerous_variable(&name) {
            self.out.mark_opaque(format!(
                "assigns {name}, which changes what later commands run"
            ));
        }
        if !name.is_empty() && !self.state.env.contains(&name) {
            self.state.env.push(name);
        }
    }

    /// `export X=1`, `local y`, `unset z`: emitted as a simple command named after the keyword.
    fn declaration(&mut self, node: Node<'_>, level: usize) {
        self.state.succeeded = None;
        let keyword = node
            .child(0)
            .map(|k| self.text(k).to_owned())
            .unwrap_or_default();
        let mut words = Vec::new();
        let mut texts = Vec::new();
        let mut is_static = true;
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for child in children {
            if child.kind() == "variable_assignment" {
                self.assignment(child, level + 1);
            } else {
                self.nested(child, level + 1);
            }
            let text = if child.kind() == "variable_assignment" {
                // `export NAME=VALUE`: the word is `NAME=VALUE`.
                let name = child
                    .child_by_field_name("name")
                    .map(|n| self.text(n).to_owned())
                    .unwrap_or_default();
                match child.child_by_field_name("value") {
                    Some(value) => match literal(value, self.source) {
                        Text::Literal(value) => Text::Literal(format!("{name}={value}")),
                        other => other,
                    },
                    None => Text::Literal(format!("{name}=")),
                }
            } else {
                literal(child, self.source)
            };
            match &text {
                Text::Literal(text) => words.push(Word {
                    kind: if text.starts_with('-') {
                        WordKind::Flag
                    } else {
                        WordKind::Positional
                    },
                    text: Some(text.clone()),
                }),
                _ => {
                    is_static = false;
                    words.push(Word {
                        text: None,
                        kind: WordKind::Positional,
                    });
                }
            }
            texts.push(text);
        }
        let mut command = SimpleCommand::synthetic(&keyword, words, Vec::new());
        command.is_static = is_static;
        command.env = self.state.env.clone();
        command.analysis = crate::grammar::analyse(&keyword, &texts, false);
        self.out.commands.push(command);
    }
}

#[cfg(test)]
mod tests;
