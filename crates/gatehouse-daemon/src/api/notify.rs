//! The confirmation page a remote approve/deny link opens (`GET /confirm/{secret}`), its
//! presence challenge and the confirmation itself (`docs/APPROVALS.md`, "Remote approvals").
//!
//! *Invariant*: the link is a capability to *see* one action and *ask* to decide it, once. The
//! decision goes through `App::decide_by` with the link's action hash and decision, under the
//! same person-presence rules as the dashboard: with presence on (the default), only an
//! assertion from an enrolled authenticator decides. A refused or unconfirmed attempt decides
//! nothing; an unconfirmed presence gives the link back for another try.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_protocol::{ActionView, Decision, PresenceAssertion, Verdict};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath};
use crate::app::{ActionError, AppState};
use crate::auth::Person;
use crate::clock::now_ms;
use crate::notify::links::{Link, LinkRefused};
use crate::presence::{PresenceMode, RequestOptions};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Invisible and direction-changing characters are shown, not obeyed.
            c if c.is_control() && c != '\n' && c != '\t' => {
                out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)))
            }
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => out.push_str(&format!("\\u{{{:04X}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>Gatehouse: {title}</title><link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body class=\"confirm-page\"><main class=\"panel confirm\">{body}</main></body></html>\n",
        title = escape(title)
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn refused_page(reason: &str) -> Response {
    page(
        StatusCode::GONE,
        "link not usable",
        &format!(
            "<h1>Nothing to confirm</h1><p data-testid=\"confirm-refused\">{}</p>\
             <p class=\"panel-hint\">Nothing was decided. Open the dashboard to see the action.</p>",
            escape(reason)
        ),
    )
}

/// `410 link_refused`: the link cannot be used (unknown, used, expired, withdrawn).
fn gone(message: String) -> ApiError {
    ApiError::new(StatusCode::GONE, "link_refused", message)
}

/// The link and its action, if both may still be acted on.
async fn usable(state: &AppState, secret: &str) -> Result<(Link, ActionView), String> {
    let link = state
        .notify
        .links
        .peek(secret, now_ms())
        .map_err(|refused| refused.to_string())?;
    let view = state
        .action(&link.action_id, Duration::ZERO)
        .await
        .map_err(|err| err.to_string())?;
    if view.verdict != Verdict::Pending {
        state.notify.links.withdraw(&link.action_id);
        return Err(LinkRefused::Withdrawn.to_string());
    }
    if view.action_hash != link.action_hash {
        return Err("the action is not the one this link was sent for".into());
    }
    Ok((link, view))
}

/// `GET /confirm/{secret}`: the action in full and one button; it decides nothing.
pub async fn confirm_page(
    State(state): State<AppState>,
    ApiPath(secret): ApiPath<String>,
) -> Response {
    let (link, view) = match usable(&state, &secret).await {
        Ok(found) => found,
        Err(reason) => return refused_page(&reason),
    };
    let (verb, class) = match link.decision {
        Decision::Approve => ("Approve", "btn btn-approve"),
        Decision::Deny => ("Deny", "btn btn-deny"),
    };
    let presence = match state.presence().mode() {
        PresenceMode::WebAuthn => "webauthn",
        PresenceMode::Off => "off",
    };
    let input = serde_json::to_string_pretty(&view.input).unwrap_or_default();
    let row = |name: &str, value: Option<&str>| {
        format!(
            "<div><dt>{name}</dt><dd class=\"mono\">{}</dd></div>",
            escape(value.unwrap_or("—"))
        )
    };
    let body = format!(
        "<span class=\"eyebrow\">Gatehouse · remote {verb_lower}</span>\
         <h1 data-testid=\"confirm-tool\">{verb} {tool}?</h1>\
         <p class=\"summary mono\" data-testid=\"confirm-summary\">{summary}</p>\
         <dl class=\"facts\">{rule}{reason}{agent}{session}{cwd}{id}</dl>\
         <h3 class=\"sub\">Input</h3><pre class=\"code\" data-testid=\"confirm-input\">{input}</pre>\
         <p class=\"panel-hint\">This link works once and only for this action as shown. {presence_words}</p>\
         <p class=\"modal-error\" data-testid=\"confirm-error\" role=\"alert\" hidden></p>\
         <p data-testid=\"confirm-result\" role=\"status\"></p>\
         <div class=\"actions\"><button type=\"button\" class=\"{class}\" id=\"confirm\" data-testid=\"confirm\" \
         data-decision=\"{decision}\" data-presence=\"{presence}\" disabled>{verb}</button></div>\
         <script type=\"module\" src=\"/assets/js/confirm.js\"></script>",
        verb_lower = verb.to_lowercase(),
        tool = escape(&view.tool),
        summary = escape(&crate::notify::summary(&view)),
        rule = row("Rule", view.rule_id.as_deref()),
        reason = row("Reason", Some(&view.reason)),
        agent = row("Agent", view.agent.as_deref()),
        session = row("Session", view.session_id.as_deref()),
        cwd = row("Working dir", view.cwd.as_deref()),
        id = row("Action id", Some(&view.action_id)),
        input = escape(&input),
        decision = verb.to_lowercase(),
        presence_words = if presence == "webauthn" {
            "Your authenticator confirms it (the same as in the dashboard)."
        } else {
            "Person presence is off on this daemon: this link alone decides."
        },
    );
    page(StatusCode::OK, &format!("{verb} {}", view.tool), &body)
}

/// `POST /confirm/{secret}/presence`: the challenge for the link's action, hash and decision.
pub async fn confirm_challenge(
    State(state): State<AppState>,
    ApiPath(secret): ApiPath<String>,
) -> Result<Json<RequestOptions>, ApiError> {
    let (link, _) = usable(&state, &secret).await.map_err(gone)?;
    Ok(Json(
        state
            .presence_challenge(&link.action_id, link.decision, &link.action_hash)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    #[serde(default)]
    presence: Option<PresenceAssertion>,
}

/// `POST /confirm/{secret}`: decides the link's action as the link says, once, through the
/// person-presence rules. No input and no other decision can be given.
pub async fn confirm(
    State(state): State<AppState>,
    ApiPath(secret): ApiPath<String>,
    ApiJson(request): ApiJson<ConfirmRequest>,
) -> Result<Json<ActionView>, ApiError> {
    usable(&state, &secret).await.map_err(gone)?;
    let link = state
        .notify
        .links
        .consume(&secret, now_ms())
        .map_err(|refused| gone(refused.to_string()))?;
    let result = state
        .decide_by(
            &Person::owner(),
            &link.action_id,
            link.decision,
            None,
            Some(&link.action_hash),
            request.presence.as_ref(),
        )
        .await;
    match result {
        Ok(view) => {
            state.notify.links.withdraw(&link.action_id);
            Ok(Json(view))
        }
        Err(err @ ActionError::Presence(_)) => {
            // Not confirmed by the person: nothing was decided; the link may be tried again.
            state.notify.links.release(&secret);
            Err(err.into())
        }
        Err(err) => Err(err.into()),
    }
}
