//! `StoreSecrets`: reads mesh Secrets from a [`ResourceStore`], so CA backends resolve
//! `secret: NAME` DataSources against the replicated state.

use std::sync::Arc;

use mosaic_core::{
    Sensitive,
    datasource::SecretSource,
    resource::{ResourceType, Spec},
};

use super::{ResourceKey, ResourceStore};

/// A [`SecretSource`] over a store.
pub struct StoreSecrets {
    store: Arc<dyn ResourceStore>,
}

impl StoreSecrets {
    /// Reads secrets from `store`.
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self { store }
    }
}

impl SecretSource for StoreSecrets {
    fn mesh_secret(&self, mesh: &str, name: &str) -> Result<Option<Sensitive<Vec<u8>>>, String> {
        let key = ResourceKey::new(ResourceType::Secret, Some(mesh), name);
        match self.store.get(&key).map_err(|e| e.to_string())? {
            Some(r) => match r.spec {
                Spec::Secret(s) => s.value().map(Some),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }
}
