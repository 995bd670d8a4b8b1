//! `IssuerSettings`: how gently the issuer treats its CAs, and `ZoneVault`: the zone's name
//! and the Vault credentials its config holds (`[[vault_auth]]`).

use std::{collections::BTreeMap, time::Duration};

use mosaic_ca::vault::{AuthMethod, VaultZone};
use mosaic_core::{
    datasource::DataSource,
    resource::mesh::{DEFAULT_SA_TOKEN_FILE, default_mount},
};

use crate::config::{VaultAuthConfig, ZoneConfig};

/// Tuning of the [`super::Issuer`].
#[derive(Clone, Debug)]
pub struct IssuerSettings {
    /// Most CA requests in flight at once, across every mesh and backend.
    pub max_in_flight: usize,
    /// Consecutive failures after which a backend's circuit opens.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses requests before letting one trial through (never more
    /// than one trial in flight); when a trial succeeds every waiting certificate is retried.
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
    /// How long the first certificates signed by a new root wait for every SDS stream of the
    /// mesh to confirm a trust bundle holding it (then they are served anyway).
    pub bundle_confirm_timeout: Duration,
    /// How often the roots of every backend in use are read again (an unauthenticated read, e.g.
    /// Vault's `{pki}/cert/ca_chain`), so a root rotated by another zone's first certificate or
    /// by an operator reaches this zone's bundles, and superseded roots leave them on time.
    pub roots_refresh_interval: Duration,
    /// The zone's name (what `{{ zone }}` expands to) and its own Vault credentials.
    pub vault: ZoneVault,
}

/// What this zone brings to the Mesh's Vault backends.
#[derive(Clone, Debug, Default)]
pub struct ZoneVault {
    /// The zone's name; `None` (tests of the issuer alone) leaves `{{ zone }}` unexpandable.
    pub zone: Option<String>,
    /// Credentials by (mesh, backend), replacing that backend's `conf.fromCp.auth` here.
    pub credentials: BTreeMap<(String, String), AuthMethod>,
}

// === impl ZoneVault ===

impl ZoneVault {
    /// The zone's name and the credentials of its `[[vault_auth]]` entries.
    pub fn from_config(config: &ZoneConfig) -> Self {
        Self {
            zone: Some(config.zone.as_str().to_string()),
            credentials: config
                .vault_auth
                .iter()
                .map(|e| ((e.mesh.clone(), e.backend.clone()), auth_method(e)))
                .collect(),
        }
    }

    /// What the zone brings to backend `backend` of `mesh`.
    pub fn for_backend(&self, mesh: &str, backend: &str) -> VaultZone {
        VaultZone {
            zone: self.zone.clone(),
            credentials: self
                .credentials
                .get(&(mesh.to_string(), backend.to_string()))
                .cloned(),
        }
    }
}

/// The auth method of one `[[vault_auth]]` entry (validated: exactly one method is set).
fn auth_method(e: &VaultAuthConfig) -> AuthMethod {
    let file = |p: &std::path::Path| DataSource {
        file: Some(p.to_string_lossy().into_owned()),
        ..DataSource::default()
    };
    let mount = |m: &Option<String>, default: &str| {
        m.as_deref()
            .map(|m| m.trim().trim_matches('/'))
            .filter(|m| !m.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    if let Some(a) = &e.approle {
        return AuthMethod::AppRole {
            mount: mount(&a.mount_path, default_mount::APPROLE),
            role_id: a.role_id.clone(),
            secret_id: file(&a.secret_id_file),
        };
    }
    if let Some(k) = &e.kubernetes {
        return AuthMethod::Kubernetes {
            mount: mount(&k.mount_path, default_mount::KUBERNETES),
            role: k.role.clone(),
            token_file: k
                .service_account_token_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_SA_TOKEN_FILE.to_string()),
        };
    }
    AuthMethod::Token(file(
        e.token_file
            .as_deref()
            .unwrap_or_else(|| std::path::Path::new("")),
    ))
}

// === impl IssuerSettings ===

impl Default for IssuerSettings {
    /// 16 requests in flight, the circuit opens after 5 consecutive failures, one trial every
    /// 250 ms while open (a single trial in flight: gentle on a hung Vault, quick to notice a
    /// returned one), backoff
    /// 1 s → 60 s, rotation jitter 5% of the lifetime, CA health reported at most once a second,
    /// token TTLs re-read every 10 s, a new root's bundle confirmed within 10 s, roots re-read
    /// every 60 s; no zone name and no zone-held Vault credentials.
    fn default() -> Self {
        Self {
            max_in_flight: 16,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_millis(250),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rotation_jitter: 0.05,
            health_report_interval: Duration::from_secs(1),
            token_report_interval: Duration::from_secs(10),
            bundle_confirm_timeout: Duration::from_secs(10),
            roots_refresh_interval: Duration::from_secs(60),
            vault: ZoneVault::default(),
        }
    }
}
