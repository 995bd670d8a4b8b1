//! `BackendEntry`: one built backend (a Mesh backend's or a MeshIdentity provider's): the CA,
//! its Vault type when it is Vault, and its roots, fetched once per build.

use std::sync::Arc;

use mosaic_ca::vault::VaultCa;
use mosaic_core::ca::CaBackend;
use tokio::sync::OnceCell;

/// One built backend.
#[derive(Debug)]
pub struct BackendEntry {
    /// The CA.
    pub ca: Arc<dyn CaBackend>,
    /// The same CA when it is Vault (for its token status).
    pub vault: Option<Arc<VaultCa>>,
    /// Its roots, fetched once.
    pub roots: OnceCell<Vec<String>>,
    /// When fetching its roots last failed, and why.
    roots_failure: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

// === impl BackendEntry ===

impl BackendEntry {
    /// An entry for `ca` (and its concrete type when it is Vault).
    pub fn new(ca: Arc<dyn CaBackend>, vault: Option<Arc<VaultCa>>) -> Self {
        Self {
            ca,
            vault,
            roots: OnceCell::new(),
            roots_failure: std::sync::Mutex::default(),
        }
    }

    /// The last failure's text, if fetching the roots failed less than `interval` ago.
    pub fn roots_retry_in(&self, interval: std::time::Duration) -> Option<String> {
        let failure = self
            .roots_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < interval)
            .map(|(_, why)| format!("{why} (not asking again for a few seconds)"))
    }

    /// Records that fetching the roots failed with `error`.
    pub fn roots_failed(&self, error: &str) {
        *self
            .roots_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), error.to_string()));
    }
}
