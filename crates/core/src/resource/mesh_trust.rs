//! `MeshTrust` (Kuma 2.13's shape): the CA bundles (`caBundles[]`, `type: Pem`, `pem.value`)
//! trusted for a trust domain (`trustDomain`), and `status.origin` (the `kri` of the MeshIdentity
//! it was made from, when the control plane made it). Stored and validated; not yet in the
//! bundles data planes are served.

use serde::{Deserialize, Serialize};

use crate::validate::{FieldPath, ValidationError, Validator};

/// Longest trust domain (Kuma's CRD bound).
pub const MAX_TRUST_DOMAIN: usize = 253;
/// Most CA bundles in one MeshTrust.
pub const MAX_CA_BUNDLES: usize = 64;

/// A MeshTrust document's body: `spec` and `status` (Kuma keeps both apart in both forms).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshTrust {
    /// The spec.
    #[serde(default)]
    pub spec: MeshTrustSpec,
    /// The status (`origin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MeshTrustStatus>,
}

/// `spec` of a MeshTrust.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTrustSpec {
    /// The trust domain the bundles are trusted for.
    #[serde(default)]
    pub trust_domain: String,
    /// The CA bundles.
    #[serde(default, rename = "caBundles")]
    pub ca_bundles: Vec<CaBundle>,
}

/// One of `caBundles`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaBundle {
    /// `Pem`.
    #[serde(rename = "type", default)]
    pub bundle_type: String,
    /// The PEM bundle (`type: Pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<PemBundle>,
}

/// `pem`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PemBundle {
    /// One or more PEM certificates.
    #[serde(default)]
    pub value: String,
}

/// `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshTrustStatus {
    /// Where the MeshTrust came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// `status.origin`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The `kri` of the MeshIdentity it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kri: Option<String>,
}

// === impl MeshTrust ===

impl MeshTrust {
    /// Kuma's checks, with Kuma's field paths (`spec.caBundles[0].pem.value`, ...).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        let spec = FieldPath::from("spec");
        let bundles = spec.field("caBundles");
        if self.spec.ca_bundles.is_empty() {
            v.violation(
                &bundles,
                "must not be empty: at least one CA bundle (type: Pem, pem.value)",
            );
        }
        super::limits::check_count(
            &mut v,
            &bundles,
            self.spec.ca_bundles.len(),
            MAX_CA_BUNDLES,
            "CA bundles",
            "MeshTrust",
            "put several certificates in one pem.value",
        );
        for (i, bundle) in self.spec.ca_bundles.iter().enumerate() {
            let at = bundles.index(i);
            match bundle.bundle_type.as_str() {
                "Pem" => match &bundle.pem {
                    None => v.violation(&at.field("pem"), "must be defined"),
                    Some(p) => {
                        if let Err(why) = check_pem_certificate(&p.value) {
                            v.violation(
                                &at.field("pem").field("value"),
                                format!("provided certificate has incorrect format: {why}"),
                            );
                        }
                    }
                },
                other => v.violation(&at.field("type"), format!("{other:?} must be one of [Pem]")),
            }
        }
        let td = spec.field("trustDomain");
        if self.spec.trust_domain.is_empty() {
            v.violation(&td, "trustDomain needs to be defined");
        } else if self.spec.trust_domain.len() > MAX_TRUST_DOMAIN {
            v.violation(
                &td,
                format!("must be at most {MAX_TRUST_DOMAIN} characters"),
            );
        }
        v.finish()
    }
}

/// Kuma's rule: the value's first PEM block is there and is not a private key.
fn check_pem_certificate(value: &str) -> Result<(), &'static str> {
    let mut reader = value.as_bytes();
    match rustls_pemfile::read_one(&mut reader) {
        Ok(Some(rustls_pemfile::Item::X509Certificate(_))) => Ok(()),
        Ok(Some(
            rustls_pemfile::Item::Pkcs1Key(_)
            | rustls_pemfile::Item::Pkcs8Key(_)
            | rustls_pemfile::Item::Sec1Key(_),
        )) => Err("it is a private key: paste the CA's certificate, never its key"),
        Ok(Some(_)) => Err("its first PEM block is not a CERTIFICATE"),
        Ok(None) | Err(_) => Err(
            "no PEM block found: paste the CA certificate from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.self_signed(&key).expect("cert").pem()
    }

    fn fields(t: &MeshTrust) -> Vec<String> {
        match t.validate() {
            Ok(()) => vec![],
            Err(e) => e.violations.into_iter().map(|v| v.field).collect(),
        }
    }

    fn trust(value: &str) -> MeshTrust {
        MeshTrust {
            spec: MeshTrustSpec {
                trust_domain: "domain.name".into(),
                ca_bundles: vec![CaBundle {
                    bundle_type: "Pem".into(),
                    pem: Some(PemBundle {
                        value: value.into(),
                    }),
                }],
            },
            status: None,
        }
    }

    #[test]
    fn a_pem_certificate_is_accepted() {
        assert!(fields(&trust(&pem())).is_empty());
    }

    #[test]
    fn bad_bundles_and_domains_are_named() {
        assert_eq!(
            fields(&trust("-----BEGIN CERTIFICATE-----...")),
            ["spec.caBundles[0].pem.value"]
        );
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let t = trust(&key);
        let e = t.validate().unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        let mut t = trust(&pem());
        t.spec.trust_domain.clear();
        t.spec.ca_bundles[0].bundle_type = "Jwks".into();
        assert_eq!(fields(&t), ["spec.caBundles[0].type", "spec.trustDomain"]);
        t.spec.ca_bundles.clear();
        t.spec.trust_domain = "a".repeat(254);
        assert_eq!(fields(&t), ["spec.caBundles", "spec.trustDomain"]);
    }
}
