//! Operations endpoints: `/healthz` and `/metrics` (Prometheus text format).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use gatehouse_protocol::Health;

use crate::app::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(state.health())
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics_text(),
    )
}
