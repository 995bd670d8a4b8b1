//! Token issuance: zone tokens (KDS) and dataplane tokens (SDS), signed with Ed25519 keys kept in
//! the replicated store.
//!
//! Each purpose has signing keys with serials, stored as internal records (PKCS#8):
//! `tokens/signing-key/zone` and `mesh/<mesh>/tokens/signing-key/dataplane` are key 1, rotation
//! adds `…-2`, `…-3` ([`signing_keys`]: the newest signs, the others verify until retired). The
//! first replica that needs a key generates key 1 and proposes it with `if_absent: true`; the
//! command's result carries the value that won, so every replica signs with the same key even
//! when several race. Only public keys leave the global ([`Tokens::public_keys`]); zones verify
//! dataplane tokens with them.
//!
//! Module map:
//! - [`signing_keys`]: several keys per purpose: records by serial, rotate, retire, list.
//!
//! Validity: a request may name `validFor`; without it (or with `0s`, what kumactl sends when
//! `--valid-for` is not given) zone tokens last [`DEFAULT_ZONE_TOKEN_VALIDITY`] (8760h) and
//! dataplane tokens [`DEFAULT_DATAPLANE_TOKEN_VALIDITY`] (24h); at most [`MAX_TOKEN_VALIDITY`].
//!
//! Kuma's signing keys, imported by applying the secrets Kuma keeps them in (the Secret
//! `dataplane-token-signing-key-<mesh>-N` of a mesh, or a GlobalSecret of that name; the
//! GlobalSecret `zone-token-signing-key-N`), verify the RS256 tokens Kuma issued: their public
//! keys (kid `N`) are among [`Tokens::public_keys`], so zones receive them with Mosaic's own.
//! New tokens are always Mosaic's.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use mosaic_core::{
    Sensitive,
    api::ApiError,
    resource::{Resource, ResourceType, Spec, validate_name},
    token::{
        DEFAULT_DATAPLANE_TOKEN_VALIDITY, DEFAULT_ZONE_TOKEN_VALIDITY, DataplaneClaims,
        DataplaneTokenRequest, FULL_SCOPE, KeyError, MAX_TOKEN_VALIDITY, ProxyType, PublicKey,
        SigningKey, TokenError, ZoneClaims, ZoneTokenRequest,
        kuma::{self, KumaSigningKey},
        verify_zone_token,
    },
    validate::Violation,
};
use time::OffsetDateTime;

use crate::store::{Command, CommandResult, ResourceKey, ResourceStore, StoreError};

pub mod signing_keys;

pub use signing_keys::{KeyState, SigningKeyInfo, record_of};

/// Internal record of the zone-token signing key.
pub const ZONE_KEY_RECORD: &str = "tokens/signing-key/zone";

/// Internal record of a mesh's dataplane-token signing key, under the mesh's prefix
/// (`mesh/<mesh>/tokens/signing-key/dataplane`), so deleting the Mesh deletes its key and a
/// re-created Mesh does not accept the old Mesh's tokens.
pub const DATAPLANE_KEY_RECORD_SUFFIX: &str = "tokens/signing-key/dataplane";

/// A parsed signing key and the record bytes it was parsed from.
type CachedKey = (Vec<u8>, Arc<SigningKey>);

/// Which signing key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Zone tokens.
    Zone,
    /// Dataplane tokens of one mesh.
    Dataplane {
        /// The mesh.
        mesh: String,
    },
}

/// Issues and verifies tokens with keys from the store.
pub struct Tokens {
    store: Arc<dyn ResourceStore>,
    /// Parsed keys by record, with the record bytes they came from: a record that changed (a Mesh
    /// deleted and re-created gets a new key) is parsed again, never served stale.
    keys: Mutex<HashMap<String, CachedKey>>,
    /// Public keys of imported Kuma signing keys by secret (`<type>/<mesh>/<name>`), with the
    /// secret's `data` they were derived from.
    kuma_keys: Mutex<HashMap<String, (String, PublicKey)>>,
}

/// What a dataplane token binds (Kuma's `DataplaneIdentity`): empty name and tags bind none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataplaneIdentity {
    /// The mesh (must exist).
    pub mesh: String,
    /// The Dataplane's name; empty: any data plane of the mesh.
    pub name: String,
    /// Tags the Dataplane must have; empty: none checked.
    pub tags: BTreeMap<String, Vec<String>>,
    /// Which kind of proxy may use it; none: not bound.
    pub proxy_type: Option<ProxyType>,
    /// The `kuma.io/workload` label the Dataplane must have; empty: none.
    pub workload: String,
}

/// Why a token was not issued (or keys could not be read).
#[derive(Debug, thiserror::Error)]
pub enum TokenIssueError {
    /// A request field is invalid (400).
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field (`zone`, `mesh`, `name`, `tags`, `validFor`).
        field: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The mesh does not exist (404).
    #[error(
        "mesh {mesh:?} does not exist: create it first (mosaicctl apply -f mesh.yaml) or name another with --mesh"
    )]
    MeshNotFound {
        /// The mesh.
        mesh: String,
    },
    /// The store failed (503 when no leader is available).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key could not be generated, read or used (500).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No signing key of that serial (404).
    #[error(
        "{purpose} have no signing key {serial} (keys not retired: {have}): list them with mosaicctl get signing-keys"
    )]
    KeyNotFound {
        /// What the keys sign.
        purpose: String,
        /// The serial asked for.
        serial: u32,
        /// The serials there are.
        have: String,
    },
    /// The key is retired already (404: there is no such key to retire).
    #[error("signing key {serial} (kid {kid}) of {purpose} is retired already")]
    AlreadyRetired {
        /// What the keys sign.
        purpose: String,
        /// The serial.
        serial: u32,
        /// Its key id.
        kid: String,
    },
    /// The newest key signs new tokens and cannot be retired (409).
    #[error(
        "signing key {serial} of {purpose} is the newest{}: it signs every new token, so it cannot be retired; rotate first (mosaicctl rotate signing-key {ctl}), give the zones and data planes tokens signed by the new key, then retire key {serial}",
        if *only { " and only one" } else { "" }
    )]
    RetireNewest {
        /// What the keys sign.
        purpose: String,
        /// The serial.
        serial: u32,
        /// Whether it is the only key not retired.
        only: bool,
        /// The `mosaicctl rotate signing-key` arguments.
        ctl: String,
    },
    /// The store answered a key proposal with something other than the stored key (500).
    #[error("storing the signing key {record:?} failed: {result}; retry")]
    Unexpected {
        /// The record.
        record: String,
        /// What the store answered.
        result: String,
    },
}

/// Why a token did not verify on the global.
#[derive(Debug, thiserror::Error)]
pub enum TokenVerifyError {
    /// The token itself was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The keys could not be read.
    #[error(transparent)]
    Keys(#[from] TokenIssueError),
}

// === impl KeyPurpose ===

impl KeyPurpose {
    /// The internal record holding this purpose's key.
    pub fn record(&self) -> String {
        match self {
            KeyPurpose::Zone => ZONE_KEY_RECORD.to_string(),
            KeyPurpose::Dataplane { mesh } => {
                format!(
                    "{}{DATAPLANE_KEY_RECORD_SUFFIX}",
                    crate::store::mesh_internal_prefix(mesh)
                )
            }
        }
    }
}

/// The mesh a dataplane signing-key record belongs to (`mesh/<mesh>/tokens/signing-key/dataplane`,
/// or `…-N` for key N).
pub fn dataplane_key_mesh(record: &str) -> Option<&str> {
    let rest = record.strip_prefix("mesh/")?;
    let (mesh, suffix) = rest.split_once('/')?;
    signing_keys::serial_of(suffix, DATAPLANE_KEY_RECORD_SUFFIX).map(|_| mesh)
}

/// Whether `record` holds a zone-token signing key (`tokens/signing-key/zone`, `…-N`).
pub fn is_zone_key_record(record: &str) -> bool {
    signing_keys::serial_of(record, ZONE_KEY_RECORD).is_some()
}

// === impl TokenIssueError ===

impl TokenIssueError {
    /// The HTTP status the API should answer with.
    pub fn status(&self) -> u16 {
        match self {
            TokenIssueError::Invalid { .. } => 400,
            TokenIssueError::MeshNotFound { .. }
            | TokenIssueError::KeyNotFound { .. }
            | TokenIssueError::AlreadyRetired { .. } => 404,
            TokenIssueError::RetireNewest { .. } => 409,
            TokenIssueError::Store(StoreError::Unavailable(_)) => 503,
            TokenIssueError::Store(_)
            | TokenIssueError::Key(_)
            | TokenIssueError::Unexpected { .. } => 500,
        }
    }

    /// Kuma's error body for this error.
    pub fn to_api_error(&self) -> ApiError {
        let status = self.status();
        let title = match status {
            400 => "Bad Request",
            404 => "Not Found",
            409 => "Conflict",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        let err = ApiError::new(status, title, self.to_string());
        match self {
            TokenIssueError::Invalid { field, reason } => {
                err.with_violations(&[Violation::new(*field, reason.clone())])
            }
            TokenIssueError::MeshNotFound { mesh } => err.with_violations(&[Violation::new(
                "mesh",
                format!("mesh {mesh:?} does not exist"),
            )]),
            _ => err,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TokenIssueError {
    TokenIssueError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check_validity(valid_for: Duration) -> Result<(), TokenIssueError> {
    if valid_for < Duration::from_secs(1) {
        return Err(invalid(
            "validFor",
            "must be at least 1s: write e.g. 24h or 720h",
        ));
    }
    if valid_for > MAX_TOKEN_VALIDITY {
        return Err(invalid(
            "validFor",
            "must be at most 87600h (10y): issue a shorter-lived token and rotate it",
        ));
    }
    Ok(())
}

/// Tags are optional (Kuma: a token without tags checks none); those given need values.
fn check_tags(tags: &BTreeMap<String, Vec<String>>) -> Result<(), TokenIssueError> {
    use mosaic_core::resource::limits::{MAX_TAG_VALUES, MAX_TAGS};
    if tags.len() > MAX_TAGS {
        return Err(invalid(
            "tags",
            format!(
                "at most {MAX_TAGS} tags per token (got {}): name only the tags the data plane needs",
                tags.len()
            ),
        ));
    }
    if let Some((k, values)) = tags.iter().find(|(_, v)| v.len() > MAX_TAG_VALUES) {
        return Err(invalid(
            "tags",
            format!(
                "at most {MAX_TAG_VALUES} values per tag (tag {k:?} has {}): split the data planes over several tokens",
                values.len()
            ),
        ));
    }
    for (k, values) in tags {
        if k.trim().is_empty() {
            return Err(invalid("tags", "tag names must not be empty"));
        }
        if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
            return Err(invalid(
                "tags",
                format!("tag {k:?} needs non-empty values: pass --tag {k}=VALUE"),
            ));
        }
    }
    Ok(())
}

/// The scopes of a zone-token request: Kuma's names, each once, at least one; none given: all.
fn check_scope(scope: Option<&[String]>) -> Result<Vec<String>, TokenIssueError> {
    let Some(scope) = scope else {
        return Ok(FULL_SCOPE.iter().map(|s| s.to_string()).collect());
    };
    if scope.is_empty() {
        return Err(invalid(
            "scope",
            format!(
                "cannot be empty: name one or more of {} (or leave scope out for all of them)",
                FULL_SCOPE.join(", ")
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for s in scope {
        let s = s.trim();
        if !FULL_SCOPE.contains(&s) {
            return Err(invalid(
                "scope",
                format!(
                    "unknown scope {s:?}: use {} (cp: a zone control plane, which the global's KDS requires)",
                    FULL_SCOPE.join(", ")
                ),
            ));
        }
        if !out.iter().any(|have| have == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// A request's `validFor`, or `default` when it names none or zero (kumactl's `0s`).
fn requested_validity(
    valid_for: Option<&mosaic_core::duration::KumaDuration>,
    default: Duration,
) -> Duration {
    match valid_for.map(|d| d.as_duration()) {
        Some(d) if !d.is_zero() => d,
        _ => default,
    }
}

// === impl Tokens ===

impl Tokens {
    /// Issues tokens with keys kept in `store`.
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self {
            store,
            keys: Mutex::new(HashMap::new()),
            kuma_keys: Mutex::new(HashMap::new()),
        }
    }

    /// A token for zone `zone` (a DNS label) with every scope, valid for `valid_for` from now.
    pub async fn issue_zone_token(
        &self,
        zone: &str,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        self.issue_scoped_zone_token(zone, None, valid_for).await
    }

    /// A token for zone `zone` that may authenticate `scope` (none: every scope).
    pub async fn issue_scoped_zone_token(
        &self,
        zone: &str,
        scope: Option<&[String]>,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        validate_name(ResourceType::Zone, zone).map_err(|r| invalid("zone", r))?;
        let scope = check_scope(scope)?;
        check_validity(valid_for)?;
        let key = self.signing_key(&KeyPurpose::Zone).await?;
        let claims = ZoneClaims::new(zone, OffsetDateTime::now_utc(), valid_for).with_scope(scope);
        Ok(key.sign_zone_token(&claims)?)
    }

    /// A token for data plane `name` in `mesh` (which must exist) whose Dataplane must have
    /// `tags`, valid for `valid_for` from now.
    pub async fn issue_dataplane_token(
        &self,
        mesh: &str,
        name: &str,
        tags: BTreeMap<String, Vec<String>>,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let identity = DataplaneIdentity {
            mesh: mesh.to_string(),
            name: name.to_string(),
            tags,
            ..DataplaneIdentity::default()
        };
        self.issue_dataplane(&identity, valid_for).await
    }

    /// A dataplane token binding `identity`, valid for `valid_for` from now.
    pub async fn issue_dataplane(
        &self,
        identity: &DataplaneIdentity,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let mesh = identity.mesh.as_str();
        validate_name(ResourceType::Mesh, mesh).map_err(|r| invalid("mesh", r))?;
        if !identity.name.is_empty() {
            validate_name(ResourceType::Dataplane, &identity.name)
                .map_err(|r| invalid("name", r))?;
        }
        check_tags(&identity.tags)?;
        if identity.workload.trim() != identity.workload || identity.workload.len() > 253 {
            return Err(invalid(
                "workload",
                "must be the Dataplane's kuma.io/workload label value (no surrounding spaces, at most 253 characters)",
            ));
        }
        check_validity(valid_for)?;
        self.store.read_barrier().await?;
        if self.store.get(&ResourceKey::mesh(mesh))?.is_none() {
            return Err(TokenIssueError::MeshNotFound {
                mesh: mesh.to_string(),
            });
        }
        let key = self
            .signing_key(&KeyPurpose::Dataplane {
                mesh: mesh.to_string(),
            })
            .await?;
        let mut claims = DataplaneClaims::new(
            mesh,
            identity.name.clone(),
            identity.tags.clone(),
            OffsetDateTime::now_utc(),
            valid_for,
        );
        claims.proxy_type = identity.proxy_type;
        claims.workload = identity.workload.clone();
        Ok(key.sign_dataplane_token(&claims)?)
    }

    /// `POST /tokens/zone`: applies the default validity.
    pub async fn issue_for_zone_request(
        &self,
        req: &ZoneTokenRequest,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let valid_for = requested_validity(req.valid_for.as_ref(), DEFAULT_ZONE_TOKEN_VALIDITY);
        self.issue_scoped_zone_token(&req.zone, req.scope.as_deref(), valid_for)
            .await
    }

    /// `POST /tokens/dataplane`: applies the default validity.
    pub async fn issue_for_dataplane_request(
        &self,
        req: &DataplaneTokenRequest,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let valid_for =
            requested_validity(req.valid_for.as_ref(), DEFAULT_DATAPLANE_TOKEN_VALIDITY);
        let proxy_type = match req.proxy_type.trim() {
            "" => None,
            t => Some(ProxyType::parse(t).ok_or_else(|| {
                invalid(
                    "type",
                    format!(
                        "unknown type {t:?}: use dataplane, ingress or egress (or leave it out)"
                    ),
                )
            })?),
        };
        let identity = DataplaneIdentity {
            mesh: req.mesh.clone(),
            name: req.name.clone(),
            tags: req.tags.clone(),
            proxy_type,
            workload: req.workload.clone(),
        };
        self.issue_dataplane(&identity, valid_for).await
    }

    /// The public keys that verify tokens of `purpose`: Mosaic's (once a token was issued) and
    /// those of the Kuma signing keys imported for it. A Kuma key secret that cannot be read is
    /// left out with a warning naming it (its tokens are refused as signed by an unknown key).
    pub fn public_keys(&self, purpose: &KeyPurpose) -> Result<Vec<PublicKey>, TokenIssueError> {
        let mut keys = self.active_public_keys(purpose)?;
        keys.extend(self.kuma_public_keys(purpose)?);
        Ok(keys)
    }

    /// The imported Kuma keys of `purpose`, in a stable order (the mesh's Secrets first, then
    /// GlobalSecrets; by serial).
    fn kuma_public_keys(&self, purpose: &KeyPurpose) -> Result<Vec<PublicKey>, TokenIssueError> {
        let mut found: Vec<(u8, u32, Resource)> = Vec::new();
        match purpose {
            KeyPurpose::Zone => {
                for r in self.store.list(ResourceType::GlobalSecret, None)? {
                    if let Some(n) = kuma::zone_signing_key_serial(&r.meta.name) {
                        found.push((0, n, r));
                    }
                }
            }
            KeyPurpose::Dataplane { mesh } => {
                for r in self.store.list(ResourceType::Secret, Some(mesh))? {
                    if let Some(n) = kuma::dataplane_signing_key_serial(&r.meta.name, mesh) {
                        found.push((0, n, r));
                    }
                }
                for r in self.store.list(ResourceType::GlobalSecret, None)? {
                    match kuma::dataplane_signing_key_serial(&r.meta.name, mesh) {
                        Some(n) if n > 0 => found.push((1, n, r)),
                        _ => {}
                    }
                }
            }
        }
        found.sort_by_key(|(order, n, _)| (*order, *n));
        Ok(found
            .into_iter()
            .filter_map(|(_, n, r)| self.kuma_key(n, &r))
            .collect())
    }

    /// The public key of Kuma signing key secret `r` with serial `serial`, from the cache when
    /// its data is unchanged.
    fn kuma_key(&self, serial: u32, r: &Resource) -> Option<PublicKey> {
        let (Spec::Secret(spec) | Spec::GlobalSecret(spec)) = &r.spec else {
            return None;
        };
        let id = format!(
            "{}/{}/{}",
            r.resource_type().as_str(),
            r.meta.mesh.as_deref().unwrap_or_default(),
            r.meta.name
        );
        let mut cache = self
            .kuma_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((data, key)) = cache.get(&id)
            && *data == spec.data
        {
            return Some(key.clone());
        }
        let parsed = spec.value().map_err(|e| e.to_string()).and_then(|value| {
            KumaSigningKey::from_secret_value(serial, value.expose()).map_err(|e| e.to_string())
        });
        match parsed {
            Ok(key) => {
                let public = key.public_key().clone();
                cache.insert(id, (spec.data.clone(), public.clone()));
                Some(public)
            }
            Err(reason) => {
                tracing::warn!(
                    secret = %id,
                    "the imported Kuma signing key cannot be read, so tokens it signed are refused: {reason}"
                );
                None
            }
        }
    }

    /// Verifies a zone token presented on a KDS connection, at `now`.
    pub fn verify_zone_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<ZoneClaims, TokenVerifyError> {
        let keys = self.public_keys(&KeyPurpose::Zone)?;
        Ok(verify_zone_token(token, &keys, now)?)
    }

    /// The newest signing key of `purpose`, key 1 created (first writer wins) if the store has
    /// none.
    async fn signing_key(&self, purpose: &KeyPurpose) -> Result<Arc<SigningKey>, TokenIssueError> {
        let record = purpose.record();
        // Committed keys are replaced only when their Mesh is deleted (the records go with it).
        if let Some((_, key)) = self.newest_key(purpose)? {
            return Ok(key);
        }
        if self.store.internal(&record)?.is_some() {
            // Every key retired: cannot happen through `retire`, which keeps the newest.
            return Err(TokenIssueError::Unexpected {
                record,
                result: format!("every signing key of {} is retired", purpose.describe()),
            });
        }
        let fresh = SigningKey::generate()?;
        let cmd = Command::PutInternal {
            key: record.clone(),
            value: fresh.pkcs8().expose().clone(),
            if_absent: true,
        };
        match self.store.write(cmd).await? {
            CommandResult::Internal { value } => self.key_for(record, &value),
            other => Err(TokenIssueError::Unexpected {
                record,
                result: match other {
                    CommandResult::Refused(r) => format!("refused: {r:?}"),
                    _ => "an unexpected result".to_string(),
                },
            }),
        }
    }

    /// The parsed key for `record` holding `pkcs8`, from the cache when the bytes match.
    fn key_for(&self, record: String, pkcs8: &[u8]) -> Result<Arc<SigningKey>, TokenIssueError> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((bytes, key)) = keys.get(&record)
            && bytes.as_slice() == pkcs8
        {
            return Ok(key.clone());
        }
        let key = Arc::new(SigningKey::from_pkcs8(pkcs8)?);
        keys.insert(record, (pkcs8.to_vec(), key.clone()));
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_statuses() {
        assert_eq!(KeyPurpose::Zone.record(), "tokens/signing-key/zone");
        assert_eq!(
            KeyPurpose::Dataplane {
                mesh: "default".into()
            }
            .record(),
            "mesh/default/tokens/signing-key/dataplane"
        );
        let e = invalid("zone", "bad");
        assert_eq!(e.status(), 400);
        let api = e.to_api_error();
        assert_eq!(api.invalid_parameters[0].field, "zone");
        let e = TokenIssueError::MeshNotFound { mesh: "m".into() };
        assert_eq!((e.status(), e.to_api_error().status), (404, 404));
        assert_eq!(
            TokenIssueError::Store(StoreError::Unavailable("x".into())).status(),
            503
        );
    }

    #[test]
    fn dataplane_key_records() {
        assert_eq!(
            dataplane_key_mesh("mesh/default/tokens/signing-key/dataplane"),
            Some("default")
        );
        assert_eq!(
            dataplane_key_mesh("mesh/default/tokens/signing-key/dataplane-3"),
            Some("default")
        );
        assert_eq!(dataplane_key_mesh("tokens/signing-key/zone"), None);
        assert!(is_zone_key_record("tokens/signing-key/zone"));
        assert!(is_zone_key_record("tokens/signing-key/zone-2"));
        assert!(!is_zone_key_record(
            "mesh/default/tokens/signing-key/dataplane"
        ));
        assert_eq!(dataplane_key_mesh("mesh/default/other"), None);
    }

    #[test]
    fn tag_and_validity_rules() {
        let tags = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        assert!(check_tags(&tags(&[("kuma.io/service", &["web"])])).is_ok());
        // Kuma: tags are optional (a token without tags checks none).
        assert!(check_tags(&tags(&[])).is_ok());
        assert!(check_tags(&tags(&[("version", &["v1"])])).is_ok());
        assert!(check_tags(&tags(&[("kuma.io/service", &[""])])).is_err());
        assert!(check_tags(&tags(&[("kuma.io/service", &["web"]), ("v", &[])])).is_err());
        // Bounded like a Dataplane's tags: tags per token, values per tag.
        let many: Vec<String> = (0..=64).map(|i| format!("s{i}")).collect();
        let mut t = tags(&[("kuma.io/service", &["web"])]);
        t.insert("version".into(), many.clone());
        let e = check_tags(&t).unwrap_err().to_string();
        assert!(
            e.contains("at most 64 values per tag (tag \"version\" has 65)"),
            "{e}"
        );
        let mut t = tags(&[("kuma.io/service", &["web"])]);
        t.extend(many.iter().map(|k| (k.clone(), vec!["v".to_string()])));
        let e = check_tags(&t).unwrap_err().to_string();
        assert!(e.contains("at most 64 tags per token (got 66)"), "{e}");
        assert!(check_validity(Duration::from_secs(1)).is_ok());
        assert!(check_validity(Duration::from_millis(500)).is_err());
        assert!(check_validity(MAX_TOKEN_VALIDITY + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn scopes_and_validity_defaults_follow_kumactl() {
        let all: Vec<String> = FULL_SCOPE.iter().map(|s| s.to_string()).collect();
        assert_eq!(check_scope(None).unwrap(), all);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_scope(Some(&s(&["cp", "cp", "egress"]))).unwrap(),
            s(&["cp", "egress"])
        );
        let e = check_scope(Some(&[])).unwrap_err().to_string();
        assert!(e.starts_with("scope: cannot be empty"), "{e}");
        let e = check_scope(Some(&s(&["cp", "admin"]))).unwrap_err();
        assert!(
            matches!(e, TokenIssueError::Invalid { field: "scope", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("unknown scope \"admin\""), "{e}");
        // kumactl sends validFor "0s" when --valid-for is not given.
        let zero: mosaic_core::duration::KumaDuration = "0s".parse().unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(requested_validity(Some(&zero), day), day);
        assert_eq!(requested_validity(None, day), day);
        let go: mosaic_core::duration::KumaDuration = "24h0m0s".parse().unwrap();
        assert_eq!(requested_validity(Some(&go), Duration::from_secs(1)), day);
    }
}
