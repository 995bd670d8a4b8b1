//! `SessionError`: why a KDS session could not start or ended.

use super::{auth::TokenFileError, endpoint::EndpointError};
use crate::store::StoreError;
use mosaic_kds::assemble::ChunkError;

/// Why a KDS session failed; the client logs it and reconnects with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// `global.token_file` cannot be used.
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    /// The endpoint settings are unusable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The connection (TCP, TLS) failed.
    #[error("cannot connect to the global at {url}: {reason}")]
    Connect {
        /// The address.
        url: String,
        /// The cause (TLS verification failures show here).
        reason: String,
    },
    /// The global refused the zone's token or the zone.
    #[error("the global refused zone {zone}: {message}")]
    Refused {
        /// This zone.
        zone: String,
        /// The global's message.
        message: String,
    },
    /// The global answered a stream with an error status.
    #[error("{stream} stream failed: {status}")]
    Status {
        /// `GlobalToZone` or `ZoneToGlobal`.
        stream: &'static str,
        /// The status.
        status: String,
    },
    /// The global closed a stream.
    #[error("the global closed the {0} stream")]
    Closed(&'static str),
    /// A broken chunk sequence.
    #[error(transparent)]
    Protocol(#[from] ChunkError),
    /// A response of a type the zone did not ask for, or similar.
    #[error("protocol violation: {0}")]
    Unexpected(String),
    /// The zone store failed (the response is not ACKed; the next session retries it).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The global sent a message over this zone's size limit (tonic refused to decode it).
    #[error(
        "the global sent a {stream} {message} of {size} bytes, over this zone's KDS message limit of {limit} bytes: it was refused; the global must send smaller responses (it chunks them below 1 MiB)"
    )]
    TooLargeReceived {
        /// `GlobalToZone` or `ZoneToGlobal`.
        stream: &'static str,
        /// The message type (`DiscoveryResponse`, `DiscoveryRequest`).
        message: &'static str,
        /// Its size, as tonic found it.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A message this zone was about to send is over the size limit (it was not sent).
    #[error(
        "this zone did not send a {rtype} {message} of {size} bytes on {stream}: over the KDS message limit of {limit} bytes (a resource this large cannot be synced; find it with the zone's API and make it smaller)"
    )]
    TooLargeToSend {
        /// `GlobalToZone` or `ZoneToGlobal`.
        stream: &'static str,
        /// The message type (`DiscoveryResponse`, `DiscoveryRequest`).
        message: &'static str,
        /// The KDS type it carries.
        rtype: String,
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No answer within the deadline.
    #[error("the {stream} stream looks dead: {detail}")]
    Dead {
        /// Which stream.
        stream: &'static str,
        /// What was missing.
        detail: String,
    },
}

// === impl SessionError ===

impl SessionError {
    /// Maps a gRPC status from opening a stream: a refused token or zone is [`SessionError::Refused`].
    pub fn from_status(zone: &str, stream: &'static str, status: &tonic::Status) -> Self {
        let message = if stream == "GlobalToZone" {
            "DiscoveryResponse"
        } else {
            "DiscoveryRequest"
        };
        if let Some(mosaic_kds::size::TooLarge { size, limit }) =
            mosaic_kds::size::refused_incoming("global", stream, message, status)
        {
            return SessionError::TooLargeReceived {
                stream,
                message,
                size,
                limit,
            };
        }
        match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => SessionError::Refused {
                zone: zone.to_string(),
                message: status.message().to_string(),
            },
            _ => SessionError::Status {
                stream,
                status: format!("{}: {}", status.code(), status.message()),
            },
        }
    }
}

/// Checks a message of KDS type `rtype` before it is sent on `stream`: over `limit` it is
/// logged (type and size) and the session ends with [`SessionError::TooLargeToSend`] instead of
/// tonic failing the stream.
pub fn check_outgoing<M: prost::Message>(
    stream: &'static str,
    message: &'static str,
    rtype: &str,
    msg: &M,
    limit: usize,
) -> Result<(), SessionError> {
    mosaic_kds::size::check_outgoing(stream, message, rtype, msg, limit).map_err(
        |mosaic_kds::size::TooLarge { size, limit }| SessionError::TooLargeToSend {
            stream,
            message,
            rtype: rtype.to_string(),
            size,
            limit,
        },
    )
}

#[cfg(test)]
mod tests {
    use mosaic_proto::kds::DiscoveryResponse;

    use super::*;

    #[test]
    fn oversized_messages_are_named_with_their_size() {
        let tonic = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 16777300 bytes, the limit is: 16777216 bytes",
        );
        let e = SessionError::from_status("east", "GlobalToZone", &tonic);
        assert!(
            matches!(
                e,
                SessionError::TooLargeReceived {
                    message: "DiscoveryResponse",
                    size: 16_777_300,
                    limit: 16_777_216,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = DiscoveryResponse {
            r#type: "Dataplane".into(),
            nonce: "n".repeat(100),
            ..DiscoveryResponse::default()
        };
        check_outgoing("ZoneToGlobal", "DiscoveryResponse", "Dataplane", &msg, 1000).unwrap();
        let e =
            check_outgoing("ZoneToGlobal", "DiscoveryResponse", "Dataplane", &msg, 10).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("this zone did not send a Dataplane DiscoveryResponse of 1"),
            "{e}"
        );
    }
}
