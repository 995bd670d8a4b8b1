//! The zone store's change feed: one [`Change`] per record written or removed, published after
//! the transaction that made it committed. The type is the one both stores publish
//! ([`mosaic_core::resource::change`]), keyed here by [`StoreKey`].

pub use mosaic_core::resource::change::ChangeOp;

use super::StoreKey;

/// One committed change (`version`: the record's version after a put, the removed version
/// after a delete).
pub type Change = mosaic_core::resource::change::Change<StoreKey>;
