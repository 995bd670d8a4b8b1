//! `StoreKey`: the zone store keys what KDS brings by its KDS kind (the resource types plus the
//! dataplane-token keys), mesh and name, in the byte layout both stores share (see
//! [`mosaic_core::resource::StoreKey`]).

use super::KdsType;

/// Identifies a record in the zone store.
pub type StoreKey = mosaic_core::resource::StoreKey<KdsType>;
