//! Certificate authorities for data-plane identities.
//!
//! Module map:
//! - [`vault`]: the Vault (or OpenBao) PKI backend.

pub mod vault;
