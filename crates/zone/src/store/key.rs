//! `StoreKey`: kind, mesh and name of a record, and its byte form in sled
//! (`<Type>/<mesh or ->/<name>`, the global's layout, so one kind, or one kind in one mesh, is a
//! prefix scan).

use std::fmt;

use mosaic_core::resource::{Resource, ResourceType};

use super::KdsType;

/// Identifies a record in the zone store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey {
    /// The kind.
    pub kind: KdsType,
    /// The mesh, for mesh-scoped kinds.
    pub mesh: Option<String>,
    /// The name.
    pub name: String,
}

// === impl StoreKey ===

impl StoreKey {
    /// A key.
    pub fn new(kind: impl Into<KdsType>, mesh: Option<&str>, name: &str) -> Self {
        Self {
            kind: kind.into(),
            mesh: mesh.filter(|m| !m.is_empty()).map(str::to_string),
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

    /// Byte form: `<Type>/<mesh or ->/<name>`.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{}/{}/{}",
            self.kind.as_str(),
            self.mesh.as_deref().unwrap_or("-"),
            self.name
        )
        .into_bytes()
    }

    /// Parses the byte form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '/');
        let kind: KdsType = parts.next()?.parse().ok()?;
        let mesh = parts.next()?;
        let name = parts.next()?;
        Some(Self::new(kind, (mesh != "-").then_some(mesh), name))
    }

    /// The prefix of every key of `kind` (in `mesh`, when given).
    pub fn prefix(kind: KdsType, mesh: Option<&str>) -> Vec<u8> {
        match mesh {
            Some(m) => format!("{}/{m}/", kind.as_str()).into_bytes(),
            None => format!("{}/", kind.as_str()).into_bytes(),
        }
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mesh {
            Some(m) => write!(f, "{} {m}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefixes() {
        let k = StoreKey::new(ResourceType::Secret, Some("default"), "token-1");
        assert_eq!(k.to_bytes(), b"Secret/default/token-1");
        assert_eq!(StoreKey::from_bytes(&k.to_bytes()), Some(k.clone()));
        assert!(k.to_bytes().starts_with(&StoreKey::prefix(
            ResourceType::Secret.into(),
            Some("default")
        )));
        let m = StoreKey::mesh("default");
        assert_eq!(m.to_bytes(), b"Mesh/-/default");
        assert_eq!(StoreKey::from_bytes(&m.to_bytes()), Some(m));
        let d = StoreKey::new(KdsType::DataplaneTokenKey, None, "default");
        assert_eq!(StoreKey::from_bytes(&d.to_bytes()), Some(d));
        assert!(StoreKey::from_bytes(b"Nope/-/x").is_none());
        // An empty mesh is no mesh.
        assert_eq!(StoreKey::new(ResourceType::Mesh, Some(""), "m").mesh, None);
    }
}
