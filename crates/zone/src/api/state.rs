//! `ApiState`: what the zone API's handlers share (its path and body extractors are
//! `mosaic_runtime::api_extract`'s, worded by [`super::dialect`]).

use std::sync::Arc;

use mosaic_core::resource::UnknownFields;
use mosaic_runtime::api_auth::AdminAuth;

use crate::store::ZoneStore;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The zone store.
    pub store: Arc<ZoneStore>,
    /// This zone's name.
    pub zone: String,
    /// Who is an admin (every request except `GET /ready` and `GET /healthy` must come from
    /// one): see [`mosaic_runtime::api_auth`].
    pub auth: Arc<AdminAuth>,
    /// `api.unknown_fields`: what a PUT does with fields Mosaic does not know.
    pub unknown_fields: UnknownFields,
    /// The effective configuration, as `GET /config` shows it.
    pub config: Arc<serde_json::Value>,
}
