//! Helpers shared by the CA backend tests: build a backend from a `conf` written as JSON, and
//! verify an issued chain the way a data plane would (rustls-webpki, clientAuth and serverAuth).

#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use mosaic_ca::build_backend;
use mosaic_core::{
    ca::{CaBackend, CaError, IssueRequest, IssuedCert, identity},
    datasource::{SecretSource, StaticSecrets},
    duration::KumaDuration,
    resource::mesh::{DpCert, MtlsBackend, Rotation},
    template::Tags,
};

/// A backend named `name` of `kind` with `conf` and a certificate lifetime.
pub fn backend(name: &str, kind: &str, conf: serde_json::Value, expiration: &str) -> MtlsBackend {
    MtlsBackend {
        name: name.into(),
        kind: kind.into(),
        dp_cert: Some(DpCert {
            rotation: Some(Rotation {
                expiration: Some(expiration.parse::<KumaDuration>().expect("duration")),
            }),
            request_timeout: Some("5s".parse().expect("duration")),
        }),
        conf: Some(conf),
        ..MtlsBackend::default()
    }
}

/// Builds a backend of mesh `default`.
pub async fn build(b: &MtlsBackend, secrets: StaticSecrets) -> Result<Arc<dyn CaBackend>, CaError> {
    let secrets: Arc<dyn SecretSource> = Arc::new(secrets);
    build_backend("default", b, secrets).await
}

/// Tags of a data plane of `service` with extra `(tag, value)` pairs.
pub fn tags(service: &str, extra: &[(&str, &str)]) -> Tags {
    let mut t = Tags::new();
    t.entry("kuma.io/service".into())
        .or_default()
        .insert(service.into());
    for (k, v) in extra {
        t.entry((*k).into()).or_default().insert((*v).into());
    }
    t
}

/// An issue request for `service` valid for `ttl`.
pub fn request(service: &str, extra: &[(&str, &str)], ttl: Duration) -> IssueRequest {
    IssueRequest {
        tags: tags(service, extra),
        ttl,
        spiffe_id: None,
    }
}

/// Verifies `cert` (leaf + intermediates) against `roots` for both client and server auth, as
/// Envoy would, and checks the key matches the leaf.
pub fn verify(cert: &IssuedCert, roots: &[String]) {
    mosaic_testkit::verify_chain(&cert.chain_pem, roots).unwrap_or_else(|e| panic!("{e:#}"));
    let chain = identity::pem_to_ders(&cert.chain_pem).expect("chain PEM");
    let leaf = chain.first().expect("a leaf");
    let key = rcgen::KeyPair::from_pem(cert.key_pem.expose()).expect("private key PEM");
    use rcgen::PublicKeyData as _;
    assert_eq!(
        identity::spki_of(leaf).expect("spki"),
        key.subject_public_key_info(),
        "the private key does not match the certificate"
    );
}

/// The URI SANs the contract requires for `service` with tags.
pub fn expected_sans(mesh: &str, t: &Tags) -> Vec<String> {
    identity::uri_sans(mesh, t)
}
