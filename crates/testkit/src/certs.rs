//! A throw-away test CA (rcgen) for OpenBao's TLS listener and for Vault TLS-certificate auth.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The DNS name in the test server certificate. Deliberately not `localhost`/`127.0.0.1`, so a
/// client must set the TLS server name (SNI + verification name) explicitly, e.g. with
/// `reqwest::ClientBuilder::resolve(TLS_SERVER_NAME, addr)` or Mosaic's `tls.serverName`.
pub const TLS_SERVER_NAME: &str = "vault.mosaic.test";

/// A PEM certificate (leaf only) and its PEM PKCS#8 private key.
#[derive(Clone, Debug)]
pub struct CertPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl CertPair {
    /// Certificate followed by key: the shape `reqwest::Identity::from_pem` wants.
    pub fn identity_pem(&self) -> String {
        format!("{}\n{}", self.cert_pem.trim_end(), self.key_pem)
    }
}

/// A self-signed test CA (ECDSA P-256) that signs server and client certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA whose subject common name is `common_name`.
    pub fn new(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).context("self-signing test CA")?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate (EKU serverAuth) for the given DNS names (IP literals become IP SANs).
    pub fn server_cert(&self, names: &[&str]) -> Result<CertPair> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).context("server cert SANs")?;
        params.distinguished_name = dn(names.first().map_or("server", String::as_str));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params)
    }

    /// The server certificate OpenBao's TLS listener uses: SAN [`TLS_SERVER_NAME`] only.
    pub fn vault_server_cert(&self) -> Result<CertPair> {
        self.server_cert(&[TLS_SERVER_NAME])
    }

    /// A client certificate (EKU clientAuth) with the given common name, for Vault cert auth.
    pub fn client_cert(&self, common_name: &str) -> Result<CertPair> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(common_name);
        params.subject_alt_names = vec![SanType::DnsName(
            common_name
                .to_owned()
                .try_into()
                .context("client common name is not a valid DNS name")?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<CertPair> {
        let key = KeyPair::generate().context("generating leaf key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing leaf")?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Splits a PEM bundle into its blocks (each with BEGIN/END lines and a trailing newline).
pub fn pem_blocks(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in bundle.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                out.extend(current.take());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_signs_server_and_client() {
        let ca = TestCa::new("Mosaic Test CA").unwrap();
        let server = ca.vault_server_cert().unwrap();
        let client = ca.client_cert("mosaic-cp").unwrap();
        assert_eq!(pem_blocks(ca.cert_pem()).len(), 1);
        let both = format!("{}{}", server.cert_pem, client.cert_pem);
        assert_eq!(pem_blocks(&both).len(), 2);
        assert!(client.identity_pem().contains("PRIVATE KEY"));
    }
}
