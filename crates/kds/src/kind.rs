//! `KdsType`: the kinds of records KDS moves (every [`ResourceType`] plus `DataplaneTokenKey`),
//! with their owner and direction. One definition for the global and the zone, so both sides
//! agree on names and scoping.

use std::{fmt, str::FromStr};

use mosaic_core::resource::{KeyKind, Owner, ResourceType, StoreKey};

/// A synced record's identity: kind, mesh and name (the zone store's key, in the byte layout the
/// global's store uses too).
pub type KdsKey = StoreKey<KdsType>;

/// A kind of synced record: a resource type, or a mesh's dataplane-token public keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KdsType {
    /// A resource type (Mesh, Secret, ..., ZoneInsight).
    Resource(ResourceType),
    /// A mesh's dataplane-token public keys (a JSON list of `mosaic_core::token::PublicKey`).
    DataplaneTokenKey,
}

// === impl KdsType ===

impl KdsType {
    /// The name of the dataplane-token key kind on the wire and in store keys.
    pub const DATAPLANE_TOKEN_KEY: &'static str = "DataplaneTokenKey";

    /// Global-owned kinds, in the order the zone subscribes to them (GlobalToZone).
    /// MeshIdentity and MeshTrust come after Mesh and Secret: what they name is then in place.
    pub const GLOBAL_TO_ZONE: [KdsType; 7] = [
        KdsType::Resource(ResourceType::Mesh),
        KdsType::Resource(ResourceType::Secret),
        KdsType::Resource(ResourceType::GlobalSecret),
        KdsType::Resource(ResourceType::Zone),
        KdsType::DataplaneTokenKey,
        KdsType::Resource(ResourceType::MeshIdentity),
        KdsType::Resource(ResourceType::MeshTrust),
    ];

    /// Zone-owned kinds, in the order the zone sends them (ZoneToGlobal).
    pub const ZONE_TO_GLOBAL: [KdsType; 3] = [
        KdsType::Resource(ResourceType::Dataplane),
        KdsType::Resource(ResourceType::DataplaneInsight),
        KdsType::Resource(ResourceType::ZoneInsight),
    ];

    /// The wire and store name (`Mesh`, ..., `DataplaneTokenKey`).
    pub fn as_str(self) -> &'static str {
        match self {
            KdsType::Resource(t) => t.as_str(),
            KdsType::DataplaneTokenKey => Self::DATAPLANE_TOKEN_KEY,
        }
    }

    /// Who writes records of this kind.
    pub fn owner(self) -> Owner {
        match self {
            KdsType::Resource(t) => t.owner(),
            KdsType::DataplaneTokenKey => Owner::Global,
        }
    }

    /// The resource type, unless this is `DataplaneTokenKey`.
    pub fn resource_type(self) -> Option<ResourceType> {
        match self {
            KdsType::Resource(t) => Some(t),
            KdsType::DataplaneTokenKey => None,
        }
    }

    /// Parses a wire name (`None` for unknown names).
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Whether the global sends this kind to zones.
    pub fn is_global_owned(self) -> bool {
        self.owner() == Owner::Global
    }

    /// Whether records of this kind are named within a mesh. A mesh's DataplaneTokenKey is not:
    /// the global sends it with an empty mesh and the mesh's name as its name (as the global's
    /// own `KdsType` says), and the zone stores it under that name.
    pub fn is_mesh_scoped(self) -> bool {
        match self {
            KdsType::Resource(t) => t.is_mesh_scoped(),
            KdsType::DataplaneTokenKey => false,
        }
    }
}

impl From<ResourceType> for KdsType {
    fn from(t: ResourceType) -> Self {
        KdsType::Resource(t)
    }
}

impl KeyKind for KdsType {
    fn as_str(&self) -> &'static str {
        KdsType::as_str(*self)
    }
}

impl fmt::Display for KdsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KdsType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::DATAPLANE_TOKEN_KEY {
            return Ok(KdsType::DataplaneTokenKey);
        }
        s.parse::<ResourceType>()
            .map(KdsType::Resource)
            .map_err(|e| format!("{e} or {}", Self::DATAPLANE_TOKEN_KEY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_owners_split() {
        for k in KdsType::GLOBAL_TO_ZONE {
            assert_eq!(k.as_str().parse::<KdsType>().unwrap(), k);
            assert_eq!(k.owner(), Owner::Global);
        }
        for k in KdsType::ZONE_TO_GLOBAL {
            assert_eq!(k.as_str().parse::<KdsType>().unwrap(), k);
            assert_eq!(k.owner(), Owner::Zone);
        }
        assert!("Nope".parse::<KdsType>().is_err());
        // As the global sends it: no mesh, named after the mesh.
        assert!(!KdsType::DataplaneTokenKey.is_mesh_scoped());
    }
}
