//! `mosaicctl inspect zones`: every zone's KDS state and, per mesh backend, whether the zone can
//! get certificates from its CA (`CA: Connected`) or not (`Unknown`), from `GET /zones/_overview`.
//!
//! Assumed item shape (Kuma's `ZoneOverview`): `{name, creationTime, zone: {enabled},
//! zoneInsight: {subscriptions: [{connectTime, disconnectTime, zoneVersion, ...}], caHealth:
//! [{mesh, backend, healthy, lastError, ...}]}}`, optionally with an explicit `online` flag.

use serde::Deserialize;
use time::OffsetDateTime;

use mosaic_core::resource::zone::{CaHealth, ZoneInsightSpec};

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
