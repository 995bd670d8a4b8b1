//! The issuer's Prometheus metrics (`metrics` crate). Labels are mesh and backend only, never a
//! dataplane.

use std::time::Duration;

/// A certificate was issued by `backend` of `mesh` in `elapsed`.
pub fn issued(mesh: &str, backend: &str, elapsed: Duration) {
    metrics::counter!("mosaic_certs_issued_total", "mesh" => mesh.to_string(), "backend" => backend.to_string())
        .increment(1);
    metrics::histogram!("mosaic_cert_issue_seconds").record(elapsed.as_secs_f64());
}

/// An issuance from `backend` of `mesh` failed after `elapsed`.
pub fn issue_error(mesh: &str, backend: &str, elapsed: Duration) {
    metrics::counter!("mosaic_cert_issue_errors_total", "mesh" => mesh.to_string(), "backend" => backend.to_string())
        .increment(1);
    metrics::histogram!("mosaic_cert_issue_seconds").record(elapsed.as_secs_f64());
}

/// Whether `backend` of `mesh` is healthy (1) or not (0).
pub fn ca_healthy(mesh: &str, backend: &str, healthy: bool) {
    metrics::gauge!("mosaic_ca_healthy", "mesh" => mesh.to_string(), "backend" => backend.to_string())
        .set(if healthy { 1.0 } else { 0.0 });
}

/// The earliest expiry (Unix time, seconds) among the certificates served in `mesh`; `None`
/// (none served) is +Inf, the earliest expiry of no certificate.
pub fn earliest_expiry(mesh: &str, unix_seconds: Option<i64>) {
    metrics::gauge!("mosaic_cert_earliest_expiry_seconds", "mesh" => mesh.to_string())
        .set(unix_seconds.map_or(f64::INFINITY, |s| s as f64));
}

/// Seconds of validity left on the Vault token of `backend` of `mesh`.
pub fn vault_token_ttl(mesh: &str, backend: &str, ttl: Duration) {
    metrics::gauge!("mosaic_vault_token_ttl_seconds", "mesh" => mesh.to_string(), "backend" => backend.to_string())
        .set(ttl.as_secs_f64());
}

/// The zone intermediate of `backend` of `mesh` (vault `mode: intermediate`): its expiry and
/// renewal point (Unix time, seconds) and the outage budget, the seconds it can go on signing
/// certificates of the backend's lifetime with Vault unreachable.
pub fn vault_intermediate(mesh: &str, backend: &str, expiry: i64, renew_at: i64, budget: Duration) {
    let labels = [("mesh", mesh.to_string()), ("backend", backend.to_string())];
    metrics::gauge!("mosaic_vault_intermediate_expiry_seconds", &labels).set(expiry as f64);
    metrics::gauge!("mosaic_vault_intermediate_renew_at_seconds", &labels).set(renew_at as f64);
    metrics::gauge!("mosaic_vault_intermediate_outage_budget_seconds", &labels)
        .set(budget.as_secs_f64());
}
