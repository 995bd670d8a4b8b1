//! Serving the servers' HTTP routers: binding a listener (an error naming the config key),
//! one stop signal every listener and task of a server shuts down on, and `axum::serve` with
//! graceful shutdown (the API with each caller's address, which the admin rule needs). The
//! HTTPS API is served by [`crate::tls_listener::serve_api_tls`].

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::Router;
use tokio::{net::TcpListener, sync::watch};

/// A listener could not bind.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {what} {addr}: {source}; is another process using the port?")]
pub struct BindError {
    /// Which listener (config key).
    pub what: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    pub source: std::io::Error,
}

/// A server failed while running.
#[derive(Debug, thiserror::Error)]
#[error("{what} server failed: {source}")]
pub struct ServerFailed {
    /// Which server (`api`, `diagnostics`).
    pub what: &'static str,
    /// The cause.
    pub source: std::io::Error,
}

/// Binds `addr`, the listener of config key `what`.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}

/// The stop signal of a server: set once its shutdown future completes, or when a part of it
/// fails and stops the rest ([`Stop::stop`]).
#[derive(Clone, Debug)]
pub struct Stop {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

// === impl Stop ===

impl Stop {
    /// A signal set when `shutdown` completes (awaited on a spawned task).
    pub fn on(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(false);
        let stop = Self {
            tx: Arc::new(tx),
            rx,
        };
        let on_shutdown = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            on_shutdown.stop();
        });
        stop
    }

    /// Sets the signal.
    pub fn stop(&self) {
        let _ = self.tx.send(true);
    }

    /// The signal as a watch receiver (`true` once set).
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Completes once the signal is set.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(self.receiver())
    }
}

/// Completes once `rx` reads `true` (or its sender is gone).
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves the API `router` on `listener` until `stop`, with `ConnectInfo<SocketAddr>` for the
/// admin rule.
pub async fn serve_api(
    listener: TcpListener,
    router: Router,
    stop: &Stop,
) -> Result<(), ServerFailed> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.stopped())
    .await
    .map_err(|source| ServerFailed {
        what: "api",
        source,
    })
}

/// Serves the diagnostics `router` on `listener` until `stop`.
pub async fn serve_diagnostics(
    listener: TcpListener,
    router: Router,
    stop: &Stop,
) -> Result<(), ServerFailed> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.stopped())
        .await
        .map_err(|source| ServerFailed {
            what: "diagnostics",
            source,
        })
}
