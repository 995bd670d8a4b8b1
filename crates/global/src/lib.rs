//! The global control plane: the one source of truth for Meshes and their secrets.
//!
//! Module map:
//! - [`admission`]: what a written resource becomes: shape validation, Mesh CA checks (Secrets
//!   exist, builtin CA generated once, provided CA loads, Vault test issuance) and the command.
//! - [`config`]: `GlobalConfig` and its sections (`[raft]`, `[api]`, `[kds]`), loaded by
//!   `mosaic_runtime::config`.
//! - [`api`]: the HTTP API (Kuma paths and error bodies, JSON/YAML, paging, admin token).
//! - [`diagnostics`]: `/metrics`, `/ready`, `/healthy` on the diagnostics listener.
//! - [`failpoint`]: test-only failpoints (`failpoints` feature) and their `/failpoints` control.
//! - [`kds`]: the KDS server zones connect to (authenticated streams, authoritative diffs,
//!   event-driven deltas, zone-owned writes stamped with the zone, ZoneInsight sessions).
//! - [`raft`]: the raft-replicated store (openraft over sled, gRPC transport, `RaftNode`, `RaftStore`).
//! - [`server`]: a replica wired together (raft, API, diagnostics, gauges, graceful shutdown).
//! - [`store`]: resource keys, raft commands, the deterministic apply plan (versions, times,
//!   referential safety) and the `ResourceStore` trait the API writes and reads through.
//! - [`tokens`]: zone and dataplane token issuance; signing keys live in the store, only public
//!   keys leave the global.

pub mod admission;
pub mod api;
pub mod config;
pub mod diagnostics;
pub mod failpoint;
pub mod kds;
pub mod raft;
pub mod server;
pub mod store;
pub mod tokens;
