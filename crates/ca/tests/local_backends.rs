//! The builtin and provided backends: one shared CA per mesh backend, certificates that verify,
//! and refusal of a CA certificate that is not a CA or a key that does not match it.

mod support;

use std::time::Duration;

use mosaic_ca::{builtin, local::LocalCa};
use mosaic_core::{
    ca::identity::{inspect_pem, pem_to_ders},
    datasource::StaticSecrets,
    resource::mesh::{BuiltinConf, MtlsBackend},
};
use serde_json::json;
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

fn builtin_secrets(mesh: &str, b: &MtlsBackend) -> StaticSecrets {
    let generated = builtin::generate(mesh, b, &BuiltinConf::default()).expect("generate");
    StaticSecrets::new()
        .with(
            mesh,
            &builtin::cert_secret_name(mesh, &b.name),
            generated.cert_pem.clone(),
        )
        .with(
            mesh,
            &builtin::key_secret_name(mesh, &b.name),
            generated.key_pem.expose().clone(),
        )
}

#[tokio::test]
async fn builtin_ca_from_mesh_secrets_issues_verifiable_certificates() -> anyhow::Result<()> {
    let b = backend("ca-1", "builtin", json!({}), "1d");
    let secrets = builtin_secrets("default", &b);
    // Two "zones" load the same secrets: the same CA signs for both.
    let zone_a = build(&b, secrets.clone()).await?;
    let zone_b = build(&b, secrets).await?;
    assert_eq!(zone_a.root_certs().await?, zone_b.root_certs().await?);
    zone_a.validate().await?;
    let roots = zone_a.root_certs().await?;
    let root = inspect_pem(&roots[0])?;
    assert!(root.is_ca && root.self_signed);
    assert_eq!(root.uri_sans, ["spiffe://default"]);
    for ca in [&zone_a, &zone_b] {
        let req = request("backend", &[("version", "v2")], HOUR);
        let cert = ca.issue(&req).await?;
        verify(&cert, &roots);
        let info = inspect_pem(&cert.chain_pem)?;
        assert_eq!(info.uri_sans, expected_sans("default", &req.tags));
        assert!(info.server_auth && info.client_auth && !info.is_ca);
    }
    Ok(())
}

#[tokio::test]
async fn builtin_without_its_secrets_says_what_is_missing() {
    let b = backend("ca-1", "builtin", json!({}), "1d");
    let err = build(&b, StaticSecrets::new())
        .await
        .expect_err("no secrets")
        .to_string();
    assert!(
        err.contains("default.ca-builtin-cert-ca-1") && err.contains("missing"),
        "{err}"
    );
}

#[tokio::test]
async fn provided_ca_with_an_intermediate_bundle() -> anyhow::Result<()> {
    let (root_pem, root_key) = LocalCa::generate_root("default", "Org root", HOUR * 24)?;
    let root = LocalCa::from_pem(&root_pem, root_key.expose())?;
    // An intermediate CA signed by the root, provided with its chain.
    let (inter_pem, inter_key) = intermediate(&root_pem, root_key.expose())?;
    let bundle = format!("{inter_pem}{root_pem}");
    let b = backend(
        "ca-2",
        "provided",
        json!({"cert": {"inlineString": bundle}, "key": {"secret": "inter-key"}}),
        "1h",
    );
    let ca = build(
        &b,
        StaticSecrets::new().with("default", "inter-key", inter_key),
    )
    .await?;
    let cert = ca.issue(&request("web", &[], HOUR)).await?;
    assert_eq!(
        pem_to_ders(&cert.chain_pem)?.len(),
        2,
        "leaf + intermediate"
    );
    verify(&cert, std::slice::from_ref(&root_pem));
    assert_eq!(ca.root_certs().await?.len(), 2);
    drop(root);
    Ok(())
}

fn intermediate(root_pem: &str, root_key: &str) -> anyhow::Result<(String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let issuer = Issuer::from_ca_cert_pem(root_pem, KeyPair::from_pem(root_key)?)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    Ok((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn provided_refuses_a_leaf_and_a_mismatched_key() -> anyhow::Result<()> {
    let (root_pem, root_key) = LocalCa::generate_root("default", "Org root", HOUR * 24)?;
    let root = LocalCa::from_pem(&root_pem, root_key.expose())?;
    let leaf = root.issue(&["spiffe://default/web".to_string()], None, HOUR)?;
    let b = backend(
        "ca-2",
        "provided",
        json!({"cert": {"inlineString": leaf.chain_pem}, "key": {"inlineString": leaf.key_pem.expose()}}),
        "1h",
    );
    let err = build(&b, StaticSecrets::new())
        .await
        .expect_err("not a CA")
        .to_string();
    assert!(
        err.contains("conf.cert") && err.contains("is not a CA"),
        "{err}"
    );

    let (_, other_key) = LocalCa::generate_root("default", "Other", HOUR)?;
    let b = backend(
        "ca-2",
        "provided",
        json!({"cert": {"inlineString": root_pem}, "key": {"inlineString": other_key.expose()}}),
        "1h",
    );
    let err = build(&b, StaticSecrets::new())
        .await
        .expect_err("wrong key")
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "no key material in errors: {err}"
    );

    let b = backend(
        "ca-2",
        "provided",
        json!({"cert": {"secret": "nope"}, "key": {"inlineString": "x"}}),
        "1h",
    );
    let err = build(&b, StaticSecrets::new())
        .await
        .expect_err("missing secret")
        .to_string();
    assert!(
        err.contains("conf.cert") && err.contains("secret \"nope\" not found"),
        "{err}"
    );
    Ok(())
}

/// Kuma's e2e provides its CA with a PKCS#1 key (`openssl genrsa -traditional`); SEC1 EC keys
/// (`openssl ecparam -genkey`) are the other form openssl writes. Both fixtures were made with
/// openssl 3.0 (`-traditional` RSA 2048; prime256v1) and self-signed with CA:TRUE.
#[tokio::test]
async fn provided_ca_accepts_pkcs1_rsa_and_sec1_ec_keys() -> anyhow::Result<()> {
    for (name, cert, key, first_line) in [
        (
            "rsa",
            include_str!("fixtures/provided-rsa-pkcs1.pem"),
            include_str!("fixtures/provided-rsa-pkcs1.key"),
            "-----BEGIN RSA PRIVATE KEY-----",
        ),
        (
            "ec",
            include_str!("fixtures/provided-ec-sec1.pem"),
            include_str!("fixtures/provided-ec-sec1.key"),
            "-----BEGIN EC PRIVATE KEY-----",
        ),
    ] {
        assert!(key.starts_with(first_line), "{name}: fixture form");
        let b = backend(
            name,
            "provided",
            json!({"cert": {"inlineString": cert}, "key": {"secret": "ca-key"}}),
            "1h",
        );
        let ca = build(&b, StaticSecrets::new().with("default", "ca-key", key)).await?;
        let issued = ca
            .issue(&request("web", &[("version", "v1")], HOUR))
            .await?;
        verify(&issued, &[cert.to_string()]);
        let info = inspect_pem(&issued.chain_pem)?;
        assert_eq!(
            info.uri_sans,
            vec![
                "spiffe://default/web",
                "kuma://kuma.io/service/web",
                "kuma://version/v1"
            ],
            "{name}"
        );
    }
    Ok(())
}

/// Kuma's builtin issuer certifies a data plane without a service tag (an outbound-only client)
/// by its other tags; one without any tag gets a certificate without SANs.
#[tokio::test]
async fn a_data_plane_without_a_service_is_certified_by_its_other_tags() -> anyhow::Result<()> {
    let b = backend("ca-1", "builtin", json!({}), "1h");
    let ca = build(&b, builtin_secrets("default", &b)).await?;
    let mut req = request("web", &[("team", "payments")], HOUR);
    req.tags.remove("kuma.io/service");
    let issued = ca.issue(&req).await?;
    assert_eq!(
        inspect_pem(&issued.chain_pem)?.uri_sans,
        vec!["kuma://team/payments"]
    );
    req.tags.clear();
    let bare = ca.issue(&req).await?;
    assert!(inspect_pem(&bare.chain_pem)?.uri_sans.is_empty());
    Ok(())
}
