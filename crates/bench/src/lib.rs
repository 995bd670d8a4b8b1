//! `mosaic-bench`: Mosaic's benchmarks, measured side by side with their peers in one run, on
//! real processes wherever the question is about them (see `bench/README.md`).
//!
//! Module map:
//! - [`cli`]: the command line (`propagation`, `issuance`, `intermediate-issuance`,
//!   `intermediate-calls`, `intermediate-outage`, `global-writes`, `memory`, `zone-scale`;
//!   `--json`).
//! - [`report`]: `Report`, one benchmark's table, aim and verdict as markdown or JSON.
//! - [`stats`]: percentiles, least-squares slopes, Prometheus histogram buckets.
//! - [`load`]: the closed-loop load driver and its tallies (count, errors, throughput, latency).
//! - [`error`]: `BenchError`, why a benchmark could not run.
//! - [`procs`]: `/proc` readings (VmRSS, CPU seconds, open-files limit) and polling.
//! - [`cluster`]: the server binaries, a single-replica global, Zones and tokens, an API client,
//!   bounded concurrency.
//! - [`sim_zone`]: a simulated zone, a lean KDS client (many per process).
//! - [`sim_dataplane`]: a simulated data plane, `mosaic-dp`'s SDS client holding one stream.
//! - [`zone_issuer`]: the zone crate's `Issuer` in process over its own store with one Mesh.
//! - [`etcd`]: a 3-member etcd cluster on loopback, the write peer.
//! - [`propagation`]: Mesh write → ACK from every zone, for 10/100/1,000 zones.
//! - [`issuance`]: certificates per second through the zone issuer vs a direct Vault client;
//!   sign mode (EC) vs issue mode (RSA).
//! - [`intermediate`]: `mode: intermediate` (seed 004): issuance throughput vs a direct Vault
//!   client, Vault calls per 1,000 new data planes, how long a zone issues with Vault stopped.
//! - [`global_writes`]: 3-replica global vs 3-member etcd, throughput and latency.
//! - [`memory`]: RSS per connected zone (global) and per data plane (zone).
//! - [`zone_scale`]: one real zone with N data planes over a Vault-backed Mesh (through a
//!   measuring proxy): connect and re-issue, restart with cached certificates, rotation spread,
//!   Vault recovery.

pub mod cli;
pub mod cluster;
pub mod error;
pub mod etcd;
pub mod global_writes;
pub mod intermediate;
pub mod issuance;
pub mod load;
pub mod memory;
pub mod procs;
pub mod propagation;
pub mod report;
pub mod sim_dataplane;
pub mod sim_zone;
pub mod stats;
pub mod zone_issuer;
pub mod zone_scale;

pub use cli::{BenchCommand, Cli};
pub use error::BenchError;
pub use report::{Report, Verdict};
