//! The data-plane interface's names and rules, shared by the zone's SDS server and `mosaic-dp`:
//! SDS resource names, the node id, the node-metadata key that carries a Dataplane, and the check
//! that a Dataplane claims only tags its token allows.

use std::{collections::BTreeMap, fmt};

use crate::template::Tags;

/// Prefix of the identity secret's name: `identity_cert:secret:<mesh>`.
pub const IDENTITY_CERT_PREFIX: &str = "identity_cert:secret:";
/// Prefix of the trust bundle secret's name: `mesh_ca:secret:<mesh>`.
pub const MESH_CA_PREFIX: &str = "mesh_ca:secret:";
/// Type URL of an Envoy `Secret` in a DiscoveryResponse.
pub const SECRET_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// Node-metadata field (a string holding the Dataplane in YAML or JSON) with which a data plane
/// registers itself when it connects (Kuma's `dataplane.resource`).
pub const DATAPLANE_RESOURCE_METADATA: &str = "dataplane.resource";
/// gRPC metadata carrying the dataplane token (`Bearer <token>`).
pub const AUTHORIZATION_METADATA: &str = "authorization";

/// A secret the zone serves over SDS.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretName {
    /// `identity_cert:secret:<mesh>`: the dataplane's certificate chain and private key.
    IdentityCert(String),
    /// `mesh_ca:secret:<mesh>`: every root the mesh trusts.
    MeshCa(String),
}

// === impl SecretName ===

impl SecretName {
    /// Parses a resource name; `None` when it is not one of the two forms.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(mesh) = name.strip_prefix(IDENTITY_CERT_PREFIX) {
            return (!mesh.is_empty()).then(|| SecretName::IdentityCert(mesh.to_string()));
        }
        if let Some(mesh) = name.strip_prefix(MESH_CA_PREFIX) {
            return (!mesh.is_empty()).then(|| SecretName::MeshCa(mesh.to_string()));
        }
        None
    }

    /// The mesh it belongs to.
    pub fn mesh(&self) -> &str {
        match self {
            SecretName::IdentityCert(m) | SecretName::MeshCa(m) => m,
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretName::IdentityCert(m) => write!(f, "{IDENTITY_CERT_PREFIX}{m}"),
            SecretName::MeshCa(m) => write!(f, "{MESH_CA_PREFIX}{m}"),
        }
    }
}

/// The node id of a data plane: `<mesh>.<name>`.
pub fn node_id(mesh: &str, name: &str) -> String {
    format!("{mesh}.{name}")
}

/// Splits a node id `<mesh>.<name>` at its first dot (mesh names never contain one).
pub fn parse_node_id(id: &str) -> Result<(&str, &str), String> {
    match id.split_once('.') {
        Some((mesh, name)) if !mesh.is_empty() && !name.is_empty() => Ok((mesh, name)),
        _ => Err(format!(
            "node.id {id:?} must be \"<mesh>.<dataplane name>\", e.g. \"default.backend-1\""
        )),
    }
}

/// Checks that every tag of a Dataplane is allowed by its token: the token lists, per tag name,
/// the values the data plane may claim, and a certificate's identity comes only from tags the
/// token vouches for. Returns each refused tag, `name=value`, with what the token allows.
pub fn check_tags(
    dataplane_tags: &Tags,
    token_tags: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    let mut refused = Vec::new();
    for (name, values) in dataplane_tags {
        let allowed = token_tags.get(name);
        for value in values {
            if !allowed.is_some_and(|a| a.iter().any(|v| v == value)) {
                let what = match allowed {
                    Some(a) => format!("{name}={value} (the token allows {name}={})", a.join("|")),
                    None => format!("{name}={value} (the token does not name {name})"),
                };
                refused.push(what);
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the Dataplane claims tags its token does not allow: {}; generate a token that lists them (mosaicctl generate dataplane-token --tag NAME=VALUE ...) or remove them from the Dataplane",
        refused.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        let mut t = Tags::new();
        for (k, v) in pairs {
            t.entry((*k).to_string())
                .or_default()
                .insert((*v).to_string());
        }
        t
    }

    #[test]
    fn secret_names_round_trip() {
        for n in ["identity_cert:secret:default", "mesh_ca:secret:prod"] {
            assert_eq!(SecretName::parse(n).unwrap().to_string(), n);
        }
        assert_eq!(
            SecretName::parse("identity_cert:secret:m").unwrap().mesh(),
            "m"
        );
        for bad in ["", "identity_cert:secret:", "mesh_ca:m", "default"] {
            assert_eq!(SecretName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn node_ids_split_at_the_first_dot() {
        assert_eq!(
            parse_node_id("default.backend-1").unwrap(),
            ("default", "backend-1")
        );
        assert_eq!(parse_node_id("m.web.v1").unwrap(), ("m", "web.v1"));
        assert_eq!(node_id("m", "web.v1"), "m.web.v1");
        for bad in ["", "default", ".x", "x."] {
            assert!(
                parse_node_id(bad)
                    .unwrap_err()
                    .contains("<mesh>.<dataplane name>")
            );
        }
    }

    #[test]
    fn tags_must_be_vouched_for() {
        let token: BTreeMap<String, Vec<String>> = [
            ("kuma.io/service".to_string(), vec!["backend".to_string()]),
            (
                "version".to_string(),
                vec!["v1".to_string(), "v2".to_string()],
            ),
        ]
        .into();
        assert!(
            check_tags(
                &tags(&[("kuma.io/service", "backend"), ("version", "v2")]),
                &token
            )
            .is_ok()
        );
        let err = check_tags(&tags(&[("kuma.io/service", "web")]), &token).unwrap_err();
        assert!(
            err.contains("kuma.io/service=web (the token allows kuma.io/service=backend)"),
            "{err}"
        );
        let err = check_tags(
            &tags(&[("kuma.io/service", "backend"), ("zone", "east")]),
            &token,
        )
        .unwrap_err();
        assert!(
            err.contains("zone=east (the token does not name zone)"),
            "{err}"
        );
        assert!(err.contains("mosaicctl generate dataplane-token"), "{err}");
    }
}
