//! `StoreKey`: kind, mesh and name of a stored record, and its byte form
//! (`<Kind>/<mesh or ->/<name>`, so one kind, or one kind in one mesh, is a prefix scan). The
//! global keys resources by [`ResourceType`]; a zone keys what KDS brings by its KDS kind (the
//! resource types plus the dataplane-token keys): one layout for both stores.

use std::{fmt, hash::Hash, str::FromStr};

use serde::{Deserialize, Serialize};

use super::{Resource, ResourceType};

/// What a key's kind must offer: a stable name (the first part of the byte form) and its parse.
pub trait KeyKind: Copy + fmt::Debug + fmt::Display + Eq + Ord + Hash + FromStr {
    /// The kind's name in the byte form.
    fn as_str(&self) -> &'static str;
}

impl KeyKind for ResourceType {
    fn as_str(&self) -> &'static str {
        ResourceType::as_str(*self)
    }
}

/// Identifies a stored record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoreKey<K> {
    /// The kind (serialized as `rtype`, the name the global's raft log has always used).
    #[serde(rename = "rtype")]
    pub kind: K,
    /// The mesh, for mesh-scoped kinds (an empty mesh is no mesh).
    pub mesh: Option<String>,
    /// The name.
    pub name: String,
}

// === impl StoreKey ===

impl<K: KeyKind> StoreKey<K> {
    /// A key.
    pub fn new(kind: impl Into<K>, mesh: Option<&str>, name: &str) -> Self {
        Self {
            kind: kind.into(),
            mesh: mesh.filter(|m| !m.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Byte form: `<Kind>/<mesh or ->/<name>`.
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
        let kind: K = parts.next()?.parse().ok()?;
        let mesh = parts.next()?;
        let name = parts.next()?;
        Some(Self::new(kind, (mesh != "-").then_some(mesh), name))
    }

    /// The prefix of every key of `kind` (in `mesh`, when given).
    pub fn prefix(kind: K, mesh: Option<&str>) -> Vec<u8> {
        match mesh {
            Some(m) => format!("{}/{m}/", kind.as_str()).into_bytes(),
            None => format!("{}/", kind.as_str()).into_bytes(),
        }
    }
}

impl<K: KeyKind + From<ResourceType>> StoreKey<K> {
    /// The key of a resource.
    pub fn of(r: &Resource) -> Self {
        Self::new(r.resource_type(), r.meta.mesh.as_deref(), &r.meta.name)
    }

    /// The key of a Mesh.
    pub fn mesh(name: &str) -> Self {
        Self::new(ResourceType::Mesh, None, name)
    }
}

impl<K: KeyKind> fmt::Display for StoreKey<K> {
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

    type Key = StoreKey<ResourceType>;

    #[test]
    fn round_trip_and_prefixes() {
        let k = Key::new(ResourceType::Secret, Some("default"), "token-1");
        assert_eq!(k.to_bytes(), b"Secret/default/token-1");
        assert_eq!(Key::from_bytes(&k.to_bytes()), Some(k.clone()));
        assert!(
            k.to_bytes()
                .starts_with(&Key::prefix(ResourceType::Secret, Some("default")))
        );
        let m = Key::mesh("default");
        assert_eq!(m.to_bytes(), b"Mesh/-/default");
        assert_eq!(Key::from_bytes(&m.to_bytes()), Some(m));
        assert!(Key::from_bytes(b"Nope/-/x").is_none());
        // An empty mesh is no mesh.
        assert_eq!(Key::new(ResourceType::Mesh, Some(""), "m").mesh, None);
    }

    #[test]
    fn serializes_as_the_raft_log_always_had_it() {
        let k = Key::new(ResourceType::Secret, Some("default"), "token-1");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(
            json,
            r#"{"rtype":"Secret","mesh":"default","name":"token-1"}"#
        );
        assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), k);
    }
}
