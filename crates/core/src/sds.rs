//! The data-plane interface's names and rules, shared by the zone's SDS server and `mosaic-dp`:
//! SDS resource names, the node id, the node-metadata key that carries a Dataplane, and the checks
//! of a Dataplane's tags and workload against its token (Kuma's rules).

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

/// The label a Dataplane's workload is named by (Kuma's `kuma.io/workload`).
pub const WORKLOAD_LABEL: &str = "kuma.io/workload";

/// Checks a Dataplane's tags against its token's, as Kuma does (`validateTags`): every tag the
/// token names must be on the Dataplane, and each of the Dataplane's values for it must be one
/// the token allows; tags the token does not name are free (they still go into the certificate,
/// as in Kuma). With `require_all_tags` (the zone's `dataplane_tokens.require_all_tags`) every
/// tag of the Dataplane must also be named by the token, so no identity tag goes unvouched.
/// Returns every refused tag, with what the token allows.
pub fn check_tags(
    dataplane_tags: &Tags,
    token_tags: &BTreeMap<String, Vec<String>>,
    require_all_tags: bool,
) -> Result<(), String> {
    let mut refused = Vec::new();
    for (name, allowed) in token_tags {
        match dataplane_tags.get(name) {
            None => refused.push(format!(
                "{name} is missing (the token requires {name}={})",
                allowed.join("|")
            )),
            Some(values) => {
                for value in values.iter().filter(|v| !allowed.contains(v)) {
                    refused.push(format!(
                        "{name}={value} (the token allows {name}={})",
                        allowed.join("|")
                    ));
                }
            }
        }
    }
    if require_all_tags {
        for (name, values) in dataplane_tags {
            if !token_tags.contains_key(name) {
                for value in values {
                    refused.push(format!(
                        "{name}={value} (the token does not name {name}, and this zone requires every tag to be named: dataplane_tokens.require_all_tags)"
                    ));
                }
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the Dataplane's tags do not fit its token: {}; generate a token with the Dataplane's tags (mosaicctl generate dataplane-token --tag NAME=VALUE1,VALUE2 ...) or change the Dataplane",
        refused.join(", ")
    ))
}

/// Checks a token's workload binding (Kuma's `Workload`) against the Dataplane's labels: a
/// token bound to a workload fits only a Dataplane labelled `kuma.io/workload` with it.
pub fn check_workload(
    token_workload: &str,
    dataplane_labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    if token_workload.is_empty() {
        return Ok(());
    }
    match dataplane_labels.get(WORKLOAD_LABEL) {
        Some(w) if w == token_workload => Ok(()),
        Some(w) => Err(format!(
            "the Dataplane's workload is {w:?} (label {WORKLOAD_LABEL}) but its token is bound to workload {token_workload:?}: generate a token with --workload {w}"
        )),
        None => Err(format!(
            "the token is bound to workload {token_workload:?} but the Dataplane has no {WORKLOAD_LABEL} label: add labels: {{{WORKLOAD_LABEL}: {token_workload}}} to the Dataplane, or use a token without --workload"
        )),
    }
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
    fn tags_follow_kuma_and_optionally_all_must_be_named() {
        let token: BTreeMap<String, Vec<String>> = [
            ("kuma.io/service".to_string(), vec!["backend".to_string()]),
            (
                "version".to_string(),
                vec!["v1".to_string(), "v2".to_string()],
            ),
        ]
        .into();
        for strict in [false, true] {
            assert!(
                check_tags(
                    &tags(&[("kuma.io/service", "backend"), ("version", "v2")]),
                    &token,
                    strict
                )
                .is_ok()
            );
            let err = check_tags(
                &tags(&[("kuma.io/service", "web"), ("version", "v1")]),
                &token,
                strict,
            )
            .unwrap_err();
            assert!(
                err.contains("kuma.io/service=web (the token allows kuma.io/service=backend)"),
                "{err}"
            );
            // Every value the Dataplane has for a named tag must be allowed.
            let err = check_tags(
                &tags(&[
                    ("kuma.io/service", "backend"),
                    ("kuma.io/service", "admin"),
                    ("version", "v1"),
                ]),
                &token,
                strict,
            )
            .unwrap_err();
            assert!(err.contains("kuma.io/service=admin"), "{err}");
            // A tag the token names must be there.
            let err =
                check_tags(&tags(&[("kuma.io/service", "backend")]), &token, strict).unwrap_err();
            assert!(
                err.contains("version is missing (the token requires version=v1|v2)"),
                "{err}"
            );
            assert!(err.contains("mosaicctl generate dataplane-token"), "{err}");
        }
        // Kuma's quickstart: a token naming only the service fits a Dataplane with more tags...
        let service: BTreeMap<String, Vec<String>> =
            [("kuma.io/service".to_string(), vec!["web".to_string()])].into();
        let web = tags(&[("kuma.io/service", "web"), ("version", "v1")]);
        assert!(check_tags(&web, &service, false).is_ok());
        // ...unless the zone requires every tag to be named (the rule before Kuma's).
        let err = check_tags(&web, &service, true).unwrap_err();
        assert!(
            err.contains("version=v1 (the token does not name version, and this zone requires every tag to be named: dataplane_tokens.require_all_tags)"),
            "{err}"
        );
        // A token without tags checks none (and, strictly, allows none).
        assert!(check_tags(&web, &BTreeMap::new(), false).is_ok());
        assert!(check_tags(&web, &BTreeMap::new(), true).is_err());
    }

    #[test]
    fn workload_binding() {
        let labels = |w: Option<&str>| -> BTreeMap<String, String> {
            w.map(|w| (WORKLOAD_LABEL.to_string(), w.to_string()))
                .into_iter()
                .collect()
        };
        assert!(check_workload("", &labels(None)).is_ok());
        assert!(check_workload("", &labels(Some("web"))).is_ok());
        assert!(check_workload("web", &labels(Some("web"))).is_ok());
        let err = check_workload("web", &labels(Some("api"))).unwrap_err();
        assert!(
            err.contains("\"api\"") && err.contains("--workload api"),
            "{err}"
        );
        let err = check_workload("web", &labels(None)).unwrap_err();
        assert!(err.contains("has no kuma.io/workload label"), "{err}");
    }
}
