//! What Mosaic's processes share at run time, above the domain (`mosaic-core`) and below the
//! binaries. Without feature `server` (the agents: `mosaic-dp`, `mosaicctl`) it has no HTTP
//! server, no configuration loader and no listener code.
//!
//! Module map:
//! - [`cli`] (`cli`): the binaries' command-line skeleton (`--log-format`, the `error:` line, exit codes).
//! - [`telemetry`]: the tracing subscriber every binary sets up (`--log-format json|text`).
//! - [`process`]: `shutdown_signal()`, the SIGTERM/SIGINT future servers shut down on.
//! - [`tls`]: the process-wide rustls crypto provider (ring); generated CAs and certificates.
//! - [`data_dir`]: owner-only data directories (umask 077, 0700/0600 for what is already there).
//! - [`net`] (`server`): accepted TCP connections with `TCP_NODELAY`; gRPC size errors read.
//! - [`config`] (`server`): the TOML + `MOSAIC_` environment loader of the control planes'
//!   configurations, and the sections they share (`[store]`, `[diagnostics]`).
//! - [`api_auth`] (`server`): who may use the HTTP APIs (loopback admins, admin tokens).
//! - [`api_metrics`] (`server`): the HTTP APIs' request count and duration middleware.

#[cfg(feature = "cli")]
pub mod cli;
pub mod data_dir;
pub mod process;
pub mod telemetry;
pub mod tls;

#[cfg(feature = "server")]
pub mod api_auth;
#[cfg(feature = "server")]
pub mod api_metrics;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod net;
