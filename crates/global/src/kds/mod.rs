//! The KDS server: the global end of the zone ⇄ global discovery protocol
//! (`mosaic.kds.v1.KdsService`, see `crates/proto/proto/mosaic/kds/v1/kds.proto` for the rules).
//!
//! Every replica serves KDS from its own applied state and change feed (no polling); what zones
//! send goes through the leader. Streams are authenticated with zone tokens over TLS.
//!
//! Module map:
//! - [`state`]: the current items of a type in wire form, from the applied state.
//! - [`auth`]: zone-token authentication, zone-name check, disabled zones, self-registration.
//! - [`registry`]: open streams per zone (a second one replaces the first), session counters.
//! - [`insight`]: the ZoneInsight read-modify-write (subscriptions, stats, CA health).
//! - [`feed`]: the store's change feed relayed once, with only what zones are sent.
//! - [`wire_cache`]: each changed item's wire form, read once per change for every session.
//! - [`global_to_zone`]: a GlobalToZone session (authoritative diff, deltas, ACK/NACK, lag).
//! - [`zone_to_global`]: a ZoneToGlobal session (checks, zone stamping, batch write, prune).
//! - [`zone_trust`]: the MeshTrusts a zone reports in its ZoneInsight, kept as MeshTrusts.
//! - [`service`]: the tonic service that authenticates streams and starts their sessions.
//! - [`size`]: messages over the size limit end the stream with RESOURCE_EXHAUSTED, logged.
//! - [`tls`]: the configured or generated (cluster-shared CA) server certificate.
//! - [`metrics`]: `mosaic_kds_*` metrics.

pub mod auth;
pub mod feed;
pub mod global_to_zone;
pub mod insight;
pub mod metrics;
pub mod registry;
pub mod service;
pub mod size;
pub mod state;
pub mod tls;
pub mod wire_cache;
pub mod zone_to_global;
pub mod zone_trust;

use std::{future::Future, sync::Arc, time::Duration};

use mosaic_proto::kds::kds_service_server::KdsServiceServer;
use mosaic_runtime::{grpc, tls::ServerIdentity};
use tokio::{net::TcpListener, sync::watch};
use tonic::service::Routes;

use crate::{store::ResourceStore, tokens::Tokens};

pub use service::KdsService;

/// Tuning of the KDS server.
#[derive(Clone, Debug)]
pub struct KdsSettings {
    /// HTTP/2 keepalive ping interval (a dead connection is detected within interval + timeout).
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// How often a session's counters are written to the zone's ZoneInsight (when they changed).
    pub insight_flush: Duration,
    /// Byte budget of the items of one response message (chunking threshold).
    pub chunk_bytes: usize,
    /// Largest message accepted from a zone.
    pub max_message_bytes: usize,
    /// What a zone's resource with fields Mosaic does not know gets (`api.unknown_fields`):
    /// dropped and logged (default, as Kuma), or rejected.
    pub unknown_fields: mosaic_core::resource::UnknownFields,
}

impl Default for KdsSettings {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
            insight_flush: Duration::from_secs(10),
            chunk_bytes: mosaic_kds::chunk::DEFAULT_CHUNK_BYTES,
            max_message_bytes: 16 * 1024 * 1024,
            unknown_fields: mosaic_core::resource::UnknownFields::Ignore,
        }
    }
}

/// Why the KDS server could not serve.
#[derive(Debug, thiserror::Error)]
pub enum KdsError {
    /// The certificate could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] tls::KdsTlsError),
    /// tonic refused the TLS configuration or the server failed.
    #[error("KDS server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Completes once `shutdown` says stop (without holding the watch's lock across awaits).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// What every session of a replica shares.
pub struct Shared {
    store: Arc<dyn ResourceStore>,
    /// The store's feed, relayed with only what zones are sent.
    feed: feed::ZoneFeed,
    /// Changed items in wire form, shared by the sessions pushing them.
    wire: wire_cache::WireCache,
    tokens: Tokens,
    registry: registry::Registry,
    settings: KdsSettings,
    shutdown: watch::Receiver<bool>,
    /// This replica's id in ZoneInsight subscriptions (the raft node id).
    instance: String,
}

/// The KDS server of one replica.
pub struct KdsServer {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

// === impl KdsServer ===

impl KdsServer {
    /// A server over `store` (this replica's store: its state, change feeds and node id).
    pub fn new(store: Arc<dyn ResourceStore>, settings: KdsSettings) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let instance = store.node_id().to_string();
        Self {
            shared: Arc::new(Shared {
                tokens: Tokens::new(store.clone()),
                feed: feed::ZoneFeed::start(&store),
                wire: wire_cache::WireCache::default(),
                store,
                registry: registry::Registry::default(),
                settings,
                shutdown,
                instance,
            }),
            stop,
        }
    }

    /// The gRPC service (for embedding in another tonic server).
    pub fn service(&self) -> KdsServiceServer<KdsService> {
        KdsServiceServer::new(KdsService::new(self.shared.clone()))
            .max_decoding_message_size(self.shared.settings.max_message_bytes)
            .max_encoding_message_size(self.shared.settings.max_message_bytes)
    }

    /// Zones with an open GlobalToZone stream on this replica.
    pub fn connected_zones(&self) -> usize {
        self.shared.registry.connected()
    }

    /// Serves KDS over TLS on `listener` until `shutdown` completes; then ends every session
    /// (each tells its zone to reconnect and records the disconnect) and returns once they are
    /// gone.
    pub async fn serve(
        self,
        listener: TcpListener,
        identity: &ServerIdentity,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), KdsError> {
        let settings = &self.shared.settings;
        let keepalive = grpc::Keepalive {
            interval: settings.keepalive_interval,
            timeout: settings.keepalive_timeout,
            tcp: Some(settings.keepalive_interval),
        };
        // Sessions watch `stop` and end their streams, so the graceful shutdown does not wait.
        let (routes, stop) = (Routes::new(self.service()), self.stop.clone());
        grpc::serve(routes, listener, identity, keepalive, stop, shutdown).await?;
        Ok(())
    }
}
