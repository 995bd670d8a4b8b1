//! Request metrics of the global's and the zones' HTTP APIs, as one middleware over every route
//! (and the 404/405 fallbacks):
//!
//! - `mosaic_api_requests_total{method, route, status}` (counter)
//! - `mosaic_api_request_seconds{method, route}` (histogram)
//!
//! Label sets are bounded: `route` is the matched route pattern (`/meshes/{mesh}`), never the raw
//! path, and `unmatched` for requests no route served; `method` is one of the standard methods or
//! `other`; `status` is the numeric status code.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};

/// The `route` label of requests no route matched (404s).
pub const UNMATCHED: &str = "unmatched";

/// A bounded `method` label.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware recording one request's count and duration.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "mosaic_api_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!("mosaic_api_request_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

/// HELP texts of the two API metrics (shown once a series exists); each server calls it when
/// it installs its recorder.
pub fn describe() {
    metrics::describe_counter!(
        "mosaic_api_requests_total",
        "HTTP API requests by method, route pattern and status code"
    );
    metrics::describe_histogram!(
        "mosaic_api_request_seconds",
        metrics::Unit::Seconds,
        "HTTP API request duration by method and route pattern"
    );
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::Request, middleware, routing::get};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt as _;

    use super::*;

    /// The rendered metrics after `requests` (method, path) went through `routes` under
    /// [`track`], recorded by a recorder of this test's own.
    fn render_after(routes: Router, requests: &[(&str, &str)]) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let app = routes.layer(middleware::from_fn(track));
                for (method, path) in requests {
                    let req = Request::builder()
                        .method(*method)
                        .uri(*path)
                        .body(Body::empty())
                        .unwrap();
                    app.clone().oneshot(req).await.unwrap();
                }
            });
        });
        handle.render()
    }

    #[test]
    fn labels_are_route_patterns_methods_and_codes() {
        let text = render_after(
            Router::new().route("/meshes/{mesh}", get(|| async { "ok" })),
            &[
                ("GET", "/meshes/one"),
                ("GET", "/meshes/two"),
                ("PUT", "/meshes/one"),
                ("GET", "/no/such/path"),
                ("BREW", "/meshes/one"),
            ],
        );
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with("mosaic_api_requests_total") && l.contains(needle))
                .unwrap_or_else(|| panic!("no series with {needle} in:\n{text}"))
                .to_string()
        };
        // Two GETs on different meshes are one series: the label is the pattern.
        let ok = line(r#"route="/meshes/{mesh}",status="200""#);
        assert!(ok.contains(r#"method="GET""#), "{ok}");
        assert!(ok.ends_with(" 2"), "{ok}");
        assert!(line(r#"method="PUT""#).contains(r#"status="405""#));
        assert!(line(r#"route="unmatched""#).contains(r#"status="404""#));
        assert!(line(r#"method="other""#).contains(r#"route="/meshes/{mesh}""#));
        assert!(!text.contains("/meshes/one"), "raw paths leaked:\n{text}");
        assert!(!text.contains("/no/such/path"), "raw paths leaked:\n{text}");
        assert!(text.contains("mosaic_api_request_seconds"), "{text}");
    }

    /// (Moved from the zone's diagnostics, which serves these metrics.)
    #[test]
    fn api_requests_are_labelled_by_route_pattern() {
        let text = render_after(
            Router::new().route("/meshes/{mesh}/dataplanes/{name}", get(|| async { "ok" })),
            &[
                ("GET", "/meshes/a/dataplanes/dp-1"),
                ("GET", "/meshes/b/dataplanes/dp-2"),
                ("GET", "/nope"),
            ],
        );
        assert!(
            text.lines().any(|l| l
                == r#"mosaic_api_requests_total{method="GET",route="/meshes/{mesh}/dataplanes/{name}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l
                == r#"mosaic_api_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(!text.contains("dp-1") && !text.contains("/nope"), "{text}");
    }
}
