//! Documents to resources: Kuma Universal (`type`, `name`, `mesh` + spec fields) and Kubernetes
//! (`apiVersion: kuma.io/v1alpha1`, `kind`, `metadata`, `spec`; `v1` Secrets of type
//! `system.kuma.io/secret` / `system.kuma.io/global-secret`), YAML (several documents) or JSON.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Meta, Resource, ResourceType, Spec,
    unknown_fields::{Collector, Decoded, UnknownFields, settle},
};
use crate::validate::{ValidationError, Violation};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;

/// Deepest nesting accepted, in YAML (serde-saphyr's budget) and JSON alike, so a document read
/// as JSON also reads as the YAML `mosaicctl get -o yaml` prints of it.
pub const MAX_DOCUMENT_DEPTH: usize = 64;

/// The Kubernetes API group/version of Kuma's custom resources.
pub const KUMA_API_VERSION: &str = "kuma.io/v1alpha1";

/// The Universal meta fields (Kuma's `ResourceMeta`, as `kumactl get -o yaml` prints it): read
/// into [`Meta`] (`name`, `mesh`, `labels`) or accepted and ignored as output-only (`kri`, the
/// times, `version`: the store sets them).
const UNIVERSAL_META: &[&str] = &[
    "type",
    "name",
    "mesh",
    "labels",
    "creationTime",
    "modificationTime",
    "version",
    "kri",
];

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("document is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not UTF-8.
    #[error("document is not valid UTF-8 (first bad byte at offset {offset}): save it as UTF-8")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The input holds no document.
    #[error("no document found: the input is empty")]
    Empty,
    /// YAML or JSON syntax error.
    #[error("document is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A document does not describe a valid resource.
    #[error("{}{error}", doc_prefix(*index))]
    Invalid {
        /// Index of the document (0-based) in a multi-document input.
        index: usize,
        /// Every problem, with field paths.
        error: ValidationError,
    },
}

fn doc_prefix(index: usize) -> String {
    if index == 0 {
        String::new()
    } else {
        format!("document {}: ", index + 1)
    }
}

impl ParseError {
    /// Field-level violations, for API error bodies.
    pub fn violations(&self) -> Vec<Violation> {
        match self {
            ParseError::Invalid { error, .. } => error.violations.clone(),
            other => vec![Violation::new("", other.to_string())],
        }
    }
}

/// Parses every document of a YAML stream (or one JSON document) into resources, validated;
/// unknown fields are dropped as Kuma drops them (see [`parse_documents_with`] to hear of them).
pub fn parse_documents(input: &[u8]) -> Result<Vec<Resource>, ParseError> {
    let decoded = parse_documents_with(input, UnknownFields::Ignore)?;
    Ok(decoded.into_iter().map(|d| d.resource).collect())
}

/// Parses every document of a YAML stream (or one JSON document) into resources, validated,
/// with `policy` for unknown fields: each document's ignored fields come with it.
pub fn parse_documents_with(
    input: &[u8],
    policy: UnknownFields,
) -> Result<Vec<Decoded>, ParseError> {
    let values = parse_values(input)?;
    values
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let (r, unknown) =
                from_value_with(v, policy).map_err(|error| ParseError::Invalid { index, error })?;
            settle(r, unknown, policy).map_err(|error| ParseError::Invalid { index, error })
        })
        .collect()
}

/// Parses exactly one document into a validated resource.
pub fn parse_document(input: &[u8]) -> Result<Resource, ParseError> {
    let mut all = parse_documents(input)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        n => Err(ParseError::Syntax(format!(
            "expected one document, found {n}: send one resource per request"
        ))),
    }
}

/// Where one document is written, for [`decode_for`]: the type that place takes and the mesh and
/// name it gives (a PUT's URL; the node id of a data plane registering itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The type the place takes.
    pub rtype: ResourceType,
    /// The mesh it gives: fills in a document that names none, must match one that names one.
    pub mesh: Option<&'a str>,
    /// The name it gives, likewise; `None` keeps the document's.
    pub name: Option<&'a str>,
    /// What the document is, for messages: `the body`.
    pub document: &'a str,
    /// What gives the mesh and name, for messages: `the URL`.
    pub given_by: &'a str,
}

/// Why a document was not decoded for its [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("document is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not one document of the target's type, mesh and name (one field named).
    #[error("{0}")]
    Unfit(Violation),
    /// The document is not a valid resource: every problem, with field paths.
    #[error("{0}")]
    Invalid(ValidationError),
}

/// Decodes exactly one document (YAML or JSON, Universal or Kubernetes) for `target` into a
/// validated resource: the target's mesh and name fill in a document that omits them and must
/// match one that states them. The zone's API, the global's API and the zone's SDS registration
/// all decode resources here, so they accept and refuse the same documents.
pub fn decode_for(input: &[u8], target: &Target<'_>) -> Result<Resource, DecodeError> {
    decode_with(input, target, UnknownFields::Ignore).map(|d| d.resource)
}

/// [`decode_for`] with `policy` for unknown fields: the resource comes with the fields that were
/// ignored, for the caller to report (the API's `Warning` headers, the logs).
pub fn decode_with(
    input: &[u8],
    target: &Target<'_>,
    policy: UnknownFields,
) -> Result<Decoded, DecodeError> {
    let unfit = |field: &str, message: String| DecodeError::Unfit(Violation::new(field, message));
    let mut values = parse_values(input).map_err(|e| match e {
        ParseError::TooLarge { size, max } => DecodeError::TooLarge { size, max },
        other => unfit("", other.to_string()),
    })?;
    if values.len() != 1 {
        return Err(unfit(
            "",
            format!(
                "{} holds {} documents: send exactly one resource (mosaicctl apply splits files)",
                target.document,
                values.len()
            ),
        ));
    }
    let mut value = values.remove(0);
    let Value::Object(obj) = &mut value else {
        return Err(unfit(
            "",
            format!(
                "{} must be a mapping: a Universal resource (type, name, ...) or a Kubernetes one (apiVersion, kind, metadata, spec)",
                target.document
            ),
        ));
    };
    let kubernetes = obj.contains_key("apiVersion") || obj.contains_key("kind");
    if !kubernetes && !obj.contains_key("type") {
        obj.insert("type".into(), target.rtype.as_str().into());
    }
    let states_mesh = obj.get("mesh").is_some_and(|m| !m.is_null())
        || (kubernetes
            && obj
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get("kuma.io/mesh"))
                .is_some());

    let (mut resource, unknown) = from_value_with(value, policy).map_err(DecodeError::Invalid)?;
    let rtype = resource.resource_type();
    if rtype != target.rtype {
        return Err(unfit(
            if kubernetes { "kind" } else { "type" },
            format!(
                "{} is a {rtype}, but {} takes a {}: write a {rtype} to its own collection ({})",
                target.document,
                target.given_by,
                target.rtype,
                rtype.collection()
            ),
        ));
    }
    if let Some(name) = target.name {
        if resource.meta.name.is_empty() {
            resource.meta.name = name.to_string();
        } else if resource.meta.name != name {
            return Err(unfit(
                "name",
                format!(
                    "{:?} in {} does not match {name:?} in {}: make them the same (or leave the name out of {})",
                    resource.meta.name, target.document, target.given_by, target.document
                ),
            ));
        }
    }
    if let Some(mesh) = target.mesh {
        match &resource.meta.mesh {
            Some(stated) if states_mesh && stated != mesh => {
                return Err(unfit(
                    "mesh",
                    format!(
                        "{stated:?} in {} does not match {mesh:?} in {}: make them the same (or leave the mesh out of {})",
                        target.document, target.given_by, target.document
                    ),
                ));
            }
            _ => resource.meta.mesh = Some(mesh.to_string()),
        }
    }
    settle(resource, unknown, policy).map_err(DecodeError::Invalid)
}

/// Reads YAML (multi-document) or JSON into JSON values, dropping empty documents.
pub fn parse_values(input: &[u8]) -> Result<Vec<Value>, ParseError> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return Err(ParseError::TooLarge {
            size: input.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| ParseError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text).map_err(|e| ParseError::Syntax(e.to_string()))? {
            Value::Array(items) => items,
            other => vec![other],
        }
    } else {
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| ParseError::Syntax(e.to_string()))?
    };
    let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
    if values.iter().any(|v| depth(v) > MAX_DOCUMENT_DEPTH) {
        return Err(ParseError::Syntax(format!(
            "the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep: no resource is"
        )));
    }
    if values.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(values)
}

/// How deeply `v` nests (a scalar: 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Builds a resource (not yet validated beyond its shape) from one document; unknown fields are
/// dropped, as Kuma drops them (stored and synced values are read this way too, so a value
/// written by another version of Mosaic still reads).
pub fn from_value(value: Value) -> Result<Resource, ValidationError> {
    from_value_with(value, UnknownFields::Ignore).map(|(r, _)| r)
}

/// [`from_value`] with `policy` for unknown fields, and the paths of those it found (as written
/// in the document: `spec.` first in the Kubernetes form). Under `Refuse` they are still in the
/// list (the caller refuses them), and unknown top-level keys of a Mesh or a Dataplane are left
/// for its validation to refuse.
pub fn from_value_with(
    value: Value,
    policy: UnknownFields,
) -> Result<(Resource, Vec<String>), ValidationError> {
    let mut unknown = Collector::new(policy);
    let Value::Object(obj) = value else {
        return Err(ValidationError::single(
            "",
            "a resource must be a mapping with type and name (Universal) or apiVersion, kind and metadata (Kubernetes)",
        ));
    };
    if obj.contains_key("apiVersion") || obj.contains_key("kind") {
        let r = from_kubernetes(obj, &mut unknown)?;
        let prefix = if r.resource_type().has_spec_field() {
            ""
        } else {
            "spec"
        };
        Ok((r, unknown.finish(prefix)))
    } else {
        let r = from_universal(obj, &mut unknown)?;
        Ok((r, unknown.finish("")))
    }
}

fn string_field(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ValidationError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ValidationError::single(
            path,
            format!("must be a string, found {}", json_kind(other)),
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn labels(
    obj: &Map<String, Value>,
    path: &str,
) -> Result<BTreeMap<String, String>, ValidationError> {
    match obj.get("labels") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| ValidationError::single(path, "must be a mapping of strings to strings")),
    }
}

fn from_universal(
    mut obj: Map<String, Value>,
    unknown: &mut Collector,
) -> Result<Resource, ValidationError> {
    let ty: ResourceType = match string_field(&obj, "type", "type")? {
        None => {
            return Err(ValidationError::single(
                "type",
                "must be set: Mesh, Secret, GlobalSecret, Zone, Dataplane, MeshIdentity or MeshTrust (or use the Kubernetes form with apiVersion and kind)",
            ));
        }
        Some(t) => t
            .parse()
            .map_err(|e: String| ValidationError::single("type", e))?,
    };
    let name = string_field(&obj, "name", "name")?.unwrap_or_default();
    let mesh = string_field(&obj, "mesh", "mesh")?;
    let labels = labels(&obj, "labels")?;
    let meta = Meta {
        name,
        mesh,
        labels,
        ..Meta::default()
    };
    for k in UNIVERSAL_META {
        obj.remove(*k);
    }
    let spec = unknown.spec(ty, Value::Object(obj))?;
    Ok(Resource { meta, spec })
}

fn from_kubernetes(
    obj: Map<String, Value>,
    unknown: &mut Collector,
) -> Result<Resource, ValidationError> {
    let api_version = string_field(&obj, "apiVersion", "apiVersion")?.unwrap_or_default();
    let kind = string_field(&obj, "kind", "kind")?.unwrap_or_default();
    let metadata = match obj.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(ValidationError::single(
                "metadata",
                format!("must be a mapping, found {}", json_kind(other)),
            ));
        }
        None => {
            return Err(ValidationError::single(
                "metadata",
                "must be set, with a name",
            ));
        }
    };
    let name = string_field(&metadata, "name", "metadata.name")?.unwrap_or_default();
    let labels = labels(&metadata, "metadata.labels")?;
    let mesh_label = labels.get("kuma.io/mesh").cloned();

    if api_version == "v1" && kind == "Secret" {
        return kubernetes_secret(&obj, name, labels, mesh_label);
    }
    if api_version != KUMA_API_VERSION {
        return Err(ValidationError::single(
            "apiVersion",
            format!(
                "{api_version:?} is not supported: use {KUMA_API_VERSION} (or v1 for a Secret)"
            ),
        ));
    }
    let ty: ResourceType = kind
        .parse()
        .map_err(|e: String| ValidationError::single("kind", e))?;
    if matches!(ty, ResourceType::Secret | ResourceType::GlobalSecret) {
        return Err(ValidationError::single(
            "kind",
            "Kubernetes secrets are apiVersion v1, kind Secret, type system.kuma.io/secret (or system.kuma.io/global-secret)",
        ));
    }
    let mesh = string_field(&obj, "mesh", "mesh")?.or(mesh_label);
    let spec_value = match obj.get("spec") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(ValidationError::single(
                "spec",
                format!("must be a mapping, found {}", json_kind(other)),
            ));
        }
    };
    let spec = if ty.has_spec_field() {
        // Kept as `{spec, status}`: paths already start with `spec`.
        let mut body = Map::new();
        body.insert("spec".into(), spec_value);
        if let Some(status) = obj.get("status").filter(|s| !s.is_null()) {
            body.insert("status".into(), status.clone());
        }
        unknown.spec(ty, Value::Object(body))?
    } else {
        unknown
            .spec(ty, spec_value)
            .map_err(|e| e.prefixed("spec"))?
    };
    Ok(Resource {
        meta: Meta {
            name,
            mesh: if ty.is_mesh_scoped() {
                mesh.or_else(|| Some("default".into()))
            } else {
                None
            },
            labels,
            ..Meta::default()
        },
        spec,
    })
}

fn kubernetes_secret(
    obj: &Map<String, Value>,
    name: String,
    labels: BTreeMap<String, String>,
    mesh_label: Option<String>,
) -> Result<Resource, ValidationError> {
    let secret_type = string_field(obj, "type", "type")?.unwrap_or_default();
    let value = match obj.get("data") {
        Some(Value::Object(d)) => match d.get("value") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(ValidationError::single(
                    "data.value",
                    "must be set: the secret, base64-encoded",
                ));
            }
        },
        _ => {
            return Err(ValidationError::single(
                "data",
                "must be a mapping with a value key",
            ));
        }
    };
    let spec = super::SecretSpec { data: value };
    match secret_type.as_str() {
        "system.kuma.io/secret" => Ok(Resource {
            meta: Meta {
                name,
                mesh: Some(mesh_label.unwrap_or_else(|| "default".into())),
                labels,
                ..Meta::default()
            },
            spec: Spec::Secret(spec),
        }),
        "system.kuma.io/global-secret" => Ok(Resource {
            meta: Meta {
                name,
                labels,
                ..Meta::default()
            },
            spec: Spec::GlobalSecret(spec),
        }),
        other => Err(ValidationError::single(
            "type",
            format!(
                "{other:?} is not a Kuma secret type: use system.kuma.io/secret or system.kuma.io/global-secret"
            ),
        )),
    }
}

/// Builds a resource from its stored or synced Universal form, keeping the store's bookkeeping
/// (`creationTime`, `modificationTime`, `version`) that [`from_value`] ignores in user input.
pub fn from_stored_value(value: Value) -> Result<Resource, ValidationError> {
    /// The store's bookkeeping in a stored record (read in place: the record is not copied).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stamps {
        #[serde(default, with = "time::serde::rfc3339::option")]
        creation_time: Option<time::OffsetDateTime>,
        #[serde(default, with = "time::serde::rfc3339::option")]
        modification_time: Option<time::OffsetDateTime>,
        #[serde(default)]
        version: Option<u64>,
    }
    let stamped = Stamps::deserialize(&value)
        .map_err(|e| ValidationError::single("", format!("bad stored metadata: {e}")))?;
    let mut r = from_value(value)?;
    r.meta.creation_time = stamped.creation_time;
    r.meta.modification_time = stamped.modification_time;
    r.meta.version = stamped.version;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `tests/hostile_documents.rs`: JSON nested 65 to 128 deep was accepted, but the
    /// YAML printed of it was refused (serde-saphyr's depth budget is 64): both refuse it now.
    #[test]
    fn json_and_yaml_refuse_the_same_depth() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let ok = format!(
            "{{\"type\":\"Mesh\",\"name\":\"m\",\"meshServices\":{}}}",
            nested(60)
        );
        assert!(parse_values(ok.as_bytes()).is_ok());
        let deep = format!(
            "{{\"type\":\"Mesh\",\"name\":\"m\",\"meshServices\":{}}}",
            nested(70)
        );
        let e = parse_values(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("nested more than 64 levels"), "{e}");
    }

    /// Found by `tests/hostile_documents.rs`: a kept number read back from its JSON text was off
    /// by one unit in the last place (serde_json's fast float parsing); `float_roundtrip` now.
    #[test]
    fn kept_numbers_read_back_exactly() {
        let doc = "{\"type\":\"Mesh\",\"name\":\"m\",\"meshServices\":[2.7407952038889174e-120]}";
        let v = parse_values(doc.as_bytes()).unwrap().remove(0);
        assert_eq!(v["meshServices"][0].as_f64(), Some(2.7407952038889174e-120));
    }

    /// What `kumactl get mesh default -o yaml` and `kumactl get zone zone-1 -o yaml` print in
    /// Kuma 2.14 (`app/kumactl/cmd/apply/testdata/golden`): `kri` and the times are output-only,
    /// accepted and ignored; labels are kept.
    #[test]
    fn kumactl_2_14_output_is_accepted_back() {
        let mesh = "creationTime: \"2025-01-01T00:00:00Z\"\nkri: kri_m____default_\nlabels:\n  team: payments\nmodificationTime: \"2025-01-02T00:00:00Z\"\nname: default\ntype: Mesh\nskipCreatingInitialPolicies:\n- '*'\nmtls: {}\n";
        let r = parse_document(mesh.as_bytes()).expect("kumactl's mesh output");
        assert_eq!(r.meta.name, "default");
        assert_eq!(
            r.meta.labels.get("team").map(String::as_str),
            Some("payments")
        );
        assert_eq!(r.meta.creation_time, None, "times are the store's");
        assert!(r.to_universal().get("kri").is_none());
        let zone = "creationTime: \"0001-01-01T00:00:00Z\"\nkri: kri_z____zone-1_\nmodificationTime: \"0001-01-01T00:00:00Z\"\nname: zone-1\ntype: Zone\nenabled: true\n";
        assert_eq!(
            parse_document(zone.as_bytes()).expect("zone").meta.name,
            "zone-1"
        );
    }

    /// `kubectl get mesh -o yaml` metadata (uid, resourceVersion, annotations, ...) is ignored.
    #[test]
    fn kubernetes_metadata_fields_are_accepted() {
        let doc = "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\n  uid: 3f1c\n  resourceVersion: \"123\"\n  generation: 2\n  creationTimestamp: \"2025-01-01T00:00:00Z\"\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{}'\n  labels:\n    kuma.io/origin: global\nspec: {}\n";
        let r = parse_document(doc.as_bytes()).expect("kubectl's output");
        assert_eq!(
            r.meta.labels.get("kuma.io/origin").map(String::as_str),
            Some("global")
        );
    }
}
