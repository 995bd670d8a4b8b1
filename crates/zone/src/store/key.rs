//! `StoreKey`: the zone store keys what KDS brings by its KDS kind (the resource types plus the
//! dataplane-token keys), mesh and name: KDS's own [`mosaic_kds::KdsKey`], in the byte layout the
//! global's store uses too.

/// Identifies a record in the zone store.
pub type StoreKey = mosaic_kds::KdsKey;
