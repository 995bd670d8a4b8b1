//! Request bodies to resources: JSON or YAML (by `Content-Type`, sniffed when absent or
//! unfamiliar), Universal or Kubernetes form, exactly one document. The URL's name and mesh fill
//! in a body that omits them and must match a body that states them. Decoding and validation
//! are `mosaic_core::resource::parse::decode_for`, so the global and the zones accept and refuse
//! the same documents.

use axum::http::{HeaderMap, header};
use mosaic_core::resource::{
    Resource,
    parse::{self, DecodeError, ParseError},
};
use serde_json::Value;

use crate::{
    api_dialect::ApiDialect, api_error::ApiFailure, api_extract::Target,
    api_format::YAML_MEDIA_TYPES,
};

/// What the `Content-Type` header declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    Json,
    Yaml,
    Unknown,
}

fn declared(headers: &HeaderMap) -> Declared {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Declared::Unknown;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Declared::Json
    } else if YAML_MEDIA_TYPES.contains(&essence.as_str()) {
        Declared::Yaml
    } else {
        Declared::Unknown
    }
}

/// Decodes a PUT body for `target` into a validated-shape resource (name and mesh settled).
pub fn decode<D: ApiDialect>(
    headers: &HeaderMap,
    bytes: &[u8],
    target: &Target,
) -> Result<Resource, ApiFailure> {
    if D::REPORTS_JSON_SYNTAX && declared(headers) == Declared::Json {
        // JSON was declared: report JSON's own syntax error (line and column), not YAML's.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let not_utf8 = ParseError::NotUtf8 {
                offset: e.valid_up_to(),
            };
            ApiFailure::bad_field("", not_utf8.to_string())
        })?;
        if !text.trim().is_empty()
            && let Err(e) = serde_json::from_str::<Value>(text)
        {
            return Err(ApiFailure::bad_field(
                "",
                format!(
                    "the body is not valid JSON ({e}); fix it, or send YAML with Content-Type: application/yaml"
                ),
            ));
        }
    }
    let document = parse::Target {
        rtype: target.rtype,
        mesh: target.mesh.as_deref(),
        name: Some(&target.name),
        document: "the body",
        given_by: "the URL",
    };
    parse::decode_for(bytes, &document).map_err(|e| match e {
        DecodeError::TooLarge { .. } => ApiFailure::TooLarge {
            advice: D::TOO_LARGE_ADVICE,
        },
        DecodeError::Unfit(v) => ApiFailure::bad_field(v.field, v.message),
        DecodeError::Invalid(error) => ApiFailure::invalid(error),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use mosaic_core::resource::{ResourceType, Spec};

    use super::*;
    use crate::api_auth::AdminAuth;

    /// The global's choices (JSON syntax errors reported as JSON's).
    #[derive(Clone)]
    struct Strict;

    impl ApiDialect for Strict {
        const MODE: &'static str = "test";
        const TOO_LARGE_ADVICE: &'static str = "send less";
        const PATH_HINT: &'static str = "";
        const BODY_HINT: &'static str = "";
        const ENDPOINTS: &'static str = "";
        const METHODS: &'static str = "";
        const REPORTS_JSON_SYNTAX: bool = true;
        const RESOURCE_TYPES: &'static [ResourceType] = &[];

        fn auth(&self) -> std::sync::Arc<AdminAuth> {
            std::sync::Arc::new(AdminAuth::new(None, true))
        }

        fn instance_id(&self) -> String {
            "test-1".into()
        }

        fn cluster_id(&self) -> String {
            "test".into()
        }
    }

    fn decode(headers: &HeaderMap, bytes: &[u8], target: &Target) -> Result<Resource, ApiFailure> {
        super::decode::<Strict>(headers, bytes, target)
    }

    fn target(rtype: ResourceType, mesh: Option<&str>, name: &str) -> Target {
        Target {
            rtype,
            mesh: mesh.map(str::to_string),
            name: name.into(),
        }
    }

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    fn field(e: ApiFailure) -> String {
        e.to_api_error()
            .invalid_parameters
            .first()
            .map(|p| p.field.clone())
            .unwrap_or_else(|| panic!("no field in {e}"))
    }

    #[test]
    fn the_url_fills_in_and_must_match() {
        let t = target(ResourceType::Secret, Some("default"), "s1");
        let r = decode(&HeaderMap::new(), b"data: dA==\n", &t).unwrap();
        assert_eq!(r.meta.name, "s1");
        assert_eq!(r.meta.mesh.as_deref(), Some("default"));
        assert!(matches!(r.spec, Spec::Secret(_)));

        let e = decode(
            &HeaderMap::new(),
            b"type: Secret\nname: s2\ndata: dA==\n",
            &t,
        )
        .unwrap_err();
        assert_eq!(field(e), "name");
        let e = decode(
            &HeaderMap::new(),
            b"type: Secret\nmesh: other\nname: s1\ndata: dA==\n",
            &t,
        )
        .unwrap_err();
        assert_eq!(field(e), "mesh");
        let e = decode(&HeaderMap::new(), b"type: Mesh\nname: s1\n", &t).unwrap_err();
        assert_eq!(field(e), "type");
    }

    #[test]
    fn kubernetes_secrets_take_the_url_mesh() {
        let t = target(ResourceType::Secret, Some("prod"), "s1");
        let body = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\ntype: system.kuma.io/secret\ndata:\n  value: dA==\n";
        let r = decode(&HeaderMap::new(), body, &t).unwrap();
        assert_eq!(r.meta.mesh.as_deref(), Some("prod"));
        let labelled = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\n  labels:\n    kuma.io/mesh: dev\ntype: system.kuma.io/secret\ndata:\n  value: dA==\n";
        assert_eq!(
            field(decode(&HeaderMap::new(), labelled, &t).unwrap_err()),
            "mesh"
        );
    }

    #[test]
    fn declared_json_reports_json_errors() {
        let t = target(ResourceType::Mesh, None, "m");
        let e = decode(&headers("application/json"), b"{\"type\": \"Mesh\",", &t).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let r = decode(
            &headers("application/json; charset=utf-8"),
            b"{\"type\":\"Mesh\"}",
            &t,
        )
        .unwrap();
        assert_eq!(r.meta.name, "m");
        // YAML declared, or nothing declared: either syntax is read.
        decode(&headers("text/yaml"), b"{\"type\":\"Mesh\"}", &t).unwrap();
        decode(
            &headers("application/x-www-form-urlencoded"),
            b"type: Mesh\n",
            &t,
        )
        .unwrap();
    }

    #[test]
    fn bad_bodies_are_400s_with_fields() {
        let t = target(ResourceType::Mesh, None, "m");
        for body in [
            &b"\xff\xfe"[..],
            b"",
            b"type: [",
            b"- a\n- b\n",
            b"type: Mesh\n---\ntype: Mesh\n",
            b"type: Nope\n",
            b"type: Mesh\nmtls: 5\n",
        ] {
            let e = decode(&HeaderMap::new(), body, &t).unwrap_err();
            assert_eq!(
                e.status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{body:?}: {e}"
            );
            assert!(!e.to_api_error().invalid_parameters.is_empty(), "{body:?}");
        }
        let e = decode(&HeaderMap::new(), b"type: Mesh\nmtls: 5\n", &t).unwrap_err();
        assert_eq!(field(e), "mtls");
    }
}
