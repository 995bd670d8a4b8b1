//! An in-process CA: holds a CA certificate (and its chain) with its key, and signs data-plane
//! leaves with fresh ECDSA P-256 keys. [`LocalBackend`] is the `CaBackend` over it that the
//! builtin and provided backends load.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use mosaic_core::ca::{
    CaBackend, CaError, CaErrorKind, IssueRequest, IssuedCert,
    identity::{CertError, der_to_pem, inspect_der, leaf_params, pem_to_ders, spki_of},
};
use mosaic_core::{
    Sensitive,
    resource::mesh::{BackendType, MtlsBackend},
};

/// A CA whose key is in this process.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate first, then whatever chain followed it in the bundle.
    bundle: Vec<Vec<u8>>,
    ca_not_after: OffsetDateTime,
}

// === impl LocalCa ===

impl LocalCa {
    /// Loads a CA from PEM. The first certificate must be a CA (basicConstraints CA:TRUE) and
    /// match `key_pem` (PKCS#8, PKCS#1 or SEC1: [`crate::key_pem`]); certificates after it are
    /// its chain.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let bundle = pem_to_ders(cert_pem)?;
        let first = bundle
            .first()
            .ok_or("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")?;
        let info = inspect_der(first)?;
        if !info.is_ca {
            return Err(CertError(format!(
                "certificate (serial {}) is not a CA: its basicConstraints does not say CA:TRUE, so it cannot sign data-plane certificates; provide a CA certificate",
                info.serial
            )));
        }
        let der = crate::key_pem::pkcs8_der(key_pem)?;
        let key = KeyPair::try_from(&crate::key_pem::as_pkcs8(&der)).map_err(|e| {
            CertError::from(format!(
                "private key cannot sign certificates ({e}): use an ECDSA P-256/P-384, Ed25519 or RSA key (PKCS#8, PKCS#1 or SEC1 PEM)"
            ))
        })?;
        if spki_of(first)? != key.subject_public_key_info() {
            return Err(CertError::from(
                "private key does not match the CA certificate's public key",
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(first.clone()), key)
            .map_err(|e| CertError(format!("CA certificate cannot be used as an issuer: {e}")))?;
        Ok(Self {
            issuer,
            bundle,
            ca_not_after: info.not_after,
        })
    }

    /// Generates a self-signed root CA for `mesh` (ECDSA P-256, URI SAN `spiffe://<mesh>`).
    /// Returns the certificate PEM and the key PEM.
    pub fn generate_root(
        mesh: &str,
        common_name: &str,
        ttl: Duration,
    ) -> Result<(String, Sensitive<String>), CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertError(format!("could not generate a CA key: {e}")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Mosaic");
        params.distinguished_name = dn;
        let uri = format!("spiffe://{mesh}");
        params.subject_alt_names =
            vec![SanType::URI(uri.as_str().try_into().map_err(|_| {
                CertError(format!("mesh name {mesh:?} is not ASCII"))
            })?)];
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + ttl;
        let cert = params
            .self_signed(&key)
            .map_err(|e| CertError(format!("could not self-sign the CA certificate: {e}")))?;
        Ok((cert.pem(), Sensitive::new(key.serialize_pem())))
    }

    /// Every certificate of the CA's bundle, as PEM (what data planes trust).
    pub fn bundle_pems(&self) -> Vec<String> {
        self.bundle.iter().map(|d| der_to_pem(d)).collect()
    }

    /// Issues a leaf with `sans` and an optional common name, valid for `ttl` (capped at the
    /// CA's own expiry).
    pub fn issue(
        &self,
        sans: &[String],
        common_name: Option<&str>,
        ttl: Duration,
    ) -> Result<IssuedCert, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertError(format!("could not generate a key: {e}")))?;
        let mut params = leaf_params(sans, common_name, ttl)?;
        if params.not_after > self.ca_not_after {
            params.not_after = self.ca_not_after;
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CertError(format!("could not sign the certificate: {e}")))?;
        let mut chain_pem = cert.pem();
        for der in &self.bundle {
            if !inspect_der(der).map(|i| i.self_signed).unwrap_or(true) {
                chain_pem.push_str(&der_to_pem(der));
            }
        }
        let info = inspect_der(cert.der())?;
        Ok(IssuedCert {
            chain_pem,
            key_pem: Sensitive::new(key.serialize_pem()),
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("bundle_len", &self.bundle.len())
            .field("ca_not_after", &self.ca_not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A mesh backend whose CA key is in this process: `builtin` or `provided`.
#[derive(Debug)]
pub struct LocalBackend {
    mesh: String,
    backend: String,
    kind: BackendType,
    ttl: Duration,
    ca: LocalCa,
}

// === impl LocalBackend ===

impl LocalBackend {
    /// Wraps `ca` as backend `backend` (of type `kind`) of `mesh`.
    pub fn new(mesh: &str, backend: &MtlsBackend, kind: BackendType, ca: LocalCa) -> Self {
        Self {
            mesh: mesh.to_string(),
            backend: backend.name.clone(),
            kind,
            ttl: backend.cert_expiration(),
            ca,
        }
    }
}

#[async_trait::async_trait]
impl CaBackend for LocalBackend {
    fn mesh(&self) -> &str {
        &self.mesh
    }

    fn backend_name(&self) -> &str {
        &self.backend
    }

    fn backend_type(&self) -> BackendType {
        self.kind
    }

    fn default_ttl(&self) -> Duration {
        self.ttl
    }

    async fn root_certs(&self) -> Result<Vec<String>, CaError> {
        Ok(self.ca.bundle_pems())
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedCert, CaError> {
        let err = |k| CaError::new(&self.mesh, &self.backend, k);
        // Kuma's builtin issuer certifies a data plane without a service by its other tags.
        let sans = req.uri_sans(&self.mesh);
        self.ca
            .issue(&sans, None, req.ttl)
            .map_err(|e| err(CaErrorKind::Certificate(e.to_string())))
    }
}
