//! `{{ zone }}` in a vault backend's zone fields (seed 002: one Kubernetes auth mount per
//! cluster): accepted in `auth.kubernetes.mountPath`, `auth.kubernetes.role`,
//! `auth.approle.mountPath` and `namespace`; any other placeholder there is refused with the field
//! path; a backend without `auth` is accepted (each zone brings its own credentials).

mod support;

use support::{from_cp, violations};

const HEAD: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: vault-1\n  backends:\n  - name: vault-1\n    type: vault\n    conf:\n      fromCp:\n        address: https://vault.example.com:8200\n        pki: pki_int\n        role: example-dot-com\n        mode: sign\n";

#[test]
fn zone_placeholder_is_accepted_in_the_four_fields() {
    let f = from_cp(&format!(
        "{HEAD}        namespace: 'team/{{{{ zone }}}}'\n        auth:\n          kubernetes:\n            mountPath: '{{{{ zone }}}}'\n            role: 'pki-{{{{ zone }}}}'\n"
    ));
    assert_eq!(
        f.fields_naming_zone(),
        [
            "namespace",
            "auth.kubernetes.mountPath",
            "auth.kubernetes.role"
        ]
    );
    assert!(!f.zones_bring_credentials());
    let f = from_cp(&format!(
        "{HEAD}        auth:\n          approle:\n            roleId: r\n            secretId: {{ file: /etc/secret-id }}\n            mountPath: 'approle-{{{{ zone }}}}'\n"
    ));
    assert_eq!(f.fields_naming_zone(), ["auth.approle.mountPath"]);
    // A plain mount path names no zone.
    let f = from_cp(&format!(
        "{HEAD}        auth:\n          kubernetes:\n            mountPath: east\n            role: pki_int\n"
    ));
    assert!(f.fields_naming_zone().is_empty());
}

#[test]
fn other_placeholders_are_refused_with_the_field_path() {
    let doc = format!(
        "{HEAD}        namespace: '{{{{ cluster }}}}'\n        auth:\n          kubernetes:\n            mountPath: '{{{{ tag \"kuma.io/zone\" }}}}'\n            role: '{{{{ zone '\n"
    );
    let v = violations(&doc);
    let at = |field: &str| {
        v.iter()
            .find(|(f, _)| f == &format!("mtls.backends[0].conf.fromCp.{field}"))
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no violation at {field}: {v:?}"))
    };
    assert!(at("namespace").contains("unknown function \"cluster\": use zone"));
    assert!(at("auth.kubernetes.mountPath").contains("tag is only known in commonName"));
    assert!(at("auth.kubernetes.role").contains("never closed"));
    let doc = format!(
        "{HEAD}        auth:\n          approle:\n            roleId: r\n            secretId: {{ file: /s }}\n            mountPath: '{{{{ .Zone }}}}'\n"
    );
    let v = violations(&doc);
    assert_eq!(
        v[0].0,
        "mtls.backends[0].conf.fromCp.auth.approle.mountPath"
    );
    // `{{ zone }}` stays out of commonName, which names data-plane tags.
    let v = violations(&format!(
        "{HEAD}        commonName: '{{{{ zone }}}}.svc'\n        auth:\n          token: {{ file: /t }}\n"
    ));
    assert_eq!(v[0].0, "mtls.backends[0].conf.fromCp.commonName");
    assert!(v[0].1.contains("not known in commonName"), "{v:?}");
}

#[test]
fn expanded_values_are_checked_as_before() {
    // The role's emptiness and the namespace's spaces are judged after expansion.
    let v = violations(&format!(
        "{HEAD}        namespace: 'a {{{{ zone }}}}'\n        auth:\n          kubernetes:\n            role: ''\n"
    ));
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "mtls.backends[0].conf.fromCp.namespace",
            "mtls.backends[0].conf.fromCp.auth.kubernetes.role"
        ],
        "{v:?}"
    );
}

#[test]
fn a_backend_without_auth_is_accepted_for_zones_to_bring_credentials() {
    let f = from_cp(HEAD);
    assert!(f.zones_bring_credentials());
    assert!(f.fields_naming_zone().is_empty());
    // Two methods are still one too many.
    let v = violations(&format!(
        "{HEAD}        auth:\n          token: {{ file: /t }}\n          kubernetes: {{ role: r }}\n"
    ));
    assert_eq!(v[0].0, "mtls.backends[0].conf.fromCp.auth");
}
