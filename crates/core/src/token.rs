//! Zone and dataplane tokens: Ed25519-signed JWTs (compact JWS), signed and verified with
//! `jsonwebtoken` on `ring` (see `token/ring_provider.rs`); beside them, tokens Kuma or Kong Mesh
//! signed (RS256, `token/kuma.rs`) verify against Kuma's imported signing keys.
//!
//! The global signs tokens with private keys that never leave it; zones verify dataplane tokens
//! (and the global verifies zone tokens) with [`PublicKey`]s only. Nothing here does I/O.
//!
//! A token is `base64url(header) . base64url(claims) . base64url(signature)` with the header
//! `{"alg":"EdDSA","typ":"JWT","kid":KID}` and claims that carry a `kind` discriminator (`zone` or
//! `dataplane`), so a token of one kind is never accepted as the other even if the keys were shared.
//! The signature covers the first two parts exactly as received; `alg` `RS256` is Kuma's format
//! (checked against the RS256 keys only, [`kuma`]), any other `alg` (including `none`) is
//! refused. Errors say what to do and never contain the token.
//!
//! What a token allows follows Kuma: a dataplane token without a name fits any Dataplane of its
//! mesh, without tags any tags ([`crate::sds::check_tags`]), its `type` says which kind of proxy
//! may use it and its `workload` which `kuma.io/workload` label the Dataplane must have; a zone
//! token's `scope` lists what it may authenticate (`cp`: a zone control plane on KDS).
//!
//! Header and claims are serialised here (header fields in the order above, as tokens have always
//! been), jsonwebtoken makes and checks the signature and parses the JWS; the claims, their kind
//! and times are checked here against the caller's clock.

use std::{collections::BTreeMap, fmt, time::Duration};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation, errors::ErrorKind};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Sensitive;

pub mod kuma;
mod ring_provider;

/// The algorithm of Mosaic's own tokens.
pub const ALGORITHM: &str = "EdDSA";

/// The algorithm of Kuma's tokens.
pub const KUMA_ALGORITHM: &str = "RS256";

/// Zone-token scope: a zone control plane connecting to the global (KDS), Kong Mesh's `cp`.
pub const SCOPE_CP: &str = "cp";
/// Zone-token scope: a zone ingress (Kuma's `ingress`).
pub const SCOPE_INGRESS: &str = "ingress";
/// Zone-token scope: a zone egress (Kuma's `egress`).
pub const SCOPE_EGRESS: &str = "egress";
/// Every zone-token scope, what a token gets when its request names none (Kong Mesh's
/// `kumactl generate zone-token` default).
pub const FULL_SCOPE: [&str; 3] = [SCOPE_CP, SCOPE_INGRESS, SCOPE_EGRESS];

/// Largest token accepted, in bytes (a token with many tags stays far below this).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Allowed difference between the issuer's and the verifier's clocks when checking `iat`.
/// (`exp` is checked without leeway: the user chose it.)
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Validity of a zone token when the request names none (one year; Kuma's zone tokens have no
/// default expiry, we prefer one that forces rotation).
pub const DEFAULT_ZONE_TOKEN_VALIDITY: Duration = Duration::from_secs(8760 * 3600);

/// Validity of a dataplane token when the request names none.
pub const DEFAULT_DATAPLANE_TOKEN_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Longest validity a token may be issued for (ten years).
pub const MAX_TOKEN_VALIDITY: Duration = Duration::from_secs(10 * 8760 * 3600);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a token authorises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A zone control plane connecting to the global (KDS).
    Zone,
    /// A data plane asking its zone for its identity (SDS).
    Dataplane,
}

/// Which kind of proxy a dataplane token is for (Kuma's `Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// A data plane proxy (a Dataplane).
    Dataplane,
    /// A zone ingress.
    Ingress,
    /// A zone egress.
    Egress,
}

/// Algorithm of a [`PublicKey`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519, Mosaic's own keys (`bytes`: the raw 32-byte key).
    #[default]
    EdDSA,
    /// RSA with SHA-256, Kuma's imported keys (`bytes`: RSAPublicKey, PKCS#1 DER).
    #[serde(rename = "RS256")]
    Rs256,
}

/// Claims of a zone token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneClaims {
    /// The zone's name.
    pub zone: String,
    /// What the token may authenticate ([`SCOPE_CP`], [`SCOPE_INGRESS`], [`SCOPE_EGRESS`]).
    /// Absent in tokens issued before scopes existed: those were for zone control planes and
    /// count as every scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Unique token id (for revocation lists later).
    pub jti: String,
}

/// Claims of a dataplane token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneClaims {
    /// The mesh the data plane belongs to.
    pub mesh: String,
    /// The data plane's name; empty: any data plane of the mesh (Kuma's mesh-wide tokens).
    #[serde(default)]
    pub name: String,
    /// Tags the Dataplane must have, with the values it may have for them; other tags are free
    /// unless the zone requires every tag to be named ([`crate::sds::check_tags`]).
    #[serde(default)]
    pub tags: BTreeMap<String, Vec<String>>,
    /// Which kind of proxy may use it (Kuma's `Type`); none: a data plane proxy.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub proxy_type: Option<ProxyType>,
    /// The `kuma.io/workload` label the Dataplane must have (Kuma's `Workload`); empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// A public key that verifies tokens; the only key material that leaves the global.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key id, named in each token's header: a short hash of an Ed25519 key; the serial
    /// (`"1"`) of an imported Kuma key.
    pub kid: String,
    /// The algorithm (absent in JSON: EdDSA, so Mosaic's keys travel as they always have).
    #[serde(default, skip_serializing_if = "KeyAlgorithm::is_eddsa")]
    pub alg: KeyAlgorithm,
    /// The raw 32-byte Ed25519 public key, or an RSA key's PKCS#1 DER (base64 in JSON).
    #[serde(with = "b64_bytes")]
    pub bytes: Vec<u8>,
}

/// An Ed25519 signing key (private; lives on the global only).
pub struct SigningKey {
    pkcs8: Sensitive<Vec<u8>>,
    /// The parsed key, kept in test builds only: tests sign hand-made JWS parts with it.
    #[cfg(test)]
    pair: Ed25519KeyPair,
    encoding: EncodingKey,
    public: PublicKey,
}

/// Body of `POST /tokens/zone` (Kuma's `ZoneTokenRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneTokenRequest {
    /// The zone the token is for.
    pub zone: String,
    /// What it may authenticate: `cp`, `ingress`, `egress` (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// How long it is valid (default [`DEFAULT_ZONE_TOKEN_VALIDITY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<crate::duration::KumaDuration>,
}

/// Body of `POST /tokens/dataplane` (Kuma's `DataplaneTokenRequest`, as kumactl sends it:
/// empty strings and `null` tags mean "not given").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataplaneTokenRequest {
    /// The data plane's mesh.
    pub mesh: String,
    /// The data plane's name; empty or absent: any data plane of the mesh.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Tags the Dataplane must have; empty: no tag is checked.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, Vec<String>>,
    /// `dataplane`, `ingress` or `egress`; empty or absent: not bound to a kind.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub proxy_type: String,
    /// The `kuma.io/workload` label the Dataplane must have; empty or absent: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// How long it is valid (default [`DEFAULT_DATAPLANE_TOKEN_VALIDITY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<crate::duration::KumaDuration>,
}

/// Why a token was refused. Messages say what to do and never include the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS with our header and claims.
    #[error(
        "the {expected} token is malformed ({reason}): pass the token exactly as `{}` printed it",
        expected.generate_command()
    )]
    Malformed {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// What is wrong (fixed text, never token content).
        reason: &'static str,
    },
    /// Signed by a key this verifier does not know.
    #[error(
        "the {expected} token was signed by key {kid:?}, which is not among this control plane's keys (its signing key was retired, or it was issued by another global, or before its keys were reset): generate a new token with `{}`",
        expected.generate_command()
    )]
    UnknownKey {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// The key id named by the token (sanitised).
        kid: String,
    },
    /// An RS256 (Kuma) token whose signing key was not imported.
    #[error(
        "the {expected} token is one of Kuma's (RS256) signed by Kuma's signing key {kid}, which this control plane does not have: import it by applying {import} as Kuma has it (kumactl get ... -o yaml, then mosaicctl apply -f), or generate a new token with `{}`",
        expected.generate_command()
    )]
    UnknownKumaKey {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// The key's serial, as the token names it.
        kid: String,
        /// The secret that holds the key in Kuma (`the Secret "…" of mesh "…"`).
        import: String,
    },
    /// An RS256 (Kuma) token whose signature does not verify with the imported key of its kid.
    #[error(
        "the {expected} token is one of Kuma's (RS256) but its signature does not verify with the imported Kuma signing key {kid} ({import}): it was signed by another key (another control plane's, or one replaced since) or altered: import the key that signed it, or generate a new token with `{}`",
        expected.generate_command()
    )]
    KumaBadSignature {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// The key's serial.
        kid: String,
        /// The secret the key was imported from.
        import: String,
    },
    /// The signature does not match header and claims.
    #[error(
        "the {expected} token's signature does not verify (it was altered, or signed by another key with the same id): generate a new token with `{}`",
        expected.generate_command()
    )]
    BadSignature {
        /// The kind of token that was expected.
        expected: TokenKind,
    },
    /// Past its `exp`.
    #[error(
        "the {expected} token expired at {}: generate a new token with `{}`",
        rfc3339(at),
        expected.generate_command()
    )]
    Expired {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// When it expired.
        at: OffsetDateTime,
    },
    /// Its `iat` lies in the future (beyond [`CLOCK_SKEW`]).
    #[error(
        "the {expected} token is valid only from {}: check that the clocks of the global and this machine agree (NTP)",
        rfc3339(from)
    )]
    NotYetValid {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// When it becomes valid.
        from: OffsetDateTime,
    },
    /// A token of another kind (e.g. a zone token where a dataplane token was expected).
    #[error(
        "this is {} token, not a {expected} token: use a token from `{}`",
        found.map_or("an unknown kind of".to_string(), |k| format!("a {k}")),
        expected.generate_command()
    )]
    WrongKind {
        /// The kind of token that was expected.
        expected: TokenKind,
        /// The kind it is, if known.
        found: Option<TokenKind>,
    },
    /// A dataplane token for another mesh.
    #[error(
        "the dataplane token is for mesh {token_mesh:?}, not {expected_mesh:?}: generate a token with `mosaicctl generate dataplane-token --mesh {expected_mesh} --name NAME`"
    )]
    WrongMesh {
        /// The mesh the data plane asked for.
        expected_mesh: String,
        /// The mesh the token names.
        token_mesh: String,
    },
}

/// Why a signing key could not be made, read or used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The system random generator failed.
    #[error("cannot generate an Ed25519 signing key: the system random generator failed")]
    Generate,
    /// Stored bytes are not an Ed25519 PKCS#8 (v2) document.
    #[error(
        "the stored signing key is not an Ed25519 PKCS#8 key: the store is damaged; restore it from a backup"
    )]
    InvalidPkcs8,
    /// Claims could not be encoded.
    #[error("cannot encode token claims: {0}")]
    Encode(String),
}

/// Reads `null` as the type's default (Go's nil maps and slices).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The header as we write it (jsonwebtoken's own puts `typ` first) and read it for error messages.
#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims with their `kind` discriminator, as they travel.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum WireClaims<'a> {
    Zone(&'a ZoneClaims),
    Dataplane(&'a DataplaneClaims),
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn new_jti() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn expiry(iat: i64, valid_for: Duration) -> i64 {
    iat.saturating_add(i64::try_from(valid_for.as_secs()).unwrap_or(i64::MAX))
}

// === impl TokenKind ===

impl TokenKind {
    /// `zone` or `dataplane`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Zone => "zone",
            TokenKind::Dataplane => "dataplane",
        }
    }

    /// The command that issues a token of this kind.
    pub fn generate_command(self) -> &'static str {
        match self {
            TokenKind::Zone => "mosaicctl generate zone-token --zone NAME",
            TokenKind::Dataplane => "mosaicctl generate dataplane-token --mesh MESH --name NAME",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ProxyType ===

impl ProxyType {
    /// `dataplane`, `ingress` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Dataplane => "dataplane",
            ProxyType::Ingress => "ingress",
            ProxyType::Egress => "egress",
        }
    }

    /// Reads Kuma's name of a proxy type.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dataplane" => Some(ProxyType::Dataplane),
            "ingress" => Some(ProxyType::Ingress),
            "egress" => Some(ProxyType::Egress),
            _ => None,
        }
    }
}

impl fmt::Display for ProxyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl KeyAlgorithm ===

impl KeyAlgorithm {
    /// Whether this is Ed25519 (the default, left out of JSON).
    pub fn is_eddsa(&self) -> bool {
        *self == KeyAlgorithm::EdDSA
    }
}

// === impl ZoneClaims ===

impl ZoneClaims {
    /// Claims for `zone` with every scope (no `scope` claim, as tokens before scopes), issued
    /// at `now`, valid for `valid_for`, with a fresh random `jti`.
    pub fn new(zone: impl Into<String>, now: OffsetDateTime, valid_for: Duration) -> Self {
        let iat = now.unix_timestamp();
        Self {
            zone: zone.into(),
            scope: None,
            iat,
            exp: expiry(iat, valid_for),
            jti: new_jti(),
        }
    }

    /// The same claims with `scope`.
    pub fn with_scope(mut self, scope: Vec<String>) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Whether the token may authenticate `scope` (tokens from before scopes: every scope).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.iter().any(|have| have == scope))
    }

    /// The scopes, for messages (`[cp, ingress]`; `[]` for none).
    pub fn scope_list(&self) -> String {
        match &self.scope {
            None => format!("[{}]", FULL_SCOPE.join(", ")),
            Some(s) => format!("[{}]", s.join(", ")),
        }
    }
}

// === impl DataplaneClaims ===

impl DataplaneClaims {
    /// Claims for data plane `name` in `mesh` with `tags`, issued at `now`, valid for `valid_for`.
    pub fn new(
        mesh: impl Into<String>,
        name: impl Into<String>,
        tags: BTreeMap<String, Vec<String>>,
        now: OffsetDateTime,
        valid_for: Duration,
    ) -> Self {
        let iat = now.unix_timestamp();
        Self {
            mesh: mesh.into(),
            name: name.into(),
            tags,
            proxy_type: None,
            workload: String::new(),
            iat,
            exp: expiry(iat, valid_for),
            jti: new_jti(),
        }
    }
}

// === impl PublicKey ===

impl PublicKey {
    /// The public key for raw Ed25519 key bytes; its `kid` is derived from them.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            kid: kid_of(&bytes),
            alg: KeyAlgorithm::EdDSA,
            bytes,
        }
    }
}

/// Key id: the first 8 bytes of the SHA-256 of the public key, hex.
fn kid_of(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    hex::encode(&digest.as_ref()[..8])
}

// === impl SigningKey ===

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Reads a key from its PKCS#8 (v2) form, as [`SigningKey::pkcs8`] returns it.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::InvalidPkcs8)?;
        let public = PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
        Ok(Self {
            pkcs8: Sensitive::new(pkcs8.to_vec()),
            #[cfg(test)]
            pair,
            encoding: EncodingKey::from_ed_der(pkcs8),
            public,
        })
    }

    /// The private key in PKCS#8 form, for storage.
    pub fn pkcs8(&self) -> &Sensitive<Vec<u8>> {
        &self.pkcs8
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// Signs a zone token.
    pub fn sign_zone_token(&self, claims: &ZoneClaims) -> Result<Sensitive<String>, KeyError> {
        self.sign(&WireClaims::Zone(claims))
    }

    /// Signs a dataplane token.
    pub fn sign_dataplane_token(
        &self,
        claims: &DataplaneClaims,
    ) -> Result<Sensitive<String>, KeyError> {
        self.sign(&WireClaims::Dataplane(claims))
    }

    fn sign(&self, claims: &WireClaims<'_>) -> Result<Sensitive<String>, KeyError> {
        let header = Header {
            alg: ALGORITHM.to_string(),
            typ: Some("JWT".to_string()),
            kid: Some(self.public.kid.clone()),
        };
        let header = serde_json::to_vec(&header).map_err(|e| KeyError::Encode(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| KeyError::Encode(e.to_string()))?;
        let message = format!("{}.{}", B64.encode(header), B64.encode(claims));
        ring_provider::install();
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, Algorithm::EdDSA)
                .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Sensitive::new(format!("{message}.{signature}")))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

// === verification ===

/// The key a token names in its header (its algorithm and key id, as [`PublicKey`] has them; a
/// Kuma token's serial in canonical form), if the header can be read. Call it on a token that
/// verified to learn which key verified it (e.g. to end its sessions when that key is retired).
pub fn signing_key_of(token: &str) -> Option<(KeyAlgorithm, String)> {
    let header = jsonwebtoken::decode_header(token.trim()).ok()?;
    match header.alg {
        Algorithm::EdDSA => Some((KeyAlgorithm::EdDSA, header.kid?)),
        Algorithm::RS256 => Some((
            KeyAlgorithm::Rs256,
            kuma::canonical_kid(header.kid.as_deref())?,
        )),
        _ => None,
    }
}

/// How long from `now` until a token whose `exp` is `exp` (Unix seconds) expires: zero when
/// it has. What an open stream waits for before it ends the stream of an expiring token.
pub fn time_left(exp: i64, now: OffsetDateTime) -> Duration {
    let left = exp.saturating_sub(now.unix_timestamp());
    let nanos = i64::from(now.nanosecond());
    match u64::try_from(left) {
        Ok(0) | Err(_) => Duration::ZERO,
        Ok(secs) => Duration::from_secs(secs).saturating_sub(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or_default(),
        )),
    }
}

/// When a token whose `exp` is `exp` expires (the end of year 9999 when out of range).
pub fn expires_at(exp: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(exp).unwrap_or_else(|_| {
        OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    })
}

/// Verifies a zone token against `keys` at `now` and returns its claims: Mosaic's (EdDSA) or
/// Kuma's (RS256, against the imported `zone-token-signing-key-N` keys among `keys`).
pub fn verify_zone_token(
    token: &str,
    keys: &[PublicKey],
    now: OffsetDateTime,
) -> Result<ZoneClaims, TokenError> {
    let expected = TokenKind::Zone;
    match verify(token, keys, expected, &KumaKeyOf::Zone)? {
        Verified::Mosaic(value) => {
            let claims: ZoneClaims = mosaic_claims(value, expected)?;
            check_times(expected, claims.iat, claims.exp, now)?;
            Ok(claims)
        }
        Verified::Kuma(value) => {
            if value.get("Zone").is_none() && value.get("Mesh").is_some() {
                return Err(TokenError::WrongKind {
                    expected,
                    found: Some(TokenKind::Dataplane),
                });
            }
            let claims: kuma::KumaZoneClaims = kuma_claims(value, expected)?;
            let (iat, exp, jti) = kuma_times(expected, &claims.registered, now)?;
            Ok(ZoneClaims {
                zone: claims.zone,
                scope: Some(claims.scope.unwrap_or_default()),
                iat,
                exp,
                jti,
            })
        }
    }
}

/// Verifies a dataplane token against `keys` at `now`, for a data plane of `expected_mesh`, and
/// returns its claims (the caller checks name, tags, type and workload against the Dataplane):
/// Mosaic's (EdDSA) or Kuma's (RS256, against the imported keys of `expected_mesh` among `keys`).
pub fn verify_dataplane_token(
    token: &str,
    keys: &[PublicKey],
    expected_mesh: &str,
    now: OffsetDateTime,
) -> Result<DataplaneClaims, TokenError> {
    let expected = TokenKind::Dataplane;
    let claims = match verify(token, keys, expected, &KumaKeyOf::Dataplane(expected_mesh))? {
        Verified::Mosaic(value) => {
            let claims: DataplaneClaims = mosaic_claims(value, expected)?;
            check_times(expected, claims.iat, claims.exp, now)?;
            claims
        }
        Verified::Kuma(value) => {
            if value.get("Zone").is_some() && value.get("Mesh").is_none() {
                return Err(TokenError::WrongKind {
                    expected,
                    found: Some(TokenKind::Zone),
                });
            }
            let claims: kuma::KumaDataplaneClaims = kuma_claims(value, expected)?;
            let (iat, exp, jti) = kuma_times(expected, &claims.registered, now)?;
            let proxy_type = match claims.proxy_type.as_str() {
                "" => None,
                other => Some(ProxyType::parse(other).ok_or(TokenError::Malformed {
                    expected,
                    reason: "its Type is not dataplane, ingress or egress",
                })?),
            };
            DataplaneClaims {
                // Kuma: an empty Mesh fits any mesh; the key was this mesh's.
                mesh: if claims.mesh.is_empty() {
                    expected_mesh.to_string()
                } else {
                    claims.mesh
                },
                name: claims.name,
                tags: claims.tags.unwrap_or_default(),
                proxy_type,
                workload: claims.workload,
                iat,
                exp,
                jti,
            }
        }
    };
    if claims.mesh != expected_mesh {
        return Err(TokenError::WrongMesh {
            expected_mesh: expected_mesh.to_string(),
            token_mesh: claims.mesh,
        });
    }
    Ok(claims)
}

/// Whose Kuma signing key an RS256 token needs (for the message when it is not imported).
enum KumaKeyOf<'a> {
    Zone,
    Dataplane(&'a str),
}

impl KumaKeyOf<'_> {
    fn import_hint(&self, serial: &str) -> String {
        let serial = serial.parse().unwrap_or(0);
        match self {
            KumaKeyOf::Zone => {
                format!("the GlobalSecret {:?}", kuma::zone_signing_key_name(serial))
            }
            KumaKeyOf::Dataplane(mesh) => format!(
                "the Secret {:?} of mesh {mesh:?}",
                kuma::dataplane_signing_key_name(mesh, serial)
            ),
        }
    }
}

/// The verified claims, by format.
enum Verified {
    /// Mosaic's EdDSA token: claims with their `kind`.
    Mosaic(serde_json::Value),
    /// Kuma's RS256 token: Kuma's claim names.
    Kuma(serde_json::Value),
}

fn mosaic_claims<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    expected: TokenKind,
) -> Result<T, TokenError> {
    let found = value
        .get("kind")
        .and_then(|k| serde_json::from_value::<TokenKind>(k.clone()).ok());
    if found != Some(expected) {
        return Err(TokenError::WrongKind { expected, found });
    }
    serde_json::from_value(value).map_err(|_| TokenError::Malformed {
        expected,
        reason: "its claims lack required fields",
    })
}

fn kuma_claims<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    expected: TokenKind,
) -> Result<T, TokenError> {
    serde_json::from_value(value).map_err(|_| TokenError::Malformed {
        expected,
        reason: "its claims are not Kuma's (Name, Mesh, Tags, Type, Workload or Zone, Scope)",
    })
}

/// Kuma's time rules (those of its JWT library): `exp` and `nbf` are checked when present
/// (`nbf` with [`CLOCK_SKEW`]); returns `(iat, exp, jti)` for our claims.
fn kuma_times(
    expected: TokenKind,
    registered: &kuma::RegisteredClaims,
    now: OffsetDateTime,
) -> Result<(i64, i64, String), TokenError> {
    let malformed = |reason| TokenError::Malformed { expected, reason };
    let at = |secs: f64| {
        if !secs.is_finite() {
            return Err(malformed("its times are out of range"));
        }
        #[allow(clippy::cast_possible_truncation)]
        let secs = secs.floor() as i64;
        OffsetDateTime::from_unix_timestamp(secs)
            .map(|t| (secs, t))
            .map_err(|_| malformed("its times are out of range"))
    };
    // No `exp`: Kuma's tokens then never expire; ours need an expiry, so: the end of 9999.
    let exp = match registered.exp {
        Some(e) => {
            let (secs, expires) = at(e)?;
            if now >= expires {
                return Err(TokenError::Expired {
                    expected,
                    at: expires,
                });
            }
            secs
        }
        None => 253_402_300_799,
    };
    if let Some(n) = registered.nbf {
        let (_, from) = at(n)?;
        if from > now + CLOCK_SKEW {
            return Err(TokenError::NotYetValid { expected, from });
        }
    }
    let iat = match registered.iat.or(registered.nbf) {
        Some(i) => at(i)?.0,
        None => now.unix_timestamp(),
    };
    let jti = registered
        .jti
        .clone()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| malformed("it has no token id (jti)"))?;
    Ok((iat, exp, jti))
}

/// Signature, header and key checks; returns the decoded claims by format.
fn verify(
    token: &str,
    keys: &[PublicKey],
    expected: TokenKind,
    kuma_key: &KumaKeyOf<'_>,
) -> Result<Verified, TokenError> {
    let malformed = |reason| TokenError::Malformed { expected, reason };
    let token = token.trim();
    if token.is_empty() {
        return Err(malformed("it is empty"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("it is too long"));
    }
    let [header_b64, _, sig_b64] = token.split('.').collect::<Vec<_>>()[..] else {
        return Err(malformed(
            "it is not three base64url parts separated by dots",
        ));
    };
    let not_ours = "its algorithm is neither EdDSA (Mosaic's tokens) nor RS256 (Kuma's)";
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::Base64(_) => malformed("its header is not base64url"),
        // jsonwebtoken knows no `none`: tell an unknown algorithm from a header that is not one.
        _ => match B64
            .decode(header_b64)
            .map(|h| serde_json::from_slice::<Header>(&h))
        {
            Ok(Ok(header)) if header.alg != ALGORITHM && header.alg != KUMA_ALGORITHM => {
                malformed(not_ours)
            }
            _ => malformed("its header is not JWT JSON"),
        },
    })?;
    let alg = match header.alg {
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        Algorithm::RS256 => KeyAlgorithm::Rs256,
        _ => return Err(malformed(not_ours)),
    };
    if header.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(malformed("its type is not JWT"));
    }
    let key = match alg {
        KeyAlgorithm::EdDSA => {
            let kid = header
                .kid
                .ok_or_else(|| malformed("its header names no key id"))?;
            keys.iter()
                .find(|k| k.alg == alg && k.kid == kid)
                .ok_or_else(|| TokenError::UnknownKey {
                    expected,
                    kid: sanitize_kid(&kid),
                })?
        }
        KeyAlgorithm::Rs256 => {
            let kid = kuma::canonical_kid(header.kid.as_deref()).ok_or_else(|| {
                malformed("its key id is not a number (Kuma's are \"1\", \"2\", ...)")
            })?;
            keys.iter()
                .find(|k| k.alg == alg && k.kid == kid)
                .ok_or_else(|| TokenError::UnknownKumaKey {
                    expected,
                    import: kuma_key.import_hint(&kid),
                    kid: kid.clone(),
                })?
        }
    };
    if B64.decode(sig_b64).is_err() {
        return Err(malformed("its signature is not base64url"));
    }
    // Only the signature and the JWS rules: claims and times are ours, checked against `now`.
    let (algorithm, decoding) = match alg {
        KeyAlgorithm::EdDSA => (Algorithm::EdDSA, DecodingKey::from_ed_der(&key.bytes)),
        KeyAlgorithm::Rs256 => (Algorithm::RS256, DecodingKey::from_rsa_der(&key.bytes)),
    };
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    ring_provider::install();
    let value: serde_json::Value = jsonwebtoken::decode(token, &decoding, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => match alg {
                KeyAlgorithm::EdDSA => TokenError::BadSignature { expected },
                KeyAlgorithm::Rs256 => TokenError::KumaBadSignature {
                    expected,
                    kid: key.kid.clone(),
                    import: kuma_key.import_hint(&key.kid),
                },
            },
            ErrorKind::Base64(_) => malformed("its claims are not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => malformed("its claims are not JSON"),
            _ => malformed("its header asks for a JWS feature this control plane does not support"),
        })?
        .claims;
    Ok(match alg {
        KeyAlgorithm::EdDSA => Verified::Mosaic(value),
        KeyAlgorithm::Rs256 => Verified::Kuma(value),
    })
}

fn check_times(
    expected: TokenKind,
    iat: i64,
    exp: i64,
    now: OffsetDateTime,
) -> Result<(), TokenError> {
    let at = |secs| {
        OffsetDateTime::from_unix_timestamp(secs).map_err(|_| TokenError::Malformed {
            expected,
            reason: "its times are out of range",
        })
    };
    let (issued, expires) = (at(iat)?, at(exp)?);
    if now >= expires {
        return Err(TokenError::Expired {
            expected,
            at: expires,
        });
    }
    if issued > now + CLOCK_SKEW {
        return Err(TokenError::NotYetValid {
            expected,
            from: issued,
        });
    }
    Ok(())
}

/// A key id fit for an error message: short and plain, or a placeholder.
fn sanitize_kid(kid: &str) -> String {
    if !kid.is_empty()
        && kid.len() <= 32
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        kid.to_string()
    } else {
        "(unprintable)".to_string()
    }
}

mod b64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STD.decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("public key is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    const DAY: Duration = Duration::from_secs(86_400);

    fn zone_token(key: &SigningKey, zone: &str) -> String {
        key.sign_zone_token(&ZoneClaims::new(zone, now(), DAY))
            .unwrap()
            .into_inner()
    }

    fn dp_claims(mesh: &str) -> DataplaneClaims {
        let tags = BTreeMap::from([("kuma.io/service".to_string(), vec!["backend".to_string()])]);
        DataplaneClaims::new(mesh, "backend-1", tags, now(), DAY)
    }

    /// Replaces one part of a token.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    fn assert_clean(err: &TokenError, token: &str) {
        let text = format!("{err} {err:?}");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "error leaks the token: {text}");
        }
    }

    #[test]
    fn zone_round_trip() {
        let key = SigningKey::generate().unwrap();
        let claims = ZoneClaims::new("east", now(), DAY);
        let token = key.sign_zone_token(&claims).unwrap();
        assert_eq!(format!("{token:?}"), "<redacted>");
        let got = verify_zone_token(token.expose(), &[key.public_key().clone()], now()).unwrap();
        assert_eq!(got, claims);
        assert_eq!(got.exp - got.iat, 86_400);
        assert_eq!(got.jti.len(), 32);
        // A trailing newline (token files) is fine.
        let with_newline = format!("{}\n", token.expose());
        assert!(verify_zone_token(&with_newline, &[key.public_key().clone()], now()).is_ok());
    }

    #[test]
    fn dataplane_round_trip_and_key_reload() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8().expose()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(key.kid().len(), 16);
        assert!(!format!("{key:?}").contains("pkcs8"));
        let claims = dp_claims("default");
        let token = again.sign_dataplane_token(&claims).unwrap();
        let got = verify_dataplane_token(
            token.expose(),
            &[key.public_key().clone()],
            "default",
            now(),
        )
        .unwrap();
        assert_eq!(got, claims);
        assert_eq!(
            SigningKey::from_pkcs8(b"not a key").unwrap_err(),
            KeyError::InvalidPkcs8
        );
    }

    #[test]
    fn public_keys_serialize_as_base64() {
        let key = SigningKey::generate().unwrap();
        let json = serde_json::to_value(key.public_key()).unwrap();
        assert_eq!(json["kid"], key.kid());
        assert!(json["bytes"].is_string());
        let back: PublicKey = serde_json::from_value(json).unwrap();
        assert_eq!(&back, key.public_key());
    }

    #[test]
    fn expired() {
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        let later = now() + DAY;
        let err = verify_zone_token(&token, &[key.public_key().clone()], later).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expected: TokenKind::Zone,
                at: later
            }
        );
        assert!(
            err.to_string().contains("mosaicctl generate zone-token"),
            "{err}"
        );
        assert_clean(&err, &token);
        // One second before expiry it still verifies.
        let just_before = later - Duration::from_secs(1);
        assert!(verify_zone_token(&token, &[key.public_key().clone()], just_before).is_ok());
    }

    #[test]
    fn the_signing_key_a_token_names() {
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        assert_eq!(
            signing_key_of(&token),
            Some((KeyAlgorithm::EdDSA, key.kid().to_string()))
        );
        let kuma = with_part(&token, 0, &B64.encode(r#"{"alg":"RS256","kid":"+2"}"#));
        assert_eq!(
            signing_key_of(&kuma),
            Some((KeyAlgorithm::Rs256, "2".to_string()))
        );
        assert_eq!(signing_key_of("garbage"), None);
    }

    #[test]
    fn time_left_until_expiry() {
        let claims = ZoneClaims::new("east", now(), DAY);
        assert_eq!(time_left(claims.exp, now()), DAY);
        let later = now() + Duration::from_millis(250);
        assert_eq!(
            time_left(claims.exp, later),
            DAY - Duration::from_millis(250)
        );
        assert_eq!(time_left(claims.exp, now() + DAY), Duration::ZERO);
        assert_eq!(time_left(claims.exp, now() + DAY * 2), Duration::ZERO);
        // Kuma's tokens without `exp` (read as the end of 9999) are as good as never expiring.
        assert!(time_left(253_402_300_799, now()) > Duration::from_secs(7000 * 8760 * 3600));
        assert_eq!(expires_at(claims.exp), now() + DAY);
        assert_eq!(expires_at(i64::MAX).year(), 9999);
    }

    #[test]
    fn not_yet_valid_beyond_clock_skew() {
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        let keys = [key.public_key().clone()];
        assert!(verify_zone_token(&token, &keys, now() - CLOCK_SKEW).is_ok());
        let err = verify_zone_token(&token, &keys, now() - CLOCK_SKEW - Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, TokenError::NotYetValid { .. }), "{err:?}");
    }

    #[test]
    fn signature_by_another_key_with_the_same_kid() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let token = zone_token(&other, "east");
        // The verifier knows a key under the signer's kid, but it is not the signer's key.
        let impostor = PublicKey {
            kid: other.kid().to_string(),
            alg: KeyAlgorithm::EdDSA,
            bytes: key.public_key().bytes.clone(),
        };
        let err = verify_zone_token(&token, &[impostor], now()).unwrap_err();
        assert_eq!(
            err,
            TokenError::BadSignature {
                expected: TokenKind::Zone
            }
        );
        assert_clean(&err, &token);
    }

    #[test]
    fn unknown_kid() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let token = zone_token(&other, "east");
        let err = verify_zone_token(&token, &[key.public_key().clone()], now()).unwrap_err();
        assert_eq!(
            err,
            TokenError::UnknownKey {
                expected: TokenKind::Zone,
                kid: other.kid().to_string()
            }
        );
        assert!(err.to_string().contains("generate a new token"), "{err}");
    }

    #[test]
    fn tampered_payload_keeps_signature() {
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        let claims_b64 = token.split('.').nth(1).unwrap();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(claims_b64).unwrap()).unwrap();
        claims["zone"] = "west".into();
        let forged = with_part(&token, 1, &B64.encode(serde_json::to_vec(&claims).unwrap()));
        let err = verify_zone_token(&forged, &[key.public_key().clone()], now()).unwrap_err();
        assert_eq!(
            err,
            TokenError::BadSignature {
                expected: TokenKind::Zone
            }
        );
        assert_clean(&err, &forged);
        // Flipping one signature byte fails too.
        let sig = B64.decode(token.split('.').nth(2).unwrap()).unwrap();
        let mut bad = sig.clone();
        bad[0] ^= 1;
        let forged = with_part(&token, 2, &B64.encode(bad));
        assert!(matches!(
            verify_zone_token(&forged, &[key.public_key().clone()], now()),
            Err(TokenError::BadSignature { .. })
        ));
    }

    #[test]
    fn alg_none_and_others_are_refused() {
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        for alg in ["none", "HS256", "eddsa"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, key.kid());
            let forged = with_part(&token, 0, &B64.encode(header));
            let err = verify_zone_token(&forged, &[key.public_key().clone()], now()).unwrap_err();
            assert_eq!(
                err,
                TokenError::Malformed {
                    expected: TokenKind::Zone,
                    reason: "its algorithm is neither EdDSA (Mosaic's tokens) nor RS256 (Kuma's)"
                },
                "{alg}"
            );
            // Unsigned form `header.claims.` too.
            let unsigned = with_part(&forged, 2, "");
            assert!(matches!(
                verify_zone_token(&unsigned, &[key.public_key().clone()], now()),
                Err(TokenError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn rs256_headers_never_reach_an_ed25519_key() {
        // RS256 is Kuma's format and is checked against RS256 keys only: an Ed25519 key is never
        // used for it, whatever kid the header names.
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, key.kid());
        let forged = with_part(&token, 0, &B64.encode(header));
        let err = verify_zone_token(&forged, &[key.public_key().clone()], now()).unwrap_err();
        assert!(
            matches!(&err, TokenError::Malformed { reason, .. } if reason.contains("not a number")),
            "{err:?}"
        );
        let mut same_kid = key.public_key().clone();
        same_kid.kid = "1".into();
        let forged = with_part(&token, 0, &B64.encode(r#"{"alg":"RS256","kid":"1"}"#));
        let err = verify_zone_token(&forged, &[same_kid], now()).unwrap_err();
        assert!(
            matches!(&err, TokenError::UnknownKumaKey { kid, .. } if kid == "1"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("GlobalSecret \"zone-token-signing-key-1\""),
            "{err}"
        );
    }

    #[test]
    fn unsupported_jws_extensions_are_refused() {
        // Signed by our key, but asking for JWS extensions no verifier here implements.
        let key = SigningKey::generate().unwrap();
        let token = zone_token(&key, "east");
        let claims_b64 = token.split('.').nth(1).unwrap();
        for extra in [r#""crit":["exp"],"exp":1"#, r#""crit":["b64"],"b64":false"#] {
            let header = format!(r#"{{"alg":"EdDSA","kid":"{}",{extra}}}"#, key.kid());
            let signing_input = format!("{}.{claims_b64}", B64.encode(header));
            let sig = key.pair.sign(signing_input.as_bytes());
            let forged = format!("{signing_input}.{}", B64.encode(sig.as_ref()));
            let err = verify_zone_token(&forged, &[key.public_key().clone()], now()).unwrap_err();
            assert!(
                matches!(&err, TokenError::Malformed { reason, .. } if reason.contains("JWS feature")),
                "{extra}: {err:?}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let key = SigningKey::generate().unwrap();
        let keys = [key.public_key().clone()];
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        for garbage in [
            "",
            "   ",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.???.***",
            "e30.e30.e30",
            long.as_str(),
        ] {
            let err = verify_zone_token(garbage, &keys, now()).unwrap_err();
            assert!(
                matches!(err, TokenError::Malformed { .. }),
                "{garbage:?}: {err:?}"
            );
            assert!(err.to_string().contains("malformed"));
        }
        // Valid header but claims that are not JSON (signed, so only the claims are wrong).
        let header = B64.encode(format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key.kid()));
        let claims = B64.encode("not json");
        let signing_input = format!("{header}.{claims}");
        let sig = key.pair.sign(signing_input.as_bytes());
        let token = format!("{signing_input}.{}", B64.encode(sig.as_ref()));
        assert!(matches!(
            verify_zone_token(&token, &keys, now()),
            Err(TokenError::Malformed {
                reason: "its claims are not JSON",
                ..
            })
        ));
    }

    #[test]
    fn wrong_kind_either_way() {
        let key = SigningKey::generate().unwrap();
        let keys = [key.public_key().clone()];
        let zone = zone_token(&key, "east");
        let err = verify_dataplane_token(&zone, &keys, "default", now()).unwrap_err();
        assert_eq!(
            err,
            TokenError::WrongKind {
                expected: TokenKind::Dataplane,
                found: Some(TokenKind::Zone)
            }
        );
        assert!(
            err.to_string().contains("generate dataplane-token"),
            "{err}"
        );
        let dp = key.sign_dataplane_token(&dp_claims("default")).unwrap();
        assert!(matches!(
            verify_zone_token(dp.expose(), &keys, now()),
            Err(TokenError::WrongKind {
                expected: TokenKind::Zone,
                found: Some(TokenKind::Dataplane)
            })
        ));
    }

    #[test]
    fn wrong_mesh() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign_dataplane_token(&dp_claims("default")).unwrap();
        let err =
            verify_dataplane_token(token.expose(), &[key.public_key().clone()], "other", now())
                .unwrap_err();
        assert_eq!(
            err,
            TokenError::WrongMesh {
                expected_mesh: "other".into(),
                token_mesh: "default".into()
            }
        );
        assert!(err.to_string().contains("--mesh other"), "{err}");
        assert_clean(&err, token.expose());
    }

    #[test]
    fn requests_use_kuma_field_names() {
        let req: DataplaneTokenRequest = serde_json::from_str(
            r#"{"mesh":"default","name":"backend-1","tags":{"kuma.io/service":["backend"]},"validFor":"24h"}"#,
        )
        .unwrap();
        assert_eq!(
            req.valid_for.map(|d| d.as_duration()),
            Some(DEFAULT_DATAPLANE_TOKEN_VALIDITY)
        );
        let req: ZoneTokenRequest = serde_json::from_str(r#"{"zone":"east"}"#).unwrap();
        assert_eq!(req.valid_for, None);
        assert!(serde_json::from_str::<ZoneTokenRequest>(r#"{"zone":"e","bogus":1}"#).is_err());
        // What kumactl 2.14 sends: every field, empty strings and Go durations.
        let req: DataplaneTokenRequest = serde_json::from_str(
            r#"{"name":"","mesh":"default","tags":null,"type":"","workload":"","validFor":"24h0m0s"}"#,
        )
        .unwrap();
        assert_eq!((req.name.as_str(), req.tags.len()), ("", 0));
        assert_eq!(
            req.valid_for.map(|d| d.as_duration()),
            Some(DEFAULT_DATAPLANE_TOKEN_VALIDITY)
        );
        let req: DataplaneTokenRequest = serde_json::from_str(
            r#"{"name":"web-1","mesh":"default","tags":{"kuma.io/service":["web"]},"type":"dataplane","workload":"web","validFor":"0s"}"#,
        )
        .unwrap();
        assert_eq!(
            (req.proxy_type.as_str(), req.workload.as_str()),
            ("dataplane", "web")
        );
        let req: ZoneTokenRequest = serde_json::from_str(
            r#"{"zone":"east","scope":["cp","ingress"],"validFor":"720h0m0s"}"#,
        )
        .unwrap();
        assert_eq!(
            req.scope,
            Some(vec!["cp".to_string(), "ingress".to_string()])
        );
    }
}
