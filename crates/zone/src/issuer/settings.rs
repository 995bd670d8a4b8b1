//! `IssuerSettings`: how gently the issuer treats its CAs.

use std::time::Duration;

/// Tuning of the [`super::Issuer`].
#[derive(Clone, Debug)]
pub struct IssuerSettings {
    /// Most CA requests in flight at once, across every mesh and backend.
    pub max_in_flight: usize,
    /// Consecutive failures after which a backend's circuit opens.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses requests before letting one trial through.
    pub breaker_cooldown: Duration,
    /// First retry delay after a failure (jittered, doubled per failure).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Rotation happens at 80% of a certificate's lifetime minus up to this fraction of it
    /// (random per rotation), so certificates issued together do not renew together.
    pub rotation_jitter: f64,
    /// Shortest time between two CA health reports to the hook.
    pub health_report_interval: Duration,
    /// How often the Vault tokens' remaining TTLs are re-read into
    /// `mosaic_vault_token_ttl_seconds` (no Vault call).
    pub token_report_interval: Duration,
}

// === impl IssuerSettings ===

impl Default for IssuerSettings {
    /// 16 requests in flight, the circuit opens after 5 consecutive failures for 30 s, backoff
    /// 1 s → 60 s, rotation jitter 5% of the lifetime, CA health reported at most once a second,
    /// token TTLs re-read every 10 s.
    fn default() -> Self {
        Self {
            max_in_flight: 16,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rotation_jitter: 0.05,
            health_report_interval: Duration::from_secs(1),
            token_report_interval: Duration::from_secs(10),
        }
    }
}
