//! Who is on the other end of a KDS stream: the zone token (`authorization: Bearer <token>`),
//! verified with the zone signing key from the store (or, for a Kuma/Kong Mesh RS256 token, an
//! imported `zone-token-signing-key-N`); it must have Kong Mesh's `cp` scope (a token for a zone
//! ingress or egress only is refused, naming its scope); `mosaic-zone` must equal the token's zone;
//! a disabled Zone is refused, and so is a token whose id is listed in the GlobalSecret
//! `zone-token-revocations` (as in Kuma); an unknown zone registers itself (a `Zone` with
//! `enabled: true`, as Kuma does). [`access_ended`] re-checks an open session's zone and token
//! (disabled, revoked, its signing key retired);
//! [`expiry`] is the timer that ends an open session when its token expires ([`expired`] says so).
//! Refusals are gRPC `Unauthenticated` / `PermissionDenied` with a message that says what to do,
//! and a warn line on the global naming the zone (never the token).

use mosaic_core::{
    resource::{Resource, ResourceType, Spec, ZoneSpec, validate_name},
    revocation::{Revocations, ZONE_TOKEN_REVOCATIONS},
    token::{KeyAlgorithm, SCOPE_CP, TokenError, TokenKind, expires_at, signing_key_of, time_left},
};
use time::OffsetDateTime;
use tonic::{Status, metadata::MetadataMap};

use super::{Shared, metrics, registry::Direction};
use mosaic_kds::subscribe::{FEATURES_HEADER, VERSION_HEADER, ZONE_HEADER};

use crate::{
    store::{Command, CommandResult, Refusal, ResourceKey, ResourceStore},
    tokens::{KeyPurpose, TokenVerifyError, Tokens},
};

/// An authenticated zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneIdentity {
    /// The zone's name (token claim = `mosaic-zone`).
    pub zone: String,
    /// Its software version.
    pub version: String,
    /// Its capabilities.
    pub features: Vec<String>,
    /// The id (`jti`) of the token it authenticated with (not a secret).
    pub token_id: String,
    /// When that token expires (its `exp`): the session ends then.
    pub expires_at: OffsetDateTime,
    /// The key that verified it (algorithm and kid): the session ends when it is retired.
    pub key: Option<(KeyAlgorithm, String)>,
}

fn header<'a>(md: &'a MetadataMap, name: &str) -> Option<&'a str> {
    md.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Logs and counts a refusal, and returns it.
fn refuse(zone: &str, direction: Direction, reason: &'static str, status: Status) -> Status {
    tracing::warn!(
        zone = %zone,
        stream = ?direction,
        code = ?status.code(),
        "refused a KDS connection: {}",
        status.message()
    );
    metrics::refused(reason);
    status
}

/// The message for a refused token, naming the zone in the command to run.
fn token_message(zone: &str, e: &TokenError) -> String {
    let text = e
        .to_string()
        .replace("--zone NAME", &format!("--zone {zone}"));
    format!("zone {zone:?}: {text}")
}

/// Authenticates a stream's metadata and registers the zone if it has no Zone resource yet.
pub async fn authenticate(
    shared: &Shared,
    md: &MetadataMap,
    direction: Direction,
) -> Result<ZoneIdentity, Status> {
    let Some(zone) = header(md, ZONE_HEADER).filter(|z| !z.is_empty()) else {
        return Err(refuse(
            "<unnamed>",
            direction,
            "no-zone-name",
            Status::unauthenticated(format!(
                "missing {ZONE_HEADER} metadata: a zone control plane must name itself (set `zone` in the zone's configuration)"
            )),
        ));
    };
    let zone = zone.to_string();
    if let Err(reason) = validate_name(ResourceType::Zone, &zone) {
        return Err(refuse(
            &zone,
            direction,
            "bad-zone-name",
            Status::invalid_argument(format!("{ZONE_HEADER}: {reason}")),
        ));
    }
    let token = header(md, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(refuse(
            &zone,
            direction,
            "no-token",
            Status::unauthenticated(format!(
                "zone {zone:?}: no zone token (metadata authorization: Bearer <token>): generate one with mosaicctl generate zone-token --zone {zone} and set global.token_file"
            )),
        ));
    };
    let claims = match shared
        .tokens
        .verify_zone_token(token, OffsetDateTime::now_utc())
    {
        Ok(c) => c,
        Err(TokenVerifyError::Token(TokenError::UnknownKey { kid, .. }))
            if shared
                .tokens
                .retired_serial(&KeyPurpose::Zone, &kid)
                .is_some() =>
        {
            return Err(refuse(
                &zone,
                direction,
                "key-retired",
                Status::unauthenticated(retired_message(&shared.tokens, &zone, &kid)),
            ));
        }
        Err(TokenVerifyError::Token(e)) => {
            return Err(refuse(
                &zone,
                direction,
                "bad-token",
                Status::unauthenticated(token_message(&zone, &e)),
            ));
        }
        Err(TokenVerifyError::Keys(e)) => {
            return Err(refuse(
                &zone,
                direction,
                "keys-unavailable",
                Status::unavailable(format!(
                    "zone {zone:?}: the global cannot read its zone-token keys ({e}); retry"
                )),
            ));
        }
    };
    if !claims.has_scope(SCOPE_CP) {
        return Err(refuse(
            &zone,
            direction,
            "token-scope",
            Status::permission_denied(format!(
                "zone {zone:?}: the zone token's scope is {} and lacks \"cp\", which a zone control plane needs to connect to the global (ingress and egress scopes are for zone proxies): generate one with mosaicctl generate zone-token --zone {zone} --scope cp",
                claims.scope_list()
            )),
        ));
    }
    if claims.zone != zone {
        return Err(refuse(
            &zone,
            direction,
            "wrong-zone",
            Status::permission_denied(format!(
                "the zone token is for zone {:?}, but this zone calls itself {zone:?} ({ZONE_HEADER}): generate a new token with mosaicctl generate zone-token --zone {zone}",
                claims.zone
            )),
        ));
    }
    match zone_token_revoked(shared.store.as_ref(), &zone, &claims.jti) {
        Ok(None) => {}
        Ok(Some(status)) => return Err(refuse(&zone, direction, "token-revoked", status)),
        Err(status) => return Err(status),
    }
    let key = ResourceKey::new(ResourceType::Zone, None, &zone);
    let existing = shared.store.get(&key).map_err(|e| {
        Status::unavailable(format!(
            "zone {zone:?}: the global cannot read its store: {e}"
        ))
    })?;
    match existing.map(|r| r.spec) {
        Some(Spec::Zone(spec)) if !spec.is_enabled() => {
            return Err(refuse(
                &zone,
                direction,
                "zone-disabled",
                Status::permission_denied(disabled_message(&zone)),
            ));
        }
        Some(_) => {}
        // In the background: a replica without a leader still serves the zone from its state.
        None => {
            let store = shared.store.clone();
            let zone = zone.clone();
            tokio::spawn(async move { register(store.as_ref(), &zone).await });
        }
    }
    Ok(ZoneIdentity {
        zone,
        version: header(md, VERSION_HEADER).unwrap_or_default().to_string(),
        features: header(md, FEATURES_HEADER)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        token_id: claims.jti,
        expires_at: expires_at(claims.exp),
        key: signing_key_of(token),
    })
}

/// Why a token signed by the retired zone-token signing key `kid` is refused.
fn retired_message(tokens: &Tokens, zone: &str, kid: &str) -> String {
    let serial = tokens
        .retired_serial(&KeyPurpose::Zone, kid)
        .map_or_else(String::new, |n| format!("{n} "));
    format!(
        "zone {zone:?}: the zone token was signed by signing key {serial}(kid {kid}), which was retired on the global: generate a new token with mosaicctl generate zone-token --zone {zone} and put it in the zone's global.token_file"
    )
}

/// Completes when the token `identity` authenticated with expires (a timer at its `exp`, never a
/// poll); a token without expiry (Kuma's may have none) waits as good as forever.
pub fn expiry(identity: &ZoneIdentity) -> tokio::time::Sleep {
    let left = time_left(
        identity.expires_at.unix_timestamp(),
        OffsetDateTime::now_utc(),
    );
    tokio::time::sleep(left)
}

/// The status that ends an open session whose zone token expired: what to run, for this zone.
pub fn expired(identity: &ZoneIdentity) -> Status {
    let e = TokenError::Expired {
        expected: TokenKind::Zone,
        at: identity.expires_at,
    };
    Status::unauthenticated(format!(
        "{}, and put it in the zone's global.token_file (the zone reads it again when it reconnects)",
        token_message(&identity.zone, &e)
    ))
}

/// Why an open session of `identity` must end now, if it must: its Zone was disabled, its token
/// revoked, or the key that signed it retired (or, for a Kuma token, its imported key deleted).
/// `Err` when the store cannot be read.
pub fn access_ended(
    store: &dyn ResourceStore,
    tokens: &Tokens,
    identity: &ZoneIdentity,
) -> Result<Option<Status>, Status> {
    let zone = &identity.zone;
    let key = ResourceKey::new(ResourceType::Zone, None, zone);
    let current = store.get(&key).map_err(|e| unreadable(zone, e))?;
    if let Some(Spec::Zone(spec)) = current.map(|r| r.spec)
        && !spec.is_enabled()
    {
        return Ok(Some(Status::permission_denied(disabled_message(zone))));
    }
    if let Some((alg, kid)) = &identity.key {
        let keys = tokens
            .public_keys(&KeyPurpose::Zone)
            .map_err(|e| unreadable(zone, e))?;
        if !keys.iter().any(|k| k.alg == *alg && k.kid == *kid) {
            let message = match tokens.retired_serial(&KeyPurpose::Zone, kid) {
                Some(_) => retired_message(tokens, zone, kid),
                None => format!(
                    "zone {zone:?}: the key that signed the zone token (kid {kid}) is no longer among the global's zone-token keys (an imported Kuma key was deleted?): generate a new token with mosaicctl generate zone-token --zone {zone} and put it in the zone's global.token_file"
                ),
            };
            return Ok(Some(Status::unauthenticated(message)));
        }
    }
    zone_token_revoked(store, zone, &identity.token_id)
}

fn unreadable(zone: &str, e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "zone {zone:?}: the global cannot read its store: {e}"
    ))
}

/// The refusal for a zone token whose id `jti` is listed in the GlobalSecret
/// `zone-token-revocations`, if it is.
fn zone_token_revoked(
    store: &dyn ResourceStore,
    zone: &str,
    jti: &str,
) -> Result<Option<Status>, Status> {
    let key = ResourceKey::new(ResourceType::GlobalSecret, None, ZONE_TOKEN_REVOCATIONS);
    let Some(resource) = store.get(&key).map_err(|e| unreadable(zone, e))? else {
        return Ok(None);
    };
    let Spec::GlobalSecret(spec) = &resource.spec else {
        return Ok(None);
    };
    let value = spec.value().map_err(|e| {
        Status::unavailable(format!(
            "zone {zone:?}: GlobalSecret {ZONE_TOKEN_REVOCATIONS} cannot be read ({e}): fix it (comma-separated token ids, base64-encoded in data)"
        ))
    })?;
    if !Revocations::parse(value.expose()).contains(jti) {
        return Ok(None);
    }
    Ok(Some(Status::unauthenticated(format!(
        "zone {zone:?}: the zone token (id {jti}) is revoked: it is listed in GlobalSecret {ZONE_TOKEN_REVOCATIONS}; generate a new one with mosaicctl generate zone-token --zone {zone} and put it in the zone's global.token_file"
    ))))
}

/// Why a disabled zone is refused.
pub fn disabled_message(zone: &str) -> String {
    format!(
        "zone {zone:?} is disabled on the global (Zone {zone} has enabled: false): apply the Zone with enabled: true to let it connect"
    )
}

/// Creates `Zone <zone>` (enabled) unless it exists. Failure is logged, not fatal: the zone is
/// authenticated, and registers at its next connection. (The zone sees its Zone arrive as a
/// delta once it is committed.)
async fn register(store: &dyn ResourceStore, zone: &str) {
    let r = Resource::new(
        zone,
        None,
        Spec::Zone(ZoneSpec {
            enabled: Some(true),
        }),
    );
    let cmd = Command::Put {
        resource: r.to_universal(),
        now: OffsetDateTime::now_utc(),
        expect_version: Some(0),
    };
    match store.write(cmd).await {
        Ok(CommandResult::Put { .. }) => tracing::info!(zone = %zone, "registered a new zone"),
        Ok(CommandResult::Refused(Refusal::Conflict(_))) => {}
        Ok(other) => tracing::warn!(zone = %zone, result = ?other, "could not register the zone"),
        Err(e) => {
            tracing::warn!(zone = %zone, error = %e, "could not register the zone; it will be registered at its next connection")
        }
    }
}
