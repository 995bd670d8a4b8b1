//! The client side of the raft transport: one lazily connected tonic channel per peer, over
//! mutual TLS (see [`super::tls`]) unless `raft.insecure` is set.
//!
//! Requests and responses are openraft's own types as JSON inside `RaftPayload`; a snapshot is
//! one client-streaming `InstallSnapshot` call (metadata first, then 1 MiB data chunks read from
//! the snapshot file). A peer that cannot be reached is reported as `RPCError::Unreachable`, so
//! openraft backs off instead of spinning.

use std::{error::Error as StdError, future::Future, io::Read};

use mosaic_proto::raft::{RaftPayload, SnapshotChunk, raft_service_client::RaftServiceClient};
use openraft::{
    BasicNode, Snapshot, Vote,
    error::{
        Fatal, NetworkError, RPCError, RaftError as OrError, RemoteError, ReplicationClosed,
        StreamingError, Unreachable,
    },
    network::{RPCOption, RaftNetwork, RaftNetworkFactory},
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
    },
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tonic::transport::Channel;

use super::{TypeConfig, snapshot::SnapMeta, tls::RaftTransport};

/// Size of one snapshot data chunk.
pub const SNAPSHOT_CHUNK: usize = 1024 * 1024;
/// Largest gRPC message accepted either way (append batches of large resources).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The first chunk of a snapshot transfer.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The leader's vote.
    pub vote: Vote<u64>,
    /// The snapshot's metadata.
    pub meta: SnapMeta,
}

/// Creates openraft's per-peer clients.
#[derive(Clone, Debug)]
pub struct NetworkFactory {
    node_id: u64,
    transport: RaftTransport,
}

/// A client for one peer.
#[derive(Debug)]
pub struct PeerClient {
    target: u64,
    client: Result<RaftServiceClient<Channel>, String>,
}

/// A raft service client over `channel` with Mosaic's message limits.
pub fn client(channel: Channel) -> RaftServiceClient<Channel> {
    RaftServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Whether `status` says the request never reached the peer (connection refused): it is then
/// safe to send it elsewhere.
pub fn never_sent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

fn unreachable_or_network<E: StdError>(status: tonic::Status) -> RPCError<u64, BasicNode, E> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            RPCError::Unreachable(Unreachable::new(&status))
        }
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<RaftPayload, serde_json::Error> {
    Ok(RaftPayload {
        data: serde_json::to_vec(value)?,
        error: Vec::new(),
    })
}

/// Decodes a reply: the response, or the remote raft error it carries.
fn decode<T, E>(target: u64, payload: RaftPayload) -> Result<T, RPCError<u64, BasicNode, E>>
where
    T: DeserializeOwned,
    E: StdError + DeserializeOwned,
{
    if !payload.error.is_empty() {
        let e: E = serde_json::from_slice(&payload.error)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        return Err(RPCError::RemoteError(RemoteError::new(target, e)));
    }
    serde_json::from_slice(&payload.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

// === impl NetworkFactory ===

impl NetworkFactory {
    /// Clients for node `node_id`, over `transport`.
    pub fn new(node_id: u64, transport: RaftTransport) -> Self {
        Self { node_id, transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        let client = self
            .transport
            .channel(target, &node.addr)
            .map(client)
            .map_err(|e| format!("raft address {:?} of node {target}: {e}", node.addr));
        if let Err(e) = &client {
            tracing::warn!(node = self.node_id, target, error = %e, "cannot create raft client");
        }
        PeerClient { target, client }
    }
}

// === impl PeerClient ===

impl PeerClient {
    fn client<E: StdError>(
        &self,
    ) -> Result<RaftServiceClient<Channel>, RPCError<u64, BasicNode, E>> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&Message(e))))
    }

    async fn unary<Req, Resp, E, F, Fut>(
        &self,
        req: &Req,
        option: &RPCOption,
        call: F,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: StdError + DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, RaftPayload) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        let client = self.client()?;
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = match tokio::time::timeout(option.hard_ttl(), call(client, payload)).await {
            Ok(r) => r.map_err(unreachable_or_network)?,
            Err(elapsed) => return Err(RPCError::Unreachable(Unreachable::new(&elapsed))),
        };
        decode(self.target, reply.into_inner())
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, OrError<u64>>> {
        self.unary(&rpc, &option, |mut c, p| async move {
            c.append_entries(p).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, OrError<u64>>> {
        self.unary(&rpc, &option, |mut c, p| async move { c.vote(p).await })
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let mut client = match self.client::<Fatal<u64>>() {
            Ok(c) => c,
            Err(RPCError::Unreachable(u)) => return Err(StreamingError::Unreachable(u)),
            Err(e) => return Err(StreamingError::Network(NetworkError::new(&e))),
        };
        let header = serde_json::to_vec(&SnapshotHeader {
            vote,
            meta: snapshot.meta.clone(),
        })
        .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let mut file = snapshot.snapshot.reopen().map_err(|e| {
            StreamingError::StorageError(
                openraft::StorageIOError::read_snapshot(Some(snapshot.meta.signature()), &e).into(),
            )
        })?;

        // A blocking reader feeds the request stream; it stops when the call ends.
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(2);
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if tx
                .blocking_send(SnapshotChunk {
                    meta: header,
                    data: Vec::new(),
                })
                .is_err()
            {
                return Ok(());
            }
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                let mut filled = 0;
                while filled < buf.len() {
                    let n = file.read(&mut buf[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok(());
                }
                buf.truncate(filled);
                let chunk = SnapshotChunk {
                    meta: Vec::new(),
                    data: buf,
                };
                if tx.blocking_send(chunk).is_err() {
                    return Ok(());
                }
            }
        });

        let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let reply = tokio::select! {
            r = tokio::time::timeout(option.hard_ttl(), call) => r,
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StreamingError::StorageError(
                    openraft::StorageIOError::read_snapshot(Some(snapshot.meta.signature()), &e)
                        .into(),
                ));
            }
            Err(e) => return Err(StreamingError::Network(NetworkError::new(&e))),
        }
        let reply = match reply {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                return Err(match unreachable_or_network::<Fatal<u64>>(status) {
                    RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                    other => StreamingError::Network(NetworkError::new(&other)),
                });
            }
            Err(elapsed) => return Err(StreamingError::Unreachable(Unreachable::new(&elapsed))),
        };
        decode::<SnapshotResponse<u64>, Fatal<u64>>(self.target, reply).map_err(|e| match e {
            RPCError::RemoteError(r) => StreamingError::RemoteError(r),
            other => StreamingError::Network(NetworkError::new(&other)),
        })
    }
}
