//! Test support for the KDS tests: a REAL KDS server (real raft store, real TLS with the
//! generated certificate, real tonic) and a small zone-side client written here, with a cache
//! that applies responses as a zone would. Waits poll with generous deadlines; nothing asserts
//! how long anything took.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use mosaic_core::{
    resource::{Resource, ResourceType, Spec, ZoneInsightSpec},
    token::{SigningKey, ZoneClaims},
};
use mosaic_global::{
    kds::{KdsServer, KdsSettings, tls::generated_identity},
    raft::RaftStore,
    store::{ResourceKey, ResourceStore},
    tokens::{Tokens, ZONE_KEY_RECORD},
};
use mosaic_proto::kds::{
    DiscoveryRequest, DiscoveryResponse, Rejection, Resource as WireResource, ResourceRef,
    ResourceVersion, kds_service_client::KdsServiceClient,
};
use mosaic_runtime::tls::ServerIdentity;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Request, Status, Streaming,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::support::raft_store::{DEADLINE, TestStore};

/// A KDS server over a store, on a loopback port, with its generated CA.
pub struct KdsHarness {
    /// The KDS address (`https://127.0.0.1:PORT`).
    pub url: String,
    /// The CA zones trust (`kds-ca.pem`).
    pub ca_pem: String,
    /// Issues tokens with the store's keys.
    pub tokens: Tokens,
    store: Arc<RaftStore>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Settings for tests: counters reach the ZoneInsight quickly.
pub fn test_settings() -> KdsSettings {
    KdsSettings {
        insight_flush: Duration::from_millis(100),
        ..KdsSettings::default()
    }
}

impl KdsHarness {
    /// Starts a KDS server over `store` with a generated certificate.
    pub async fn start(store: Arc<RaftStore>) -> KdsHarness {
        Self::start_with(store, test_settings()).await
    }

    /// Starts a KDS server over `store` with `settings`.
    pub async fn start_with(store: Arc<RaftStore>, settings: KdsSettings) -> KdsHarness {
        mosaic_runtime::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let identity: ServerIdentity = generated_identity(dir.path(), &names, store.as_ref())
            .await
            .expect("KDS certificate");
        let ca_pem = std::fs::read_to_string(dir.path().join("kds-ca.pem")).expect("kds-ca.pem");
        assert_eq!(identity.ca_pem.as_deref(), Some(ca_pem.as_str()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let server = KdsServer::new(store.clone(), settings);
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(listener, &identity, async {
                    let _ = stopped.await;
                })
                .await
                .expect("KDS serves");
        });
        let dyn_store: Arc<dyn ResourceStore> = store.clone();
        KdsHarness {
            url,
            ca_pem,
            tokens: Tokens::new(dyn_store),
            store,
            stop: Some(stop),
            server: Some(handle),
            _dir: dir,
        }
    }

    /// A zone token for `zone`, valid for a day.
    pub async fn token(&self, zone: &str) -> String {
        self.tokens
            .issue_zone_token(zone, Duration::from_secs(24 * 3600))
            .await
            .expect("zone token")
            .expose()
            .clone()
    }

    /// A zone token for `zone` that expired an hour ago (signed with the store's zone key).
    pub async fn expired_token(&self, zone: &str) -> String {
        let _ = self.token(zone).await; // makes sure the key exists
        let pkcs8 = self
            .store
            .internal(ZONE_KEY_RECORD)
            .expect("read")
            .expect("zone key");
        let key = SigningKey::from_pkcs8(&pkcs8).expect("key");
        let claims = ZoneClaims::new(
            zone,
            time::OffsetDateTime::now_utc() - time::Duration::hours(2),
            Duration::from_secs(3600),
        );
        key.sign_zone_token(&claims).expect("sign").expose().clone()
    }

    /// A client for `zone` presenting `token`, trusting the server's CA.
    pub async fn client(&self, zone: &str, token: &str) -> ZoneClient {
        ZoneClient::connect(&self.url, &self.ca_pem, zone, token)
            .await
            .expect("TLS connection")
    }

    /// Stops the server (sessions end, the listener closes).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            tokio::time::timeout(DEADLINE, h)
                .await
                .expect("KDS server stops")
                .expect("KDS task");
        }
    }
}

impl Drop for KdsHarness {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A zone's connection to the KDS server.
#[derive(Clone)]
pub struct ZoneClient {
    client: KdsServiceClient<Channel>,
    zone: String,
    token: String,
}

impl ZoneClient {
    /// Connects over TLS trusting `ca_pem` (server name `localhost`).
    pub async fn connect(
        url: &str,
        ca_pem: &str,
        zone: &str,
        token: &str,
    ) -> Result<ZoneClient, tonic::transport::Error> {
        mosaic_runtime::tls::install_crypto_provider();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(url.to_string())?
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(ZoneClient {
            client: KdsServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
            zone: zone.to_string(),
            token: token.to_string(),
        })
    }

    fn request<T>(&self, body: T, zone: &str) -> Request<T> {
        let mut r = Request::new(body);
        let md = r.metadata_mut();
        if !self.token.is_empty() {
            md.insert(
                "authorization",
                MetadataValue::try_from(format!("Bearer {}", self.token)).unwrap(),
            );
        }
        md.insert("mosaic-zone", MetadataValue::try_from(zone).unwrap());
        md.insert(
            "mosaic-zone-version",
            MetadataValue::from_static("test-1.0"),
        );
        md.insert(
            "mosaic-features",
            MetadataValue::from_static("chunked-responses"),
        );
        r
    }

    /// Opens GlobalToZone.
    pub async fn global_to_zone(&self) -> Result<G2z, Status> {
        self.global_to_zone_as(&self.zone.clone()).await
    }

    /// Opens GlobalToZone claiming to be `zone`.
    pub async fn global_to_zone_as(&self, zone: &str) -> Result<G2z, Status> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = self.client.clone();
        let resp = client
            .global_to_zone(self.request(ReceiverStream::new(rx), zone))
            .await?;
        Ok(G2z {
            tx,
            rx: resp.into_inner(),
        })
    }

    /// Opens ZoneToGlobal.
    pub async fn zone_to_global(&self) -> Result<Z2g, Status> {
        let (tx, rx) = mpsc::channel(64);
        let mut client = self.client.clone();
        let resp = client
            .zone_to_global(self.request(ReceiverStream::new(rx), &self.zone.clone()))
            .await?;
        Ok(Z2g {
            tx,
            rx: resp.into_inner(),
            nonce: 0,
        })
    }
}

/// One complete response (all of its chunks).
#[derive(Debug)]
pub struct Full {
    /// The type.
    pub rtype: String,
    /// The nonce.
    pub nonce: String,
    /// Authoritative?
    pub authoritative: bool,
    /// How many chunks it came in.
    pub chunks: usize,
    /// Upserts.
    pub resources: Vec<WireResource>,
    /// Deletions.
    pub removed: Vec<ResourceRef>,
}

/// A GlobalToZone stream (zone side).
pub struct G2z {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl G2z {
    /// Subscribes to `rtype` with the versions held.
    pub async fn subscribe(&self, rtype: &str, known: &[(String, String, u64)]) {
        self.tx
            .send(DiscoveryRequest {
                r#type: rtype.to_string(),
                known: known
                    .iter()
                    .map(|(mesh, name, version)| ResourceVersion {
                        r#ref: Some(ResourceRef {
                            r#type: rtype.to_string(),
                            mesh: mesh.clone(),
                            name: name.clone(),
                        }),
                        version: *version,
                    })
                    .collect(),
                response_nonce: String::new(),
                rejected: Vec::new(),
            })
            .await
            .expect("send");
    }

    /// ACKs a response.
    pub async fn ack(&self, full: &Full) {
        self.nack(full, Vec::new()).await;
    }

    /// NACKs a response, rejecting `items` (mesh, name, reason).
    pub async fn nack(&self, full: &Full, items: Vec<(String, String, String)>) {
        self.tx
            .send(DiscoveryRequest {
                r#type: full.rtype.clone(),
                known: Vec::new(),
                response_nonce: full.nonce.clone(),
                rejected: items
                    .into_iter()
                    .map(|(mesh, name, reason)| Rejection {
                        r#ref: Some(ResourceRef {
                            r#type: full.rtype.clone(),
                            mesh,
                            name,
                        }),
                        reason,
                    })
                    .collect(),
            })
            .await
            .expect("send");
    }

    /// The next complete response; panics after the deadline or if the stream ends.
    pub async fn next(&mut self) -> Full {
        match self.try_next().await {
            Ok(Some(f)) => f,
            Ok(None) => panic!("the stream ended"),
            Err(s) => panic!("the stream failed: {s:?}"),
        }
    }

    /// The next complete response, the end of the stream, or its error status.
    pub async fn try_next(&mut self) -> Result<Option<Full>, Status> {
        let deadline = Instant::now() + DEADLINE;
        let mut full: Option<Full> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.rx.message())
                .await
                .expect("a response within the deadline")?;
            let Some(c) = msg else { return Ok(None) };
            let f = full.get_or_insert_with(|| Full {
                rtype: c.r#type.clone(),
                nonce: c.nonce.clone(),
                authoritative: c.authoritative,
                chunks: 0,
                resources: Vec::new(),
                removed: Vec::new(),
            });
            assert_eq!(f.nonce, c.nonce, "chunks of one response share the nonce");
            assert_eq!(c.chunk as usize, f.chunks, "chunks arrive in order");
            f.chunks += 1;
            f.resources.extend(c.resources);
            f.removed.extend(c.removed);
            if f.chunks >= c.chunks.max(1) as usize {
                return Ok(full);
            }
        }
    }

    /// Waits for the stream to end with an error status.
    pub async fn ended(&mut self) -> Status {
        loop {
            match self.try_next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(s) => return s,
            }
        }
    }

    /// Closes the zone's side.
    pub fn close(self) {}
}

/// What a zone holds of one type: (mesh, name) → (version, json).
pub type Cache = BTreeMap<(String, String), (u64, serde_json::Value)>;

/// Applies a response to a cache as a zone does.
pub fn apply(cache: &mut Cache, full: &Full) {
    if full.authoritative {
        cache.clear();
    }
    for r in &full.resources {
        let json = serde_json::from_slice(&r.json).expect("json");
        cache.insert((r.mesh.clone(), r.name.clone()), (r.version, json));
    }
    for r in &full.removed {
        cache.remove(&(r.mesh.clone(), r.name.clone()));
    }
}

/// The known versions of a cache.
pub fn known(cache: &Cache) -> Vec<(String, String, u64)> {
    cache
        .iter()
        .map(|((m, n), (v, _))| (m.clone(), n.clone(), *v))
        .collect()
}

/// A ZoneToGlobal stream (zone side).
pub struct Z2g {
    tx: mpsc::Sender<DiscoveryResponse>,
    rx: Streaming<DiscoveryRequest>,
    nonce: u64,
}

impl Z2g {
    /// Sends a response (in `chunks` chunks) and returns the global's answer.
    pub async fn send(
        &mut self,
        rtype: &str,
        authoritative: bool,
        resources: Vec<serde_json::Value>,
        removed: Vec<(String, String)>,
        chunks: usize,
    ) -> DiscoveryRequest {
        self.nonce += 1;
        let nonce = format!("z-{}", self.nonce);
        let resources: Vec<WireResource> = resources
            .into_iter()
            .map(|v| wire(rtype, self.nonce, &v))
            .collect();
        let removed: Vec<ResourceRef> = removed
            .into_iter()
            .map(|(mesh, name)| ResourceRef {
                r#type: rtype.to_string(),
                mesh,
                name,
            })
            .collect();
        let chunks = chunks.max(1);
        let per = resources.len().div_ceil(chunks).max(1);
        let mut parts: Vec<Vec<WireResource>> = resources.chunks(per).map(<[_]>::to_vec).collect();
        parts.resize(chunks, Vec::new());
        for (i, part) in parts.into_iter().enumerate() {
            self.tx
                .send(DiscoveryResponse {
                    r#type: rtype.to_string(),
                    nonce: nonce.clone(),
                    authoritative,
                    resources: part,
                    removed: if i + 1 == chunks {
                        removed.clone()
                    } else {
                        Vec::new()
                    },
                    chunk: i as u32,
                    chunks: chunks as u32,
                    global_index: 0,
                })
                .await
                .expect("send");
        }
        let answer = tokio::time::timeout(DEADLINE, self.rx.message())
            .await
            .expect("an answer within the deadline")
            .expect("stream ok")
            .expect("an answer");
        assert_eq!(answer.response_nonce, nonce);
        answer
    }
}

impl Z2g {
    /// Waits (at most the deadline) for the global to end the stream; returns its status.
    pub async fn ended(&mut self) -> Status {
        match tokio::time::timeout(DEADLINE, self.rx.message())
            .await
            .expect("the stream ends within the deadline")
        {
            Err(status) => status,
            Ok(other) => panic!("expected the stream to end with a status, got {other:?}"),
        }
    }
}

impl Z2g {
    /// Sends one response of `resources` and expects the global to end the stream instead of
    /// answering; returns the status it ended with.
    pub async fn refused(&mut self, rtype: &str, resources: Vec<serde_json::Value>) -> Status {
        self.nonce += 1;
        let resources = resources
            .into_iter()
            .map(|v| wire(rtype, self.nonce, &v))
            .collect();
        self.tx
            .send(DiscoveryResponse {
                r#type: rtype.to_string(),
                nonce: format!("z-{}", self.nonce),
                authoritative: false,
                resources,
                removed: Vec::new(),
                chunk: 0,
                chunks: 1,
                global_index: 0,
            })
            .await
            .expect("send");
        match tokio::time::timeout(DEADLINE, self.rx.message())
            .await
            .expect("the stream ends within the deadline")
        {
            Err(status) => status,
            Ok(other) => panic!("expected the stream to end, got {other:?}"),
        }
    }
}

/// `v` as a zone puts it on the wire, at `version`.
fn wire(rtype: &str, version: u64, v: &serde_json::Value) -> WireResource {
    WireResource {
        r#type: rtype.to_string(),
        mesh: v["mesh"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        version,
        json: serde_json::to_vec(v).unwrap(),
    }
}

/// A Universal Dataplane as a zone sends it.
pub fn dataplane(mesh: &str, name: &str, labels: &[(&str, &str)]) -> serde_json::Value {
    let mut v = serde_json::json!({
        "type": "Dataplane",
        "mesh": mesh,
        "name": name,
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": "backend"}}]
        }
    });
    if !labels.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, val)| (k.to_string(), serde_json::Value::from(*val)))
            .collect();
        v["labels"] = serde_json::Value::Object(map);
    }
    v
}

/// The zone's ZoneInsight on the global, if any.
pub fn zone_insight(store: &RaftStore, zone: &str) -> Option<ZoneInsightSpec> {
    store
        .get(&ResourceKey::new(ResourceType::ZoneInsight, None, zone))
        .expect("get")
        .and_then(|r| match r.spec {
            Spec::ZoneInsight(s) => Some(s),
            _ => None,
        })
}

/// Waits until the zone registered itself (a `Zone` resource, written in the background when it
/// first connects).
pub async fn registered(store: &RaftStore, zone: &str) {
    let key = ResourceKey::new(ResourceType::Zone, None, zone);
    crate::support::raft_store::eventually("the zone registered itself", || {
        std::future::ready(store.get(&key).expect("get").is_some())
    })
    .await;
}

/// Every resource of `rtype` on the store.
pub fn list(store: &RaftStore, rtype: ResourceType) -> Vec<Resource> {
    store.list(rtype, None).expect("list")
}

/// Asserts `status` has `code` and its message contains every one of `parts`.
pub fn assert_status(status: &Status, code: Code, parts: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    for p in parts {
        assert!(
            status.message().contains(p),
            "{p:?} not in {:?}",
            status.message()
        );
    }
}

/// Starts a single-replica store.
pub async fn store() -> TestStore {
    TestStore::start().await
}
