//! The sidecar protocol's JSON lines: `WireRequest` out, `WireReply` in (see `docs/SIDECAR.md`).
//!
//! These are the only types that touch the sidecar's pipes; the rest of the crate speaks
//! [`ScoreRequest`] and [`Score`].

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ClassifierError, Score, ScoreRequest, millis};

/// One request line: `{"id", "action": {...}, "context", "deadline_ms"}`.
#[derive(Serialize)]
struct WireRequest<'a> {
    id: u64,
    action: WireAction<'a>,
    context: Option<&'a Value>,
    deadline_ms: u64,
}

/// The action as the sidecar sees it. Absent optional fields are sent as `null`, so every request
/// has the same keys.
#[derive(Serialize)]
struct WireAction<'a> {
    tool: &'a str,
    input: &'a Value,
    session_id: Option<&'a str>,
    agent: Option<&'a str>,
    cwd: Option<&'a str>,
}

/// Encodes `request` as one line, newline included. `remaining` is what is left of the deadline.
pub(crate) fn encode_request(
    id: u64,
    request: &ScoreRequest,
    remaining: Duration,
) -> Result<Vec<u8>, ClassifierError> {
    let wire = WireRequest {
        id,
        action: WireAction {
            tool: &request.tool,
            input: &request.input,
            session_id: request.session_id.as_deref(),
            agent: request.agent.as_deref(),
            cwd: request.cwd.as_deref(),
        },
        context: request.context.as_ref(),
        deadline_ms: millis(remaining),
    };
    let mut line = serde_json::to_vec(&wire)
        .map_err(|error| ClassifierError::Failed(format!("cannot encode the request: {error}")))?;
    line.push(b'\n');
    Ok(line)
}

/// One reply line: a score (`score`, `label`, optional `explanation` and `model`) or an `error`.
/// Unknown fields are ignored so sidecars may add their own.
#[derive(Deserialize, Debug)]
pub(crate) struct WireReply {
    pub(crate) id: u64,
    score: Option<f64>,
    label: Option<String>,
    explanation: Option<String>,
    model: Option<String>,
    error: Option<String>,
}

impl WireReply {
    /// The reply as a result, checked: an `error` wins; otherwise `score` (finite, in `[0, 1]`) and
    /// `label` are required. `default_model` names the model when the reply does not.
    pub(crate) fn into_result(self, default_model: &str) -> Result<Score, ClassifierError> {
        if let Some(error) = self.error {
            return Err(ClassifierError::Failed(format!("sidecar: {error}")));
        }
        let score = self.score.ok_or_else(|| {
            ClassifierError::Protocol("reply has neither `score` nor `error`".into())
        })?;
        if !Score::in_range(score) {
            return Err(ClassifierError::Protocol(format!(
                "score {score} is not within [0, 1]"
            )));
        }
        let label = self.label.ok_or_else(|| {
            ClassifierError::Protocol("reply has a `score` but no `label`".into())
        })?;
        Ok(Score {
            score,
            label,
            model: self.model.unwrap_or_else(|| default_model.to_owned()),
            explanation: self.explanation,
        })
    }
}

/// Finds a reply's `id` in a line that is not a valid reply: a malformed reply (`"score": NaN`,
/// `"score": "high"`) or the first bytes of an over-long one. With the id, the daemon can fail that
/// one request at once instead of leaving it to time out.
///
/// Reads the top-level object up to its `id` key; returns `None` if the line is not an object or
/// breaks before an `id` that is an unsigned integer.
pub(crate) fn find_id(line: &[u8]) -> Option<u64> {
    let mut id = None;
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    // Stopping at `id` leaves the rest of the object unread, which serde_json reports as an error
    // even when `id` was found; the id is kept outside the result for that reason.
    let _ = IdProbe(&mut id).deserialize(&mut deserializer);
    id
}

struct IdProbe<'a>(&'a mut Option<u64>);

impl<'de> DeserializeSeed<'de> for IdProbe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IdProbe<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a reply object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "id" {
                *self.0 = Some(map.next_value::<u64>()?);
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_line_has_the_documented_shape() {
        let mut request = ScoreRequest::new(
            "act_1",
            "Bash",
            json!({"command": "ls -la"}),
            Duration::from_secs(9),
        );
        request.session_id = Some("s1".into());
        request.context = Some(json!({"task": "tidy up"}));
        let line = encode_request(42, &request, Duration::from_millis(1234)).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            value,
            json!({
                "id": 42,
                "action": {
                    "tool": "Bash",
                    "input": {"command": "ls -la"},
                    "session_id": "s1",
                    "agent": null,
                    "cwd": null,
                },
                "context": {"task": "tidy up"},
                "deadline_ms": 1234,
            })
        );
    }

    fn reply(line: &str) -> Result<Score, ClassifierError> {
        serde_json::from_str::<WireReply>(line)
            .unwrap()
            .into_result("default-model")
    }

    #[test]
    fn a_score_reply_becomes_a_score() {
        assert_eq!(
            reply(r#"{"id":1,"score":0.25,"label":"benign","extra":[1,2]}"#),
            Ok(Score {
                score: 0.25,
                label: "benign".into(),
                model: "default-model".into(),
                explanation: None,
            })
        );
        assert_eq!(
            reply(r#"{"id":1,"score":1,"label":"malicious","model":"m2","explanation":"why"}"#),
            Ok(Score {
                score: 1.0,
                label: "malicious".into(),
                model: "m2".into(),
                explanation: Some("why".into()),
            })
        );
    }

    #[test]
    fn bad_replies_are_errors() {
        assert!(matches!(
            reply(r#"{"id":1,"score":7,"label":"x"}"#),
            Err(ClassifierError::Protocol(_))
        ));
        assert!(matches!(
            reply(r#"{"id":1,"score":-0.5,"label":"x"}"#),
            Err(ClassifierError::Protocol(_))
        ));
        assert!(matches!(
            reply(r#"{"id":1,"label":"x"}"#),
            Err(ClassifierError::Protocol(_))
        ));
        assert!(matches!(
            reply(r#"{"id":1,"score":0.5}"#),
            Err(ClassifierError::Protocol(_))
        ));
        assert_eq!(
            reply(r#"{"id":1,"error":"model not loaded","score":0.1}"#),
            Err(ClassifierError::Failed("sidecar: model not loaded".into()))
        );
    }

    #[test]
    fn find_id_salvages_the_id_of_a_malformed_reply() {
        assert_eq!(
            find_id(br#"{"id": 5, "score": NaN, "label": "x"}"#),
            Some(5)
        );
        assert_eq!(
            find_id(br#"{"label": "x", "id": 6, "score": "high"}"#),
            Some(6)
        );
        assert_eq!(
            find_id(br#"{"id": 7, "score": 0.1, "explanation": "aaaa"#),
            Some(7)
        );
        assert_eq!(find_id(br#"{"score": 0.1, "id": 8}"#), Some(8));
    }

    #[test]
    fn find_id_gives_up_on_lines_without_a_usable_id() {
        for line in [
            &b"not json"[..],
            br#""a string""#,
            br#"[1, 2]"#,
            br#"{"score": NaN, "id": 5}"#,
            br#"{"id": "5"}"#,
            br#"{"id": -1}"#,
            br#"{"no_id": true}"#,
            b"",
        ] {
            assert_eq!(find_id(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
