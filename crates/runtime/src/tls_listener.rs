//! The HTTPS API's listener (Kuma's `apiServer.https`, port 5682): TCP connections accepted and
//! their TLS handshakes done off the accept loop (a slow or silent client holds up only itself,
//! for at most [`HANDSHAKE_TIMEOUT`]), handed to `axum::serve` as an [`axum::serve::Listener`]
//! whose address is the caller's `SocketAddr` (the admin rule reads it as for plain HTTP), and
//! served until the stop signal ([`serve_api_tls`]); [`prepare`] binds it with its certificate.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{
    config::{ApiConfig, DEFAULT_HTTPS_API_LISTEN},
    tls::{ServerIdentity, TlsError},
};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for `accept` (beyond this, new handshakes wait).
const QUEUE: usize = 64;

/// A rustls server configuration serving `identity` (HTTP/2 and HTTP/1.1 by ALPN). `what` names
/// the configuration keys in errors (`api.tls_cert/api.tls_key`).
pub fn server_config(
    identity: &ServerIdentity,
    what: &str,
) -> Result<rustls::ServerConfig, TlsError> {
    let invalid = |reason: String| TlsError::Generate {
        what: "the HTTPS API's TLS configuration",
        reason: format!("{what}: {reason}"),
    };
    let certs = rustls_pemfile::certs(&mut identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the certificate PEM cannot be read: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("the certificate file holds no certificate".into()));
    }
    let key = rustls_pemfile::private_key(&mut identity.key_pem.expose().as_bytes())
        .map_err(|e| invalid(format!("the key PEM cannot be read: {e}")))?
        .ok_or_else(|| {
            invalid("the key file holds no private key (PKCS#8, PKCS#1 or SEC1 PEM)".into())
        })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("the certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS connections accepted on a TCP listener, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

// === impl TlsListener ===

impl TlsListener {
    /// Accepts on `listener` and handshakes with `config`; the accept loop ends when the
    /// returned listener is dropped.
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(QUEUE);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(Self { local, ready })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, as axum's listener does.
                tracing::debug!(error = %e, "HTTPS API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS API: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "HTTPS API: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop holds the sender as long as this listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// How long open HTTPS API connections may take to finish after the stop signal (an HTTP/2
/// client must acknowledge the server's GOAWAY; one that never does cannot hold the shutdown).
pub const TLS_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the API `router` over TLS on `listener` until `stop`, with `ConnectInfo<SocketAddr>`
/// as [`crate::serve::serve_api`] (the HTTPS API, `api.https_listen`); open connections get
/// [`TLS_DRAIN_TIMEOUT`] to finish.
pub async fn serve_api_tls(
    listener: TlsListener,
    router: Router,
    stop: &crate::serve::Stop,
) -> Result<(), crate::serve::ServerFailed> {
    use axum::serve::ListenerExt as _;
    // `tap_io` gives the listener axum's `ConnectInfo<SocketAddr>` (its address type).
    let serve = axum::serve(
        listener.tap_io(|_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.stopped());
    let drained = {
        let stopped = stop.stopped();
        async move {
            stopped.await;
            tokio::time::sleep(TLS_DRAIN_TIMEOUT).await;
        }
    };
    tokio::select! {
        result = serve => result.map_err(|source| crate::serve::ServerFailed {
            what: "https api",
            source,
        }),
        () = drained => {
            tracing::info!("HTTPS API: connections still open {TLS_DRAIN_TIMEOUT:?} after the stop signal are closed");
            Ok(())
        }
    }
}

/// What a server's HTTPS API is made of (from its `[api]` and `[store]`).
#[derive(Clone, Debug)]
pub struct HttpsApiSettings {
    /// Where it listens (`None`: off), the server's `effective_https_listen()`.
    pub listen: Option<SocketAddr>,
    /// Whether `api.https_listen` was set (a default address that is taken is skipped with a
    /// warning instead of stopping the server: older configurations keep starting).
    pub explicit: bool,
    /// `api.tls_cert`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// `api.tls_key`.
    pub tls_key: Option<std::path::PathBuf>,
    /// `store.data_dir`, where a certificate is generated when none is configured.
    pub data_dir: std::path::PathBuf,
    /// The generated certificate's common name (`mosaic-global API`).
    pub common_name: String,
    /// Host names and addresses the generated certificate names beside
    /// [`crate::tls::default_server_names`]'s.
    pub hosts: Vec<String>,
}

// === impl HttpsApiSettings ===

impl HttpsApiSettings {
    /// A server's HTTPS API from its `[api]`, the other listeners its default address yields to
    /// (`taken`: config key, address; see [`ApiConfig::effective_https_listen`]) and
    /// `store.data_dir`; when it yields, the log names the listener that took its address.
    pub fn from_config(
        api: &ApiConfig,
        taken: &[(&'static str, SocketAddr)],
        data_dir: &std::path::Path,
        common_name: &str,
        hosts: Vec<String>,
    ) -> Self {
        let listen = api.effective_https_listen(taken);
        if listen.is_none()
            && api.https_enabled
            && let Some((key, addr)) = api.https_default_taken_by(taken)
        {
            tracing::warn!(
                "the HTTPS API is not served: {key} ({addr}) takes its default address {DEFAULT_HTTPS_API_LISTEN}; set api.https_listen to another address, or move {key} (5682 is Kuma's HTTPS API port; the global's raft.listen moved to 5689 for it)",
            );
        }
        Self {
            listen,
            explicit: api.https_listen.is_some(),
            tls_cert: api.tls_cert.clone(),
            tls_key: api.tls_key.clone(),
            data_dir: data_dir.to_path_buf(),
            common_name: common_name.to_owned(),
            hosts,
        }
    }
}

/// Why the HTTPS API could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpsApiError {
    /// `api.https_listen` could not bind.
    #[error(transparent)]
    Bind(#[from] crate::serve::BindError),
    /// The certificate could not be loaded or generated.
    #[error(
        "the HTTPS API's certificate (api.tls_cert/api.tls_key, or the one generated into store.data_dir): {0}"
    )]
    Tls(#[from] TlsError),
}

/// Binds the HTTPS API and sets up its certificate: the configured pair, or one issued from a CA
/// generated once into the data dir (`api-server-ca.pem`, which clients trust, e.g.
/// `mosaicctl --ca-cert-file`). `None` when it is off, or when its default address is taken.
pub async fn prepare(settings: &HttpsApiSettings) -> Result<Option<TlsListener>, HttpsApiError> {
    let Some(listen) = settings.listen else {
        return Ok(None);
    };
    let tcp = match crate::serve::bind("api.https_listen", listen).await {
        Ok(tcp) => tcp,
        Err(e) if !settings.explicit && e.source.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                https_listen = %listen,
                "the HTTPS API is not served: its default address {listen} is in use; set api.https_listen to a free address (or api.https_enabled = false)"
            );
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let names = crate::tls::default_server_names(&settings.hosts, listen);
    let identity = crate::tls::configured_or_generated(
        (settings.tls_cert.as_deref(), settings.tls_key.as_deref()),
        &settings.data_dir,
        crate::tls::API_SERVER_FILE_PREFIX,
        &settings.common_name,
        &names,
    )?;
    match &identity.ca_path {
        Some(ca) => tracing::info!(
            https_listen = %listen,
            ca = %ca.display(),
            names = ?names,
            "HTTPS API certificate generated; clients trust its CA (mosaicctl --ca-cert-file)"
        ),
        None => {
            tracing::info!(https_listen = %listen, "HTTPS API serves the configured api.tls_cert")
        }
    }
    let config = server_config(&identity, "api.tls_cert/api.tls_key")?;
    let listener = TlsListener::new(tcp, config).map_err(|source| crate::serve::BindError {
        what: "api.https_listen",
        addr: listen,
        source,
    })?;
    Ok(Some(listener))
}
