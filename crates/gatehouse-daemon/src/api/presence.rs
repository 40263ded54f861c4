//! Person presence over HTTP: the challenge a decision's assertion answers, the presence
//! status, and enrolling authenticators (`docs/API.md`, "Person presence").

use axum::Json;
use axum::extract::State;
use gatehouse_protocol::{Decision, PresenceAssertion};
use serde::{Deserialize, Serialize};

use crate::api::error::{ApiError, ApiJson, ApiPath};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::presence::{CreationOptions, CredentialInfo, PresenceStatus, RequestOptions};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    decision: Decision,
    action_hash: String,
    /// Edit then approve: the edited input; the challenge is bound to the edited action's hash.
    #[serde(default)]
    input: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /v1/actions/{id}/presence`: a single-use challenge bound to this action, its hash and
/// the decision, for `navigator.credentials.get`.
pub async fn challenge(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<ChallengeRequest>,
) -> Result<Json<RequestOptions>, ApiError> {
    if let Some(input) = &request.input {
        if request.decision != Decision::Approve {
            return Err(ApiError::invalid(
                "input",
                "only an approval carries an edited input",
            ));
        }
        return Ok(Json(
            state
                .edit_presence_challenge(&id, &request.action_hash, input)
                .await?,
        ));
    }
    Ok(Json(
        state
            .presence_challenge(&id, request.decision, &request.action_hash)
            .await?,
    ))
}

#[derive(Debug, Serialize)]
pub struct StatusReply {
    #[serde(flatten)]
    status: PresenceStatus,
    credentials: Vec<CredentialInfo>,
}

/// `GET /v1/presence`: the mode, the enrolled authenticators, whether enrolment is open.
pub async fn status(State(state): State<AppState>, _approver: ApproverCaller) -> Json<StatusReply> {
    Json(StatusReply {
        status: state.presence().status(),
        credentials: state.presence().credentials(),
    })
}

/// `POST /v1/presence/credentials/challenge`: a challenge for an enrolled authenticator to
/// vouch for a new one.
pub async fn add_credential_challenge(
    State(state): State<AppState>,
    _approver: ApproverCaller,
) -> Result<Json<RequestOptions>, ApiError> {
    Ok(Json(
        state
            .presence()
            .add_credential_challenge()
            .map_err(crate::app::ActionError::from)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The enrolment code from the daemon's terminal (the first authenticator).
    #[serde(default)]
    code: Option<String>,
    /// An enrolled authenticator's assertion (every later one).
    #[serde(default)]
    presence: Option<PresenceAssertion>,
}

/// `POST /v1/presence/enrol`: options for `navigator.credentials.create`.
pub async fn begin_enrolment(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiJson(request): ApiJson<EnrolRequest>,
) -> Result<Json<CreationOptions>, ApiError> {
    Ok(Json(
        state
            .presence()
            .begin_enrolment(request.code.as_deref(), request.presence.as_ref())
            .map_err(crate::app::ActionError::from)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    client_data_json: String,
    attestation_object: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/presence/enrol/finish`: stores the new credential's public key.
pub async fn finish_enrolment(
    State(state): State<AppState>,
    approver: ApproverCaller,
    ApiJson(request): ApiJson<FinishRequest>,
) -> Result<Json<CredentialInfo>, ApiError> {
    // The key is bound to the person enrolling it: it confirms only their decisions.
    let person = approver
        .0
        .person()
        .unwrap_or_else(crate::auth::Person::owner);
    Ok(Json(
        state
            .presence()
            .finish_enrolment_for(
                &person.name,
                &request.client_data_json,
                &request.attestation_object,
                request.name.as_deref().unwrap_or_default(),
            )
            .map_err(crate::app::ActionError::from)?,
    ))
}
