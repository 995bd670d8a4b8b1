//! The diagnostics listener (`diagnostics.listen`, Kuma's 5680): `GET /metrics` in Prometheus
//! text format, `GET /ready` (200 once this replica knows a raft leader, else 503) and
//! `GET /healthy` (200 while the process serves); with the `failpoints` feature (test builds)
//! also `/failpoints` ([`crate::failpoint`]). The router is
//! `mosaic_runtime::diagnostics`'s, shared with the zone; the metrics and `/ready` are the
//! global's.

use std::sync::Arc;

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::PrometheusHandle;
use mosaic_runtime::diagnostics;

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("could not install the Prometheus metrics recorder: {0}")]
pub struct MetricsError(String);

/// Installs the process-wide metrics recorder; `mosaic_*_seconds` histograms get buckets from
/// 1 ms to 60 s.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    let handle = diagnostics::prometheus_builder()
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
        "mosaic_raft_entry_format",
        "The raft log entry format the cluster writes (raised once every member reads a newer one)"
    );
    describe_gauge!(
        "mosaic_raft_readable_entry_format",
        "The newest raft log entry format this replica reads"
    );
    describe_counter!(
        "mosaic_raft_entries_applied_total",
        "Raft log entries of commands applied to this replica's store, by entry format"
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
    mosaic_runtime::api_metrics::describe();
}

/// What `/ready` asks.
pub type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// The diagnostics router.
pub fn router(metrics: PrometheusHandle, ready: ReadinessCheck) -> Router {
    let router = diagnostics::router(metrics, Arc::new(move || ready_answer(ready())));
    #[cfg(feature = "failpoints")]
    let router = router.merge(crate::failpoint::router());
    router
}

fn ready_answer(ready: bool) -> Response {
    if ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no raft leader known yet\n",
        )
            .into_response()
    }
}
