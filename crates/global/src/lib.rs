//! The global control plane: the one source of truth for Meshes and their secrets.
//!
//! Module map:
//! - [`raft`]: the raft-replicated store (openraft over sled, gRPC transport, `RaftNode`, `RaftStore`).
//! - [`store`]: resource keys, raft commands, the deterministic apply plan (versions, times,
//!   referential safety) and the `ResourceStore` trait the API writes and reads through.

#![deny(warnings)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod raft;
pub mod store;
