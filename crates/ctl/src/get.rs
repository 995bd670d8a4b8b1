//! `mosaicctl get ...` (tables like kumactl's, or the API's YAML/JSON) and `mosaicctl delete ...`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use clap::ValueEnum;
use mosaic_core::resource::ResourceType;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    client::{Client, resource_segments},
    inspect::{ZoneOverview, overview_url},
    table,
};

/// What `get` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GetKind {
    /// Meshes.
    #[value(alias = "mesh")]
    Meshes,
    /// Secrets of a mesh.
    #[value(alias = "secret")]
    Secrets,
    /// Global secrets.
    #[value(alias = "global-secret")]
    GlobalSecrets,
    /// Zones.
    #[value(alias = "zone")]
    Zones,
    /// Data planes of a mesh (as zones report them).
    #[value(alias = "dataplane")]
    Dataplanes,
    /// MeshIdentities of a mesh.
    #[value(alias = "meshidentity", alias = "mid")]
    Meshidentities,
    /// MeshTrusts of a mesh.
    #[value(alias = "meshtrust", alias = "mtrust")]
    Meshtrusts,
    /// Token signing keys: `get signing-keys zone`, `get signing-keys dataplane --mesh M`.
    #[value(alias = "signing-key")]
    SigningKeys,
}

/// What `delete` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeleteKind {
    /// A Mesh (and its Secrets).
    #[value(alias = "meshes")]
    Mesh,
    /// A Secret of a mesh.
    #[value(alias = "secrets")]
    Secret,
    /// A global secret.
    #[value(alias = "global-secrets")]
    GlobalSecret,
    /// A Zone.
    #[value(alias = "zones")]
    Zone,
    /// A Dataplane (on a zone control plane).
    #[value(alias = "dataplanes")]
    Dataplane,
    /// A MeshIdentity of a mesh.
    #[value(alias = "meshidentities")]
    Meshidentity,
    /// A MeshTrust of a mesh.
    #[value(alias = "meshtrusts")]
    Meshtrust,
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table.
    #[default]
    Table,
    /// YAML, as the API returns it.
    Yaml,
    /// JSON, as the API returns it.
    Json,
}

// === impl GetKind ===

impl GetKind {
    /// The resource type (none for signing keys, which are not resources).
    pub fn resource_type(self) -> Option<ResourceType> {
        Some(match self {
            GetKind::Meshes => ResourceType::Mesh,
            GetKind::Secrets => ResourceType::Secret,
            GetKind::GlobalSecrets => ResourceType::GlobalSecret,
            GetKind::Zones => ResourceType::Zone,
            GetKind::Dataplanes => ResourceType::Dataplane,
            GetKind::Meshidentities => ResourceType::MeshIdentity,
            GetKind::Meshtrusts => ResourceType::MeshTrust,
            GetKind::SigningKeys => return None,
        })
    }
}

// === impl DeleteKind ===

impl DeleteKind {
    /// The resource type.
    pub fn resource_type(self) -> ResourceType {
        match self {
            DeleteKind::Mesh => ResourceType::Mesh,
            DeleteKind::Secret => ResourceType::Secret,
            DeleteKind::GlobalSecret => ResourceType::GlobalSecret,
            DeleteKind::Zone => ResourceType::Zone,
            DeleteKind::Dataplane => ResourceType::Dataplane,
            DeleteKind::Meshidentity => ResourceType::MeshIdentity,
            DeleteKind::Meshtrust => ResourceType::MeshTrust,
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// `vault/vault-1` for a Mesh with mTLS enabled, else `off`.
fn mtls_column(mesh: &Value) -> String {
    let Some(enabled) = str_at(mesh, &["mtls", "enabledBackend"]).filter(|s| !s.is_empty()) else {
        return "off".to_string();
    };
    let kind = mesh
        .get("mtls")
        .and_then(|m| m.get("backends"))
        .and_then(Value::as_array)
        .and_then(|bs| bs.iter().find(|b| str_at(b, &["name"]) == Some(enabled)))
        .and_then(|b| str_at(b, &["type"]))
        .unwrap_or("?");
    format!("{kind}/{enabled}")
}

/// Every `key=value` tag of a Dataplane's inbounds and gateway, sorted, space-separated.
fn tags_column(dp: &Value) -> String {
    let mut tags = BTreeSet::new();
    let net = dp.get("networking");
    let inbound = net
        .and_then(|n| n.get("inbound"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let gateway = net.and_then(|n| n.get("gateway")).into_iter();
    for holder in inbound.chain(gateway) {
        if let Some(map) = holder.get("tags").and_then(Value::as_object) {
            for (k, v) in map {
                tags.insert(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
    }
    tags.into_iter().collect::<Vec<_>>().join(" ")
}

/// Table headers and rows for `items` of `kind`; `online` maps zone names to their KDS state.
pub fn rows(
    kind: GetKind,
    items: &[Value],
    online: Option<&BTreeMap<String, bool>>,
    now: OffsetDateTime,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let name = |v: &Value| str_at(v, &["name"]).unwrap_or_default().to_string();
    let mesh = |v: &Value| str_at(v, &["mesh"]).unwrap_or_default().to_string();
    let age = |v: &Value| table::age(str_at(v, &["creationTime"]), now);
    match kind {
        GetKind::Meshes => (
            vec!["NAME", "mTLS", "AGE"],
            items
                .iter()
                .map(|v| vec![name(v), mtls_column(v), age(v)])
                .collect(),
        ),
        GetKind::Secrets => (
            vec!["MESH", "NAME", "AGE"],
            items
                .iter()
                .map(|v| vec![mesh(v), name(v), age(v)])
                .collect(),
        ),
        GetKind::GlobalSecrets => (
            vec!["NAME", "AGE"],
            items.iter().map(|v| vec![name(v), age(v)]).collect(),
        ),
        GetKind::Zones => (
            vec!["NAME", "ENABLED", "ONLINE", "AGE"],
            items
                .iter()
                .map(|v| {
                    let enabled = v.get("enabled").and_then(Value::as_bool).unwrap_or(true);
                    let state = match online.map(|o| o.get(&name(v))) {
                        Some(Some(true)) => "Online",
                        Some(Some(false)) | Some(None) => "Offline",
                        None => "Unknown",
                    };
                    vec![name(v), enabled.to_string(), state.to_string(), age(v)]
                })
                .collect(),
        ),
        GetKind::Dataplanes => (
            vec!["MESH", "NAME", "ZONE", "TAGS", "AGE"],
            items
                .iter()
                .map(|v| {
                    let zone = str_at(v, &["labels", "kuma.io/zone"]).unwrap_or("-");
                    vec![mesh(v), name(v), zone.to_string(), tags_column(v), age(v)]
                })
                .collect(),
        ),
        GetKind::Meshidentities => (
            vec!["MESH", "NAME", "PROVIDER", "TRUST DOMAIN", "AGE"],
            items
                .iter()
                .map(|v| {
                    let provider = str_at(v, &["spec", "provider", "type"]).unwrap_or("-");
                    let domain = str_at(v, &["spec", "spiffeID", "trustDomain"])
                        .unwrap_or(mosaic_core::resource::mesh_identity::DEFAULT_TRUST_DOMAIN);
                    vec![
                        mesh(v),
                        name(v),
                        provider.to_string(),
                        domain.to_string(),
                        age(v),
                    ]
                })
                .collect(),
        ),
        GetKind::SigningKeys => (
            vec!["SERIAL", "KID", "STATE"],
            items
                .iter()
                .map(|v| {
                    let serial = v.get("serial").map(ToString::to_string).unwrap_or_default();
                    let kid = str_at(v, &["kid"]).unwrap_or_default().to_string();
                    let state = str_at(v, &["state"]).unwrap_or_default().to_uppercase();
                    vec![serial, kid, state]
                })
                .collect(),
        ),
        GetKind::Meshtrusts => (
            vec!["MESH", "NAME", "TRUST DOMAIN", "CA BUNDLES", "AGE"],
            items
                .iter()
                .map(|v| {
                    let domain = str_at(v, &["spec", "trustDomain"]).unwrap_or("-");
                    let bundles = v
                        .get("spec")
                        .and_then(|s| s.get("caBundles"))
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    vec![
                        mesh(v),
                        name(v),
                        domain.to_string(),
                        bundles.to_string(),
                        age(v),
                    ]
                })
                .collect(),
        ),
    }
}

/// Prints `value` (one resource or a list envelope) as YAML or JSON.
pub fn print_document(value: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml | Output::Table => {
            let text = serde_saphyr::to_string(value).context("formatting YAML")?;
            out!("{text}");
            if !text.ends_with('\n') {
                outln!();
            }
        }
    }
    Ok(())
}

/// `get --size N --offset O`: one page of a list (kumactl's flags, the API's `size`/`offset`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// `--size`: the page size (`None`, or 0 as kumactl reads it: unset).
    pub size: Option<u32>,
    /// `--offset`: where the page starts.
    pub offset: Option<String>,
}

impl Page {
    /// Whether one page was asked for (else every item is fetched, following `next`).
    fn is_set(&self) -> bool {
        self.size.is_some_and(|s| s > 0) || self.offset.as_deref().is_some_and(|o| !o.is_empty())
    }

    /// The `size`/`offset` query of the page.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(size) = self.size.filter(|s| *s > 0) {
            q.push(("size", size.to_string()));
        }
        if let Some(offset) = self.offset.as_deref().filter(|o| !o.is_empty()) {
            q.push(("offset", offset.to_string()));
        }
        q
    }
}

/// The `offset` of a page's `next` link (`/meshes?size=1&offset=1`), if there is a next page.
pub fn next_offset(page: &Value) -> Option<String> {
    let link = page.get("next")?.as_str().filter(|l| !l.is_empty())?;
    let base = url::Url::parse("http://next.invalid/").ok()?;
    let url = base.join(link).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "offset")
        .map(|(_, v)| v.into_owned())
}

/// kumactl's table footer when there are more elements than the page shows.
pub fn pagination_footer(next_offset: Option<&str>) -> Option<String> {
    next_offset
        .map(|o| format!("Rerun command with --offset={o} argument to retrieve more resources"))
}

/// `mosaicctl get KIND [NAME] [--mesh M] [-o FORMAT] [--size N] [--offset O]`.
pub async fn run(
    client: &Client,
    kind: GetKind,
    name: Option<&str>,
    mesh: &str,
    output: Output,
    page: &Page,
) -> anyhow::Result<()> {
    let Some(rtype) = kind.resource_type() else {
        anyhow::bail!(
            "signing keys are listed with mosaicctl get signing-keys zone|dataplane [--mesh MESH]"
        );
    };
    let mut footer = None;
    let items = match name {
        Some(_) => {
            let url = client.url(&resource_segments(rtype, Some(mesh), name), &[]);
            let one = client.get_json(url).await?;
            if output != Output::Table {
                return print_document(&one, output);
            }
            vec![one]
        }
        None if page.is_set() => {
            let query = page.query();
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let url = client.url(&resource_segments(rtype, Some(mesh), None), &query);
            let envelope = client.get_json(url.clone()).await?;
            if output != Output::Table {
                return print_document(&envelope, output);
            }
            footer = pagination_footer(next_offset(&envelope).as_deref());
            envelope
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{url} answered a list without items: is --api a Mosaic control plane?"
                    )
                })?
        }
        None => {
            let url = client.url(&resource_segments(rtype, Some(mesh), None), &[]);
            let all = client.get_list(url).await?;
            if output != Output::Table {
                let envelope = serde_json::json!({"total": all.len(), "items": all, "next": null});
                return print_document(&envelope, output);
            }
            all
        }
    };
    let online = if kind == GetKind::Zones {
        // Best effort: a zone control plane has no overview; show Unknown then.
        match client.get_list(overview_url(client)).await {
            Ok(list) => Some(
                list.iter()
                    .filter_map(|v| serde_json::from_value::<ZoneOverview>(v.clone()).ok())
                    .map(|o| (o.name.clone(), o.is_online()))
                    .collect(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "zone overview unavailable");
                None
            }
        }
    } else {
        None
    };
    let (headers, rows) = rows(kind, &items, online.as_ref(), OffsetDateTime::now_utc());
    out!("{}", table::render(&headers, &rows));
    if let Some(footer) = footer {
        outln!();
        outln!("{footer}");
    }
    Ok(())
}

/// `mosaicctl delete KIND NAME [--mesh M] [--force]`.
pub async fn delete(
    client: &Client,
    kind: DeleteKind,
    name: &str,
    mesh: &str,
    force: bool,
) -> anyhow::Result<()> {
    let rtype = kind.resource_type();
    let query: &[(&str, &str)] = if force { &[("force", "true")] } else { &[] };
    let url = client.url(&resource_segments(rtype, Some(mesh), Some(name)), query);
    client
        .send(reqwest::Method::DELETE, url, None)
        .await
        .with_context(|| format!("deleting {rtype} {name:?}"))?;
    if rtype.is_mesh_scoped() {
        outln!("deleted {rtype} \"{mesh}/{name}\"");
    } else {
        outln!("deleted {rtype} {name:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse(
            "2025-06-01T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    }

    fn render(kind: GetKind, items: &[Value], online: Option<&BTreeMap<String, bool>>) -> String {
        let (h, r) = rows(kind, items, online, now());
        table::render(&h, &r)
    }

    #[test]
    fn meshes_show_their_mtls_backend() {
        let items = [
            json!({"type":"Mesh","name":"default","creationTime":"2025-06-01T11:55:00Z",
                "mtls":{"enabledBackend":"vault-1","backends":[{"name":"ca-1","type":"builtin"},{"name":"vault-1","type":"vault"}]}}),
            json!({"type":"Mesh","name":"plain","creationTime":"2025-05-30T12:00:00Z"}),
        ];
        assert_eq!(
            render(GetKind::Meshes, &items, None),
            "NAME      mTLS            AGE\n\
             default   vault/vault-1   5m\n\
             plain     off             2d\n"
        );
    }

    #[test]
    fn secrets_zones_and_dataplanes() {
        let secrets = [json!({"type":"Secret","mesh":"default","name":"token-1","data":"dA=="})];
        assert_eq!(
            render(GetKind::Secrets, &secrets, None),
            "MESH      NAME      AGE\ndefault   token-1   -\n"
        );
        let zones = [
            json!({"type":"Zone","name":"east","creationTime":"2025-06-01T11:00:00Z"}),
            json!({"type":"Zone","name":"west","enabled":false,"creationTime":"2025-06-01T11:00:00Z"}),
        ];
        let online = BTreeMap::from([("east".to_string(), true)]);
        assert_eq!(
            render(GetKind::Zones, &zones, Some(&online)),
            "NAME   ENABLED   ONLINE    AGE\n\
             east   true      Online    60m\n\
             west   false     Offline   60m\n"
        );
        assert!(render(GetKind::Zones, &zones, None).contains("Unknown"));
        let dps = [
            json!({"type":"Dataplane","mesh":"default","name":"backend-1",
            "labels":{"kuma.io/zone":"east"},
            "networking":{"address":"10.0.0.1","inbound":[
                {"port":80,"tags":{"kuma.io/service":"backend","version":"v1"}},
                {"port":81,"tags":{"kuma.io/service":"backend-admin"}}]}}),
        ];
        assert_eq!(
            render(GetKind::Dataplanes, &dps, None),
            "MESH      NAME        ZONE   TAGS                                                               AGE\n\
             default   backend-1   east   kuma.io/service=backend kuma.io/service=backend-admin version=v1   -\n"
        );
    }

    #[test]
    fn pages_say_where_the_next_one_starts() {
        let page = json!({"total": 3, "items": [], "next": "/meshes?size=1&offset=1"});
        assert_eq!(next_offset(&page).as_deref(), Some("1"));
        assert_eq!(
            pagination_footer(Some("1")).unwrap(),
            "Rerun command with --offset=1 argument to retrieve more resources"
        );
        let last = json!({"total": 3, "items": [], "next": null});
        assert_eq!(next_offset(&last), None);
        assert_eq!(pagination_footer(None), None);
        let q = Page {
            size: Some(2),
            offset: Some("4".into()),
        };
        assert!(q.is_set());
        assert_eq!(
            q.query(),
            [("size", "2".to_string()), ("offset", "4".to_string())]
        );
        // kumactl's zero values: unset.
        let unset = Page {
            size: Some(0),
            offset: Some(String::new()),
        };
        assert!(!unset.is_set());
    }

    #[test]
    fn documents_print_as_yaml() {
        let v = json!({"type":"Mesh","name":"default"});
        let text = serde_saphyr::to_string(&v).unwrap();
        assert!(
            text.contains("type: Mesh") && text.contains("name: default"),
            "{text}"
        );
    }
}
