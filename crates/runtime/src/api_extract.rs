//! Request extractors whose rejections are Kuma error bodies: the path's parameters, what a
//! `GET` of a collection reads ([`Listing`]) and the raw body (413 beyond the document limit),
//! worded by the server's [`ApiDialect`](crate::api_dialect::ApiDialect).

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, MatchedPath, OriginalUri, Path, RawQuery, Request,
        rejection::PathRejection,
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use mosaic_core::resource::ResourceType;

use crate::{
    api_dialect::ApiDialect, api_error::ApiFailure, api_filter::ListFilter, api_paging::PageLink,
};

/// A request extension saying which scheme the API was reached by (`https` where a TLS listener
/// inserts it); without it, `http`. `next` links are built with it, as Kuma's from `request.TLS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestScheme(pub &'static str);

/// The path's parameters (`mesh`, `name`), percent-decoded.
#[derive(Debug, Default)]
pub struct PathParams(pub HashMap<String, String>);

/// What a `GET` of a collection reads from its request.
#[derive(Debug)]
pub struct Listing {
    /// The path's parameters.
    pub params: PathParams,
    /// The URL path as the client sent it (what `next` links point at).
    pub path: String,
    /// The route's pattern (`/meshes/{mesh}/dataplanes`), for the field names of refused filters.
    pub route: String,
    /// `http`, or `https` with [`RequestScheme`].
    pub scheme: &'static str,
    /// The `Host` the client sent (else the URL's authority, else `localhost`).
    pub host: String,
    /// The raw query string (`size`, `offset`, ...).
    pub query: Option<String>,
    /// The request headers (`Accept`).
    pub headers: HeaderMap,
}

/// The raw request body.
#[derive(Debug)]
pub struct Body(pub Bytes);

/// The resource a route's path names (`/meshes/{mesh}` names a Mesh by its `mesh` parameter,
/// which every `/meshes/{mesh}/...` route shares).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The route's type.
    pub rtype: ResourceType,
    /// The URL's mesh, for mesh-scoped types.
    pub mesh: Option<String>,
    /// The URL's name.
    pub name: String,
}

// === impl PathParams ===

impl PathParams {
    /// A parameter, or empty.
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The `rtype` resource these parameters name.
    pub fn target(&self, rtype: ResourceType) -> Target {
        if rtype == ResourceType::Mesh {
            return Target {
                rtype,
                mesh: None,
                name: self.get("mesh").to_string(),
            };
        }
        Target {
            rtype,
            mesh: rtype.is_mesh_scoped().then(|| self.get("mesh").to_string()),
            name: self.get("name").to_string(),
        }
    }
}

impl<S: ApiDialect> FromRequestParts<S> for PathParams {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Path(map)) => Ok(PathParams(map)),
            // A route without parameters (`/meshes`).
            Err(PathRejection::MissingPathParams(_)) => Ok(PathParams::default()),
            Err(e) => Err(ApiFailure::bad_field(
                "",
                format!(
                    "the URL path is not valid ({}){}",
                    e.body_text(),
                    S::PATH_HINT
                ),
            )),
        }
    }
}

// === impl Listing ===

impl<S: ApiDialect> FromRequestParts<S> for Listing {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = PathParams::from_request_parts(parts, state).await?;
        let Ok(OriginalUri(uri)) = OriginalUri::from_request_parts(parts, state).await;
        let Ok(RawQuery(query)) = RawQuery::from_request_parts(parts, state).await;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| uri.path().to_string(), |m| m.as_str().to_string());
        let scheme = parts
            .extensions
            .get::<RequestScheme>()
            .map_or("http", |s| s.0);
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        Ok(Listing {
            params,
            path: uri.path().to_string(),
            route,
            scheme,
            host,
            query,
            headers: parts.headers.clone(),
        })
    }
}

impl Listing {
    /// Where `next` links of this request point.
    pub fn link(&self) -> PageLink {
        PageLink {
            scheme: self.scheme.to_string(),
            host: self.host.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
        }
    }

    /// The path's mesh, or `None` on a route across all meshes (`/dataplanes`).
    pub fn mesh(&self) -> Option<&str> {
        self.params.0.get("mesh").map(String::as_str)
    }

    /// The query's filters (`name`, `filter[labels.K]`, `tag`, `gateway`).
    pub fn filter(&self) -> Result<ListFilter, ApiFailure> {
        ListFilter::parse(self.query.as_deref(), &self.route)
    }
}

// === impl Body ===

impl<S: ApiDialect> FromRequest<S> for Body {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiFailure::TooLarge {
                advice: S::TOO_LARGE_ADVICE,
            }),
            Err(e) => Err(ApiFailure::bad_field(
                "",
                format!(
                    "could not read the request body ({}){}",
                    e.body_text(),
                    S::BODY_HINT
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> PathParams {
        PathParams(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn targets() {
        let p = params(&[("mesh", "default"), ("name", "s1")]);
        assert_eq!(
            p.target(ResourceType::Mesh),
            Target {
                rtype: ResourceType::Mesh,
                mesh: None,
                name: "default".into()
            }
        );
        assert_eq!(
            p.target(ResourceType::Secret).mesh.as_deref(),
            Some("default")
        );
        assert_eq!(p.target(ResourceType::Secret).name, "s1");
        assert_eq!(p.target(ResourceType::Zone).mesh, None);
    }
}
