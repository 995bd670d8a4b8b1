//! A simulated zone: a lean KDS client speaking `mosaic.kds.v1` directly, many of them in one
//! process.
//!
//! Each simulated zone opens its own TLS connection to the global's KDS port with its own zone
//! token and the metadata a `mosaic-zone` sends, subscribes to every global-owned type
//! (`KdsType::GLOBAL_TO_ZONE`, with no known versions, as a new zone does), reassembles chunks
//! with the KDS crate's `Assembler`, decodes and validates every item with the KDS crate's
//! `decode` (what a zone does before applying), and ACKs each response (NACKing the
//! items that fail, as a zone does). On ZoneToGlobal it sends the first authoritative (empty)
//! responses a zone without data planes sends, and reads the global's ACKs.
//!
//! What it leaves out, on purpose: the zone's sled store. A real zone applies each response in
//! one sled transaction and fsyncs before it ACKs; a thousand sled databases in one process
//! (each with its own flusher thread and page cache) would measure a thousand fsyncs on one
//! disk, not the global's fan-out. The time a zone needs to persist is its own and is the same
//! whether 10 or 1,000 zones are connected.

use std::{collections::BTreeMap, collections::BTreeSet, time::Duration, time::Instant};

use mosaic_kds::KdsType;
use mosaic_kds::assemble::{Assembled, Assembler};
use mosaic_kds::{
    decode::decode,
    respond,
    subscribe::{FEATURES, FEATURES_HEADER, VERSION_HEADER, ZONE_HEADER, subscribe_request},
};
use mosaic_proto::kds::{
    DiscoveryRequest, DiscoveryResponse, Rejection, ResourceRef,
    kds_service_client::KdsServiceClient,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Streaming, metadata::AsciiMetadataValue};

use crate::error::BenchError;

/// How long a zone may take to connect and receive its first full sync.
const SYNC_DEADLINE: Duration = Duration::from_secs(120);

/// Where the global's KDS listens and the CA its certificate chains to.
#[derive(Clone, Debug)]
pub struct KdsTarget {
    /// `grpcs://127.0.0.1:PORT`.
    pub url: String,
    /// The KDS CA (PEM).
    pub ca_pem: Vec<u8>,
}

/// What a simulated zone reports.
#[derive(Clone, Debug)]
pub enum ZoneEvent {
    /// The zone ACKed a response holding the watched Mesh; `tag` is its
    /// `metrics.enabledBackend` (the benchmark writes a new one per round).
    MeshAcked {
        /// The zone's index.
        zone: usize,
        /// The Mesh's `metrics.enabledBackend`.
        tag: String,
        /// When the ACK was handed to the stream.
        at: Instant,
    },
    /// The zone's session ended.
    Ended {
        /// The zone's index.
        zone: usize,
        /// Why.
        reason: String,
    },
}

/// One connected simulated zone; its streams close when it is dropped.
#[derive(Debug)]
pub struct SimZone {
    task: JoinHandle<()>,
}

impl Drop for SimZone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimZone {
    /// Connects zone `name` (index `index`) with `token`, and returns once every global-owned
    /// type's first (authoritative) response was ACKed. ACKs of responses holding Mesh `mesh`
    /// are reported on `events`.
    pub async fn connect(
        index: usize,
        name: &str,
        token: &str,
        target: &KdsTarget,
        mesh: &str,
        events: mpsc::UnboundedSender<ZoneEvent>,
    ) -> Result<Self, BenchError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            BenchError::Stream(format!("simulated zone {name}: {what}: {e}"))
        };
        let channel = kds_endpoint(target)
            .map_err(|e| fail("endpoint", &e))?
            .connect()
            .await
            .map_err(|e| fail("connect", &e))?;
        let mut client = KdsServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(16 * 1024 * 1024);
        let metadata = Metadata::new(name, token).map_err(|e| fail("metadata", &e))?;

        let (g_tx, g_rx) = mpsc::channel(64);
        for kind in KdsType::GLOBAL_TO_ZONE {
            let _ = g_tx.try_send(subscribe_request(kind, &BTreeMap::new()));
        }
        let mut request = tonic::Request::new(ReceiverStream::new(g_rx));
        metadata.apply(request.metadata_mut());
        let g_in = client
            .global_to_zone(request)
            .await
            .map_err(|s| fail("GlobalToZone", &s))?
            .into_inner();

        let (z_tx, z_rx) = mpsc::channel(64);
        for kind in KdsType::ZONE_TO_GLOBAL {
            for r in respond::build(kind, true, &[], &[], 1024 * 1024) {
                let _ = z_tx.try_send(r);
            }
        }
        let mut request = tonic::Request::new(ReceiverStream::new(z_rx));
        metadata.apply(request.metadata_mut());
        let z_in = client
            .zone_to_global(request)
            .await
            .map_err(|s| fail("ZoneToGlobal", &s))?
            .into_inner();

        let (synced_tx, synced_rx) = oneshot::channel();
        let session = Session {
            index,
            mesh: mesh.to_string(),
            events: events.clone(),
            unsynced: KdsType::GLOBAL_TO_ZONE
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            synced: Some(synced_tx),
        };
        let task = tokio::spawn(async move {
            let reason = session.run(g_in, g_tx, z_in, z_tx).await;
            let _ = events.send(ZoneEvent::Ended {
                zone: index,
                reason,
            });
        });
        let zone = SimZone { task };
        match tokio::time::timeout(SYNC_DEADLINE, synced_rx).await {
            Ok(Ok(())) => Ok(zone),
            Ok(Err(_)) => Err(BenchError::Stream(format!(
                "simulated zone {name}: the session ended before the first sync (see the global's log)"
            ))),
            Err(_) => Err(BenchError::Timeout {
                what: format!("simulated zone {name}'s first sync"),
                after: SYNC_DEADLINE,
            }),
        }
    }
}

/// The metadata a zone sends on both streams.
/// The TLS endpoint of `target` (`grpcs://HOST:PORT`), trusting only its KDS CA, with the
/// keepalive a zone uses.
fn kds_endpoint(target: &KdsTarget) -> Result<tonic::transport::Endpoint, String> {
    let rest = target
        .url
        .strip_prefix("grpcs://")
        .ok_or_else(|| format!("{:?} is not a grpcs:// URL", target.url))?;
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&target.ca_pem))
        .domain_name(host.trim_matches(|c| c == '[' || c == ']'));
    tonic::transport::Endpoint::from_shared(format!("https://{rest}"))
        .and_then(|e| e.tls_config(tls))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(30))
                .http2_keep_alive_interval(Duration::from_secs(15))
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true)
                .tcp_nodelay(true)
        })
        .map_err(|e| e.to_string())
}

struct Metadata {
    authorization: AsciiMetadataValue,
    zone: AsciiMetadataValue,
    features: AsciiMetadataValue,
}

impl Metadata {
    fn new(zone: &str, token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        let mut authorization = AsciiMetadataValue::try_from(format!("Bearer {token}"))?;
        authorization.set_sensitive(true);
        Ok(Self {
            authorization,
            zone: AsciiMetadataValue::try_from(zone)?,
            features: AsciiMetadataValue::try_from(FEATURES.join(","))?,
        })
    }

    fn apply(&self, map: &mut tonic::metadata::MetadataMap) {
        map.insert("authorization", self.authorization.clone());
        map.insert(ZONE_HEADER, self.zone.clone());
        map.insert(
            VERSION_HEADER,
            AsciiMetadataValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        map.insert(FEATURES_HEADER, self.features.clone());
    }
}

struct Session {
    index: usize,
    mesh: String,
    events: mpsc::UnboundedSender<ZoneEvent>,
    unsynced: BTreeSet<String>,
    synced: Option<oneshot::Sender<()>>,
}

impl Session {
    /// Serves both streams until one ends; returns why.
    async fn run(
        mut self,
        mut g_in: Streaming<DiscoveryResponse>,
        g_tx: mpsc::Sender<DiscoveryRequest>,
        mut z_in: Streaming<DiscoveryRequest>,
        // Held so the ZoneToGlobal stream stays open.
        _z_tx: mpsc::Sender<DiscoveryResponse>,
    ) -> String {
        let mut assembler = Assembler::new();
        loop {
            tokio::select! {
                m = g_in.message() => {
                    let chunk = match m {
                        Ok(Some(c)) => c,
                        Ok(None) => return "the global closed GlobalToZone".into(),
                        Err(s) => return format!("GlobalToZone: {s}"),
                    };
                    let response = match assembler.push(chunk) {
                        Ok(Some(r)) => r,
                        Ok(None) => continue,
                        Err(e) => return e.to_string(),
                    };
                    let (ack, tag) = self.answer(&response);
                    if g_tx.send(ack).await.is_err() {
                        return "GlobalToZone closed".into();
                    }
                    let at = Instant::now();
                    if let Some(tag) = tag {
                        let _ = self.events.send(ZoneEvent::MeshAcked { zone: self.index, tag, at });
                    }
                    if response.authoritative && self.unsynced.remove(&response.type_url)
                        && self.unsynced.is_empty()
                        && let Some(s) = self.synced.take()
                    {
                        let _ = s.send(());
                    }
                }
                m = z_in.message() => match m {
                    Ok(Some(_ack)) => {}
                    Ok(None) => return "the global closed ZoneToGlobal".into(),
                    Err(s) => return format!("ZoneToGlobal: {s}"),
                },
            }
        }
    }

    /// Validates a response as a zone does; returns its ACK (or NACK) and the watched Mesh's tag.
    fn answer(&self, response: &Assembled) -> (DiscoveryRequest, Option<String>) {
        let mut rejected = Vec::new();
        let mut tag = None;
        match response.type_url.parse::<KdsType>() {
            Ok(kind) => {
                for wire in &response.resources {
                    if let Err(reason) = decode(kind, wire) {
                        rejected.push(Rejection {
                            r#ref: Some(ResourceRef {
                                r#type: wire.r#type.clone(),
                                mesh: wire.mesh.clone(),
                                name: wire.name.clone(),
                            }),
                            reason,
                        });
                        continue;
                    }
                    if wire.r#type == "Mesh" && wire.name == self.mesh {
                        tag = serde_json::from_slice::<serde_json::Value>(&wire.json)
                            .ok()
                            .and_then(|v| {
                                v.pointer("/metrics/enabledBackend")
                                    .and_then(|t| t.as_str())
                                    .map(str::to_string)
                            });
                    }
                }
            }
            Err(_) => rejected.push(Rejection {
                r#ref: Some(ResourceRef {
                    r#type: response.type_url.clone(),
                    ..ResourceRef::default()
                }),
                reason: "a type this zone does not take".into(),
            }),
        }
        (
            DiscoveryRequest {
                r#type: response.type_url.clone(),
                known: Vec::new(),
                response_nonce: response.nonce.clone(),
                rejected,
            },
            tag,
        )
    }
}
