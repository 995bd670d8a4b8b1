//! Data-plane identities in certificates: URI SANs from tags (`spiffe://<mesh>/<service>`, then
//! `kuma://<tag>/<value>`), leaf parameters, and PEM/X.509 inspection helpers.

use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use time::OffsetDateTime;

use crate::{resource::dataplane::SERVICE_TAG, template::Tags};

/// A certificate or PEM bundle could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertError(pub String);

impl From<String> for CertError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for CertError {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<CertError> for String {
    fn from(e: CertError) -> Self {
        e.0
    }
}

/// Facts read from one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial, lowercase hex with colons.
    pub serial: String,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// Issuer distinguished name, e.g. `CN=Kong Mesh Default`.
    pub issuer: String,
    /// URI SANs in order.
    pub uri_sans: Vec<String>,
    /// DNS SANs in order.
    pub dns_sans: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// Whether subject and issuer are the same (a root).
    pub self_signed: bool,
    /// extKeyUsage serverAuth.
    pub server_auth: bool,
    /// extKeyUsage clientAuth.
    pub client_auth: bool,
}

/// The URI SANs of a data plane: `spiffe://<mesh>/<service>` for each service, then
/// `kuma://<tag>/<value>` for every tag value, each group sorted. A data plane without a
/// `kuma.io/service` tag (an outbound-only client) gets only its `kuma://` SANs, and one without
/// tags none, as Kuma's builtin issuer does (`newWorkloadTemplate`).
pub fn uri_sans(mesh: &str, tags: &Tags) -> Vec<String> {
    let services = tags.get(SERVICE_TAG).into_iter().flatten();
    let mut sans: Vec<String> = services.map(|s| format!("spiffe://{mesh}/{s}")).collect();
    for (tag, values) in tags {
        for v in values {
            sans.push(format!("kuma://{tag}/{v}"));
        }
    }
    sans
}

/// Whether `tags` name at least one service (`kuma.io/service`).
pub fn has_service(tags: &Tags) -> bool {
    tags.get(SERVICE_TAG).is_some_and(|s| !s.is_empty())
}

/// Parameters of a data-plane leaf: URI SANs, optional CN, EKU serverAuth+clientAuth, not a CA,
/// valid from one minute ago (clock skew) for `ttl`.
pub fn leaf_params(
    sans: &[String],
    common_name: Option<&str>,
    ttl: Duration,
) -> Result<CertificateParams, CertError> {
    let mut params = csr_params(sans, common_name)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + ttl;
    let mut serial = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut serial[..]);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Parameters of a data-plane CSR (sign mode): the subject and URI SANs only; the CA decides
/// lifetime, key usage and extensions.
pub fn csr_params(
    sans: &[String],
    common_name: Option<&str>,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = common_name {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .map(|s| {
            s.as_str()
                .try_into()
                .map(SanType::URI)
                .map_err(|_| CertError(format!("URI SAN {s:?} is not ASCII")))
        })
        .collect::<Result<_, _>>()?;
    Ok(params)
}

/// Splits a PEM bundle into DER certificates (other PEM blocks are ignored).
pub fn pem_to_ders(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    let mut out = Vec::new();
    for item in rustls_pemfile::certs(&mut reader) {
        let der = item.map_err(|e| CertError(format!("malformed PEM: {e}")))?;
        out.push(der.as_ref().to_vec());
    }
    Ok(out)
}

/// Splits a PEM bundle into one PEM string per certificate.
pub fn split_pem(pem: &str) -> Result<Vec<String>, CertError> {
    Ok(pem_to_ders(pem)?.iter().map(|d| der_to_pem(d)).collect())
}

/// Encodes a DER certificate as PEM.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Reads the facts of a DER certificate.
pub fn inspect_der(der: &[u8]) -> Result<CertInfo, CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| CertError(format!("not an X.509 certificate: {e}")))?;
    let mut info = CertInfo {
        serial: colon_hex(cert.raw_serial()),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        issuer: cert.issuer().to_string(),
        uri_sans: Vec::new(),
        dns_sans: Vec::new(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        is_ca: cert.is_ca(),
        self_signed: cert.subject() == cert.issuer(),
        server_auth: false,
        client_auth: false,
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) => info.uri_sans.push(u.to_string()),
                GeneralName::DNSName(d) => info.dns_sans.push(d.to_string()),
                _ => {}
            }
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        info.server_auth = eku.value.server_auth;
        info.client_auth = eku.value.client_auth;
    }
    Ok(info)
}

/// Reads the first certificate of a PEM bundle.
pub fn inspect_pem(pem: &str) -> Result<CertInfo, CertError> {
    let ders = pem_to_ders(pem)?;
    let first = ders.first().ok_or("no certificate in PEM")?;
    inspect_der(first)
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SubjectPublicKeyInfo of a DER certificate.
pub fn spki_of(der: &[u8]) -> Result<Vec<u8>, CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| CertError(format!("not an X.509 certificate: {e}")))?;
    Ok(cert.public_key().raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_follow_the_contract() {
        let mut tags = Tags::new();
        tags.entry("kuma.io/service".into())
            .or_default()
            .extend(["web".to_string(), "backend".to_string()]);
        tags.entry("version".into())
            .or_default()
            .insert("v2".into());
        let sans = uri_sans("default", &tags);
        assert_eq!(
            sans,
            vec![
                "spiffe://default/backend",
                "spiffe://default/web",
                "kuma://kuma.io/service/backend",
                "kuma://kuma.io/service/web",
                "kuma://version/v2",
            ]
        );
        assert!(has_service(&tags));
        assert!(uri_sans("default", &Tags::new()).is_empty());
        tags.remove("kuma.io/service");
        assert!(!has_service(&tags));
        assert_eq!(uri_sans("default", &tags), vec!["kuma://version/v2"]);
    }
}
