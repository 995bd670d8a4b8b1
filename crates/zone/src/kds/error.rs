//! `SessionError`: why a KDS session could not start or ended.

use super::{assemble::ChunkError, auth::TokenFileError, endpoint::EndpointError};
use crate::store::StoreError;

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
