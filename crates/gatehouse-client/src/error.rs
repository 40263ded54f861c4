//! What can go wrong talking to the daemon, and how a transport failure is classified for retries.
//!
//! Every variant is a failure: callers that gate an action on a check treat any `Err` as "do not
//! run it". A `reject` verdict is not an error; it arrives as `Ok(CheckResponse)`.

use std::error::Error as _;

/// A failed call to the daemon.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// Connecting failed (refused, no route, DNS), or the connection was reset or closed before a
    /// whole response arrived.
    #[error("gatehouse daemon unreachable: {0}")]
    Unreachable(String),
    /// The total deadline of a check, or the time limit of one HTTP attempt, passed.
    #[error("timed out waiting for the gatehouse daemon")]
    Timeout,
    /// The daemon answered with a non-2xx status. `code` comes from its error envelope
    /// (`{"error":{"code","message","field"?}}`); a non-2xx response without that envelope (a proxy
    /// page, a redirect, a plain-text 401) is reported here too, with `code` `"unknown"` and the
    /// start of the body as `message`, so the status is never lost.
    #[error("gatehouse daemon answered {status} {code}: {message}{}", field_suffix(.field))]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// A 2xx response whose body is not what the protocol says (not JSON, wrong shape, unknown
    /// verdict, a poll answered for another action, a body over the size limit).
    #[error("unexpected response from the gatehouse daemon: {0}")]
    BadResponse(String),
    /// The base URL (or an action id put into a path) cannot be used.
    #[error("invalid daemon URL: {0}")]
    InvalidUrl(String),
    /// The token cannot be sent in an `Authorization` header (not visible ASCII).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The CA file for an `https` daemon (`GATEHOUSE_CA_FILE`) cannot be read or holds no
    /// certificate.
    #[error("TLS set-up: {0}")]
    Tls(String),
}

/// The `code` of [`ClientError::Api`] for a non-2xx response that carries no error envelope.
pub const UNKNOWN_API_CODE: &str = "unknown";

fn field_suffix(field: &Option<String>) -> String {
    match field {
        Some(field) => format!(" (field `{field}`)"),
        None => String::new(),
    }
}

/// One HTTP attempt's failure, with what a retry would risk.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting failed: the request never reached the daemon.
    NotSent(String),
    /// The connection failed after the request may have reached the daemon (reset, closed before
    /// the whole response): a retried POST could act twice unless the daemon can re-attach it.
    Interrupted(String),
    /// Anything else (a timeout, an answer we understood as an error): never retried.
    Final(ClientError),
}

impl From<Failure> for ClientError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotSent(msg) | Failure::Interrupted(msg) => ClientError::Unreachable(msg),
            Failure::Final(err) => err,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Failure::Final(err)
    }
}

/// Classifies a transport error from reqwest.
pub(crate) fn classify(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        Failure::Final(ClientError::Timeout)
    } else if err.is_builder() {
        Failure::Final(ClientError::InvalidUrl(describe(err)))
    } else if err.is_connect() {
        Failure::NotSent(describe(err))
    } else {
        Failure::Interrupted(describe(err))
    }
}

/// The error and its sources on one line: reqwest's own message alone rarely says what happened.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_names_status_code_and_field() {
        let err = ClientError::Api {
            status: 400,
            code: "invalid_request".into(),
            message: "tool is empty".into(),
            field: Some("tool".into()),
        };
        assert_eq!(
            err.to_string(),
            "gatehouse daemon answered 400 invalid_request: tool is empty (field `tool`)"
        );
    }

    #[test]
    fn only_final_failures_keep_their_variant() {
        assert!(matches!(
            ClientError::from(Failure::Interrupted("reset".into())),
            ClientError::Unreachable(m) if m == "reset"
        ));
        assert!(matches!(
            ClientError::from(Failure::Final(ClientError::Timeout)),
            ClientError::Timeout
        ));
    }
}
