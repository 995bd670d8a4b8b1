//! Request bodies to resources: JSON or YAML (by `Content-Type`, sniffed when absent or
//! unfamiliar), Universal or Kubernetes form, exactly one document. The URL's name and mesh fill
//! in a body that omits them and must match a body that states them. Decoding and validation
//! are `mosaic_core::resource::parse::decode_for`, so the global and the zones accept and refuse
//! the same documents. Fields the server does not know are ignored (with a `Warning` header per
//! field, [`warning_headers`]) or refused, by `api.unknown_fields`.

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use mosaic_core::resource::{
    Resource, UnknownFields,
    parse::{self, DecodeError, ParseError},
    unknown_fields::{Decoded, ignored_message},
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

/// Decodes a PUT body for `target` into a validated-shape resource (name and mesh settled);
/// unknown fields are dropped as Kuma drops them.
pub fn decode<D: ApiDialect>(
    headers: &HeaderMap,
    bytes: &[u8],
    target: &Target,
) -> Result<Resource, ApiFailure> {
    decode_reporting::<D>(headers, bytes, target, UnknownFields::Ignore).map(|d| d.resource)
}

/// [`decode`] with the server's `api.unknown_fields` policy: the resource comes with the fields
/// that were ignored, for [`warning_headers`] and the logs.
pub fn decode_reporting<D: ApiDialect>(
    headers: &HeaderMap,
    bytes: &[u8],
    target: &Target,
    policy: UnknownFields,
) -> Result<Decoded, ApiFailure> {
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
    parse::decode_with(bytes, &document, policy).map_err(|e| match e {
        DecodeError::TooLarge { .. } => ApiFailure::TooLarge {
            advice: D::TOO_LARGE_ADVICE,
        },
        DecodeError::Unfit(v) => ApiFailure::bad_field(v.field, v.message),
        DecodeError::Invalid(error) => ApiFailure::invalid(error),
    })
}

/// At most this many `Warning` headers per answer; the last says how many more were ignored.
const MAX_WARNINGS: usize = 20;
/// A field path in a `Warning` header is cut to this many characters.
const MAX_WARNING_PATH: usize = 200;

/// One `Warning` header (RFC 9110 section 5.5 form, code 299 "miscellaneous persistent
/// warning", as the Kubernetes API server sends for unknown fields) per ignored field:
/// `299 - "unknown field mtls.ca ignored"`. Paths come from the request, so they are cut short,
/// and quotes, backslashes and anything outside printable ASCII are escaped or replaced.
pub fn warning_headers(ignored: &[String]) -> Vec<HeaderValue> {
    let quoted = |text: &str| {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                _ => out.push('?'),
            }
        }
        out.push('"');
        out
    };
    let mut values: Vec<HeaderValue> = Vec::new();
    for (i, path) in ignored.iter().enumerate() {
        let text = if i + 1 == MAX_WARNINGS && ignored.len() > MAX_WARNINGS {
            format!("{} more unknown fields ignored", ignored.len() - i)
        } else {
            let cut: String = path.chars().take(MAX_WARNING_PATH).collect();
            ignored_message(&cut)
        };
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", quoted(&text))) {
            values.push(v);
        }
        if values.len() == MAX_WARNINGS {
            break;
        }
    }
    values
}

/// `response` with one `Warning` header per ignored field ([`warning_headers`]).
pub fn with_warnings(mut response: Response, ignored: &[String]) -> Response {
    for value in warning_headers(ignored) {
        response.headers_mut().append(header::WARNING, value);
    }
    response
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
    fn ignored_fields_become_warning_headers() {
        let t = target(ResourceType::Mesh, None, "sample");
        let d = decode_reporting::<Strict>(
            &HeaderMap::new(),
            b"mtls:\n  ca:\n    builtin:\n",
            &t,
            UnknownFields::Ignore,
        )
        .unwrap();
        assert_eq!(d.ignored, ["mtls.ca"]);
        let h = warning_headers(&d.ignored);
        assert_eq!(
            h,
            [HeaderValue::from_static(
                "299 - \"unknown field mtls.ca ignored\""
            )]
        );
        let e = decode_reporting::<Strict>(
            &HeaderMap::new(),
            b"mtls:\n  ca:\n    builtin:\n",
            &t,
            UnknownFields::Refuse,
        )
        .unwrap_err();
        assert_eq!(field(e), "mtls.ca");
        // Paths from the request are escaped, cut and counted.
        let odd = vec!["a\"b\\c\u{e9}\n".to_string()];
        assert_eq!(
            warning_headers(&odd),
            [HeaderValue::from_static(
                "299 - \"unknown field a\\\"b\\\\c?? ignored\""
            )]
        );
        let many: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        let h = warning_headers(&many);
        assert_eq!(h.len(), MAX_WARNINGS);
        assert_eq!(
            h[MAX_WARNINGS - 1],
            "299 - \"31 more unknown fields ignored\""
        );
        let long = vec!["x".repeat(5000)];
        assert!(warning_headers(&long)[0].len() < 300);
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
