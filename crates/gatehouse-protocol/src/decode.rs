//! Decoding request bodies strictly: JSON with no duplicate key at any depth, then the typed
//! value, with an error that names the field at fault.
//!
//! Duplicate keys matter for a gate: `serde_json` keeps the *last* of two equal keys while an
//! agent's tool may keep the *first*, so `{"command":"ls","command":"rm -rf /"}` could be judged
//! as one command and run as another. Every body the daemon reads goes through [`decode_json`];
//! [`decode_check_request`] is the `POST /v1/check` decoder (the fuzz target `check_decode`
//! calls it).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::CheckRequest;

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Not JSON: a syntax error, invalid UTF-8, trailing data, nesting deeper than 128.
    Malformed,
    /// The same key twice in one object (`field` names it).
    DuplicateKey,
    /// JSON, but not the expected shape: a missing, unknown or mistyped field.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub message: String,
    /// The field at fault, as a path (`input.command`, `list[2].x`), where it is known.
    pub field: Option<String>,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a `POST /v1/check` body.
pub fn decode_check_request(bytes: &[u8]) -> Result<CheckRequest, DecodeError> {
    decode_json(bytes)
}

/// Decodes a JSON body: refuses duplicate keys and keys holding NUL, then deserialises `T`, naming the field at fault.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    check_keys(bytes)?;
    // The common case pays for plain serde_json; only a bad body is decoded again to find
    // the path of the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(inner);
        }
        invalid_at(&err.path().to_string(), inner)
    })?;
    de.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

/// Walks the whole document once; the first object holding a key twice (`DuplicateKey`) or a
/// key with a NUL byte (`Invalid`) is an error naming it. Syntax errors (including nesting past
/// serde_json's limit of 128) are `Malformed`.
pub fn check_keys(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut walk = Walk::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Node { walk: &mut walk }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match (result, walk.refused) {
        (_, Some((KeyFault::Duplicate, field))) => Err(DecodeError {
            kind: DecodeErrorKind::DuplicateKey,
            message: format!("the key `{field}` appears more than once; send each key once"),
            field: Some(field),
        }),
        (_, Some((KeyFault::Nul, field))) => Err(DecodeError {
            kind: DecodeErrorKind::Invalid,
            message: "an object key holds a NUL byte".to_owned(),
            field: Some(field),
        }),
        (Err(err), None) => Err(malformed(&err)),
        (Ok(()), None) => Ok(()),
    }
}

fn malformed(err: &serde_json::Error) -> DecodeError {
    DecodeError {
        kind: DecodeErrorKind::Malformed,
        message: format!("the body is not valid JSON: {err}"),
        field: None,
    }
}

/// A value that parsed but does not fit, naming the field where serde can.
fn invalid_at(path: &str, err: &serde_json::Error) -> DecodeError {
    let message = err.to_string();
    DecodeError {
        kind: DecodeErrorKind::Invalid,
        field: field_at(path, &message),
        message,
    }
}

/// The field a serde error is about: its serde_path_to_error path, or for the top level (`.`)
/// the name serde puts only in its message ("missing field `tool`").
pub fn field_at(path: &str, message: &str) -> Option<String> {
    if path != "." {
        return Some(path.to_owned());
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Where the walk is, and the first duplicate it found.
#[derive(Default)]
struct Walk {
    path: Vec<Segment>,
    refused: Option<(KeyFault, String)>,
}

enum KeyFault {
    Duplicate,
    /// A C-string reader of the same body would see `command\0` as `command`: a duplicate by
    /// another name.
    Nul,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Walk {
    /// The path in serde_path_to_error's notation, so both kinds of error name fields alike.
    fn path_with(&self, key: &str) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
        out
    }
}

/// One JSON value, visited for its objects' keys and otherwise ignored.
struct Node<'w> {
    walk: &'w mut Walk,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.walk.path.push(Segment::Index(index));
            let next = seq.next_element_seed(Node {
                walk: &mut *self.walk,
            });
            self.walk.path.pop();
            if next?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Objects are small; a hostile one with many keys must not cost quadratic time.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if seen.contains(&key) {
                self.walk.refused = Some((KeyFault::Duplicate, self.walk.path_with(&key)));
                return Err(de::Error::custom("duplicate key"));
            }
            if key.contains('\0') {
                self.walk.refused = Some((KeyFault::Nul, self.walk.path_with(&key)));
                return Err(de::Error::custom("NUL in a key"));
            }
            self.walk.path.push(Segment::Key(key.clone().into_owned()));
            let value = map.next_value_seed(Node {
                walk: &mut *self.walk,
            });
            self.walk.path.pop();
            value?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it had escapes (compared unescaped, so
/// `"comm\u0061nd"` and `"command"` are the same key).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(body: &str) -> Option<String> {
        match decode_check_request(body.as_bytes()) {
            Err(DecodeError {
                kind: DecodeErrorKind::DuplicateKey,
                field,
                ..
            }) => field,
            other => panic!("{body}: not a duplicate-key error: {other:?}"),
        }
    }

    #[test]
    fn a_key_twice_at_any_depth_is_named() {
        let cases = [
            (
                r#"{"tool":"Bash","input":{"command":"ls","command":"rm -rf /"}}"#,
                "input.command",
            ),
            (r#"{"tool":"Bash","tool":"Read","input":{}}"#, "tool"),
            (
                r#"{"tool":"Bash","input":{"command":"ls","comm\u0061nd":"rm -rf /"}}"#,
                "input.command",
            ),
            (
                r#"{"tool":"T","input":{"a":[{"x":1},{"y":1,"y":2}]}}"#,
                "input.a[1].y",
            ),
            (
                r#"{"tool":"T","input":{},"context":{"k":{"":1,"":2}}}"#,
                "context.k.",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(duplicate(body).as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn a_key_holding_a_nul_is_refused_naming_it() {
        let err = decode_check_request(br#"{"tool":"T","input":{"a\u0000":1}}"#).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Invalid);
        assert_eq!(err.field.as_deref(), Some("input.a\0"));
    }

    /// Found by the `check_decode` fuzzer (crash-29cc71e8): without serde_json's
    /// `float_roundtrip` a long integer literal parsed one ULP away from the number written,
    /// so the action recorded and judged was not quite the one sent.
    #[test]
    fn fuzz_crash_29cc71e8_numbers_decode_exactly_as_written() {
        let written = "244444444444444444444444444444444444444444444444444444444444444444444444";
        let body = format!(r#"{{"tool":"T","input":{{"n":{written}}}}}"#);
        let request = decode_check_request(body.as_bytes()).unwrap();
        let exact: f64 = written.parse().unwrap();
        assert_eq!(request.input["n"].as_f64(), Some(exact));
        let again = decode_check_request(&serde_json::to_vec(&request).unwrap()).unwrap();
        assert_eq!(again, request);
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let body = r#"{"tool":"T","input":{"a":{"a":1},"b":[{"a":1},{"a":2}]}}"#;
        let request = decode_check_request(body.as_bytes()).unwrap();
        assert_eq!(request.tool, "T");
    }

    #[test]
    fn malformed_and_invalid_bodies_are_told_apart() {
        let deep = format!(
            r#"{{"tool":"T","input":{{"a":{}{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        for body in [r#"{"tool":"#, "", "{} x", "\"\\ud800\"", deep.as_str()] {
            let err = decode_check_request(body.as_bytes()).unwrap_err();
            assert_eq!(err.kind, DecodeErrorKind::Malformed, "{body:.40}: {err}");
        }
        let err = decode_check_request(b"{\"tool\":\"\xff\",\"input\":{}}").unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Malformed, "{err}");
        let err = decode_check_request(br#"{"tool":"Bash","input":"ls"}"#).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Invalid);
        assert_eq!(err.field.as_deref(), Some("input"));
        let err = decode_check_request(br#"{"input":{}}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("tool"));
    }
}
