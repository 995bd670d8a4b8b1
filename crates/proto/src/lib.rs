//! Mosaic's gRPC contracts: `.proto` files (under `proto/`) and the code tonic/prost generate.
//!
//! Module map:
//! - [`raft`]: the raft transport between global replicas (`mosaic.raft.v1.RaftService`).
//! - [`kds`]: the global ⇄ zone discovery protocol (`mosaic.kds.v1.KdsService`).
//! - [`codec`]: `LeanCodec`, the prost codec with small per-stream buffers that every service
//!   here uses.
//! - [`sds_service`]: `LeanSds`, Envoy's SDS server with `StreamSecrets` on `LeanCodec`.
//! - [`envoy`]: Envoy's protos (the `envoy-types` crate), for SDS between zone and data planes.

pub mod codec;
pub mod sds_service;

/// `mosaic.raft.v1`: AppendEntries, Vote, InstallSnapshot (chunked) and Forward (a follower's
/// write sent to the leader).
pub mod raft {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("mosaic.raft.v1");
}

/// `mosaic.kds.v1`: GlobalToZone and ZoneToGlobal streams (see the .proto for the rules).
pub mod kds {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("mosaic.kds.v1");
}

/// Envoy's API types and gRPC services (`envoy.service.secret.v3.SecretDiscoveryService`, `Secret`,
/// `DiscoveryRequest`, ...), from the `envoy-types` crate.
pub use envoy_types::pb as envoy;
