//! The diagnostics listener both servers run (`diagnostics.listen`, Kuma's 5680): `GET /metrics`
//! in Prometheus text format, `GET /ready` (answered by the server) and `GET /healthy` (200 while
//! the process serves); and the histogram buckets of the process-wide Prometheus recorder.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Buckets of every histogram (`mosaic_*_seconds`): 1 ms to 60 s.
pub const HISTOGRAM_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What `GET /ready` answers.
pub type ReadyAnswer = Arc<dyn Fn() -> Response + Send + Sync>;

#[derive(Clone)]
struct DiagState {
    metrics: PrometheusHandle,
    ready: ReadyAnswer,
}

/// A Prometheus recorder builder with [`HISTOGRAM_BUCKETS`].
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new().set_buckets(HISTOGRAM_BUCKETS)
}

/// The diagnostics router: `/metrics` from `metrics`, `/ready` by `ready`, `/healthy`.
pub fn router(metrics: PrometheusHandle, ready: ReadyAnswer) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route(
            "/ready",
            get(|State(s): State<DiagState>| async move { (s.ready)() }),
        )
        .route("/healthy", get(|| async { "ok\n" }))
        .with_state(DiagState { metrics, ready })
}

async fn render(State(s): State<DiagState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
