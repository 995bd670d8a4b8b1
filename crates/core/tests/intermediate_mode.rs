//! `mode: intermediate` of a vault backend (seed 004, the contract's "Vault as each zone's
//! intermediate CA"): the contract's shape parses with its defaults, `role` is not needed, and
//! bad settings are refused with the field path and what to do.

use std::time::Duration;

use mosaic_core::resource::mesh::VaultMode;

mod support;

use support::{from_cp, violations};

fn doc(fields: &str, extra_backend: &str) -> String {
    format!(
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: vault-1\n  backends:\n  - name: vault-1\n    type: vault\n{extra_backend}    conf:\n      fromCp:\n        address: http://vault:8200\n        pki: pki\n        auth: {{ token: {{ secret: vault-token }} }}\n{fields}"
    )
}

#[test]
fn the_contracts_shape_parses_without_a_role() {
    let f = from_cp(&doc(
        "        mode: intermediate\n        intermediate:\n          caPath: pki/root/sign-intermediate\n          csrPath: pki_int/intermediate/generate/exported\n          ttl: 720h\n",
        "",
    ));
    assert_eq!(f.vault_mode(), VaultMode::Intermediate);
    assert_eq!(f.intermediate_ca_path(), "pki/root/sign-intermediate");
    assert_eq!(
        f.intermediate_csr_path(),
        Some("pki_int/intermediate/generate/exported")
    );
    assert_eq!(f.intermediate_key_mount(), Some("pki_int"));
    assert_eq!(f.intermediate_ttl(), Duration::from_secs(720 * 3600));
    // All optional: the zone makes the key, the root of `pki` signs, 720h.
    let f = from_cp(&doc("        mode: intermediate\n", ""));
    assert_eq!(f.intermediate_ca_path(), "pki/root/sign-intermediate");
    assert_eq!(f.intermediate_csr_path(), None);
    assert_eq!(f.intermediate_ttl(), Duration::from_secs(720 * 3600));
    // The newer issuers API's generate path is accepted too.
    let f = from_cp(&doc(
        "        mode: intermediate\n        intermediate: { csrPath: pki_int/issuers/generate/intermediate/exported }\n",
        "",
    ));
    assert_eq!(f.intermediate_key_mount(), Some("pki_int"));
}

#[test]
fn bad_intermediate_settings_are_refused_with_the_field() {
    let v = violations(&doc(
        "        role: r\n        intermediate: { ttl: 720h }\n",
        "",
    ));
    assert!(
        v.iter().any(|(f, m)| f.ends_with("fromCp.intermediate")
            && m.contains("only used with mode: intermediate")),
        "{v:?}"
    );
    let v = violations(&doc(
        "        mode: intermediate\n        intermediate: { csrPath: pki_int/intermediate/generate/internal }\n",
        "",
    ));
    assert!(
        v.iter()
            .any(|(f, m)| f.ends_with("intermediate.csrPath") && m.contains("exported")),
        "{v:?}"
    );
    let v = violations(&doc(
        "        mode: intermediate\n        intermediate: { caPath: 'pki/../root' }\n",
        "",
    ));
    assert!(
        v.iter().any(|(f, _)| f.ends_with("intermediate.caPath")),
        "{v:?}"
    );
    // The intermediate must outlive the certificates it signs.
    let v = violations(&doc(
        "        mode: intermediate\n        intermediate: { ttl: 12h }\n",
        "    dpCert: { rotation: { expiration: 1d } }\n",
    ));
    assert!(
        v.iter().any(|(f, m)| f.ends_with("fromCp.intermediate.ttl")
            && m.contains("dpCert.rotation.expiration")),
        "{v:?}"
    );
    let v = violations(&doc("        mode: intermediat\n", ""));
    assert!(
        v.iter()
            .any(|(f, m)| f.ends_with("fromCp.mode") && m.contains("intermediate")),
        "{v:?}"
    );
}
