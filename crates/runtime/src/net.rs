//! Accepted TCP connections for the gRPC servers, with `TCP_NODELAY` set: tonic applies its
//! `tcp_nodelay` only to listeners it binds itself, and without it Nagle's algorithm holds small
//! raft replies and KDS pushes back by tens of milliseconds.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{Stream, StreamExt as _, wrappers::TcpListenerStream};

/// The connections `listener` accepts, each with `TCP_NODELAY` on.
pub fn nodelay_incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn
            && let Err(e) = stream.set_nodelay(true)
        {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
        }
        conn
    })
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

#[cfg(test)]
mod tests {
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
    }
}
