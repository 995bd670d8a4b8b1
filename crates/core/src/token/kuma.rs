//! Kuma's and Kong Mesh's own token format, so a fleet moving over keeps its tokens.
//!
//! Kuma signs dataplane and zone tokens with RS256 (RSASSA-PKCS1-v1_5, SHA-256) keys it keeps as
//! secrets: dataplane tokens of mesh `M` with the Secret `dataplane-token-signing-key-M-N` of mesh
//! `M`, zone tokens with the GlobalSecret `zone-token-signing-key-N` (`N` = 1, 2, ... after each
//! rotation; serial 0 is the suffix-less name of Kuma 1.3). The secret's value is the private key,
//! PEM `RSA PRIVATE KEY` (PKCS#1), or the bare PKCS#1 DER of older releases. A token's header
//! names the serial as its `kid` (`"1"`); its claims are Kuma's Go field names: `Name`, `Mesh`,
//! `Tags`, `Type`, `Workload` (dataplane) or `Zone`, `Scope` (zone), plus `jti`, `iat`, `nbf`
//! (5 minutes before `iat`) and `exp`.
//!
//! Importing a key is applying that secret to the global as Kuma has it; the global derives the
//! public key ([`KumaSigningKey::from_secret_value`]) and only the public key reaches zones.
//! Verification is [`super::verify_dataplane_token`] / [`super::verify_zone_token`], which pick
//! this format by the header's `alg`.

use std::{collections::BTreeMap, fmt};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::RsaKeyPair;
use serde::{Deserialize, Serialize};

use super::{KeyAlgorithm, KeyError, PublicKey, ring_provider};
use crate::Sensitive;

/// Prefix of Kuma's zone-token signing keys (GlobalSecrets `zone-token-signing-key-N`).
pub const ZONE_SIGNING_KEY_PREFIX: &str = "zone-token-signing-key";

/// Prefix of Kuma's dataplane-token signing keys (`dataplane-token-signing-key-<mesh>-N`).
pub const DATAPLANE_SIGNING_KEY_PREFIX: &str = "dataplane-token-signing-key-";

/// Name of Kuma's zone-token signing key with serial `serial` (0: the suffix-less legacy name).
pub fn zone_signing_key_name(serial: u32) -> String {
    if serial == 0 {
        ZONE_SIGNING_KEY_PREFIX.to_string()
    } else {
        format!("{ZONE_SIGNING_KEY_PREFIX}-{serial}")
    }
}

/// Name of Kuma's dataplane-token signing key of `mesh` with serial `serial`.
pub fn dataplane_signing_key_name(mesh: &str, serial: u32) -> String {
    if serial == 0 {
        format!("{DATAPLANE_SIGNING_KEY_PREFIX}{mesh}")
    } else {
        format!("{DATAPLANE_SIGNING_KEY_PREFIX}{mesh}-{serial}")
    }
}

/// The serial of a zone-token signing key's secret name, if `name` is one.
pub fn zone_signing_key_serial(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(ZONE_SIGNING_KEY_PREFIX)?;
    if rest.is_empty() {
        return Some(0);
    }
    serial(rest.strip_prefix('-')?)
}

/// The serial of a dataplane-token signing key of `mesh`, if `name` is one.
pub fn dataplane_signing_key_serial(name: &str, mesh: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(DATAPLANE_SIGNING_KEY_PREFIX)?
        .strip_prefix(mesh)?;
    if rest.is_empty() {
        return Some(0);
    }
    serial(rest.strip_prefix('-')?)
}

/// The mesh a dataplane-token signing key's name points at, when its serial is not 0:
/// `dataplane-token-signing-key-my-mesh-2` → `my-mesh` (the GlobalSecret form names its mesh
/// only in its name).
pub fn dataplane_signing_key_mesh(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(DATAPLANE_SIGNING_KEY_PREFIX)?;
    let (mesh, n) = rest.rsplit_once('-')?;
    (serial(n).is_some() && !mesh.is_empty()).then_some(mesh)
}

/// Whether `name` is the name of one of Kuma's signing keys (zone or dataplane): such secrets
/// hold private keys and never leave the global.
pub fn is_signing_key_name(name: &str) -> bool {
    zone_signing_key_serial(name).is_some() || name.starts_with(DATAPLANE_SIGNING_KEY_PREFIX)
}

fn serial(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `kid` of a Kuma token as the key id we file its key under: the serial in decimal (Kuma
/// reads it with `strconv.Atoi`, so `"01"` is key 1); no `kid` is serial 0.
pub(super) fn canonical_kid(kid: Option<&str>) -> Option<String> {
    match kid {
        None => Some("0".to_string()),
        Some(k) => serial(k.strip_prefix('+').unwrap_or(k)).map(|n| n.to_string()),
    }
}

/// Why a Kuma signing key could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KumaKeyError {
    /// A PEM block of another type.
    #[error(
        "it holds a PEM {0:?} block; Kuma's signing keys are PEM \"RSA PRIVATE KEY\" (PKCS#1): apply the secret exactly as `kumactl get` prints it"
    )]
    WrongPem(String),
    /// Neither PEM nor a PKCS#1 RSA key ring accepts (2048 to 4096 bits).
    #[error(
        "it is not an RSA private key (PEM \"RSA PRIVATE KEY\" or PKCS#1 DER of 2048 to 4096 bits): {0}; apply the secret exactly as `kumactl get` prints it"
    )]
    NotRsa(String),
}

/// One of Kuma's signing keys, read from its secret's value (private: lives on the global only).
pub struct KumaSigningKey {
    pkcs1: Sensitive<Vec<u8>>,
    public: PublicKey,
}

impl KumaSigningKey {
    /// Reads the key with serial `serial` from its secret's (decoded) value.
    pub fn from_secret_value(serial: u32, value: &[u8]) -> Result<Self, KumaKeyError> {
        let text = String::from_utf8_lossy(value);
        let der = if text.contains("-----BEGIN") {
            let mut reader = value;
            match rustls_pemfile::read_one(&mut reader) {
                Ok(Some(rustls_pemfile::Item::Pkcs1Key(key))) => key.secret_pkcs1_der().to_vec(),
                Ok(Some(other)) => {
                    return Err(KumaKeyError::WrongPem(pem_kind(&other).to_string()));
                }
                Ok(None) => {
                    return Err(KumaKeyError::NotRsa("no PEM block could be read".into()));
                }
                Err(e) => return Err(KumaKeyError::NotRsa(format!("bad PEM: {e:?}"))),
            }
        } else {
            value.to_vec()
        };
        let pair = RsaKeyPair::from_der(&der).map_err(|e| KumaKeyError::NotRsa(e.to_string()))?;
        let public = PublicKey {
            kid: serial.to_string(),
            alg: KeyAlgorithm::Rs256,
            bytes: pair.public().as_ref().to_vec(),
        };
        Ok(Self {
            pkcs1: Sensitive::new(der),
            public,
        })
    }

    /// The public half (`kid` = the serial), what zones verify dataplane tokens with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `claims` as Kuma does (RS256, `kid` = the serial). Mosaic issues its own format;
    /// this is for checks that Kuma's tokens verify (tests, migration rehearsals).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<Sensitive<String>, KeyError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.public.kid.clone());
        ring_provider::install();
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_der(self.pkcs1.expose()),
        )
        .map(Sensitive::new)
        .map_err(|e| KeyError::Encode(e.to_string()))
    }
}

impl fmt::Debug for KumaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KumaSigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

fn pem_kind(item: &rustls_pemfile::Item) -> &'static str {
    use rustls_pemfile::Item;
    match item {
        Item::X509Certificate(_) => "CERTIFICATE",
        Item::Pkcs8Key(_) => "PRIVATE KEY",
        Item::Sec1Key(_) => "EC PRIVATE KEY",
        Item::SubjectPublicKeyInfo(_) => "PUBLIC KEY",
        Item::Crl(_) => "X509 CRL",
        Item::Csr(_) => "CERTIFICATE REQUEST",
        _ => "unknown",
    }
}

/// JWT registered claims as Kuma's Go library writes them (all optional there).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisteredClaims {
    /// Token id (a UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Issued at (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<f64>,
    /// Not before (Unix seconds; Kuma: 5 minutes before `iat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<f64>,
    /// Expires at (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<f64>,
}

/// The claims of Kuma's dataplane token, with Kuma's field names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KumaDataplaneClaims {
    /// The Dataplane's name (empty: any).
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Its mesh (empty: the mesh of the key).
    #[serde(rename = "Mesh", default)]
    pub mesh: String,
    /// Tags the Dataplane must have (Go's nil map is `null`).
    #[serde(rename = "Tags", default)]
    pub tags: Option<BTreeMap<String, Vec<String>>>,
    /// `dataplane`, `ingress`, `egress` or empty.
    #[serde(rename = "Type", default)]
    pub proxy_type: String,
    /// The `kuma.io/workload` label it must have (empty: none required).
    #[serde(rename = "Workload", default)]
    pub workload: String,
    /// `jti`, `iat`, `nbf`, `exp`.
    #[serde(flatten)]
    pub registered: RegisteredClaims,
}

/// The claims of Kuma's zone token, with Kuma's field names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KumaZoneClaims {
    /// The zone.
    #[serde(rename = "Zone", default)]
    pub zone: String,
    /// `cp`, `ingress`, `egress` (Go's nil slice is `null`).
    #[serde(rename = "Scope", default)]
    pub scope: Option<Vec<String>>,
    /// `jti`, `iat`, `nbf`, `exp`.
    #[serde(flatten)]
    pub registered: RegisteredClaims,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{
        ProxyType, TokenError, TokenKind, verify_dataplane_token, verify_zone_token,
    };
    use time::OffsetDateTime;

    /// A fresh 2048-bit RSA key as Kuma stores it (PEM `RSA PRIVATE KEY`), made by the openssl
    /// command line (ring makes no RSA keys; the test environment installs openssl).
    fn kuma_key_pem() -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .stderr(std::process::Stdio::null())
            .output()
            .expect("the openssl command line (scripts/setup-test-env.sh installs it)");
        assert!(out.status.success());
        out.stdout
    }

    const NOW: i64 = 1_750_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    /// Registered claims as Kuma's issuer writes them: nbf 5 minutes back, a UUID jti.
    fn registered(valid_for: i64) -> RegisteredClaims {
        RegisteredClaims {
            jti: Some("6baf2c90-0e86-4c62-97a7-7835855834bc".into()),
            iat: Some(NOW as f64),
            nbf: Some((NOW - 300) as f64),
            exp: Some((NOW + valid_for) as f64),
        }
    }

    fn web_claims() -> KumaDataplaneClaims {
        KumaDataplaneClaims {
            name: "web-1".into(),
            mesh: "default".into(),
            tags: Some(BTreeMap::from([(
                "kuma.io/service".to_string(),
                vec!["web".to_string()],
            )])),
            proxy_type: String::new(),
            workload: String::new(),
            registered: registered(3600),
        }
    }

    #[test]
    fn kuma_dataplane_tokens_verify_with_the_imported_key_only() {
        let pem = kuma_key_pem();
        let key = KumaSigningKey::from_secret_value(1, &pem).unwrap();
        assert_eq!(key.public_key().kid, "1");
        assert_eq!(key.public_key().alg, KeyAlgorithm::Rs256);
        assert!(!format!("{key:?}").contains("pkcs1"));
        let token = key.sign(&web_claims()).unwrap();
        // The header is Kuma's: RS256 with kid "1".
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::RS256, Some("1"))
        );
        let keys = [key.public_key().clone()];
        let claims = verify_dataplane_token(token.expose(), &keys, "default", now()).unwrap();
        assert_eq!(claims.name, "web-1");
        assert_eq!(claims.mesh, "default");
        assert_eq!(claims.tags["kuma.io/service"], vec!["web"]);
        assert_eq!(claims.proxy_type, None);
        assert_eq!(claims.jti, "6baf2c90-0e86-4c62-97a7-7835855834bc");
        assert_eq!(claims.exp, NOW + 3600);

        // Another key with the same serial: refused, naming the imported secret.
        let other = KumaSigningKey::from_secret_value(1, &kuma_key_pem()).unwrap();
        let forged = other.sign(&web_claims()).unwrap();
        let err = verify_dataplane_token(forged.expose(), &keys, "default", now()).unwrap_err();
        assert!(
            matches!(err, TokenError::KumaBadSignature { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("\"dataplane-token-signing-key-default-1\" of mesh \"default\""),
            "{text}"
        );
        for part in forged.expose().split('.') {
            assert!(!text.contains(part), "the error leaks the token: {text}");
        }
        // A serial that was not imported.
        let key2 = KumaSigningKey::from_secret_value(2, &pem).unwrap();
        let err = verify_dataplane_token(
            key2.sign(&web_claims()).unwrap().expose(),
            &keys,
            "default",
            now(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, TokenError::UnknownKumaKey { kid, .. } if kid == "2"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("dataplane-token-signing-key-default-2"),
            "{err}"
        );

        // The same PEM as bare PKCS#1 DER (Kuma before PEM) is the same key.
        let der = match rustls_pemfile::read_one(&mut &pem[..]).unwrap() {
            Some(rustls_pemfile::Item::Pkcs1Key(k)) => k.secret_pkcs1_der().to_vec(),
            _ => unreachable!(),
        };
        let legacy = KumaSigningKey::from_secret_value(1, &der).unwrap();
        assert_eq!(legacy.public_key(), key.public_key());
    }

    #[test]
    fn kuma_times_mesh_and_type_are_checked() {
        let key = KumaSigningKey::from_secret_value(1, &kuma_key_pem()).unwrap();
        let keys = [key.public_key().clone()];
        let sign = |c: &KumaDataplaneClaims| key.sign(c).unwrap().into_inner();
        // Expired.
        let mut c = web_claims();
        c.registered = registered(-1);
        let err = verify_dataplane_token(&sign(&c), &keys, "default", now()).unwrap_err();
        assert!(
            matches!(
                err,
                TokenError::Expired {
                    expected: TokenKind::Dataplane,
                    ..
                }
            ),
            "{err:?}"
        );
        // Not yet valid.
        let mut c = web_claims();
        c.registered.nbf = Some((NOW + 3600) as f64);
        let err = verify_dataplane_token(&sign(&c), &keys, "default", now()).unwrap_err();
        assert!(matches!(err, TokenError::NotYetValid { .. }), "{err:?}");
        // Another mesh.
        let err = verify_dataplane_token(&sign(&web_claims()), &keys, "other", now()).unwrap_err();
        assert!(matches!(err, TokenError::WrongMesh { .. }), "{err:?}");
        // Mesh-wide (no Name, no Tags, no Mesh): fits the key's mesh.
        let c = KumaDataplaneClaims {
            registered: registered(60),
            ..KumaDataplaneClaims::default()
        };
        let claims = verify_dataplane_token(&sign(&c), &keys, "default", now()).unwrap();
        assert_eq!(
            (claims.mesh.as_str(), claims.name.as_str()),
            ("default", "")
        );
        assert!(claims.tags.is_empty());
        // Type and Workload are carried.
        let mut c = web_claims();
        c.proxy_type = "ingress".into();
        c.workload = "web".into();
        let claims = verify_dataplane_token(&sign(&c), &keys, "default", now()).unwrap();
        assert_eq!(claims.proxy_type, Some(ProxyType::Ingress));
        assert_eq!(claims.workload, "web");
        c.proxy_type = "gateway".into();
        assert!(matches!(
            verify_dataplane_token(&sign(&c), &keys, "default", now()),
            Err(TokenError::Malformed { .. })
        ));
        // A zone token signed by the same key is not a dataplane token.
        let zone = key
            .sign(&KumaZoneClaims {
                zone: "east".into(),
                scope: Some(vec!["cp".into()]),
                registered: registered(60),
            })
            .unwrap();
        assert!(matches!(
            verify_dataplane_token(zone.expose(), &keys, "default", now()),
            Err(TokenError::WrongKind {
                found: Some(TokenKind::Zone),
                ..
            })
        ));
    }

    #[test]
    fn kuma_zone_tokens_carry_their_scope() {
        let key = KumaSigningKey::from_secret_value(1, &kuma_key_pem()).unwrap();
        let keys = [key.public_key().clone()];
        let token = key
            .sign(&KumaZoneClaims {
                zone: "west".into(),
                scope: Some(vec!["cp".into()]),
                registered: registered(3600),
            })
            .unwrap();
        let claims = verify_zone_token(token.expose(), &keys, now()).unwrap();
        assert_eq!(claims.zone, "west");
        assert!(claims.has_scope("cp") && !claims.has_scope("ingress"));
        // Kuma's own kumactl default: ingress and egress only.
        let token = key
            .sign(&KumaZoneClaims {
                zone: "west".into(),
                scope: Some(vec!["ingress".into(), "egress".into()]),
                registered: registered(3600),
            })
            .unwrap();
        let claims = verify_zone_token(token.expose(), &keys, now()).unwrap();
        assert!(!claims.has_scope("cp"));
        assert_eq!(claims.scope_list(), "[ingress, egress]");
        // Not imported.
        let err = verify_zone_token(token.expose(), &[], now()).unwrap_err();
        assert!(
            err.to_string()
                .contains("GlobalSecret \"zone-token-signing-key-1\""),
            "{err}"
        );
    }

    #[test]
    fn names_and_serials_follow_kuma() {
        assert_eq!(zone_signing_key_name(1), "zone-token-signing-key-1");
        assert_eq!(zone_signing_key_name(0), "zone-token-signing-key");
        assert_eq!(
            zone_signing_key_serial("zone-token-signing-key-12"),
            Some(12)
        );
        assert_eq!(zone_signing_key_serial("zone-token-signing-key"), Some(0));
        for bad in [
            "zone-token-signing-key-",
            "zone-token-signing-key-x",
            "zone-token-signing-key1",
            "zone-token-signing-public-key-1",
            "zone-token-revocations",
        ] {
            assert_eq!(zone_signing_key_serial(bad), None, "{bad}");
        }
        assert_eq!(
            dataplane_signing_key_name("default", 1),
            "dataplane-token-signing-key-default-1"
        );
        assert_eq!(
            dataplane_signing_key_serial("dataplane-token-signing-key-default-1", "default"),
            Some(1)
        );
        assert_eq!(
            dataplane_signing_key_serial("dataplane-token-signing-key-default", "default"),
            Some(0)
        );
        assert_eq!(
            dataplane_signing_key_serial("dataplane-token-signing-key-default-x", "default"),
            None
        );
        assert_eq!(
            dataplane_signing_key_serial("dataplane-token-signing-key-defaults-1", "default"),
            None
        );
        assert_eq!(
            dataplane_signing_key_mesh("dataplane-token-signing-key-my-mesh-2"),
            Some("my-mesh")
        );
        assert_eq!(
            dataplane_signing_key_mesh("dataplane-token-signing-key-m"),
            None
        );
        assert!(is_signing_key_name("dataplane-token-signing-key-default-1"));
        assert!(is_signing_key_name("zone-token-signing-key-1"));
        assert!(!is_signing_key_name("dataplane-token-revocations-default"));
        assert_eq!(canonical_kid(Some("01")).as_deref(), Some("1"));
        assert_eq!(canonical_kid(None).as_deref(), Some("0"));
        assert_eq!(canonical_kid(Some("a1")), None);
    }

    #[test]
    fn claims_use_kuma_field_names() {
        let json = r#"{"Name":"web-1","Mesh":"default","Tags":{"kuma.io/service":["web"]},"Type":"","Workload":"","exp":1700000000,"nbf":1699990000,"iat":1699990300,"jti":"6baf2c90-0e86-4c62-97a7-7835855834bc"}"#;
        let c: KumaDataplaneClaims = serde_json::from_str(json).unwrap();
        assert_eq!(c.name, "web-1");
        assert_eq!(c.tags.unwrap()["kuma.io/service"], vec!["web"]);
        assert_eq!(c.registered.exp, Some(1_700_000_000.0));
        // The zone token of Kong Mesh's docs.
        let z: KumaZoneClaims = serde_json::from_str(
            r#"{"Zone":"west","Scope":["cp"],"exp":1669546939,"nbf":1666954639,"iat":1666954939,"jti":"6baf2c90-0e86-4c62-97a7-7835855834bc"}"#,
        )
        .unwrap();
        assert_eq!(
            (z.zone.as_str(), z.scope.unwrap()),
            ("west", vec!["cp".to_string()])
        );
        let nulls: KumaDataplaneClaims =
            serde_json::from_str(r#"{"Name":"","Mesh":"default","Tags":null,"jti":"x"}"#).unwrap();
        assert_eq!(nulls.tags, None);
    }

    #[test]
    fn keys_that_are_not_pkcs1_rsa_are_refused_with_the_reason() {
        let ec = rcgen::KeyPair::generate().unwrap();
        let err = KumaSigningKey::from_secret_value(1, ec.serialize_pem().as_bytes()).unwrap_err();
        assert_eq!(err, KumaKeyError::WrongPem("PRIVATE KEY".into()));
        let err = KumaSigningKey::from_secret_value(1, b"not a key").unwrap_err();
        assert!(matches!(err, KumaKeyError::NotRsa(_)), "{err:?}");
        assert!(err.to_string().contains("RSA PRIVATE KEY"), "{err}");
    }
}
