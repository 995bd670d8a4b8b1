//! Mosaic's gRPC contracts: `.proto` files (under `proto/`) and the code tonic/prost generate.
//!
//! Module map:
//! - [`raft`]: the raft transport between global replicas (`mosaic.raft.v1.RaftService`).

#![deny(warnings)]
#![forbid(unsafe_code)]

/// `mosaic.raft.v1`: AppendEntries, Vote, InstallSnapshot (chunked) and Forward (a follower's
/// write sent to the leader).
pub mod raft {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("mosaic.raft.v1");
}
