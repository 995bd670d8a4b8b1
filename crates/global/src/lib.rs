//! The global control plane: the one source of truth for Meshes and their secrets.
//!
//! Module map:
//! - [`store`]: resource keys, raft commands, the deterministic apply plan (versions, times,
//!   referential safety) and the `ResourceStore` trait the API writes and reads through.
//! - [`tokens`]: zone and dataplane token issuance; signing keys live in the store, only public
//!   keys leave the global.

#![deny(warnings)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod store;
pub mod tokens;
