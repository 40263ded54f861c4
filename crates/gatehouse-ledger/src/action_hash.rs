//! The action hash: what a person's approval is bound to. One canonical JSON encoding of the
//! fields that say *which tool call* an action is, hashed with SHA-256 (the chain's hash).
//!
//! ```text
//! action_hash = SHA-256( canonical_json({"cwd": .., "input": .., "session_id": .., "tool": .., "tool_use_id": ..}) )
//! ```
//!
//! Canonical JSON: object keys sorted by their UTF-8 bytes at every depth, no whitespace, an
//! absent optional field written as `null`, strings escaped as `serde_json` writes them (`"`,
//! `\` and control characters escaped, everything else literal UTF-8), numbers as `serde_json`
//! writes them (integers in full, floats in their shortest round-trip form). `docs/SECURITY.md`
//! ("Approval integrity") documents it for other implementations.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The fields an action hash covers, borrowed from wherever the action is.
#[derive(Debug, Clone, Copy)]
pub struct ActionIdentity<'a> {
    pub tool: &'a str,
    pub input: &'a Map<String, Value>,
    pub cwd: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub tool_use_id: Option<&'a str>,
}

impl ActionIdentity<'_> {
    /// The canonical JSON text the hash is computed over.
    pub fn canonical_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"cwd\":");
        write_optional(&mut out, self.cwd);
        out.push_str(",\"input\":");
        write_object(&mut out, self.input);
        out.push_str(",\"session_id\":");
        write_optional(&mut out, self.session_id);
        out.push_str(",\"tool\":");
        write_string(&mut out, self.tool);
        out.push_str(",\"tool_use_id\":");
        write_optional(&mut out, self.tool_use_id);
        out.push('}');
        out
    }

    /// SHA-256 of the canonical JSON.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json().as_bytes()).into()
    }
}

/// Lowercase hex, the way the API carries an action hash.
pub fn to_hex(hash: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in hash {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Parses 64 hex digits (either case); `None` for anything else.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[index] = (high * 16 + low) as u8;
    }
    Some(out)
}

fn write_optional(out: &mut String, value: Option<&str>) {
    match value {
        Some(text) => write_string(out, text),
        None => out.push_str("null"),
    }
}

fn write_string(out: &mut String, text: &str) {
    // Serialising a &str cannot fail; the fallback keeps this total anyway.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("null"),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(input: &Map<String, Value>) -> ActionIdentity<'_> {
        ActionIdentity {
            tool: "Bash",
            input,
            cwd: Some("/w"),
            session_id: None,
            tool_use_id: Some("t\n1"),
        }
    }

    #[test]
    fn the_encoding_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let input = json!({"z": 1, "a": {"y": [true, null, 1.5], "b": "é\"x"}});
        let text = identity(input.as_object().unwrap()).canonical_json();
        assert_eq!(
            text,
            r#"{"cwd":"/w","input":{"a":{"b":"é\"x","y":[true,null,1.5]},"z":1},"session_id":null,"tool":"Bash","tool_use_id":"t\n1"}"#
        );
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        let input = json!({"k": "a/b\u{1}\u{7f}\t\\"});
        let text = identity(input.as_object().unwrap()).canonical_json();
        assert!(text.contains("\"k\":\"a/b\\u0001\u{7f}\\t\\\\\""), "{text}");
    }

    #[test]
    fn key_order_does_not_change_the_hash_but_any_field_does() {
        let one = json!({"a": 1, "b": 2});
        let two = json!({"b": 2, "a": 1});
        let edited = json!({"a": 1, "b": 3});
        let base = identity(one.as_object().unwrap()).hash();
        assert_eq!(base, identity(two.as_object().unwrap()).hash());
        assert_ne!(base, identity(edited.as_object().unwrap()).hash());
        let mut other_session = identity(one.as_object().unwrap());
        other_session.session_id = Some("s");
        assert_ne!(base, other_session.hash());
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let hash = identity(&Map::new()).hash();
        let hex = to_hex(&hash);
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(from_hex(&hex), Some(hash));
        assert_eq!(from_hex(&hex.to_uppercase()), Some(hash));
        assert_eq!(from_hex(&hex[1..]), None);
        assert_eq!(from_hex(&format!("{}zz", &hex[2..])), None);
        assert_eq!(from_hex("é"), None);
    }
}
