//! `--http ADDR`: `/metrics` (Prometheus text format) and `/health` (JSON),
//! for scrapers and load balancers. Anything else is a 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
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

/// Binds `addr` (failing at once if it cannot) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!("metrics on http://{addr}/metrics, health on http://{addr}/health");
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!("metrics endpoint: {error}");
                        continue;
                    }
                },
            };
            let (metrics, health) = (metrics.clone(), health.clone());
            let service = service_fn(move |request| respond(request, metrics.clone(), health.clone()));
            tokio::spawn(async move {
                if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!("metrics connection: {error}");
                }
            });
        }
    });
    Ok(())
}

async fn respond(
    request: Request<Incoming>,
    metrics: Metrics,
    health: Health,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics.encode()),
        (&Method::GET, "/health") => {
            let body = serde_json::json!({
                "status": "ok",
                "roles": health.roles,
                "bus": health.bus,
                "uptime_seconds": health.started.elapsed().as_secs(),
            });
            (StatusCode::OK, "application/json", body.to_string())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: try /metrics or /health\n".to_string()),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response");
    Ok(response)
}
