//! The zone store's errors as [`ApiFailure`]s (the failure type itself, with Kuma's error body,
//! is `mosaic_runtime::api_error`'s, shared with the global's API).

pub use mosaic_runtime::api_error::ApiFailure;

use crate::store::StoreError;

/// Every store error is a fault of this server: 500.
impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        ApiFailure::Internal(e.to_string())
    }
}
