//! Who is asking: the bearer dataplane token (gRPC metadata `authorization`) verified with the
//! public keys the global synced for the node's mesh (Mosaic's, and Kuma's imported ones), bound
//! to the node's name when it names one (Kuma: a token without a name fits any data plane of its
//! mesh), for a data plane proxy (not a zone ingress or egress), and not listed in the mesh's
//! revocation Secret (`dataplane-token-revocations-<mesh>`, as in Kuma).

use mosaic_core::{
    Sensitive,
    resource::{ResourceType, Spec},
    revocation::{Revocations, dataplane_token_revocations},
    sds::{AUTHORIZATION_METADATA, parse_node_id},
    token::{DataplaneClaims, ProxyType, verify_dataplane_token},
};
use time::OffsetDateTime;
use tonic::metadata::MetadataMap;

use super::error::SdsError;
use crate::store::{KdsType, StoreKey, ZoneStore};

/// A data plane whose token verified for its node id.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `node.id` as sent.
    pub node_id: String,
    /// The mesh (from node.id, matched by the token).
    pub mesh: String,
    /// The dataplane's name (from node.id, matched by the token).
    pub name: String,
    /// The token's claims (its tags bound what the Dataplane may claim).
    pub claims: DataplaneClaims,
    /// The zone's rules for what a token's tags bind.
    pub rules: TokenRules,
}

/// How strictly a dataplane token binds its Dataplane (the zone's `[dataplane_tokens]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenRules {
    /// Every tag of the Dataplane must be named by its token (not only the tags the token names
    /// must match, Kuma's rule).
    pub require_all_tags: bool,
}

/// The token in `authorization: Bearer <token>`.
pub fn bearer_token(metadata: &MetadataMap) -> Result<Sensitive<String>, SdsError> {
    let value = metadata
        .get(AUTHORIZATION_METADATA)
        .and_then(|v| v.to_str().ok())
        .ok_or(SdsError::NoToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(SdsError::NoToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(SdsError::NoToken);
    }
    Ok(Sensitive::new(token.trim().to_string()))
}

/// Verifies `token` for `node_id` against the keys of the node's mesh in `store`.
pub fn authenticate(
    store: &ZoneStore,
    zone: &str,
    rules: TokenRules,
    token: &Sensitive<String>,
    node_id: &str,
    now: OffsetDateTime,
) -> Result<Caller, SdsError> {
    let (mesh, name) = parse_node_id(node_id).map_err(SdsError::BadNodeId)?;
    if store.get(&StoreKey::mesh(mesh))?.is_none() {
        return Err(SdsError::UnknownMesh {
            mesh: mesh.to_string(),
            zone: zone.to_string(),
        });
    }
    let keys = match store.get(&StoreKey::new(KdsType::DataplaneTokenKey, None, mesh))? {
        Some(item) => item.public_keys().map_err(|reason| {
            SdsError::Store(crate::store::StoreError::Corrupt {
                key: format!("{}/{mesh}", KdsType::DataplaneTokenKey),
                reason,
            })
        })?,
        None => Vec::new(),
    };
    if keys.is_empty() {
        return Err(SdsError::NoKeys {
            mesh: mesh.to_string(),
            zone: zone.to_string(),
        });
    }
    let claims = verify_dataplane_token(token.expose(), &keys, mesh, now)?;
    if let Some(t @ (ProxyType::Ingress | ProxyType::Egress)) = claims.proxy_type {
        return Err(SdsError::ProxyType {
            name: name.to_string(),
            token_type: t,
        });
    }
    if !claims.name.is_empty() && claims.name != name {
        return Err(SdsError::OtherDataplane {
            token_name: claims.name,
            node_name: name.to_string(),
        });
    }
    let secret = dataplane_token_revocations(mesh);
    if revocations(store, mesh, &secret)?.contains(&claims.jti) {
        return Err(SdsError::Revoked {
            jti: claims.jti,
            mesh: mesh.to_string(),
            name: name.to_string(),
            secret,
        });
    }
    Ok(Caller {
        node_id: node_id.to_string(),
        mesh: mesh.to_string(),
        name: name.to_string(),
        claims,
        rules,
    })
}

/// The revoked dataplane token ids of `mesh`: the ids in its Secret `secret`, if there is one.
fn revocations(store: &ZoneStore, mesh: &str, secret: &str) -> Result<Revocations, SdsError> {
    let Some(resource) = store.get_resource(ResourceType::Secret, Some(mesh), secret)? else {
        return Ok(Revocations::default());
    };
    let Spec::Secret(spec) = &resource.spec else {
        return Ok(Revocations::default());
    };
    // The global validated the Secret, so its data decodes; refuse rather than guess if not.
    let value = spec.value().map_err(|reason| {
        SdsError::Store(crate::store::StoreError::Corrupt {
            key: format!("secret {mesh}/{secret}"),
            reason,
        })
    })?;
    Ok(Revocations::parse(value.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(AUTHORIZATION_METADATA, value.parse().unwrap());
        m
    }

    #[test]
    fn bearer_tokens_are_read_and_others_refused() {
        assert_eq!(bearer_token(&meta("Bearer abc")).unwrap().expose(), "abc");
        assert_eq!(bearer_token(&meta("bearer  abc ")).unwrap().expose(), "abc");
        for bad in ["abc", "Basic abc", "Bearer ", "Bearer"] {
            assert!(
                matches!(bearer_token(&meta(bad)), Err(SdsError::NoToken)),
                "{bad}"
            );
        }
        assert!(matches!(
            bearer_token(&MetadataMap::new()),
            Err(SdsError::NoToken)
        ));
    }
}
