//! The HTTP listener: `/healthz` and Prometheus `/metrics`. (SIP over
//! WebSocket and the WebRTC offer/answer will live here too.)

use axum::{extract::State, routing::get, Router};
use metrics_exporter_prometheus::PrometheusHandle;

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    tracing::info!(http = %listener.local_addr()?, "HTTP listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render_metrics(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}
