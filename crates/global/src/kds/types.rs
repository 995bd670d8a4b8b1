//! The KDS resource types and item identities: the global-owned types a zone subscribes to
//! (Mesh, Secret, GlobalSecret, Zone, DataplaneTokenKey) and the zone-owned types it sends
//! (Dataplane, DataplaneInsight, ZoneInsight).

use std::fmt;

use mosaic_common::resource::{Owner, ResourceType};
use mosaic_proto::kds::{ResourceRef, ResourceVersion};

/// The wire name of a mesh's dataplane-token public keys (`name` = the mesh).
pub const DATAPLANE_TOKEN_KEY: &str = "DataplaneTokenKey";

/// The label that names the zone a zone-owned resource came from.
pub const ZONE_LABEL: &str = "kuma.io/zone";

/// A type that travels over KDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KdsType {
    /// A store resource type.
    Resource(ResourceType),
    /// A mesh's dataplane-token public keys (derived from an internal record).
    DataplaneTokenKey,
}

/// An item's identity within its type: mesh (empty unless the type is mesh-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    /// The mesh; empty for types that are not mesh-scoped.
    pub mesh: String,
    /// The name.
    pub name: String,
}

// === impl KdsType ===

impl KdsType {
    /// The types the global sends on GlobalToZone.
    pub const GLOBAL_TO_ZONE: [KdsType; 5] = [
        KdsType::Resource(ResourceType::Mesh),
        KdsType::Resource(ResourceType::Secret),
        KdsType::Resource(ResourceType::GlobalSecret),
        KdsType::Resource(ResourceType::Zone),
        KdsType::DataplaneTokenKey,
    ];

    /// The wire name (`Mesh`, ..., `DataplaneTokenKey`).
    pub fn as_str(self) -> &'static str {
        match self {
            KdsType::Resource(t) => t.as_str(),
            KdsType::DataplaneTokenKey => DATAPLANE_TOKEN_KEY,
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        if s == DATAPLANE_TOKEN_KEY {
            return Some(KdsType::DataplaneTokenKey);
        }
        s.parse().ok().map(KdsType::Resource)
    }

    /// Whether the global sends this type to zones.
    pub fn is_global_owned(self) -> bool {
        match self {
            KdsType::Resource(t) => t.owner() == Owner::Global,
            KdsType::DataplaneTokenKey => true,
        }
    }

    /// Whether items of this type carry a mesh.
    pub fn is_mesh_scoped(self) -> bool {
        match self {
            KdsType::Resource(t) => t.is_mesh_scoped(),
            KdsType::DataplaneTokenKey => false,
        }
    }

    /// The identity of an item named by a wire reference (the mesh is ignored for types that are
    /// not mesh-scoped, so either spelling of a DataplaneTokenKey reference matches).
    pub fn item_key(self, mesh: &str, name: &str) -> ItemKey {
        ItemKey {
            mesh: if self.is_mesh_scoped() {
                mesh.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// The wire reference of an item.
    pub fn wire_ref(self, key: &ItemKey) -> ResourceRef {
        ResourceRef {
            r#type: self.as_str().to_string(),
            mesh: key.mesh.clone(),
            name: key.name.clone(),
        }
    }

    /// The known versions of a subscription, by item (entries of other types are ignored).
    pub fn known(self, known: &[ResourceVersion]) -> std::collections::BTreeMap<ItemKey, u64> {
        known
            .iter()
            .filter_map(|k| {
                let r = k.r#ref.as_ref()?;
                (r.r#type.is_empty() || r.r#type == self.as_str())
                    .then(|| (self.item_key(&r.mesh, &r.name), k.version))
            })
            .collect()
    }
}

impl fmt::Display for KdsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mesh.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.mesh, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        for t in KdsType::GLOBAL_TO_ZONE {
            assert_eq!(KdsType::parse(t.as_str()), Some(t));
            assert!(t.is_global_owned());
        }
        assert!(!KdsType::Resource(ResourceType::Dataplane).is_global_owned());
        assert_eq!(KdsType::parse("Nope"), None);
        let k = KdsType::DataplaneTokenKey;
        assert_eq!(k.item_key("default", "default"), k.item_key("", "default"));
        let s = KdsType::Resource(ResourceType::Secret);
        assert_ne!(s.item_key("a", "x"), s.item_key("b", "x"));
    }
}
