//! `--http ADDR`: `/metrics` (Prometheus text format), `/health` (JSON) and,
//! when given, the web view's routes. Anything else is a 404.
//!
//! Served on a loopback address, a request must name this machine in its
//! Host header (`localhost`, a loopback address): a web page elsewhere
//! could otherwise point a name it controls at 127.0.0.1 (DNS rebinding)
//! and read the view through the visitor's browser.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
    if addr.ip().is_loopback() {
        app = app.layer(axum::middleware::from_fn(this_machine_only));
    }
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!("HTTP server: {error}");
        }
    });
    Ok(())
}

/// Refuses a request whose Host header names another machine (see the
/// module's doc); one without a Host header (HTTP/1.0) is no browser's.
async fn this_machine_only(request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|h| h.to_str().unwrap_or("?"));
    match host {
        Some(host) if !names_this_machine(host) => {
            tracing::warn!(host, "refused a request for another host name (DNS rebinding?)");
            (StatusCode::FORBIDDEN, "forbidden: this server answers to localhost and loopback addresses only\n")
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Whether a Host header (`name[:port]`, `[v6]:port`) names this machine.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

#[cfg(test)]
mod tests {
    use super::names_this_machine;

    #[test]
    fn only_loopback_names_are_this_machine() {
        for host in ["localhost", "LOCALHOST:9464", "127.0.0.1:9464", "127.1.2.3", "[::1]:9464", "[::1]"] {
            assert!(names_this_machine(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:9464",
            "localhost.attacker.example",
            "10.0.0.1:9464",
            "[::2]:80",
            "",
            "?",
        ] {
            assert!(!names_this_machine(host), "{host}");
        }
    }
}
