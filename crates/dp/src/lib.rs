//! `mosaic-dp`, the data-plane agent: an Envoy SDS client of its zone's dataplane server that keeps
//! `cert.pem` (leaf + chain), `key.pem` (0600) and `ca.pem` (trust bundle) fresh in a directory.
//!
//! Module map:
//! - [`inputs`]: the command line's files (zone CA, token, Dataplane) read and checked.
//! - [`sds_client`]: the TLS channel, the `StreamSecrets` stream, first request, ACK and NACK.
//! - [`secrets`]: SDS responses decoded into checked PEM material (or a NACK reason).
//! - [`files`]: atomic writes of the three files (temp file, fsync, rename; key created 0600).
//! - [`rotate_hook`]: `--exec-on-rotate`, run with `sh -c` after the files change.
//! - [`backoff`]: jittered exponential delays between connection attempts (1 s → 30 s).
//! - [`agent`]: the loop tying them together: stream, apply, ACK/NACK, retry, stop on refusal.

pub mod agent;
pub mod backoff;
pub mod files;
pub mod inputs;
pub mod rotate_hook;
pub mod sds_client;
pub mod secrets;
