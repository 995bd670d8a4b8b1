//! Mosaic's domain: plain types and the code that talks to certificate authorities.
//! No servers, no raft, no gRPC live here.
//!
//! Module map:
//! - [`sensitive`]: `Sensitive<T>`, the redacting wrapper every token and key lives in.
//! - [`ca`]: the `CaBackend` trait and its builtin, provided and Vault implementations.
//! - [`config`]: TOML + `MOSAIC_` environment configuration of the global and zone control planes.
//! - [`telemetry`]: tracing subscriber set-up shared by every binary (`--log-format json|text`).

#![deny(warnings)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod config;
pub mod sensitive;
pub mod telemetry;

pub use sensitive::Sensitive;
