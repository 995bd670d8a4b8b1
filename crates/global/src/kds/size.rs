//! Messages over the KDS size limit ([`KdsSettings::max_message_bytes`](super::KdsSettings),
//! 16 MiB), as the global ends a stream for them: RESOURCE_EXHAUSTED naming the message and its
//! size (the checks and their log lines are [`mosaic_kds::size`]'s).

use mosaic_kds::size::{self, TooLarge};
use tonic::Status;

/// When `status` is tonic refusing an incoming `message` (e.g. `DiscoveryResponse`) on `stream`
/// for its size: logs it and returns the RESOURCE_EXHAUSTED status to end the stream with.
pub fn received_too_large(stream: &str, message: &str, status: &Status) -> Option<Status> {
    let TooLarge { size, limit } = size::refused_incoming("zone", stream, message, status)?;
    Some(Status::resource_exhausted(format!(
        "the global refused a {stream} {message} of {size} bytes: over the KDS message limit of {limit} bytes; send smaller messages (chunked responses stay below 1 MiB)"
    )))
}

/// Checks an outgoing `message` of KDS type `rtype` on `stream` before it is sent: over `limit`
/// it is logged and the RESOURCE_EXHAUSTED status to end the stream with is returned.
pub fn check_outgoing<M: prost::Message>(
    stream: &str,
    message: &str,
    rtype: &str,
    msg: &M,
    limit: usize,
) -> Result<(), Status> {
    size::check_outgoing(stream, message, rtype, msg, limit).map_err(|TooLarge { size, limit }| {
        Status::resource_exhausted(format!(
            "the global did not send a {rtype} {message} of {size} bytes on {stream}: over the KDS message limit of {limit} bytes (a resource this large cannot be synced; make it smaller)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use mosaic_proto::kds::DiscoveryRequest;

    use super::*;

    #[test]
    fn oversized_messages_become_resource_exhausted() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 16777300 bytes, the limit is: 16777216 bytes",
        );
        let s = received_too_large("ZoneToGlobal", "DiscoveryResponse", &tonic).expect("refused");
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("16777300 bytes"), "{}", s.message());
        assert!(
            received_too_large("ZoneToGlobal", "DiscoveryResponse", &Status::cancelled("x"))
                .is_none()
        );

        let msg = DiscoveryRequest {
            r#type: "Dataplane".into(),
            response_nonce: "n".repeat(100),
            ..DiscoveryRequest::default()
        };
        check_outgoing("ZoneToGlobal", "DiscoveryRequest", "Dataplane", &msg, 1000).unwrap();
        let s =
            check_outgoing("ZoneToGlobal", "DiscoveryRequest", "Dataplane", &msg, 10).unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message().contains("Dataplane DiscoveryRequest of 1"),
            "{}",
            s.message()
        );
    }
}
