//! The zone's SDS server over real TLS with a real Envoy SDS client (envoy-types): a data plane
//! registers with its token and Dataplane, receives `identity_cert:secret:<mesh>` and
//! `mesh_ca:secret:<mesh>`, sees rotations and tag changes pushed on its stream, and every bad
//! input is refused with a clear status while nothing is stored or issued.

mod support;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use mosaic_ca::{builtin, local::LocalCa};
use mosaic_core::{
    ca::identity::inspect_pem,
    resource::{ResourceType, Spec, UnknownFields, parse::from_value},
    sds::{SECRET_TYPE_URL, node_id},
    token::{DataplaneClaims, ProxyType, SigningKey},
};
use mosaic_proto::envoy::{
    envoy::{
        config::core::v3::{Node, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{Secret, secret},
        service::{
            discovery::v3::{DiscoveryRequest, DiscoveryResponse},
            secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
        },
    },
    google::protobuf::{Struct, Value as PbValue, value::Kind},
};
use mosaic_runtime::tls;
use mosaic_zone::{
    issuer::{Issuer, IssuerSettings},
    sds::{SdsServer, TokenRules},
    store::{KdsItem, KdsType, StoreKey, SyncBatch, ZoneStore},
};
use prost::Message as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Request, Status, Streaming,
    transport::{Certificate, Channel, ClientTlsConfig},
};

use support::fixtures::within;

const MESH: &str = "default";
const ZONE: &str = "zone-1";

/// A zone store with a builtin-CA Mesh and the mesh's token key, served by a real SDS server.
struct Harness {
    /// Holds the data dir for the harness's lifetime.
    _dir: tempfile::TempDir,
    store: Arc<ZoneStore>,
    key: SigningKey,
    addr: std::net::SocketAddr,
    ca_pem: String,
    stop: watch::Sender<bool>,
}

impl Harness {
    async fn start(expiration: &str) -> Self {
        Self::start_opts(expiration, TokenRules::default(), UnknownFields::Ignore).await
    }

    /// With `api.unknown_fields = policy` for registering Dataplanes.
    async fn start_with(expiration: &str, policy: UnknownFields) -> Self {
        Self::start_opts(expiration, TokenRules::default(), policy).await
    }

    /// A harness whose SDS server binds tokens by `rules`.
    async fn start_with_rules(expiration: &str, rules: TokenRules) -> Self {
        Self::start_opts(expiration, rules, UnknownFields::Ignore).await
    }

    async fn start_opts(expiration: &str, rules: TokenRules, policy: UnknownFields) -> Self {
        mosaic_testkit::ensure_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ZoneStore::open(dir.path()).unwrap());
        let key = SigningKey::generate().unwrap();
        let (ca_cert, ca_key) =
            LocalCa::generate_root(MESH, "Mosaic test CA", Duration::from_secs(86400)).unwrap();
        Self::sync(
            &store,
            vec![
                item(
                    json!({"type": "Mesh", "name": MESH, "mtls": {"enabledBackend": "ca-1", "backends": [
                        {"name": "ca-1", "type": "builtin", "dpCert": {"rotation": {"expiration": expiration}}}
                    ]}}),
                    1,
                ),
                item(json!({"type": "Mesh", "name": "plain"}), 2),
                KdsItem::token_keys(
                    StoreKey::new(KdsType::DataplaneTokenKey, None, MESH),
                    3,
                    std::slice::from_ref(key.public_key()),
                ),
                secret(&builtin::cert_secret_name(MESH, "ca-1"), &ca_cert, 4),
                secret(&builtin::key_secret_name(MESH, "ca-1"), ca_key.expose(), 5),
            ],
        );
        let issuer = Issuer::new(store.clone(), None, IssuerSettings::default());
        let server = SdsServer::with_options(store.clone(), issuer, ZONE, rules, policy);
        let identity = tls::load_or_generate(
            dir.path(),
            "dp-server",
            "test dataplane server",
            &["localhost".to_string()],
        )
        .unwrap();
        let ca_pem = identity.ca_pem.clone().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            server
                .serve(listener, &identity, async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        });
        Self {
            _dir: dir,
            store,
            key,
            addr,
            ca_pem,
            stop,
        }
    }

    fn sync(store: &ZoneStore, upserts: Vec<KdsItem>) {
        store
            .apply_sync(&SyncBatch {
                upserts,
                removes: vec![],
            })
            .unwrap();
    }

    fn token(&self, mesh: &str, name: &str, tags: &[(&str, &str)], valid_for: Duration) -> String {
        self.token_and_id(mesh, name, tags, valid_for).0
    }

    /// A token and its id (`jti`).
    fn token_and_id(
        &self,
        mesh: &str,
        name: &str,
        tags: &[(&str, &str)],
        valid_for: Duration,
    ) -> (String, String) {
        let mut t: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in tags {
            t.entry((*k).to_string())
                .or_default()
                .push((*v).to_string());
        }
        let claims = DataplaneClaims::new(mesh, name, t, OffsetDateTime::now_utc(), valid_for);
        let token = self
            .key
            .sign_dataplane_token(&claims)
            .unwrap()
            .expose()
            .clone();
        (token, claims.jti)
    }

    fn web_token(&self, name: &str) -> String {
        self.web_token_and_id(name).0
    }

    fn web_token_and_id(&self, name: &str) -> (String, String) {
        self.token_and_id(
            MESH,
            name,
            &[("kuma.io/service", "web")],
            Duration::from_secs(3600),
        )
    }

    async fn client(&self) -> SecretDiscoveryServiceClient<Channel> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://localhost:{}", self.addr.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        SecretDiscoveryServiceClient::new(channel)
    }

    /// Opens a stream with `first`; returns the sender and the response stream, or the status
    /// the call was refused with.
    async fn open(
        &self,
        token: Option<&str>,
        first: DiscoveryRequest,
    ) -> Result<(mpsc::Sender<DiscoveryRequest>, Streaming<DiscoveryResponse>), Status> {
        let (tx, rx) = mpsc::channel(8);
        tx.send(first).await.unwrap();
        let mut req = Request::new(ReceiverStream::new(rx));
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let mut client = self.client().await;
        let resp = client.stream_secrets(req).await?;
        Ok((tx, resp.into_inner()))
    }

    /// The first response of a stream opened with `first`, or the status it ended with.
    async fn first_response(
        &self,
        token: Option<&str>,
        first: DiscoveryRequest,
    ) -> Result<
        (
            mpsc::Sender<DiscoveryRequest>,
            Streaming<DiscoveryResponse>,
            DiscoveryResponse,
        ),
        Status,
    > {
        let (tx, mut stream) = self.open(token, first).await?;
        let resp = next(&mut stream).await?;
        Ok((tx, stream, resp))
    }

    fn stored_dataplane(&self, name: &str) -> Option<mosaic_core::resource::Resource> {
        self.store
            .get_resource(ResourceType::Dataplane, Some(MESH), name)
            .unwrap()
    }

    fn cached_certificates(&self) -> usize {
        self.store
            .private_tree(mosaic_zone::issuer::cache::CERTS_TREE)
            .unwrap()
            .len()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn item(value: Value, version: u64) -> KdsItem {
    KdsItem::from_resource(&from_value(value).unwrap(), version)
}

fn secret(name: &str, value: &str, version: u64) -> KdsItem {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(value);
    item(
        json!({"type": "Secret", "mesh": MESH, "name": name, "data": data}),
        version,
    )
}

fn dataplane_yaml(name: &str, tags: &[(&str, &str)]) -> String {
    let mut out = format!(
        "type: Dataplane\nmesh: {MESH}\nname: {name}\nnetworking:\n  address: 10.0.0.7\n  inbound:\n    - port: 8080\n      tags:\n"
    );
    for (k, v) in tags {
        out.push_str(&format!("        {k}: {v}\n"));
    }
    out
}

fn request(node: &str, dataplane: Option<&str>, names: &[&str]) -> DiscoveryRequest {
    let mut fields = std::collections::HashMap::new();
    if let Some(d) = dataplane {
        fields.insert(
            "dataplane.resource".to_string(),
            PbValue {
                kind: Some(Kind::StringValue(d.to_string())),
            },
        );
    }
    DiscoveryRequest {
        node: Some(Node {
            id: node.to_string(),
            metadata: Some(Struct { fields }),
            ..Node::default()
        }),
        resource_names: names.iter().map(|n| (*n).to_string()).collect(),
        type_url: SECRET_TYPE_URL.to_string(),
        ..DiscoveryRequest::default()
    }
}

fn both() -> [&'static str; 2] {
    ["identity_cert:secret:default", "mesh_ca:secret:default"]
}

fn web_request(name: &str) -> DiscoveryRequest {
    request(
        &node_id(MESH, name),
        Some(&dataplane_yaml(name, &[("kuma.io/service", "web")])),
        &both(),
    )
}

async fn next(stream: &mut Streaming<DiscoveryResponse>) -> Result<DiscoveryResponse, Status> {
    match within("an SDS response", stream.message()).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Status::cancelled("stream ended without a status")),
        Err(s) => Err(s),
    }
}

/// (chain PEM, key PEM, trusted CA PEM) from a response.
fn material(resp: &DiscoveryResponse) -> (String, String, String) {
    let (mut chain, mut key, mut ca) = (String::new(), String::new(), String::new());
    let text = |s: Option<Specifier>| match s {
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
        Some(Specifier::InlineString(s)) => s,
        other => panic!("unexpected data source {other:?}"),
    };
    for any in &resp.resources {
        assert_eq!(any.type_url, SECRET_TYPE_URL);
        let secret = Secret::decode(any.value.as_slice()).unwrap();
        match secret.r#type {
            Some(secret::Type::TlsCertificate(t)) => {
                assert_eq!(secret.name, "identity_cert:secret:default");
                chain = text(t.certificate_chain.unwrap().specifier);
                key = text(t.private_key.unwrap().specifier);
            }
            Some(secret::Type::ValidationContext(v)) => {
                assert_eq!(secret.name, "mesh_ca:secret:default");
                ca = text(v.trusted_ca.unwrap().specifier);
            }
            other => panic!("unexpected secret {other:?}"),
        }
    }
    (chain, key, ca)
}

fn ack(resp: &DiscoveryResponse) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: resp.version_info.clone(),
        response_nonce: resp.nonce.clone(),
        resource_names: both().iter().map(|s| s.to_string()).collect(),
        type_url: SECRET_TYPE_URL.to_string(),
        ..DiscoveryRequest::default()
    }
}

fn pem_roots(bundle: &str) -> Vec<String> {
    mosaic_testkit::pem_blocks(bundle)
}

#[tokio::test]
async fn a_data_plane_registers_and_receives_a_verifying_identity_and_the_mesh_roots() {
    let h = Harness::start("24h").await;
    let token = h.token(
        MESH,
        "web-1",
        &[("kuma.io/service", "web"), ("version", "v1")],
        Duration::from_secs(3600),
    );
    let first = request(
        "default.web-1",
        Some(&dataplane_yaml(
            "web-1",
            &[("kuma.io/service", "web"), ("version", "v1")],
        )),
        &both(),
    );
    let (tx, _stream, resp) = h.first_response(Some(&token), first).await.unwrap();
    assert_eq!(resp.type_url, SECRET_TYPE_URL);
    assert_eq!(resp.resources.len(), 2);
    let (chain, key, ca) = material(&resp);
    assert!(key.contains("PRIVATE KEY"));
    mosaic_testkit::verify_chain(&chain, &pem_roots(&ca)).unwrap();
    let info = inspect_pem(&chain).unwrap();
    assert_eq!(
        info.uri_sans,
        vec![
            "spiffe://default/web".to_string(),
            "kuma://kuma.io/service/web".to_string(),
            "kuma://version/v1".to_string()
        ]
    );
    assert!(
        info.server_auth && info.client_auth,
        "EKU serverAuth+clientAuth"
    );
    tx.send(ack(&resp)).await.unwrap();

    // Registered (synced to the global by KDS) with its insight.
    let dp = h
        .stored_dataplane("web-1")
        .expect("the Dataplane is registered");
    let Spec::Dataplane(spec) = dp.spec else {
        panic!()
    };
    assert_eq!(spec.networking.address, "10.0.0.7");
    let insight = support::fixtures::eventually("the DataplaneInsight", || {
        h.store
            .get_resource(ResourceType::DataplaneInsight, Some(MESH), "web-1")
            .unwrap()
    })
    .await;
    let Spec::DataplaneInsight(ins) = insight.spec else {
        panic!()
    };
    let mtls = ins.mtls.unwrap();
    assert_eq!(mtls.issued_backend, "ca-1");
    assert_eq!(mtls.certificate_regenerations, 1);
    assert_eq!(mtls.certificate_expiration_time, Some(info.not_after));
    assert_eq!(mtls.supported_backends, vec!["ca-1".to_string()]);

    // FetchSecrets answers the same identity (cached, not re-issued).
    let mut fetch = web_request("web-1");
    fetch.node.as_mut().unwrap().metadata = None;
    let mut req = Request::new(fetch);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let fetched = h
        .client()
        .await
        .fetch_secrets(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(material(&fetched).0, chain);
}

#[tokio::test]
async fn rotation_and_tag_changes_are_pushed_on_the_open_stream() {
    let h = Harness::start("6s").await;
    let token = h.token(
        MESH,
        "web-1",
        &[
            ("kuma.io/service", "web"),
            ("version", "v1"),
            ("version", "v2"),
        ],
        Duration::from_secs(3600),
    );
    let (tx, mut stream, first) = h
        .first_response(
            Some(&token),
            request(
                "default.web-1",
                Some(&dataplane_yaml(
                    "web-1",
                    &[("kuma.io/service", "web"), ("version", "v1")],
                )),
                &both(),
            ),
        )
        .await
        .unwrap();
    tx.send(ack(&first)).await.unwrap();
    let serial1 = inspect_pem(&material(&first).0).unwrap().serial;

    // 80% of 6 s: the next certificate arrives on the same stream, with a new version.
    let rotated = next(&mut stream).await.unwrap();
    tx.send(ack(&rotated)).await.unwrap();
    let serial2 = inspect_pem(&material(&rotated).0).unwrap().serial;
    assert_ne!(serial1, serial2, "rotation gives a new serial");
    assert_ne!(first.version_info, rotated.version_info);
    assert_ne!(first.nonce, rotated.nonce);

    // An admin changes the Dataplane's tags (within what the token allows): re-issued at once.
    let dp = h.stored_dataplane("web-1").unwrap();
    let mut value = dp.to_universal();
    value["networking"]["inbound"][0]["tags"]["version"] = json!("v2");
    h.store
        .put_local(from_value(value).unwrap(), OffsetDateTime::now_utc())
        .unwrap();
    let retagged = next(&mut stream).await.unwrap();
    let info = inspect_pem(&material(&retagged).0).unwrap();
    assert!(
        info.uri_sans.contains(&"kuma://version/v2".to_string()),
        "{:?}",
        info.uri_sans
    );

    // Deleting the Dataplane ends the stream, saying why, and forgets its certificate.
    h.store
        .delete_local(&[StoreKey::new(ResourceType::Dataplane, Some(MESH), "web-1")])
        .unwrap();
    let end = loop {
        match next(&mut stream).await {
            Ok(_) => continue,
            Err(s) => break s,
        }
    };
    assert_eq!(end.code(), Code::NotFound, "{end:?}");
    assert!(end.message().contains("was deleted"), "{}", end.message());
    support::fixtures::eventually("the cached certificate removed", || {
        (h.cached_certificates() == 0).then_some(())
    })
    .await;
}

/// Each bad request is refused with `code` and a message containing `says`; nothing is stored.
async fn refused(
    h: &Harness,
    token: Option<&str>,
    first: DiscoveryRequest,
    code: Code,
    says: &str,
) {
    let status = match h.first_response(token, first).await {
        Ok((_, _, r)) => panic!("expected {code:?}, got a response {r:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(says),
        "{:?} does not say {says:?}",
        status.message()
    );
    assert!(h.stored_dataplane("web-1").is_none(), "nothing registered");
    assert_eq!(h.cached_certificates(), 0, "nothing issued");
}

/// With `api.unknown_fields = "refuse"`, so that an unknown field is one of the refusals.
#[tokio::test]
async fn bad_tokens_and_requests_are_refused_and_nothing_is_issued() {
    let h = Harness::start_with("24h", UnknownFields::Refuse).await;
    let good = h.web_token("web-1");
    let web = || web_request("web-1");

    refused(&h, None, web(), Code::Unauthenticated, "no dataplane token").await;
    refused(
        &h,
        Some("not-a-token"),
        web(),
        Code::Unauthenticated,
        "malformed",
    )
    .await;
    let expired = {
        let claims = DataplaneClaims {
            iat: OffsetDateTime::now_utc().unix_timestamp() - 7200,
            exp: OffsetDateTime::now_utc().unix_timestamp() - 3600,
            ..DataplaneClaims::new(
                MESH,
                "web-1",
                [("kuma.io/service".to_string(), vec!["web".to_string()])].into(),
                OffsetDateTime::now_utc(),
                Duration::from_secs(60),
            )
        };
        h.key
            .sign_dataplane_token(&claims)
            .unwrap()
            .expose()
            .clone()
    };
    refused(&h, Some(&expired), web(), Code::Unauthenticated, "expired").await;
    let other_key = SigningKey::generate().unwrap();
    let forged = other_key
        .sign_dataplane_token(&DataplaneClaims::new(
            MESH,
            "web-1",
            [("kuma.io/service".to_string(), vec!["web".to_string()])].into(),
            OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        ))
        .unwrap()
        .expose()
        .clone();
    refused(
        &h,
        Some(&forged),
        web(),
        Code::Unauthenticated,
        "dataplane token refused",
    )
    .await;
    let other_mesh = h.token(
        "plain",
        "web-1",
        &[("kuma.io/service", "web")],
        Duration::from_secs(60),
    );
    refused(
        &h,
        Some(&other_mesh),
        web(),
        Code::PermissionDenied,
        "\"plain\"",
    )
    .await;
    // A token for dataplane A never yields B's identity.
    let for_b = h.web_token("web-2");
    refused(
        &h,
        Some(&for_b),
        web(),
        Code::PermissionDenied,
        "is for \"web-2\", not \"web-1\"",
    )
    .await;
    // Tags the token does not allow.
    let greedy = request(
        "default.web-1",
        Some(&dataplane_yaml("web-1", &[("kuma.io/service", "payments")])),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        greedy,
        Code::PermissionDenied,
        "kuma.io/service=payments",
    )
    .await;
    let extra = request(
        "default.web-1",
        Some(&dataplane_yaml(
            "web-1",
            &[("kuma.io/service", "web"), ("team", "x")],
        )),
        &both(),
    );
    // A tag the token does not name is Kuma's rule's business only where the zone requires
    // every tag to be named (dataplane_tokens.require_all_tags); by default it is allowed
    // (kuma_rules_tags_type_and_workload below).
    let strict = Harness::start_with_rules(
        "24h",
        TokenRules {
            require_all_tags: true,
        },
    )
    .await;
    let strict_token = strict.web_token("web-1");
    refused(
        &strict,
        Some(&strict_token),
        extra,
        Code::PermissionDenied,
        "the token does not name team",
    )
    .await;
    // Malformed SDS requests.
    let mut no_node = web();
    no_node.node = None;
    refused(
        &h,
        Some(&good),
        no_node,
        Code::InvalidArgument,
        "must carry `node`",
    )
    .await;
    let bad_id = request(
        "web-1",
        Some(&dataplane_yaml("web-1", &[("kuma.io/service", "web")])),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        bad_id,
        Code::InvalidArgument,
        "<mesh>.<dataplane name>",
    )
    .await;
    let mut bad_type = web();
    bad_type.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster".into();
    refused(
        &h,
        Some(&good),
        bad_type,
        Code::InvalidArgument,
        "is not served here",
    )
    .await;
    let other_names = request(
        "default.web-1",
        Some(&dataplane_yaml("web-1", &[("kuma.io/service", "web")])),
        &["identity_cert:secret:plain"],
    );
    refused(
        &h,
        Some(&good),
        other_names,
        Code::PermissionDenied,
        "belongs to another mesh",
    )
    .await;
    let unknown_name = request(
        "default.web-1",
        Some(&dataplane_yaml("web-1", &[("kuma.io/service", "web")])),
        &["default"],
    );
    refused(
        &h,
        Some(&good),
        unknown_name,
        Code::InvalidArgument,
        "ask for \"identity_cert:secret:default\"",
    )
    .await;
    let invalid_yaml = request(
        "default.web-1",
        Some("type: Dataplane\nname: web-1\nnetworking: {}\n"),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        invalid_yaml,
        Code::InvalidArgument,
        "networking",
    )
    .await;
    // What the zone's API and the global refuse, registration refuses too (the same check).
    let bad_address = request(
        "default.web-1",
        Some(
            &dataplane_yaml("web-1", &[("kuma.io/service", "web")])
                .replace("10.0.0.7", "'not an ip;rm -rf'"),
        ),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        bad_address,
        Code::InvalidArgument,
        "networking.address: \"not an ip;rm -rf\" is not an IP address or a DNS name",
    )
    .await;
    let unknown_field = request(
        "default.web-1",
        Some(&format!(
            "{}evil: true\n",
            dataplane_yaml("web-1", &[("kuma.io/service", "web")])
        )),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        unknown_field,
        Code::InvalidArgument,
        "evil: unknown field",
    )
    .await;
    let mismatch = request(
        "default.web-1",
        Some(&dataplane_yaml("web-9", &[("kuma.io/service", "web")])),
        &both(),
    );
    refused(
        &h,
        Some(&good),
        mismatch,
        Code::InvalidArgument,
        "make them agree",
    )
    .await;
    let unregistered = request("default.web-1", None, &both());
    refused(
        &h,
        Some(&good),
        unregistered,
        Code::NotFound,
        "is not registered",
    )
    .await;
    let unknown_mesh = request("nope.web-1", None, &both());
    refused(
        &h,
        Some(&good),
        unknown_mesh,
        Code::Unavailable,
        "does not exist in zone zone-1 (yet)",
    )
    .await;
    // DeltaSecrets is not offered.
    let (_tx, rx) = mpsc::channel(1);
    let err = h
        .client()
        .await
        .delta_secrets(Request::new(ReceiverStream::new(rx)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_mesh_without_mtls_is_refused_clearly() {
    let h = Harness::start("24h").await;
    let key = StoreKey::new(KdsType::DataplaneTokenKey, None, "plain");
    Harness::sync(
        &h.store,
        vec![KdsItem::token_keys(
            key,
            4,
            std::slice::from_ref(h.key.public_key()),
        )],
    );
    let token = h.token(
        "plain",
        "web-1",
        &[("kuma.io/service", "web")],
        Duration::from_secs(60),
    );
    let status = h
        .first_response(
            Some(&token),
            request(
                "plain.web-1",
                Some("type: Dataplane\nmesh: plain\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n    - port: 80\n      tags:\n        kuma.io/service: web\n"),
                &["identity_cert:secret:plain", "mesh_ca:secret:plain"],
            ),
        )
        .await
        .map(|(_, _, r)| r)
        .expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("mTLS disabled"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_new_mesh_key_ends_streams_whose_token_it_does_not_verify() {
    let h = Harness::start("24h").await;
    let token = h.web_token("web-1");
    let (tx, mut stream, first) = h
        .first_response(Some(&token), web_request("web-1"))
        .await
        .unwrap();
    tx.send(ack(&first)).await.unwrap();
    // The Mesh was re-created on the global: a new signing key arrives over KDS.
    let new_key = SigningKey::generate().unwrap();
    Harness::sync(
        &h.store,
        vec![KdsItem::token_keys(
            StoreKey::new(KdsType::DataplaneTokenKey, None, MESH),
            10,
            std::slice::from_ref(new_key.public_key()),
        )],
    );
    let end = next(&mut stream).await.expect_err("the stream ends");
    assert_eq!(end.code(), Code::Unauthenticated, "{end:?}");
    assert!(
        end.message().contains("dataplane token refused"),
        "{}",
        end.message()
    );
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_their_open_streams_end() {
    let h = Harness::start("24h").await;
    let (token_1, id_1) = h.web_token_and_id("web-1");
    let (token_2, id_2) = h.web_token_and_id("web-2");
    let (tx, mut stream, first) = h
        .first_response(Some(&token_1), web_request("web-1"))
        .await
        .unwrap();
    tx.send(ack(&first)).await.unwrap();

    // Revoked the Kuma way: the token's id in Secret `dataplane-token-revocations-<mesh>`.
    let name = format!("dataplane-token-revocations-{MESH}");
    Harness::sync(
        &h.store,
        vec![secret(&name, &format!("other-id,\n{id_1}"), 20)],
    );
    let end = next(&mut stream)
        .await
        .expect_err("the revoked token's stream ends");
    assert_eq!(end.code(), Code::Unauthenticated, "{end:?}");
    assert!(
        end.message().contains(&id_1) && end.message().contains(&name),
        "names the token id and the Secret: {}",
        end.message()
    );
    assert!(
        !end.message().contains(&token_1),
        "never shows the token itself"
    );

    // A new stream with the revoked token is refused; a token that is not listed still works.
    let status = h
        .first_response(Some(&token_1), web_request("web-1"))
        .await
        .expect_err("a revoked token is refused at connect");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{}", status.message());
    let (_tx2, _stream2, first_2) = h
        .first_response(Some(&token_2), web_request("web-2"))
        .await
        .expect("a token that is not listed works");
    assert!(!first_2.resources.is_empty());
    assert_ne!(id_1, id_2);
}

/// Kuma's token rules on the SDS server: a token naming only the service fits a Dataplane with
/// more tags (all of them in the certificate); a token without name or tags fits any data plane
/// of the mesh; a token of type ingress is refused for a Dataplane; a workload-bound token needs
/// the Dataplane's `kuma.io/workload` label.
#[tokio::test]
async fn kuma_rules_tags_type_and_workload() {
    let h = Harness::start("24h").await;
    let sign = |name: &str, tags: &[(&str, &str)], edit: &dyn Fn(&mut DataplaneClaims)| {
        let tags: BTreeMap<String, Vec<String>> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        let mut claims = DataplaneClaims::new(
            MESH,
            name,
            tags,
            OffsetDateTime::now_utc(),
            Duration::from_secs(3600),
        );
        edit(&mut claims);
        h.key.sign_dataplane_token(&claims).unwrap().into_inner()
    };
    let web_v1 = [("kuma.io/service", "web"), ("version", "v1")];

    // Service-only token, Dataplane with more tags.
    let token = sign("web-1", &[("kuma.io/service", "web")], &|_| {});
    let first = request(
        "default.web-1",
        Some(&dataplane_yaml("web-1", &web_v1)),
        &both(),
    );
    let (_tx, _stream, resp) = h.first_response(Some(&token), first).await.unwrap();
    let (chain, _, _) = material(&resp);
    assert_eq!(
        inspect_pem(&chain).unwrap().uri_sans,
        vec![
            "spiffe://default/web".to_string(),
            "kuma://kuma.io/service/web".to_string(),
            "kuma://version/v1".to_string()
        ]
    );

    // Mesh-wide: no name, no tags.
    let mesh_wide = sign("", &[], &|_| {});
    let first = request(
        "default.api-7",
        Some(&dataplane_yaml("api-7", &[("kuma.io/service", "api")])),
        &both(),
    );
    let (_tx2, _stream2, resp) = h.first_response(Some(&mesh_wide), first).await.unwrap();
    let (chain, _, _) = material(&resp);
    assert_eq!(
        inspect_pem(&chain).unwrap().uri_sans[0],
        "spiffe://default/api"
    );

    // A zone ingress token is not a data plane's.
    let ingress = sign("", &[], &|c| c.proxy_type = Some(ProxyType::Ingress));
    let first = request(
        "default.web-9",
        Some(&dataplane_yaml("web-9", &web_v1)),
        &both(),
    );
    let err = h.first_response(Some(&ingress), first).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message()
            .contains("its token is for a zone ingress (type ingress)"),
        "{}",
        err.message()
    );

    // Workload-bound: the label must be there and agree.
    let bound = sign("", &[], &|c| c.workload = "web".into());
    let unlabelled = request(
        "default.web-8",
        Some(&dataplane_yaml("web-8", &web_v1)),
        &both(),
    );
    let err = h
        .first_response(Some(&bound), unlabelled)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("has no kuma.io/workload label"),
        "{}",
        err.message()
    );
    let labelled = dataplane_yaml("web-8", &web_v1).replacen(
        "name: web-8\n",
        "name: web-8\nlabels:\n  kuma.io/workload: web\n",
        1,
    );
    let first = request("default.web-8", Some(&labelled), &both());
    assert!(h.first_response(Some(&bound), first).await.is_ok());
}
