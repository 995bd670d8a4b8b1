//! Kuma's checks on the Mesh fields Mosaic keeps as written but does not act on (`logging`,
//! `tracing`, `metrics`, `constraints`, `routing`): a document Kuma 2.14 refuses is refused here
//! too, with Kuma's field paths and messages, so that what a Kuma control plane would have
//! rejected never lands in the store. Fields Kuma does not check are not checked here either;
//! unknown keys inside these sections are kept, as Kuma's parser ignores them.

use serde_json::{Map, Value};

use crate::validate::{FieldPath, Validator};

/// Checks the kept fields of a Mesh spec (`other`); `mtls_enabled_backend` is the Mesh's
/// `mtls.enabledBackend` (`routing.zoneEgress` needs one).
pub fn validate(other: &Map<String, Value>, mtls_enabled_backend: Option<&str>, v: &mut Validator) {
    if let Some(logging) = other.get("logging") {
        validate_logging(logging, &FieldPath::from("logging"), v);
    }
    if let Some(tracing) = other.get("tracing") {
        validate_tracing(tracing, &FieldPath::from("tracing"), v);
    }
    if let Some(metrics) = other.get("metrics") {
        validate_metrics(metrics, &FieldPath::from("metrics"), v);
    }
    if let Some(constraints) = other.get("constraints") {
        validate_constraints(constraints, &FieldPath::from("constraints"), v);
    }
    let zone_egress = other
        .get("routing")
        .and_then(|r| r.get("zoneEgress"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if zone_egress && mtls_enabled_backend.is_none_or(str::is_empty) {
        v.violation(
            &FieldPath::from("mtls"),
            "has to be set when zoneEgress enabled",
        );
    }
}

/// `value[key]` as a string; absent and `null` are empty (protobuf's default).
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `value[key]` as a list; anything else is empty.
fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A backend's `conf` (absent: an empty object).
fn conf(backend: &Value) -> Value {
    backend
        .get("conf")
        .cloned()
        .filter(|c| !c.is_null())
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// The names of `backends`, flagging the second and later use of one (Kuma's message).
fn check_names(backends: &[Value], path: &FieldPath, v: &mut Validator) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        let name = text(backend, "name").to_owned();
        if used.contains(&name) {
            v.violation(
                &path.index(i).field("name"),
                format!("{name:?} name is already used for another backend"),
            );
        }
        used.push(name);
    }
    used
}

/// Kuma's loop over `section.backends` for logging and tracing (`kind`): each needs a name,
/// passes `check` (its type and conf), and names no backend before it does; `defaultBackend`,
/// when set, names one of them.
fn validate_named_backends(
    section: &Value,
    path: &FieldPath,
    kind: &str,
    v: &mut Validator,
    check: impl Fn(&Value, &FieldPath, &mut Validator),
) {
    let bpath = path.field("backends");
    let mut used: Vec<&str> = Vec::new();
    for (i, backend) in list(section, "backends").iter().enumerate() {
        let at = bpath.index(i);
        let name = text(backend, "name");
        if name.is_empty() {
            v.violation(&at.field("name"), "cannot be empty");
        }
        check(backend, &at, v);
        if used.contains(&name) {
            v.violation(
                &at.field("name"),
                format!("{name:?} name is already used for another backend"),
            );
        }
        used.push(name);
    }
    let default = text(section, "defaultBackend");
    if !default.is_empty() && !used.contains(&default) {
        v.violation(
            &path.field("defaultBackend"),
            format!("has to be set to one of the {kind} backend in mesh"),
        );
    }
}

fn validate_logging(logging: &Value, path: &FieldPath, v: &mut Validator) {
    validate_named_backends(logging, path, "logging", v, |backend, at, v| {
        let conf = conf(backend);
        match text(backend, "type") {
            "file" => {
                if text(&conf, "path").is_empty() {
                    v.violation(&at.field("config.path"), "cannot be empty");
                }
            }
            "tcp" => {
                let address = text(&conf, "address");
                if address.is_empty() {
                    v.violation(&at.field("config.address"), "cannot be empty");
                } else if split_host_port(address).is_none() {
                    v.violation(
                        &at.field("config.address"),
                        "has to be in format of HOST:PORT",
                    );
                }
            }
            _ => v.violation(
                &at.field("type"),
                r#"unknown backend type. Available backends: "tcp", "file""#,
            ),
        }
    });
}

fn validate_tracing(tracing: &Value, path: &FieldPath, v: &mut Validator) {
    validate_named_backends(tracing, path, "tracing", v, |backend, at, v| {
        let sampling = backend
            .get("sampling")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if !(0.0..=100.0).contains(&sampling) {
            v.violation(&at.field("sampling"), "has to be in [0.0 - 100.0] range");
        }
        let conf = conf(backend);
        match text(backend, "type") {
            "zipkin" => validate_zipkin(&conf, &at.field("config"), v),
            "datadog" => {
                if text(&conf, "address").is_empty() {
                    v.violation(&at.field("config.address"), "cannot be empty");
                }
                let port = conf.get("port").and_then(Value::as_u64).unwrap_or(0);
                check_port(port, &at.field("config.port"), v);
            }
            _ => v.violation(
                &at.field("type"),
                r#"unknown backend type. Available backends: "zipkin", "datadog""#,
            ),
        }
    });
}

/// Kuma's `ValidatePort` (also used for a Dataplane's ports).
pub(super) fn check_port(port: u64, path: &FieldPath, v: &mut Validator) {
    if port == 0 || port > 65535 {
        v.violation(path, "port must be in the range [1, 65535]");
    }
}

fn validate_zipkin(conf: &Value, path: &FieldPath, v: &mut Validator) {
    let api_version = text(conf, "apiVersion");
    if !["", "httpJsonV1", "httpJson", "httpProto"].contains(&api_version) {
        v.violation(
            &path.field("apiVersion"),
            "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto",
        );
    }
    let url = text(conf, "url");
    if url.is_empty() {
        v.violation(&path.field("url"), "cannot be empty");
        return;
    }
    match url::Url::parse(url) {
        Err(_) => v.violation(&path.field("url"), "invalid URL"),
        Ok(parsed) => {
            if parsed.port().is_none() && !authority_has_port(url) {
                v.violation(&path.field("url"), "port has to be explicitly specified");
            }
        }
    }
}

fn validate_metrics(metrics: &Value, path: &FieldPath, v: &mut Validator) {
    let backends = list(metrics, "backends");
    let bpath = path.field("backends");
    for (i, backend) in backends.iter().enumerate() {
        let at = bpath.index(i);
        if text(backend, "type") == "prometheus" {
            validate_prometheus(&conf(backend), &at.field("conf"), v);
        } else {
            v.violation(
                &at.field("type"),
                r#"unknown backend type. Available backends: "prometheus""#,
            );
        }
    }
    let used = check_names(backends, &bpath, v);
    let enabled = text(metrics, "enabledBackend");
    if !enabled.is_empty() && !used.iter().any(|u| u == enabled) {
        v.violation(
            &path.field("enabledBackend"),
            "has to be set to one of the backends in the mesh",
        );
    }
}

/// A prometheus backend's `conf` (also a Dataplane's `metrics.conf`).
pub(super) fn validate_prometheus(conf: &Value, path: &FieldPath, v: &mut Validator) {
    if let (Some(skip), Some(tls)) = (conf.get("skipMTLS"), conf.get("tls")) {
        let skip = skip.as_bool().unwrap_or(false);
        let mode = text(tls, "mode");
        // The two only agree when they say the same thing.
        let same = (!skip && mode == "activeMTLSBackend") || (skip && mode == "disabled");
        if !same {
            v.violation(
                path,
                "skipMTLS and tls configuration cannot be defined together",
            );
            return;
        }
    }
    let filter = conf
        .get("envoy")
        .map(|envoy| text(envoy, "filterRegex"))
        .unwrap_or("");
    if let Err(e) = regex::Regex::new(filter) {
        v.violation(
            &path.field("envoy.filterRegex"),
            format!("provided regexp isn't correct: {e}"),
        );
        return;
    }
    let mut used: Vec<&str> = Vec::new();
    for (i, aggregate) in list(conf, "aggregate").iter().enumerate() {
        let name = text(aggregate, "name");
        if used.contains(&name) {
            v.violation(
                &path.field("aggregate").index(i).field("name"),
                format!("duplicate entry: {name}, values have to be unique"),
            );
            continue;
        }
        used.push(name);
    }
}

fn validate_constraints(constraints: &Value, path: &FieldPath, v: &mut Validator) {
    let Some(proxy) = constraints.get("dataplaneProxy") else {
        return;
    };
    let path = path.field("dataplaneProxy");
    for section in ["requirements", "restrictions"] {
        for (i, item) in list(proxy, section).iter().enumerate() {
            let at = path.field(section).index(i).field("tags");
            validate_selector(item.get("tags"), &at, v);
        }
    }
}

/// Kuma's `ValidateSelector` with at least one tag required.
fn validate_selector(tags: Option<&Value>, path: &FieldPath, v: &mut Validator) {
    let tags = tags.and_then(Value::as_object);
    let Some(tags) = tags.filter(|t| !t.is_empty()) else {
        v.violation(path, "must have at least one tag");
        return;
    };
    for (key, value) in tags {
        let at = FieldPath::from(format!("{path}[{key:?}]").as_str());
        if key.is_empty() {
            v.violation(path, "tag name must be non-empty");
        }
        if !key.chars().all(is_tag_name_char) {
            v.violation(
                &at,
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores",
            );
        }
        let value = value.as_str().unwrap_or("");
        if value.is_empty() {
            v.violation(&at, "tag value must be non-empty");
        }
        if !(value == "*" || value.chars().all(is_tag_name_char)) {
            v.violation(
                &at,
                r#"tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*""#,
            );
        }
    }
}

/// Kuma's tag name characters (also a selector value's): `[a-zA-Z0-9.\-_:/]`.
fn is_tag_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/')
}

/// Go's `net.SplitHostPort` as Kuma uses it: `HOST:PORT` or `[IPv6]:PORT`, both non-empty.
fn split_host_port(address: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = address.split_once(':')?;
        if port.contains(':') {
            return None;
        }
        (host, port)
    };
    (!host.is_empty() && !port.is_empty()).then_some((host, port))
}

/// Whether the URL's authority names a port (the `url` crate drops a scheme's default one).
fn authority_has_port(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    split_host_port(host_port).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<String> {
        let spec: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut v = Validator::new();
        let other = spec.as_object().cloned().unwrap_or_default();
        validate(&other, None, &mut v);
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.violations.into_iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn host_port_splits_like_go() {
        assert_eq!(split_host_port("kibana:1234"), Some(("kibana", "1234")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("wrong-format:234:234"), None);
        assert_eq!(split_host_port("kibana"), None);
        assert_eq!(split_host_port(":80"), None);
    }

    #[test]
    fn explicit_ports_are_seen_even_when_they_are_the_default() {
        assert!(authority_has_port("http://zipkin:80/v2/spans"));
        assert!(authority_has_port("http://zipkin:9411"));
        assert!(!authority_has_port("http://zipkin/v2/spans"));
    }

    #[test]
    fn valid_sections_pass_and_each_kuma_rule_is_named() {
        assert!(
            check(
                "logging: {backends: [{name: a, type: file, conf: {path: /x}}], defaultBackend: a}"
            )
            .is_empty()
        );
        assert_eq!(
            check("logging: {backends: [{name: a, type: tcp, conf: {address: x}}]}"),
            ["logging.backends[0].config.address: has to be in format of HOST:PORT"]
        );
        assert_eq!(
            check(
                "tracing: {backends: [{name: z, type: zipkin, sampling: 101, conf: {url: 'http://z:9411/'}}]}"
            ),
            ["tracing.backends[0].sampling: has to be in [0.0 - 100.0] range"]
        );
        assert_eq!(
            check("metrics: {backends: [{name: p, type: prometheus, conf: {envoy: {filterRegex: '('}}}]}").len(),
            1
        );
        assert_eq!(
            check("constraints: {dataplaneProxy: {requirements: [{tags: {}}]}}"),
            ["constraints.dataplaneProxy.requirements[0].tags: must have at least one tag"]
        );
    }

    #[test]
    fn zone_egress_needs_an_enabled_mtls_backend() {
        let spec: Value = serde_saphyr::from_str("routing: {zoneEgress: true}").unwrap();
        let other = spec.as_object().cloned().unwrap_or_default();
        let mut v = Validator::new();
        validate(&other, Some("ca-1"), &mut v);
        assert!(v.is_ok());
        assert_eq!(
            check("routing: {zoneEgress: true}"),
            ["mtls: has to be set when zoneEgress enabled"]
        );
    }
}
