//! The diagnostics listener (`diagnostics.listen`, Kuma's 5680): `GET /metrics` (Prometheus
//! text, with `mosaic_zone_kds_connected`), `GET /ready` (200 once the store is open, which is
//! before this listener starts; the JSON body says whether KDS is connected) and `GET /healthy`.

use std::sync::OnceLock;

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::sync::watch;

use crate::kds::KdsStatus;

/// The process-wide Prometheus recorder, installed on first use (later calls share it, so tests
/// may start several zones in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const BUCKETS: &[f64] = &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0, 60.0,
            ];
            let builder = PrometheusBuilder::new();
            let builder = builder.set_buckets(BUCKETS).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "metrics histogram buckets rejected; using defaults");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

#[derive(Clone)]
struct DiagState {
    metrics: PrometheusHandle,
    kds: watch::Receiver<KdsStatus>,
}

/// The diagnostics router.
pub fn router(metrics: PrometheusHandle, kds: watch::Receiver<KdsStatus>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/ready", get(ready))
        .route("/healthy", get(|| async { "ok\n" }))
        .with_state(DiagState { metrics, kds })
}

async fn render(State(s): State<DiagState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn ready(State(s): State<DiagState>) -> Response {
    let kds = s.kds.borrow().clone();
    let body = json!({ "ready": true, "store": "open", "kds": kds });
    (StatusCode::OK, axum::Json(body)).into_response()
}
