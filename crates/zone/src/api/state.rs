//! `ApiState` and the `PathParams` extractor (its rejections are Kuma error bodies).

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{FromRequestParts, Path, rejection::PathRejection},
    http::request::Parts,
};

use mosaic_runtime::api_auth::AdminAuth;

use super::error::ApiFailure;
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
}

/// The path's parameters (`mesh`, `name`), percent-decoded.
#[derive(Debug, Default)]
pub struct PathParams(pub HashMap<String, String>);

// === impl PathParams ===

impl PathParams {
    /// A parameter, or empty.
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Path(map)) => Ok(PathParams(map)),
            Err(PathRejection::MissingPathParams(_)) => Ok(PathParams::default()),
            Err(e) => Err(ApiFailure::bad_field(
                "",
                format!("the URL path is not valid ({})", e.body_text()),
            )),
        }
    }
}
