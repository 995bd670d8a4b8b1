//! `MeshBackends`: every mtls backend of one Mesh, built from the Mesh record in the zone store
//! (the store is the `SecretSource`), kept until the Mesh or its Secrets change. Vault backends
//! are built as this zone uses them (`{{ zone }}` expanded, the zone's own credentials). The
//! mesh's MeshIdentities are built with them ([`super::identities`]): each provider is one more
//! backend, named after its identity.

use std::{collections::BTreeMap, sync::Arc};

use mosaic_ca::{build_backend, vault::VaultCa};
use mosaic_core::{
    datasource::SecretSource,
    resource::mesh::{BackendConf, MeshSpec, MtlsBackend},
};

pub use super::backend_entry::BackendEntry;
use super::{identities::IdentityEntry, settings::ZoneVault};
use crate::store::ZoneStore;

/// The built backends of one Mesh.
#[derive(Debug)]
pub struct MeshBackends {
    /// The Mesh record's version these were built from.
    pub version: u64,
    /// The Mesh's spec.
    pub spec: MeshSpec,
    /// Backends that built, by name.
    pub backends: BTreeMap<String, BackendEntry>,
    /// Backends that did not, by name, with the error's text.
    pub errors: BTreeMap<String, String>,
    /// The mesh's MeshIdentities, sorted by name (their providers are in `backends`).
    pub identities: Vec<IdentityEntry>,
}

// === impl MeshBackends ===

impl MeshBackends {
    /// Builds every backend of `spec` and every MeshIdentity of the mesh in `store`. No request
    /// is made to any CA.
    pub async fn build(
        mesh: &str,
        version: u64,
        spec: MeshSpec,
        store: Arc<ZoneStore>,
        zone: &ZoneVault,
    ) -> Self {
        let secrets: Arc<dyn SecretSource> = store.clone();
        let mut backends = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for backend in spec.backends() {
            match build_one(mesh, backend, secrets.clone(), zone).await {
                Ok(entry) => {
                    backends.insert(backend.name.clone(), entry);
                }
                Err(e) => {
                    tracing::warn!(mesh, backend = %backend.name, error = %e, "mtls backend not usable");
                    errors.insert(backend.name.clone(), e.to_string());
                }
            }
        }
        let identities =
            super::identities::build(mesh, &store, zone, &mut backends, &mut errors).await;
        Self {
            version,
            spec,
            backends,
            errors,
            identities,
        }
    }

    /// The MeshIdentity (with a provider) that a data plane with `labels` gets: Kuma's best
    /// match (most labels, then name).
    pub fn identity_for(&self, labels: &BTreeMap<String, String>) -> Option<&IdentityEntry> {
        let issuing = self
            .identities
            .iter()
            .filter(|i| i.issues())
            .map(|i| (i.name.as_str(), &i.spec));
        let (name, _) = mosaic_core::resource::mesh_identity::best_match(issuing, labels)?;
        self.identities.iter().find(|i| i.name == name)
    }

    /// The name of the enabled backend, if mTLS is on.
    pub fn enabled(&self) -> Option<&str> {
        self.spec.enabled_backend().map(|b| b.name.as_str())
    }
}

async fn build_one(
    mesh: &str,
    backend: &MtlsBackend,
    secrets: Arc<dyn SecretSource>,
    zone: &ZoneVault,
) -> Result<BackendEntry, mosaic_core::ca::CaError> {
    // Vault is built here rather than through `build_backend` to keep its concrete type, whose
    // token status feeds health and metrics, and to build it as this zone uses it.
    if let Ok(BackendConf::Vault(conf)) = backend.typed_conf() {
        let scope = zone.for_backend(mesh, &backend.name);
        let vault = Arc::new(VaultCa::new_in(mesh, backend, &conf, secrets, &scope).await?);
        return Ok(BackendEntry::new(vault.clone(), Some(vault)));
    }
    Ok(BackendEntry::new(
        build_backend(mesh, backend, secrets).await?,
        None,
    ))
}
