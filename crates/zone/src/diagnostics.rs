//! The diagnostics listener (`diagnostics.listen`, Kuma's 5680): `GET /metrics` (Prometheus
//! text, with `mosaic_zone_kds_connected`), `GET /ready` (200 once the store is open, which is
//! before this listener starts; the JSON body says whether KDS is connected) and `GET /healthy`.
//!
//! The zone API's request metrics (`mosaic_api_requests_total`, `mosaic_api_request_seconds`) come
//! from the middleware it shares with the global, `mosaic_runtime::api_metrics::track`; the
//! router is `mosaic_runtime::diagnostics`'s, also the global's.

use std::sync::{Arc, OnceLock};

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mosaic_runtime::diagnostics;
use serde_json::json;
use tokio::sync::watch;

use crate::kds::KdsStatus;

/// The process-wide Prometheus recorder, installed on first use (later calls share it, so tests
/// may start several zones in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = diagnostics::prometheus_builder().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "metrics histogram buckets rejected; using defaults");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// The diagnostics router.
pub fn router(metrics: PrometheusHandle, kds: watch::Receiver<KdsStatus>) -> Router {
    diagnostics::router(metrics, Arc::new(move || ready(&kds)))
}

fn ready(kds: &watch::Receiver<KdsStatus>) -> Response {
    let kds = kds.borrow().clone();
    let body = json!({ "ready": true, "store": "open", "kds": kds });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// HELP texts of the zone's metrics (shown once a series exists).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "mosaic_zone_kds_connected",
        "1 while this zone holds a KDS stream to a global replica"
    );
    describe_counter!(
        "mosaic_zone_kds_nacks_received_total",
        "ZoneToGlobal responses the global rejected"
    );
    mosaic_runtime::api_metrics::describe();
    describe_counter!(
        "mosaic_certs_issued_total",
        "Data-plane certificates issued, by mesh and backend"
    );
    describe_counter!(
        "mosaic_cert_issue_errors_total",
        "Failed data-plane certificate issuances, by mesh and backend"
    );
    describe_histogram!(
        "mosaic_cert_issue_seconds",
        Unit::Seconds,
        "Duration of certificate issuance calls to the CA"
    );
    describe_gauge!(
        "mosaic_cert_earliest_expiry_seconds",
        "Unix time (seconds) of the earliest expiry among the certificates served in a mesh"
    );
    describe_gauge!(
        "mosaic_ca_healthy",
        "1 while the backend of a mesh issues certificates, 0 after a failure"
    );
    describe_gauge!(
        "mosaic_vault_token_ttl_seconds",
        Unit::Seconds,
        "Seconds of validity left on the Vault token of a mesh's backend"
    );
}
