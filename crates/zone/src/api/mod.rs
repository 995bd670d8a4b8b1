//! The zone's HTTP API on `api.listen`: Kuma paths, Kuma error bodies, JSON or YAML.
//!
//! - `GET /meshes`, `GET /meshes/{name}`, `GET /zones`, `GET /zones/{name}`: read-only copies
//!   synced from the global; `PUT`/`DELETE` answer 405.
//! - `/meshes/{mesh}/secrets[/{name}]`, `/global-secrets[/{name}]`: not served (`GET` 404,
//!   writes 405); see [`resources`] for why.
//! - `GET /meshes/{mesh}/dataplanes`, `GET|PUT|DELETE /meshes/{mesh}/dataplanes/{name}`,
//!   `GET /meshes/{mesh}/dataplanes/_overview`, `GET /meshes/{mesh}/dataplanes/{name}/_overview`.
//! - `GET /` (`{"product":"Mosaic","mode":"zone","zone":...}`), `/ready`, `/healthy`.
//!
//! Every request but `GET /ready` and `GET /healthy` must come from an admin: a loopback caller
//! (with `api.localhost_is_admin`) or a caller presenting an admin token (the generated
//! `<data_dir>/admin-token` or `api.admin_token_file`), as on the global
//! ([`mosaic_runtime::api_auth`]).
//!
//! Module map:
//! - [`state`]: `ApiState` and the path extractor.
//! - [`error`]: `ApiFailure` and Kuma's error body.
//! - [`respond`]: JSON/YAML responses and paging.
//! - [`body`]: PUT bodies to validated resources.
//! - [`resources`]: reads, 405 for global-owned writes, 404 for Secrets.
//! - [`dataplanes`]: Dataplane registration and overviews.
//! - [`index`]: `/`, `/ready`, `/healthy`, 404/405 fallbacks.

pub mod body;
pub mod dataplanes;
pub mod error;
pub mod index;
pub mod resources;
pub mod respond;
pub mod state;

use axum::{
    Router,
    extract::{DefaultBodyLimit, OriginalUri, RawQuery, State},
    http::HeaderMap,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::{ResourceType, parse::MAX_DOCUMENT_BYTES};

pub use error::ApiFailure;
pub use state::{ApiState, PathParams};

/// The zone API's routes over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn router(state: ApiState) -> Router {
    use ResourceType::{Dataplane, GlobalSecret, Mesh, Secret, Zone};
    Router::new()
        .route("/", get(index::index))
        .route("/ready", get(index::ok))
        .route("/healthy", get(index::ok))
        .route("/meshes", collection(Mesh))
        .route("/meshes/{mesh}", read_only(Mesh))
        .route("/zones", collection(Zone))
        .route("/zones/{name}", read_only(Zone))
        .route("/meshes/{mesh}/secrets", hidden(Secret))
        .route("/meshes/{mesh}/secrets/{name}", hidden(Secret))
        .route("/global-secrets", hidden(GlobalSecret))
        .route("/global-secrets/{name}", hidden(GlobalSecret))
        .route("/meshes/{mesh}/dataplanes", collection(Dataplane))
        .route(
            "/meshes/{mesh}/dataplanes/_overview",
            get(dataplanes::overview_list),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}",
            get(move |s: State<ApiState>, p: PathParams, h: HeaderMap| {
                resources::get_one(Dataplane, s, p, h)
            })
            .put(dataplanes::put)
            .delete(dataplanes::delete),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_overview",
            get(dataplanes::overview_one),
        )
        .fallback(index::not_found)
        .method_not_allowed_fallback(index::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
        // Over every route and both fallbacks: no method or path gets past it.
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            mosaic_runtime::api_auth::require_admin,
        ))
        // Outermost, so 401/403s and 413s are counted too (labels: see
        // `mosaic_runtime::api_metrics`).
        .layer(axum::middleware::from_fn(
            mosaic_runtime::api_metrics::track,
        ))
        .with_state(state)
}

/// `GET` of a collection.
fn collection(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(
        move |s: State<ApiState>, p: PathParams, u: OriginalUri, q: RawQuery, h: HeaderMap| {
            resources::list(rtype, s, p, u, q, h)
        },
    )
}

/// `GET` of one global-owned resource; `PUT`/`DELETE` answer 405.
fn read_only(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(move |s: State<ApiState>, p: PathParams, h: HeaderMap| resources::get_one(rtype, s, p, h))
        .put(move || resources::global_owned(rtype))
        .delete(move || resources::global_owned(rtype))
}

/// Secrets: `GET` answers 404, writes 405.
fn hidden(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(move || resources::secrets_hidden(rtype))
        .put(move || resources::global_owned(rtype))
        .delete(move || resources::global_owned(rtype))
        .post(move || resources::global_owned(rtype))
}
