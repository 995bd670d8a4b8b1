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
}

impl ZoneInsightSpec {
    /// Checks how many sessions and CA health entries it holds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
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

/// One KDS session of a zone with a global replica.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsSubscription {
    /// Session id.
    pub id: String,
    /// Which global replica served it.
    #[serde(default)]
    pub global_instance_id: String,
    /// When it connected.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub connect_time: Option<OffsetDateTime>,
    /// When it disconnected, if it has.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub disconnect_time: Option<OffsetDateTime>,
    /// The zone's software version.
    #[serde(default)]
    pub zone_version: String,
    /// Per resource type: responses sent, ACKed and NACKed.
    #[serde(default)]
    pub stats: std::collections::BTreeMap<String, KdsTypeStats>,
}

/// Counters for one resource type on one KDS session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsTypeStats {
    /// Responses sent.
    pub responses_sent: u64,
    /// Responses acknowledged.
    pub responses_acknowledged: u64,
    /// Responses rejected.
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
}
