//! The KDS client: the zone's side of `mosaic.kds.v1.KdsService` (see `kds.proto` for the
//! rules). Only the zone dials; one session is two streams over one HTTP/2 connection.
//!
//! Module map:
//! - [`client`]: `KdsClient` (connect, session, reconnect with backoff and failover),
//!   `KdsClientConfig`, `KdsOptions`.
//! - [`endpoint`]: `global.address` (one URL or a comma-separated list), TLS and keepalive.
//! - [`auth`]: the stream metadata (zone token from `global.token_file`, zone, version, features).
//! - [`backoff`]: jittered exponential backoff.
//! - [`session`]: what both stream loops of a session share.
//! - [`global_to_zone`]: the GlobalToZone loop (subscribe with known versions, apply, ACK/NACK).
//! - [`receive`]: validation of received items and the store batch (authoritative prune).
//! - [`zone_to_global`]: the ZoneToGlobal loop (authoritative first, then deltas; ACK deadline).
//! - [`status`]: `KdsStatus` (connected, last error).
//! - [`error`]: `SessionError`, why a session ended.

pub mod auth;
pub mod backoff;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod global_to_zone;
pub mod receive;
pub mod session;
pub mod status;
pub mod zone_to_global;

pub use client::{KdsClient, KdsClientConfig, KdsOptions};
pub use endpoint::{EndpointError, GlobalEndpoint};
pub use error::SessionError;
pub use status::KdsStatus;
