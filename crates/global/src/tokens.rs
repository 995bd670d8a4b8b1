//! Token issuance: zone tokens (KDS) and dataplane tokens (SDS), signed with Ed25519 keys kept in
//! the replicated store.
//!
//! Each purpose has one signing key, stored as an internal record (PKCS#8):
//! `tokens/signing-key/zone` and `mesh/<mesh>/tokens/signing-key/dataplane`. The first replica that
//! needs a key generates one and proposes it with `if_absent: true`; the command's result carries
//! the value that won, so every replica signs with the same key even when several race. Only
//! public keys leave the global ([`Tokens::public_keys`]); zones verify dataplane tokens with them.
//!
//! Validity: a request may name `validFor`; without it zone tokens last
//! [`DEFAULT_ZONE_TOKEN_VALIDITY`] (8760h) and dataplane tokens
//! [`DEFAULT_DATAPLANE_TOKEN_VALIDITY`] (24h); at most [`MAX_TOKEN_VALIDITY`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use mosaic_core::{
    Sensitive,
    api::ApiError,
    resource::{ResourceType, dataplane::SERVICE_TAG, validate_name},
    token::{
        DEFAULT_DATAPLANE_TOKEN_VALIDITY, DEFAULT_ZONE_TOKEN_VALIDITY, DataplaneClaims,
        DataplaneTokenRequest, KeyError, MAX_TOKEN_VALIDITY, PublicKey, SigningKey, TokenError,
        ZoneClaims, ZoneTokenRequest, verify_zone_token,
    },
    validate::Violation,
};
use time::OffsetDateTime;

use crate::store::{Command, CommandResult, ResourceKey, ResourceStore, StoreError};

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

/// The mesh a dataplane signing-key record belongs to (`mesh/<mesh>/tokens/signing-key/dataplane`).
pub fn dataplane_key_mesh(record: &str) -> Option<&str> {
    let rest = record.strip_prefix("mesh/")?;
    let (mesh, suffix) = rest.split_once('/')?;
    (suffix == DATAPLANE_KEY_RECORD_SUFFIX).then_some(mesh)
}

// === impl TokenIssueError ===

impl TokenIssueError {
    /// The HTTP status the API should answer with.
    pub fn status(&self) -> u16 {
        match self {
            TokenIssueError::Invalid { .. } => 400,
            TokenIssueError::MeshNotFound { .. } => 404,
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
    let service = tags.get(SERVICE_TAG).map(Vec::as_slice).unwrap_or_default();
    if service.iter().all(|v| v.trim().is_empty()) {
        return Err(invalid(
            "tags",
            format!("must include {SERVICE_TAG} with a value: pass --tag {SERVICE_TAG}=SERVICE"),
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

// === impl Tokens ===

impl Tokens {
    /// Issues tokens with keys kept in `store`.
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self {
            store,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// A token for zone `zone` (a DNS label), valid for `valid_for` from now.
    pub async fn issue_zone_token(
        &self,
        zone: &str,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        validate_name(ResourceType::Zone, zone).map_err(|r| invalid("zone", r))?;
        check_validity(valid_for)?;
        let key = self.signing_key(&KeyPurpose::Zone).await?;
        let claims = ZoneClaims::new(zone, OffsetDateTime::now_utc(), valid_for);
        Ok(key.sign_zone_token(&claims)?)
    }

    /// A token for data plane `name` in `mesh` (which must exist) that may claim `tags` (which must
    /// include `kuma.io/service`), valid for `valid_for` from now.
    pub async fn issue_dataplane_token(
        &self,
        mesh: &str,
        name: &str,
        tags: BTreeMap<String, Vec<String>>,
        valid_for: Duration,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        validate_name(ResourceType::Mesh, mesh).map_err(|r| invalid("mesh", r))?;
        validate_name(ResourceType::Dataplane, name).map_err(|r| invalid("name", r))?;
        check_tags(&tags)?;
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
        let claims = DataplaneClaims::new(mesh, name, tags, OffsetDateTime::now_utc(), valid_for);
        Ok(key.sign_dataplane_token(&claims)?)
    }

    /// `POST /tokens/zone`: applies the default validity.
    pub async fn issue_for_zone_request(
        &self,
        req: &ZoneTokenRequest,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let valid_for = req
            .valid_for
            .as_ref()
            .map_or(DEFAULT_ZONE_TOKEN_VALIDITY, |d| d.as_duration());
        self.issue_zone_token(&req.zone, valid_for).await
    }

    /// `POST /tokens/dataplane`: applies the default validity.
    pub async fn issue_for_dataplane_request(
        &self,
        req: &DataplaneTokenRequest,
    ) -> Result<Sensitive<String>, TokenIssueError> {
        let valid_for = req
            .valid_for
            .as_ref()
            .map_or(DEFAULT_DATAPLANE_TOKEN_VALIDITY, |d| d.as_duration());
        self.issue_dataplane_token(&req.mesh, &req.name, req.tags.clone(), valid_for)
            .await
    }

    /// The public keys that verify tokens of `purpose` (empty until the first token is issued).
    pub fn public_keys(&self, purpose: &KeyPurpose) -> Result<Vec<PublicKey>, TokenIssueError> {
        let record = purpose.record();
        match self.store.internal(&record)? {
            Some(bytes) => Ok(vec![self.key_for(record, &bytes)?.public_key().clone()]),
            None => Ok(Vec::new()),
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

    /// The signing key of `purpose`, created (first writer wins) if the store has none.
    async fn signing_key(&self, purpose: &KeyPurpose) -> Result<Arc<SigningKey>, TokenIssueError> {
        let record = purpose.record();
        // A committed key is replaced only when its Mesh is deleted (the record goes with it).
        if let Some(bytes) = self.store.internal(&record)? {
            return self.key_for(record, &bytes);
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
        assert_eq!(dataplane_key_mesh("tokens/signing-key/zone"), None);
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
        assert!(check_tags(&tags(&[])).is_err());
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
}
