//! Kuma's checks on the Dataplane fields Mosaic keeps as written (outbounds, admin, probes,
//! metrics, transparent proxying, zone-proxy listeners) and the rules of Kuma 2.14's validator
//! the typed fields do not already enforce (wildcard addresses, IP-only inbound addresses,
//! service address overlap, protocol tags, service probes, gateway protocol). A Dataplane Kuma
//! refuses is refused here too, with Kuma's messages; field paths follow the document (Kuma
//! names `probes` under `networking` and spells `transparentProxing`; the real field names are
//! used here).

use std::net::IpAddr;

use serde_json::Value;

use super::mesh_passthrough::check_port;
use crate::validate::{FieldPath, Validator};

/// The protocols Kuma's `kuma.io/protocol` tag and `protocol` field accept.
const PROTOCOLS: &[&str] = &["http", "http2", "tcp", "tls", "grpc", "kafka", "mysql"];
/// What Kuma's messages list as supported.
const PROTOCOLS_HINT: &str = "Allowed values: grpc, http, http2, kafka, tcp";
/// The kinds a `backendRef` may name.
const BACKEND_KINDS: &str = "MeshExternalService,MeshMultiZoneService,MeshService";

/// Checks `spec` (the Dataplane spec as a document); `gateway` is the gateway's kind if the
/// Dataplane is one (`Some(true)` builtin, `Some(false)` delegated).
pub fn validate(spec: &Value, gateway: Option<bool>, v: &mut Validator) {
    let net_path = FieldPath::from("networking");
    let net = spec.get("networking").cloned().unwrap_or(Value::Null);
    let address = text(&net, "address");
    if address == "0.0.0.0" || address == "::" {
        v.violation(&net_path.field("address"), "must not be 0.0.0.0 or ::");
    }
    let inbounds = list(&net, "inbound");
    let outbounds = list(&net, "outbound");
    if let Some(port) = net
        .get("admin")
        .and_then(|a| a.get("port"))
        .and_then(Value::as_u64)
    {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let at = net_path.field("admin.port");
        if inbounds
            .iter()
            .any(|i| inbound_uses(i, address, loopback, port))
        {
            v.violation(&at, "must differ from inbound");
        }
        if outbounds.iter().any(|o| outbound_uses(o, loopback, port)) {
            v.violation(&at, "must differ from outbound");
        }
    }
    for (i, inbound) in inbounds.iter().enumerate() {
        validate_inbound(inbound, address, &net_path.field("inbound").index(i), v);
    }
    for (i, outbound) in outbounds.iter().enumerate() {
        validate_outbound(outbound, &net_path.field("outbound").index(i), v);
    }
    if let Some(tp) = net.get("transparentProxying") {
        validate_transparent_proxying(tp, &net_path.field("transparentProxying"), v);
    }
    let listeners = list(&net, "listeners");
    match gateway {
        Some(builtin) => {
            if !listeners.is_empty() {
                let kind = if builtin { "builtin" } else { "delegated" };
                v.violation(
                    &net_path.field("listeners"),
                    format!("listeners cannot be defined for {kind} gateways"),
                );
            }
            if let Some(tags) = net.get("gateway").and_then(|g| g.get("tags")) {
                let protocol = tags.get("kuma.io/protocol").and_then(Value::as_str);
                if let Some(protocol) = protocol.filter(|p| !p.eq_ignore_ascii_case("tcp")) {
                    v.violation(
                        &net_path.field(r#"gateway.tags["kuma.io/protocol"]"#),
                        format!(
                            "other values than tcp are not allowed, provided value {protocol:?}"
                        ),
                    );
                }
            }
            if builtin && spec.get("probes").is_some_and(|p| !p.is_null()) {
                v.violation(
                    &FieldPath::from("probes"),
                    "probes cannot be defined for builtin gateways",
                );
            } else if !builtin {
                validate_probes(spec.get("probes"), v);
            }
        }
        None => {
            validate_probes(spec.get("probes"), v);
            validate_listeners(
                listeners,
                inbounds,
                address,
                &net_path.field("listeners"),
                v,
            );
        }
    }
    if gateway.is_none()
        && let Some(metrics) = spec.get("metrics").filter(|m| !m.is_null())
    {
        if text(metrics, "type") == "prometheus" {
            let conf = metrics.get("conf").cloned().unwrap_or(Value::Null);
            super::mesh_passthrough::validate_prometheus(
                &conf,
                &FieldPath::from("metrics.conf"),
                v,
            );
        } else {
            v.violation(
                &FieldPath::from("metrics.type"),
                r#"unknown backend type. Available backends: "prometheus""#,
            );
        }
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn port(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Whether two addresses overlap as Kuma sees it: equal, or either a wildcard.
fn overlap(a: IpAddr, b: Option<IpAddr>) -> bool {
    match b {
        Some(b) => a.is_unspecified() || b.is_unspecified() || a == b,
        None => false,
    }
}

/// Whether `address:port` is used by the inbound (its data-plane side or its workload side).
fn inbound_uses(inbound: &Value, dp_address: &str, address: IpAddr, port: u64) -> bool {
    let dp_ip = match text(inbound, "address") {
        "" => dp_address,
        a => a,
    };
    let workload_ip = match text(inbound, "serviceAddress") {
        "" => "127.0.0.1",
        a => a,
    };
    let workload_port = match self::port(inbound, "servicePort") {
        0 => self::port(inbound, "port"),
        p => p,
    };
    (self::port(inbound, "port") == port && overlap(address, dp_ip.parse().ok()))
        || (workload_port == port && overlap(address, workload_ip.parse().ok()))
}

/// Whether `address:port` is used by the outbound's listener.
fn outbound_uses(outbound: &Value, address: IpAddr, port: u64) -> bool {
    let ip = match text(outbound, "address") {
        "" => "127.0.0.1",
        a => a,
    };
    self::port(outbound, "port") == port && overlap(address, ip.parse().ok())
}

fn validate_inbound(inbound: &Value, dp_address: &str, path: &FieldPath, v: &mut Validator) {
    let port = port(inbound, "port");
    let service_port = self::port(inbound, "servicePort");
    let service_address = text(inbound, "serviceAddress");
    let address = text(inbound, "address");
    let differs = |sp: u64| sp == 0 || sp == port;
    if !service_address.is_empty() {
        // The typed check accepts a DNS name too (and refuses the rest); Kuma wants an IP.
        if service_address.parse::<IpAddr>().is_err() && super::mesh::is_dns_name(service_address) {
            v.violation(
                &path.field("serviceAddress"),
                "serviceAddress has to be valid IP address",
            );
        }
        if service_address == dp_address && differs(service_port) {
            v.violation(
                &path.field("serviceAddress"),
                "serviceAddress and servicePort has to differ from address and port",
            );
        }
    }
    if !address.is_empty() {
        if address.parse::<IpAddr>().is_err() {
            v.violation(&path.field("address"), "address has to be valid IP address");
        }
        if address == service_address && differs(service_port) {
            v.violation(
                &path.field("serviceAddress"),
                "serviceAddress and servicePort has to differ from address and port",
            );
        }
    }
    if let Some(protocol) = inbound
        .get("tags")
        .and_then(|t| t.get("kuma.io/protocol"))
        .and_then(Value::as_str)
        && !is_protocol(protocol)
    {
        v.violation(
            &path.field(r#"tags["kuma.io/protocol"]"#),
            format!(
                r#"tag "kuma.io/protocol" has an invalid value {protocol:?}. {PROTOCOLS_HINT}"#
            ),
        );
    }
    let protocol = text(inbound, "protocol");
    if !protocol.is_empty() && !is_protocol(protocol) {
        v.violation(
            &path.field("protocol"),
            format!("has an invalid value {protocol:?}. {PROTOCOLS_HINT}"),
        );
    }
    if let Some(probe) = inbound.get("serviceProbe").filter(|p| !p.is_null()) {
        let p = path.field("serviceProbe");
        for key in ["interval", "timeout"] {
            if let Some(d) = probe.get(key).filter(|d| !d.is_null()) {
                check_duration(d, &p.field(key), v);
            }
        }
        for key in ["unhealthyThreshold", "healthyThreshold"] {
            if probe.get(key).is_some_and(|t| t.as_u64() == Some(0)) {
                v.violation(&p.field(key), "must have a positive value");
            }
        }
    }
}

fn is_protocol(protocol: &str) -> bool {
    PROTOCOLS.contains(&protocol.to_ascii_lowercase().as_str())
}

/// A protobuf JSON duration (`"1.5s"`, also a bare number of seconds): valid and positive.
fn check_duration(d: &Value, path: &FieldPath, v: &mut Validator) {
    let seconds = match d {
        Value::String(s) => s.strip_suffix('s').unwrap_or(s).parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match seconds {
        None => v.violation(path, "must have a valid value"),
        Some(s) if s <= 0.0 => v.violation(path, "must have a positive value"),
        Some(_) => {}
    }
}

fn validate_outbound(outbound: &Value, path: &FieldPath, v: &mut Validator) {
    check_port(port(outbound, "port"), &path.field("port"), v);
    let address = text(outbound, "address");
    if !address.is_empty() && address.parse::<IpAddr>().is_err() {
        v.violation(&path.field("address"), "address has to be valid IP address");
    }
    let tags = outbound.get("tags").and_then(Value::as_object);
    let has_tags = tags.is_some_and(|t| !t.is_empty());
    let service = text(outbound, "service");
    if let Some(backend_ref) = outbound.get("backendRef").filter(|b| !b.is_null()) {
        let at = path.field("backendRef");
        let kind = text(backend_ref, "kind");
        if !BACKEND_KINDS.split(',').any(|k| k == kind) {
            v.violation(
                &at.field("kind"),
                format!("invalid value. Available values are: {BACKEND_KINDS}"),
            );
        }
        let labels = backend_ref.get("labels").and_then(Value::as_object);
        if text(backend_ref, "name").is_empty() && labels.is_none_or(|l| l.is_empty()) {
            v.violation(&at, "either 'name' or 'labels' should be specified");
        }
        if kind != "MeshExternalService" {
            check_port(port(backend_ref, "port"), &at.field("port"), v);
        }
        if has_tags || !service.is_empty() {
            v.violation(&at, "both backendRef and tags/service cannot be defined");
        }
    } else if !has_tags {
        if service.is_empty() {
            v.violation(
                &path.field("tags"),
                r#"mandatory tag "kuma.io/service" is missing"#,
            );
        }
    } else if tags.is_some_and(|t| !t.contains_key("kuma.io/service")) {
        v.violation(
            &path.field("tags"),
            r#"mandatory tag "kuma.io/service" is missing"#,
        );
    }
}

fn validate_transparent_proxying(tp: &Value, path: &FieldPath, v: &mut Validator) {
    let Some(refs) = tp.get("reachableBackends").and_then(|r| r.get("refs")) else {
        return;
    };
    let path = path.field("reachableBackends.refs");
    for (i, r) in refs
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let at = path.index(i);
        if !BACKEND_KINDS.split(',').any(|k| k == text(r, "kind")) {
            v.violation(
                &at.field("kind"),
                format!("invalid value. Available values are: {BACKEND_KINDS}"),
            );
        }
        let name = text(r, "name");
        let namespace = text(r, "namespace");
        let has_labels = r
            .get("labels")
            .and_then(Value::as_object)
            .is_some_and(|l| !l.is_empty());
        if !name.is_empty() && !is_rfc1123_subdomain(name) {
            v.violation(
                &at.field("name"),
                "invalid characters. A lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            );
        }
        if name.is_empty() && namespace.is_empty() && !has_labels {
            v.violation(&at.field("name"), "name or labels are required");
        }
        if name.is_empty() && !namespace.is_empty() {
            v.violation(
                &at.field("name"),
                "name is required, when namespace is defined",
            );
        }
        if (!name.is_empty() || !namespace.is_empty()) && has_labels {
            v.violation(
                &at.field("labels"),
                "labels cannot be defined when name is specified",
            );
        }
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`.
fn is_rfc1123_subdomain(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

fn validate_probes(probes: Option<&Value>, v: &mut Validator) {
    let Some(probes) = probes.filter(|p| !p.is_null()) else {
        return;
    };
    let path = FieldPath::from("probes");
    check_port(port(probes, "port"), &path.field("port"), v);
    for (i, endpoint) in list(probes, "endpoints").iter().enumerate() {
        let at = path.field("endpoints").index(i);
        check_port(port(endpoint, "inboundPort"), &at.field("inboundPort"), v);
        for key in ["inboundPath", "path"] {
            if !is_request_uri(text(endpoint, key)) {
                v.violation(&at.field(key), "should be a valid URL Path");
            }
        }
    }
}

/// Go's `url.ParseRequestURI`: an absolute URL or a path starting with `/`.
fn is_request_uri(text: &str) -> bool {
    text.starts_with('/') || url::Url::parse(text).is_ok()
}

fn validate_listeners(
    listeners: &[Value],
    inbounds: &[Value],
    dp_address: &str,
    path: &FieldPath,
    v: &mut Validator,
) {
    let mut names: Vec<String> = inbounds
        .iter()
        .map(|i| text(i, "name").to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let mut used: Vec<(String, String)> = Vec::new();
    for (i, listener) in listeners.iter().enumerate() {
        let at = path.index(i);
        let kind = text(listener, "type");
        if kind != "ZoneIngress" && kind != "ZoneEgress" {
            v.violation(&at.field("type"), "type must be ZoneIngress or ZoneEgress");
        }
        let address = text(listener, "address");
        if address.is_empty() {
            v.violation(&at.field("address"), "address can't be empty");
        } else {
            if address == "0.0.0.0" || address == "::" {
                v.violation(&at.field("address"), "must not be 0.0.0.0 or ::");
            }
            if address.parse::<IpAddr>().is_err() && !super::mesh::is_dns_name(address) {
                v.violation(
                    &at.field("address"),
                    "address has to be valid IP address or domain name",
                );
            }
        }
        let port = port(listener, "port");
        check_port(port, &at.field("port"), v);
        let name = text(listener, "name");
        if !name.is_empty() {
            if names.iter().any(|n| n == name) {
                v.violation(
                    &at.field("name"),
                    format!("name {name:?} must be unique across inbounds and listeners"),
                );
            }
            names.push(name.to_owned());
        }
        let key = format!("{address}:{port}");
        match used.iter().find(|(k, _)| *k == key) {
            Some((_, existing)) if existing == kind => v.violation(
                &at,
                format!("address:port {key} is already used by another listener"),
            ),
            Some(_) => v.violation(
                &at,
                format!("address:port {key} is used by listeners of different types"),
            ),
            None => used.push((key.clone(), kind.to_owned())),
        }
        let collides = inbounds.iter().any(|inbound| {
            let ip = match text(inbound, "address") {
                "" => dp_address,
                a => a,
            };
            format!("{ip}:{}", self::port(inbound, "port")) == key
        });
        if collides {
            v.violation(
                &at,
                format!("address:port {key} collides with an inbound listener"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str, gateway: Option<bool>) -> Vec<String> {
        let spec: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut v = Validator::new();
        validate(&spec, gateway, &mut v);
        v.finish()
            .err()
            .map(|e| e.violations.into_iter().map(|x| x.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_ordinary_dataplane_passes() {
        let yaml = "networking: {address: 10.0.0.1, inbound: [{port: 80, tags: {kuma.io/service: web}}], outbound: [{port: 3000, tags: {kuma.io/service: db}}], admin: {port: 9901}}";
        assert!(check(yaml, None).is_empty());
    }

    #[test]
    fn the_admin_port_may_not_be_an_inbound_or_outbound_one() {
        let yaml = "networking: {address: 10.0.0.1, admin: {port: 3000}, outbound: [{port: 3000, tags: {kuma.io/service: db}}]}";
        assert_eq!(check(yaml, None), ["networking.admin.port"]);
        let yaml = "networking: {address: 10.0.0.1, admin: {port: 80}, inbound: [{port: 80, address: 127.0.0.1, tags: {kuma.io/service: web}}]}";
        assert_eq!(check(yaml, None), ["networking.admin.port"]);
    }

    #[test]
    fn outbounds_need_a_service_or_one_backend_ref() {
        assert_eq!(
            check(
                "networking: {address: 10.0.0.1, outbound: [{port: 1, tags: {version: v1}}]}",
                None
            ),
            ["networking.outbound[0].tags"]
        );
        assert_eq!(
            check(
                "networking: {address: 10.0.0.1, outbound: [{port: 1, backendRef: {}}]}",
                None
            ),
            [
                "networking.outbound[0].backendRef.kind",
                "networking.outbound[0].backendRef",
                "networking.outbound[0].backendRef.port"
            ]
        );
    }

    #[test]
    fn wildcard_addresses_protocols_and_gateways_follow_kuma() {
        assert_eq!(
            check("networking: {address: '::'}", None),
            ["networking.address"]
        );
        assert_eq!(
            check(
                "networking: {address: 10.0.0.1, inbound: [{port: 1, tags: {kuma.io/service: a, kuma.io/protocol: nope}}]}",
                None
            ),
            [r#"networking.inbound[0].tags["kuma.io/protocol"]"#]
        );
        assert_eq!(
            check(
                "networking: {address: 10.0.0.1, gateway: {tags: {kuma.io/service: g, kuma.io/protocol: http}}}",
                Some(false)
            ),
            [r#"networking.gateway.tags["kuma.io/protocol"]"#]
        );
        assert_eq!(
            check(
                "networking: {address: 10.0.0.1, gateway: {type: BUILTIN}}\nprobes: {port: 9000}",
                Some(true)
            ),
            ["probes"]
        );
    }

    #[test]
    fn zone_proxy_listeners_are_checked() {
        let ok = "networking: {address: 10.0.0.1, listeners: [{type: ZoneIngress, address: 10.0.0.1, port: 10001, name: zi}, {type: ZoneEgress, address: 10.0.0.1, port: 10002}]}";
        assert!(check(ok, None).is_empty());
        let bad = "networking: {address: 10.0.0.1, listeners: [{type: Other, address: 10.0.0.1, port: 1}, {type: Other, address: 10.0.0.1, port: 1}]}";
        assert_eq!(
            check(bad, None),
            [
                "networking.listeners[0].type",
                "networking.listeners[1].type",
                "networking.listeners[1]"
            ]
        );
    }
}
