//! Envoy `Secret`s from what the issuer holds: `identity_cert:secret:<mesh>` (the certificate
//! chain and private key) and `mesh_ca:secret:<mesh>` (every root the mesh trusts), and the
//! DiscoveryResponse that carries them with a version derived from their content.

use std::collections::BTreeSet;

use mosaic_core::sds::{SECRET_TYPE_URL, SecretName};
use mosaic_proto::envoy::{
    envoy::{
        config::core::v3::{DataSource, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, Secret, TlsCertificate, secret,
        },
        service::discovery::v3::DiscoveryResponse,
    },
    google::protobuf::Any,
};
use prost::Message as _;

use crate::issuer::DataplaneCert;

/// What a dataplane can be served right now.
#[derive(Clone, Debug, Default)]
pub struct Material<'a> {
    /// Its current certificate, if one was obtained.
    pub identity: Option<&'a DataplaneCert>,
    /// The mesh's trust bundle (PEM roots); empty when unknown.
    pub bundle: &'a [String],
}

// === impl Material ===

impl Material<'_> {
    /// A version naming this exact content: the certificate's serial and the bundle's digest.
    pub fn version(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        if let Some(id) = self.identity {
            ctx.update(id.cert.serial.as_bytes());
        }
        ctx.update(b"\n");
        for root in self.bundle {
            ctx.update(root.trim().as_bytes());
            ctx.update(b"\n");
        }
        hex::encode(&ctx.finish().as_ref()[..8])
    }

    /// The Secret named `name`, if it is ready.
    pub fn secret(&self, name: &SecretName) -> Option<Secret> {
        let inline = |text: String| DataSource {
            specifier: Some(Specifier::InlineBytes(text.into_bytes())),
            ..DataSource::default()
        };
        let kind = match name {
            SecretName::IdentityCert(_) => {
                let id = self.identity?;
                secret::Type::TlsCertificate(TlsCertificate {
                    certificate_chain: Some(inline(id.cert.chain_pem.clone())),
                    private_key: Some(inline(id.cert.key_pem.expose().clone())),
                    ..TlsCertificate::default()
                })
            }
            SecretName::MeshCa(_) => {
                if self.bundle.is_empty() {
                    return None;
                }
                let mut pem = String::new();
                for root in self.bundle {
                    pem.push_str(root.trim());
                    pem.push('\n');
                }
                secret::Type::ValidationContext(CertificateValidationContext {
                    trusted_ca: Some(inline(pem)),
                    ..CertificateValidationContext::default()
                })
            }
        };
        Some(Secret {
            name: name.to_string(),
            r#type: Some(kind),
        })
    }

    /// A response carrying every secret in `names`, or `None` while one of them is not ready
    /// (a state-of-the-world response must hold them all).
    pub fn response(
        &self,
        names: &BTreeSet<SecretName>,
        nonce: String,
    ) -> Option<DiscoveryResponse> {
        let mut resources = Vec::with_capacity(names.len());
        for name in names {
            let secret = self.secret(name)?;
            resources.push(Any {
                type_url: SECRET_TYPE_URL.to_string(),
                value: secret.encode_to_vec(),
            });
        }
        Some(DiscoveryResponse {
            version_info: self.version(),
            resources,
            type_url: SECRET_TYPE_URL.to_string(),
            nonce,
            ..DiscoveryResponse::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mosaic_core::{Sensitive, ca::IssuedCert, template::Tags};
    use time::OffsetDateTime;

    use super::*;

    fn cert(serial: &str) -> DataplaneCert {
        let now = OffsetDateTime::now_utc();
        DataplaneCert {
            mesh: "m".into(),
            dataplane: "web-1".into(),
            backend: "vault-1".into(),
            tags: Tags::new(),
            spiffe_id: None,
            cert: Arc::new(IssuedCert {
                chain_pem: "LEAF\nINTERMEDIATE\n".into(),
                key_pem: Sensitive::new("KEY".into()),
                serial: serial.into(),
                not_before: now,
                not_after: now + time::Duration::hours(1),
            }),
            issued_at: now,
        }
    }

    #[test]
    fn responses_wait_for_every_secret_and_version_by_content() {
        let names: BTreeSet<SecretName> = [
            SecretName::IdentityCert("m".into()),
            SecretName::MeshCa("m".into()),
        ]
        .into();
        let bundle = vec!["ROOT-A".to_string()];
        let none = Material {
            identity: None,
            bundle: &bundle,
        };
        assert!(none.response(&names, "1".into()).is_none());

        let c1 = cert("01");
        let m1 = Material {
            identity: Some(&c1),
            bundle: &bundle,
        };
        let r = m1.response(&names, "1".into()).unwrap();
        assert_eq!(r.resources.len(), 2);
        assert_eq!(r.type_url, SECRET_TYPE_URL);
        let first = Secret::decode(r.resources[0].value.as_slice()).unwrap();
        assert_eq!(first.name, "identity_cert:secret:m");
        let Some(secret::Type::TlsCertificate(tls)) = first.r#type else {
            panic!("identity is a TlsCertificate")
        };
        assert_eq!(
            tls.private_key.unwrap().specifier,
            Some(Specifier::InlineBytes(b"KEY".to_vec()))
        );

        let c2 = cert("02");
        let m2 = Material {
            identity: Some(&c2),
            bundle: &bundle,
        };
        assert_ne!(m1.version(), m2.version());
        let more = vec!["ROOT-A".to_string(), "ROOT-B".to_string()];
        let m3 = Material {
            identity: Some(&c2),
            bundle: &more,
        };
        assert_ne!(m2.version(), m3.version());
        assert_eq!(m3.version(), m3.version());
    }
}
