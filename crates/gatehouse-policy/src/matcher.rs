//! Precompiled conditions: name globs (tool, session, agent) and argument matchers on JSON pointers.
//!
//! Everything here is built once when a policy loads; matching never allocates. Builders return a
//! one-line message on failure and the loader pins it to a line and column.

use globset::{Candidate, Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

/// Longest regex source accepted, in bytes.
pub(crate) const MAX_REGEX_LEN: usize = 4 * 1024;
/// Upper bound on the memory one compiled regex (and each of its lazy DFAs) may use.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a glob as policies use it: `*` and `?` match any character including `/`, `[...]` is
/// a class, `{a,b}` an alternation, and `\` escapes the next character.
pub(crate) fn compile_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.is_empty() {
        return Err("empty pattern never matches anything".to_owned());
    }
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|error| format!("invalid glob `{pattern}`: {}", error.kind()))
}

/// Matches `text` as a whole against a glob, without allocating.
fn glob_matches(glob: &GlobMatcher, text: &str) -> bool {
    glob.is_match_candidate(&Candidate::from_bytes(text.as_bytes()))
}

/// A set of names or globs, any of which may match (a rule's `session` or `agent`).
#[derive(Clone, Debug)]
pub(crate) struct NameSet(GlobSet);

impl NameSet {
    pub(crate) fn new(globs: Vec<Glob>) -> Result<NameSet, String> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(glob);
        }
        builder
            .build()
            .map(NameSet)
            .map_err(|error| format!("cannot build glob set: {error}"))
    }

    /// Matches nothing.
    pub(crate) fn empty() -> NameSet {
        NameSet(GlobSet::empty())
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.0
            .is_match_candidate(&Candidate::from_bytes(name.as_bytes()))
    }
}

/// A JSON pointer (RFC 6901), split and unescaped at load time.
#[derive(Clone, Debug)]
pub(crate) struct JsonPointer {
    /// Never empty: a pointer to the whole input is not accepted.
    tokens: Box<[Token]>,
    /// As written in the policy, to group matchers on the same value.
    pub(crate) text: Box<str>,
}

#[derive(Clone, Debug)]
struct Token {
    key: Box<str>,
    /// The token read as an array index, when it is one (`0` or digits without a leading zero).
    index: Option<usize>,
}

impl JsonPointer {
    pub(crate) fn parse(pointer: &str) -> Result<JsonPointer, String> {
        if pointer.is_empty() {
            return Err("empty pointer; point into the input, e.g. \"/command\"".to_owned());
        }
        let Some(body) = pointer.strip_prefix('/') else {
            return Err(format!(
                "pointer `{pointer}` must start with '/', e.g. \"/{pointer}\""
            ));
        };
        let tokens = body
            .split('/')
            .map(|raw| {
                let key = unescape_token(raw).ok_or_else(|| {
                    format!(
                        "invalid escape in pointer `{pointer}`: '~' must be followed by 0 (for '~') or 1 (for '/')"
                    )
                })?;
                let index = array_index(&key);
                Ok(Token {
                    key: key.into_boxed_str(),
                    index,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(JsonPointer {
            tokens: tokens.into_boxed_slice(),
            text: pointer.into(),
        })
    }

    /// A pointer that resolves to nothing (a fallback that cannot happen for valid constants).
    pub(crate) fn never() -> JsonPointer {
        JsonPointer {
            tokens: Box::new([]),
            text: "".into(),
        }
    }

    /// Looks the pointer up in an action's input without cloning or allocating.
    pub(crate) fn resolve<'v>(&self, input: &'v Map<String, Value>) -> Option<&'v Value> {
        let (first, rest) = self.tokens.split_first()?;
        let mut value = input.get(&*first.key)?;
        for token in rest {
            value = match value {
                Value::Object(map) => map.get(&*token.key)?,
                Value::Array(items) => items.get(token.index?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

fn unescape_token(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn array_index(token: &str) -> Option<usize> {
    let canonical = token == "0"
        || (!token.is_empty()
            && !token.starts_with('0')
            && token.bytes().all(|b| b.is_ascii_digit()));
    if canonical { token.parse().ok() } else { None }
}

/// The test an argument matcher applies to the value its pointer finds.
#[derive(Clone, Debug)]
pub(crate) enum ArgTest {
    /// Deep equality; numbers compare by value, so `1` equals `1.0`.
    Equals(Value),
    /// The value is a string starting with this text.
    Prefix(Box<str>),
    /// The value is a string matching this glob as a whole.
    Glob(GlobMatcher),
    /// The value is a string in which this regex finds a match (unanchored).
    Regex(Regex),
    /// The value equals one of these (as `Equals` compares).
    In(Box<[Value]>),
    /// The value is a number, or a string holding a decimal number, that compares so with this.
    Compare(Comparison, Numeric),
    /// The pointer finds a value (any, even `null`) when `true`; finds nothing when `false`.
    Exists(bool),
}

/// A numeric comparison: value OP threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The key naming the comparison in policy files.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Comparison::Lt => "lt",
            Comparison::Le => "le",
            Comparison::Gt => "gt",
            Comparison::Ge => "ge",
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Comparison> {
        [
            Comparison::Lt,
            Comparison::Le,
            Comparison::Gt,
            Comparison::Ge,
        ]
        .into_iter()
        .find(|c| c.key() == key)
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Comparison::Lt => ordering == Less,
            Comparison::Le => matches!(ordering, Less | Equal),
            Comparison::Gt => ordering == Greater,
            Comparison::Ge => matches!(ordering, Greater | Equal),
        }
    }
}

/// A number read exactly where it can be: integers as integers (so large amounts keep every digit),
/// everything else as a finite float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Numeric {
    Int(i128),
    Float(f64),
}

impl Numeric {
    pub(crate) fn of_number(number: &Number) -> Option<Numeric> {
        if let Some(n) = number.as_i64() {
            return Some(Numeric::Int(i128::from(n)));
        }
        if let Some(n) = number.as_u64() {
            return Some(Numeric::Int(i128::from(n)));
        }
        number
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Numeric::Float)
    }

    /// A string holding a number in JSON's syntax (`500`, `-1.5`, `2e3`), nothing around it.
    /// Hex, `+5`, ` 5`, `1_000`, `NaN` and `inf` are not numbers.
    pub(crate) fn of_text(text: &str) -> Option<Numeric> {
        if !json_number_syntax(text) {
            return None;
        }
        if let Ok(n) = text.parse::<i128>() {
            return Some(Numeric::Int(n));
        }
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Numeric::Float)
    }

    fn of_value(value: &Value) -> Option<Numeric> {
        match value {
            Value::Number(number) => Numeric::of_number(number),
            Value::String(text) => Numeric::of_text(text),
            _ => None,
        }
    }

    fn compare(self, other: Numeric) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Numeric::Int(a), Numeric::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            #[expect(clippy::cast_precision_loss, reason = "compared with a float anyway")]
            Numeric::Int(n) => n as f64,
            Numeric::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Numeric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Numeric::Int(n) => write!(f, "{n}"),
            Numeric::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, without a regex.
fn json_number_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let start = i;
    let integer = digits(&mut i);
    if integer == 0 || (integer > 1 && bytes.get(start) == Some(&b'0')) {
        return false;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

impl ArgTest {
    pub(crate) fn regex(pattern: &str) -> Result<ArgTest, String> {
        if pattern.len() > MAX_REGEX_LEN {
            return Err(format!(
                "regex is {} bytes long; the limit is {MAX_REGEX_LEN}",
                pattern.len()
            ));
        }
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(ArgTest::Regex)
            .map_err(|error| match error {
                regex::Error::Syntax(text) => format!("invalid regex: {}", syntax_summary(&text)),
                regex::Error::CompiledTooBig(limit) => {
                    format!("regex is too complex: it compiles to more than {limit} bytes")
                }
                other => format!("invalid regex: {other}"),
            })
    }

    pub(crate) fn glob(pattern: &str) -> Result<ArgTest, String> {
        compile_glob(pattern).map(|glob| ArgTest::Glob(glob.compile_matcher()))
    }

    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (ArgTest::Equals(expected), actual) => json_equal(expected, actual),
            (ArgTest::Prefix(prefix), Value::String(text)) => text.starts_with(&**prefix),
            (ArgTest::Glob(glob), Value::String(text)) => glob_matches(glob, text),
            (ArgTest::Regex(regex), Value::String(text)) => regex.is_match(text),
            (ArgTest::Prefix(_) | ArgTest::Glob(_) | ArgTest::Regex(_), _) => false,
            (ArgTest::In(values), actual) => values.iter().any(|v| json_equal(v, actual)),
            (ArgTest::Compare(op, threshold), actual) => Numeric::of_value(actual)
                .and_then(|n| n.compare(*threshold))
                .is_some_and(|ordering| op.holds(ordering)),
            (ArgTest::Exists(want), _) => *want,
        }
    }

    /// One line saying what the test wants, for `policy explain`.
    pub(crate) fn describe(&self) -> String {
        match self {
            ArgTest::Equals(value) => format!("equals {value}"),
            ArgTest::Prefix(prefix) => format!("prefix {prefix:?}"),
            ArgTest::Glob(glob) => format!("glob {:?}", glob.glob().glob()),
            ArgTest::Regex(regex) => format!("regex {:?}", regex.as_str()),
            ArgTest::In(values) => format!("in {}", Value::Array(values.to_vec())),
            ArgTest::Compare(op, threshold) => format!("{} {threshold}", op.key()),
            ArgTest::Exists(want) => format!("exists = {want}"),
        }
    }
}

/// `regex` renders syntax errors over several lines (pattern, caret, message); keep the message.
fn syntax_summary(text: &str) -> &str {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix("error: "))
        .unwrap_or(text)
}

/// One `[[rules.args]]` entry: where to look in the input and what to test there.
#[derive(Clone, Debug)]
pub(crate) struct ArgMatcher {
    pub(crate) pointer: JsonPointer,
    pub(crate) test: ArgTest,
}

impl ArgMatcher {
    /// An absent pointer never matches, except `exists = false`.
    pub(crate) fn matches(&self, input: &Map<String, Value>) -> bool {
        match self.pointer.resolve(input) {
            Some(value) => self.test.matches(value),
            None => matches!(self.test, ArgTest::Exists(false)),
        }
    }
}

/// Structural equality in which numbers compare by value rather than by representation.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(x), integer(y)) {
        (Some(x), Some(y)) => x == y,
        _ => x.as_f64() == y.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("test input must be an object, got {other}"),
        }
    }

    #[test]
    fn pointers_resolve_like_rfc_6901() {
        let input = input(json!({
            "command": "ls",
            "a/b": 1,
            "m~n": 2,
            "": 3,
            "nested": {"list": [10, {"deep": "x"}], "01": "key"},
        }));
        let cases: &[(&str, Option<Value>)] = &[
            ("/command", Some(json!("ls"))),
            ("/a~1b", Some(json!(1))),
            ("/m~0n", Some(json!(2))),
            ("/", Some(json!(3))),
            ("/nested/list/0", Some(json!(10))),
            ("/nested/list/1/deep", Some(json!("x"))),
            ("/nested/01", Some(json!("key"))),
            ("/nested/list/01", None), // leading zero is not an index
            ("/nested/list/2", None),
            ("/nested/list/-", None),
            ("/command/0", None), // cannot descend into a string
            ("/missing", None),
            ("/nested/missing/deeper", None),
        ];
        for (pointer, expected) in cases {
            let parsed = JsonPointer::parse(pointer).unwrap();
            assert_eq!(
                parsed.resolve(&input),
                expected.as_ref(),
                "pointer {pointer}"
            );
        }
    }

    #[test]
    fn malformed_pointers_are_refused() {
        for (pointer, needle) in [
            ("", "empty pointer"),
            ("command", "must start with '/'"),
            ("/a~2", "invalid escape"),
            ("/a~", "invalid escape"),
        ] {
            let message = JsonPointer::parse(pointer).unwrap_err();
            assert!(message.contains(needle), "{pointer:?}: {message}");
        }
    }

    #[test]
    fn arg_tests_match_only_what_they_should() {
        let prefix = ArgTest::Prefix("git ".into());
        let glob = ArgTest::glob("*.rs").unwrap();
        let regex = ArgTest::regex(r"\brm\s").unwrap();
        let equals = |value: Value| ArgTest::Equals(value);
        let cases: Vec<(&str, ArgTest, Value, bool)> = vec![
            ("prefix hit", prefix.clone(), json!("git status"), true),
            ("prefix miss", prefix.clone(), json!("gitk"), false),
            ("prefix on number", prefix.clone(), json!(1), false),
            ("prefix on array", prefix, json!(["git status"]), false),
            ("glob whole string", glob.clone(), json!("src/lib.rs"), true),
            ("glob is anchored", glob.clone(), json!("lib.rs.bak"), false),
            ("glob on bool", glob, json!(true), false),
            (
                "regex is unanchored",
                regex.clone(),
                json!("ls; rm x"),
                true,
            ),
            ("regex miss", regex.clone(), json!("format"), false),
            ("regex on null", regex, Value::Null, false),
            ("int equals int", equals(json!(1)), json!(1), true),
            ("int equals float", equals(json!(1)), json!(1.0), true),
            ("int differs", equals(json!(1)), json!(2), false),
            ("negative", equals(json!(-5)), json!(-5), true),
            ("u64 max", equals(json!(u64::MAX)), json!(u64::MAX), true),
            ("u64 vs i64", equals(json!(u64::MAX)), json!(-1), false),
            ("number vs string", equals(json!(1)), json!("1"), false),
            ("bool", equals(json!(true)), json!(true), true),
            ("bool differs", equals(json!(true)), json!(false), false),
            ("null", equals(Value::Null), Value::Null, true),
            ("string", equals(json!("a")), json!("a"), true),
            (
                "object, any key order",
                equals(json!({"a": 1, "b": [1, 2.0]})),
                json!({"b": [1.0, 2], "a": 1}),
                true,
            ),
            (
                "object with extra key",
                equals(json!({"a": 1})),
                json!({"a": 1, "b": 2}),
                false,
            ),
            (
                "object missing key",
                equals(json!({"a": 1, "b": 2})),
                json!({"a": 1, "c": 2}),
                false,
            ),
            (
                "array order matters",
                equals(json!([1, 2])),
                json!([2, 1]),
                false,
            ),
            (
                "array length matters",
                equals(json!([1])),
                json!([1, 1]),
                false,
            ),
        ];
        for (name, test, value, expected) in cases {
            assert_eq!(test.matches(&value), expected, "{name}");
        }
    }

    #[test]
    fn absent_pointer_never_matches_even_equals_null() {
        let matcher = ArgMatcher {
            pointer: JsonPointer::parse("/missing").unwrap(),
            test: ArgTest::Equals(Value::Null),
        };
        assert!(!matcher.matches(&input(json!({"other": null}))));
        assert!(matcher.matches(&input(json!({"missing": null}))));
    }

    #[test]
    fn regexes_are_bounded_at_compile_time() {
        let too_long = "a".repeat(MAX_REGEX_LEN + 1);
        let message = ArgTest::regex(&too_long).unwrap_err();
        assert!(message.contains("4097 bytes long"), "{message}");
        assert!(ArgTest::regex(&"a".repeat(MAX_REGEX_LEN)).is_ok());

        // Short to write, huge once compiled: counted repetition of a Unicode class.
        let message = ArgTest::regex(r"\w{1000}\w{1000}").unwrap_err();
        assert!(message.starts_with("regex is too complex"), "{message}");

        let message = ArgTest::regex("(unclosed").unwrap_err();
        assert_eq!(message, "invalid regex: unclosed group");
    }

    #[test]
    fn globs_treat_slash_as_an_ordinary_character() {
        let cases = [
            ("mcp__github__*", "mcp__github__get_issue", true),
            ("mcp__github__*", "mcp__gitlab__get_issue", false),
            ("*", "a/b/c", true),
            ("/home/*/.ssh/*", "/home/me/.ssh/id_ed25519", true),
            ("{Read,Grep}", "Grep", true),
            ("{Read,Grep}", "Glob", false),
            ("Bash", "bash", false), // case-sensitive
            (r"a\*", "a*", true),
            (r"a\*", "ab", false),
        ];
        for (pattern, text, expected) in cases {
            let glob = compile_glob(pattern).unwrap().compile_matcher();
            assert_eq!(glob_matches(&glob, text), expected, "{pattern} vs {text}");
        }
        assert!(compile_glob("").is_err());
        let message = compile_glob("[unclosed").unwrap_err();
        assert!(
            message.starts_with("invalid glob `[unclosed`:"),
            "{message}"
        );
    }
}
