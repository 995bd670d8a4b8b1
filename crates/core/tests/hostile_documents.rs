//! Hostile documents (#16 item 6): property tests over every way a peer hands Mosaic a resource
//! document (the APIs' PUT bodies, `mosaicctl apply`, SDS registration): the seed documents of
//! every type, Universal and Kubernetes, YAML and JSON, mutated field by field, truncated,
//! nested deep, or replaced by random text.
//!
//! Properties: nothing panics; an accepted document reads back to the same resource from its
//! Universal JSON and from the YAML `mosaicctl get -o yaml` prints; a refused one is refused with
//! violations that each say something, and a document that is a mapping is refused with a field
//! named. Case counts are small so the file runs in seconds; `PROPTEST_CASES=N` raises them.

use mosaic_core::resource::{
    ParseError, Resource, ResourceType, UnknownFields,
    parse::{DecodeError, Target, decode_with, from_value, parse_documents_with, parse_values},
    parse_document,
};
use proptest::{prelude::*, test_runner::Config};
use serde_json::{Map, Value, json};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // Failures are kept as unit tests in this file, not in proptest-regressions/ files.
        failure_persistence: None,
        ..Config::default()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).expect("self-signed").pem()
}

/// Valid documents of every type a peer may write, Universal and Kubernetes forms.
fn seeds() -> Vec<Value> {
    let mut out = Vec::new();
    for f in [
        "seed000-universal.yaml",
        "seed000-kubernetes.yaml",
        "seed001-aws.yaml",
        "seed003-universal.yaml",
        "seed003-kubernetes.yaml",
        "seed003-meshidentity-universal.yaml",
        "seed003-meshidentity-kubernetes.yaml",
        "multi.yaml",
    ] {
        out.extend(parse_values(&fixture(f)).expect("fixture parses"));
    }
    let pem = ca_pem();
    out.extend([
        json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca-1",
            "backends": [{"name": "ca-1", "type": "builtin",
                "dpCert": {"rotation": {"expiration": "1d"}},
                "conf": {"caCert": {"RSAbits": 2048, "expiration": "10y"}}}]}}),
        json!({"type": "Secret", "name": "sec-1", "mesh": "default", "data": "c2VjcmV0"}),
        json!({"type": "GlobalSecret", "name": "g-1", "data": "c2VjcmV0"}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "system.kuma.io/secret",
            "metadata": {"name": "sec-2", "labels": {"kuma.io/mesh": "default"}},
            "data": {"value": "c2VjcmV0"}}),
        json!({"type": "Zone", "name": "east", "enabled": true}),
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Zone", "metadata": {"name": "west"},
            "spec": {"enabled": false}}),
        json!({"type": "Dataplane", "mesh": "default", "name": "web-1",
            "labels": {"kuma.io/workload": "web"},
            "networking": {"address": "10.0.0.1", "inbound": [
                {"port": 8080, "servicePort": 80, "tags": {"kuma.io/service": "web", "version": "v1"}}],
                "outbound": [{"port": 9000, "tags": {"kuma.io/service": "db"}}]}}),
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Dataplane", "mesh": "default",
            "metadata": {"name": "web-2"},
            "spec": {"networking": {"address": "10.0.0.2", "inbound": [
                {"port": 8080, "tags": {"kuma.io/service": "web"}}]}}}),
        json!({"type": "MeshIdentity", "name": "id-1", "mesh": "default", "spec": {
            "selector": {"dataplane": {"matchLabels": {"app": "web"}}},
            "spiffeID": {"trustDomain": "{{ .Mesh }}.{{ .Zone }}.mesh.local",
                "path": "/ns/{{ .Namespace }}/sa/{{ label \"kuma.io/workload\" }}"},
            "provider": {"type": "Bundled", "bundled": {"meshTrustCreation": "Enabled",
                "autogenerate": {"enabled": true}}}}}),
        json!({"type": "MeshTrust", "name": "t-1", "mesh": "default", "spec": {
            "trustDomain": "default.mesh.local", "caBundles": [{"type": "Pem", "pem": {"value": pem}}]}}),
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTrust",
            "metadata": {"name": "t-2", "labels": {"kuma.io/mesh": "default"}}, "spec": {
            "trustDomain": "other.mesh.local", "caBundles": [{"type": "Pem", "pem": {"value": pem}}]}}),
    ]);
    out
}

/// One change to a document, at a path chosen by the `u32`s (each picks a child, modulo).
#[derive(Clone, Debug)]
enum Mutation {
    /// Removes the key (or list item) at the path.
    Remove(Vec<u32>),
    /// Replaces the value at the path.
    Replace(Vec<u32>, Value),
    /// Adds a key to the mapping at the path.
    Insert(Vec<u32>, String, Value),
    /// Wraps the value at the path in `depth` lists.
    Nest(Vec<u32>, usize),
}

/// Strings a peer might write: names, templates, durations, base64, PEM-ish text, unicode,
/// control characters, long runs.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.-]{0,12}",
        "[ -~]{0,24}",
        "\\PC{0,16}",
        Just(String::new()),
        Just("{{ tag \"kuma.io/service\" }}".to_string()),
        Just("{{ .Mesh }}{{ label \"".to_string()),
        Just("-1s".to_string()),
        Just("99999999999999999999y".to_string()),
        Just("1.5h30m".to_string()),
        Just("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".to_string()),
        Just("spiffe://../..//".to_string()),
        Just("default.web-1".to_string()),
        (1usize..4000).prop_map(|n| "a".repeat(n)),
        Just("\u{0}\u{1b}[31m\u{feff}".to_string()),
    ]
}

/// JSON values of every shape, small and absurd.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn path() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 0..6)
}

/// Keys a document really has, so an insertion often collides with or sits next to a real one.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        prop::sample::select(vec![
            "type",
            "name",
            "mesh",
            "kind",
            "apiVersion",
            "metadata",
            "spec",
            "labels",
            "mtls",
            "backends",
            "enabledBackend",
            "conf",
            "fromCp",
            "dpCert",
            "networking",
            "inbound",
            "outbound",
            "tags",
            "port",
            "address",
            "data",
            "enabled",
            "provider",
            "spiffeID",
            "trustDomain",
            "caBundles",
            "selector",
            "status",
            "value",
            "secret",
            "inline",
            "inlineString",
            "file",
            "commonName",
            "auth",
            "tls",
            "rotation",
            "expiration",
        ])
        .prop_map(str::to_string),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => path().prop_map(Mutation::Remove),
        4 => (path(), value()).prop_map(|(p, v)| Mutation::Replace(p, v)),
        // A key named "" has the empty path: its violation cannot name it.
        2 => (path(), key().prop_filter("a named key", |k| !k.is_empty()), value())
            .prop_map(|(p, k, v)| Mutation::Insert(p, k, v)),
        1 => (path(), 1usize..200).prop_map(|(p, d)| Mutation::Nest(p, d)),
    ]
}

/// The value at `path` (children picked modulo their count; stops at a leaf).
fn at<'a>(v: &'a mut Value, path: &[u32]) -> &'a mut Value {
    let Some((&first, rest)) = path.split_first() else {
        return v;
    };
    let len = match &*v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if len == 0 {
        return v;
    }
    let i = first as usize % len;
    match v {
        Value::Object(m) => {
            let child = m.values_mut().nth(i).expect("i < len");
            at(child, rest)
        }
        Value::Array(a) => at(&mut a[i], rest),
        other => other,
    }
}

fn apply(doc: &mut Value, m: &Mutation) {
    match m {
        Mutation::Remove(p) => {
            let (last, parent) = match p.split_last() {
                Some((last, parent)) => (*last as usize, parent),
                None => return,
            };
            match at(doc, parent) {
                Value::Object(map) if !map.is_empty() => {
                    let k = map
                        .keys()
                        .nth(last % map.len())
                        .cloned()
                        .unwrap_or_default();
                    map.remove(&k);
                }
                Value::Array(a) if !a.is_empty() => {
                    let len = a.len();
                    a.remove(last % len);
                }
                _ => {}
            }
        }
        Mutation::Replace(p, v) => *at(doc, p) = v.clone(),
        Mutation::Insert(p, k, v) => {
            if let Value::Object(map) = at(doc, p) {
                map.insert(k.clone(), v.clone());
            }
        }
        Mutation::Nest(p, depth) => {
            let slot = at(doc, p);
            let mut v = slot.take();
            for _ in 0..*depth {
                v = Value::Array(vec![v]);
            }
            *slot = v;
        }
    }
}

/// How the document travels.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    Json,
    JsonPretty,
    Yaml,
}

fn encode(doc: &Value, e: Encoding) -> Vec<u8> {
    match e {
        Encoding::Json => serde_json::to_vec(doc).expect("json"),
        Encoding::JsonPretty => serde_json::to_vec_pretty(doc).expect("json"),
        Encoding::Yaml => serde_saphyr::to_string(doc).expect("yaml").into_bytes(),
    }
}

/// A seed, mutated, encoded, perhaps cut short or with a byte changed.
fn document() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let seeds = seeds();
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 0..4),
        prop_oneof![
            Just(Encoding::Json),
            Just(Encoding::JsonPretty),
            Just(Encoding::Yaml)
        ],
        prop_oneof![
            6 => Just(None),
            1 => any::<prop::sample::Index>().prop_map(|i| Some((i, None))),
            1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Some((i, Some(b)))),
        ],
    )
        .prop_map(|(mut doc, mutations, encoding, damage)| {
            for m in &mutations {
                apply(&mut doc, m);
            }
            let mapping = doc.is_object();
            let mut bytes = encode(&doc, encoding);
            match damage {
                None => (bytes, mapping),
                Some((i, None)) => {
                    bytes.truncate(i.index(bytes.len().max(1)));
                    (bytes, false)
                }
                Some((i, Some(b))) => {
                    if !bytes.is_empty() {
                        let at = i.index(bytes.len());
                        bytes[at] = b;
                    }
                    (bytes, false)
                }
            }
        })
}

/// An accepted resource reads back unchanged from its Universal JSON and from the YAML
/// `mosaicctl get -o yaml` prints (and `mosaicctl apply` reads).
fn round_trips(r: &Resource) -> Result<(), TestCaseError> {
    let universal = r.to_universal();
    let back = from_value(universal.clone())
        .map_err(|e| TestCaseError::fail(format!("Universal JSON does not read back: {e}")))?;
    prop_assert_eq!(&back, r, "Universal JSON round trip");
    let json = serde_json::to_vec(&universal).expect("json");
    let back = parse_document(&json)
        .map_err(|e| TestCaseError::fail(format!("accepted, but its JSON is refused: {e}")))?;
    prop_assert_eq!(&back, r, "JSON text round trip");
    let yaml = serde_saphyr::to_string(&universal).expect("yaml");
    let back = parse_document(yaml.as_bytes()).map_err(|e| {
        TestCaseError::fail(format!("accepted, but its YAML is refused: {e}\n{yaml}"))
    })?;
    prop_assert_eq!(&back, r, "YAML round trip:\n{}", yaml);
    Ok(())
}

/// A refusal says what is wrong; a mapping's refusal names a field.
fn refusal_is_explained(e: &ParseError, mapping: bool) -> Result<(), TestCaseError> {
    let violations = e.violations();
    prop_assert!(
        !violations.is_empty(),
        "a refusal without violations: {e:?}"
    );
    for v in &violations {
        prop_assert!(
            !v.message.trim().is_empty(),
            "a violation without message: {e:?}"
        );
    }
    if mapping && let ParseError::Invalid { .. } = e {
        prop_assert!(
            violations.iter().any(|v| !v.field.is_empty()),
            "a mapping refused without naming a field: {e:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Mutated seed documents: parsed under both unknown-field policies without a panic; what
    /// is accepted round-trips, what is refused says why (naming a field).
    #[test]
    fn mutated_documents_parse_round_trip_or_are_refused_with_a_field((bytes, mapping) in document()) {
        for policy in [UnknownFields::Ignore, UnknownFields::Refuse] {
            match parse_documents_with(&bytes, policy) {
                Ok(decoded) => {
                    for d in &decoded {
                        prop_assert!(d.resource.validate().is_ok());
                        round_trips(&d.resource)?;
                    }
                }
                Err(e) => refusal_is_explained(&e, mapping)?,
            }
        }
    }

    /// The same documents decoded for each API target (the PUT URL's type, mesh and name; SDS
    /// registration's node id): no panic; an accepted one is of the target's type, mesh and name.
    #[test]
    fn mutated_documents_decode_for_every_target_or_are_refused((bytes, _mapping) in document(),
        rtype in prop::sample::select(ResourceType::ALL.to_vec()),
        name in prop::option::of(prop_oneof![Just("web-1".to_string()), Just("default".to_string()), "[a-z]{1,8}"]),
        mesh in prop::option::of(Just("default")))
    {
        let mesh = mesh.filter(|_| rtype.is_mesh_scoped());
        let target = Target { rtype, mesh, name: name.as_deref(), document: "the body", given_by: "the URL" };
        match decode_with(&bytes, &target, UnknownFields::Ignore) {
            Ok(d) => {
                prop_assert_eq!(d.resource.resource_type(), rtype);
                if let Some(n) = &name {
                    prop_assert_eq!(&d.resource.meta.name, n);
                }
                if let Some(m) = mesh {
                    prop_assert_eq!(d.resource.meta.mesh.as_deref(), Some(m));
                }
                round_trips(&d.resource)?;
            }
            Err(DecodeError::TooLarge { .. }) => prop_assert!(bytes.len() > 2 * 1024 * 1024),
            Err(DecodeError::Unfit(v)) => prop_assert!(!v.message.is_empty()),
            Err(DecodeError::Invalid(e)) => {
                prop_assert!(!e.violations.is_empty());
                prop_assert!(e.violations.iter().all(|v| !v.message.is_empty()));
            }
        }
    }

    /// Random bytes and random text: never a panic, never an acceptance without validation.
    #[test]
    fn random_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512),
        text in "\\PC{0,256}")
    {
        for input in [bytes.as_slice(), text.as_bytes()] {
            if let Ok(docs) = parse_documents_with(input, UnknownFields::Refuse) {
                for d in docs {
                    prop_assert!(d.resource.validate().is_ok());
                }
            }
        }
    }

    /// YAML's own hazards: anchors and aliases, tags, duplicate keys, multi-document streams,
    /// flow collections, odd scalars: no panic.
    #[test]
    fn yaml_constructs_never_panic(parts in prop::collection::vec(prop_oneof![
        Just("type: Mesh\n"), Just("name: default\n"), Just("mesh: default\n"),
        Just("a: &a [*a]\n"), Just("b: &b {x: *b}\n"), Just("c: *undefined\n"),
        Just("d: !!binary aGVsbG8=\n"), Just("e: !custom {}\n"), Just("---\n"), Just("...\n"),
        Just("name: twice\n"), Just("f: [1, {g: [2, [3]]}]\n"), Just("h: 0x1F\n"), Just("i: .inf\n"),
        Just("j: ~\n"), Just("k: |\n  text\n"), Just("  l: indented\n"), Just("? complex\n: key\n"),
        Just("mtls:\n  backends:\n  - name: x\n    type: builtin\n"), Just("\t\n"), Just("%YAML 1.2\n"),
    ], 0..12)) {
        let doc = parts.concat();
        let _ = parse_documents_with(doc.as_bytes(), UnknownFields::Ignore);
    }
}

/// Deep nesting (a YAML bomb's shape, or JSON lists 10 000 deep) is refused without exhausting
/// the stack.
#[test]
fn deeply_nested_documents_are_refused_without_a_stack_overflow() {
    for depth in [200, 1_000, 10_000, 100_000] {
        let json = format!(
            "{{\"type\":\"Mesh\",\"name\":\"default\",\"x\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let _ = parse_document(json.as_bytes());
        let yaml = format!(
            "type: Mesh\nname: default\nx: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let _ = parse_document(yaml.as_bytes());
        let yaml_maps = format!(
            "type: Mesh\nname: default\nx: {}1{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        );
        let _ = parse_document(yaml_maps.as_bytes());
    }
}

/// A billion-laughs alias expansion does not take the process's memory.
#[test]
fn alias_expansion_is_bounded() {
    let mut doc =
        String::from("type: Mesh\nname: default\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        doc.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let e = parse_document(doc.as_bytes()).expect_err("refused");
    assert!(!e.to_string().is_empty());
}

/// Every seed is accepted as written and round-trips (so the mutated cases start from valid
/// documents, and the round-trip property is exercised on each type).
#[test]
fn every_seed_is_accepted_and_round_trips() {
    let mut types = std::collections::BTreeSet::new();
    for seed in seeds() {
        for encoding in [Encoding::Json, Encoding::JsonPretty, Encoding::Yaml] {
            let bytes = encode(&seed, encoding);
            let r = parse_document(&bytes).unwrap_or_else(|e| {
                panic!("seed refused: {e}\n{}", String::from_utf8_lossy(&bytes))
            });
            round_trips(&r).unwrap_or_else(|e| panic!("{e}"));
            types.insert(r.resource_type());
        }
    }
    for t in [
        ResourceType::Mesh,
        ResourceType::Secret,
        ResourceType::GlobalSecret,
        ResourceType::Zone,
        ResourceType::Dataplane,
        ResourceType::MeshIdentity,
        ResourceType::MeshTrust,
    ] {
        assert!(types.contains(&t), "no {t} seed");
    }
}
