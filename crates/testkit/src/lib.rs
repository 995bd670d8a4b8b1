//! Test-only support for Mosaic: real OpenBao (Vault API) dev servers and everything the
//! Vault mTLS backend needs around them.
//!
//! * [`bao_binary`] finds the `bao` binary (`MOSAIC_BAO_BIN`, then `.test-env/venv/bin/bao`, then `PATH`);
//!   tests that need OpenBao must fail, never skip, when it is missing.
//! * [`OpenBao`] runs `bao server -dev` (optionally with an extra TLS listener and a file audit
//!   device), killed on drop; `pause`/`resume` freeze and thaw it (a hung Vault).
//! * [`BaoClient`] is a tiny raw-HTTP client for the Vault API (root token, optional namespace) with
//!   helpers that do exactly what the seed documents' CLI commands do (PKI root/intermediate layouts,
//!   role, policy, token) plus AppRole, TLS-certificate and Kubernetes auth setups.
//! * [`TestCa`] makes a test CA, a server certificate for [`TLS_SERVER_NAME`] and client certificates.
//! * [`FakeKubernetesApi`] answers Kubernetes `TokenReview`s for one accepted service-account JWT.
//! * [`BaoClient::setup_seed002_pki`] and [`BaoClient::enable_seed002_cluster`] do seed 002's
//!   Vault set-up as written (root + `pki_int`, policy, sign role; Kubernetes auth per cluster).
//! * [`BaoClient::setup_seed004`] does seed 004's (openssl root loaded with `pki/config/ca`,
//!   `pki_int`, policy `gen-int-ca-istio`, Kubernetes auth role `gen-int-ca-istio`).
//! * [`Agent`] runs `bao agent` with auto-auth and an unauthenticated API proxy.
//! * [`token_id`] reads a token's id (`jti`), as an operator does before revoking it.
//! * [`keyscan`] looks for private keys in a directory's files (by public key, or a known key's
//!   bytes), to prove a key never reached the disk.
//! * [`verify_chain`] checks an issued chain as Envoy would (rustls-webpki, client and server auth).
//! * [`ZoneProcess`] runs a `mosaic-zone` against a global's KDS (CA, token), killed on drop, and
//!   says where data planes find it (`dp_url`, `dp_ca_path`).
//! * [`DataplaneAgent`] runs a `mosaic-dp` against a zone ([`AgentOptions`], [`dataplane_yaml`]):
//!   its out-dir files, log and exit status; killed on drop.
//! * [`GlobalCluster`] runs `mosaic-global` replicas as real processes (start, kill -9, restart, wipe).
//! * [`Failpoints`] sets and clears a running global's failpoints (`/failpoints` on its
//!   diagnostics listener; testkit builds the global with the `failpoints` feature).
//! * [`cli`] runs a Mosaic binary as a user would (no inherited `MOSAIC_*`/`RUST_LOG`): its exit
//!   code, stdout and stderr, its `error: ` line.
//! * [`api_caller`] calls an HTTP API as a chosen (remote or loopback) caller, exposes an API
//!   beyond loopback, and checks refusals (Kuma's 401 body, the exposed-API start refusal).
//! * [`join`] has a zone join a [`GlobalCluster`]: the replica's KDS CA, a zone token, the
//!   [`ZoneProcess`].
//! * [`Host`] says where a replica or zone runs: the address it binds and advertises, and a command
//!   prefix (`ip netns exec <ns> ...`); loopback by default. Configs are the servers' own config
//!   types, serialized.
//! * [`Prometheus`] runs Debian's `prometheus` on a free port with a given scrape config and
//!   queries it; [`prometheus_binary`]/[`promtool_binary`] find the tools (fail, never skip).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mosaic_testkit::{OpenBao, SEED_MOUNT, SEED_ROLE};
//! let bao = OpenBao::start().await?;
//! let root_pem = bao.setup_root_pki(SEED_MOUNT, "default").await?;
//! bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
//! let issued = bao
//!     .write(&format!("{SEED_MOUNT}/issue/{SEED_ROLE}"), serde_json::json!({"uri_sans": "spiffe://default/web"}))
//!     .await?;
//! assert!(issued["data"]["certificate"].is_string());
//! # let _ = root_pem; Ok(()) }
//! ```

mod agent;
pub mod api_caller;
mod auth;
mod binary;
mod certs;
pub mod cli;
mod client;
mod dataplane;
mod failpoints;
mod global;
mod host;
pub mod join;
pub mod keyscan;
mod kube;
mod pki;
mod ports;
mod prometheus;
mod seed002;
mod seed004;
mod server;
mod terminate;
mod token;
mod verify;
mod zone;

pub use agent::Agent;
pub use auth::{AppRoleCreds, KubernetesAuth};
pub use binary::{BAO_NOT_FOUND, bao_binary, workspace_binary, workspace_root};
pub use certs::{CertPair, TLS_SERVER_NAME, TestCa, pem_blocks};
pub use client::{BaoClient, VaultApiError, ensure_crypto_provider};
pub use dataplane::{AgentFiles, AgentOptions, DataplaneAgent, dataplane_yaml};
pub use failpoints::Failpoints;
pub use global::{GlobalCluster, Replica};
pub use host::Host;
pub use kube::{FakeKubernetesApi, service_account_jwt};
pub use pki::{
    IntermediatePki, PkiVerb, SEED_MESH, SEED_MOUNT, SEED_POLICY_HCL, SEED_POLICY_NAME, SEED_ROLE,
    TokenSpec, pki_policy, seed_role_params,
};
pub use ports::{free_port, free_port_pair, free_ports, non_loopback_local_ip, reserve_ports};
pub use prometheus::{
    PROMETHEUS_NOT_FOUND, Prometheus, Sample, prometheus_binary, promtool_binary,
};
pub use seed002::{
    SEED002_AUTH_ROLE, SEED002_PKI, SEED002_POLICY, SEED002_POLICY_HCL, SEED002_ROLE,
    SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT, Seed002Pki, seed002_role_params,
};
pub use seed004::{
    SEED004_CA_PATH, SEED004_CSR_PATH, SEED004_POLICY_HCL, SEED004_ROLE, SEED004_SA_NAMESPACE,
    SEED004_SERVICE_ACCOUNT, Seed004Pki, seed004_openssl_root,
};
pub use server::{OpenBao, ROOT_TOKEN, TlsListener};
pub use token::token_id;
pub use verify::verify_chain;
pub use zone::ZoneProcess;

/// How long the harness waits for a process to become ready (generous: CI machines are slow).
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
