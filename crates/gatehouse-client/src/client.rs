//! The [`Client`] handle: base URL, bearer token, one HTTP attempt, and the approver calls.
//!
//! Every call goes through [`Client::attempt`], which bounds the whole exchange (connect, send,
//! read the body) by one time limit, reads at most [`MAX_RESPONSE_BYTES`], and turns the answer
//! into the protocol type or a [`ClientError`]. The agent's calls that wait through pauses live in
//! `check.rs`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_protocol::{
    ActionList, ActionView, CheckResponse, Decision, DecisionRequest, ErrorEnvelope, Health,
    LabelRequest, LabelledAction, LoginLink, ReviewLabel, ReviewList,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, Failure, UNKNOWN_API_CODE, classify};

/// Time limit of one call that does not wait for a person (approver calls, health).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read; a larger one is a [`ClientError::BadResponse`].
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Connecting to the daemon (on loopback: instant or refused) may take at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a non-envelope error body is kept in [`ClientError::Api::message`].
const ERROR_SNIPPET_CHARS: usize = 200;

/// A handle on one daemon. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Validated in [`Client::new`]: `http` (to loopback) or `https`, a host, no credentials,
    /// query or fragment.
    base: Url,
    /// `Bearer <token>`, marked sensitive; `None` when the token is empty.
    auth: Option<HeaderValue>,
    timeout: Duration,
    /// The daemon's check socket, for a `unix:` client (every connection goes there).
    socket: Option<PathBuf>,
}

/// `GET /v1/actions` filters; unset fields are left out of the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionQuery {
    /// `pending`, `allow`, `reject`, ... as the daemon documents it.
    pub status: Option<String>,
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<String>,
}

/// `GET /v1/review` filters; unset fields are left out of the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewQuery {
    /// `unlabelled` (the daemon's default), `labelled` or `all`.
    pub status: Option<String>,
    /// Also list every flagged action, not only disagreements and decisions against the score.
    pub include_flagged: bool,
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<String>,
}

/// Whether a call sends the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    Bearer,
    None,
}

impl Client {
    /// A client for the daemon at `base_url` (like `http://127.0.0.1:7400`) that authenticates
    /// with `token`.
    ///
    /// Surrounding whitespace of the token is ignored (token files end in a newline); an empty
    /// token sends no `Authorization` header, which is enough for [`Client::health`]. Plain
    /// `http` is spoken only to a loopback host (`127.0.0.0/8`, `[::1]`, `localhost`); a remote
    /// daemon is reached over `https` (docs/TEAM.md, "Remote access"), verified against the CA
    /// certificates in the PEM file named by [`CA_FILE_ENV`] if it is set, else the system's
    /// roots. Redirects are never followed and system proxies are ignored, so the token only
    /// ever goes to `base_url`'s host.
    ///
    /// `unix:/path/to/check.sock` talks to the daemon's check socket (hardened mode) instead. It
    /// serves only the agent's calls ([`Client::check`], its polls, [`Client::health`]); the
    /// token may be empty there, since the daemon knows the caller from the socket.
    pub fn new(base_url: &str, token: &str) -> Result<Client, ClientError> {
        let ca_file = std::env::var_os(CA_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Client::with_ca_file(base_url, token, ca_file.as_deref())
    }

    /// [`Client::new`] with the CA file given rather than read from [`CA_FILE_ENV`]: an `https`
    /// daemon's certificate must then chain to one of the file's certificates (and to nothing
    /// else); `None` trusts the system's roots. Ignored for `http` and `unix:` URLs.
    pub fn with_ca_file(
        base_url: &str,
        token: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Client, ClientError> {
        let (base, socket) = match base_url.trim().strip_prefix("unix:") {
            Some("") => {
                return Err(ClientError::InvalidUrl(
                    "`unix:` needs the socket's path, like unix:/run/gatehouse/check.sock".into(),
                ));
            }
            // The socket carries plain HTTP; the host name is only for the Host header.
            Some(path) => (socket_base_url()?, Some(PathBuf::from(path))),
            None => (parse_base_url(base_url)?, None),
        };
        let auth = bearer_header(token)?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("gatehouse-client/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &socket {
            builder = builder.unix_socket(path.clone());
        }
        if base.scheme() == "https" {
            builder = builder.https_only(true);
            if let Some(path) = ca_file {
                builder = builder.tls_certs_only(read_ca_file(path)?);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::InvalidUrl(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                timeout: DEFAULT_TIMEOUT,
                socket,
            }),
        })
    }

    /// A client for the daemon's check socket at `path` (the same as `new("unix:PATH", token)`).
    pub fn unix(path: impl Into<PathBuf>, token: &str) -> Result<Client, ClientError> {
        let path = path.into();
        let path = path.to_str().ok_or_else(|| {
            ClientError::InvalidUrl(format!("{}: the socket path is not UTF-8", path.display()))
        })?;
        Client::new(&format!("unix:{path}"), token)
    }

    /// The same client with another time limit for calls that do not wait for a person
    /// (default [`DEFAULT_TIMEOUT`]). Checks and polls size their own limits from their wait.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Client {
        let inner = Inner {
            http: self.inner.http.clone(),
            base: self.inner.base.clone(),
            auth: self.inner.auth.clone(),
            timeout,
            socket: self.inner.socket.clone(),
        };
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The daemon's base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `POST /v1/actions/{id}/decision` (approver token): approve or deny a paused action.
    /// `action_hash` is the `action_hash` of the action the person was shown: required to
    /// approve (the daemon answers `409 action_mismatch` if it names another or an edited
    /// action, `409 already_decided` if the action was decided already).
    pub async fn decide(
        &self,
        action_id: &str,
        decision: Decision,
        note: Option<&str>,
        action_hash: Option<&str>,
    ) -> Result<ActionView, ClientError> {
        let url = self.action_url(action_id, &["decision"])?;
        let body = DecisionRequest {
            decision,
            note: note.map(str::to_owned),
            action_hash: action_hash.map(str::to_owned),
            presence: None,
            input: None,
        };
        self.call(Method::POST, url, Some(&body)).await
    }

    /// `POST /v1/actions/{id}/decision` with a whole [`DecisionRequest`] (edit then approve:
    /// `input` is the edited input; presence, when the daemon requires it).
    pub async fn decide_with(
        &self,
        action_id: &str,
        request: &DecisionRequest,
    ) -> Result<ActionView, ClientError> {
        let url = self.action_url(action_id, &["decision"])?;
        self.call(Method::POST, url, Some(request)).await
    }

    /// `GET /v1/actions/{id}` (approver token): the whole action as the ledger knows it.
    pub async fn action(&self, action_id: &str) -> Result<ActionView, ClientError> {
        let url = self.action_url(action_id, &[])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v1/actions?status=&limit=&before=` (approver token): one page, newest first.
    pub async fn actions(&self, query: &ActionQuery) -> Result<ActionList, ClientError> {
        let mut url = self.url(&["v1", "actions"])?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(status) = &query.status {
                pairs.append_pair("status", status);
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(before) = &query.before {
                pairs.append_pair("before", before);
            }
        }
        strip_empty_query(&mut url);
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v1/disagreements?limit=` (approver token): actions where tier 2 and the verdict differ.
    pub async fn disagreements(&self, limit: Option<u32>) -> Result<ActionList, ClientError> {
        let mut url = self.url(&["v1", "disagreements"])?;
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v1/review` (approver token): one page of the review queue, newest first.
    pub async fn review(&self, query: &ReviewQuery) -> Result<ReviewList, ClientError> {
        let mut url = self.url(&["v1", "review"])?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(status) = &query.status {
                pairs.append_pair("status", status);
            }
            if query.include_flagged {
                pairs.append_pair("include", "flagged");
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(before) = &query.before {
                pairs.append_pair("before", before);
            }
        }
        strip_empty_query(&mut url);
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `POST /v1/actions/{id}/label` (approver token): records a reviewer's label in the
    /// ledger; labelling again appends a new label (the latest counts).
    pub async fn label(
        &self,
        action_id: &str,
        label: ReviewLabel,
        note: Option<&str>,
    ) -> Result<LabelledAction, ClientError> {
        let url = self.action_url(action_id, &["label"])?;
        let body = LabelRequest {
            label,
            note: note.map(str::to_owned),
        };
        self.call(Method::POST, url, Some(&body)).await
    }

    /// `POST /v1/actions/{id}/withdraw` (agent token): the agent will not run this paused action
    /// (its MCP client cancelled the call, or left). The daemon records a deny as the action's one
    /// decision; an action decided already answers `409 already_decided`.
    pub async fn withdraw(&self, action_id: &str) -> Result<CheckResponse, ClientError> {
        let url = self.action_url(action_id, &["withdraw"])?;
        let empty = serde_json::Map::new();
        self.call(Method::POST, url, Some(&empty)).await
    }

    /// `GET /healthz`: needs no token, and none is sent.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let url = self.url(&["healthz"])?;
        let timeout = self.inner.timeout;
        self.attempt(Method::GET, url, Auth::None, None::<&()>, timeout)
            .await
            .map_err(ClientError::from)
    }

    /// `POST /v1/login-codes` (approver token): a one-time dashboard login URL.
    pub async fn login_link(&self) -> Result<LoginLink, ClientError> {
        let url = self.url(&["v1", "login-codes"])?;
        let empty = serde_json::Map::new();
        self.call(Method::POST, url, Some(&empty)).await
    }

    /// One authenticated attempt with the default time limit.
    pub(crate) async fn call<B, T>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let timeout = self.inner.timeout;
        self.attempt(method, url, Auth::Bearer, body, timeout)
            .await
            .map_err(ClientError::from)
    }

    /// One HTTP exchange, bounded as a whole by `timeout`: never retried here.
    pub(crate) async fn attempt<B, T>(
        &self,
        method: Method,
        url: Url,
        auth: Auth,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, Failure>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let mut request = self.inner.http.request(method, url);
        if let (Auth::Bearer, Some(header)) = (auth, &self.inner.auth) {
            request = request.header(AUTHORIZATION, header.clone());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let exchange = async {
            let mut response = request.send().await.map_err(|e| classify(&e))?;
            let status = response.status();
            let bytes = read_body(&mut response).await?;
            decode(status, &bytes)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Failure::Final(ClientError::Timeout)),
        }
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// `/v1/actions/{id}/...`, refusing ids that would not stay one path segment.
    pub(crate) fn action_url(&self, action_id: &str, rest: &[&str]) -> Result<Url, ClientError> {
        // The url crate drops "." and ".." segments, which would turn `/v1/actions/..` into
        // another endpoint; '/' and '%' are percent-encoded, so every other id stays one segment.
        if action_id.is_empty() || action_id == "." || action_id == ".." {
            return Err(ClientError::InvalidUrl(format!(
                "action id {action_id:?} cannot be a path segment"
            )));
        }
        let mut segments = vec!["v1", "actions", action_id];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("socket", &self.inner.socket)
            .field("token", &self.inner.auth.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// The base URL of requests sent over the check socket.
fn socket_base_url() -> Result<Url, ClientError> {
    Url::parse("http://localhost/").map_err(|e| ClientError::InvalidUrl(e.to_string()))
}

/// The environment variable naming a PEM file of CA certificates an `https` daemon's
/// certificate must chain to (for a self-signed or private-CA daemon).
pub const CA_FILE_ENV: &str = "GATEHOUSE_CA_FILE";

fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path).map_err(|e| {
        ClientError::Tls(format!(
            "cannot read the CA file {} ({CA_FILE_ENV}): {e}",
            path.display()
        ))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ClientError::Tls(format!(
            "the CA file {} is not PEM certificates: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "the CA file {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Plain http only to this machine: anything else would carry the token in clear.
fn is_loopback_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn parse_base_url(base_url: &str) -> Result<Url, ClientError> {
    let url = Url::parse(base_url.trim())
        .map_err(|e| ClientError::InvalidUrl(format!("{base_url:?}: {e}")))?;
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some("only http (to this machine) and https are spoken")
    } else if url.scheme() == "http" && url.host().is_some() && !is_loopback_host(&url) {
        Some("plain http only to a loopback address; a remote daemon is reached over https")
    } else if url.cannot_be_a_base() || url.host().is_none() {
        Some("no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("credentials belong in the token, not the URL")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("a query or fragment has no meaning here")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ClientError::InvalidUrl(format!("{base_url:?}: {problem}"))),
        None => Ok(url),
    }
}

fn bearer_header(token: &str) -> Result<Option<HeaderValue>, ClientError> {
    let token = token.trim();
    if token.is_empty() {
        return Ok(None);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        // Never echo the token itself.
        return Err(ClientError::InvalidToken(
            "a token is visible ASCII without spaces".into(),
        ));
    }
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ClientError::InvalidToken("not a valid header value".into()))?;
    header.set_sensitive(true);
    Ok(Some(header))
}

/// `query_pairs_mut` leaves a bare `?` when nothing was appended.
fn strip_empty_query(url: &mut Url) {
    if url.query() == Some("") {
        url.set_query(None);
    }
}

async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_big = || {
        Failure::Final(ClientError::BadResponse(format!(
            "body larger than {MAX_RESPONSE_BYTES} bytes"
        )))
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A 2xx body as `T`; any other status as [`ClientError::Api`].
fn decode<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, Failure> {
    if status.is_success() {
        return serde_json::from_slice(body).map_err(|e| {
            Failure::Final(ClientError::BadResponse(format!(
                "{status} body is not the expected JSON: {e}"
            )))
        });
    }
    let err = match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(envelope) => ClientError::Api {
            status: status.as_u16(),
            code: envelope.error.code,
            message: envelope.error.message,
            field: envelope.error.field,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: UNKNOWN_API_CODE.into(),
            message: non_envelope_message(status, body),
            field: None,
        },
    };
    Err(Failure::Final(err))
}

fn non_envelope_message(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("non-2xx status");
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return reason.to_owned();
    }
    let mut snippet: String = text.chars().take(ERROR_SNIPPET_CHARS).collect();
    if snippet.len() < text.len() {
        snippet.push('…');
    }
    format!("{reason}: {snippet}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_http_to_loopback_or_https_with_a_host() {
        for bad in [
            "not a url",
            "http://10.0.0.5:7400",
            "http://gatehouse.example.com",
            "ftp://127.0.0.1",
            "mailto:me@example.org",
            "http://user:pw@127.0.0.1:7400",
            "http://127.0.0.1:7400/?x=1",
            "http://127.0.0.1:7400/#top",
        ] {
            assert!(
                matches!(Client::new(bad, "t"), Err(ClientError::InvalidUrl(_))),
                "{bad} was accepted"
            );
        }
        for good in [
            "http://127.0.0.1:7400",
            "http://localhost:7400/",
            "http://[::1]:7400",
            "https://127.0.0.1:7400",
            "https://gatehouse.example.com",
        ] {
            assert!(Client::new(good, "t").is_ok(), "{good} was refused");
        }
    }

    #[test]
    fn a_unix_socket_client_names_its_path() -> Result<(), ClientError> {
        let client = Client::new("unix:/run/gatehouse/check.sock", "")?;
        assert_eq!(
            client.url(&["v1", "check"])?.as_str(),
            "http://localhost/v1/check"
        );
        let shown = format!("{client:?}");
        assert!(shown.contains("/run/gatehouse/check.sock"), "{shown}");
        assert!(matches!(
            Client::new("unix:", ""),
            Err(ClientError::InvalidUrl(_))
        ));
        Ok(())
    }

    #[test]
    fn paths_append_to_the_base_and_encode_the_action_id() -> Result<(), ClientError> {
        let client = Client::new("http://127.0.0.1:7400/gh/", "t")?;
        assert_eq!(
            client.action_url("a/b?c#d", &["decision"])?.as_str(),
            "http://127.0.0.1:7400/gh/v1/actions/a%2Fb%3Fc%23d/decision"
        );
        for bad in ["", ".", ".."] {
            assert!(matches!(
                client.action_url(bad, &[]),
                Err(ClientError::InvalidUrl(_))
            ));
        }
        Ok(())
    }

    #[test]
    fn token_is_trimmed_validated_and_never_shown() -> Result<(), ClientError> {
        let client = Client::new("http://127.0.0.1:7400", "  s3cret\n")?;
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(matches!(
            Client::new("http://127.0.0.1:7400", "two words"),
            Err(ClientError::InvalidToken(_))
        ));
        assert!(bearer_header("")?.is_none());
        Ok(())
    }

    #[test]
    fn non_envelope_errors_keep_status_and_a_bounded_snippet() {
        let long = "x".repeat(1000);
        let Err(Failure::Final(ClientError::Api {
            status,
            code,
            message,
            ..
        })) = decode::<Health>(StatusCode::BAD_GATEWAY, long.as_bytes())
        else {
            panic!("expected an Api error");
        };
        assert_eq!((status, code.as_str()), (502, UNKNOWN_API_CODE));
        assert!(message.starts_with("Bad Gateway: xxx"), "{message}");
        assert!(message.chars().count() < 250, "{message}");
    }
}
