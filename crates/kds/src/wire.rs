//! The KDS resource types and item identities: the global-owned types a zone subscribes to
//! (Mesh, Secret, GlobalSecret, Zone, DataplaneTokenKey) and the zone-owned types it sends
//! (Dataplane, DataplaneInsight, ZoneInsight).

use std::fmt;

use mosaic_proto::kds::{ResourceRef, ResourceVersion};

/// The wire name of a mesh's dataplane-token public keys (`name` = the mesh).
pub const DATAPLANE_TOKEN_KEY: &str = KdsType::DATAPLANE_TOKEN_KEY;

/// The label that names the zone a zone-owned resource came from.
pub const ZONE_LABEL: &str = "kuma.io/zone";

use crate::KdsType;

/// An item's identity within its type: mesh (empty unless the type is mesh-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    /// The mesh; empty for types that are not mesh-scoped.
    pub mesh: String,
    /// The name.
    pub name: String,
}

// === impl KdsWire ===

/// How a [`KdsType`]'s items are named on the wire (identities, references, known versions).
pub trait KdsWire: Copy {
    /// The identity of an item named by a wire reference (the mesh is ignored for types that
    /// are not mesh-scoped, so either spelling of a DataplaneTokenKey reference matches).
    fn item_key(self, mesh: &str, name: &str) -> ItemKey;
    /// The wire reference of an item.
    fn wire_ref(self, key: &ItemKey) -> ResourceRef;
    /// The known versions of a subscription, by item (entries of other types are ignored).
    fn known(self, known: &[ResourceVersion]) -> std::collections::BTreeMap<ItemKey, u64>;
}

impl KdsWire for KdsType {
    fn item_key(self, mesh: &str, name: &str) -> ItemKey {
        ItemKey {
            mesh: if self.is_mesh_scoped() {
                mesh.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn wire_ref(self, key: &ItemKey) -> ResourceRef {
        ResourceRef {
            r#type: self.as_str().to_string(),
            mesh: key.mesh.clone(),
            name: key.name.clone(),
        }
    }

    fn known(self, known: &[ResourceVersion]) -> std::collections::BTreeMap<ItemKey, u64> {
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
    use mosaic_core::resource::ResourceType;

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
