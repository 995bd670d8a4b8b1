//! Mesh Secrets from the zone store as a [`SecretSource`], so CA backends resolve
//! `secret: NAME` DataSources on the zone.

use mosaic_core::{
    Sensitive,
    datasource::SecretSource,
    resource::{ResourceType, Spec},
};

use super::{StoreKey, ZoneStore};

impl SecretSource for ZoneStore {
    fn mesh_secret(&self, mesh: &str, name: &str) -> Result<Option<Sensitive<Vec<u8>>>, String> {
        let key = StoreKey::new(ResourceType::Secret, Some(mesh), name);
        let Some(item) = self.get(&key).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let resource = item.to_resource().map_err(|e| format!("{key}: {e}"))?;
        match resource.spec {
            Spec::Secret(s) => s.value().map(Some),
            _ => Ok(None),
        }
    }
}
