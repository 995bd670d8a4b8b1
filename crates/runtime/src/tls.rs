//! TLS set-up shared by every client and server: one rustls crypto provider (ring) per process,
//! and the generated server certificates of the KDS server (global) and the dataplane server
//! (zone).
//!
//! When an operator configures no certificate, a server keeps a small CA of its own in its data
//! directory and issues its serving certificate from it:
//!
//! | file | what |
//! | --- | --- |
//! | `<prefix>-ca.pem` | the CA certificate clients trust (e.g. a zone's `global.ca_cert`) |
//! | `<prefix>-ca-key.pem` | the CA key (mode 0600) |
//! | `<prefix>-server.pem` | the serving certificate (leaf) |
//! | `<prefix>-server-key.pem` | its key (mode 0600) |
//!
//! The files are generated once and reused at restart. The serving certificate is issued again
//! (from the same CA, so clients keep trusting it) when it no longer covers the names the server
//! needs or has less than a third of its lifetime left. ECDSA P-256 keys; CA valid 10 years,
//! server certificate 2 years.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use mosaic_core::Sensitive;

/// Lifetime of a generated CA.
pub const GENERATED_CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Lifetime of a generated server certificate.
pub const GENERATED_SERVER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// Installs ring as the process-wide rustls crypto provider. Idempotent; call before building any
/// TLS client or server.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a ring provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Why a certificate could not be generated, loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}; check the path and its permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Key or certificate generation failed.
    #[error("cannot generate {what}: {reason}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// A PEM file holds something unusable.
    #[error(
        "{path}: {reason}; delete the generated files ({prefix}-*.pem) to have them generated again, or configure a certificate"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The file prefix (`kds`, `dp-server`).
        prefix: String,
        /// What is wrong.
        reason: String,
    },
}

/// A CA certificate and its key, in PEM.
#[derive(Clone, Debug)]
pub struct CaPem {
    /// The CA certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: Sensitive<String>,
}

/// What a TLS server serves with.
#[derive(Clone, Debug)]
pub struct ServerIdentity {
    /// The certificate chain (leaf first).
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: Sensitive<String>,
    /// The CA clients should trust (`None` when the operator configured the certificate).
    pub ca_pem: Option<String>,
    /// Where the CA file lives (`None` when the operator configured the certificate).
    pub ca_path: Option<PathBuf>,
}

/// The generated files of one server, under `dir` with a prefix.
#[derive(Clone, Debug)]
pub struct GeneratedFiles {
    prefix: String,
    /// `<prefix>-ca.pem`.
    pub ca: PathBuf,
    /// `<prefix>-ca-key.pem`.
    pub ca_key: PathBuf,
    /// `<prefix>-server.pem`.
    pub cert: PathBuf,
    /// `<prefix>-server-key.pem`.
    pub key: PathBuf,
}

fn generate_err(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |e| TlsError::Generate {
        what,
        reason: e.to_string(),
    }
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename); `private` files get 0600.
pub fn write_pem_file(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    write_file(path, contents, private)
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    use std::io::Write as _;
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(&tmp).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn first_der(pem: &str) -> Option<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
}

/// The DNS names and IP addresses of a certificate's SANs, and its validity.
fn sans_and_validity(der: &[u8]) -> Option<(Vec<String>, OffsetDateTime, OffsetDateTime)> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some((
        names,
        cert.validity().not_before.to_datetime(),
        cert.validity().not_after.to_datetime(),
    ))
}

fn san_of(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|e: rcgen::Error| TlsError::Generate {
            what: "a server certificate",
            reason: format!("{name:?} is not a DNS name or IP address: {e}"),
        })
}

/// The host part of `host:port` (brackets removed from IPv6), or the input if it has no port.
pub fn host_of(addr: &str) -> String {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_string();
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host.to_string()
        }
        _ => addr.to_string(),
    }
}

/// Generates a self-signed CA (ECDSA P-256) named `common_name`, valid [`GENERATED_CA_VALIDITY`].
pub fn generate_ca(common_name: &str) -> Result<CaPem, TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_err("a CA key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Mosaic");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + GENERATED_CA_VALIDITY;
    let cert = params
        .self_signed(&key)
        .map_err(generate_err("a CA certificate"))?;
    Ok(CaPem {
        cert_pem: cert.pem(),
        key_pem: Sensitive::new(key.serialize_pem()),
    })
}

/// Issues a server certificate (EKU serverAuth, SANs `names`: DNS names or IP addresses) from
/// `ca`, valid [`GENERATED_SERVER_VALIDITY`] (capped at the CA's expiry). Returns the leaf PEM and
/// its key PEM.
pub fn issue_server_cert(
    ca: &CaPem,
    common_name: &str,
    names: &[String],
) -> Result<(String, Sensitive<String>), TlsError> {
    issue_leaf(
        ca,
        common_name,
        names,
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    )
}

/// Issues a certificate for a peer of a mutually authenticated cluster (EKU serverAuth and
/// clientAuth: it both serves and dials), otherwise as [`issue_server_cert`].
pub fn issue_peer_cert(
    ca: &CaPem,
    common_name: &str,
    names: &[String],
) -> Result<(String, Sensitive<String>), TlsError> {
    issue_leaf(
        ca,
        common_name,
        names,
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )
}

/// The DNS names among the SANs of the first certificate in `der` (lowercase); empty when it
/// cannot be parsed.
pub fn dns_names(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The DER of the first certificate in `pem`, if it holds one.
pub fn first_certificate_der(pem: &str) -> Option<Vec<u8>> {
    first_der(pem)
}

fn issue_leaf(
    ca: &CaPem,
    common_name: &str,
    names: &[String],
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> Result<(String, Sensitive<String>), TlsError> {
    let ca_key =
        KeyPair::from_pem(ca.key_pem.expose()).map_err(generate_err("(loading the CA key)"))?;
    let ca_der = first_der(&ca.cert_pem).ok_or_else(|| TlsError::Generate {
        what: "a server certificate",
        reason: "the CA PEM holds no certificate".into(),
    })?;
    let ca_not_after = sans_and_validity(&ca_der)
        .map(|(_, _, na)| na)
        .ok_or_else(|| TlsError::Generate {
            what: "a server certificate",
            reason: "the CA certificate cannot be parsed".into(),
        })?;
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(ca_der), ca_key)
        .map_err(generate_err("a server certificate (CA unusable)"))?;
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_err("a server key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Mosaic");
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(|n| san_of(n)).collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = (now + GENERATED_SERVER_VALIDITY).min(ca_not_after);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(generate_err("a server certificate"))?;
    Ok((cert.pem(), Sensitive::new(key.serialize_pem())))
}

// === impl GeneratedFiles ===

impl GeneratedFiles {
    /// The files `<dir>/<prefix>-{ca,ca-key,server,server-key}.pem`.
    pub fn new(dir: &Path, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            ca: dir.join(format!("{prefix}-ca.pem")),
            ca_key: dir.join(format!("{prefix}-ca-key.pem")),
            cert: dir.join(format!("{prefix}-server.pem")),
            key: dir.join(format!("{prefix}-server-key.pem")),
        }
    }

    fn invalid(&self, path: &Path, reason: impl Into<String>) -> TlsError {
        TlsError::Invalid {
            path: path.to_path_buf(),
            prefix: self.prefix.clone(),
            reason: reason.into(),
        }
    }

    /// The CA stored on disk, if both of its files exist.
    pub fn load_ca(&self) -> Result<Option<CaPem>, TlsError> {
        match (read(&self.ca)?, read(&self.ca_key)?) {
            (Some(cert_pem), Some(key_pem)) => {
                if first_der(&cert_pem).is_none() {
                    return Err(self.invalid(&self.ca, "holds no PEM certificate"));
                }
                Ok(Some(CaPem {
                    cert_pem,
                    key_pem: Sensitive::new(key_pem),
                }))
            }
            _ => Ok(None),
        }
    }

    /// The serving identity on disk if it exists, was issued by the CA on disk, covers every name
    /// in `names` and has at least a third of its lifetime left.
    pub fn load_valid_server(&self, names: &[String]) -> Result<Option<ServerIdentity>, TlsError> {
        let (Some(ca_pem), Some(cert_pem), Some(key_pem)) =
            (read(&self.ca)?, read(&self.cert)?, read(&self.key)?)
        else {
            return Ok(None);
        };
        let Some(der) = first_der(&cert_pem) else {
            return Ok(None);
        };
        let Some((sans, not_before, not_after)) = sans_and_validity(&der) else {
            return Ok(None);
        };
        let covered = names
            .iter()
            .all(|n| sans.iter().any(|s| s.eq_ignore_ascii_case(n)));
        let now = OffsetDateTime::now_utc();
        let fresh = now + (not_after - not_before) / 3 < not_after;
        let issued_by_ca = match (first_der(&ca_pem), self.load_ca()?) {
            (Some(ca_der), Some(_)) => issuer_matches(&der, &ca_der),
            _ => false,
        };
        if !(covered && fresh && issued_by_ca) {
            return Ok(None);
        }
        Ok(Some(ServerIdentity {
            cert_pem,
            key_pem: Sensitive::new(key_pem),
            ca_pem: Some(ca_pem),
            ca_path: Some(self.ca.clone()),
        }))
    }

    /// Writes `ca` (certificate and key) to the CA files.
    pub fn store_ca(&self, ca: &CaPem) -> Result<(), TlsError> {
        write_file(&self.ca_key, ca.key_pem.expose(), true)?;
        write_file(&self.ca, &ca.cert_pem, false)
    }

    /// Issues a serving certificate for `names` from `ca`, writes it, and returns the identity.
    pub fn issue_and_store(
        &self,
        ca: &CaPem,
        common_name: &str,
        names: &[String],
    ) -> Result<ServerIdentity, TlsError> {
        let (cert_pem, key_pem) = issue_server_cert(ca, common_name, names)?;
        write_file(&self.key, key_pem.expose(), true)?;
        write_file(&self.cert, &cert_pem, false)?;
        Ok(ServerIdentity {
            cert_pem,
            key_pem,
            ca_pem: Some(ca.cert_pem.clone()),
            ca_path: Some(self.ca.clone()),
        })
    }
}

/// Whether the certificate `der` names `ca_der`'s subject as its issuer and verifies with its key.
fn issuer_matches(der: &[u8], ca_der: &[u8]) -> bool {
    use x509_parser::prelude::*;
    let (Ok((_, cert)), Ok((_, ca))) = (
        X509Certificate::from_der(der),
        X509Certificate::from_der(ca_der),
    ) else {
        return false;
    };
    if cert.issuer() != ca.subject() {
        return false;
    }
    // Our generated certificates are ECDSA P-256 with SHA-256.
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        ca.public_key().subject_public_key.data.as_ref(),
    );
    key.verify(
        cert.tbs_certificate.as_ref(),
        cert.signature_value.data.as_ref(),
    )
    .is_ok()
}

/// Loads the generated identity from `dir` (prefix `prefix`), or generates what is missing: a CA
/// (once; kept forever) and a serving certificate for `names` (again whenever it does not cover
/// them or is past two thirds of its life). Blocking file I/O; call from a blocking context or at
/// start-up.
pub fn load_or_generate(
    dir: &Path,
    prefix: &str,
    common_name: &str,
    names: &[String],
) -> Result<ServerIdentity, TlsError> {
    let files = GeneratedFiles::new(dir, prefix);
    if let Some(identity) = files.load_valid_server(names)? {
        return Ok(identity);
    }
    let ca = match files.load_ca()? {
        Some(ca) => ca,
        None => {
            let ca = generate_ca(&format!("{common_name} CA"))?;
            files.store_ca(&ca)?;
            ca
        }
    };
    files.issue_and_store(&ca, common_name, names)
}

/// A server's identity: the configured `cert`/`key` pair when both are set, else the one
/// generated into `dir` with `prefix` (see [`load_or_generate`]).
pub fn configured_or_generated(
    configured: (Option<&Path>, Option<&Path>),
    dir: &Path,
    prefix: &str,
    common_name: &str,
    names: &[String],
) -> Result<ServerIdentity, TlsError> {
    match configured {
        (Some(cert), Some(key)) => load_configured(cert, key),
        _ => load_or_generate(dir, prefix, common_name, names),
    }
}

/// Prefix of the HTTPS API's generated files in a server's data dir (`api-server-ca.pem`, the
/// CA clients trust, e.g. `mosaicctl --ca-cert-file`).
pub const API_SERVER_FILE_PREFIX: &str = "api-server";

/// The names (SANs) a generated serving certificate covers: `localhost`, `127.0.0.1`, `::1`,
/// each of `hosts`, the address of `listen` unless it is a wildcard, and this machine's hostname.
pub fn default_server_names(hosts: &[String], listen: std::net::SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut add = |n: &str| {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    };
    for h in hosts {
        add(h);
    }
    if !listen.ip().is_unspecified() {
        add(&listen.ip().to_string());
    }
    if let Some(h) = hostname() {
        add(&h);
    }
    names
}

/// This machine's hostname, if it is a usable DNS name.
fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = raw.trim().to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(h)
}

/// Loads an operator-configured certificate chain and key (PEM files).
pub fn load_configured(cert: &Path, key: &Path) -> Result<ServerIdentity, TlsError> {
    let cert_pem = read(cert)?.ok_or_else(|| TlsError::Io {
        path: cert.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    })?;
    let key_pem = read(key)?.ok_or_else(|| TlsError::Io {
        path: key.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    })?;
    if first_der(&cert_pem).is_none() {
        return Err(TlsError::Invalid {
            path: cert.to_path_buf(),
            prefix: "configured".into(),
            reason: "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(ServerIdentity {
        cert_pem,
        key_pem: Sensitive::new(key_pem),
        ca_pem: None,
        ca_path: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("10.0.0.1:5682"), "10.0.0.1");
        assert_eq!(host_of("global-1.example:5682"), "global-1.example");
        assert_eq!(host_of("[::1]:5682"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("host"), "host");
    }

    #[test]
    fn generated_once_reused_and_reissued_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = load_or_generate(dir.path(), "kds", "mosaic-global KDS", &names).unwrap();
        let again = load_or_generate(dir.path(), "kds", "mosaic-global KDS", &names).unwrap();
        assert_eq!(first.cert_pem, again.cert_pem, "reused at restart");
        assert_eq!(first.ca_pem, again.ca_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let files = GeneratedFiles::new(dir.path(), "kds");
            for p in [&files.key, &files.ca_key] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{p:?}");
            }
        }
        let more = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "global-1.internal".to_string(),
        ];
        let third = load_or_generate(dir.path(), "kds", "mosaic-global KDS", &more).unwrap();
        assert_ne!(first.cert_pem, third.cert_pem, "new names: new certificate");
        assert_eq!(
            first.ca_pem, third.ca_pem,
            "same CA: clients keep trusting it"
        );
        let der = first_der(&third.cert_pem).unwrap();
        let (sans, _, _) = sans_and_validity(&der).unwrap();
        assert!(sans.contains(&"global-1.internal".to_string()), "{sans:?}");
        assert!(sans.contains(&"127.0.0.1".to_string()), "{sans:?}");
        let ca_der = first_der(third.ca_pem.as_deref().unwrap()).unwrap();
        assert!(issuer_matches(&der, &ca_der));
        assert!(!format!("{third:?}").contains("PRIVATE KEY"));
    }
}
