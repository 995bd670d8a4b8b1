//! `Zone` (global-owned registration of a zone) and `ZoneInsight` (what a zone reports).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::limits::{MAX_CA_HEALTH_ENTRIES, MAX_ZONE_SUBSCRIPTIONS, check_count};
use crate::validate::{FieldPath, ValidationError, Validator};

/// The spec of a `Zone`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    /// A disabled zone's KDS connections are refused. Default: enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl ZoneSpec {
    /// Whether the zone may connect.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// The spec of a `ZoneInsight`: connection history and per-backend CA health.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneInsightSpec {
    /// KDS sessions, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<KdsSubscription>,
    /// CA health per mesh and backend, as the zone sees it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_health: Vec<CaHealth>,
    /// The MeshTrusts the zone made from its MeshIdentities (`meshTrustCreation: Enabled`), all
    /// of them each time: the global keeps one MeshTrust per entry (see
    /// [`ZoneTrust::mesh_trust`]) and removes those the zone no longer reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_trusts: Option<Vec<ZoneTrust>>,
}

/// A MeshTrust a zone made from one of its MeshIdentities: the identity's trust domain in that
/// zone and the CA certificates its data planes' certificates chain to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneTrust {
    /// The mesh.
    pub mesh: String,
    /// The MeshIdentity's name.
    pub identity: String,
    /// Its trust domain, rendered in the zone.
    pub trust_domain: String,
    /// The CA certificates (PEM), the root last.
    pub ca_bundles: Vec<String>,
}

/// Label on a MeshTrust the global keeps for a zone: the zone-local name (the MeshIdentity's).
pub const DISPLAY_NAME_LABEL: &str = "kuma.io/display-name";
/// Label on a resource saying where it was made (`zone` for those a zone made).
pub const ORIGIN_LABEL: &str = "kuma.io/origin";

impl ZoneTrust {
    /// The name of the MeshTrust the global keeps for this entry of `zone`:
    /// `<identity>.<zone>` (zone names are DNS labels, so the last dot splits them, and no two
    /// zones' MeshTrusts collide).
    pub fn global_name(&self, zone: &str) -> String {
        format!("{}.{zone}", self.identity)
    }

    /// The MeshTrust the global keeps for this entry of `zone`: named [`Self::global_name`],
    /// labelled `kuma.io/origin: zone`, `kuma.io/zone`, `kuma.io/display-name`, with
    /// `status.origin.kri` naming the MeshIdentity in that zone (Kuma's `kri_mid_...`).
    pub fn mesh_trust(&self, zone: &str) -> super::Resource {
        use super::mesh_trust::{
            CaBundle, MeshTrust, MeshTrustSpec, MeshTrustStatus, Origin, PemBundle,
        };
        let mut r = super::Resource::new(
            self.global_name(zone),
            Some(&self.mesh),
            super::Spec::MeshTrust(MeshTrust {
                spec: MeshTrustSpec {
                    trust_domain: self.trust_domain.clone(),
                    ca_bundles: self
                        .ca_bundles
                        .iter()
                        .map(|pem| CaBundle {
                            bundle_type: "Pem".into(),
                            pem: Some(PemBundle { value: pem.clone() }),
                        })
                        .collect(),
                },
                status: Some(MeshTrustStatus {
                    origin: Some(Origin {
                        kri: Some(format!("kri_mid_{}_{zone}__{}_", self.mesh, self.identity)),
                    }),
                }),
            }),
        );
        for (k, v) in [
            (ORIGIN_LABEL, "zone"),
            ("kuma.io/zone", zone),
            (DISPLAY_NAME_LABEL, self.identity.as_str()),
        ] {
            r.meta.labels.insert(k.to_string(), v.to_string());
        }
        r
    }
}

impl ZoneInsightSpec {
    /// Checks how many sessions and CA health entries it holds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        check_count(
            &mut v,
            &FieldPath::from("meshTrusts"),
            self.mesh_trusts.as_ref().map_or(0, Vec::len),
            MAX_CA_HEALTH_ENTRIES,
            "entries",
            "ZoneInsight",
            "report one entry per mesh and MeshIdentity",
        );
        check_count(
            &mut v,
            &FieldPath::from("subscriptions"),
            self.subscriptions.len(),
            MAX_ZONE_SUBSCRIPTIONS,
            "subscriptions",
            "ZoneInsight",
            "report only the latest sessions",
        );
        check_count(
            &mut v,
            &FieldPath::from("caHealth"),
            self.ca_health.len(),
            MAX_CA_HEALTH_ENTRIES,
            "entries",
            "ZoneInsight",
            "report one entry per mesh and backend",
        );
        v.finish()
    }
}

/// One KDS session of a zone with a global replica. On the wire it has Kuma's `KDSSubscription`
/// shape: `status: {lastUpdateTime, total, stat: {<type>: counters}}` and
/// `version: {kumaCp: {version}}`; the older `stats` / `zoneVersion` are still read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Subscription", into = "wire::Subscription")]
pub struct KdsSubscription {
    /// Session id.
    pub id: String,
    /// Which global replica served it.
    pub global_instance_id: String,
    /// When it connected.
    pub connect_time: Option<OffsetDateTime>,
    /// When it disconnected, if it has.
    pub disconnect_time: Option<OffsetDateTime>,
    /// The zone's software version (`version.kumaCp.version`).
    pub zone_version: String,
    /// Per resource type: responses sent, ACKed and NACKed (`status.stat`).
    pub stats: std::collections::BTreeMap<String, KdsTypeStats>,
}

/// [`KdsSubscription`] as Kuma spells it.
mod wire {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;

    use super::KdsTypeStats;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Subscription {
        pub id: String,
        #[serde(default)]
        pub global_instance_id: String,
        #[serde(default, with = "time::serde::rfc3339::option")]
        pub connect_time: Option<OffsetDateTime>,
        #[serde(
            default,
            with = "time::serde::rfc3339::option",
            skip_serializing_if = "Option::is_none"
        )]
        pub disconnect_time: Option<OffsetDateTime>,
        #[serde(default)]
        pub status: Status,
        #[serde(default)]
        pub version: Version,
        /// Before Kuma's names: `stats`.
        #[serde(default, skip_serializing)]
        pub stats: Option<BTreeMap<String, KdsTypeStats>>,
        /// Before Kuma's names: `zoneVersion`.
        #[serde(default, skip_serializing)]
        pub zone_version: Option<String>,
    }

    #[derive(Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Status {
        #[serde(default)]
        pub total: KdsTypeStats,
        #[serde(default)]
        pub stat: BTreeMap<String, KdsTypeStats>,
    }

    #[derive(Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Version {
        #[serde(default)]
        pub kuma_cp: KumaCp,
    }

    #[derive(Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct KumaCp {
        #[serde(default)]
        pub version: String,
    }

    impl From<Subscription> for super::KdsSubscription {
        fn from(w: Subscription) -> Self {
            let stats = match w.stats {
                Some(old) if w.status.stat.is_empty() => old,
                _ => w.status.stat,
            };
            let zone_version = match w.zone_version {
                Some(old) if w.version.kuma_cp.version.is_empty() => old,
                _ => w.version.kuma_cp.version,
            };
            Self {
                id: w.id,
                global_instance_id: w.global_instance_id,
                connect_time: w.connect_time,
                disconnect_time: w.disconnect_time,
                zone_version,
                stats,
            }
        }
    }

    impl From<super::KdsSubscription> for Subscription {
        fn from(s: super::KdsSubscription) -> Self {
            let total = s
                .stats
                .values()
                .fold(KdsTypeStats::default(), |acc, t| KdsTypeStats {
                    responses_sent: acc.responses_sent + t.responses_sent,
                    responses_acknowledged: acc.responses_acknowledged + t.responses_acknowledged,
                    responses_rejected: acc.responses_rejected + t.responses_rejected,
                });
            Self {
                id: s.id,
                global_instance_id: s.global_instance_id,
                connect_time: s.connect_time,
                disconnect_time: s.disconnect_time,
                status: Status {
                    total,
                    stat: s.stats,
                },
                version: Version {
                    kuma_cp: KumaCp {
                        version: s.zone_version,
                    },
                },
                stats: None,
                zone_version: None,
            }
        }
    }
}

/// Counters for one resource type on one KDS session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsTypeStats {
    /// Responses sent.
    #[serde(default)]
    pub responses_sent: u64,
    /// Responses acknowledged.
    #[serde(default)]
    pub responses_acknowledged: u64,
    /// Responses rejected.
    #[serde(default)]
    pub responses_rejected: u64,
}

/// Health of one CA backend of one mesh, as a zone sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaHealth {
    /// The mesh.
    pub mesh: String,
    /// The backend's name.
    pub backend: String,
    /// Whether the last issuance (or token renewal) succeeded.
    pub healthy: bool,
    /// The last error, if unhealthy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    /// When a certificate was last issued successfully.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    /// Certificates issued by this zone from this backend.
    #[serde(default)]
    pub certificates_issued: u64,
    /// The earliest expiry among the certificates this zone serves from it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub earliest_expiry: Option<OffsetDateTime>,
    /// The zone's intermediate CA (vault `mode: intermediate` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<IntermediateHealth>,
}

/// A zone's intermediate CA of one backend (vault `mode: intermediate`): which one it signs
/// with, until when, and how long it could go on signing with Vault unreachable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntermediateHealth {
    /// Its serial.
    #[serde(default)]
    pub serial: String,
    /// Its expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiry: Option<OffsetDateTime>,
    /// When it is due for renewal.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub renew_at: Option<OffsetDateTime>,
    /// Until when new certificates can be signed without Vault (expiry less the certificates'
    /// lifetime): the outage budget's end.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub signs_until: Option<OffsetDateTime>,
    /// The last renewal failure, if the last attempt failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_use_kumas_field_names_and_read_the_old_ones() {
        let mut sub = KdsSubscription {
            id: "s1".into(),
            zone_version: "0.1.0".into(),
            ..Default::default()
        };
        sub.stats.insert(
            "Mesh".into(),
            KdsTypeStats {
                responses_sent: 3,
                responses_acknowledged: 2,
                responses_rejected: 1,
            },
        );
        let v = serde_json::to_value(&sub).unwrap();
        assert_eq!(v["version"]["kumaCp"]["version"], "0.1.0");
        assert_eq!(v["status"]["stat"]["Mesh"]["responsesSent"], 3);
        assert_eq!(v["status"]["total"]["responsesRejected"], 1);
        assert!(v.get("stats").is_none() && v.get("zoneVersion").is_none());
        assert_eq!(serde_json::from_value::<KdsSubscription>(v).unwrap(), sub);
        let old = serde_json::json!({"id": "s1", "zoneVersion": "0.1.0",
            "stats": {"Mesh": {"responsesSent": 3, "responsesAcknowledged": 2, "responsesRejected": 1}}});
        assert_eq!(serde_json::from_value::<KdsSubscription>(old).unwrap(), sub);
    }
}
