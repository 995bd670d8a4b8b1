//! Parsing and validation of user documents: every seed Mesh parses as written; bad documents get
//! every problem with its field path, never a panic.

use mosaic_core::resource::{
    ParseError, ResourceType, Spec, UnknownFields,
    mesh::{BackendConf, MeshSpec, VaultMode},
    parse::parse_documents_with,
    parse_document, parse_documents,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn mesh(doc: &[u8]) -> MeshSpec {
    let r = parse_document(doc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.resource_type(), ResourceType::Mesh);
    assert_eq!(r.meta.name, "default");
    match r.spec {
        Spec::Mesh(m) => m,
        other => panic!("not a mesh: {other:?}"),
    }
}

fn violations(doc: &str) -> Vec<(String, String)> {
    match parse_document(doc.as_bytes()) {
        Ok(r) => panic!("should have been refused: {r:?}"),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect(),
    }
}

fn fields(doc: &str) -> Vec<String> {
    violations(doc).into_iter().map(|(f, _)| f).collect()
}

/// `(field, message)` of every violation of `doc` under `unknown_fields = "refuse"`.
fn violations_refusing(doc: &str) -> Vec<(String, String)> {
    match parse_documents_with(doc.as_bytes(), UnknownFields::Refuse) {
        Ok(r) => panic!("should have been refused: {r:?}"),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect(),
    }
}

#[test]
fn seed_000_universal_and_kubernetes_forms_parse_to_the_same_backend() {
    let u = mesh(&fixture("seed000-universal.yaml"));
    let k = mesh(&fixture("seed000-kubernetes.yaml"));
    for m in [&u, &k] {
        let b = m.enabled_backend().expect("enabled backend");
        assert_eq!(b.name, "vault-1");
        assert_eq!(b.cert_expiration().as_secs(), 86_400);
        let BackendConf::Vault(v) = b.typed_conf().unwrap() else {
            panic!("vault")
        };
        let f = v.from_cp().unwrap();
        assert_eq!(f.address, "https://vault:8200");
        assert_eq!(f.pki, "kmesh-pki-default");
        assert_eq!(f.role, "dataplane-proxies");
        assert_eq!(f.vault_mode(), VaultMode::Issue);
        assert_eq!(
            f.tls
                .as_ref()
                .unwrap()
                .ca_cert
                .as_ref()
                .unwrap()
                .secret
                .as_deref(),
            Some("sec-1")
        );
        assert!(f.common_name_template().unwrap().is_some());
    }
    let BackendConf::Vault(v) = k.backends()[0].typed_conf().unwrap() else {
        panic!()
    };
    let auth = v.from_cp().unwrap().auth.clone().unwrap();
    assert_eq!(
        auth.tls.unwrap().client_cert.unwrap().file.as_deref(),
        Some("/tmp/cert.pem")
    );
}

#[test]
fn seed_001_aws_and_replace_template_parse() {
    let m = mesh(&fixture("seed001-aws.yaml"));
    let BackendConf::Vault(v) = m.backends()[0].typed_conf().unwrap() else {
        panic!()
    };
    let aws = v.from_cp().unwrap().auth.clone().unwrap().aws.unwrap();
    assert_eq!(
        (
            aws.kind.as_str(),
            aws.role.as_str(),
            aws.iam_server_id_header.as_str()
        ),
        ("IAM", "role-name", "example.com")
    );
    // "aws: may be empty to use defaults" counts as the one auth method.
    let m = mesh(&fixture("seed001-aws-empty.yaml"));
    let BackendConf::Vault(v) = m.backends()[0].typed_conf().unwrap() else {
        panic!()
    };
    assert!(v.from_cp().unwrap().auth.clone().unwrap().aws.is_some());
}

#[test]
fn seed_003_meshes_parse_and_keep_passthrough_fields() {
    for f in ["seed003-universal.yaml", "seed003-kubernetes.yaml"] {
        let m = mesh(&fixture(f));
        assert_eq!(m.other["meshServices"]["mode"], "Exclusive");
        assert_eq!(m.enabled_backend().unwrap().name, "vault-ca");
    }
    let m = mesh(&fixture("seed003-migration.yaml"));
    assert_eq!(m.backends().len(), 2);
    assert!(matches!(
        m.backends()[0].typed_conf().unwrap(),
        BackendConf::Builtin(_)
    ));
}

#[test]
fn multi_document_stream_with_every_type() {
    let all = parse_documents(&fixture("multi.yaml")).unwrap();
    let types: Vec<_> = all.iter().map(|r| r.resource_type()).collect();
    assert_eq!(
        types,
        [
            ResourceType::Secret,
            ResourceType::GlobalSecret,
            ResourceType::Secret,
            ResourceType::Zone,
            ResourceType::Dataplane
        ]
    );
    assert_eq!(all[2].meta.mesh.as_deref(), Some("default"));
    let Spec::Dataplane(dp) = &all[4].spec else {
        panic!()
    };
    let tags = dp.tags();
    assert!(tags["kuma.io/service"].contains("backend"));
    assert!(tags["version"].contains("2.0"));
    assert!(dp.networking.other.contains_key("outbound"));
}

#[test]
fn json_documents_parse_too() {
    let doc = r#"{"type":"Mesh","name":"default","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin"}]}}"#;
    assert_eq!(mesh(doc.as_bytes()).enabled_backend().unwrap().name, "ca-1");
}

#[test]
fn round_trip_through_universal_form() {
    let r = parse_document(&fixture("seed000-universal.yaml")).unwrap();
    let again = serde_json::to_vec(&r.to_universal()).unwrap();
    assert_eq!(parse_document(&again).unwrap(), r);
}

const VAULT_HEAD: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: v\n  backends:\n  - name: v\n    type: vault\n";

#[test]
fn every_problem_is_reported_with_its_path() {
    let doc = format!(
        "{VAULT_HEAD}    dpCert:\n      rotation:\n        expiration: 0s\n    conf:\n      fromCp:\n        address: ''\n        pki: ''\n        role: ''\n        commonName: '{{{{ tag \"x\" '\n        mode: mint\n        auth:\n          token:\n            secret: a\n            inlineString: b\n          approle:\n            roleId: r\n            secretId:\n              inline: b2s=\n"
    );
    let got = fields(&doc);
    for want in [
        "mtls.backends[0].dpCert.rotation.expiration",
        "mtls.backends[0].conf.fromCp.address",
        "mtls.backends[0].conf.fromCp.pki",
        "mtls.backends[0].conf.fromCp.role",
        "mtls.backends[0].conf.fromCp.commonName",
        "mtls.backends[0].conf.fromCp.mode",
        "mtls.backends[0].conf.fromCp.auth",
        "mtls.backends[0].conf.fromCp.auth.token",
    ] {
        assert!(got.iter().any(|g| g == want), "missing {want} in {got:?}");
    }
    let msgs = violations(&doc);
    let pki = msgs
        .iter()
        .find(|(f, _)| f.ends_with("fromCp.pki"))
        .unwrap();
    assert!(pki.1.starts_with("must not be empty"), "{pki:?}");
    let auth = msgs
        .iter()
        .find(|(f, _)| f.ends_with("fromCp.auth"))
        .unwrap();
    assert!(auth.1.contains("token, approle"), "{auth:?}");
}

#[test]
fn backend_names_and_enabled_backend_are_checked() {
    let doc = "type: Mesh\nname: default\nmtls:\n  enabledBackend: missing\n  backends:\n  - name: a\n    type: builtin\n  - name: a\n    type: cert-manager\n";
    let v = violations(doc);
    assert!(
        v.iter()
            .any(|(f, m)| f == "mtls.backends[1].name" && m.contains("more than once")),
        "{v:?}"
    );
    assert!(v.iter().any(|(f, m)| f == "mtls.backends[1].type" && m.contains("builtin, provided and vault")), "{v:?}");
    assert!(
        v.iter()
            .any(|(f, m)| f == "mtls.enabledBackend" && m.contains("\"missing\"")),
        "{v:?}"
    );
}

#[test]
fn wrong_types_and_unknown_fields_name_the_field() {
    let v = fields("type: Mesh\nname: default\nmtls:\n  backends: yes\n");
    assert_eq!(v, ["mtls.backends"]);
    // Unknown fields are refused with `unknown_fields = "refuse"` (by default they are dropped).
    let v: Vec<String> = violations_refusing(&format!(
        "{VAULT_HEAD}    conf:\n      fromCp:\n        adress: https://v:8200\n"
    ))
    .into_iter()
    .map(|(f, _)| f)
    .collect();
    assert_eq!(v, ["mtls.backends[0].conf.fromCp.adress"]);
    let v = violations_refusing("type: Mesh\nname: default\nmtsl: {}\n");
    assert_eq!(v[0].0, "mtsl");
    let v = fields(&format!(
        "{VAULT_HEAD}    conf:\n      fromCp:\n        address: https://v:8200\n        pki: p\n        role: r\n        tls:\n          skipVerify: maybe\n        auth:\n          token:\n            inlineString: t\n"
    ));
    assert_eq!(v, ["mtls.backends[0].conf.fromCp.tls.skipVerify"]);
    let v = fields(
        "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  mtls:\n    enabledBackend: 3\n",
    );
    assert_eq!(v, ["spec.mtls.enabledBackend"]);
}

#[test]
fn two_auth_methods_are_refused() {
    let doc = format!(
        "{VAULT_HEAD}    conf:\n      fromCp:\n        address: https://v:8200\n        pki: p\n        role: r\n        auth:\n          token:\n            inlineString: t\n          aws: {{}}\n"
    );
    let v = violations(&doc);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "mtls.backends[0].conf.fromCp.auth");
    assert!(v[0].1.contains("token, aws"));
}

#[test]
fn agent_address_needs_no_auth() {
    let doc = format!(
        "{VAULT_HEAD}    conf:\n      fromCp:\n        address: https://v:8200\n        agentAddress: http://127.0.0.1:8100\n        pki: p\n        role: r\n"
    );
    assert!(parse_document(doc.as_bytes()).is_ok());
}

#[test]
fn bad_durations_are_explained() {
    for (value, needle) in [
        ("1x", "unknown unit"),
        ("-5m", "negative"),
        ("24", "no unit"),
        ("h", "not a number"),
    ] {
        let doc =
            format!("{VAULT_HEAD}    dpCert:\n      rotation:\n        expiration: \"{value}\"\n");
        let v = violations(&doc);
        let hit = v
            .iter()
            .find(|(f, _)| f == "mtls.backends[0].dpCert.rotation.expiration");
        assert!(
            hit.is_some_and(|(_, m)| m.contains(needle)),
            "{value}: {v:?}"
        );
    }
}

#[test]
fn names_and_meshes_follow_kuma_rules() {
    assert_eq!(fields("type: Mesh\nname: Default_Mesh\n"), ["name"]);
    assert_eq!(fields("type: Secret\nname: s\ndata: aGk=\n"), ["mesh"]);
    assert_eq!(fields("type: Mesh\nname: m\nmesh: x\n"), ["mesh"]);
    assert_eq!(
        fields("type: Secret\nmesh: default\nname: s\ndata: '%%%'\n"),
        ["data"]
    );
    assert_eq!(fields("type: Sekret\nname: s\n"), ["type"]);
    assert_eq!(fields("name: s\n"), ["type"]);
    assert_eq!(
        fields("apiVersion: kuma.io/v2\nkind: Mesh\nmetadata:\n  name: a\n"),
        ["apiVersion"]
    );
    let dp = "type: Dataplane\nmesh: default\nname: d\nnetworking:\n  address: ''\n  inbound:\n  - port: 0\n    tags:\n      version: v1\n";
    let v = fields(dp);
    assert!(v.contains(&"networking.address".to_string()), "{v:?}");
    assert!(
        v.contains(&"networking.inbound[0].port".to_string()),
        "{v:?}"
    );
    // Kuma's path for the missing service tag.
    assert!(
        v.contains(&r#"networking.inbound[0].tags["kuma.io/service"]"#.to_string()),
        "{v:?}"
    );
}

#[test]
fn malformed_input_is_a_clear_error_never_a_panic() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"type: Mesh\nname: [unclosed\n".to_vec(), "not valid YAML"),
        (b"{\"type\": \"Mesh\",".to_vec(), "not valid YAML or JSON"),
        (vec![b't', b'y', 0xff, 0xfe, b':'], "not valid UTF-8"),
        (b"".to_vec(), "empty"),
        (b"---\n---\n".to_vec(), "empty"),
        (b"- a\n- b\n".to_vec(), "must be a mapping"),
        (b"42".to_vec(), "must be a mapping"),
        (vec![b'a'; 10 * 1024 * 1024], "limit"),
    ];
    for (input, needle) in cases {
        let e = parse_documents(&input).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} (wanted {needle})");
    }
    let e = parse_documents(b"type: Mesh\nname: a\n---\ntype: Mesh\nname: B\n").unwrap_err();
    assert!(matches!(e, ParseError::Invalid { index: 1, .. }), "{e:?}");
    assert!(e.to_string().starts_with("document 2: name:"), "{e}");
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        doc.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    doc.push_str("type: Mesh\nname: bomb\n");
    assert!(parse_documents(doc.as_bytes()).is_err());
}

#[test]
fn deeply_nested_input_does_not_overflow_the_stack() {
    let doc = format!(
        "type: Mesh\nname: a\nlogging: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let _ = parse_documents(doc.as_bytes());
    let json = format!(
        "{{\"type\":\"Mesh\",\"name\":\"a\",\"logging\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(parse_documents(json.as_bytes()).is_err());
}

#[test]
fn the_seed_address_typo_gets_a_suggestion() {
    let doc = format!(
        "{VAULT_HEAD}    conf:\n      fromCp:\n        address: https://vault.8200\n        pki: p\n        role: r\n        auth:\n          token:\n            inlineString: t\n"
    );
    let v = violations(&doc);
    assert_eq!(v[0].0, "mtls.backends[0].conf.fromCp.address");
    assert!(v[0].1.contains("did you mean https://vault:8200?"), "{v:?}");
}
