//! The diagnostics listener (`diagnostics.listen`, Kuma's 5680): `GET /metrics` in Prometheus
//! text format, `GET /ready` (200 once this replica knows a raft leader, else 503) and
//! `GET /healthy` (200 while the process serves).

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("could not install the Prometheus metrics recorder: {0}")]
pub struct MetricsError(String);

/// Installs the process-wide metrics recorder; `mosaic_*_seconds` histograms get buckets from
/// 1 ms to 60 s.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    const BUCKETS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| MetricsError(e.to_string()))?
        .install_recorder()
        .map_err(|e| MetricsError(e.to_string()))?;
    describe();
    // Present from the start (not only after the first zone connects), so a dashboard and the
    // alert rules see 0 rather than no data.
    metrics::gauge!("mosaic_kds_zones_connected").set(0.0);
    Ok(handle)
}

/// HELP texts of the global's metrics (shown once a series exists).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "mosaic_raft_is_leader",
        "1 while this replica is the raft leader"
    );
    describe_gauge!("mosaic_raft_term", "The raft term this replica is in");
    describe_gauge!(
        "mosaic_raft_applied_index",
        "The last raft log index applied to this replica's store"
    );
    describe_gauge!(
        "mosaic_kds_zones_connected",
        "Zones with an open KDS stream to this replica"
    );
    describe_histogram!(
        "mosaic_kds_push_seconds",
        Unit::Seconds,
        "From a change applied on this replica to the zone's ACK of the response carrying it"
    );
    describe_counter!(
        "mosaic_kds_nacks_total",
        "KDS responses a zone rejected, by resource type"
    );
    describe_counter!(
        "mosaic_kds_rejected_items_total",
        "Zone-sent items this global refused, by resource type"
    );
    describe_counter!(
        "mosaic_kds_refused_connections_total",
        "KDS streams refused at authentication, by reason"
    );
    describe_counter!(
        "mosaic_api_requests_total",
        "HTTP API requests by method, route pattern and status code"
    );
    describe_histogram!(
        "mosaic_api_request_seconds",
        Unit::Seconds,
        "HTTP API request duration by method and route pattern"
    );
}

/// What `/ready` asks.
pub type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct DiagState {
    metrics: PrometheusHandle,
    ready: ReadinessCheck,
}

/// The diagnostics router.
pub fn router(metrics: PrometheusHandle, ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/ready", get(ready_handler))
        .route("/healthy", get(|| async { "ok\n" }))
        .with_state(DiagState { metrics, ready })
}

async fn render(State(s): State<DiagState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn ready_handler(State(s): State<DiagState>) -> impl IntoResponse {
    if (s.ready)() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no raft leader known yet\n",
        )
    }
}
