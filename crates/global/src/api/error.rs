//! The global's store and admission errors as [`ApiFailure`]s (the failure type itself, with
//! Kuma's error body, is `mosaic_runtime::api_error`'s, shared with the zone API).

pub use mosaic_runtime::api_error::ApiFailure;

use crate::{
    admission::AdmissionError,
    store::{Refusal, StoreError},
};

/// The failure for a refused store command.
pub fn from_refusal(refusal: Refusal) -> ApiFailure {
    match refusal {
        Refusal::NotFound(m) => ApiFailure::NotFound(m),
        Refusal::Conflict(m) => ApiFailure::Conflict(m),
        Refusal::Invalid(m) => ApiFailure::bad_field("", m),
    }
}

/// 503 without a raft leader or on a replica that stopped at an entry it cannot read, else 500.
impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::UnreadableEntry { .. } => {
                ApiFailure::Unavailable(e.to_string())
            }
            StoreError::Storage(_) | StoreError::Corrupt { .. } => {
                ApiFailure::Internal(e.to_string())
            }
        }
    }
}

impl From<AdmissionError> for ApiFailure {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Invalid(v) => ApiFailure::invalid(v),
            AdmissionError::Store(s) => s.into(),
            AdmissionError::Generate(_) => ApiFailure::Internal(e.to_string()),
            AdmissionError::Conflict(m) => ApiFailure::Conflict(m),
        }
    }
}
