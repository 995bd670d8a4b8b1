//! `SdsError`: why the dataplane server refused or ended a request, and the gRPC status each
//! maps to. Messages say what failed and what to do; they never contain the token.

use mosaic_core::token::TokenError;
use tonic::{Code, Status};

use crate::{issuer::IssuerError, store::StoreError};

/// Why an SDS request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SdsError {
    /// No `authorization: Bearer <token>` metadata.
    #[error(
        "no dataplane token: send gRPC metadata `authorization: Bearer <token>` with a token from `mosaicctl generate dataplane-token --mesh MESH --name NAME --tag kuma.io/service=SERVICE`"
    )]
    NoToken,
    /// The token does not verify (malformed, expired, unknown key, other mesh).
    #[error("dataplane token refused: {0}")]
    Token(#[from] TokenError),
    /// The first request has no `node`.
    #[error("the first DiscoveryRequest must carry `node` with id \"<mesh>.<dataplane name>\"")]
    NoNode,
    /// `node.id` is not `<mesh>.<name>`.
    #[error("{0}")]
    BadNodeId(String),
    /// A later request names another node.
    #[error(
        "node.id changed from {first:?} to {now:?} within one stream: open a new stream per dataplane"
    )]
    NodeChanged {
        /// The node id of the first request.
        first: String,
        /// The node id of this request.
        now: String,
    },
    /// The zone has no such Mesh.
    #[error(
        "mesh {mesh:?} does not exist in zone {zone} (yet): create it on the global control plane; zones receive it over KDS, and data planes retry until it arrives"
    )]
    UnknownMesh {
        /// The mesh.
        mesh: String,
        /// This zone.
        zone: String,
    },
    /// The Mesh exists but its dataplane-token keys have not arrived yet.
    #[error(
        "zone {zone} has not received the dataplane-token keys of mesh {mesh:?} from the global yet: retry shortly, and check the zone's KDS connection if this persists"
    )]
    NoKeys {
        /// The mesh.
        mesh: String,
        /// This zone.
        zone: String,
    },
    /// The token's id is listed in the mesh's revocation Secret.
    #[error(
        "the dataplane token (id {jti}) of {mesh:?}.{name:?} is revoked: it is listed in Secret {secret:?} of mesh {mesh:?}; generate a new token for this dataplane (mosaicctl generate dataplane-token --mesh {mesh} --name {name} ...)"
    )]
    Revoked {
        /// The token id (`jti`), not a secret.
        jti: String,
        /// The mesh.
        mesh: String,
        /// The dataplane.
        name: String,
        /// The revocation Secret.
        secret: String,
    },
    /// The token expired while its stream was open.
    #[error(
        "the dataplane token of {mesh:?}.{name:?} expired at {}: generate a new one (mosaicctl generate dataplane-token --mesh {mesh} --name {name} ...) and start the data plane with it",
        rfc3339(at)
    )]
    Expired {
        /// The mesh.
        mesh: String,
        /// The dataplane.
        name: String,
        /// When the token expired.
        at: time::OffsetDateTime,
    },
    /// The token was issued for another dataplane.
    #[error(
        "the dataplane token is for {token_name:?}, not {node_name:?}: use the token generated for this dataplane (mosaicctl generate dataplane-token --name {node_name} ...)"
    )]
    OtherDataplane {
        /// The name in the token.
        token_name: String,
        /// The name in node.id.
        node_name: String,
    },
    /// The Dataplane in the node metadata is not a valid Dataplane.
    #[error("the Dataplane in node metadata `{field}` is invalid: {reason}")]
    BadDataplane {
        /// The metadata field.
        field: &'static str,
        /// What is wrong (with field paths).
        reason: String,
    },
    /// The Dataplane's mesh or name disagrees with node.id.
    #[error(
        "the Dataplane in node metadata is {resource:?} but node.id names {node:?}: make them agree"
    )]
    DataplaneMismatch {
        /// `<mesh>.<name>` of the resource.
        resource: String,
        /// `<mesh>.<name>` of node.id.
        node: String,
    },
    /// No Dataplane is registered under the node's name and none was sent.
    #[error(
        "dataplane {name:?} is not registered in mesh {mesh:?}: send it in node metadata `dataplane.resource` (mosaic-dp --dataplane-file does) or PUT it to the zone API first"
    )]
    NotRegistered {
        /// The mesh.
        mesh: String,
        /// The dataplane.
        name: String,
    },
    /// The token is for a zone ingress or egress, not a data plane proxy.
    #[error(
        "dataplane {name:?}: its token is for a zone {token_type} (type {token_type}), not a data plane proxy: generate a token without --type, or with --type dataplane"
    )]
    ProxyType {
        /// The dataplane.
        name: String,
        /// The token's type.
        token_type: mosaic_core::token::ProxyType,
    },
    /// The Dataplane's tags or workload do not fit its token.
    #[error("dataplane {name:?}: {reason}")]
    Tags {
        /// The dataplane.
        name: String,
        /// Which tags, and what to do.
        reason: String,
    },
    /// The Dataplane was deleted while its stream was open.
    #[error("dataplane {name:?} of mesh {mesh:?} was deleted from the zone; register it again")]
    Deleted {
        /// The mesh.
        mesh: String,
        /// The dataplane.
        name: String,
    },
    /// The Mesh has no enabled mTLS backend.
    #[error(
        "mesh {0:?} has mTLS disabled (no mtls.enabledBackend) and no MeshIdentity selects this data plane: enable a backend on the global, or apply a MeshIdentity whose selector matches the data plane's labels, to get certificates"
    )]
    MtlsDisabled(String),
    /// A request's `type_url` is not the Secret type.
    #[error("type_url {got:?} is not served here: SDS serves {expected:?}")]
    TypeUrl {
        /// What the request said.
        got: String,
        /// The only type served.
        expected: &'static str,
    },
    /// A resource name is not one this server serves.
    #[error(
        "resource name {name:?} is not served here: ask for \"identity_cert:secret:{mesh}\" and \"mesh_ca:secret:{mesh}\""
    )]
    ResourceName {
        /// The name asked for.
        name: String,
        /// The node's mesh.
        mesh: String,
    },
    /// A resource name belongs to another mesh than the token's.
    #[error(
        "resource name {name:?} belongs to another mesh: this dataplane's token only yields secrets of mesh {mesh:?}"
    )]
    OtherMesh {
        /// The name asked for.
        name: String,
        /// The token's mesh.
        mesh: String,
    },
    /// The store could not be read or written.
    #[error("zone store: {0}")]
    Store(#[from] StoreError),
    /// No certificate could be produced.
    #[error("{0}")]
    Issuer(#[from] IssuerError),
    /// The server is shutting down.
    #[error("the zone is shutting down: reconnect to another zone replica or retry")]
    ShuttingDown,
}

// === impl SdsError ===

impl SdsError {
    /// The gRPC code a client sees.
    pub fn code(&self) -> Code {
        match self {
            SdsError::NoToken | SdsError::Token(_) => match self {
                SdsError::Token(TokenError::WrongMesh { .. }) => Code::PermissionDenied,
                _ => Code::Unauthenticated,
            },
            SdsError::Revoked { .. } | SdsError::Expired { .. } => Code::Unauthenticated,
            SdsError::OtherDataplane { .. }
            | SdsError::Tags { .. }
            | SdsError::ProxyType { .. }
            | SdsError::OtherMesh { .. } => Code::PermissionDenied,
            SdsError::NoNode
            | SdsError::BadNodeId(_)
            | SdsError::NodeChanged { .. }
            | SdsError::BadDataplane { .. }
            | SdsError::DataplaneMismatch { .. }
            | SdsError::TypeUrl { .. }
            | SdsError::ResourceName { .. } => Code::InvalidArgument,
            SdsError::NotRegistered { .. } | SdsError::Deleted { .. } => Code::NotFound,
            SdsError::MtlsDisabled(_) => Code::FailedPrecondition,
            // A zone may not have received a new Mesh yet: data planes retry.
            SdsError::UnknownMesh { .. }
            | SdsError::NoKeys { .. }
            | SdsError::Issuer(_)
            | SdsError::ShuttingDown => Code::Unavailable,
            SdsError::Store(_) => Code::Internal,
        }
    }
}

fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl From<SdsError> for Status {
    fn from(e: SdsError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_what_the_client_must_do() {
        assert_eq!(SdsError::NoToken.code(), Code::Unauthenticated);
        let wrong = TokenError::WrongMesh {
            expected_mesh: "a".into(),
            token_mesh: "b".into(),
        };
        assert_eq!(SdsError::Token(wrong).code(), Code::PermissionDenied);
        let tags = SdsError::Tags {
            name: "web".into(),
            reason: "x".into(),
        };
        assert_eq!(tags.code(), Code::PermissionDenied);
        assert_eq!(SdsError::NoNode.code(), Code::InvalidArgument);
        let status = Status::from(SdsError::MtlsDisabled("m".into()));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("enable a backend"));
        let expired = SdsError::Expired {
            mesh: "default".into(),
            name: "web-1".into(),
            at: time::OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        };
        let status = Status::from(expired);
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            status.message(),
            "the dataplane token of \"default\".\"web-1\" expired at 2025-06-15T15:06:40Z: generate a new one (mosaicctl generate dataplane-token --mesh default --name web-1 ...) and start the data plane with it"
        );
    }
}
