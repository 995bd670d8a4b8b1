//! `[api]`, the HTTP API section the global and the zones share: `api.listen`, the admin rule's
//! keys, the HTTPS API (Kuma's `apiServer.https`) and `api.unknown_fields`; and the rules that
//! resolve and check them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use mosaic_core::resource::UnknownFields;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Sources, optional_path};

/// `[api]` of a control plane (the global's and a zone's alike).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `api.listen`: address of the HTTP API. A non-loopback address needs `admin_token_file`
    /// (the server refuses to start otherwise).
    pub listen: SocketAddr,
    /// `api.admin_token_file`: a file holding the admin token. Callers present it (or the token
    /// generated into `<store.data_dir>/admin-token`) as `Authorization: Bearer <token>`; when
    /// it is set, loopback callers need it too unless `localhost_is_admin = true`.
    #[serde(default, with = "optional_path")]
    pub admin_token_file: Option<PathBuf>,
    /// `api.localhost_is_admin` (Kuma's `localhostIsAdmin`): callers on a loopback address are
    /// admins without a token. Unset: true without `admin_token_file`, false with it; see
    /// [`ApiConfig::effective_localhost_is_admin`].
    #[serde(default)]
    pub localhost_is_admin: Option<bool>,
    /// `api.https_enabled` (Kuma's `apiServer.https.enabled`): serve the same API over HTTPS
    /// on `https_listen` too (plain HTTP stays on `listen`).
    #[serde(default = "default_true")]
    pub https_enabled: bool,
    /// `api.https_listen` (Kuma's `apiServer.https.interface`/`port`): address of the HTTPS API.
    /// Unset: `127.0.0.1:5682`, unless another listener of the server is configured on that port
    /// (the global's `raft.listen` was 5682 before 5689), in which case the HTTPS API is off and
    /// the log says so; see [`ApiConfig::effective_https_listen`].
    #[serde(default)]
    pub https_listen: Option<SocketAddr>,
    /// `api.tls_cert` (Kuma's `apiServer.https.tlsCertFile`): PEM certificate chain of the
    /// HTTPS API. Unset: a CA and a certificate are generated into `store.data_dir`
    /// (`api-server-ca.pem` is the CA clients trust).
    #[serde(default, with = "optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// `api.tls_key`: PEM private key matching `tls_cert`.
    #[serde(default, with = "optional_path")]
    pub tls_key: Option<PathBuf>,
    /// `api.unknown_fields` (Mosaic's addition): `ignore` (default, Kuma's behaviour: a field a
    /// resource document has and Mosaic does not know is dropped, with a `Warning` header and an
    /// info log) or `refuse` (400 naming each such field). Also applies to the Dataplanes zones
    /// sync up over KDS (the global) and data planes register over SDS (a zone).
    #[serde(default)]
    pub unknown_fields: UnknownFields,
}

fn default_true() -> bool {
    true
}

/// Kuma's HTTPS API address: `apiServer.https.port` 5682, on loopback as `api.listen`'s default.
pub const DEFAULT_HTTPS_API_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5682);

/// The one place `api.localhost_is_admin` is resolved, for the global and the zone alike: the
/// explicit value if set, else true exactly when no `api.admin_token_file` is set (with one, the
/// contract says every request needs the token).
pub fn resolve_localhost_is_admin(explicit: Option<bool>, admin_token_file: Option<&Path>) -> bool {
    explicit.unwrap_or(admin_token_file.is_none())
}

/// Whether listeners on `a` and `b` would take the same port: the same port, and the same IP or
/// either of them a wildcard (`0.0.0.0`, `::`).
pub fn listens_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

// === impl ApiConfig ===

impl Default for ApiConfig {
    /// The contract's defaults: HTTP on `127.0.0.1:5681`, HTTPS on its default address, no
    /// admin token file, certificates generated, unknown fields ignored.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5681)),
            admin_token_file: None,
            localhost_is_admin: None,
            https_enabled: true,
            https_listen: None,
            tls_cert: None,
            tls_key: None,
            unknown_fields: UnknownFields::Ignore,
        }
    }
}

impl ApiConfig {
    /// Whether loopback callers are admins without a token: `api.localhost_is_admin` if set,
    /// else true exactly when no `api.admin_token_file` is set ([`resolve_localhost_is_admin`]).
    pub fn effective_localhost_is_admin(&self) -> bool {
        resolve_localhost_is_admin(self.localhost_is_admin, self.admin_token_file.as_deref())
    }

    /// Where the HTTPS API listens: `None` when `api.https_enabled = false`, or when
    /// `api.https_listen` is unset and its default would take the port of one of `taken` (the
    /// server's other listeners: config key, address), see [`ApiConfig::https_default_taken_by`]:
    /// an explicit older setting keeps its port (the global's `raft.listen`, which was 5682
    /// before it moved to 5689).
    pub fn effective_https_listen(
        &self,
        taken: &[(&'static str, SocketAddr)],
    ) -> Option<SocketAddr> {
        match (self.https_enabled, self.https_listen) {
            (false, _) => None,
            (true, Some(listen)) => Some(listen),
            (true, None) => self
                .https_default_taken_by(taken)
                .is_none()
                .then_some(DEFAULT_HTTPS_API_LISTEN),
        }
    }

    /// The listener of `taken` (config key, address) that takes the port of the HTTPS API's
    /// default address, if any.
    pub fn https_default_taken_by(
        &self,
        taken: &[(&'static str, SocketAddr)],
    ) -> Option<(&'static str, SocketAddr)> {
        taken
            .iter()
            .copied()
            .find(|(_, addr)| listens_overlap(*addr, DEFAULT_HTTPS_API_LISTEN))
    }

    /// Checks the section: `api.tls_cert`/`api.tls_key` set together, and an explicit
    /// `api.https_listen` that takes no port of `taken` (config key, address) and, outside
    /// loopback, comes with `api.admin_token_file` (as `api.listen`).
    pub fn validate(
        &self,
        sources: &Sources,
        taken: &[(&'static str, SocketAddr)],
    ) -> Result<(), ConfigError> {
        sources.check_tls_pair("api", &self.tls_cert, &self.tls_key)?;
        let (true, Some(listen)) = (self.https_enabled, self.https_listen) else {
            return Ok(());
        };
        if let Some((key, addr)) = taken.iter().find(|(_, a)| listens_overlap(*a, listen)) {
            return Err(sources.invalid(
                "api.https_listen",
                format!(
                    "{listen} takes the port of {key} ({addr}); give one of them another port (the HTTPS API's default is {DEFAULT_HTTPS_API_LISTEN}, raft's 5689), or set api.https_enabled = false"
                ),
            ));
        }
        if self.admin_token_file.is_none() && !mosaic_core::api::is_loopback(listen.ip()) {
            return Err(sources.invalid(
                "api.https_listen",
                format!(
                    "{listen} is not a loopback address, so the HTTPS API would be reachable from other hosts, and api.admin_token_file is not set: set api.admin_token_file so every caller needs that token, or listen on 127.0.0.1:{}",
                    listen.port()
                ),
            ));
        }
        Ok(())
    }
}
