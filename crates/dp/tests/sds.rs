//! The real `mosaic-dp` binary against an in-test SDS server (tonic, TLS, envoy-types): files
//! written and rotated, `--exec-on-rotate`, ACK/NACK contents, reconnection after a stream
//! failure, refusals (exit 1 with the zone's message), and TLS that trusts only `--ca-cert-file`.
//!
//! The agent runs the hook before it ACKs, so once the test holds an ACK the files and the hook
//! log are final for that response: no polling is needed for them.

use std::{
    fs,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mosaic_core::{ca::identity, sds::SECRET_TYPE_URL};
use mosaic_proto::envoy::{
    envoy::{
        config::core::v3::{DataSource, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, Secret, TlsCertificate, secret,
        },
        service::{
            discovery::v3::{
                DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
            },
            secret::v3::secret_discovery_service_server::{
                SecretDiscoveryService, SecretDiscoveryServiceServer,
            },
        },
    },
    google::protobuf::{Any, value::Kind},
};
use mosaic_runtime::tls;
use prost::Message as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Request, Response, Status, Streaming,
    transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming},
};

/// Bound of every wait.
const DEADLINE: Duration = Duration::from_secs(20);
const TOKEN: &str = "dp-token-s3cr3t";
const DATAPLANE: &str = "type: Dataplane
mesh: default
name: backend-1
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
";

// --- the in-test SDS server ---

/// One `StreamSecrets` stream, handed to the test to drive.
struct Session {
    requests: Streaming<DiscoveryRequest>,
    responses: mpsc::Sender<Result<DiscoveryResponse, Status>>,
}

struct TestSds {
    token: String,
    sessions: mpsc::UnboundedSender<Session>,
}

#[tonic::async_trait]
impl SecretDiscoveryService for TestSds {
    type DeltaSecretsStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;
    type StreamSecretsStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("delta SDS is not served"))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if authorization != Some(format!("Bearer {}", self.token).as_str()) {
            return Err(Status::unauthenticated(
                "the dataplane token is not valid; generate one with `mosaicctl generate dataplane-token`",
            ));
        }
        let (tx, rx) = mpsc::channel(16);
        let _ = self.sessions.send(Session {
            requests: request.into_inner(),
            responses: tx,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch_secrets(
        &self,
        _request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Err(Status::unimplemented("FetchSecrets is not served"))
    }
}

/// A running server: its port, the CA clients trust, and its sessions.
struct Zone {
    port: u16,
    ca_pem: String,
    sessions: mpsc::UnboundedReceiver<Session>,
}

async fn start_zone(token: &str) -> Zone {
    tls::install_crypto_provider();
    let ca = tls::generate_ca("test dp-server CA").unwrap();
    let (cert, key) =
        tls::issue_server_cert(&ca, "localhost", &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, sessions) = mpsc::unbounded_channel();
    let service = SecretDiscoveryServiceServer::new(TestSds {
        token: token.to_string(),
        sessions: tx,
    });
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key.expose())))
        .unwrap()
        .add_service(service);
    tokio::spawn(server.serve_with_incoming(TcpIncoming::from(listener)));
    Zone {
        port,
        ca_pem: ca.cert_pem,
        sessions,
    }
}

impl Zone {
    async fn next_session(&mut self) -> Session {
        tokio::time::timeout(DEADLINE, self.sessions.recv())
            .await
            .expect("the agent did not open a stream in time")
            .expect("server gone")
    }
}

impl Session {
    async fn next_request(&mut self) -> DiscoveryRequest {
        tokio::time::timeout(DEADLINE, self.requests.message())
            .await
            .expect("no request from the agent in time")
            .expect("stream failed")
            .expect("stream ended")
    }

    async fn send(&self, response: Result<DiscoveryResponse, Status>) {
        self.responses.send(response).await.unwrap();
    }
}

// --- mesh PKI and SDS resources ---

struct MeshCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn mesh_ca(cn: &str) -> MeshCa {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    MeshCa {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A data-plane identity: chain (leaf + CA) and key, and the leaf's serial.
struct Leaf {
    chain: String,
    key: String,
    serial: String,
}

fn leaf(ca: &MeshCa) -> Leaf {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = identity::leaf_params(
        &[
            "spiffe://default/backend".to_string(),
            "kuma://kuma.io/service/backend".to_string(),
        ],
        None,
        Duration::from_secs(3600),
    )
    .unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let chain = format!("{}{}", cert.pem(), ca.pem);
    let serial = identity::inspect_pem(&chain).unwrap().serial;
    Leaf {
        chain,
        key: key.serialize_pem(),
        serial,
    }
}

fn inline_bytes(s: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineBytes(s.as_bytes().to_vec())),
        ..Default::default()
    })
}

fn inline_string(s: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(s.to_string())),
        ..Default::default()
    })
}

fn identity_secret(chain: &str, key: &str) -> Secret {
    Secret {
        name: "identity_cert:secret:default".into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline_bytes(chain),
            private_key: inline_bytes(key),
            ..Default::default()
        })),
    }
}

fn ca_secret(pem: &str) -> Secret {
    Secret {
        name: "mesh_ca:secret:default".into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline_string(pem),
                ..Default::default()
            },
        )),
    }
}

fn response(version: &str, nonce: &str, secrets: &[Secret]) -> Result<DiscoveryResponse, Status> {
    Ok(DiscoveryResponse {
        version_info: version.into(),
        nonce: nonce.into(),
        type_url: SECRET_TYPE_URL.into(),
        resources: secrets
            .iter()
            .map(|s| Any {
                type_url: SECRET_TYPE_URL.into(),
                value: s.encode_to_vec(),
            })
            .collect(),
        ..Default::default()
    })
}

// --- the agent process ---

/// The running binary; killed on drop.
struct Dp {
    child: Child,
    stderr: PathBuf,
}

impl Dp {
    /// Runs `mosaic-dp run` in `dir` against the zone on `port`, with `token` in its token file.
    fn spawn(dir: &Path, zone: &Zone, token: &str, hook: Option<&str>) -> Dp {
        fs::write(dir.join("zone-ca.pem"), &zone.ca_pem).unwrap();
        fs::write(dir.join("token"), format!("{token}\n")).unwrap();
        fs::write(dir.join("dp.yaml"), DATAPLANE).unwrap();
        let stderr = dir.join("stderr.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic-dp"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MOSAIC_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(dir)
            .args([
                "run",
                "--zone",
                &format!("https://127.0.0.1:{}", zone.port),
                "--ca-cert-file",
                "zone-ca.pem",
                "--mesh",
                "default",
                "--name",
                "backend-1",
                "--token-file",
                "token",
                "--dataplane-file",
                "dp.yaml",
                "--out-dir",
                "out/certs",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap());
        if let Some(h) = hook {
            cmd.args(["--exec-on-rotate", h]);
        }
        Dp {
            child: cmd.spawn().unwrap(),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    async fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "mosaic-dp did not exit in time:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Dp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn hook_runs(path: &Path) -> usize {
    fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn assert_ack(req: &DiscoveryRequest, version: &str, nonce: &str) {
    assert_eq!(req.version_info, version, "{req:?}");
    assert_eq!(req.response_nonce, nonce, "{req:?}");
    assert!(req.error_detail.is_none(), "expected an ACK: {req:?}");
    assert_eq!(req.type_url, SECRET_TYPE_URL);
    assert_eq!(
        req.resource_names,
        ["identity_cert:secret:default", "mesh_ca:secret:default"]
    );
}

fn assert_first_request(req: &DiscoveryRequest) {
    let node = req
        .node
        .as_ref()
        .expect("the first request carries the node");
    assert_eq!(node.id, "default.backend-1");
    let resource = node
        .metadata
        .as_ref()
        .and_then(|m| m.fields.get("dataplane.resource"))
        .and_then(|v| v.kind.as_ref());
    assert_eq!(resource, Some(&Kind::StringValue(DATAPLANE.to_string())));
    assert_eq!(req.type_url, SECRET_TYPE_URL);
    assert_eq!(
        req.resource_names,
        ["identity_cert:secret:default", "mesh_ca:secret:default"]
    );
    assert_eq!(req.version_info, "");
    assert_eq!(req.response_nonce, "");
    assert!(req.error_detail.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_rotates_nacks_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let mut zone = start_zone(TOKEN).await;
    let hook_log = dir.path().join("hook.log");
    let hook = format!(
        "test -s \"$MOSAIC_DP_KEY_FILE\" && echo rotated >> '{}'",
        hook_log.display()
    );
    let mut dp = Dp::spawn(dir.path(), &zone, TOKEN, Some(&hook));
    let out = dir.path().join("out/certs");
    let (cert, key, ca) = (
        out.join("cert.pem"),
        out.join("key.pem"),
        out.join("ca.pem"),
    );

    let ca1 = mesh_ca("mesh CA 1");
    let ca2 = mesh_ca("mesh CA 2");
    let id1 = leaf(&ca1);
    let id2 = leaf(&ca1);

    // First request: node id, the Dataplane in metadata, both names.
    let mut s = zone.next_session().await;
    let first = s.next_request().await;
    assert_first_request(&first);

    // v1: both secrets; the files appear, private, and the hook runs once.
    s.send(response(
        "v1",
        "nonce-1",
        &[identity_secret(&id1.chain, &id1.key), ca_secret(&ca1.pem)],
    ))
    .await;
    assert_ack(&s.next_request().await, "v1", "nonce-1");
    assert_eq!(read(&cert), id1.chain);
    assert_eq!(read(&key), id1.key);
    assert_eq!(read(&ca), ca1.pem);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&cert) & 0o022, 0, "umask aside, only the owner writes");
    assert_eq!(hook_runs(&hook_log), 1);
    let ca_inode = inode(&ca);

    // v2: a rotated identity; cert and key replaced, the unchanged bundle left alone.
    s.send(response(
        "v2",
        "nonce-2",
        &[identity_secret(&id2.chain, &id2.key), ca_secret(&ca1.pem)],
    ))
    .await;
    assert_ack(&s.next_request().await, "v2", "nonce-2");
    assert_eq!(read(&cert), id2.chain);
    assert_eq!(read(&key), id2.key);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(inode(&ca), ca_inode);
    assert_eq!(hook_runs(&hook_log), 2);
    let inodes = [inode(&cert), inode(&key)];

    // v3: bad PEM; NACK with the last accepted version, the files stay.
    let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    s.send(response(
        "v3",
        "nonce-3",
        &[identity_secret(garbage, &id1.key), ca_secret(&ca1.pem)],
    ))
    .await;
    let nack = s.next_request().await;
    assert_eq!(nack.version_info, "v2", "{nack:?}");
    assert_eq!(nack.response_nonce, "nonce-3");
    let status = nack.error_detail.expect("a NACK carries error_detail");
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .contains("identity_cert:secret:default: tls_certificate.certificate_chain"),
        "{}",
        status.message
    );
    assert_eq!(read(&cert), id2.chain);
    assert_eq!([inode(&cert), inode(&key)], inodes);
    assert_eq!(hook_runs(&hook_log), 2);

    // v4: only the trust bundle, now with a second root; only ca.pem changes.
    let bundle = format!("{}{}", ca1.pem, ca2.pem);
    s.send(response("v4", "nonce-4", &[ca_secret(&bundle)]))
        .await;
    assert_ack(&s.next_request().await, "v4", "nonce-4");
    assert_eq!(read(&ca), bundle);
    assert_ne!(inode(&ca), ca_inode);
    assert_eq!([inode(&cert), inode(&key)], inodes);
    assert_eq!(hook_runs(&hook_log), 3);
    let all = [inode(&cert), inode(&key), inode(&ca)];

    // v5: the same content again; ACKed, nothing rewritten, no hook.
    s.send(response(
        "v5",
        "nonce-5",
        &[identity_secret(&id2.chain, &id2.key), ca_secret(&bundle)],
    ))
    .await;
    assert_ack(&s.next_request().await, "v5", "nonce-5");
    assert_eq!([inode(&cert), inode(&key), inode(&ca)], all);
    assert_eq!(hook_runs(&hook_log), 3);

    // The stream fails: the agent reconnects (backoff) with a fresh first request; the files
    // stay, and the same content is not rewritten.
    s.send(Err(Status::unavailable("zone restarting"))).await;
    drop(s);
    let mut s = zone.next_session().await;
    assert_first_request(&s.next_request().await);
    s.send(response(
        "v6",
        "nonce-6",
        &[identity_secret(&id2.chain, &id2.key), ca_secret(&bundle)],
    ))
    .await;
    assert_ack(&s.next_request().await, "v6", "nonce-6");
    assert_eq!([inode(&cert), inode(&key), inode(&ca)], all);
    assert_eq!(hook_runs(&hook_log), 3);

    // SIGTERM: exit 0.
    dp.signal("TERM");
    let code = dp.wait_exit().await;
    let stderr = dp.stderr();
    assert_eq!(code, Some(0), "{stderr}");

    // The log names the rotation (SPIFFE id, serial), the NACK and the retry; no secrets.
    assert!(stderr.contains("certificate files updated"), "{stderr}");
    assert!(stderr.contains("spiffe://default/backend"), "{stderr}");
    assert!(stderr.contains(&id2.serial), "{stderr}");
    assert!(stderr.contains("rejecting (NACK)"), "{stderr}");
    assert!(stderr.contains("zone restarting"), "{stderr}");
    assert!(stderr.contains("retry_in"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "token logged: {stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "key logged: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_exits_1_with_the_zones_message() {
    let dir = tempfile::tempdir().unwrap();
    let zone = start_zone(TOKEN).await;
    let mut dp = Dp::spawn(dir.path(), &zone, "some-other-token", None);
    let code = dp.wait_exit().await;
    let stderr = dp.stderr();
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: the zone refused dataplane default.backend-1: the dataplane token is not valid; \
         generate one with `mosaicctl generate dataplane-token`"
    );
    assert!(
        !stderr.contains("some-other-token"),
        "token logged: {stderr}"
    );
    assert!(!dir.path().join("out/certs/cert.pem").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_an_open_stream_exits_1_and_keeps_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut zone = start_zone(TOKEN).await;
    let mut dp = Dp::spawn(dir.path(), &zone, TOKEN, None);
    let ca1 = mesh_ca("mesh CA 1");
    let id1 = leaf(&ca1);
    let mut s = zone.next_session().await;
    assert_first_request(&s.next_request().await);
    s.send(response(
        "1",
        "a",
        &[identity_secret(&id1.chain, &id1.key), ca_secret(&ca1.pem)],
    ))
    .await;
    assert_ack(&s.next_request().await, "1", "a");
    s.send(Err(Status::permission_denied(
        "Dataplane default/backend-1 was deleted; register it again",
    )))
    .await;
    let code = dp.wait_exit().await;
    let stderr = dp.stderr();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.lines().last().unwrap_or_default()
            == "error: the zone refused dataplane default.backend-1: Dataplane default/backend-1 \
                was deleted; register it again",
        "{stderr}"
    );
    assert_eq!(read(&dir.path().join("out/certs/cert.pem")), id1.chain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_certificate_from_another_ca_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut zone = start_zone(TOKEN).await;
    // The agent is given a CA that did not sign the zone's certificate.
    zone.ca_pem = tls::generate_ca("some other CA").unwrap().cert_pem;
    let mut dp = Dp::spawn(dir.path(), &zone, TOKEN, None);
    let deadline = Instant::now() + DEADLINE;
    while !dp.stderr().contains("retry_in") {
        assert!(dp.child.try_wait().unwrap().is_none(), "{}", dp.stderr());
        assert!(
            Instant::now() < deadline,
            "no retry logged: {}",
            dp.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stderr = dp.stderr();
    assert!(stderr.contains("cannot connect to the zone"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(
        zone.sessions.try_recv().is_err(),
        "no stream may open over an untrusted connection"
    );
    dp.signal("INT");
    assert_eq!(dp.wait_exit().await, Some(0), "{}", dp.stderr());
}
