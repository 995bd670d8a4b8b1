//! The filters of a collection `GET`, as Kuma's (`pkg/api-server/filters`, `listResources`):
//! `?name=` (the name contains it), `?filter[labels.K]=V` (label `K` is exactly `V`; any other
//! `filter[...]` is refused) and, on Dataplanes, `?tag=K:V` (repeatable: some inbound, or the
//! gateway, has every such tag with a value containing `V`, or `V` is `*`) and
//! `?gateway=true|false|builtin|delegated`.

use std::collections::BTreeMap;

use mosaic_core::resource::{
    Resource, Spec,
    dataplane::{DataplaneSpec, GatewayKind},
};

use crate::api_error::ApiFailure;

/// `?gateway=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayFilter {
    /// `true`: gateway data planes only.
    Any,
    /// `false`: no gateways.
    None,
    /// `builtin`.
    Builtin,
    /// `delegated`.
    Delegated,
}

/// What a collection `GET` filters on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `?name=`: names containing it.
    pub name: Option<String>,
    /// `?filter[labels.K]=V`: labels that must be exactly so (the last value of a key wins).
    pub labels: BTreeMap<String, String>,
    /// `?tag=K:V` (Dataplanes): the last value of a key wins, as Kuma's map.
    pub tags: BTreeMap<String, String>,
    /// `?gateway=` (Dataplanes).
    pub gateway: Option<GatewayFilter>,
}

// === impl ListFilter ===

impl ListFilter {
    /// Reads the filters from a query string; other parameters are left alone. `path` (the
    /// route, e.g. `/meshes/{mesh}/dataplanes`) prefixes refused parameters' field names, as
    /// Kuma's `RootedAt(SelectedRoutePath())` does.
    pub fn parse(query: Option<&str>, path: &str) -> Result<Self, ApiFailure> {
        let mut out = ListFilter::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "name" if !value.is_empty() => out.name = Some(value.into_owned()),
                "tag" => {
                    // ':' is valid in a value, so only the first one separates; Kuma ignores a
                    // value without one.
                    if let Some((k, v)) = value.split_once(':') {
                        out.tags.insert(k.to_string(), v.to_string());
                    }
                }
                "gateway" => {
                    out.gateway = match value.to_ascii_lowercase().as_str() {
                        "" => None,
                        "true" => Some(GatewayFilter::Any),
                        "false" => Some(GatewayFilter::None),
                        "builtin" => Some(GatewayFilter::Builtin),
                        "delegated" => Some(GatewayFilter::Delegated),
                        other => {
                            return Err(ApiFailure::bad_field(
                                format!("{path}.gateway"),
                                format!(
                                    "shoud use `true`, `false`, 'builtin' or 'delegated' instead of {other}"
                                ),
                            ));
                        }
                    }
                }
                k if k.starts_with("filter[") => {
                    let Some(label) = k.strip_prefix("filter[labels.") else {
                        return Err(ApiFailure::bad_field(
                            format!("{path}.{k}"),
                            "filters are only supported on labels",
                        ));
                    };
                    match label.strip_suffix(']') {
                        Some(label) if !label.contains(']') => {
                            out.labels.insert(label.to_string(), value.into_owned());
                        }
                        _ => {
                            return Err(ApiFailure::bad_field(
                                format!("{path}.{k}"),
                                "advanced filters are not supported",
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether `r` passes every filter (tag and gateway filters pass non-Dataplanes, as Kuma's).
    pub fn matches(&self, r: &Resource) -> bool {
        if let Some(name) = &self.name
            && !r.meta.name.contains(name.as_str())
        {
            return false;
        }
        if !self
            .labels
            .iter()
            .all(|(k, v)| r.meta.labels.get(k) == Some(v))
        {
            return false;
        }
        match &r.spec {
            Spec::Dataplane(dp) => self.matches_dataplane(dp),
            _ => true,
        }
    }

    /// The `tag` and `gateway` filters on a Dataplane spec.
    pub fn matches_dataplane(&self, dp: &DataplaneSpec) -> bool {
        let gateway = dp.networking.gateway.as_ref();
        let gateway_ok = match self.gateway {
            None => true,
            Some(GatewayFilter::Any) => gateway.is_some(),
            Some(GatewayFilter::None) => gateway.is_none(),
            Some(GatewayFilter::Builtin) => {
                gateway.is_some_and(|g| g.kind() == GatewayKind::Builtin)
            }
            Some(GatewayFilter::Delegated) => {
                gateway.is_some_and(|g| g.kind() == GatewayKind::Delegated)
            }
        };
        if !gateway_ok {
            return false;
        }
        if self.tags.is_empty() {
            return true;
        }
        let fuzzy = |tags: &BTreeMap<String, String>| {
            self.tags.iter().all(|(k, v)| {
                tags.get(k)
                    .is_some_and(|have| v == "*" || have.contains(v.as_str()))
            })
        };
        dp.networking.inbound.iter().any(|i| fuzzy(&i.tags))
            || gateway.is_some_and(|g| fuzzy(&g.tags))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use mosaic_core::resource::parse_document;

    use super::*;

    fn dp(name: &str, body: &str) -> Resource {
        parse_document(
            format!("type: Dataplane\nmesh: default\nname: {name}\nlabels:\n  team: a\n{body}")
                .as_bytes(),
        )
        .expect("dataplane")
    }

    fn filter(q: &str) -> ListFilter {
        ListFilter::parse(Some(q), "/meshes/{mesh}/dataplanes").expect("filter")
    }

    #[test]
    fn kumas_filters() {
        let web = dp(
            "web-1",
            "networking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n      version: v1\n  - port: 81\n    tags:\n      kuma.io/service: web-admin\n",
        );
        let edge = dp(
            "edge-1",
            "networking:\n  address: 10.0.0.2\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n",
        );
        assert!(filter("name=web").matches(&web) && !filter("name=web").matches(&edge));
        assert!(filter("filter[labels.team]=a").matches(&web));
        assert!(!filter("filter[labels.team]=ab").matches(&web));
        assert!(!filter("filter[labels.other]=a").matches(&web));
        // Substring values, `*`, and every tag on one inbound.
        assert!(filter("tag=kuma.io/service:we").matches(&web));
        assert!(filter("tag=version:*").matches(&web));
        assert!(!filter("tag=kuma.io/service:web-admin&tag=version:v1").matches(&web));
        assert!(filter("tag=kuma.io/service:web&tag=version:v1").matches(&web));
        assert!(filter("tag=kuma.io/service:edge").matches(&edge));
        assert!(
            filter("tag=malformed").matches(&web),
            "ignored as Kuma does"
        );
        assert!(filter("gateway=true").matches(&edge) && !filter("gateway=true").matches(&web));
        assert!(filter("gateway=false").matches(&web));
        assert!(filter("gateway=builtin").matches(&edge));
        assert!(!filter("gateway=delegated").matches(&edge));
        assert!(filter("gateway=BUILTIN").matches(&edge));
    }

    #[test]
    fn refused_filters_name_the_parameter() {
        for (q, field) in [
            ("gateway=maybe", "/x.gateway"),
            ("filter[name]=a", "/x.filter[name]"),
            ("filter[labels.a][op]=b", "/x.filter[labels.a][op]"),
        ] {
            let err = ListFilter::parse(Some(q), "/x").unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{q}");
            assert_eq!(err.to_api_error().invalid_parameters[0].field, field, "{q}");
        }
    }
}
