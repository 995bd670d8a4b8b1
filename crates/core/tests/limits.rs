//! What one resource may hold (`resource::limits`) and the one Dataplane check the zone's API,
//! SDS registration and the global share (`parse::decode_for`): oversized lists are refused
//! naming the field and the bound, bad addresses and unknown fields naming the field.

use mosaic_core::resource::{
    ResourceType, UnknownFields,
    limits::{
        MAX_BACKENDS_PER_MESH, MAX_INBOUNDS_PER_DATAPLANE, MAX_KEPT_LIST_ITEMS, MAX_LABELS,
        MAX_OUTBOUNDS_PER_DATAPLANE, MAX_TAGS,
    },
    parse::{DecodeError, Target, decode_for, parse_documents_with},
    parse_document,
};
use serde_json::{Value, json};

/// `(field, message)` of every violation of `doc`, which must be refused.
fn violations(doc: &Value) -> Vec<(String, String)> {
    match parse_document(&serde_json::to_vec(doc).unwrap()) {
        Ok(r) => panic!("should have been refused: {r:?}"),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect(),
    }
}

fn builtin_mesh(backends: usize) -> Value {
    let backends: Vec<Value> = (0..backends)
        .map(|i| json!({"name": format!("ca-{i}"), "type": "builtin"}))
        .collect();
    json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca-0", "backends": backends}})
}

fn dataplane() -> Value {
    json!({
        "type": "Dataplane", "mesh": "default", "name": "dp-1",
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]
        }
    })
}

#[test]
fn a_mesh_has_at_most_32_backends() {
    assert_eq!(MAX_BACKENDS_PER_MESH, 32);
    parse_document(&serde_json::to_vec(&builtin_mesh(MAX_BACKENDS_PER_MESH)).unwrap())
        .expect("32 backends are fine");
    let v = violations(&builtin_mesh(20_000));
    // One violation, whatever the count: the backends themselves are not looked at.
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "mtls.backends");
    assert!(
        v[0].1
            .starts_with("at most 32 backends per Mesh (got 20000)"),
        "{v:?}"
    );
}

#[test]
fn dataplane_lists_are_bounded() {
    let mut dp = dataplane();
    let inbound: Vec<Value> = (0..=MAX_INBOUNDS_PER_DATAPLANE)
        .map(|i| json!({"port": 1000 + i, "tags": {"kuma.io/service": "web"}}))
        .collect();
    dp["networking"]["inbound"] = json!(inbound);
    let v = violations(&dp);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "networking.inbound");
    assert!(
        v[0].1.starts_with(&format!(
            "at most {MAX_INBOUNDS_PER_DATAPLANE} inbounds per Dataplane (got {})",
            MAX_INBOUNDS_PER_DATAPLANE + 1
        )),
        "{v:?}"
    );

    let mut dp = dataplane();
    let tags: serde_json::Map<String, Value> = (0..MAX_TAGS)
        .map(|i| (format!("t{i}"), json!("v")))
        .chain([("kuma.io/service".to_string(), json!("web"))])
        .collect();
    dp["networking"]["inbound"][0]["tags"] = Value::Object(tags);
    let v = violations(&dp);
    assert_eq!(v[0].0, "networking.inbound[0].tags", "{v:?}");
    assert!(
        v[0].1.starts_with(&format!(
            "at most {MAX_TAGS} tags per inbound (got {})",
            MAX_TAGS + 1
        )),
        "{v:?}"
    );

    let mut dp = dataplane();
    let outbound: Vec<Value> = (0..=MAX_OUTBOUNDS_PER_DATAPLANE)
        .map(|i| json!({"port": 20000 + i, "tags": {"kuma.io/service": "db"}}))
        .collect();
    dp["networking"]["outbound"] = json!(outbound);
    let v = violations(&dp);
    assert_eq!(v[0].0, "networking.outbound", "{v:?}");
    assert!(
        v[0].1.starts_with(&format!(
            "at most {MAX_OUTBOUNDS_PER_DATAPLANE} outbounds per Dataplane"
        )),
        "{v:?}"
    );

    let mut dp = dataplane();
    let long: Vec<u32> = (0..=MAX_KEPT_LIST_ITEMS as u32).collect();
    dp["probes"] = json!({"endpoints": long});
    let v = violations(&dp);
    assert_eq!(v[0].0, "probes.endpoints", "{v:?}");
}

#[test]
fn labels_and_kept_mesh_fields_are_bounded() {
    let mut mesh = builtin_mesh(1);
    let labels: serde_json::Map<String, Value> = (0..=MAX_LABELS)
        .map(|i| (format!("l{i}"), json!("v")))
        .collect();
    mesh["labels"] = Value::Object(labels);
    let v = violations(&mesh);
    assert_eq!(v[0].0, "labels", "{v:?}");
    assert!(
        v[0].1
            .starts_with(&format!("at most {MAX_LABELS} labels per resource")),
        "{v:?}"
    );

    let mut mesh = builtin_mesh(1);
    let backends: Vec<Value> = (0..=MAX_KEPT_LIST_ITEMS)
        .map(|i| json!({"name": format!("p{i}")}))
        .collect();
    mesh["metrics"] = json!({ "backends": backends });
    let v = violations(&mesh);
    assert_eq!(v[0].0, "metrics.backends", "{v:?}");
}

#[test]
fn a_dataplane_address_is_an_ip_or_a_dns_name() {
    for good in ["10.0.0.1", "fd00::1", "backend.example.com", "localhost"] {
        let mut dp = dataplane();
        dp["networking"]["address"] = json!(good);
        parse_document(&serde_json::to_vec(&dp).unwrap()).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["not an ip;rm -rf", "10.0.0.1:80", "-x.example", "a..b"] {
        let mut dp = dataplane();
        dp["networking"]["address"] = json!(bad);
        let v = violations(&dp);
        assert_eq!(v.len(), 1, "{bad}: {v:?}");
        assert_eq!(v[0].0, "networking.address", "{bad}");
        assert!(
            v[0].1.contains("is not an IP address or a DNS name"),
            "{bad}: {v:?}"
        );
    }
    let mut dp = dataplane();
    dp["networking"]["advertisedAddress"] = json!("$(id)");
    dp["networking"]["inbound"][0]["serviceAddress"] = json!("a b");
    let fields: Vec<String> = violations(&dp).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "networking.advertisedAddress",
            "networking.inbound[0].serviceAddress"
        ]
    );
}

#[test]
fn unknown_dataplane_fields_are_refused() {
    let mut dp = dataplane();
    dp["evil"] = json!(true);
    dp["networking"]["inbounds"] = json!([]);
    // Refused with `unknown_fields = "refuse"` (by default they are dropped, as Kuma does).
    let v: Vec<(String, String)> =
        match parse_documents_with(&serde_json::to_vec(&dp).unwrap(), UnknownFields::Refuse) {
            Ok(r) => panic!("should have been refused: {r:?}"),
            Err(e) => e
                .violations()
                .into_iter()
                .map(|v| (v.field, v.message))
                .collect(),
        };
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["evil", "networking.inbounds"], "{v:?}");
    assert!(v[0].1.contains("unknown field"), "{v:?}");
    assert!(v[0].1.contains("networking, metrics, probes"), "{v:?}");
    // Kuma's own fields are kept as written.
    let mut dp = dataplane();
    dp["metrics"] = json!({"type": "prometheus", "conf": {"port": 5670}});
    dp["probes"] = json!({"port": 9000});
    dp["networking"]["admin"] = json!({"port": 9901});
    dp["networking"]["transparentProxying"] = json!({"redirectPortInbound": 15006});
    parse_document(&serde_json::to_vec(&dp).unwrap()).expect("Kuma's fields");
}

#[test]
fn decode_for_fills_in_and_checks_the_target() {
    let target = Target {
        rtype: ResourceType::Dataplane,
        mesh: Some("default"),
        name: Some("dp-1"),
        document: "the body",
        given_by: "the URL",
    };
    let body = b"networking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n";
    let r = decode_for(body, &target).unwrap();
    assert_eq!(
        (r.meta.mesh.as_deref(), r.meta.name.as_str()),
        (Some("default"), "dp-1")
    );
    let bad = b"networking:\n  address: not an ip;rm -rf\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n";
    let Err(DecodeError::Invalid(e)) = decode_for(bad, &target) else {
        panic!("refused as invalid")
    };
    assert_eq!(e.violations[0].field, "networking.address");
    let Err(DecodeError::Unfit(v)) = decode_for(b"type: Mesh\n", &target) else {
        panic!("a Mesh is not a Dataplane")
    };
    assert_eq!(v.field, "type");
    let Err(DecodeError::Unfit(v)) = decode_for(b"name: dp-2\n", &target) else {
        panic!("another name")
    };
    assert_eq!(v.field, "name");
    assert!(v.message.contains("in the URL"), "{v}");
}
