//! `KdsStatus`: whether the zone is connected to a global, and the last failure (for `/ready`,
//! the `mosaic_zone_kds_connected` gauge and tests).

use serde::Serialize;

/// The KDS client's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsStatus {
    /// Both streams are open.
    pub connected: bool,
    /// The global address of the current (or last) session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// Why the last attempt or session failed (never holds the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Sessions established since start.
    pub sessions: u64,
}
