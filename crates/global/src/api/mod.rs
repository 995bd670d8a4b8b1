//! The global's HTTP API (Kuma paths, Kuma error bodies, JSON or YAML).
//!
//! Module map:
//! - [`state`]: `ApiState` (store, admin token, clock, admission) and `Clock`.
//! - [`error`]: `ApiFailure`, every failure as a status and Kuma's error body.
//! - [`extract`]: path, body (413 beyond the document limit) and query extractors.
//! - [`body`]: PUT bodies to resources (JSON/YAML, Universal/Kubernetes, URL name and mesh).
//! - [`respond`]: JSON or YAML responses by `Accept`.
//! - [`list`]: `{total, items, next}` paging with `size` and `offset`.
//! - [`auth`]: who is an admin (loopback callers, admin tokens): `mosaic_runtime::api_auth`.
//! - [`resources`]: list/get/put/delete handlers; 405 for zone-owned writes.
//! - [`tokens`]: `POST /tokens/zone` and `POST /tokens/dataplane`.
//! - [`zones`]: `GET /zones/_overview`.
//! - [`dataplanes`]: `GET /meshes/{mesh}/dataplanes/_overview`.
//! - [`index`]: `GET /`, `/ready`, `/healthy`, and the 404/405 fallbacks.

pub mod auth;
pub mod body;
pub mod dataplanes;
pub mod error;
pub mod extract;
pub mod index;
pub mod list;
pub mod resources;
pub mod respond;
pub mod state;
pub mod tokens;
pub mod zones;

use axum::{
    Router,
    extract::{DefaultBodyLimit, OriginalUri, RawQuery, State},
    http::HeaderMap,
    middleware,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::{Owner, ResourceType, parse::MAX_DOCUMENT_BYTES};

pub use auth::{AdminTokenError, read_admin_token_file};
pub use error::ApiFailure;
pub use state::{ApiState, Clock};

use extract::{Body, PathParams};

/// The API's routes over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(index::index))
        .route("/ready", get(index::ok))
        .route("/healthy", get(index::ok))
        .route("/meshes", collection(ResourceType::Mesh))
        .route("/meshes/{mesh}", item(ResourceType::Mesh))
        .route("/meshes/{mesh}/secrets", collection(ResourceType::Secret))
        .route("/meshes/{mesh}/secrets/{name}", item(ResourceType::Secret))
        .route("/global-secrets", collection(ResourceType::GlobalSecret))
        .route("/global-secrets/{name}", item(ResourceType::GlobalSecret))
        .route("/tokens/zone", axum::routing::post(tokens::zone))
        .route("/tokens/dataplane", axum::routing::post(tokens::dataplane))
        .route("/zones", collection(ResourceType::Zone))
        .route("/zones/_overview", get(zones::overview))
        .route("/zones/{name}", item(ResourceType::Zone))
        .route("/zone-insights", collection(ResourceType::ZoneInsight))
        .route("/zone-insights/{name}", item(ResourceType::ZoneInsight))
        .route(
            "/meshes/{mesh}/dataplanes",
            collection(ResourceType::Dataplane),
        )
        .route(
            "/meshes/{mesh}/dataplanes/_overview",
            get(dataplanes::overview),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}",
            item(ResourceType::Dataplane),
        )
        .route(
            "/meshes/{mesh}/dataplane-insights",
            collection(ResourceType::DataplaneInsight),
        )
        .route(
            "/meshes/{mesh}/dataplane-insights/{name}",
            item(ResourceType::DataplaneInsight),
        )
        .fallback(index::not_found)
        .method_not_allowed_fallback(index::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
        // Over every route and both fallbacks: no method or path gets past it.
        .layer(middleware::from_fn_with_state(
            state.auth.clone(),
            auth::require_admin,
        ))
        // Outermost, so refused (401/403) and oversized (413) requests are counted too.
        .layer(middleware::from_fn(mosaic_runtime::api_metrics::track))
        .with_state(state)
}

/// `GET` of a type's collection.
fn collection(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(
        move |s: State<ApiState>, p: PathParams, u: OriginalUri, q: RawQuery, h: HeaderMap| {
            resources::list(rtype, s, p, u, q, h)
        },
    )
}

/// `GET`, `PUT` and `DELETE` of one resource (`PUT`/`DELETE` answer 405 for zone-owned types).
fn item(rtype: ResourceType) -> MethodRouter<ApiState> {
    let read = get(
        move |s: State<ApiState>, p: PathParams, q: RawQuery, h: HeaderMap| {
            resources::get_one(rtype, s, p, q, h)
        },
    );
    match rtype.owner() {
        Owner::Global => read
            .put(
                move |s: State<ApiState>, p: PathParams, h: HeaderMap, b: Body| {
                    resources::put(rtype, s, p, h, b)
                },
            )
            .delete(
                move |s: State<ApiState>, p: PathParams, q: RawQuery, h: HeaderMap| {
                    resources::delete(rtype, s, p, q, h)
                },
            ),
        Owner::Zone => read
            .put(move || resources::zone_owned(rtype))
            .delete(move || resources::zone_owned(rtype)),
    }
}
