//! `KdsClient`: dials the global, runs one session (GlobalToZone + ZoneToGlobal over one HTTP/2
//! connection with keepalive pings), and when the session fails reconnects with jittered
//! exponential backoff, failing over to the next configured global address.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use crate::config::ZoneConfig;
use mosaic_proto::kds::kds_service_client::KdsServiceClient;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;

use super::{
    auth::StreamMetadata,
    backoff::Backoff,
    endpoint::{ChannelSettings, EndpointError, GlobalEndpoint},
    error::{SessionError, check_outgoing},
    global_to_zone,
    session::SessionCtx,
    status::KdsStatus,
    zone_to_global,
};
use crate::{
    insight::ZoneInsightReporter,
    store::{KdsType, ZoneStore},
};

/// Room for the requests/responses a stream's writer may queue ahead of the network.
const OUTBOUND_CAPACITY: usize = 64;

/// Tunables of the KDS client (defaults suit production; tests shorten the backoff).
#[derive(Clone, Debug)]
pub struct KdsOptions {
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// TCP connect and TLS handshake timeout.
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_interval: Duration,
    /// A keepalive ping unanswered this long closes the connection.
    pub keepalive_timeout: Duration,
    /// A ZoneToGlobal response unanswered this long marks the stream dead.
    pub ack_timeout: Duration,
    /// Largest gRPC message sent or accepted.
    pub max_message_bytes: usize,
    /// JSON budget of one ZoneToGlobal chunk.
    pub chunk_bytes: usize,
}

/// What the client needs to know.
#[derive(Clone, Debug)]
pub struct KdsClientConfig {
    /// This zone's name.
    pub zone: String,
    /// The global's addresses, tried in order.
    pub endpoints: Vec<GlobalEndpoint>,
    /// PEM of `global.ca_cert` (required for TLS addresses).
    pub ca_pem: Option<Vec<u8>>,
    /// `global.token_file`, re-read on every connection attempt.
    pub token_file: Option<PathBuf>,
    /// Tunables.
    pub options: KdsOptions,
}

/// The KDS client.
#[derive(Debug)]
pub struct KdsClient {
    config: KdsClientConfig,
    store: Arc<ZoneStore>,
    insight: ZoneInsightReporter,
    status: watch::Sender<KdsStatus>,
}

// === impl KdsOptions ===

impl Default for KdsOptions {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_timeout: Duration::from_secs(20),
            ack_timeout: Duration::from_secs(120),
            max_message_bytes: 16 * 1024 * 1024,
            chunk_bytes: 1024 * 1024,
        }
    }
}

// === impl KdsClientConfig ===

impl KdsClientConfig {
    /// From the zone's configuration: `global.address` (one URL or a comma-separated list),
    /// `global.ca_cert` (read now; required when an address uses TLS) and `global.token_file`.
    pub fn from_zone_config(config: &ZoneConfig) -> Result<Self, EndpointError> {
        let endpoints = GlobalEndpoint::parse_list(config.global.address.as_str())?;
        let ca_pem = match &config.global.ca_cert {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| EndpointError::ReadCa {
                    path: path.clone(),
                    source,
                })?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(EndpointError::NotPem { path: path.clone() });
                }
                Some(pem)
            }
            None => None,
        };
        if ca_pem.is_none()
            && let Some(ep) = endpoints.iter().find(|e| e.tls)
        {
            return Err(EndpointError::MissingCa {
                url: ep.url.clone(),
            });
        }
        Ok(Self {
            zone: config.zone.as_str().to_string(),
            endpoints,
            ca_pem,
            token_file: config.global.token_file.clone(),
            options: KdsOptions::default(),
        })
    }
}

// === impl KdsClient ===

impl KdsClient {
    /// A client syncing `store`.
    pub fn new(
        config: KdsClientConfig,
        store: Arc<ZoneStore>,
        insight: ZoneInsightReporter,
    ) -> Self {
        let (status, _) = watch::channel(KdsStatus::default());
        Self {
            config,
            store,
            insight,
            status,
        }
    }

    /// Follows the client's status.
    pub fn status(&self) -> watch::Receiver<KdsStatus> {
        self.status.subscribe()
    }

    /// Connects, syncs and reconnects until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let zone = self.config.zone.clone();
        for ep in self.config.endpoints.iter().filter(|e| !e.tls) {
            tracing::warn!(
                zone = %zone, global = %ep.url,
                "KDS to the global is not encrypted (grpc://): use grpcs:// with global.ca_cert outside tests and development"
            );
        }
        metrics::gauge!("mosaic_zone_kds_connected").set(0.0);
        let options = &self.config.options;
        let mut backoff = Backoff::new(options.backoff_min, options.backoff_max);
        let mut index = 0usize;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let ep = &self.config.endpoints[index % self.config.endpoints.len()];
            let span = tracing::info_span!("kds", zone = %zone, global = %ep.url);
            let mut started: Option<String> = None;
            let outcome = tokio::select! {
                e = self.session(ep, &mut started).instrument(span.clone()) => Some(e),
                _ = shutdown.wait_for(|s| *s) => None,
            };
            let established = started.is_some();
            if let Some(id) = started.take() {
                self.insight.session_ended(&id);
            }
            metrics::gauge!("mosaic_zone_kds_connected").set(0.0);
            let Some(error) = outcome else {
                self.status.send_modify(|s| s.connected = false);
                break;
            };
            span.in_scope(|| match &error {
                SessionError::Refused { .. } => tracing::error!("{error}"),
                _ if established => tracing::warn!("KDS session ended: {error}"),
                _ => tracing::warn!("KDS connection failed: {error}"),
            });
            self.status.send_modify(|s| {
                s.connected = false;
                s.last_error = Some(error.to_string());
            });
            if established {
                backoff.reset();
            }
            index = index.wrapping_add(1);
            let delay = backoff.next_delay();
            tracing::info!(zone = %zone, retry_in = ?delay, next = %self.config.endpoints[index % self.config.endpoints.len()].url, "reconnecting to the global");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        tracing::info!(zone = %zone, "KDS client stopped");
    }

    /// One session; returns why it ended. Sets `started` once both streams are open.
    async fn session(&self, ep: &GlobalEndpoint, started: &mut Option<String>) -> SessionError {
        match self.try_session(ep, started).await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn try_session(
        &self,
        ep: &GlobalEndpoint,
        started: &mut Option<String>,
    ) -> Result<std::convert::Infallible, SessionError> {
        let cfg = &self.config;
        let metadata = StreamMetadata::load(&cfg.zone, cfg.token_file.as_deref())?;
        if !metadata.has_token() {
            tracing::warn!(
                "global.token_file is not set: connecting without a zone token (a global that checks tokens will refuse)"
            );
        }
        let settings = ChannelSettings {
            connect_timeout: cfg.options.connect_timeout,
            keepalive_interval: cfg.options.keepalive_interval,
            keepalive_timeout: cfg.options.keepalive_timeout,
        };
        let channel = ep
            .endpoint(cfg.ca_pem.as_deref(), &settings)?
            .connect()
            .await
            .map_err(|e| SessionError::Connect {
                url: ep.url.clone(),
                reason: error_chain(&e),
            })?;
        let mut client = KdsServiceClient::new(channel)
            .max_decoding_message_size(cfg.options.max_message_bytes)
            .max_encoding_message_size(cfg.options.max_message_bytes);
        let ctx = SessionCtx {
            store: self.store.clone(),
            insight: self.insight.clone(),
            zone: cfg.zone.clone(),
            session_id: mosaic_kds::respond::nonce(),
            options: cfg.options.clone(),
        };

        // GlobalToZone: subscribe to every global-owned type with the versions held.
        let (g_tx, g_rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let mut known = HashMap::new();
        for kind in KdsType::GLOBAL_TO_ZONE {
            let versions = self.store.versions(kind)?;
            let subscribe = mosaic_kds::subscribe::subscribe_request(kind, &versions);
            check_outgoing(
                "GlobalToZone",
                "DiscoveryRequest",
                kind.as_str(),
                &subscribe,
                cfg.options.max_message_bytes,
            )?;
            let _ = g_tx.try_send(subscribe);
            known.insert(kind, versions);
        }
        let mut request = tonic::Request::new(ReceiverStream::new(g_rx));
        metadata.apply(request.metadata_mut());
        let g_in = client
            .global_to_zone(request)
            .await
            .map_err(|s| SessionError::from_status(&cfg.zone, "GlobalToZone", &s))?
            .into_inner();

        // ZoneToGlobal: the first authoritative responses are queued before the stream opens;
        // the feed is followed from before they were read, so no change falls in between.
        let feed = self.store.subscribe();
        let (initial, pending) = zone_to_global::initial_responses(&ctx)?;
        let (z_tx, z_rx) = mpsc::channel(initial.len() + OUTBOUND_CAPACITY);
        for r in initial {
            let _ = z_tx.try_send(r);
        }
        let mut request = tonic::Request::new(ReceiverStream::new(z_rx));
        metadata.apply(request.metadata_mut());
        let z_in = client
            .zone_to_global(request)
            .await
            .map_err(|s| SessionError::from_status(&cfg.zone, "ZoneToGlobal", &s))?
            .into_inner();

        *started = Some(ctx.session_id.clone());
        self.insight.session_started(&ctx.session_id, &ep.url);
        self.status.send_modify(|s| {
            s.connected = true;
            s.global = Some(ep.url.clone());
            s.sessions += 1;
        });
        metrics::gauge!("mosaic_zone_kds_connected").set(1.0);
        tracing::info!(session = %ctx.session_id, "connected to the global");

        let error = tokio::select! {
            e = global_to_zone::run(&ctx, g_in, g_tx, known) => e,
            e = zone_to_global::run(&ctx, z_in, z_tx, feed, pending) => e,
        };
        Err(error)
    }
}

/// An error and its sources on one line (tonic's transport errors say little on their own).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
