//! Serving gRPC (KDS on the global, SDS on the zone): TLS from a [`ServerIdentity`], HTTP/2
//! keepalive, `TCP_NODELAY` connections, and a graceful shutdown that first tells the services'
//! long-lived streams to end.

use std::{future::Future, time::Duration};

use tokio::{net::TcpListener, sync::watch};
use tonic::{
    service::Routes,
    transport::{Identity, Server, ServerTlsConfig},
};

use crate::{net::nodelay_incoming, tls::ServerIdentity};

/// How a gRPC server keeps idle connections honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// HTTP/2 PING interval.
    pub interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub timeout: Duration,
    /// TCP keepalive on accepted sockets (`None`: the OS default, off).
    pub tcp: Option<Duration>,
}

/// The TLS settings of a gRPC server presenting `identity`.
pub fn server_tls(identity: &ServerIdentity) -> ServerTlsConfig {
    ServerTlsConfig::new().identity(Identity::from_pem(
        identity.cert_pem.as_bytes(),
        identity.key_pem.expose().as_bytes(),
    ))
}

/// Serves `routes` over TLS with `identity` on `listener` until `shutdown` completes. Then it
/// sends `true` on `stop`, which the services' open streams watch to end themselves (a graceful
/// shutdown otherwise waits for them forever), and returns once every connection is done.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    identity: &ServerIdentity,
    keepalive: Keepalive,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .tls_config(server_tls(identity))?
        .http2_keepalive_interval(Some(keepalive.interval))
        .http2_keepalive_timeout(Some(keepalive.timeout))
        .tcp_keepalive(keepalive.tcp)
        .add_routes(routes)
        .serve_with_incoming_shutdown(nodelay_incoming(listener), async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
}
