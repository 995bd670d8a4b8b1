//! `HealthBook`: CA health per mesh and backend (last success, last error, count, earliest
//! expiry of the certificates served from it), mirrored in metrics and pushed to the hook when it
//! changes, at most once per reporting interval (a burst of issuances is one ZoneInsight write).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use tokio::sync::Notify;

use mosaic_ca::vault::{IntermediateStatus, TokenStatus};
use mosaic_core::resource::zone::{CaHealth, IntermediateHealth};
use time::OffsetDateTime;

use super::{hook::CaHealthHook, metrics};

type BackendKey = (String, String);

/// The issuer's health records.
#[derive(Debug)]
pub struct HealthBook {
    hook: Option<Arc<dyn CaHealthHook>>,
    state: Mutex<State>,
    /// Signals a change to the reporting task (and the book's end).
    changed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<BackendKey, CaHealth>,
    /// What each dataplane is served: (mesh, dataplane) → (backend, not_after).
    served: HashMap<BackendKey, (String, OffsetDateTime)>,
    /// The same expiries indexed per (mesh, backend), counted: the earliest is the first key,
    /// so recording one certificate costs O(log n), not a scan of every data plane.
    expiries: HashMap<BackendKey, BTreeMap<OffsetDateTime, usize>>,
}

// === impl HealthBook ===

impl HealthBook {
    /// An empty book reporting to `hook` at most once per `interval`. Must be called within a
    /// Tokio runtime (the reporting task runs until the book is dropped).
    pub fn new(hook: Option<Arc<dyn CaHealthHook>>, interval: Duration) -> Arc<Self> {
        let book = Arc::new(Self {
            hook,
            state: Mutex::default(),
            changed: Arc::new(Notify::new()),
        });
        if book.hook.is_some() {
            tokio::spawn(report(
                Arc::downgrade(&book),
                book.changed.clone(),
                interval,
            ));
        }
        book
    }

    /// Every entry, sorted by mesh then backend.
    pub fn snapshot(&self) -> Vec<CaHealth> {
        self.lock().entries.values().cloned().collect()
    }

    /// `backend` of `mesh` issued a certificate in `elapsed`.
    pub fn success(&self, mesh: &str, backend: &str, elapsed: Duration) {
        metrics::issued(mesh, backend, elapsed);
        metrics::ca_healthy(mesh, backend, true);
        self.change(mesh, backend, |h| {
            h.healthy = true;
            h.last_error.clear();
            h.last_success = Some(OffsetDateTime::now_utc());
            h.certificates_issued += 1;
        });
    }

    /// `backend` of `mesh` failed with `error` (after `elapsed`, if a request was made).
    pub fn failure(&self, mesh: &str, backend: &str, error: &str, elapsed: Option<Duration>) {
        if let Some(elapsed) = elapsed {
            metrics::issue_error(mesh, backend, elapsed);
        }
        metrics::ca_healthy(mesh, backend, false);
        self.change(mesh, backend, |h| {
            h.healthy = false;
            h.last_error = error.to_string();
        });
    }

    /// The Vault token of `backend` of `mesh` is in `status`.
    pub fn token(&self, mesh: &str, backend: &str, status: &TokenStatus) {
        if let Some(ttl) = status.ttl_remaining() {
            metrics::vault_token_ttl(mesh, backend, ttl);
        }
    }

    /// The zone intermediate of `backend` of `mesh` is in `status`; it signs certificates of
    /// `leaf_ttl`. Nothing before the first intermediate is signed.
    pub fn intermediate(
        &self,
        mesh: &str,
        backend: &str,
        status: &IntermediateStatus,
        leaf_ttl: Duration,
    ) {
        let (Some(expiry), Some(renew_at)) = (status.not_after, status.renew_at) else {
            if let Some(e) = &status.last_error {
                self.change(mesh, backend, |h| {
                    h.intermediate
                        .get_or_insert_with(Default::default)
                        .last_error = e.clone();
                });
            }
            return;
        };
        let signs_until = expiry - leaf_ttl;
        // Renewed earlier when a certificate made at the nominal point would outlive it.
        let renew_at = renew_at.min(signs_until);
        let budget = (signs_until - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        metrics::vault_intermediate(
            mesh,
            backend,
            expiry.unix_timestamp(),
            renew_at.unix_timestamp(),
            Duration::from_secs(budget.whole_seconds().max(0) as u64),
        );
        let health = IntermediateHealth {
            serial: status.serial.clone().unwrap_or_default(),
            expiry: Some(expiry),
            renew_at: Some(renew_at),
            signs_until: Some(signs_until),
            last_error: status.last_error.clone().unwrap_or_default(),
        };
        self.change(mesh, backend, |h| h.intermediate = Some(health));
    }

    /// `dataplane` of `mesh` is now served a certificate of `backend` valid until `not_after`.
    pub fn served(&self, mesh: &str, dataplane: &str, backend: &str, not_after: OffsetDateTime) {
        let key = (mesh.to_string(), dataplane.to_string());
        let new = (backend.to_string(), not_after);
        let mut s = self.lock();
        if s.served.get(&key) == Some(&new) {
            return;
        }
        if let Some((old_backend, old_expiry)) = s.served.insert(key, new) {
            unindex(&mut s, mesh, &old_backend, old_expiry);
        }
        *s.expiries
            .entry((mesh.to_string(), backend.to_string()))
            .or_default()
            .entry(not_after)
            .or_default() += 1;
        let changed = recompute_expiry(&mut s, mesh, Some(backend));
        drop(s);
        if changed {
            self.changed.notify_one();
        }
    }

    /// `dataplane` of `mesh` is gone: its certificate no longer counts towards the earliest
    /// expiry of its backend.
    pub fn forget(&self, mesh: &str, dataplane: &str) {
        let mut s = self.lock();
        let Some((backend, expiry)) = s.served.remove(&(mesh.to_string(), dataplane.to_string()))
        else {
            return;
        };
        unindex(&mut s, mesh, &backend, expiry);
        let changed = recompute_expiry(&mut s, mesh, None);
        drop(s);
        if changed {
            self.changed.notify_one();
        }
    }

    fn change(&self, mesh: &str, backend: &str, f: impl FnOnce(&mut CaHealth)) {
        let mut s = self.lock();
        let entry = s
            .entries
            .entry((mesh.to_string(), backend.to_string()))
            .or_insert_with(|| fresh(mesh, backend));
        let before = entry.clone();
        f(entry);
        let changed = *entry != before;
        drop(s);
        if changed {
            self.changed.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HealthBook {
    fn drop(&mut self) {
        // Wakes the reporting task so it sees the book is gone.
        self.changed.notify_one();
    }
}

/// Pushes the book to its hook after each change, then waits `interval` before the next push.
async fn report(book: Weak<HealthBook>, changed: Arc<Notify>, interval: Duration) {
    loop {
        changed.notified().await;
        let Some(b) = book.upgrade() else { return };
        if let Some(hook) = &b.hook {
            hook.set_ca_health(b.snapshot());
        }
        drop(b);
        tokio::time::sleep(interval).await;
    }
}

/// Removes one certificate of `backend` of `mesh` expiring at `expiry` from the index.
fn unindex(s: &mut State, mesh: &str, backend: &str, expiry: OffsetDateTime) {
    let key = (mesh.to_string(), backend.to_string());
    if let Some(index) = s.expiries.get_mut(&key) {
        if let Some(n) = index.get_mut(&expiry) {
            *n -= 1;
            if *n == 0 {
                index.remove(&expiry);
            }
        }
        if index.is_empty() {
            s.expiries.remove(&key);
        }
    }
}

/// Sets each backend of `mesh` (and `also`) to the earliest expiry among the certificates it
/// serves, and the mesh's metric; whether an entry changed.
fn recompute_expiry(s: &mut State, mesh: &str, also: Option<&str>) -> bool {
    let earliest = |s: &State, b: &str| {
        s.expiries
            .get(&(mesh.to_string(), b.to_string()))
            .and_then(|index| index.keys().next().copied())
    };
    let mut changed = false;
    let backends: Vec<String> = s
        .entries
        .keys()
        .filter(|(m, _)| m == mesh)
        .map(|(_, b)| b.clone())
        .chain(also.map(str::to_string))
        .collect();
    for b in backends {
        let e = earliest(s, &b);
        let entry = s
            .entries
            .entry((mesh.to_string(), b.clone()))
            .or_insert_with(|| fresh(mesh, &b));
        if entry.earliest_expiry != e {
            entry.earliest_expiry = e;
            changed = true;
        }
    }
    let min = s
        .expiries
        .iter()
        .filter(|((m, _), _)| m == mesh)
        .filter_map(|(_, index)| index.keys().next().copied())
        .min();
    // No certificate served in the mesh any more: +Inf (nothing expires), not the last one's
    // expiry, which would raise a near-expiry alert for a certificate nobody uses.
    metrics::earliest_expiry(mesh, min.map(|t| t.unix_timestamp()));
    changed
}

fn fresh(mesh: &str, backend: &str) -> CaHealth {
    CaHealth {
        mesh: mesh.to_string(),
        backend: backend.to_string(),
        healthy: true,
        ..CaHealth::default()
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    fn expiry_line(text: &str) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with("mosaic_cert_earliest_expiry_seconds{mesh=\"default\"}"))
            .map(str::to_string)
    }

    #[test]
    fn a_renewed_certificate_replaces_its_old_expiry_in_the_index() {
        let book = HealthBook::new(None, Duration::from_secs(1));
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        book.served("default", "a", "vault-1", t(1_000));
        book.served("default", "b", "vault-1", t(1_000));
        book.served("default", "c", "vault-2", t(500));
        // a rotates: one certificate still expires at 1000 (b's).
        book.served("default", "a", "vault-1", t(3_000));
        let expiry = |b: &str| {
            book.snapshot()
                .into_iter()
                .find(|h| h.backend == b)
                .and_then(|h| h.earliest_expiry)
        };
        assert_eq!(expiry("vault-1"), Some(t(1_000)));
        book.served("default", "b", "vault-1", t(2_000));
        assert_eq!(expiry("vault-1"), Some(t(2_000)));
        // c moves to vault-1: vault-2 serves nothing.
        book.served("default", "c", "vault-1", t(1_500));
        assert_eq!(expiry("vault-1"), Some(t(1_500)));
        assert_eq!(expiry("vault-2"), None);
        book.forget("default", "c");
        assert_eq!(expiry("vault-1"), Some(t(2_000)));
    }

    #[test]
    fn the_earliest_expiry_follows_what_is_served_and_is_infinite_once_nothing_is() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let book = HealthBook::new(None, Duration::from_secs(1));
        let soon = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let later = OffsetDateTime::from_unix_timestamp(2_000_000).unwrap();
        ::metrics::with_local_recorder(&recorder, || {
            book.served("default", "a", "vault-1", later);
            book.served("default", "b", "vault-1", soon);
        });
        assert_eq!(
            expiry_line(&handle.render()).as_deref(),
            Some("mosaic_cert_earliest_expiry_seconds{mesh=\"default\"} 1000000")
        );
        ::metrics::with_local_recorder(&recorder, || book.forget("default", "b"));
        assert_eq!(
            expiry_line(&handle.render()).as_deref(),
            Some("mosaic_cert_earliest_expiry_seconds{mesh=\"default\"} 2000000")
        );
        ::metrics::with_local_recorder(&recorder, || book.forget("default", "a"));
        // The exporter writes `inf`, which Prometheus's text parser (Go's ParseFloat) reads as +Inf.
        let line = expiry_line(&handle.render()).unwrap_or_default();
        let value: f64 = line.rsplit(' ').next().unwrap_or_default().parse().unwrap();
        assert!(value.is_infinite() && value > 0.0, "{line}");
        assert_eq!(book.snapshot()[0].earliest_expiry, None);
    }
}
