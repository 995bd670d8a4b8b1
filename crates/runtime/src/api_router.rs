//! What every API router gets around its own routes: `GET /`, `/ready`, `/healthy`, `/config`
//! and `/_resources`, the 404/405 fallbacks, the document-size body limit, the admin rule and the request metrics;
//! the `GET` route of a type's collection; and Kuma's Dataplane routes, which both servers serve
//! with their own handlers.

use std::future::Future;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    response::Response,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::{ResourceType, parse::MAX_DOCUMENT_BYTES};

use crate::{
    api_auth, api_catalog, api_dialect::ApiDialect, api_error::ApiFailure, api_extract::Listing,
    api_index, api_metrics,
};

/// `GET` of `rtype`'s collection, answered by the server's `list` handler.
pub fn collection<S, F, Fut>(rtype: ResourceType, list: F) -> MethodRouter<S>
where
    S: ApiDialect,
    F: Fn(ResourceType, State<S>, Listing) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiFailure>> + Send + 'static,
{
    get(move |state: State<S>, listing: Listing| list(rtype, state, listing))
}

/// The handlers of Kuma's Dataplane routes ([`dataplanes`]), each server's own.
pub struct DataplaneRoutes<S> {
    /// `GET /dataplanes` and `GET /meshes/{mesh}/dataplanes` (see [`collection`]).
    pub list: MethodRouter<S>,
    /// `/meshes/{mesh}/dataplanes/{name}`: `GET`, `PUT`, `DELETE` (or their refusals).
    pub item: MethodRouter<S>,
    /// `GET` of `DataplaneOverview` lists: across meshes and in one mesh.
    pub overviews: MethodRouter<S>,
    /// `GET` of one Dataplane's overview.
    pub overview: MethodRouter<S>,
}

/// Kuma's Dataplane routes over `handlers`: the collections, one Dataplane, and the overviews
/// at `_overview` and at Kuma's `dataplanes+insights` spelling.
pub fn dataplanes<S: ApiDialect>(handlers: DataplaneRoutes<S>) -> Router<S> {
    let DataplaneRoutes {
        list,
        item,
        overviews,
        overview,
    } = handlers;
    Router::new()
        .route("/dataplanes", list.clone())
        .route("/meshes/{mesh}/dataplanes", list)
        .route("/meshes/{mesh}/dataplanes/{name}", item)
        .route("/dataplanes/_overview", overviews.clone())
        .route("/dataplanes+insights", overviews.clone())
        .route("/meshes/{mesh}/dataplanes/_overview", overviews.clone())
        .route("/meshes/{mesh}/dataplanes+insights", overviews)
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_overview",
            overview.clone(),
        )
        .route("/meshes/{mesh}/dataplanes+insights/{name}", overview)
}

/// `routes` (the server's own) with the shared routes and layers, over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn finish<S: ApiDialect>(routes: Router<S>, state: S) -> Router {
    Router::new()
        .route("/", get(api_index::index::<S>))
        .route("/ready", get(api_index::ok))
        .route("/healthy", get(api_index::ok))
        .route("/config", get(api_catalog::config::<S>))
        .route("/_resources", get(api_catalog::resources::<S>))
        .merge(routes)
        .fallback(api_index::not_found::<S>)
        .method_not_allowed_fallback(api_index::method_not_allowed::<S>)
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
        // Over every route and both fallbacks: no method or path gets past it.
        .layer(middleware::from_fn_with_state(
            state.auth(),
            api_auth::require_admin,
        ))
        // Outermost, so refused (401/403) and oversized (413) requests are counted too.
        .layer(middleware::from_fn(api_metrics::track))
        .with_state(state)
}
