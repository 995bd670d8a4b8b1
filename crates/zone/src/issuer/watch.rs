//! The per-dataplane watch task: obtains a certificate, publishes it, sleeps until 80% of its
//! lifetime (jittered) or a Mesh change, and replaces it; retries failures with jittered
//! exponential backoff while the still-valid certificate stays published, and at once when a
//! backend whose circuit was open recovers (so a returned Vault serves every waiting data plane
//! at its own pace, not each at the end of its backoff). While that circuit is open, one waiting
//! task is woken each time it half-opens to make the trial.

use std::{sync::Arc, time::Duration};

use mosaic_core::template::Tags;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{DataplaneCert, Issuer, backoff, breaker::CircuitBreaker};

/// Runs until every receiver is dropped.
pub(super) async fn run(
    issuer: Issuer,
    mesh: String,
    dataplane: String,
    tags: Tags,
    tx: watch::Sender<Option<Arc<DataplaneCert>>>,
) {
    let settings = issuer.settings().clone();
    let mut events = issuer.mesh_changes(&mesh);
    let mut recoveries = issuer.recoveries();
    let mut failures: u32 = 0;
    // The serial to move away from (set once a rotation is due).
    let mut replace: Option<String> = None;
    loop {
        // Recoveries before this attempt are not news; one during or after it wakes the wait.
        recoveries.borrow_and_update();
        let outcome = issuer
            .obtain(&mesh, &dataplane, &tags, replace.as_deref())
            .await;
        if let Some(current) = &outcome.current {
            let same = tx
                .borrow()
                .as_ref()
                .is_some_and(|c| c.cert.serial == current.cert.serial);
            if !same {
                tracing::info!(
                    backend = %current.backend,
                    serial = %current.cert.serial,
                    not_after = %current.cert.not_after,
                    "dataplane certificate published"
                );
                tx.send_replace(Some(current.clone()));
            }
        }
        let failing = outcome.error.is_some() || outcome.current.is_none();
        let breaker = outcome.breaker.clone().filter(|_| failing);
        let (wait, rotation) = match (&outcome.error, &outcome.current) {
            (None, Some(current)) => {
                failures = 0;
                replace = None;
                let at = backoff::rotation_instant(
                    current.lifetime_start(),
                    current.cert.not_after,
                    settings.rotation_jitter,
                );
                (until(at), Some(current.cert.serial.clone()))
            }
            (error, _) => {
                failures = failures.saturating_add(1);
                let delay =
                    backoff::backoff_delay(failures, settings.min_backoff, settings.max_backoff);
                if let Some(e) = error {
                    tracing::warn!(error = %e, failures, retry_in = ?delay, "certificate not renewed; retrying");
                }
                (delay, None)
            }
        };
        tokio::select! {
            _ = tx.closed() => return,
            Ok(()) = recoveries.changed(), if failing => {
                // A backend answers again: retry now rather than at the end of the backoff.
            }
            () = trial_due(breaker.as_deref()), if breaker.is_some() => {
                // The failing backend's circuit half-opened: this retry is its trial.
            }
            _ = tokio::time::sleep(wait) => {
                if rotation.is_some() {
                    replace = rotation;
                }
            }
            changed = events.changed() => {
                if changed.is_err() {
                    return;
                }
                // The Mesh (or its Secrets) changed: re-check at once; a new enabled backend
                // means a new certificate, anything else finds the current one fresh.
            }
        }
    }
}

async fn trial_due(breaker: Option<&CircuitBreaker>) {
    match breaker {
        Some(b) => b.trial_due().await,
        None => std::future::pending().await,
    }
}

fn until(at: OffsetDateTime) -> Duration {
    let left = at - OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}
