//! `mosaicctl generate zone-token|dataplane-token`: asks the global to sign a token
//! (`POST /tokens/zone`, `POST /tokens/dataplane`) and prints it on stdout. The flags are
//! kumactl's: `--tag K=V1,V2` (values split on commas; `K1=V1,K2=V2` names two tags), optional
//! `--name` and tags (mesh-wide and service-wide tokens), `--type`/`--proxy-type`, `--workload`,
//! `--scope` (repeated or comma-separated).
//!
//! The answer is the token as plain text; a JSON string or `{"token": "..."}` is accepted too.

use std::collections::BTreeMap;

use mosaic_core::{
    Sensitive,
    duration::KumaDuration,
    token::{DataplaneTokenRequest, FULL_SCOPE, ZoneTokenRequest},
};

use crate::client::{Client, ClientError};

/// `generate zone-token` arguments.
#[derive(Debug, clap::Args)]
pub struct ZoneTokenArgs {
    /// The zone's name.
    #[arg(long)]
    pub zone: String,
    /// What the token may authenticate: cp (the zone control plane, what global.token_file
    /// needs), ingress, egress; repeat or separate with commas. Default: all three.
    #[arg(long, value_name = "SCOPE", value_delimiter = ',', value_parser = parse_scope)]
    pub scope: Vec<String>,
    /// How long the token is valid, e.g. 720h or 30d.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse_duration)]
    pub valid_for: Option<KumaDuration>,
}

/// `generate dataplane-token` arguments.
#[derive(Debug, clap::Args)]
pub struct DataplaneTokenArgs {
    /// The data plane's mesh.
    #[arg(short = 'm', long, default_value = "default")]
    pub mesh: String,
    /// The Dataplane's name; without it the token fits any data plane of the mesh.
    #[arg(long)]
    pub name: Option<String>,
    /// A tag the Dataplane must have, KEY=VALUE or KEY=VALUE1,VALUE2 (any of the values); repeat
    /// for more tags. Tags the token does not name are free (Kuma's rule). Without tags, no tag
    /// is checked.
    #[arg(long = "tag", value_name = "KEY=VALUE[,VALUE]", value_parser = parse_tag)]
    pub tags: Vec<TagArg>,
    /// Which kind of proxy may use the token (Kuma's --type / --proxy-type).
    #[arg(long = "type", visible_alias = "proxy-type", value_name = "TYPE", value_parser = ["dataplane", "ingress", "egress"])]
    pub proxy_type: Option<String>,
    /// The kuma.io/workload label the Dataplane must have.
    #[arg(long)]
    pub workload: Option<String>,
    /// How long the token is valid, e.g. 24h.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse_duration)]
    pub valid_for: Option<KumaDuration>,
}

/// One `--tag` value: one or more tags with their values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagArg(pub Vec<(String, Vec<String>)>);

/// `--tag` as kumactl reads it: with one `=`, `KEY=V1,V2` is one tag with the values split on
/// commas; with several, `K1=V1,K2=V2` are tags separated by commas.
pub fn parse_tag(s: &str) -> Result<TagArg, String> {
    let example =
        "write e.g. --tag kuma.io/service=backend or --tag kuma.io/service=backend,backend-admin";
    let pairs: Vec<&str> = if s.matches('=').count() > 1 && s.contains(',') {
        s.split(',').collect()
    } else {
        vec![s]
    };
    let mut out = Vec::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("{s:?}: {pair:?} is not KEY=VALUE: {example}"));
        };
        let k = k.trim();
        let values: Vec<String> = v.split(',').map(|v| v.trim().to_string()).collect();
        if k.is_empty() || values.iter().any(String::is_empty) {
            return Err(format!(
                "{s:?} is not KEY=VALUE with non-empty values: {example}"
            ));
        }
        out.push((k.to_string(), values));
    }
    Ok(TagArg(out))
}

/// `--scope`: one of Kuma's scopes.
fn parse_scope(s: &str) -> Result<String, String> {
    let s = s.trim();
    if FULL_SCOPE.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a scope: use {} (cp for a zone control plane)",
            FULL_SCOPE.join(", ")
        ))
    }
}

/// Groups `--tag` values by key (a key may have several values, each once).
pub fn group_tags(tags: &[TagArg]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, vs) in tags.iter().flat_map(|t| &t.0) {
        let values = out.entry(k.clone()).or_default();
        for v in vs {
            if !values.contains(v) {
                values.push(v.clone());
            }
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

/// The body of `POST /tokens/zone` for `args`.
pub fn zone_request(args: &ZoneTokenArgs) -> ZoneTokenRequest {
    let mut scope: Vec<String> = Vec::new();
    for s in &args.scope {
        if !scope.contains(s) {
            scope.push(s.clone());
        }
    }
    ZoneTokenRequest {
        zone: args.zone.clone(),
        scope: (!scope.is_empty()).then_some(scope),
        valid_for: args.valid_for.clone(),
    }
}

/// The body of `POST /tokens/dataplane` for `args`.
pub fn dataplane_request(args: &DataplaneTokenArgs) -> DataplaneTokenRequest {
    DataplaneTokenRequest {
        mesh: args.mesh.clone(),
        name: args.name.clone().unwrap_or_default(),
        tags: group_tags(&args.tags),
        proxy_type: args.proxy_type.clone().unwrap_or_default(),
        workload: args.workload.clone().unwrap_or_default(),
        valid_for: args.valid_for.clone(),
    }
}

/// `mosaicctl generate zone-token --zone NAME [--scope S,...] [--valid-for D]`.
pub async fn zone_token(client: &Client, args: &ZoneTokenArgs) -> anyhow::Result<()> {
    let req = zone_request(args);
    let token = post(client, "zone", serde_json::to_value(&req)?).await?;
    outln!("{}", token.expose());
    Ok(())
}

/// `mosaicctl generate dataplane-token [--mesh M] [--name N] [--tag k=v1,v2 ...] [--type T]
/// [--workload W] [--valid-for D]`.
pub async fn dataplane_token(client: &Client, args: &DataplaneTokenArgs) -> anyhow::Result<()> {
    let req = dataplane_request(args);
    let token = post(client, "dataplane", serde_json::to_value(&req)?).await?;
    outln!("{}", token.expose());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> TagArg {
        parse_tag(s).unwrap()
    }

    #[test]
    fn tags_parse_and_group() {
        assert_eq!(
            tag("kuma.io/service=backend"),
            TagArg(vec![("kuma.io/service".into(), vec!["backend".into()])])
        );
        assert_eq!(tag("a=b=c"), TagArg(vec![("a".into(), vec!["b=c".into()])]));
        for bad in ["", "x", "=v", "k=", "k=a,,b", "a=1,2,b=3"] {
            assert!(parse_tag(bad).is_err(), "{bad:?}");
        }
        let grouped = group_tags(&[
            tag("kuma.io/service=a"),
            tag("kuma.io/service=b"),
            tag("kuma.io/service=a"),
            tag("version=v1"),
        ]);
        assert_eq!(
            serde_json::to_value(&grouped).unwrap(),
            serde_json::json!({"kuma.io/service": ["a", "b"], "version": ["v1"]})
        );
    }

    #[test]
    fn tag_values_split_on_commas_as_kumactl() {
        // Kuma's docs (dp-auth): one tag, two values.
        assert_eq!(
            group_tags(&[tag("kuma.io/service=backend,backend-admin")]),
            BTreeMap::from([(
                "kuma.io/service".to_string(),
                vec!["backend".to_string(), "backend-admin".to_string()]
            )])
        );
        // pflag's StringToString: several `=` are several tags.
        assert_eq!(
            group_tags(&[tag("kuma.io/service=web,version=v1")]),
            BTreeMap::from([
                ("kuma.io/service".to_string(), vec!["web".to_string()]),
                ("version".to_string(), vec!["v1".to_string()]),
            ])
        );
    }

    #[test]
    fn request_bodies_match_the_contract() {
        let args = DataplaneTokenArgs {
            mesh: "default".into(),
            name: Some("backend-1".into()),
            tags: vec![tag("kuma.io/service=backend")],
            proxy_type: None,
            workload: None,
            valid_for: Some("24h".parse().unwrap()),
        };
        assert_eq!(
            serde_json::to_value(dataplane_request(&args)).unwrap(),
            serde_json::json!({"mesh":"default","name":"backend-1","tags":{"kuma.io/service":["backend"]},"validFor":"24h"})
        );
        // Mesh-wide, typed, bound to a workload.
        let args = DataplaneTokenArgs {
            mesh: "default".into(),
            name: None,
            tags: vec![],
            proxy_type: Some("dataplane".into()),
            workload: Some("web".into()),
            valid_for: None,
        };
        assert_eq!(
            serde_json::to_value(dataplane_request(&args)).unwrap(),
            serde_json::json!({"mesh":"default","type":"dataplane","workload":"web"})
        );
        let args = ZoneTokenArgs {
            zone: "east".into(),
            scope: vec![],
            valid_for: None,
        };
        assert_eq!(
            serde_json::to_value(zone_request(&args)).unwrap(),
            serde_json::json!({"zone":"east"})
        );
        let args = ZoneTokenArgs {
            zone: "east".into(),
            scope: vec!["cp".into(), "ingress".into(), "cp".into()],
            valid_for: Some("720h".parse().unwrap()),
        };
        assert_eq!(
            serde_json::to_value(zone_request(&args)).unwrap(),
            serde_json::json!({"zone":"east","scope":["cp","ingress"],"validFor":"720h"})
        );
        assert!(parse_scope("cp").is_ok());
        assert!(
            parse_scope("admin")
                .unwrap_err()
                .contains("cp, ingress, egress")
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
