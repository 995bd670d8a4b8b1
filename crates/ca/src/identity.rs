//! MeshIdentity providers as CA backends. An identity's certificates are recorded under the
//! backend name [`backend_name`] (health, metrics, breakers and root books work per identity
//! as they do per Mesh backend). A `Vault` provider is a vault backend (`provider.vault` holds a
//! backend's `conf.fromCp`) with the identity's `certificateParameters.expiry` as its
//! `dpCert.rotation.expiration`; a `Bundled` one is an in-process CA, the operator's
//! (`ca.certificate`, `ca.privateKey`: Kuma's SecureDataSources) or one generated for the
//! identity's trust domain (`autogenerate`).

use std::time::Duration;

use mosaic_core::{
    Sensitive,
    ca::{CaError, CaErrorKind, identity::inspect_pem},
    datasource::{DataSource, DataSourceError, SecretSource},
    duration::KumaDuration,
    resource::{
        mesh::{BackendType, DpCert, MtlsBackend, Rotation, VaultConf},
        mesh_identity::{BundledProvider, VaultProvider},
        secure_source::SecureDataSource,
    },
};

use crate::{
    builtin::GeneratedCa,
    datasource::ResolveDataSource as _,
    local::{LocalBackend, LocalCa},
};

/// The prefix of an identity's backend name (a Mesh backend's name never holds `/`).
pub const BACKEND_PREFIX: &str = "MeshIdentity/";

/// How long a generated (`autogenerate`) identity CA lives: Kuma's builtin default, 10 years.
pub const GENERATED_CA_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The backend name MeshIdentity `identity`'s certificates are recorded under.
pub fn backend_name(identity: &str) -> String {
    format!("{BACKEND_PREFIX}{identity}")
}

/// The MeshIdentity a backend name belongs to, if it is an identity's.
pub fn identity_of(backend: &str) -> Option<&str> {
    backend.strip_prefix(BACKEND_PREFIX)
}

/// A synthetic Mesh backend standing for identity `identity`: its name ([`backend_name`]),
/// `kind`, and `expiry` as the certificates' lifetime.
fn as_backend(identity: &str, kind: &str, expiry: Duration) -> MtlsBackend {
    MtlsBackend {
        name: backend_name(identity),
        kind: kind.to_string(),
        mode: None,
        dp_cert: Some(DpCert {
            rotation: Some(Rotation {
                expiration: Some(KumaDuration::from_duration(expiry)),
            }),
            request_timeout: None,
        }),
        root_chain: None,
        conf: None,
    }
}

/// A `Vault` provider as the vault backend it is: the synthetic backend (its name and lifetime)
/// and the conf `VaultCa::new`/`new_in` take.
pub fn vault_parts(
    identity: &str,
    provider: &VaultProvider,
    expiry: Duration,
) -> (MtlsBackend, VaultConf) {
    (
        as_backend(identity, "vault", expiry),
        VaultConf {
            from_cp: Some(provider.from_cp.clone()),
        },
    )
}

/// Reads a SecureDataSource's value as trimmed text: a mesh Secret (`secrets`), a file on this
/// host, an environment variable of this process, or the inline value.
pub fn read_secure(
    source: &SecureDataSource,
    mesh: &str,
    secrets: &dyn SecretSource,
) -> Result<Sensitive<String>, DataSourceError> {
    let ds = match source.source_type.as_str() {
        "Secret" => DataSource {
            secret: source.secret_ref.as_ref().map(|r| r.name.clone()),
            ..DataSource::default()
        },
        "File" => DataSource {
            file: source.file.as_ref().map(|f| f.path.clone()),
            ..DataSource::default()
        },
        "InsecureInline" => DataSource {
            inline_string: source.insecure_inline.as_ref().map(|i| i.value.clone()),
            ..DataSource::default()
        },
        "EnvVar" => {
            let name = source
                .env_var
                .as_ref()
                .map(|e| e.name.as_str())
                .unwrap_or("");
            return std::env::var(name)
                .map(|v| Sensitive::new(v.trim().to_string()))
                .map_err(|_| {
                    DataSourceError::Base64(format!(
                        "environment variable {name:?} is not set (or not UTF-8) in the control plane's environment"
                    ))
                });
        }
        _ => DataSource::default(),
    };
    ds.resolve_string(mesh, secrets)
}

/// The operator's CA of a `Bundled` provider (`ca.certificate`, `ca.privateKey`), read and
/// checked: the certificate must be a CA and match the key. Returns its certificate PEM too.
pub fn load_bundled(
    mesh: &str,
    identity: &str,
    bundled: &BundledProvider,
    expiry: Duration,
    secrets: &dyn SecretSource,
) -> Result<(LocalBackend, String), CaError> {
    let name = backend_name(identity);
    let err = |k| CaError::new(mesh, &name, k);
    let ca = bundled.ca.as_ref().ok_or_else(|| {
        err(CaErrorKind::Config(
            "spec.provider.bundled.ca must be set (or autogenerate.enabled: true)".into(),
        ))
    })?;
    let read = |field: &str, source: &Option<SecureDataSource>| {
        let source = source.as_ref().ok_or_else(|| {
            err(CaErrorKind::Config(format!(
                "spec.provider.bundled.ca.{field} must be set"
            )))
        })?;
        read_secure(source, mesh, secrets).map_err(|source| {
            err(CaErrorKind::DataSource {
                field: format!("spec.provider.bundled.ca.{field}"),
                source,
            })
        })
    };
    let cert = read("certificate", &ca.certificate)?;
    let key = read("privateKey", &ca.private_key)?;
    let backend = bundled_from_pem(mesh, identity, cert.expose(), key.expose(), expiry)?;
    Ok((backend, cert.expose().to_string()))
}

/// An in-process CA for identity `identity` from PEM (a generated or the operator's CA).
pub fn bundled_from_pem(
    mesh: &str,
    identity: &str,
    cert_pem: &str,
    key_pem: &str,
    expiry: Duration,
) -> Result<LocalBackend, CaError> {
    let backend = as_backend(identity, "provided", expiry);
    let ca = LocalCa::from_pem(cert_pem, key_pem).map_err(|e| {
        CaError::new(
            mesh,
            &backend.name,
            CaErrorKind::Certificate(format!(
                "spec.provider.bundled.ca (certificate and privateKey): {e}"
            )),
        )
    })?;
    Ok(LocalBackend::new(mesh, &backend, BackendType::Provided, ca))
}

/// A new self-signed CA for an `autogenerate` identity: ECDSA P-256, URI SAN
/// `spiffe://<trust domain>`, 10 years.
pub fn generate_bundled(
    mesh: &str,
    identity: &str,
    trust_domain: &str,
) -> Result<GeneratedCa, CaError> {
    let (cert_pem, key_pem) = LocalCa::generate_root(
        trust_domain,
        &format!("Mosaic {mesh} MeshIdentity {identity} CA ({trust_domain})"),
        GENERATED_CA_TTL,
    )
    .map_err(|e| {
        CaError::new(
            mesh,
            &backend_name(identity),
            CaErrorKind::Certificate(e.to_string()),
        )
    })?;
    Ok(GeneratedCa { cert_pem, key_pem })
}

/// Whether the first certificate of `pem` is self-signed (Kuma refuses such a Bundled CA
/// without `insecureAllowSelfSigned: true`).
pub fn is_self_signed(pem: &str) -> Result<bool, String> {
    inspect_pem(pem)
        .map(|i| i.self_signed)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{
        ca::{CaBackend, IssueRequest, identity::inspect_pem},
        datasource::StaticSecrets,
    };

    #[tokio::test]
    async fn a_generated_bundled_ca_issues_spiffe_only_certificates() {
        let generated = generate_bundled("default", "id", "default.zone-1.mesh.local").unwrap();
        assert!(is_self_signed(&generated.cert_pem).unwrap());
        let backend = bundled_from_pem(
            "default",
            "id",
            &generated.cert_pem,
            generated.key_pem.expose(),
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(backend.backend_name(), "MeshIdentity/id");
        assert_eq!(identity_of(backend.backend_name()), Some("id"));
        let id = "spiffe://default.zone-1.mesh.local/workload/web";
        let cert = backend
            .issue(&IssueRequest::for_identity(id, Duration::from_secs(3600)))
            .await
            .unwrap();
        let info = inspect_pem(&cert.chain_pem).unwrap();
        assert_eq!(info.uri_sans, vec![id.to_string()]);
    }

    #[test]
    fn secure_sources_read_secrets_inline_and_say_what_is_missing() {
        let secrets = StaticSecrets::default().with("default", "ca-cert", b"PEM".to_vec());
        let s = SecureDataSource::secret("ca-cert");
        assert_eq!(
            read_secure(&s, "default", &secrets).unwrap().expose(),
            "PEM"
        );
        let missing = SecureDataSource::secret("nope");
        let e = read_secure(&missing, "default", &secrets).unwrap_err();
        assert!(e.to_string().contains("\"nope\" not found"), "{e}");
    }
}
