//! Messages over the KDS size limit (16 MiB). Chunking keeps normal responses far below it; what
//! is left is one resource too large or a hostile peer. The receiver learns the size from tonic's
//! decode error ([`received_too_large`], logged by [`refused_incoming`]); the sender checks the encoded size itself before
//! sending ([`check_outgoing`]). Each side ends the stream with its own error naming the message
//! and its size (never with OK, which would leave the peer unable to tell it was refused).

use tonic::{Code, Status};

/// A message over the limit: its size and the limit, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// The message's size.
    pub size: usize,
    /// The limit it is over.
    pub limit: usize,
}

/// The size and the limit tonic names when it refuses a gRPC message over its size limit
/// (`... message length too large: found N bytes, the limit is: M bytes`, status OUT_OF_RANGE),
/// so a receiver can say how large the message was; `None` for any other text.
pub fn oversized_message(text: &str) -> Option<(usize, usize)> {
    let (_, rest) = text.split_once("message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes").unwrap_or(rest);
    Some((found.trim().parse().ok()?, limit.trim().parse().ok()?))
}

/// When `status` is tonic refusing an incoming message for its size, how large it was.
pub fn received_too_large(status: &Status) -> Option<TooLarge> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    let (size, limit) = oversized_message(status.message())?;
    Some(TooLarge { size, limit })
}

/// When `status` is tonic refusing an incoming `message` (e.g. `DiscoveryResponse`) on `stream`
/// for its size: logs it, naming the `peer` that sent it (`zone` or `global`), and says how large
/// it was. Each side turns the answer into its own error.
pub fn refused_incoming(
    peer: &str,
    stream: &str,
    message: &str,
    status: &Status,
) -> Option<TooLarge> {
    let too_large = received_too_large(status)?;
    let TooLarge { size, limit } = too_large;
    tracing::warn!(
        stream,
        message,
        size,
        limit,
        "refused a {message} of {size} bytes from the {peer} on {stream}: over the KDS limit of {limit} bytes"
    );
    Some(too_large)
}

/// Checks an outgoing `message` (e.g. `DiscoveryResponse`) of KDS type `rtype` on `stream`
/// before it is sent: over `limit` it is logged (type and size) and refused.
pub fn check_outgoing<M: prost::Message>(
    stream: &str,
    message: &str,
    rtype: &str,
    msg: &M,
    limit: usize,
) -> Result<(), TooLarge> {
    let size = msg.encoded_len();
    if size <= limit {
        return Ok(());
    }
    tracing::error!(
        stream,
        message,
        r#type = rtype,
        size,
        limit,
        "not sending a {rtype} {message} of {size} bytes on {stream}: over the KDS limit of {limit} bytes"
    );
    Err(TooLarge { size, limit })
}

#[cfg(test)]
mod tests {
    use mosaic_proto::kds::{DiscoveryResponse, Resource};

    use super::*;

    #[test]
    fn tonic_size_errors_are_read() {
        assert_eq!(
            oversized_message(
                "Error, decoded message length too large: found 16777300 bytes, the limit is: 16777216 bytes"
            ),
            Some((16_777_300, 16_777_216))
        );
        assert_eq!(
            oversized_message(
                "Error, encoded message length too large: found 20 bytes, the limit is: 10 bytes"
            ),
            Some((20, 10))
        );
        assert_eq!(oversized_message("h2 protocol error"), None);
        let status = Status::out_of_range(
            "decoded message length too large: found 20 bytes, the limit is: 10 bytes",
        );
        assert_eq!(
            received_too_large(&status),
            Some(TooLarge {
                size: 20,
                limit: 10
            })
        );
        assert_eq!(received_too_large(&Status::internal("x")), None);
        assert_eq!(
            refused_incoming("zone", "ZoneToGlobal", "DiscoveryResponse", &status),
            Some(TooLarge {
                size: 20,
                limit: 10
            })
        );
        assert_eq!(
            refused_incoming(
                "zone",
                "ZoneToGlobal",
                "DiscoveryResponse",
                &Status::cancelled("x")
            ),
            None
        );
    }

    #[test]
    fn outgoing_messages_over_the_limit_are_refused_with_their_size() {
        let msg = DiscoveryResponse {
            resources: vec![Resource {
                json: vec![b'x'; 100],
                ..Resource::default()
            }],
            ..DiscoveryResponse::default()
        };
        assert!(
            check_outgoing("ZoneToGlobal", "DiscoveryResponse", "Dataplane", &msg, 1000).is_ok()
        );
        let e =
            check_outgoing("ZoneToGlobal", "DiscoveryResponse", "Dataplane", &msg, 10).unwrap_err();
        assert_eq!(e.limit, 10);
        assert!(e.size > 100);
    }
}
