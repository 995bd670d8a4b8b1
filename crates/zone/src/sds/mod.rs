//! The dataplane server on `dp_server.listen`: Envoy's
//! `envoy.service.secret.v3.SecretDiscoveryService` over TLS.
//!
//! - `StreamSecrets`: the first request carries `node.id = "<mesh>.<name>"` and the gRPC
//!   metadata `authorization: Bearer <dataplane token>`; the token is verified with the public
//!   keys the global synced for that mesh and must name that dataplane. The node may register
//!   itself by sending its Dataplane in node metadata `dataplane.resource`; otherwise it must
//!   have been registered through the zone API. The tags the token names must match the
//!   Dataplane's (Kuma's rule; with `dataplane_tokens.require_all_tags` every tag must be
//!   named). Then the stream receives `identity_cert:secret:<mesh>` (chain + key) and
//!   `mesh_ca:secret:<mesh>` (every root of the mesh), again whenever either changes.
//! - `FetchSecrets`: the same checks, one answer.
//! - `DeltaSecrets`: not offered (`UNIMPLEMENTED`); Envoy falls back to `StreamSecrets`.
//!
//! Module map:
//! - [`error`]: `SdsError`, why a request was refused, and its gRPC status.
//! - [`auth`]: the bearer token and its verification against the synced keys.
//! - [`registry`]: registration from node metadata, and the token-tags rule.
//! - [`secrets`]: Envoy `Secret`s and DiscoveryResponses from a certificate and trust bundle.
//! - [`feed`]: the store's change feed read once and routed to the sessions it concerns.
//! - [`insight`]: the DataplaneInsight written when a new certificate is served.
//! - `session`: one `StreamSecrets` stream.

pub mod auth;
pub mod error;
pub mod feed;
pub mod insight;
pub mod registry;
pub mod secrets;
mod session;

use std::{future::Future, sync::Arc, time::Duration};

use mosaic_proto::envoy::envoy::service::{
    discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    },
    secret::v3::secret_discovery_service_server::SecretDiscoveryService,
};
use mosaic_proto::sds_service::LeanSds;
use mosaic_runtime::{grpc, stream_channel, tls::ServerIdentity};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming, service::Routes};

pub use self::auth::TokenRules;
pub use self::error::SdsError;
use self::{auth::bearer_token, secrets::Material};
use crate::{issuer::Issuer, store::ZoneStore};
use mosaic_core::resource::UnknownFields;

/// Largest request a data plane may send (a Dataplane in node metadata fits easily).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// What every stream shares.
#[derive(Debug)]
struct Shared {
    store: Arc<ZoneStore>,
    /// The store's feed, routed to the sessions each change concerns.
    feed: feed::SessionFeed,
    issuer: Issuer,
    zone: String,
    rules: TokenRules,
    stop: watch::Receiver<bool>,
    /// `api.unknown_fields`: what a registering Dataplane's unknown fields get.
    unknown_fields: UnknownFields,
}

/// The SDS server (cheap to clone).
#[derive(Clone, Debug)]
pub struct SdsServer {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

/// Why the dataplane server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("dataplane server (SDS) failed: {0}")]
pub struct ServeError(#[from] tonic::transport::Error);

// === impl SdsServer ===

impl SdsServer {
    /// A server for `zone`'s data planes, over its store and issuer, with Kuma's token rules.
    pub fn new(store: Arc<ZoneStore>, issuer: Issuer, zone: &str) -> Self {
        Self::with_options(
            store,
            issuer,
            zone,
            TokenRules::default(),
            UnknownFields::default(),
        )
    }

    /// A server for `zone`'s data planes whose tokens bind their Dataplanes by `rules`, with
    /// `policy` (`api.unknown_fields`) for the fields of a Dataplane a data plane registers that
    /// Mosaic does not know.
    pub fn with_options(
        store: Arc<ZoneStore>,
        issuer: Issuer,
        zone: &str,
        rules: TokenRules,
        policy: UnknownFields,
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                feed: feed::SessionFeed::new(store.clone()),
                store,
                issuer,
                zone: zone.to_string(),
                rules,
                stop: stop_rx,
                unknown_fields: policy,
            }),
            stop,
        }
    }

    /// The gRPC service (for embedding in another tonic server, or tests).
    /// `StreamSecrets` streams start with small buffers ([`LeanSds`]): a zone holds one per data
    /// plane.
    pub fn service(&self) -> LeanSds<Self> {
        LeanSds::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    /// Serves SDS over TLS with `identity` on `listener` until `shutdown` completes; then ends
    /// every open stream (status `UNAVAILABLE`, so data planes reconnect) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        identity: &ServerIdentity,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let keepalive = grpc::Keepalive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            tcp: None,
        };
        let service = self.service();
        grpc::serve(
            Routes::new(service),
            listener,
            identity,
            keepalive,
            self.stop,
            shutdown,
        )
        .await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsServer {
    type DeltaSecretsStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;
    type StreamSecretsStream = stream_channel::ReceiverStream<DiscoveryResponse>;

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented(
            "DeltaSecrets is not offered: use StreamSecrets (state of the world) or FetchSecrets",
        ))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let token = bearer_token(request.metadata()).map_err(|e| {
            tracing::warn!(zone = %self.shared.zone, error = %e, "SDS stream refused");
            Status::from(e)
        })?;
        let (tx, rx) = stream_channel::channel(4);
        tokio::spawn(session::run(
            self.shared.clone(),
            token,
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(rx))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let shared = &self.shared;
        let token = bearer_token(request.metadata())?;
        let opened = session::open(shared, &token, request.get_ref()).map_err(|e| {
            tracing::warn!(zone = %shared.zone, error = %e, "SDS fetch refused");
            Status::from(e)
        })?;
        let (mesh, name) = (&opened.caller.mesh, &opened.caller.name);
        let current = shared
            .issuer
            .dataplane_certificate(mesh, name, &opened.tags)
            .await
            .map_err(|e| Status::from(SdsError::from(e)))?;
        let backends = shared.issuer.backend_names(mesh).await;
        if let Err(e) = insight::record(&shared.store, &current, backends) {
            tracing::warn!(zone = %shared.zone, mesh = %mesh, dataplane = %name, error = %e, "DataplaneInsight not updated");
        }
        let bundle = shared.issuer.trust_bundle(mesh).await;
        let material = Material {
            identity: Some(&current),
            bundle: &bundle,
        };
        material
            .response(&opened.names, "0".into())
            .map(Response::new)
            .ok_or_else(|| {
                Status::unavailable(format!(
                    "mesh {mesh:?} has no trust bundle yet (its CA backends could not be reached): retry shortly"
                ))
            })
    }
}
