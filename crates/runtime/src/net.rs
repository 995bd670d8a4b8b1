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
