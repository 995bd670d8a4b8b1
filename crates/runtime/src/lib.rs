//! What Mosaic's processes share at run time, above the domain (`mosaic-core`) and below the
//! binaries. Without feature `server` (the agents: `mosaic-dp`, `mosaicctl`) it has no HTTP
//! server, no configuration loader and no listener code.
//!
//! Module map:
//! - [`cli`] (`cli`): the binaries' command-line skeleton (`--log-format`, the `error:` line, exit codes);
//!   with `server`, `cli::server`: the control planes' `run --config FILE`.
//! - [`telemetry`]: the tracing subscriber every binary sets up (`--log-format json|text`).
//! - [`process`]: `shutdown_signal()`, the SIGTERM/SIGINT future servers shut down on.
//! - [`tls`]: the process-wide rustls crypto provider (ring); generated CAs and certificates.
//! - [`data_dir`]: owner-only data directories (umask 077, 0700/0600 for what is already there).
//! - [`grpc`] (`server`): serving gRPC over TLS with keepalive and a graceful end of open streams.
//! - [`stream_channel`] (`server`): the boxed bounded channel a gRPC session answers its stream through.
//! - [`net`] (`server`): accepted TCP connections with `TCP_NODELAY`; gRPC size errors read.
//! - [`config`] (`server`): the TOML + `MOSAIC_` environment loader of the control planes'
//!   configurations, and the sections they share (`[store]`, `[diagnostics]`, `[api]`).
//! - [`api_auth`] (`server`): who may use the HTTP APIs (loopback admins, admin tokens).
//! - [`api_metrics`] (`server`): the HTTP APIs' request count and duration middleware.
//! - [`api_dialect`] (`server`): `ApiDialect`, what differs between the global's and a zone's API.
//! - [`api_error`] (`server`): `ApiFailure`, every failed request as Kuma's error body.
//! - [`api_format`] (`server`): JSON or YAML responses by `Accept`.
//! - [`api_filter`] (`server`): a collection's `?name=`, `?filter[labels.K]=`, `?tag=`, `?gateway=`.
//! - [`api_paging`] (`server`): `?size=`/`?offset=` and Kuma's `{total, items, next}` envelope.
//! - [`api_extract`] (`server`): path parameters (and the resource they name), `Listing`, the body.
//! - [`api_body`] (`server`): PUT bodies to resources (JSON/YAML, URL name and mesh).
//! - [`api_resources`] (`server`): collections from a store, sorted, a page of them.
//! - [`api_overview`] (`server`): `DataplaneOverview` items.
//! - [`api_insight`] (`server`): `MeshInsight`s and the `GlobalInsight`, counted from a store.
//! - [`api_catalog`] (`server`): `GET /_resources` (resource type descriptors) and `GET /config`.
//! - [`api_index`] (`server`): `GET /`, `/ready`, `/healthy`, the 404/405 fallbacks.
//! - [`api_router`] (`server`): the shared routes and layers around a server's own; collections;
//!   the Dataplane paths.
//! - [`serve`] (`server`): binding listeners, the stop signal, serving routers until it.
//! - [`tls_listener`] (`server`): the HTTPS API's listener (TLS handshakes off the accept loop).
//! - [`api_listeners`] (`server`): the API's HTTP and HTTPS listeners, served with one router.
//! - [`diagnostics`] (`server`): the diagnostics router (`/metrics`, `/ready`, `/healthy`).

#[cfg(feature = "cli")]
pub mod cli;
pub mod data_dir;
pub mod process;
pub mod telemetry;
pub mod tls;

#[cfg(feature = "server")]
pub mod api_auth;
#[cfg(feature = "server")]
pub mod api_body;
#[cfg(feature = "server")]
pub mod api_catalog;
#[cfg(feature = "server")]
pub mod api_dialect;
#[cfg(feature = "server")]
pub mod api_error;
#[cfg(feature = "server")]
pub mod api_extract;
#[cfg(feature = "server")]
pub mod api_filter;
#[cfg(feature = "server")]
pub mod api_format;
#[cfg(feature = "server")]
pub mod api_index;
#[cfg(feature = "server")]
pub mod api_insight;
#[cfg(feature = "server")]
pub mod api_listeners;
#[cfg(feature = "server")]
pub mod api_metrics;
#[cfg(feature = "server")]
pub mod api_overview;
#[cfg(feature = "server")]
pub mod api_paging;
#[cfg(feature = "server")]
pub mod api_resources;
#[cfg(feature = "server")]
pub mod api_router;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod diagnostics;
#[cfg(feature = "server")]
pub mod grpc;
#[cfg(feature = "server")]
pub mod net;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod stream_channel;
#[cfg(feature = "server")]
pub mod tls_listener;
