//! Resources: Mesh, Secret, GlobalSecret, Zone, ZoneInsight, Dataplane, DataplaneInsight,
//! MeshIdentity, MeshTrust.
//!
//! Module map:
//! - [`mesh`]: the Mesh spec, its CA backends' typed configurations and their validation.
//! - [`mesh_identity`]: MeshIdentity (Kuma 2.13's shape plus Mosaic's Vault provider) and its validation.
//! - [`mesh_trust`]: MeshTrust (trust domain, CA bundles, origin) and its validation.
//! - [`secure_source`]: Kuma's `SecureDataSource` (a MeshIdentity's CA certificate and key).
//! - [`mesh_passthrough`]: Kuma's checks on the Mesh fields kept as written (logging, tracing, ...).
//! - [`secret`]: Secret and GlobalSecret data.
//! - [`zone`]: Zone and ZoneInsight (KDS sessions, CA health).
//! - [`dataplane`]: Dataplane (Kuma's shape) and DataplaneInsight.
//! - [`dataplane_passthrough`]: Kuma's checks on the Dataplane fields kept as written (outbounds, ...).
//! - [`change`]: `Change<K>`/`ChangeOp`, what a store's change feed publishes (both stores).
//! - [`key`]: `StoreKey`, a stored record's kind, mesh and name and its byte form (both stores).
//! - [`limits`]: how many items each list-valued field may hold (backends per Mesh, inbounds, tags, ...).
//! - [`parse`]: Universal and Kubernetes YAML/JSON documents to [`Resource`]s and back.
//! - [`unknown_fields`]: fields a document has and Mosaic does not know: ignored as Kuma does (and
//!   reported), or refused.

pub mod change;
pub mod dataplane;
pub mod dataplane_passthrough;
pub mod key;
pub mod limits;
pub mod mesh;
pub mod mesh_identity;
pub mod mesh_passthrough;
pub mod mesh_trust;
pub mod parse;
pub mod secret;
pub mod secure_source;
pub mod unknown_fields;
pub mod zone;

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::validate::{FieldPath, ValidationError, Validator};

pub use dataplane::{DataplaneInsightSpec, DataplaneSpec};
pub use key::{KeyKind, StoreKey};
pub use mesh::MeshSpec;
pub use mesh_identity::{MeshIdentity, MeshIdentitySpec};
pub use mesh_trust::{MeshTrust, MeshTrustSpec};
pub use parse::{ParseError, parse_document, parse_documents};
pub use secret::SecretSpec;
pub use unknown_fields::UnknownFields;
pub use zone::{ZoneInsightSpec, ZoneSpec};

/// The resource types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    /// A mesh and its mTLS backends (global-owned).
    Mesh,
    /// A mesh-scoped secret (global-owned).
    Secret,
    /// A secret outside any mesh (global-owned).
    GlobalSecret,
    /// A zone registration (global-owned).
    Zone,
    /// A zone's connection and CA health report (zone-owned).
    ZoneInsight,
    /// A data plane (zone-owned).
    Dataplane,
    /// A data plane's certificate state (zone-owned).
    DataplaneInsight,
    /// Who gets which SPIFFE ID from which provider (global-owned, mesh-scoped).
    MeshIdentity,
    /// The CA bundles trusted for a trust domain (global-owned, mesh-scoped).
    MeshTrust,
}

/// Which control plane writes a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Written through the global's API and synced down to zones.
    Global,
    /// Written by zones and synced up to the global.
    Zone,
}

/// Name, scope and bookkeeping of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The name, unique per type (and mesh, for mesh-scoped types).
    pub name: String,
    /// The mesh, for mesh-scoped types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When it was created (set by the store).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub creation_time: Option<OffsetDateTime>,
    /// When it last changed (set by the store).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub modification_time: Option<OffsetDateTime>,
    /// Store version, increasing with every change (set by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A resource's spec, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    /// A Mesh.
    Mesh(MeshSpec),
    /// A Secret.
    Secret(SecretSpec),
    /// A GlobalSecret.
    GlobalSecret(SecretSpec),
    /// A Zone.
    Zone(ZoneSpec),
    /// A ZoneInsight.
    ZoneInsight(ZoneInsightSpec),
    /// A Dataplane.
    Dataplane(DataplaneSpec),
    /// A DataplaneInsight.
    DataplaneInsight(DataplaneInsightSpec),
    /// A MeshIdentity (`spec`).
    MeshIdentity(Box<MeshIdentity>),
    /// A MeshTrust (`spec`, `status`).
    MeshTrust(MeshTrust),
}

/// A resource: meta plus typed spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// Name, mesh, times, version.
    pub meta: Meta,
    /// The typed spec.
    pub spec: Spec,
}

// === impl ResourceType ===

impl ResourceType {
    /// Every type.
    pub const ALL: [ResourceType; 9] = [
        ResourceType::Mesh,
        ResourceType::Secret,
        ResourceType::GlobalSecret,
        ResourceType::Zone,
        ResourceType::ZoneInsight,
        ResourceType::Dataplane,
        ResourceType::DataplaneInsight,
        ResourceType::MeshIdentity,
        ResourceType::MeshTrust,
    ];

    /// The `type:`/`kind:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Mesh => "Mesh",
            ResourceType::Secret => "Secret",
            ResourceType::GlobalSecret => "GlobalSecret",
            ResourceType::Zone => "Zone",
            ResourceType::ZoneInsight => "ZoneInsight",
            ResourceType::Dataplane => "Dataplane",
            ResourceType::DataplaneInsight => "DataplaneInsight",
            ResourceType::MeshIdentity => "MeshIdentity",
            ResourceType::MeshTrust => "MeshTrust",
        }
    }

    /// Whether resources of this type live in a mesh.
    pub fn is_mesh_scoped(self) -> bool {
        matches!(
            self,
            ResourceType::Secret
                | ResourceType::Dataplane
                | ResourceType::DataplaneInsight
                | ResourceType::MeshIdentity
                | ResourceType::MeshTrust
        )
    }

    /// Whether documents of this type keep their fields under `spec` in the Universal form too
    /// (Kuma's newer resources: MeshIdentity, MeshTrust), rather than beside `type` and `name`.
    pub fn has_spec_field(self) -> bool {
        matches!(self, ResourceType::MeshIdentity | ResourceType::MeshTrust)
    }

    /// Who writes resources of this type.
    pub fn owner(self) -> Owner {
        match self {
            ResourceType::Mesh
            | ResourceType::Secret
            | ResourceType::GlobalSecret
            | ResourceType::Zone
            | ResourceType::MeshIdentity
            | ResourceType::MeshTrust => Owner::Global,
            ResourceType::ZoneInsight
            | ResourceType::Dataplane
            | ResourceType::DataplaneInsight => Owner::Zone,
        }
    }

    /// The HTTP API collection (`meshes`, `secrets`, `global-secrets`, ...).
    pub fn collection(self) -> &'static str {
        match self {
            ResourceType::Mesh => "meshes",
            ResourceType::Secret => "secrets",
            ResourceType::GlobalSecret => "global-secrets",
            ResourceType::Zone => "zones",
            ResourceType::ZoneInsight => "zone-insights",
            ResourceType::Dataplane => "dataplanes",
            ResourceType::DataplaneInsight => "dataplane-insights",
            ResourceType::MeshIdentity => "meshidentities",
            ResourceType::MeshTrust => "meshtrusts",
        }
    }

    /// The type for an API collection name.
    pub fn from_collection(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.collection() == name)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown resource type {s:?}: use one of {}",
                    Self::ALL.map(ResourceType::as_str).join(", ")
                )
            })
    }
}

// === impl Spec ===

impl Spec {
    /// The spec's type.
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Spec::Mesh(_) => ResourceType::Mesh,
            Spec::Secret(_) => ResourceType::Secret,
            Spec::GlobalSecret(_) => ResourceType::GlobalSecret,
            Spec::Zone(_) => ResourceType::Zone,
            Spec::ZoneInsight(_) => ResourceType::ZoneInsight,
            Spec::Dataplane(_) => ResourceType::Dataplane,
            Spec::DataplaneInsight(_) => ResourceType::DataplaneInsight,
            Spec::MeshIdentity(_) => ResourceType::MeshIdentity,
            Spec::MeshTrust(_) => ResourceType::MeshTrust,
        }
    }

    /// Decodes a spec of type `ty` from JSON; errors carry field paths. Unknown fields are
    /// dropped as Kuma drops them ([`parse::from_value_with`] reports them).
    pub fn from_value(ty: ResourceType, value: serde_json::Value) -> Result<Self, ValidationError> {
        unknown_fields::Collector::new(UnknownFields::Ignore).spec(ty, value)
    }

    /// The spec as a JSON object.
    pub fn to_value(&self) -> serde_json::Value {
        let v = match self {
            Spec::Mesh(s) => serde_json::to_value(s),
            Spec::Secret(s) | Spec::GlobalSecret(s) => serde_json::to_value(s),
            Spec::Zone(s) => serde_json::to_value(s),
            Spec::ZoneInsight(s) => serde_json::to_value(s),
            Spec::Dataplane(s) => serde_json::to_value(s),
            Spec::DataplaneInsight(s) => serde_json::to_value(s),
            Spec::MeshIdentity(s) => serde_json::to_value(s),
            Spec::MeshTrust(s) => serde_json::to_value(s),
        };
        // These types serialise to objects of strings, numbers and maps; failure is impossible.
        v.unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
    }

    /// Type-specific validation.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Spec::Mesh(s) => s.validate(),
            Spec::Secret(s) | Spec::GlobalSecret(s) => s.validate(),
            Spec::Dataplane(s) => s.validate(),
            Spec::ZoneInsight(s) => s.validate(),
            Spec::DataplaneInsight(s) => s.validate(),
            Spec::MeshIdentity(s) => s.validate(),
            Spec::MeshTrust(s) => s.validate(),
            Spec::Zone(_) => Ok(()),
        }
    }
}

// === impl Resource ===

impl Resource {
    /// Builds a resource.
    pub fn new(name: impl Into<String>, mesh: Option<&str>, spec: Spec) -> Self {
        Self {
            meta: Meta {
                name: name.into(),
                mesh: mesh.map(str::to_string),
                ..Meta::default()
            },
            spec,
        }
    }

    /// The resource's type.
    pub fn resource_type(&self) -> ResourceType {
        self.spec.resource_type()
    }

    /// Checks name, mesh and spec; every violation has a field path.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        let ty = self.resource_type();
        if let Err(msg) = validate_name(ty, &self.meta.name) {
            v.violation(&FieldPath::from("name"), msg);
        }
        match (&self.meta.mesh, ty.is_mesh_scoped()) {
            (None, true) => v.violation(
                &FieldPath::from("mesh"),
                format!("must be set: a {ty} belongs to a mesh"),
            ),
            (Some(m), true) => {
                if let Err(msg) = validate_name(ResourceType::Mesh, m) {
                    v.violation(&FieldPath::from("mesh"), msg);
                }
            }
            (Some(_), false) => v.violation(
                &FieldPath::from("mesh"),
                format!("must not be set: a {ty} does not belong to a mesh"),
            ),
            (None, false) => {}
        }
        limits::check_count(
            &mut v,
            &FieldPath::from("labels"),
            self.meta.labels.len(),
            limits::MAX_LABELS,
            "labels",
            "resource",
            "keep the labels you select on and remove the rest",
        );
        if let Err(e) = self.spec.validate() {
            v.extend(&FieldPath::root(), e);
        }
        v.finish()
    }

    /// Kuma's Universal form: `type`, `name`, `mesh`, times, then the spec's fields.
    pub fn to_universal(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("type".into(), self.resource_type().as_str().into());
        if let Some(m) = &self.meta.mesh {
            out.insert("mesh".into(), m.clone().into());
        }
        out.insert("name".into(), self.meta.name.clone().into());
        if let Ok(serde_json::Value::Object(meta)) = serde_json::to_value(&self.meta) {
            for (k, v) in meta {
                if !matches!(k.as_str(), "name" | "mesh") {
                    out.insert(k, v);
                }
            }
        }
        if let serde_json::Value::Object(spec) = self.spec.to_value() {
            for (k, v) in spec {
                out.entry(k).or_insert(v);
            }
        }
        serde_json::Value::Object(out)
    }
}

/// Kuma's naming rule: 1 to 253 characters of lowercase letters, digits, `-`, `_` and `.`, starting
/// and ending alphanumerically. Mesh and Zone names must also be DNS labels (they appear in SPIFFE
/// IDs and certificates).
pub fn validate_name(ty: ResourceType, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let strict = matches!(ty, ResourceType::Mesh | ResourceType::Zone);
    let max = if strict { 63 } else { 253 };
    if name.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let allowed = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || (!strict && (c == '_' || c == '.'))
    };
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name.chars().all(allowed) || !edge_ok(name.chars().next()) || !edge_ok(name.chars().last())
    {
        return Err(if strict {
            format!(
                "{name:?} must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
            )
        } else {
            format!(
                "{name:?} must use lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
            )
        });
    }
    Ok(())
}
