//! The floor: a bare HTTP server (axum on hyper, tokio multi-thread with one worker per core,
//! `TCP_NODELAY`) that reads the request body and answers a static JSON verdict. It is what the
//! HTTP stack alone costs on this machine; no JSON parsing, no rules, no ledger.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

/// What the floor answers to every check.
pub const BODY: &str = r#"{"verdict":"allow"}"#;

/// Serves until killed.
pub fn serve(port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, router()).await.context("serving")
    })
}

fn router() -> Router {
    Router::new()
        .route("/v1/check", post(check))
        .route("/healthz", get(health))
}

async fn check(_body: Bytes) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], BODY)
}

async fn health() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}
