//! Mosaic's domain: plain types, rules and traits, with no I/O: no files, no network, no async
//! runtime (Cargo proves it: none of tokio, reqwest, axum, hyper, figment or tracing-subscriber is
//! in this crate's dependency tree). The CA implementations are `mosaic-ca`'s; what processes
//! share at run time (TLS set-up, telemetry, configuration, HTTP plumbing) is `mosaic-runtime`'s.
//!
//! Module map:
//! - [`api`]: HTTP API shapes shared by servers and mosaicctl (Kuma error body, list envelope).
//! - [`sensitive`]: `Sensitive<T>`, the redacting wrapper every token and key lives in.
//! - [`duration`]: Kuma durations (`ms s m h d w y`).
//! - [`validate`]: violations with Kuma field paths, collected all at once.
//! - [`resource`]: Mesh, Secret, GlobalSecret, Zone, Dataplane and insights; Universal and Kubernetes forms.
//! - [`datasource`]: DataSource (`secret`, `file`, `inline`, `inlineString`), its validation and the
//!   `SecretSource` trait the stores implement.
//! - [`spiffe_template`]: a MeshIdentity's SPIFFE ID templates (`{{ .Mesh }}`, `{{ label "K" }}`).
//! - [`template`]: the Vault backend's `commonName` template (`tag`, `replace`).
//! - [`ca`]: the `CaBackend` trait, its requests, answers and errors; identity (SAN) rules.
//! - [`token`]: zone and dataplane tokens (Ed25519 JWTs): signing keys, claims, verification.
//! - [`revocation`]: revoked token ids, listed in secrets as Kuma does (`dataplane-token-revocations-<mesh>`,
//!   `zone-token-revocations`).
//! - [`sds`]: the data-plane interface's names (SDS secrets, node id) and the token-tags rule.

pub mod api;
pub mod ca;
pub mod datasource;
pub mod duration;
pub mod resource;
pub mod revocation;
pub mod sds;
pub mod sensitive;
pub mod spiffe_template;
pub mod template;
pub mod token;
pub mod validate;

pub use sensitive::Sensitive;
