//! Prometheus metrics: the clients' own (breaker, queue, calls) and the server's requests,
//! by route and status.
//!
//! One recorder is installed per process, the first time a server starts; a process that
//! already has another recorder gets none, and `/metrics` says so.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::AppState;

/// The process's recorder, installed on first use.
pub(crate) fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics are off: another recorder is installed");
                None
            }
        })
        .clone()
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn render(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => {
            let health = state.health();
            metrics::gauge!("memory_server_queued_writes").set(health.queued as f64);
            metrics::gauge!("memory_server_pending_tickets")
                .set(state.shared.tickets.pending() as f64);
            handle.render().into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are off: another metrics recorder was installed in this process",
        )
            .into_response(),
    }
}

/// Counts each request and times it, by route, method and status. Every label is a
/// `&'static str`, so recording allocates nothing.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| static_route(p.as_str()));
    let method = static_method(request.method());
    let start = Instant::now();
    let response = next.run(request).await;
    let status = static_status(response.status());
    metrics::counter!("memory_server_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("memory_server_request_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    response
}

fn static_route(path: &str) -> &'static str {
    crate::rest::paths::ALL
        .into_iter()
        .find(|r| *r == path)
        .unwrap_or("other")
}

fn static_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "other",
    }
}

fn static_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        400 => "400",
        401 => "401",
        404 => "404",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => "other",
    }
}

/// Serves `/metrics` alone on `addr`.
pub(crate) async fn serve(
    addr: SocketAddr,
    state: Arc<AppState>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .with_state(state);
    tracing::info!(%addr, "metrics at /metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    }))
}
