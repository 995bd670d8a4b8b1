//! `mosaicctl inspect`, kumactl's tables over the overview endpoints:
//! - `inspect zones`: every zone's KDS state and, per mesh backend, whether the zone can get
//!   certificates from its CA (`CA: Connected`) or not (`Unknown`), from `GET /zones/_overview`;
//! - `inspect dataplanes [--mesh M] [--tag K=V]... [--gateway]`: each data plane's tags, state
//!   and certificate, from `GET /meshes/{mesh}/dataplanes/_overview` (`?tag=K:V`, `?gateway=`);
//! - `inspect meshes`: data planes online/total, services and certificate backends per mesh,
//!   from `GET /mesh-insights`;
//! - `inspect dataplane NAME --mesh M`: one data plane, its insight and mTLS state, from
//!   `GET /meshes/{mesh}/dataplanes/{name}/_overview` (Kuma prints Envoy's config dump here;
//!   Mosaic serves no Envoy configuration, so it prints what it knows of the data plane).
//!
//! A data plane is Online while it holds an unexpired certificate (Mosaic tracks certificates,
//! not xDS connections).
//!
//! Assumed item shape (Kuma's `ZoneOverview`): `{name, creationTime, zone: {enabled},
//! zoneInsight: {subscriptions: [{connectTime, disconnectTime, zoneVersion, ...}], caHealth:
//! [{mesh, backend, healthy, lastError, ...}]}}`, optionally with an explicit `online` flag.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use mosaic_core::resource::{
    dataplane::{DataplaneInsightSpec, DataplaneSpec},
    zone::{CaHealth, ZoneInsightSpec},
};

use crate::{client::Client, table};

/// One item of `GET /zones/_overview`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneOverview {
    /// The zone's name.
    pub name: String,
    /// When the Zone was created.
    #[serde(default)]
    pub creation_time: Option<String>,
    /// The Zone resource's spec.
    #[serde(default)]
    pub zone: ZoneFlags,
    /// What the zone reported.
    #[serde(default, alias = "insight")]
    pub zone_insight: ZoneInsightSpec,
    /// The global's own verdict, if it sends one.
    #[serde(default)]
    pub online: Option<bool>,
}

/// The parts of the Zone spec the overview shows.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ZoneFlags {
    /// Whether the zone may connect (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `/zones/_overview` under the client's base.
pub fn overview_url(client: &Client) -> url::Url {
    client.url(&["zones", "_overview"], &[])
}

// === impl ZoneOverview ===

impl ZoneOverview {
    /// Online: the global says so, or the newest KDS session has not disconnected.
    pub fn is_online(&self) -> bool {
        self.online.unwrap_or_else(|| {
            self.zone_insight
                .subscriptions
                .last()
                .is_some_and(|s| s.connect_time.is_some() && s.disconnect_time.is_none())
        })
    }

    fn version(&self) -> &str {
        self.zone_insight
            .subscriptions
            .last()
            .map(|s| s.zone_version.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or("-")
    }
}

fn ca_state(online: bool, h: &CaHealth) -> &'static str {
    if online && h.healthy {
        "Connected"
    } else {
        "Unknown"
    }
}

/// The table (and the CA errors to list under it) for `zones` at `now`.
pub fn render(zones: &[ZoneOverview], now: OffsetDateTime) -> String {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for z in zones {
        let online = z.is_online();
        let ca = if z.zone_insight.ca_health.is_empty() {
            "-".to_string()
        } else {
            z.zone_insight
                .ca_health
                .iter()
                .map(|h| format!("{}/{}: {}", h.mesh, h.backend, ca_state(online, h)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for h in &z.zone_insight.ca_health {
            if !h.healthy && !h.last_error.is_empty() {
                problems.push(format!(
                    "zone {}, mesh {}, backend {}: {}",
                    z.name, h.mesh, h.backend, h.last_error
                ));
            }
        }
        rows.push(vec![
            z.name.clone(),
            if online { "Online" } else { "Offline" }.to_string(),
            z.zone.enabled.unwrap_or(true).to_string(),
            z.version().to_string(),
            table::age(z.creation_time.as_deref(), now),
            ca,
        ]);
    }
    let mut out = table::render(
        &["NAME", "STATUS", "ENABLED", "ZONE-CP VERSION", "AGE", "CA"],
        &rows,
    );
    if !problems.is_empty() {
        out.push_str("\nCA errors:\n");
        for p in problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// `mosaicctl inspect zones`.
pub async fn zones(client: &Client) -> anyhow::Result<()> {
    let items = client.get_list(overview_url(client)).await?;
    let zones = items
        .into_iter()
        .map(serde_json::from_value::<ZoneOverview>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("/zones/_overview answered an unexpected item: {e}"))?;
    out!("{}", render(&zones, OffsetDateTime::now_utc()));
    Ok(())
}

/// One item of a `DataplaneOverview` list.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneOverview {
    /// Mesh.
    #[serde(default)]
    pub mesh: String,
    /// Name.
    pub name: String,
    /// Labels (`kuma.io/zone` names the zone that reported it).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Dataplane spec.
    #[serde(default)]
    pub dataplane: DataplaneSpec,
    /// Its DataplaneInsight.
    #[serde(default)]
    pub dataplane_insight: DataplaneInsightSpec,
}

/// What `inspect dataplanes` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataplaneQuery {
    /// `--mesh`; every mesh without it.
    pub mesh: Option<String>,
    /// `--tag K=V`, repeatable (values match by substring, as Kuma's `?tag=`).
    pub tags: Vec<(String, String)>,
    /// `--gateway`: gateways only.
    pub gateway: bool,
}

// === impl DataplaneOverview ===

impl DataplaneOverview {
    /// Online: it holds a certificate that has not expired at `now`.
    pub fn is_online(&self, now: OffsetDateTime) -> bool {
        self.dataplane_insight
            .mtls
            .as_ref()
            .and_then(|m| m.certificate_expiration_time)
            .is_some_and(|t| t > now)
    }

    /// Kuma's TAGS column: `key=v1,v2` per tag, sorted, space-separated.
    pub fn tags_column(&self) -> String {
        let tags = self.dataplane.tags();
        let out: Vec<String> = tags
            .iter()
            .map(|(k, vs)| format!("{k}={}", vs.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect();
        if out.is_empty() {
            "-".into()
        } else {
            out.join(" ")
        }
    }
}

fn ago(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    t.map_or_else(|| "never".into(), |t| table::human_duration(now - t))
}

fn timestamp(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

/// The `inspect dataplanes` table at `now`.
pub fn render_dataplanes(items: &[DataplaneOverview], now: OffsetDateTime) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            let m = d.dataplane_insight.mtls.clone().unwrap_or_default();
            vec![
                d.mesh.clone(),
                d.name.clone(),
                d.labels
                    .get("kuma.io/zone")
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                d.tags_column(),
                if d.is_online(now) {
                    "Online"
                } else {
                    "Offline"
                }
                .into(),
                ago(m.last_certificate_regeneration, now),
                timestamp(m.certificate_expiration_time),
                m.certificate_regenerations.to_string(),
                if m.issued_backend.is_empty() {
                    "-".into()
                } else {
                    m.issued_backend.clone()
                },
                m.supported_backends.join(","),
            ]
        })
        .collect();
    table::render(
        &[
            "MESH",
            "NAME",
            "ZONE",
            "TAGS",
            "STATUS",
            "CERT REGENERATED AGO",
            "CERT EXPIRATION",
            "CERT REGENERATIONS",
            "CERT BACKEND",
            "SUPPORTED CERT BACKENDS",
        ],
        &rows,
    )
}

/// The overview URL for `query`.
pub fn dataplanes_url(client: &Client, query: &DataplaneQuery) -> url::Url {
    let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let mut params: Vec<(&str, &str)> = tags.iter().map(|t| ("tag", t.as_str())).collect();
    if query.gateway {
        params.push(("gateway", "true"));
    }
    match &query.mesh {
        Some(m) => client.url(&["meshes", m, "dataplanes", "_overview"], &params),
        None => client.url(&["dataplanes", "_overview"], &params),
    }
}

fn decode<T: serde::de::DeserializeOwned>(items: Vec<Value>, what: &str) -> anyhow::Result<Vec<T>> {
    items
        .into_iter()
        .map(serde_json::from_value::<T>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{what} answered an unexpected item: {e}"))
}

/// `mosaicctl inspect dataplanes`.
pub async fn dataplanes(client: &Client, query: &DataplaneQuery) -> anyhow::Result<()> {
    let url = dataplanes_url(client, query);
    let items = decode(client.get_list(url.clone()).await?, url.path())?;
    out!("{}", render_dataplanes(&items, OffsetDateTime::now_utc()));
    Ok(())
}

/// The `inspect meshes` table from `GET /mesh-insights` items.
pub fn render_meshes(items: &[Value]) -> String {
    let num = |v: &Value, path: &[&str]| -> u64 {
        path.iter()
            .try_fold(v, |v, k| v.get(*k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            let backends = m
                .get("mTLS")
                .and_then(|t| t.get("issuedBackends"))
                .and_then(Value::as_object)
                .map(|b| {
                    b.iter()
                        .map(|(k, s)| format!("{k}:{}", num(s, &["total"])))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into());
            vec![
                m.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                format!(
                    "{}/{}",
                    num(m, &["dataplanes", "online"]),
                    num(m, &["dataplanes", "total"])
                ),
                num(m, &["services", "total"]).to_string(),
                num(m, &["resources", "Secret", "total"]).to_string(),
                backends,
            ]
        })
        .collect();
    table::render(
        &["MESH", "DATAPLANES", "SERVICES", "SECRETS", "CERT BACKENDS"],
        &rows,
    )
}

/// `mosaicctl inspect meshes`.
pub async fn meshes(client: &Client) -> anyhow::Result<()> {
    let items = client.get_list(client.url(&["mesh-insights"], &[])).await?;
    out!("{}", render_meshes(&items));
    Ok(())
}

/// The `inspect dataplane NAME` report at `now`.
pub fn render_dataplane(d: &DataplaneOverview, now: OffsetDateTime) -> String {
    let mut out = format!("Dataplane {} (mesh {})\n", d.name, d.mesh);
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<22}{v}\n"));
    if let Some(z) = d.labels.get("kuma.io/zone") {
        line(&mut out, "Zone:", z.clone());
    }
    line(
        &mut out,
        "Status:",
        if d.is_online(now) {
            "Online"
        } else {
            "Offline"
        }
        .into(),
    );
    line(&mut out, "Address:", d.dataplane.networking.address.clone());
    line(&mut out, "Tags:", d.tags_column());
    let kind = match &d.dataplane.networking.gateway {
        Some(g) => format!("gateway ({})", g.kind().as_str()),
        None if d.dataplane.networking.inbound.is_empty() => "outbound-only".into(),
        None => "standard".into(),
    };
    line(&mut out, "Type:", kind);
    for (i, inbound) in d.dataplane.networking.inbound.iter().enumerate() {
        line(
            &mut out,
            &format!("Inbound[{i}]:"),
            format!(
                "port {}{}",
                inbound.port,
                inbound
                    .tags
                    .get("kuma.io/service")
                    .map(|s| format!(", service {s}"))
                    .unwrap_or_default()
            ),
        );
    }
    match &d.dataplane_insight.mtls {
        None => out.push_str("mTLS:\n  no certificate issued yet\n"),
        Some(m) => {
            out.push_str("mTLS:\n");
            line(
                &mut out,
                "Backend:",
                if m.issued_backend.is_empty() {
                    "-".into()
                } else {
                    m.issued_backend.clone()
                },
            );
            line(
                &mut out,
                "Supported backends:",
                m.supported_backends.join(","),
            );
            let expires = m.certificate_expiration_time.map_or_else(
                || "-".to_string(),
                |t| {
                    let when = t.format(&Rfc3339).unwrap_or_default();
                    if t > now {
                        format!("{when} (in {})", table::human_duration(t - now))
                    } else {
                        format!("{when} (expired {} ago)", table::human_duration(now - t))
                    }
                },
            );
            line(&mut out, "Certificate expires:", expires);
            line(
                &mut out,
                "Last regenerated:",
                format!("{} ago", ago(m.last_certificate_regeneration, now)),
            );
            line(
                &mut out,
                "Regenerations:",
                m.certificate_regenerations.to_string(),
            );
        }
    }
    out
}

/// `mosaicctl inspect dataplane NAME --mesh MESH`.
pub async fn dataplane(client: &Client, mesh: &str, name: &str) -> anyhow::Result<()> {
    let url = client.url(&["meshes", mesh, "dataplanes", name, "_overview"], &[]);
    let item: DataplaneOverview = serde_json::from_value(client.get_json(url.clone()).await?)
        .map_err(|e| anyhow::anyhow!("{} answered an unexpected document: {e}", url.path()))?;
    out!("{}", render_dataplane(&item, OffsetDateTime::now_utc()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_zones_show_ca_health_per_mesh() {
        let items = serde_json::json!([
            {"type":"ZoneOverview","name":"east","creationTime":"2025-06-01T10:00:00Z",
             "zone":{"enabled":true},
             "zoneInsight":{"subscriptions":[{"id":"1","connectTime":"2025-06-01T10:00:00Z","zoneVersion":"0.1.0"}],
               "caHealth":[{"mesh":"default","backend":"vault-1","healthy":true},
                           {"mesh":"m2","backend":"vault-2","healthy":false,"lastError":"permission denied"}]}},
            {"type":"ZoneOverview","name":"west",
             "zoneInsight":{"subscriptions":[{"id":"2","connectTime":"2025-06-01T10:00:00Z","disconnectTime":"2025-06-01T11:00:00Z"}],
               "caHealth":[{"mesh":"default","backend":"vault-1","healthy":true}]}},
            {"name":"north","online":true}
        ]);
        let zones: Vec<ZoneOverview> = serde_json::from_value(items).unwrap();
        let now = OffsetDateTime::parse(
            "2025-06-01T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(
            render(&zones, now),
            "NAME    STATUS    ENABLED   ZONE-CP VERSION   AGE    CA\n\
             east    Online    true      0.1.0             120m   default/vault-1: Connected, m2/vault-2: Unknown\n\
             west    Offline   true      -                 -      default/vault-1: Unknown\n\
             north   Online    true      -                 -      -\n\
             \n\
             CA errors:\n\
             \x20 zone east, mesh m2, backend vault-2: permission denied\n"
        );
    }
}

#[cfg(test)]
mod dataplane_tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    fn items() -> Vec<DataplaneOverview> {
        serde_json::from_value(serde_json::json!([
            {"type":"DataplaneOverview","mesh":"default","name":"web-1","labels":{"kuma.io/zone":"east"},
             "dataplane":{"networking":{"address":"10.0.0.1","inbound":[
                {"port":80,"tags":{"kuma.io/service":"web","version":"v1"}},
                {"port":81,"tags":{"kuma.io/service":"web-admin"}}]}},
             "dataplaneInsight":{"mTLS":{"certificateExpirationTime":"2025-06-02T10:00:00Z",
                "lastCertificateRegeneration":"2025-06-01T10:00:00Z","certificateRegenerations":3,
                "issuedBackend":"ca-1","supportedBackends":["ca-1","ca-2"]}}},
            {"type":"DataplaneOverview","mesh":"default","name":"client","dataplane":{"networking":{"address":"10.0.0.2"}},
             "dataplaneInsight":{}}
        ]))
        .unwrap()
    }

    #[test]
    fn dataplanes_table_is_kumactls() {
        assert_eq!(
            render_dataplanes(&items(), at("2025-06-01T12:00:00Z")),
            "MESH      NAME     ZONE   TAGS                                       STATUS    CERT REGENERATED AGO   CERT EXPIRATION       CERT REGENERATIONS   CERT BACKEND   SUPPORTED CERT BACKENDS\n\
             default   web-1    east   kuma.io/service=web,web-admin version=v1   Online    120m                   2025-06-02 10:00:00   3                    ca-1           ca-1,ca-2\n\
             default   client   -      -                                          Offline   never                  -                     0                    -\n"
        );
    }

    #[test]
    fn one_dataplane_shows_its_mtls_state() {
        let out = render_dataplane(&items()[0], at("2025-06-01T12:00:00Z"));
        assert!(out.starts_with("Dataplane web-1 (mesh default)\n"), "{out}");
        for want in [
            "Zone:                 east",
            "Status:               Online",
            "Inbound[1]:           port 81, service web-admin",
            "Backend:              ca-1",
            "Certificate expires:  2025-06-02T10:00:00Z (in 22h)",
            "Regenerations:        3",
        ] {
            assert!(out.contains(want), "{want:?} in\n{out}");
        }
        let client = render_dataplane(&items()[1], at("2025-06-01T12:00:00Z"));
        assert!(
            client.contains("Type:                 outbound-only"),
            "{client}"
        );
        assert!(client.contains("no certificate issued yet"), "{client}");
    }

    #[test]
    fn meshes_table_reads_mesh_insights() {
        let items = vec![serde_json::json!({"type":"MeshInsight","name":"default",
            "dataplanes":{"total":3,"online":1},"services":{"total":2},
            "resources":{"Secret":{"total":2}},
            "mTLS":{"issuedBackends":{"ca-1":{"total":1}}}})];
        assert_eq!(
            render_meshes(&items),
            "MESH      DATAPLANES   SERVICES   SECRETS   CERT BACKENDS\n\
             default   1/3          2          2         ca-1:1\n"
        );
    }
}
