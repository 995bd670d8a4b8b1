//! `KdsProtocolDriver`: a minimal KDS server for tests that the test controls step by step. It
//! implements `mosaic.kds.v1.KdsService` only far enough to hand each opened stream to the test
//! (its metadata, what the zone sends, a sender for what the "global" answers) and to refuse
//! connections on demand. It holds no state and makes no decisions: it is a protocol driver for
//! the zone's client, not a global.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
};

use mosaic_proto::kds::{
    DiscoveryRequest, DiscoveryResponse,
    kds_service_server::{KdsService, KdsServiceServer},
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming, metadata::MetadataMap};

use super::fixtures::within;

/// A GlobalToZone stream as the driver sees it.
pub struct GlobalToZoneStream {
    /// The stream's gRPC metadata.
    pub metadata: MetadataMap,
    /// What the zone sends (subscribes, ACKs, NACKs).
    pub requests: mpsc::Receiver<DiscoveryRequest>,
    /// What the "global" sends; send an `Err` to fail the stream, drop it to close the stream.
    pub responses: mpsc::Sender<Result<DiscoveryResponse, Status>>,
}

/// A ZoneToGlobal stream as the driver sees it.
pub struct ZoneToGlobalStream {
    /// The stream's gRPC metadata.
    pub metadata: MetadataMap,
    /// What the zone sends (its responses).
    pub responses: mpsc::Receiver<DiscoveryResponse>,
    /// What the "global" answers (ACK/NACK, subscribe).
    pub requests: mpsc::Sender<Result<DiscoveryRequest, Status>>,
}

#[derive(Clone)]
struct Service {
    g2z: mpsc::UnboundedSender<GlobalToZoneStream>,
    z2g: mpsc::UnboundedSender<ZoneToGlobalStream>,
    refusal: Arc<Mutex<Option<Status>>>,
    refused: mpsc::UnboundedSender<MetadataMap>,
}

/// The driver: a running server plus the streams zones opened on it.
pub struct KdsProtocolDriver {
    /// Where it listens.
    pub addr: SocketAddr,
    g2z: mpsc::UnboundedReceiver<GlobalToZoneStream>,
    z2g: mpsc::UnboundedReceiver<ZoneToGlobalStream>,
    refused: mpsc::UnboundedReceiver<MetadataMap>,
    refusal: Arc<Mutex<Option<Status>>>,
    stop: Option<oneshot::Sender<()>>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl KdsService for Service {
    type GlobalToZoneStream = BoxStream<DiscoveryResponse>;
    type ZoneToGlobalStream = BoxStream<DiscoveryRequest>;

    async fn global_to_zone(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneStream>, Status> {
        if let Some(status) = self.refusal.lock().unwrap().clone() {
            let _ = self.refused.send(request.metadata().clone());
            return Err(status);
        }
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let (req_tx, req_rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if req_tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        let (resp_tx, resp_rx) = mpsc::channel(1024);
        let _ = self.g2z.send(GlobalToZoneStream {
            metadata,
            requests: req_rx,
            responses: resp_tx,
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(resp_rx))))
    }

    async fn zone_to_global(
        &self,
        request: Request<Streaming<DiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalStream>, Status> {
        if let Some(status) = self.refusal.lock().unwrap().clone() {
            return Err(status);
        }
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let (in_tx, in_rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if in_tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        let (out_tx, out_rx) = mpsc::channel(1024);
        let _ = self.z2g.send(ZoneToGlobalStream {
            metadata,
            responses: in_rx,
            requests: out_tx,
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

impl KdsProtocolDriver {
    /// Starts a plain-text driver on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with_tls(None).await
    }

    /// Starts a driver, with TLS when `identity` (cert chain PEM, key PEM) is given.
    pub async fn start_with_tls(identity: Option<(String, String)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (g2z_tx, g2z) = mpsc::unbounded_channel();
        let (z2g_tx, z2g) = mpsc::unbounded_channel();
        let (refused_tx, refused) = mpsc::unbounded_channel();
        let refusal = Arc::new(Mutex::new(None));
        let service = Service {
            g2z: g2z_tx,
            z2g: z2g_tx,
            refusal: refusal.clone(),
            refused: refused_tx,
        };
        let (stop, stop_rx) = oneshot::channel::<()>();
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key)) = identity {
            let tls = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key));
            builder = builder.tls_config(tls).unwrap();
        }
        let router = builder.add_service(KdsServiceServer::new(service));
        tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Self {
            addr,
            g2z,
            z2g,
            refused,
            refusal,
            stop: Some(stop),
        }
    }

    /// `grpc://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// Refuses every new stream with `status` (or accepts again with `None`).
    pub fn refuse(&self, status: Option<Status>) {
        *self.refusal.lock().unwrap() = status;
    }

    /// The next refused attempt's metadata.
    pub async fn next_refused(&mut self) -> MetadataMap {
        within("a refused KDS attempt", self.refused.recv())
            .await
            .expect("driver stopped")
    }

    /// The next GlobalToZone stream a zone opened.
    pub async fn next_global_to_zone(&mut self) -> GlobalToZoneStream {
        within("a GlobalToZone stream", self.g2z.recv())
            .await
            .expect("driver stopped")
    }

    /// The next ZoneToGlobal stream a zone opened.
    pub async fn next_zone_to_global(&mut self) -> ZoneToGlobalStream {
        within("a ZoneToGlobal stream", self.z2g.recv())
            .await
            .expect("driver stopped")
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for KdsProtocolDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl GlobalToZoneStream {
    /// The next request from the zone.
    pub async fn next_request(&mut self) -> DiscoveryRequest {
        within("a request from the zone", self.requests.recv())
            .await
            .expect("the zone closed the GlobalToZone stream")
    }

    /// The first requests of a stream: one subscribe per global-owned type.
    pub async fn subscriptions(&mut self) -> Vec<DiscoveryRequest> {
        let mut out = Vec::new();
        for _ in 0..mosaic_kds::KdsType::GLOBAL_TO_ZONE.len() {
            let r = self.next_request().await;
            assert!(r.response_nonce.is_empty(), "expected a subscribe: {r:?}");
            out.push(r);
        }
        out
    }

    /// Sends a response (or chunk).
    pub async fn send(&self, response: DiscoveryResponse) {
        self.responses.send(Ok(response)).await.unwrap();
    }

    /// Sends `response` and returns the zone's answer to it.
    pub async fn exchange(&mut self, response: DiscoveryResponse) -> DiscoveryRequest {
        let nonce = response.nonce.clone();
        self.send(response).await;
        let answer = self.next_request().await;
        assert_eq!(answer.response_nonce, nonce, "{answer:?}");
        answer
    }
}

impl ZoneToGlobalStream {
    /// The next response (chunk) from the zone.
    pub async fn next_response(&mut self) -> DiscoveryResponse {
        within("a response from the zone", self.responses.recv())
            .await
            .expect("the zone closed the ZoneToGlobal stream")
    }

    /// ACKs `response`.
    pub async fn ack(&self, response: &DiscoveryResponse) {
        self.requests
            .send(Ok(DiscoveryRequest {
                r#type: response.r#type.clone(),
                known: vec![],
                response_nonce: response.nonce.clone(),
                rejected: vec![],
            }))
            .await
            .unwrap();
    }
}
