//! `mosaicctl generate zone-token|dataplane-token`: asks the global to sign a token
//! (`POST /tokens/zone`, `POST /tokens/dataplane`) and prints it on stdout.
//!
//! The answer is the token as plain text; a JSON string or `{"token": "..."}` is accepted too.

use std::collections::BTreeMap;

use mosaic_core::{
    Sensitive,
    duration::KumaDuration,
    token::{DataplaneTokenRequest, ZoneTokenRequest},
};

use crate::client::{Client, ClientError};

/// `--tag key=value`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!(
            "{s:?} is not KEY=VALUE: write e.g. --tag kuma.io/service=backend"
        )),
    }
}

/// Groups repeated `--tag` values by key (a key may have several values).
pub fn group_tags(tags: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in tags {
        let values = out.entry(k.clone()).or_default();
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    out
}

/// The token in a `/tokens/*` answer.
pub fn token_from_body(body: &[u8]) -> Option<Sensitive<String>> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let token = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(o)) => o.get("token")?.as_str()?.to_string(),
        _ => text.to_string(),
    };
    (!token.is_empty()).then(|| Sensitive::new(token))
}

async fn post(
    client: &Client,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<Sensitive<String>> {
    let url = client.url(&["tokens", path], &[]);
    let answer = client
        .send(reqwest::Method::POST, url.clone(), Some(&body))
        .await?;
    token_from_body(&answer.body).ok_or_else(|| {
        anyhow::Error::new(ClientError::Decode {
            url: url.to_string(),
            reason: "no token in the answer".to_string(),
        })
    })
}

/// `mosaicctl generate zone-token --zone NAME [--valid-for D]`.
pub async fn zone_token(
    client: &Client,
    zone: &str,
    valid_for: Option<KumaDuration>,
) -> anyhow::Result<()> {
    let req = ZoneTokenRequest {
        zone: zone.to_string(),
        valid_for,
    };
    let token = post(client, "zone", serde_json::to_value(&req)?).await?;
    outln!("{}", token.expose());
    Ok(())
}

/// `mosaicctl generate dataplane-token --mesh M --name N --tag k=v... [--valid-for D]`.
pub async fn dataplane_token(
    client: &Client,
    mesh: &str,
    name: &str,
    tags: &[(String, String)],
    valid_for: Option<KumaDuration>,
) -> anyhow::Result<()> {
    let req = DataplaneTokenRequest {
        mesh: mesh.to_string(),
        name: name.to_string(),
        tags: group_tags(tags),
        valid_for,
    };
    let token = post(client, "dataplane", serde_json::to_value(&req)?).await?;
    outln!("{}", token.expose());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_group() {
        assert_eq!(
            parse_tag("kuma.io/service=backend"),
            Ok(("kuma.io/service".into(), "backend".into()))
        );
        assert_eq!(parse_tag("a=b=c"), Ok(("a".into(), "b=c".into())));
        for bad in ["", "x", "=v", "k="] {
            assert!(parse_tag(bad).is_err(), "{bad:?}");
        }
        let grouped = group_tags(&[
            ("kuma.io/service".into(), "a".into()),
            ("kuma.io/service".into(), "b".into()),
            ("kuma.io/service".into(), "a".into()),
            ("version".into(), "v1".into()),
        ]);
        assert_eq!(
            serde_json::to_value(&grouped).unwrap(),
            serde_json::json!({"kuma.io/service": ["a", "b"], "version": ["v1"]})
        );
    }

    #[test]
    fn request_bodies_match_the_contract() {
        let req = DataplaneTokenRequest {
            mesh: "default".into(),
            name: "backend-1".into(),
            tags: group_tags(&[("kuma.io/service".into(), "backend".into())]),
            valid_for: Some("24h".parse().unwrap()),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"mesh":"default","name":"backend-1","tags":{"kuma.io/service":["backend"]},"validFor":"24h"})
        );
        let req = ZoneTokenRequest {
            zone: "east".into(),
            valid_for: None,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"zone":"east"})
        );
    }

    #[test]
    fn tokens_come_as_text_or_json() {
        for body in [
            &b"aaa.bbb.ccc\n"[..],
            br#""aaa.bbb.ccc""#,
            br#"{"token":"aaa.bbb.ccc"}"#,
        ] {
            assert_eq!(token_from_body(body).unwrap().expose(), "aaa.bbb.ccc");
        }
        assert!(token_from_body(b"  ").is_none());
        assert!(token_from_body(br#"{"x":1}"#).is_none());
    }
}
