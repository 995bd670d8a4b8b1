//! The KDS server's Prometheus metrics.
//!
//! - `mosaic_kds_zones_connected` (gauge): zones with an open GlobalToZone stream on this replica.
//! - `mosaic_kds_push_seconds` (histogram): from when this replica applied a change to when the
//!   zone acknowledged the response that carried it.
//! - `mosaic_kds_nacks_total{type}` (counter): responses a zone rejected.
//! - `mosaic_kds_rejected_items_total{type}` (counter): zone-sent items this global refused.
//! - `mosaic_kds_refused_connections_total{reason}` (counter): streams refused at authentication.

use std::time::Duration;

/// Sets the connected-zones gauge.
pub fn zones_connected(n: usize) {
    metrics::gauge!("mosaic_kds_zones_connected").set(n as f64);
}

/// Records one commit → ACK propagation time.
pub fn push_seconds(d: Duration) {
    metrics::histogram!("mosaic_kds_push_seconds").record(d.as_secs_f64());
}

/// Counts a NACK from a zone.
pub fn nack(rtype: &str) {
    metrics::counter!("mosaic_kds_nacks_total", "type" => rtype.to_string()).increment(1);
}

/// Counts items refused from a zone.
pub fn rejected_items(rtype: &str, n: usize) {
    metrics::counter!("mosaic_kds_rejected_items_total", "type" => rtype.to_string())
        .increment(n as u64);
}

/// Counts a refused stream.
pub fn refused(reason: &'static str) {
    metrics::counter!("mosaic_kds_refused_connections_total", "reason" => reason).increment(1);
}
