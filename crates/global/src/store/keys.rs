//! `ResourceKey`: type, mesh and name of a resource, and its byte form in sled
//! (`<Type>/<mesh or ->/<name>`, so one type, or one type in one mesh, is a prefix scan).

use std::fmt;

use mosaic_core::resource::{Resource, ResourceType};
use serde::{Deserialize, Serialize};

/// Identifies a resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    /// The type.
    pub rtype: ResourceType,
    /// The mesh, for mesh-scoped types.
    pub mesh: Option<String>,
    /// The name.
    pub name: String,
}

// === impl ResourceKey ===

impl ResourceKey {
    /// A key.
    pub fn new(rtype: ResourceType, mesh: Option<&str>, name: &str) -> Self {
        Self {
            rtype,
            mesh: mesh.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of a resource.
    pub fn of(r: &Resource) -> Self {
        Self::new(r.resource_type(), r.meta.mesh.as_deref(), &r.meta.name)
    }

    /// The key of a Mesh.
    pub fn mesh(name: &str) -> Self {
        Self::new(ResourceType::Mesh, None, name)
    }

    /// Byte form.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{}/{}/{}",
            self.rtype.as_str(),
            self.mesh.as_deref().unwrap_or("-"),
            self.name
        )
        .into_bytes()
    }

    /// Parses the byte form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '/');
        let rtype: ResourceType = parts.next()?.parse().ok()?;
        let mesh = parts.next()?;
        let name = parts.next()?;
        Some(Self::new(rtype, (mesh != "-").then_some(mesh), name))
    }

    /// The prefix of every key of `rtype` (in `mesh`, when given).
    pub fn prefix(rtype: ResourceType, mesh: Option<&str>) -> Vec<u8> {
        match mesh {
            Some(m) => format!("{}/{m}/", rtype.as_str()).into_bytes(),
            None => format!("{}/", rtype.as_str()).into_bytes(),
        }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mesh {
            Some(m) => write!(f, "{} {m}/{}", self.rtype, self.name),
            None => write!(f, "{} {}", self.rtype, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefixes() {
        let k = ResourceKey::new(ResourceType::Secret, Some("default"), "token-1");
        assert_eq!(k.to_bytes(), b"Secret/default/token-1");
        assert_eq!(ResourceKey::from_bytes(&k.to_bytes()), Some(k.clone()));
        assert!(
            k.to_bytes()
                .starts_with(&ResourceKey::prefix(ResourceType::Secret, Some("default")))
        );
        let m = ResourceKey::mesh("default");
        assert_eq!(ResourceKey::from_bytes(&m.to_bytes()), Some(m));
        assert!(ResourceKey::from_bytes(b"Nope/-/x").is_none());
    }
}
