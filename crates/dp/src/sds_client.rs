//! The SDS client: a TLS channel to the zone's dataplane server, one
//! `envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets` stream, and the requests sent
//! on it.
//!
//! Wire behaviour (what the zone's server can rely on):
//! - gRPC metadata `authorization: Bearer <token>` on the stream.
//! - First request of every stream: `node { id: "<mesh>.<name>", metadata { "dataplane.resource":
//!   <the Dataplane file's text> }, user_agent_name: "mosaic-dp", user_agent_version }`,
//!   `type_url` = the Secret type, `resource_names = ["identity_cert:secret:<mesh>",
//!   "mesh_ca:secret:<mesh>"]`, empty `version_info` and `response_nonce` (so the zone always
//!   answers a new stream with the full set).
//! - ACK: same `type_url` and `resource_names`, no node, `version_info` = the response's
//!   `version_info`, `response_nonce` = its `nonce`.
//! - NACK: same, `version_info` = the last accepted version (empty if none yet),
//!   `response_nonce` = the rejected response's `nonce`, `error_detail { code: 3
//!   (INVALID_ARGUMENT), message }`.
//!
//! Statuses `UNAUTHENTICATED`, `PERMISSION_DENIED`, `INVALID_ARGUMENT` and `NOT_FOUND` mean the
//! zone refused this data plane ([`SdsError::Refused`]); anything else is worth retrying.

use std::{collections::HashMap, time::Duration};

use mosaic_core::{
    Sensitive,
    sds::{AUTHORIZATION_METADATA, DATAPLANE_RESOURCE_METADATA, SECRET_TYPE_URL, node_id},
};
use mosaic_proto::envoy::{
    envoy::{
        config::core::v3::{Node, node::UserAgentVersionType},
        service::{
            discovery::v3::{DiscoveryRequest, DiscoveryResponse},
            secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
        },
    },
    google::{
        protobuf::{Struct, Value, value::Kind},
        rpc::Status as RpcStatus,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::secrets::resource_names;

/// The dataplane server's port when `--zone` names none (Kuma's 5678).
pub const DEFAULT_PORT: u16 = 5678;
/// `user_agent_name` of the node.
pub const USER_AGENT: &str = "mosaic-dp";
/// `google.rpc.Code.INVALID_ARGUMENT`, the code of a NACK's `error_detail`.
pub const NACK_CODE: i32 = 3;
/// Largest response accepted (a trust bundle with many roots stays far below).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// TCP connect and TLS handshake timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive ping interval (also while idle: the stream waits for rotations for hours).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// A ping unanswered this long closes the connection, so a dead zone is noticed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests queued ahead of the network (one ACK/NACK per response, so a handful suffices).
const OUTBOUND_CAPACITY: usize = 8;

/// `--zone`: where the dataplane server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneAddress {
    /// The URL as given (for logs).
    pub url: url::Url,
    /// Host name or IP address (no brackets); also the TLS server name.
    pub host: String,
    /// Port: as written, else 443 for an explicit `:443`, else [`DEFAULT_PORT`].
    pub port: u16,
}

/// Who is asking: the node of the first request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `--mesh`.
    pub mesh: String,
    /// `--name`.
    pub name: String,
    /// The Dataplane file's text, sent as-is in `node.metadata["dataplane.resource"]`.
    pub dataplane_resource: String,
}

/// Why a stream could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum SdsError {
    /// The zone cannot be reached (TCP, TLS or HTTP/2).
    #[error("cannot connect to the zone at {url}: {reason}")]
    Connect {
        /// The zone URL.
        url: String,
        /// The transport error chain.
        reason: String,
    },
    /// The zone refused this data plane; retrying cannot help.
    #[error("the zone refused dataplane {node_id}: {message}")]
    Refused {
        /// `<mesh>.<name>`.
        node_id: String,
        /// The gRPC code.
        code: Code,
        /// The zone's message (it says what to do).
        message: String,
    },
    /// The stream failed with a status worth retrying.
    #[error("the zone stream failed ({code:?}): {message}")]
    Status {
        /// The gRPC code.
        code: Code,
        /// The message and its sources.
        message: String,
    },
    /// The zone ended the stream.
    #[error("the zone closed the stream")]
    Closed,
    /// A setting tonic refuses.
    #[error("cannot set up the connection to {url}: {reason}")]
    Setup {
        /// The zone URL.
        url: String,
        /// What tonic said.
        reason: String,
    },
}

/// The token cannot be sent as a gRPC header.
#[derive(Debug, thiserror::Error)]
#[error(
    "the token holds characters that cannot go in a gRPC header (a dataplane token is printable ASCII)"
)]
pub struct InvalidToken;

/// A configured channel to the zone (not yet connected).
#[derive(Clone, Debug)]
pub struct ZoneEndpoint {
    url: String,
    endpoint: Endpoint,
}

/// One open `StreamSecrets` stream.
#[derive(Debug)]
pub struct SdsStream {
    node_id: String,
    outbound: mpsc::Sender<DiscoveryRequest>,
    inbound: tonic::Streaming<DiscoveryResponse>,
}

// === impl ZoneAddress ===

impl ZoneAddress {
    /// Parses `--zone`: an `https` or `grpcs` URL with a host (the dataplane server always speaks
    /// TLS) and an optional port.
    pub fn parse(s: &str) -> Result<Self, String> {
        let example = "expected e.g. https://zone.example:5678";
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}); {example}"))?;
        if !matches!(url.scheme(), "https" | "grpcs") {
            return Err(format!(
                "{s:?} has scheme {:?}; the dataplane server speaks TLS, use https or grpcs",
                url.scheme()
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(format!("{s:?} has no host; {example}")),
        };
        // `Url` hides a port equal to the scheme's default (443 for https): look at the text.
        let port = url.port().unwrap_or_else(|| {
            if authority_has_port(s) {
                url.port_or_known_default().unwrap_or(DEFAULT_PORT)
            } else {
                DEFAULT_PORT
            }
        });
        Ok(Self { url, host, port })
    }

    /// `https://host:port` for tonic (IPv6 hosts in brackets).
    fn origin(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// Whether the authority of URL text `s` ends with `:<digits>`.
fn authority_has_port(s: &str) -> bool {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match host_port.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

// === impl ZoneEndpoint ===

impl ZoneEndpoint {
    /// A TLS channel to `zone` that trusts only `ca_pem` and checks the certificate against the
    /// URL's host.
    pub fn new(zone: &ZoneAddress, ca_pem: &[u8]) -> Result<Self, SdsError> {
        let url = zone.url.to_string();
        let setup = |e: tonic::transport::Error| SdsError::Setup {
            url: url.clone(),
            reason: error_chain(&e),
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name(zone.host.clone());
        let endpoint = Endpoint::from_shared(zone.origin())
            .map_err(setup)?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .tls_config(tls)
            .map_err(setup)?;
        Ok(Self { url, endpoint })
    }

    /// The zone URL (for logs).
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn connect(&self) -> Result<Channel, SdsError> {
        self.endpoint
            .connect()
            .await
            .map_err(|e| SdsError::Connect {
                url: self.url.clone(),
                reason: error_chain(&e),
            })
    }
}

// === impl SdsStream ===

impl SdsStream {
    /// Connects, opens `StreamSecrets` with the token and sends the first request.
    pub async fn open(
        zone: &ZoneEndpoint,
        token: &Sensitive<String>,
        node: &NodeIdentity,
    ) -> Result<Self, SdsError> {
        let authorization = bearer(token).map_err(|e| SdsError::Setup {
            url: zone.url.clone(),
            reason: e.to_string(),
        })?;
        let channel = zone.connect().await?;
        let mut client = SecretDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (outbound, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let node_id = node_id(&node.mesh, &node.name);
        // The channel is empty and its receiver alive: this cannot fail.
        let _ = outbound.try_send(initial_request(node));
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert(AUTHORIZATION_METADATA, authorization);
        let inbound = client
            .stream_secrets(request)
            .await
            .map_err(|s| classify(&node_id, &s))?
            .into_inner();
        Ok(Self {
            node_id,
            outbound,
            inbound,
        })
    }

    /// The next response.
    pub async fn recv(&mut self) -> Result<DiscoveryResponse, SdsError> {
        match self.inbound.message().await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(SdsError::Closed),
            Err(s) => Err(classify(&self.node_id, &s)),
        }
    }

    /// Sends an ACK or NACK.
    pub async fn send(&self, request: DiscoveryRequest) -> Result<(), SdsError> {
        self.outbound
            .send(request)
            .await
            .map_err(|_| SdsError::Closed)
    }
}

/// `Bearer <token>`, marked sensitive so HTTP/2 never indexes or logs it.
pub fn bearer(token: &Sensitive<String>) -> Result<MetadataValue<Ascii>, InvalidToken> {
    let mut value: MetadataValue<Ascii> = format!("Bearer {}", token.expose())
        .parse()
        .map_err(|_| InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

/// The node: id, the Dataplane in metadata, and who we are.
pub fn node(identity: &NodeIdentity) -> Node {
    let metadata = Struct {
        fields: HashMap::from([(
            DATAPLANE_RESOURCE_METADATA.to_string(),
            Value {
                kind: Some(Kind::StringValue(identity.dataplane_resource.clone())),
            },
        )]),
    };
    Node {
        id: node_id(&identity.mesh, &identity.name),
        metadata: Some(metadata),
        user_agent_name: USER_AGENT.to_string(),
        user_agent_version_type: Some(UserAgentVersionType::UserAgentVersion(
            env!("CARGO_PKG_VERSION").to_string(),
        )),
        ..Default::default()
    }
}

/// The first request of a stream.
pub fn initial_request(identity: &NodeIdentity) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(node(identity)),
        type_url: SECRET_TYPE_URL.to_string(),
        resource_names: resource_names(&identity.mesh),
        ..Default::default()
    }
}

/// Accepts the response with `version` and `nonce`.
pub fn ack_request(mesh: &str, version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_string(),
        response_nonce: nonce.to_string(),
        type_url: SECRET_TYPE_URL.to_string(),
        resource_names: resource_names(mesh),
        ..Default::default()
    }
}

/// Rejects the response with `nonce`, still holding `last_accepted_version`.
pub fn nack_request(
    mesh: &str,
    last_accepted_version: &str,
    nonce: &str,
    reason: &str,
) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: last_accepted_version.to_string(),
        response_nonce: nonce.to_string(),
        type_url: SECRET_TYPE_URL.to_string(),
        resource_names: resource_names(mesh),
        error_detail: Some(RpcStatus {
            code: NACK_CODE,
            message: reason.to_string(),
            details: Vec::new(),
        }),
        ..Default::default()
    }
}

/// Whether a status means the zone refused this data plane for good.
pub fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument | Code::NotFound
    )
}

fn classify(node_id: &str, status: &tonic::Status) -> SdsError {
    if is_refusal(status.code()) {
        return SdsError::Refused {
            node_id: node_id.to_string(),
            code: status.code(),
            message: status.message().to_string(),
        };
    }
    let mut message = status.message().to_string();
    if let Some(source) = std::error::Error::source(status) {
        let chain = error_chain(source);
        if !message.contains(&chain) {
            message = if message.is_empty() {
                chain
            } else {
                format!("{message}: {chain}")
            };
        }
    }
    SdsError::Status {
        code: status.code(),
        message,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> NodeIdentity {
        NodeIdentity {
            mesh: "default".into(),
            name: "backend-1".into(),
            dataplane_resource: "type: Dataplane\nname: backend-1\n".into(),
        }
    }

    #[test]
    fn first_request_carries_node_metadata_and_names() {
        let r = initial_request(&identity());
        let node = r.node.unwrap();
        assert_eq!(node.id, "default.backend-1");
        assert_eq!(node.user_agent_name, "mosaic-dp");
        let field = node
            .metadata
            .unwrap()
            .fields
            .remove("dataplane.resource")
            .unwrap();
        assert_eq!(
            field.kind,
            Some(Kind::StringValue(
                "type: Dataplane\nname: backend-1\n".into()
            ))
        );
        assert_eq!(r.type_url, SECRET_TYPE_URL);
        assert_eq!(
            r.resource_names,
            vec!["identity_cert:secret:default", "mesh_ca:secret:default"]
        );
        assert!(r.version_info.is_empty() && r.response_nonce.is_empty());
        assert!(r.error_detail.is_none());
    }

    #[test]
    fn ack_and_nack() {
        let ack = ack_request("default", "v2", "n2");
        assert_eq!(
            (ack.version_info.as_str(), ack.response_nonce.as_str()),
            ("v2", "n2")
        );
        assert!(ack.node.is_none() && ack.error_detail.is_none());
        assert_eq!(ack.resource_names.len(), 2);
        let nack = nack_request("default", "v2", "n3", "bad PEM");
        assert_eq!(
            (nack.version_info.as_str(), nack.response_nonce.as_str()),
            ("v2", "n3")
        );
        let status = nack.error_detail.unwrap();
        assert_eq!((status.code, status.message.as_str()), (3, "bad PEM"));
    }

    #[test]
    fn refusals_are_final_other_failures_retried() {
        for code in [
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::InvalidArgument,
            Code::NotFound,
        ] {
            let e = classify("m.n", &tonic::Status::new(code, "generate a new token"));
            assert_eq!(
                e.to_string(),
                "the zone refused dataplane m.n: generate a new token"
            );
        }
        for code in [
            Code::Unavailable,
            Code::Internal,
            Code::Unknown,
            Code::Cancelled,
        ] {
            let e = classify("m.n", &tonic::Status::new(code, "reset"));
            assert!(matches!(e, SdsError::Status { .. }), "{code:?}");
        }
    }

    #[test]
    fn zone_addresses() {
        let a = ZoneAddress::parse("https://zone.example:5678").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("zone.example", 5678));
        assert_eq!(a.origin(), "https://zone.example:5678");
        let a = ZoneAddress::parse("grpcs://zone").unwrap();
        assert_eq!(a.port, DEFAULT_PORT);
        let a = ZoneAddress::parse("https://zone").unwrap();
        assert_eq!(a.port, DEFAULT_PORT);
        let a = ZoneAddress::parse("https://zone:443/").unwrap();
        assert_eq!(a.port, 443);
        let a = ZoneAddress::parse("https://[::1]:5679").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 5679));
        assert_eq!(a.origin(), "https://[::1]:5679");
        let a = ZoneAddress::parse("https://[::1]").unwrap();
        assert_eq!(a.port, DEFAULT_PORT);
        let a = ZoneAddress::parse("https://127.0.0.1:1").unwrap();
        assert_eq!(a.host, "127.0.0.1");
        for bad in ["http://zone:5678", "zone:5678", "https://", "not a url"] {
            assert!(ZoneAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_is_sensitive_and_ascii_only() {
        let v = bearer(&Sensitive::new("abc.def".into())).unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Bearer abc.def");
        assert!(bearer(&Sensitive::new("a\nb".into())).is_err());
    }
}
