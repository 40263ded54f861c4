//! `GET /v1/events`: the dashboard's WebSocket. Approver credentials and our own Origin only;
//! a connection that falls behind is closed (the dashboard reloads on reconnect).

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use crate::api::error::ApiError;
use crate::api::guard::{ApproverCaller, origin_allowed};
use crate::app::AppState;
use crate::auth::Caller;

pub async fn subscribe(
    State(state): State<AppState>,
    ApproverCaller(caller): ApproverCaller,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })?;
    // Browsers always send Origin on a WebSocket handshake: a session cookie without one is
    // not our page. (Bearer clients, like `gatehouse ledger --follow`, send none.)
    let cookie_without_origin =
        matches!(caller, Caller::Dashboard { .. }) && !headers.contains_key(header::ORIGIN);
    if cookie_without_origin || !origin_allowed(&state, &headers) {
        return Err(ApiError::forbidden(
            "forbidden_origin",
            "WebSocket connections from other origins are refused",
        ));
    }
    Ok(upgrade.on_upgrade(move |socket| forward(state, socket)))
}

async fn forward(state: AppState, mut socket: WebSocket) {
    let mut events = state.events.subscribe();
    let mut shutdown = state.approvals.shutdown_signal();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(json) => {
                    if socket.send(Message::Text(json.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "dashboard fell behind; closing its connection so it reloads");
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = async { shutdown.wait_for(|stopping| *stopping).await.map(|_| ()) } => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
