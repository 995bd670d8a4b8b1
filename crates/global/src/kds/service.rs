//! The tonic `KdsService`: authenticates each stream, registers it (a second stream of the same
//! zone and direction ends the first) and hands it to its session task, inside a tracing span
//! carrying the zone.

use std::sync::Arc;

use mosaic_proto::kds::{
    DiscoveryRequest, DiscoveryResponse, kds_service_server::KdsService as KdsServiceTrait,
};
use mosaic_runtime::stream_channel::{self, ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use super::{
    Shared, auth, global_to_zone::GlobalToZone, registry::Direction, zone_to_global::ZoneToGlobal,
};

/// Responses buffered per stream before the session waits for the zone to read.
const STREAM_BUFFER: usize = 16;

/// The KDS gRPC service of one replica.
#[derive(Clone)]
pub struct KdsService {
    shared: Arc<Shared>,
}

// === impl KdsService ===

impl KdsService {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[tonic::async_trait]
impl KdsServiceTrait for KdsService {
    type GlobalToZoneStream = ReceiverStream<DiscoveryResponse>;
    type ZoneToGlobalStream = ReceiverStream<DiscoveryRequest>;

    async fn global_to_zone(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneStream>, Status> {
        let identity =
            auth::authenticate(&self.shared, request.metadata(), Direction::GlobalToZone).await?;
        // Subscribe before anything is read, so no change can fall between a snapshot and the feed.
        let feed = self.shared.feed.subscribe();
        let internal = self.shared.store.subscribe_internal();
        let registration = self
            .shared
            .registry
            .register(&identity.zone, Direction::GlobalToZone);
        let (tx, rx) = stream_channel::channel(STREAM_BUFFER);
        let span = tracing::info_span!("kds", zone = %identity.zone, stream = "GlobalToZone");
        let session = GlobalToZone::new(self.shared.clone(), identity, tx);
        tokio::spawn(
            session
                .run(
                    request.into_inner(),
                    feed,
                    internal,
                    registration.replaced,
                    registration.seq,
                )
                .instrument(span),
        );
        Ok(Response::new(rx))
    }

    async fn zone_to_global(
        &self,
        request: Request<Streaming<DiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalStream>, Status> {
        let identity =
            auth::authenticate(&self.shared, request.metadata(), Direction::ZoneToGlobal).await?;
        let registration = self
            .shared
            .registry
            .register(&identity.zone, Direction::ZoneToGlobal);
        let (tx, rx) = stream_channel::channel(STREAM_BUFFER);
        let span = tracing::info_span!("kds", zone = %identity.zone, stream = "ZoneToGlobal");
        let session = ZoneToGlobal::new(self.shared.clone(), identity, tx);
        tokio::spawn(
            session
                .run(
                    request.into_inner(),
                    registration.replaced,
                    registration.seq,
                )
                .instrument(span),
        );
        Ok(Response::new(rx))
    }
}
