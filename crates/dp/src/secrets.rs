//! Decodes the zone's SDS responses into PEM material, checking everything a reader of the files
//! will rely on. A response that fails a check is NACKed with the [`SecretError`]'s message.
//!
//! A response may carry either secret or both (the zone sends both each time):
//! - `identity_cert:secret:<mesh>`: `tls_certificate { certificate_chain, private_key }`; the chain
//!   must hold at least one X.509 certificate (the leaf first), the key must be a PEM private key
//!   (PKCS#8, PKCS#1 or SEC1) that matches the leaf's public key.
//! - `mesh_ca:secret:<mesh>`: `validation_context { trusted_ca }` with at least one certificate.
//!
//! Every DataSource must be `inline_bytes` (UTF-8) or `inline_string`; files and environment
//! variables of the zone's host mean nothing here. The PEM text is kept exactly as sent.

use mosaic_core::{
    Sensitive,
    ca::identity::{self, CertInfo},
    sds::{SECRET_TYPE_URL, SecretName},
};
use mosaic_proto::envoy::{
    envoy::{
        config::core::v3::{DataSource, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{Secret, secret},
        service::discovery::v3::DiscoveryResponse,
    },
    google::protobuf::Any,
};
use prost::Message as _;
use rustls::pki_types::CertificateDer;

/// The data plane's certificate chain and private key, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityPem {
    /// The leaf then its intermediates, PEM, exactly as the zone sent them.
    pub cert_chain: String,
    /// The leaf's private key, PEM, exactly as the zone sent it.
    pub key: Sensitive<String>,
    /// Facts about the leaf (SPIFFE ids, serial, issuer, validity) for logs.
    pub leaf: CertInfo,
    /// Number of certificates in the chain.
    pub chain_len: usize,
}

/// The roots the mesh trusts, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustBundlePem {
    /// Every root, PEM, exactly as the zone sent them.
    pub pem: String,
    /// Number of certificates in the bundle.
    pub roots: usize,
}

/// The secrets one response carried (either, both or, for an empty response, neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretSet {
    /// `identity_cert:secret:<mesh>`, if present.
    pub identity: Option<IdentityPem>,
    /// `mesh_ca:secret:<mesh>`, if present.
    pub trust_bundle: Option<TrustBundlePem>,
}

/// Why a response is unusable. The message is sent back to the zone as the NACK's
/// `error_detail.message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The response's `type_url` is not the Secret type.
    #[error("response type_url is {found:?}; expected {SECRET_TYPE_URL:?}")]
    ResponseTypeUrl {
        /// What the response said.
        found: String,
    },
    /// A resource is not a Secret.
    #[error("resources[{index}] has type_url {found:?}; expected {SECRET_TYPE_URL:?}")]
    ResourceTypeUrl {
        /// Position in `resources`.
        index: usize,
        /// Its type URL.
        found: String,
    },
    /// A resource does not decode as a Secret.
    #[error("resources[{index}] is not a valid Secret: {reason}")]
    Decode {
        /// Position in `resources`.
        index: usize,
        /// The protobuf error.
        reason: String,
    },
    /// A secret the data plane did not ask for.
    #[error("unexpected secret {name:?}: this data plane asked for {expected}")]
    UnexpectedName {
        /// Its name.
        name: String,
        /// The names asked for.
        expected: String,
    },
    /// The same secret twice in one response.
    #[error("secret {name} appears more than once in the response")]
    Duplicate {
        /// Its name.
        name: String,
    },
    /// A secret of the wrong kind (e.g. a validation context under the identity's name).
    #[error("{name}: expected {expected}, found {found}")]
    WrongKind {
        /// The secret's name.
        name: String,
        /// The kind its name calls for.
        expected: &'static str,
        /// The kind it holds.
        found: &'static str,
    },
    /// A required field is unset.
    #[error("{name}: {field} is missing")]
    Missing {
        /// The secret's name.
        name: String,
        /// The field path.
        field: &'static str,
    },
    /// A DataSource that is not inline.
    #[error(
        "{name}: {field} is a {kind} DataSource; only inline_bytes or inline_string can be delivered to a data plane"
    )]
    NotInline {
        /// The secret's name.
        name: String,
        /// The field path.
        field: &'static str,
        /// `filename` or `environment_variable`.
        kind: &'static str,
    },
    /// Inline bytes that are not UTF-8 text.
    #[error("{name}: {field} is not UTF-8 PEM text")]
    NotUtf8 {
        /// The secret's name.
        name: String,
        /// The field path.
        field: &'static str,
    },
    /// PEM that does not hold what it should.
    #[error("{name}: {field}: {reason}")]
    BadPem {
        /// The secret's name.
        name: String,
        /// The field path.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The private key does not belong to the leaf certificate.
    #[error(
        "{name}: tls_certificate.private_key does not match the public key of the first certificate in certificate_chain"
    )]
    KeyMismatch {
        /// The secret's name.
        name: String,
    },
}

const CHAIN_FIELD: &str = "tls_certificate.certificate_chain";
const KEY_FIELD: &str = "tls_certificate.private_key";
const TRUSTED_CA_FIELD: &str = "validation_context.trusted_ca";

// === impl SecretSet ===

impl SecretSet {
    /// Whether the response carried no secret at all.
    pub fn is_empty(&self) -> bool {
        self.identity.is_none() && self.trust_bundle.is_none()
    }
}

/// The two secrets a data plane of `mesh` asks for, in request order.
pub fn resource_names(mesh: &str) -> Vec<String> {
    vec![
        SecretName::IdentityCert(mesh.to_string()).to_string(),
        SecretName::MeshCa(mesh.to_string()).to_string(),
    ]
}

/// Decodes and checks every secret of `response` for a data plane of `mesh`.
pub fn decode_response(response: &DiscoveryResponse, mesh: &str) -> Result<SecretSet, SecretError> {
    if !response.type_url.is_empty() && response.type_url != SECRET_TYPE_URL {
        return Err(SecretError::ResponseTypeUrl {
            found: response.type_url.clone(),
        });
    }
    let identity_name = SecretName::IdentityCert(mesh.to_string());
    let ca_name = SecretName::MeshCa(mesh.to_string());
    let mut set = SecretSet::default();
    for (index, any) in response.resources.iter().enumerate() {
        let secret = decode_any(index, any)?;
        let parsed = SecretName::parse(&secret.name);
        if parsed.as_ref() == Some(&identity_name) {
            if set.identity.is_some() {
                return Err(SecretError::Duplicate { name: secret.name });
            }
            set.identity = Some(decode_identity(&secret)?);
        } else if parsed.as_ref() == Some(&ca_name) {
            if set.trust_bundle.is_some() {
                return Err(SecretError::Duplicate { name: secret.name });
            }
            set.trust_bundle = Some(decode_trust_bundle(&secret)?);
        } else {
            return Err(SecretError::UnexpectedName {
                name: secret.name,
                expected: resource_names(mesh).join(" and "),
            });
        }
    }
    Ok(set)
}

fn decode_any(index: usize, any: &Any) -> Result<Secret, SecretError> {
    if any.type_url != SECRET_TYPE_URL {
        return Err(SecretError::ResourceTypeUrl {
            index,
            found: any.type_url.clone(),
        });
    }
    Secret::decode(any.value.as_slice()).map_err(|e| SecretError::Decode {
        index,
        reason: e.to_string(),
    })
}

fn kind_of(t: Option<&secret::Type>) -> &'static str {
    match t {
        None => "no secret type",
        Some(secret::Type::TlsCertificate(_)) => "tls_certificate",
        Some(secret::Type::SessionTicketKeys(_)) => "session_ticket_keys",
        Some(secret::Type::ValidationContext(_)) => "validation_context",
        Some(secret::Type::GenericSecret(_)) => "generic_secret",
    }
}

/// Decodes `identity_cert:secret:<mesh>`.
fn decode_identity(secret: &Secret) -> Result<IdentityPem, SecretError> {
    let name = &secret.name;
    let Some(secret::Type::TlsCertificate(tls)) = &secret.r#type else {
        return Err(SecretError::WrongKind {
            name: name.clone(),
            expected: "tls_certificate",
            found: kind_of(secret.r#type.as_ref()),
        });
    };
    let chain = inline_text(name, CHAIN_FIELD, tls.certificate_chain.as_ref())?;
    let key = Sensitive::new(inline_text(name, KEY_FIELD, tls.private_key.as_ref())?);
    let ders = certificates(name, CHAIN_FIELD, &chain)?;
    let leaf = identity::inspect_der(&ders[0]).map_err(|e| bad_pem(name, CHAIN_FIELD, e.0))?;
    let key_der = rustls_pemfile::private_key(&mut key.expose().as_bytes())
        .map_err(|e| bad_pem(name, KEY_FIELD, format!("malformed PEM: {e}")))?
        .ok_or_else(|| {
            bad_pem(
                name,
                KEY_FIELD,
                "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)".into(),
            )
        })?;
    let chain_len = ders.len();
    let certs = ders.into_iter().map(CertificateDer::from).collect();
    match rustls::sign::CertifiedKey::from_der(
        certs,
        key_der,
        &rustls::crypto::ring::default_provider(),
    ) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(SecretError::KeyMismatch { name: name.clone() });
        }
        Err(e) => {
            return Err(bad_pem(
                name,
                KEY_FIELD,
                format!("unusable private key or certificate: {e}"),
            ));
        }
    }
    Ok(IdentityPem {
        cert_chain: chain,
        key,
        leaf,
        chain_len,
    })
}

/// Decodes `mesh_ca:secret:<mesh>`.
fn decode_trust_bundle(secret: &Secret) -> Result<TrustBundlePem, SecretError> {
    let name = &secret.name;
    let Some(secret::Type::ValidationContext(ctx)) = &secret.r#type else {
        return Err(SecretError::WrongKind {
            name: name.clone(),
            expected: "validation_context",
            found: kind_of(secret.r#type.as_ref()),
        });
    };
    let pem = inline_text(name, TRUSTED_CA_FIELD, ctx.trusted_ca.as_ref())?;
    let ders = certificates(name, TRUSTED_CA_FIELD, &pem)?;
    Ok(TrustBundlePem {
        pem,
        roots: ders.len(),
    })
}

/// The text of an inline DataSource.
fn inline_text(
    name: &str,
    field: &'static str,
    source: Option<&DataSource>,
) -> Result<String, SecretError> {
    let missing = || SecretError::Missing {
        name: name.to_string(),
        field,
    };
    let not_inline = |kind| SecretError::NotInline {
        name: name.to_string(),
        field,
        kind,
    };
    let text = match source
        .and_then(|s| s.specifier.as_ref())
        .ok_or_else(missing)?
    {
        Specifier::InlineBytes(b) => {
            String::from_utf8(b.clone()).map_err(|_| SecretError::NotUtf8 {
                name: name.to_string(),
                field,
            })?
        }
        Specifier::InlineString(s) => s.clone(),
        Specifier::Filename(_) => return Err(not_inline("filename")),
        Specifier::EnvironmentVariable(_) => return Err(not_inline("environment_variable")),
    };
    if text.trim().is_empty() {
        return Err(missing());
    }
    Ok(text)
}

/// The DER certificates of a PEM bundle: at least one, each a parseable X.509 certificate.
fn certificates(name: &str, field: &'static str, pem: &str) -> Result<Vec<Vec<u8>>, SecretError> {
    let ders = identity::pem_to_ders(pem).map_err(|e| bad_pem(name, field, e.0))?;
    if ders.is_empty() {
        return Err(bad_pem(
            name,
            field,
            "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    for (i, der) in ders.iter().enumerate() {
        identity::inspect_der(der)
            .map_err(|e| bad_pem(name, field, format!("certificate {}: {e}", i + 1)))?;
    }
    Ok(ders)
}

fn bad_pem(name: &str, field: &'static str, reason: String) -> SecretError {
    SecretError::BadPem {
        name: name.to_string(),
        field,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use mosaic_proto::envoy::envoy::extensions::transport_sockets::tls::v3::{
        CertificateValidationContext, TlsCertificate,
    };
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    struct Pki {
        ca_pem: String,
        leaf_pem: String,
        key_pem: String,
        other_key_pem: String,
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params = identity::leaf_params(
            &["spiffe://default/backend".to_string()],
            None,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Pki {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
            other_key_pem: other.serialize_pem(),
        }
    }

    fn bytes(s: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::InlineBytes(s.as_bytes().to_vec())),
            ..Default::default()
        })
    }

    fn string(s: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::InlineString(s.to_string())),
            ..Default::default()
        })
    }

    fn identity_secret(chain: Option<DataSource>, key: Option<DataSource>) -> Secret {
        Secret {
            name: "identity_cert:secret:default".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: chain,
                private_key: key,
                ..Default::default()
            })),
        }
    }

    fn ca_secret(trusted: Option<DataSource>) -> Secret {
        Secret {
            name: "mesh_ca:secret:default".into(),
            r#type: Some(secret::Type::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: trusted,
                    ..Default::default()
                },
            )),
        }
    }

    fn response(secrets: Vec<Secret>) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: "1".into(),
            nonce: "n1".into(),
            type_url: SECRET_TYPE_URL.into(),
            resources: secrets
                .into_iter()
                .map(|s| Any {
                    type_url: SECRET_TYPE_URL.into(),
                    value: s.encode_to_vec(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn nack_reason(secrets: Vec<Secret>) -> String {
        decode_response(&response(secrets), "default")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn inline_bytes_and_inline_string_both_decode() {
        let p = pki();
        let chain = format!("{}{}", p.leaf_pem, p.ca_pem);
        for (c, k, t) in [
            (bytes(&chain), bytes(&p.key_pem), bytes(&p.ca_pem)),
            (string(&chain), string(&p.key_pem), string(&p.ca_pem)),
            (bytes(&chain), string(&p.key_pem), string(&p.ca_pem)),
        ] {
            let set = decode_response(
                &response(vec![identity_secret(c, k), ca_secret(t)]),
                "default",
            )
            .unwrap();
            let id = set.identity.unwrap();
            assert_eq!(id.cert_chain, chain);
            assert_eq!(id.key.expose(), &p.key_pem);
            assert_eq!(id.chain_len, 2);
            assert_eq!(id.leaf.uri_sans, vec!["spiffe://default/backend"]);
            let ca = set.trust_bundle.unwrap();
            assert_eq!(ca.pem, p.ca_pem);
            assert_eq!(ca.roots, 1);
        }
    }

    #[test]
    fn either_secret_alone_or_none() {
        let p = pki();
        let only_ca =
            decode_response(&response(vec![ca_secret(string(&p.ca_pem))]), "default").unwrap();
        assert!(only_ca.identity.is_none() && only_ca.trust_bundle.is_some());
        let only_id = decode_response(
            &response(vec![identity_secret(
                string(&p.leaf_pem),
                string(&p.key_pem),
            )]),
            "default",
        )
        .unwrap();
        assert!(only_id.identity.is_some() && only_id.trust_bundle.is_none());
        assert!(
            decode_response(&response(vec![]), "default")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unusable_responses_have_a_nack_reason() {
        let p = pki();
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        let cases: Vec<(Vec<Secret>, &str)> = vec![
            (
                vec![identity_secret(string(garbage), string(&p.key_pem))],
                "identity_cert:secret:default: tls_certificate.certificate_chain:",
            ),
            (
                vec![identity_secret(string("hello"), string(&p.key_pem))],
                "holds no PEM certificate",
            ),
            (
                vec![identity_secret(string(&p.leaf_pem), string(&p.ca_pem))],
                "tls_certificate.private_key: holds no PEM private key",
            ),
            (
                vec![identity_secret(
                    string(&p.leaf_pem),
                    string(&p.other_key_pem),
                )],
                "does not match the public key",
            ),
            (
                vec![identity_secret(None, string(&p.key_pem))],
                "tls_certificate.certificate_chain is missing",
            ),
            (
                vec![identity_secret(string(&p.leaf_pem), string("  \n"))],
                "tls_certificate.private_key is missing",
            ),
            (
                vec![identity_secret(
                    Some(DataSource {
                        specifier: Some(Specifier::Filename("/etc/cert.pem".into())),
                        ..Default::default()
                    }),
                    string(&p.key_pem),
                )],
                "is a filename DataSource",
            ),
            (
                vec![identity_secret(
                    Some(DataSource {
                        specifier: Some(Specifier::InlineBytes(vec![0xff, 0xfe])),
                        ..Default::default()
                    }),
                    string(&p.key_pem),
                )],
                "is not UTF-8",
            ),
            (
                vec![ca_secret(string(garbage))],
                "mesh_ca:secret:default: validation_context.trusted_ca:",
            ),
            (
                vec![Secret {
                    name: "mesh_ca:secret:default".into(),
                    r#type: Some(secret::Type::TlsCertificate(TlsCertificate::default())),
                }],
                "expected validation_context, found tls_certificate",
            ),
            (
                vec![Secret {
                    name: "identity_cert:secret:other".into(),
                    r#type: None,
                }],
                "unexpected secret \"identity_cert:secret:other\"",
            ),
            (
                vec![ca_secret(string(&p.ca_pem)), ca_secret(string(&p.ca_pem))],
                "appears more than once",
            ),
        ];
        for (secrets, want) in cases {
            let reason = nack_reason(secrets);
            assert!(reason.contains(want), "{reason:?} should contain {want:?}");
            assert!(!reason.contains("PRIVATE KEY-----\nM"), "{reason}");
        }
    }

    #[test]
    fn wrong_type_urls_and_undecodable_resources() {
        let mut r = response(vec![]);
        r.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster".into();
        assert!(matches!(
            decode_response(&r, "default"),
            Err(SecretError::ResponseTypeUrl { .. })
        ));
        let mut r = response(vec![]);
        r.resources.push(Any {
            type_url: "type.googleapis.com/google.protobuf.Struct".into(),
            value: vec![],
        });
        assert!(matches!(
            decode_response(&r, "default"),
            Err(SecretError::ResourceTypeUrl { index: 0, .. })
        ));
        let mut r = response(vec![]);
        r.resources.push(Any {
            type_url: SECRET_TYPE_URL.into(),
            value: vec![0x0a, 0xff],
        });
        assert!(matches!(
            decode_response(&r, "default"),
            Err(SecretError::Decode { index: 0, .. })
        ));
    }

    #[test]
    fn resource_names_follow_the_contract() {
        assert_eq!(
            resource_names("default"),
            vec!["identity_cert:secret:default", "mesh_ca:secret:default"]
        );
    }
}
