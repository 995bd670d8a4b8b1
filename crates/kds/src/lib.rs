//! The KDS protocol (`mosaic.kds.v1`, stated in `crates/proto/proto/mosaic/kds/v1/kds.proto`) in
//! one home, for the global's server, the zone's client and the benchmark's simulated zones.
//!
//! Module map:
//! - [`kind`]: `KdsType`, the kinds of records KDS moves, their owners and scoping; `KdsKey`.
//! - [`wire`]: item identities on the wire (`ItemKey`, `KdsWire`: references, known versions).
//! - [`chunk`]: splitting a response into chunks below a byte budget.
//! - [`assemble`]: reassembling the chunks of a response before it is applied.
//! - [`size`]: messages over the KDS size limit, on either side.
//! - [`item`]: `KdsItem`, one synced record (key, owner's version, Universal JSON).
//! - [`decode`]: what a zone accepts of what the global sends (parse and validate, or reject).
//! - [`respond`]: a type's records as chunked responses; the authoritative diff.
//! - [`subscribe`]: a zone's capabilities and its first request per type (known versions).

pub mod assemble;
pub mod chunk;
pub mod decode;
pub mod item;
pub mod kind;
pub mod respond;
pub mod size;
pub mod subscribe;
pub mod wire;

pub use kind::{KdsKey, KdsType};
