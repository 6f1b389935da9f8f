//! `--http ADDR`: `/metrics` (Prometheus text format), `/health` (JSON) and,
//! when given, the web view's routes. Anything else is a 404.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What `/health` reports besides "ok".
#[derive(Debug, Clone)]
pub struct Health {
    /// The roles this process runs.
    pub roles: Vec<String>,
    /// The bus (`memory:…` or `kafka:…`).
    pub bus: String,
    /// When the process started.
    pub started: Instant,
}

/// Binds `addr` (failing at once if it cannot) and serves until `shutdown`:
/// `/metrics`, `/health`, and `web`'s routes.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    health: Health,
    web: Option<Router>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot serve HTTP on {addr}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "serving HTTP on {addr}, beyond this machine: the metrics and the read-only web view are open to anyone who can reach it"
        );
    }
    let mut app = Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
        .route("/health", get(move || health_json(health.clone())))
        .fallback(not_found);
    match web {
        Some(web) => {
            app = app.merge(web);
            tracing::info!("web view on http://{addr}/ (metrics on /metrics, health on /health)");
        }
        None => tracing::info!("metrics on http://{addr}/metrics, health on http://{addr}/health"),
    }
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!("HTTP server: {error}");
        }
    });
    Ok(())
}

async fn metrics_text(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.encode())
}

async fn health_json(health: Health) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "roles": health.roles,
        "bus": health.bus,
        "uptime_seconds": health.started.elapsed().as_secs(),
    }))
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found: try /, /metrics or /health\n")
}
