//! Mosaic's domain: plain types and the code that talks to certificate authorities.
//! No servers, no raft, no gRPC live here.
//!
//! Module map:
//! - [`api`]: HTTP API shapes shared by servers and mosaicctl (Kuma error body, list envelope).
//! - [`api_auth`]: who may use the HTTP APIs: loopback callers (`api.localhost_is_admin`) and
//!   admin tokens (`api.admin_token_file`, the generated `<data_dir>/admin-token`); the middleware.
//! - [`api_metrics`]: the HTTP APIs' request count and duration middleware (bounded labels).
//! - [`sensitive`]: `Sensitive<T>`, the redacting wrapper every token and key lives in.
//! - [`duration`]: Kuma durations (`ms s m h d w y`).
//! - [`validate`]: violations with Kuma field paths, collected all at once.
//! - [`resource`]: Mesh, Secret, GlobalSecret, Zone, Dataplane and insights; Universal and Kubernetes forms.
//! - [`data_dir`]: owner-only data directories (umask 077, 0700/0600 for what is already there).
//! - [`datasource`]: DataSource (`secret`, `file`, `inline`, `inlineString`) and its resolution.
//! - [`net`]: accepted TCP connections with `TCP_NODELAY` for the gRPC servers.
//! - [`process`]: `shutdown_signal()`, the SIGTERM/SIGINT future servers shut down on.
//! - [`template`]: the Vault backend's `commonName` template (`tag`, `replace`).
//! - [`ca`]: the `CaBackend` trait and its builtin, provided and Vault implementations.
//! - [`config`]: TOML + `MOSAIC_` environment configuration of the global and zone control planes.
//! - [`telemetry`]: tracing subscriber set-up shared by every binary (`--log-format json|text`).
//! - [`tls`]: the process-wide rustls crypto provider; generated server CAs and certificates.
//! - [`token`]: zone and dataplane tokens (Ed25519 JWTs): signing keys, claims, verification.
//! - [`revocation`]: revoked token ids, listed in secrets as Kuma does (`dataplane-token-revocations-<mesh>`,
//!   `zone-token-revocations`).
//! - [`sds`]: the data-plane interface's names (SDS secrets, node id) and the token-tags rule.

#![deny(warnings)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod api_auth;
pub mod api_metrics;
pub mod ca;
pub mod config;
pub mod data_dir;
pub mod datasource;
pub mod duration;
pub mod net;
pub mod process;
pub mod resource;
pub mod revocation;
pub mod sds;
pub mod sensitive;
pub mod telemetry;
pub mod template;
pub mod tls;
pub mod token;
pub mod validate;

pub use sensitive::Sensitive;
