//! The Mosaic zone control plane: its store, the KDS client to the global, the zone HTTP API and
//! diagnostics, the certificate issuer and the SDS server for data planes.
//!
//! Module map:
//! - [`config`]: `ZoneConfig` and its sections (`zone`, `[global]`, `[api]`, `[dp_server]`,
//!   `[issuer]`), loaded by `mosaic_runtime::config`.
//! - [`store`]: the zone's sled store (global-owned records received over KDS, zone-owned
//!   records), its change feed, and mesh Secrets as a `SecretSource`.
//! - [`kds`]: the KDS client (GlobalToZone and ZoneToGlobal streams, reconnect and failover).
//! - [`insight`]: the zone's own ZoneInsight (KDS sessions, CA health hook).
//! - [`api`]: the zone HTTP API on `api.listen` (Kuma paths and error bodies).
//! - [`diagnostics`]: `/metrics`, `/ready`, `/healthy` on `diagnostics.listen`.
//! - [`issuer`]: data-plane certificates from each Mesh's backends: cache, rotation, CA health.
//! - [`sds`]: the dataplane server: Envoy SDS over TLS, registration, DataplaneInsight.
//! - [`server`]: wiring for `mosaic-zone run`, with graceful shutdown.

pub mod api;
pub mod config;
pub mod diagnostics;
pub mod insight;
pub mod issuer;
pub mod kds;
pub mod sds;
pub mod server;
pub mod store;

/// The zone's software version: sent as `mosaic-zone-version` on every KDS stream and recorded in
/// the zone's ZoneInsight (here, below both, so neither imports the other for it).
pub const ZONE_VERSION: &str = env!("CARGO_PKG_VERSION");
