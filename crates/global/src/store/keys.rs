//! `ResourceKey`: the global store keys resources by type, mesh and name, in the byte layout both
//! stores share (`<Type>/<mesh or ->/<name>`, see [`mosaic_core::resource::StoreKey`]).

use mosaic_core::resource::{ResourceType, StoreKey};

/// Identifies a resource in the global store.
pub type ResourceKey = StoreKey<ResourceType>;
