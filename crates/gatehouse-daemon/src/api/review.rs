//! The review queue and labels: `GET /v1/review`, `POST /v1/actions/{id}/label` and
//! `GET /v1/classifier` (the thresholds the queue applies). Thin: the work is in `crate::review`.

use axum::Json;
use axum::extract::State;
use gatehouse_protocol::{ClassifierInfo, LabelRequest, LabelledAction, ReviewList};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::review::{ReviewRequest, reviewer_name};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    status: Option<String>,
    include: Option<String>,
    limit: Option<u32>,
    before: Option<String>,
}

/// `GET /v1/review?status=unlabelled|labelled|all&include=flagged&limit=&before=`
pub async fn queue(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> Result<Json<ReviewList>, ApiError> {
    let request = ReviewRequest {
        status: query.status,
        include: query.include,
        limit: query.limit,
        before: query.before,
    };
    Ok(Json(state.review_queue(request).await?))
}

/// `POST /v1/actions/{id}/label` with `{"label": "malicious"|"benign", "note": "..."}`.
pub async fn label(
    State(state): State<AppState>,
    ApproverCaller(caller): ApproverCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<LabelRequest>,
) -> Result<Json<LabelledAction>, ApiError> {
    let reviewer = reviewer_name(&caller);
    Ok(Json(
        state
            .label(&id, request.label, request.note, &reviewer)
            .await?,
    ))
}

/// `GET /v1/classifier`: the model in force and the flag and disagreement thresholds.
pub async fn classifier(
    State(state): State<AppState>,
    _approver: ApproverCaller,
) -> Json<ClassifierInfo> {
    Json(state.classifier_info())
}
