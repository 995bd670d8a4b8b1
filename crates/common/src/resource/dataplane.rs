//! `Dataplane` (a proxy and the services it fronts, Kuma's shape) and `DataplaneInsight`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    template::Tags,
    validate::{FieldPath, ValidationError, Validator},
};

/// The tag that names a service; every inbound must carry it.
pub const SERVICE_TAG: &str = "kuma.io/service";

/// The spec of a `Dataplane`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneSpec {
    /// Addresses, inbounds and outbounds.
    #[serde(default)]
    pub networking: Networking,
    /// Other Kuma Dataplane fields (metrics, probes), kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `networking` of a Dataplane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    /// The data plane's address.
    #[serde(default)]
    pub address: String,
    /// Address other zones reach it at.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub advertised_address: String,
    /// The services it fronts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<Inbound>,
    /// A gateway data plane's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    /// Other networking fields (outbound, admin, transparentProxying), kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One inbound of a Dataplane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inbound {
    /// Port the proxy listens on.
    #[serde(default)]
    pub port: u32,
    /// Port of the service behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u32>,
    /// Address of the service behind it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_address: String,
    /// Tags; `kuma.io/service` is required.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Other inbound fields, kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `networking.gateway`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Tags; `kuma.io/service` is required.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Other gateway fields, kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

// === impl DataplaneSpec ===

impl DataplaneSpec {
    /// Every tag of every inbound (and the gateway), multi-valued.
    pub fn tags(&self) -> Tags {
        let mut tags = Tags::new();
        let gateway = self.networking.gateway.iter().map(|g| &g.tags);
        for t in self
            .networking
            .inbound
            .iter()
            .map(|i| &i.tags)
            .chain(gateway)
        {
            for (k, v) in t {
                tags.entry(k.clone()).or_default().insert(v.clone());
            }
        }
        tags
    }

    /// Checks the address, ports and tags.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        let net = FieldPath::from("networking");
        if self.networking.address.trim().is_empty() {
            v.violation(&net.field("address"), "must not be empty");
        }
        if self.networking.inbound.is_empty() && self.networking.gateway.is_none() {
            v.violation(
                &net,
                "must have at least one inbound (or a gateway) tagged with kuma.io/service",
            );
        }
        for (i, inbound) in self.networking.inbound.iter().enumerate() {
            let p = net.field("inbound").index(i);
            if inbound.port == 0 || inbound.port > 65535 {
                v.violation(&p.field("port"), "must be a port between 1 and 65535");
            }
            if let Some(sp) = inbound.service_port
                && (sp == 0 || sp > 65535)
            {
                v.violation(
                    &p.field("servicePort"),
                    "must be a port between 1 and 65535",
                );
            }
            validate_tags(&inbound.tags, &p.field("tags"), &mut v);
        }
        if let Some(g) = &self.networking.gateway {
            validate_tags(&g.tags, &net.field("gateway.tags"), &mut v);
        }
        v.finish()
    }
}

/// Checks Kuma's rules for tags: `kuma.io/service` present, names and values non-empty and printable.
pub fn validate_tags(tags: &BTreeMap<String, String>, path: &FieldPath, v: &mut Validator) {
    match tags.get(SERVICE_TAG) {
        None => v.violation(path, format!("tag {SERVICE_TAG:?} is required")),
        Some(s) if s.trim().is_empty() => v.violation(
            &path.field(&format!("\"{SERVICE_TAG}\"")),
            "must not be empty",
        ),
        Some(_) => {}
    }
    for (k, val) in tags {
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        };
        if !ok(k) {
            v.violation(
                path,
                format!("tag name {k:?} must be non-empty and use only letters, digits, '-', '_', '.', '/', ':'"),
            );
        }
        if !ok(val) {
            v.violation(
                &path.field(&format!("\"{k}\"")),
                format!("tag value {val:?} must be non-empty and use only letters, digits, '-', '_', '.', '/', ':'"),
            );
        }
    }
}

/// The spec of a `DataplaneInsight`: its certificate's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneInsightSpec {
    /// Certificate state.
    #[serde(default, rename = "mTLS", skip_serializing_if = "Option::is_none")]
    pub mtls: Option<DataplaneMtls>,
}

/// `mTLS` of a DataplaneInsight (Kuma's field names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneMtls {
    /// When the current certificate expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub certificate_expiration_time: Option<OffsetDateTime>,
    /// When it was last (re)issued.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_certificate_regeneration: Option<OffsetDateTime>,
    /// How many times it was issued.
    #[serde(default)]
    pub certificate_regenerations: u64,
    /// The backend that issued it.
    #[serde(default)]
    pub issued_backend: String,
    /// Every backend of the mesh (all trusted).
    #[serde(default)]
    pub supported_backends: Vec<String>,
}
