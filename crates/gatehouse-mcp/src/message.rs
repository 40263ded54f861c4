//! JSON-RPC 2.0 as MCP uses it: one message decoded strictly and classified, and the replies the
//! proxy writes itself (errors, tool results for a refused call, progress notifications).
//!
//! Messages from the client are decoded with no duplicate key at any depth
//! ([`gatehouse_protocol::decode::decode_json`]): `{"name":"read_file","name":"write_file"}` must
//! not be judged as one tool and run as another by a server that keeps the other key.

use std::fmt;

use serde_json::{Map, Value, json};

/// JSON-RPC error codes the proxy answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// A JSON-RPC request id, normalised the way a JavaScript server compares ids (`1` and `1.0` are
/// one id), so two requests a server would confuse are never both in flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

impl RequestId {
    /// The id of a message, if it has a usable one (a string or a finite number).
    pub fn from_value(value: &Value) -> Option<RequestId> {
        match value {
            Value::String(s) => Some(RequestId(format!("s:{s}"))),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(RequestId(format!("n:{i}")))
                } else if let Some(u) = n.as_u64() {
                    Some(RequestId(format!("n:{u}")))
                } else {
                    let f = n.as_f64()?;
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        #[expect(clippy::cast_possible_truncation, reason = "integral, in range")]
                        Some(RequestId(format!("n:{}", f as i64)))
                    } else {
                        Some(RequestId(format!("f:{f}")))
                    }
                }
            }
            _ => None,
        }
    }

    /// The id as text for a `tool_use_id` (`s:abc`, `n:7`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One decoded message and what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Has a `method` and an `id`: the peer expects a response.
    Request {
        id: RequestId,
        /// The id exactly as sent (echoed in replies).
        raw_id: Value,
        method: String,
        value: Map<String, Value>,
    },
    /// Has a `method` and no `id`.
    Notification {
        method: String,
        value: Map<String, Value>,
    },
    /// Has an `id` and a `result` or an `error`.
    Response {
        id: RequestId,
        value: Map<String, Value>,
    },
}

impl Message {
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    /// `params`, when it is an object.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        let value = match self {
            Message::Request { value, .. }
            | Message::Notification { value, .. }
            | Message::Response { value, .. } => value,
        };
        value.get("params").and_then(Value::as_object)
    }
}

/// Why a message was refused, with the id to answer (if one could be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub code: i64,
    pub message: String,
    /// The id to put in the error response (`null` when unknown).
    pub raw_id: Value,
}

/// Decodes one message strictly (no duplicate keys, an object, `"jsonrpc":"2.0"`). JSON-RPC
/// batches were removed from MCP in 2025-06-18 and are refused.
pub fn decode(bytes: &[u8]) -> Result<Message, Malformed> {
    let value: Value = gatehouse_protocol::decode::decode_json(bytes).map_err(|err| Malformed {
        code: code::PARSE_ERROR,
        message: format!("not a valid JSON-RPC message: {err}"),
        raw_id: Value::Null,
    })?;
    classify(value)
}

/// Classifies an already parsed value (lenient about nothing: the same rules as [`decode`]).
pub fn classify(value: Value) -> Result<Message, Malformed> {
    let Value::Object(map) = value else {
        return Err(Malformed {
            code: code::INVALID_REQUEST,
            message: "a JSON-RPC message must be an object (batches are not part of MCP)".into(),
            raw_id: Value::Null,
        });
    };
    let raw_id = map.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |message: &str| Malformed {
        code: code::INVALID_REQUEST,
        message: message.to_owned(),
        raw_id: if RequestId::from_value(&raw_id).is_some() {
            raw_id.clone()
        } else {
            Value::Null
        },
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("`jsonrpc` must be \"2.0\""));
    }
    let id = match map.get("id") {
        None => None,
        Some(v) => Some(
            RequestId::from_value(v).ok_or_else(|| invalid("`id` must be a string or a number"))?,
        ),
    };
    match (map.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => {
            check_params(&map, &invalid)?;
            Ok(Message::Request {
                id,
                raw_id: raw_id.clone(),
                method: method.clone(),
                value: map,
            })
        }
        (Some(Value::String(method)), None) => {
            check_params(&map, &invalid)?;
            Ok(Message::Notification {
                method: method.clone(),
                value: map,
            })
        }
        (Some(_), _) => Err(invalid("`method` must be a string")),
        (None, Some(id)) => {
            if map.contains_key("result") == map.contains_key("error") {
                return Err(invalid(
                    "a response has exactly one of `result` and `error`",
                ));
            }
            Ok(Message::Response { id, value: map })
        }
        (None, None) => Err(invalid("neither a request, a notification nor a response")),
    }
}

fn check_params(
    map: &Map<String, Value>,
    invalid: &dyn Fn(&str) -> Malformed,
) -> Result<(), Malformed> {
    match map.get("params") {
        None | Some(Value::Object(_) | Value::Array(_)) => Ok(()),
        Some(_) => Err(invalid("`params` must be an object or an array")),
    }
}

/// A JSON-RPC error response.
pub fn error_response(raw_id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": raw_id, "error": {"code": code, "message": message}})
}

/// A successful `tools/call` response that is a tool error: what a refused or failed call looks
/// like to the model, so it can adapt (`isError: true`, the reason as text).
pub fn tool_error_result(raw_id: &Value, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": raw_id,
        "result": {"content": [{"type": "text", "text": text}], "isError": true}
    })
}

/// Protocol 2026-07-28 requests carry their version in `params._meta`; their results must say
/// `resultType`.
pub const PROTOCOL_VERSION_META_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// [`tool_error_result`] in the shape the request's protocol wants: a 2026-07-28 request (its
/// `_meta` names a protocol version) gets `resultType: "complete"`.
pub fn tool_error_for(request: Option<&Value>, raw_id: &Value, text: &str) -> Value {
    let mut answer = tool_error_result(raw_id, text);
    let modern = request
        .and_then(|r| r.pointer("/params/_meta"))
        .is_some_and(|m| m.get(PROTOCOL_VERSION_META_KEY).is_some());
    if modern && let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.insert("resultType".into(), json!("complete"));
    }
    answer
}

/// `notifications/progress` for a request that carried a `progressToken`.
pub fn progress_notification(token: &Value, progress: u64, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": token, "progress": progress, "message": message}
    })
}

/// One message as one line (no embedded newline: `serde_json` escapes them in strings).
pub fn to_line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let m = decode(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#).unwrap();
        assert!(matches!(m, Message::Request { ref method, .. } if method == "tools/call"));
        let m = decode(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let m = decode(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(m, Message::Response { .. }));
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let err = decode(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"write_file"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.code, code::PARSE_ERROR);
        let err =
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"a","method":"tools/call"}"#).unwrap_err();
        assert_eq!(err.code, code::PARSE_ERROR);
    }

    #[test]
    fn refuses_batches_bad_ids_and_shapes() {
        assert_eq!(decode(b"[]").unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(decode(b"{not json").unwrap_err().code, code::PARSE_ERROR);
        let err = decode(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err();
        assert_eq!(err.raw_id, Value::Null);
        let err = decode(br#"{"jsonrpc":"1.0","id":3,"method":"x"}"#).unwrap_err();
        assert_eq!(err.raw_id, json!(3));
        assert!(decode(br#"{"jsonrpc":"2.0","id":3,"method":"x","params":7}"#).is_err());
        assert!(decode(br#"{"jsonrpc":"2.0","id":3,"result":1,"error":{}}"#).is_err());
    }

    #[test]
    fn ids_compare_as_a_javascript_server_would() {
        let one = RequestId::from_value(&json!(1)).unwrap();
        let one_f = RequestId::from_value(&serde_json::from_str::<Value>("1.0").unwrap()).unwrap();
        assert_eq!(one, one_f);
        assert_ne!(one, RequestId::from_value(&json!("1")).unwrap());
    }

    #[test]
    fn a_line_has_exactly_one_newline() {
        let line = to_line(&json!({"text": "a\nb"}));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
