//! The one HTTP error type and its JSON envelope, and the body/query extractors that turn
//! malformed input into that envelope (naming the offending field) instead of axum's plain text.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gatehouse_ledger::LedgerError;
use gatehouse_protocol::decode::{DecodeError, DecodeErrorKind, field_at};
use gatehouse_protocol::{ErrorBody, ErrorEnvelope};
use serde::de::DeserializeOwned;

use crate::app::ActionError;
use crate::check::CheckError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_field(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, axum::Json(envelope)).into_response()
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            err.to_string(),
        )
    }
}

impl From<CheckError> for ApiError {
    fn from(err: CheckError) -> ApiError {
        match err {
            CheckError::Invalid { field, message } => ApiError::invalid(field, message),
            CheckError::ToolUseConflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "tool_use_conflict", message)
                    .with_field("tool_use_id")
            }
            CheckError::Ledger(err) => err.into(),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(err: ActionError) -> ApiError {
        match err {
            ActionError::NotFound(_) => ApiError::not_found(err.to_string()),
            ActionError::AlreadyDecided(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_decided", err.to_string())
            }
            ActionError::ActionMismatch(_) => {
                ApiError::new(StatusCode::CONFLICT, "action_mismatch", err.to_string())
                    .with_field("action_hash")
            }
            ActionError::Invalid { field, message } => ApiError::invalid(field, message),
            ActionError::EditRefused(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "edit_refused", message)
                    .with_field("input")
            }
            ActionError::Forbidden(message) => ApiError::forbidden("forbidden_role", message),
            ActionError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            ActionError::Missing(message) => ApiError::not_found(message),
            ActionError::Presence(err) => err.into(),
            ActionError::Ledger(err) => err.into(),
        }
    }
}

impl From<crate::presence::PresenceError> for ApiError {
    fn from(err: crate::presence::PresenceError) -> ApiError {
        use crate::presence::PresenceError;
        let message = err.to_string();
        match err {
            PresenceError::Required => {
                ApiError::forbidden("presence_required", message).with_field("presence")
            }
            PresenceError::NotEnrolled => ApiError::forbidden("presence_not_enrolled", message),
            PresenceError::Invalid(_) => {
                ApiError::forbidden("presence_invalid", message).with_field("presence")
            }
            PresenceError::EnrolmentRefused(_) => ApiError::forbidden("enrolment_refused", message),
            PresenceError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "presence_store", message)
            }
        }
    }
}

/// A JSON body: `Content-Type: application/json` required, at most the body limit, and a
/// deserialisation error names the field it is about.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        decode(&bytes).map(ApiJson)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than {} bytes",
                gatehouse_protocol::MAX_BODY_BYTES
            ),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            rejection.body_text(),
        )
    }
}

/// Parses a JSON body strictly (no duplicate keys, `gatehouse_protocol::decode`), naming the
/// field at fault.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    gatehouse_protocol::decode::decode_json(bytes).map_err(ApiError::from)
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> ApiError {
        let code = match err.kind {
            DecodeErrorKind::Malformed => "malformed_json",
            DecodeErrorKind::DuplicateKey => "duplicate_key",
            DecodeErrorKind::Invalid => "invalid_request",
        };
        let error = ApiError::new(StatusCode::BAD_REQUEST, code, err.message);
        match err.field {
            Some(field) => error.with_field(field),
            None => error,
        }
    }
}

/// A query value that does not fit: `invalid_request`, naming the parameter where serde can.
fn invalid_at(path: &serde_path_to_error::Path, err: &impl std::fmt::Display) -> ApiError {
    let message = err.to_string();
    let field = field_at(&path.to_string(), &message);
    let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message);
    match field {
        Some(field) => error.with_field(field),
        None => error,
    }
}

/// A query string, with the same error envelope.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| invalid_at(err.path(), err.inner()))
    }
}

/// A path parameter, with the same error envelope (e.g. for an id that is not UTF-8).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    rejection.body_text(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_protocol::CheckRequest;

    #[test]
    fn decode_names_the_field_at_fault() {
        let missing = decode::<CheckRequest>(br#"{"input":{}}"#).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("tool"));
        let mistyped = decode::<CheckRequest>(br#"{"tool":"Bash","input":"ls"}"#).unwrap_err();
        assert_eq!(mistyped.field.as_deref(), Some("input"));
        let unknown =
            decode::<CheckRequest>(br#"{"tool":"Bash","input":{},"evil":1}"#).unwrap_err();
        assert_eq!(unknown.field.as_deref(), Some("evil"));
        let wait =
            decode::<CheckRequest>(br#"{"tool":"Bash","input":{},"wait_ms":-1}"#).unwrap_err();
        assert_eq!(wait.field.as_deref(), Some("wait_ms"));
        let broken = decode::<CheckRequest>(br#"{"tool":"#).unwrap_err();
        assert_eq!(broken.code, "malformed_json");
        let trailing = decode::<CheckRequest>(br#"{"tool":"Bash","input":{}} x"#).unwrap_err();
        assert_eq!(trailing.code, "malformed_json");
        let twice =
            decode::<CheckRequest>(br#"{"tool":"Bash","input":{"c":"ls","c":"rm"}}"#).unwrap_err();
        assert_eq!(twice.code, "duplicate_key");
        assert_eq!(twice.field.as_deref(), Some("input.c"));
    }
}
