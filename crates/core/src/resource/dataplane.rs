//! `Dataplane` (a proxy and the services it fronts, Kuma's shape) and `DataplaneInsight`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::limits::{
    MAX_INBOUNDS_PER_DATAPLANE, MAX_OUTBOUNDS_PER_DATAPLANE, MAX_TAGS, check_count,
    check_kept_lists,
};
use crate::{
    template::Tags,
    validate::{FieldPath, ValidationError, Validator},
};

/// The tag that names a service; an inbound or gateway with tags must carry it.
pub const SERVICE_TAG: &str = "kuma.io/service";

/// Kuma's Dataplane fields besides `networking`, kept as written.
pub const PASSTHROUGH_DATAPLANE_FIELDS: &[&str] = &["metrics", "probes"];

/// Kuma's `networking` fields besides `address`, `advertisedAddress`, `inbound` and `gateway`,
/// kept as written.
pub const PASSTHROUGH_NETWORKING_FIELDS: &[&str] =
    &["outbound", "admin", "transparentProxying", "listeners"];

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
    /// Tags; when there are any, `kuma.io/service` is one of them.
    #[serde(default, deserialize_with = "tags_with_empty_values")]
    pub tags: BTreeMap<String, String>,
    /// Other inbound fields, kept as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `networking.gateway`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Tags; when there are any, `kuma.io/service` is one of them.
    #[serde(default, deserialize_with = "tags_with_empty_values")]
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

    /// Checks the fields, the addresses, ports and tags, and how many of each there are
    /// ([`limits`](super::limits)). The one check of a Dataplane: the zone's API, a data plane
    /// registering over SDS and the global receiving it over KDS all come here (through
    /// [`Resource::validate`](super::Resource::validate)).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        check_known_fields(
            &self.other,
            &FieldPath::root(),
            "a Dataplane has networking",
            PASSTHROUGH_DATAPLANE_FIELDS,
            &mut v,
        );
        let net = FieldPath::from("networking");
        check_known_fields(
            &self.networking.other,
            &net,
            "networking has address, advertisedAddress, inbound, gateway",
            PASSTHROUGH_NETWORKING_FIELDS,
            &mut v,
        );
        if self.networking == Networking::default() {
            v.violation(
                &net,
                "must be defined: a Dataplane has networking.address and its inbounds, outbounds or gateway",
            );
        }
        if self.networking.address.trim().is_empty() {
            v.violation(&net.field("address"), "must not be empty");
        } else if let Err(msg) = check_address(&self.networking.address) {
            v.violation(&net.field("address"), msg);
        }
        if !self.networking.advertised_address.is_empty()
            && let Err(msg) = check_address(&self.networking.advertised_address)
        {
            v.violation(&net.field("advertisedAddress"), msg);
        }
        // Kuma 2.14 requires no inbound: an outbound-only or transparent-proxy client has
        // `address` and outbounds (or `transparentProxying`) only. A gateway has no inbounds
        // (Kuma: "inbound cannot be defined for ... gateways"); a builtin one no outbounds.
        if let Some(g) = &self.networking.gateway {
            let kind = g.kind();
            if !self.networking.inbound.is_empty() {
                v.violation(
                    &net.field("inbound"),
                    format!(
                        "inbound cannot be defined for {} gateways: a gateway data plane is described by networking.gateway alone",
                        kind.as_str()
                    ),
                );
            }
            if kind == GatewayKind::Builtin
                && self
                    .networking
                    .other
                    .get("outbound")
                    .is_some_and(|o| o.as_array().is_some_and(|a| !a.is_empty()))
            {
                v.violation(
                    &net.field("outbound"),
                    "outbound cannot be defined for builtin gateways: remove networking.outbound",
                );
            }
        }
        if check_count(
            &mut v,
            &net.field("inbound"),
            self.networking.inbound.len(),
            MAX_INBOUNDS_PER_DATAPLANE,
            "inbounds",
            "Dataplane",
            "split the services over several Dataplanes",
        ) {
            for (i, inbound) in self.networking.inbound.iter().enumerate() {
                inbound.validate(&net.field("inbound").index(i), &mut v);
            }
        }
        if let Some(g) = &self.networking.gateway {
            let p = net.field("gateway");
            if check_tag_count(&g.tags, &p.field("tags"), "gateway", &mut v) {
                validate_tags_at(&g.tags, &p.field("tags"), false, &mut v);
            }
            for (k, value) in &g.other {
                check_kept_lists(value, &p.field(k), &mut v);
            }
        }
        for (k, value) in &self.networking.other {
            if k == "outbound" {
                validate_outbound(value, &net.field(k), &mut v);
            } else {
                check_kept_lists(value, &net.field(k), &mut v);
            }
        }
        for (k, value) in &self.other {
            check_kept_lists(value, &FieldPath::from(k.as_str()), &mut v);
        }
        if let Ok(spec) = serde_json::to_value(self) {
            let gateway = self
                .networking
                .gateway
                .as_ref()
                .map(|g| g.kind() == GatewayKind::Builtin);
            super::dataplane_passthrough::validate(&spec, gateway, &mut v);
        }
        v.finish()
    }
}

/// The kind of a gateway data plane (`networking.gateway.type`, Kuma's `DELEGATED` by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// Another proxy (Kong, Contour, ...) fronted by this data plane.
    Delegated,
    /// Kuma's builtin gateway.
    Builtin,
}

impl GatewayKind {
    /// The `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Delegated => "delegated",
            GatewayKind::Builtin => "builtin",
        }
    }
}

// === impl Gateway ===

impl Gateway {
    /// `type`: `BUILTIN` (any case) is builtin, anything else (or nothing) delegated, as Kuma
    /// reads it.
    pub fn kind(&self) -> GatewayKind {
        match self.other.get("type").and_then(|t| t.as_str()) {
            Some(t) if t.eq_ignore_ascii_case("builtin") => GatewayKind::Builtin,
            _ => GatewayKind::Delegated,
        }
    }
}

// === impl Inbound ===

impl Inbound {
    fn validate(&self, p: &FieldPath, v: &mut Validator) {
        if self.port == 0 || self.port > 65535 {
            v.violation(&p.field("port"), "must be a port between 1 and 65535");
        }
        if let Some(sp) = self.service_port
            && (sp == 0 || sp > 65535)
        {
            v.violation(
                &p.field("servicePort"),
                "must be a port between 1 and 65535",
            );
        }
        if !self.service_address.is_empty()
            && let Err(msg) = check_address(&self.service_address)
        {
            v.violation(&p.field("serviceAddress"), msg);
        }
        if check_tag_count(&self.tags, &p.field("tags"), "inbound", v) {
            validate_tags(&self.tags, &p.field("tags"), v);
        }
        for (k, value) in &self.other {
            check_kept_lists(value, &p.field(k), v);
        }
    }
}

/// Unknown keys among `other` (the fields kept as written) are refused, naming the known ones.
fn check_known_fields(
    other: &serde_json::Map<String, serde_json::Value>,
    path: &FieldPath,
    typed: &str,
    kept: &[&str],
    v: &mut Validator,
) {
    for key in other.keys() {
        if !kept.contains(&key.as_str()) {
            v.violation(
                &path.field(key),
                format!(
                    "unknown field: {typed}, {}; remove it or fix its spelling",
                    kept.join(", ")
                ),
            );
        }
    }
}

/// An address a data plane is reached at: an IP address or a DNS name.
fn check_address(address: &str) -> Result<(), String> {
    if address.parse::<std::net::IpAddr>().is_ok() || is_dns_name(address) {
        return Ok(());
    }
    Err(format!(
        "{address:?} is not an IP address or a DNS name: write an address such as 10.0.0.1, fd00::1 or backend.example.com"
    ))
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner '-', at most 63
/// characters each and 253 in all (one trailing dot allowed).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `networking.outbound`: a list, at most [`MAX_OUTBOUNDS_PER_DATAPLANE`] entries, each with at
/// most [`MAX_TAGS`] tags; otherwise kept as written.
fn validate_outbound(value: &serde_json::Value, path: &FieldPath, v: &mut Validator) {
    let serde_json::Value::Array(items) = value else {
        if !value.is_null() {
            v.violation(path, "must be a list of outbounds (port, tags)");
        }
        return;
    };
    if !check_count(
        v,
        path,
        items.len(),
        MAX_OUTBOUNDS_PER_DATAPLANE,
        "outbounds",
        "Dataplane",
        "list only the services this data plane calls, or use transparent proxying",
    ) {
        return;
    }
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        if let Some(serde_json::Value::Object(tags)) = item.get("tags") {
            check_count(
                v,
                &p.field("tags"),
                tags.len(),
                MAX_TAGS,
                "tags",
                "outbound",
                "select the service with fewer tags",
            );
        }
        if let serde_json::Value::Object(fields) = item {
            for (k, x) in fields.iter().filter(|(k, _)| k.as_str() != "tags") {
                check_kept_lists(x, &p.field(k), v);
            }
        }
    }
}

/// At most [`MAX_TAGS`] tags on one inbound or gateway (`per`).
fn check_tag_count(
    tags: &BTreeMap<String, String>,
    path: &FieldPath,
    per: &str,
    v: &mut Validator,
) -> bool {
    check_count(
        v,
        path,
        tags.len(),
        MAX_TAGS,
        "tags",
        per,
        "keep the tags policies and tokens select on and remove the rest",
    )
}

/// Checks Kuma's rules for tags: names and values non-empty and printable, and, when there are
/// any tags, `kuma.io/service` among them (Kuma 2.14 accepts an inbound or gateway without tags:
/// "require service tag only if inbound has any tags").
pub fn validate_tags(tags: &BTreeMap<String, String>, path: &FieldPath, v: &mut Validator) {
    validate_tags_at(tags, path, true, v);
}

/// [`validate_tags`]; a missing `kuma.io/service` is reported at `tags["kuma.io/service"]` for
/// an inbound (`service_at_key`) and at `tags` for a gateway, as Kuma reports them.
fn validate_tags_at(
    tags: &BTreeMap<String, String>,
    path: &FieldPath,
    service_at_key: bool,
    v: &mut Validator,
) {
    // Kuma's paths: `tags["NAME"]` for a problem with one tag.
    let at = |k: &str| FieldPath::from(format!("{path}[{k:?}]").as_str());
    match tags.get(SERVICE_TAG) {
        None if tags.is_empty() => {}
        None => v.violation(
            &if service_at_key { at(SERVICE_TAG) } else { path.clone() },
            format!("tag {SERVICE_TAG:?} is required when an inbound or gateway has tags: add it, or remove every tag"),
        ),
        Some(s) if s.trim().is_empty() => v.violation(&at(SERVICE_TAG), "must not be empty"),
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
                &at(k),
                format!("tag name {k:?} must be non-empty and use only letters, digits, '-', '_', '.', '/', ':'"),
            );
        }
        if !(ok(val) || k == SERVICE_TAG && val.trim().is_empty()) {
            v.violation(
                &at(k),
                format!("tag value {val:?} must be non-empty and use only letters, digits, '-', '_', '.', '/', ':'"),
            );
        }
    }
}

/// Tags where a value may be written empty (`version:` in YAML is null): null reads as `""`, which
/// validation then refuses as empty at `tags["NAME"]`, as Kuma does.
fn tags_with_empty_values<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Option<BTreeMap<String, Option<String>>> = Deserialize::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// The spec of a `DataplaneInsight`: its certificate's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneInsightSpec {
    /// Certificate state.
    #[serde(default, rename = "mTLS", skip_serializing_if = "Option::is_none")]
    pub mtls: Option<DataplaneMtls>,
}

// === impl DataplaneInsightSpec ===

impl DataplaneInsightSpec {
    /// Checks how many backends it lists.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        if let Some(m) = &self.mtls {
            check_count(
                &mut v,
                &FieldPath::from("mTLS.supportedBackends"),
                m.supported_backends.len(),
                super::limits::MAX_BACKENDS_PER_MESH,
                "backends",
                "Mesh",
                "a Mesh has at most that many backends; report the Mesh's own",
            );
        }
        v.finish()
    }
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

#[cfg(test)]
mod tests {
    use crate::resource::{Spec, parse_document};

    fn fields(doc: &str) -> Vec<String> {
        match parse_document(doc.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(e) => e.violations().into_iter().map(|v| v.field).collect(),
        }
    }

    #[test]
    fn outbound_only_and_transparent_proxy_clients_are_accepted_as_kuma_2_14_does() {
        let outbound_only = "type: Dataplane\nmesh: default\nname: client\nnetworking:\n  address: 10.0.0.9\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n";
        let r = parse_document(outbound_only.as_bytes()).expect("outbound-only client");
        let Spec::Dataplane(dp) = &r.spec else {
            panic!("not a Dataplane")
        };
        assert!(dp.networking.inbound.is_empty());
        assert!(dp.tags().is_empty());
        let tproxy = "type: Dataplane\nmesh: default\nname: tp\nnetworking:\n  address: 10.0.0.10\n  transparentProxying:\n    redirectPortInbound: 15006\n    redirectPortOutbound: 15001\n";
        assert_eq!(fields(tproxy), Vec::<String>::new());
        let bare =
            "type: Dataplane\nmesh: default\nname: bare\nnetworking:\n  address: 10.0.0.11\n";
        assert_eq!(fields(bare), Vec::<String>::new());
    }

    #[test]
    fn inbound_tags_may_be_empty_but_tags_without_the_service_tag_are_refused() {
        let empty = "type: Dataplane\nmesh: default\nname: d\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n";
        assert_eq!(fields(empty), Vec::<String>::new());
        let empty_map = "type: Dataplane\nmesh: default\nname: d\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags: {}\n";
        assert_eq!(fields(empty_map), Vec::<String>::new());
        let no_service = "type: Dataplane\nmesh: default\nname: d\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      version: v1\n";
        // Kuma's path for a missing service tag on an inbound.
        assert_eq!(
            fields(no_service),
            vec![r#"networking.inbound[0].tags["kuma.io/service"]"#]
        );
        let gateway = "type: Dataplane\nmesh: default\nname: gw\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    tags:\n      version: v1\n";
        assert_eq!(fields(gateway), vec!["networking.gateway.tags"]);
    }

    #[test]
    fn gateways_take_no_inbounds_and_builtin_ones_no_outbounds() {
        let delegated = "type: Dataplane\nmesh: default\nname: gw\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    tags:\n      kuma.io/service: edge\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n";
        assert_eq!(fields(delegated), Vec::<String>::new());
        let with_inbound = "type: Dataplane\nmesh: default\nname: gw\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    tags:\n      kuma.io/service: edge\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n";
        assert_eq!(fields(with_inbound), vec!["networking.inbound"]);
        let builtin = "type: Dataplane\nmesh: default\nname: gw\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n";
        assert_eq!(fields(builtin), vec!["networking.outbound"]);
    }
}
