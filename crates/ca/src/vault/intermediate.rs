//! `mode: intermediate` (seed 004): each zone holds its own intermediate CA, signed by Vault at
//! `intermediate.caPath`, and signs its data planes' certificates itself. This module is the
//! plan (names, request bodies, response checks) and the held intermediate's lifecycle; the
//! Vault calls are made by `VaultCa`.
//!
//! - The key is made by the zone (EC P-256, in memory) or, with `intermediate.csrPath`, by Vault,
//!   which returns it once; the zone then deletes Vault's copy at once. Either way the key lives
//!   only in this process's memory: never in a store, a cache, a file, a log or the wire.
//! - The intermediate is renewed at 80% of its life (less a jitter of up to 5%), and earlier
//!   when the next leaf would outlive it: no leaf outlives its intermediate. While renewing
//!   fails, the current one keeps signing as long as it can cover a whole leaf, so a Vault outage
//!   stops new issuance only after `not_after - leaf lifetime` (the outage budget).

use std::time::Duration;

use rcgen::{DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::local::LocalCa;
use mosaic_core::{
    Sensitive,
    ca::identity::{inspect_pem, split_pem},
    resource::mesh::VaultFromCp,
};

/// Renewal point, as a share of the intermediate's life.
const RENEW_AT: f64 = 0.8;
/// The largest jitter taken off the renewal point, as a share of the life.
const RENEW_JITTER: f64 = 0.05;
/// How long a failed renewal holds further attempts back while the current intermediate can
/// still sign (so an outage costs one Vault timeout per interval, not one per certificate).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// What a zone's intermediate is and where Vault makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntermediatePlan {
    /// The path that signs the CSR (`{pki}/root/sign-intermediate` by default).
    pub ca_path: String,
    /// Where Vault makes and exports the key and CSR, if it does.
    pub csr_path: Option<String>,
    /// The mount `csr_path` makes keys in (where Mosaic deletes the ones it made).
    pub key_mount: Option<String>,
    /// The intermediate's lifetime.
    pub ttl: Duration,
    /// Its subject common name, naming mesh and zone.
    pub common_name: String,
    /// Its URI SAN, `spiffe://<mesh>` (as the builtin root's).
    pub uri_san: String,
    /// Prefix of the names of the keys Mosaic makes at `csr_path` for this mesh and zone.
    pub key_prefix: String,
}

/// A key and CSR made for a new intermediate.
#[derive(Debug)]
pub struct KeyAndCsr {
    /// The CSR, PEM.
    pub csr_pem: String,
    /// The private key, PEM.
    pub key_pem: Sensitive<String>,
    /// The id of the key in Vault, when Vault made it.
    pub vault_key_id: Option<String>,
}

/// A signed intermediate held in memory, with its key.
#[derive(Debug)]
pub struct HeldIntermediate {
    /// The CA that signs leaves (the intermediate and any chain above it, not the root).
    pub ca: LocalCa,
    /// Serial, hex with colons.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// When to renew it.
    pub renew_at: OffsetDateTime,
    /// The roots that signed it, as Vault returned them (may be empty).
    pub roots: Vec<String>,
}

/// The state of a backend's intermediate, for health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntermediateStatus {
    /// The current intermediate's serial.
    pub serial: Option<String>,
    /// The current intermediate's expiry.
    pub not_after: Option<OffsetDateTime>,
    /// When it is due for renewal.
    pub renew_at: Option<OffsetDateTime>,
    /// Intermediates signed by Vault for this backend since the process started.
    pub signed: u64,
    /// The last renewal failure, cleared by a success.
    pub last_error: Option<String>,
}

// === impl IntermediatePlan ===

impl IntermediatePlan {
    /// The plan of `mesh`'s backend in `zone` (`None` outside a zone: the global's admission
    /// test).
    pub fn new(mesh: &str, zone: Option<&str>, from_cp: &VaultFromCp) -> Self {
        let zone = zone.unwrap_or("admission-test");
        Self {
            ca_path: from_cp.intermediate_ca_path(),
            csr_path: from_cp.intermediate_csr_path().map(str::to_string),
            key_mount: from_cp.intermediate_key_mount().map(str::to_string),
            ttl: from_cp.intermediate_ttl(),
            common_name: format!("Mosaic intermediate CA of mesh {mesh} in zone {zone}"),
            uri_san: format!("spiffe://{mesh}"),
            // Kuma names have no '_': the prefix of one mesh/zone is never that of another.
            key_prefix: format!("mosaic_{mesh}_{zone}_"),
        }
    }

    /// The name of a key made now for an intermediate expiring at `expiry`: the prefix and the
    /// expiry's Unix time, so leftovers can be found (and only Mosaic's) after a crash.
    pub fn key_name(&self, expiry: OffsetDateTime) -> String {
        format!("{}{}", self.key_prefix, expiry.unix_timestamp())
    }

    /// The expiry written in `name`, when it is one of this plan's key names.
    pub fn key_name_expiry(&self, name: &str) -> Option<OffsetDateTime> {
        name.strip_prefix(&self.key_prefix)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    }

    /// The body of the request to `csr_path` (Vault makes an EC P-256 key and returns it).
    pub fn generate_body(&self, key_name: &str) -> Value {
        json!({
            "common_name": self.common_name,
            "key_type": "ec",
            "key_bits": 256,
            "key_name": key_name,
            "exclude_cn_from_sans": true,
            "format": "pem",
            "private_key_format": "pkcs8",
        })
    }

    /// Reads the key and CSR out of `csr_path`'s answer; the error says what is missing.
    pub fn read_generated(&self, resp: &Value) -> Result<KeyAndCsr, String> {
        let data = resp.get("data").ok_or("no data")?;
        let text = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("no data.{k} (csrPath must be an .../exported path)"))
        };
        Ok(KeyAndCsr {
            csr_pem: text("csr")?,
            key_pem: Sensitive::new(text("private_key")?),
            vault_key_id: data
                .get("key_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }

    /// A fresh EC P-256 key and its CSR, made here.
    pub fn zone_key_and_csr(&self) -> Result<KeyAndCsr, String> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| format!("could not generate the intermediate's key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.common_name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names =
            vec![SanType::URI(self.uri_san.as_str().try_into().map_err(
                |_| format!("URI SAN {:?} is not ASCII", self.uri_san),
            )?)];
        let csr = params
            .serialize_request(&key)
            .and_then(|c| c.pem())
            .map_err(|e| format!("could not build the intermediate's CSR: {e}"))?;
        Ok(KeyAndCsr {
            csr_pem: csr,
            key_pem: Sensitive::new(key.serialize_pem()),
            vault_key_id: None,
        })
    }

    /// The body of the request to `ca_path`: CA with path length 0, the plan's name and SAN.
    pub fn sign_body(&self, csr_pem: &str, ttl: Duration) -> Value {
        json!({
            "csr": csr_pem,
            "common_name": self.common_name,
            "uri_sans": self.uri_san,
            "ttl": format!("{}s", ttl.as_secs().max(1)),
            "max_path_length": 0,
            "exclude_cn_from_sans": true,
            "use_csr_values": false,
            "format": "pem",
        })
    }

    /// The signed intermediate of `ca_path`'s answer with its key, renewal point jittered by
    /// `jitter` (0 to 1); the error says what was wrong. `min_life` is the life it must at
    /// least have (the leaves' lifetime).
    pub fn read_signed(
        &self,
        resp: &Value,
        key: &KeyAndCsr,
        min_life: Duration,
        jitter: f64,
    ) -> Result<HeldIntermediate, String> {
        let data = resp.get("data").ok_or("no data")?;
        let cert = data
            .get("certificate")
            .and_then(Value::as_str)
            .ok_or("no data.certificate")?;
        let mut above = Vec::new();
        let mut roots = Vec::new();
        let listed: Vec<&str> = match data.get("ca_chain").and_then(Value::as_array) {
            Some(a) => a.iter().filter_map(Value::as_str).collect(),
            None => data
                .get("issuing_ca")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        };
        let own = split_pem(cert).map_err(|e| e.to_string())?;
        for pem in listed {
            for c in split_pem(pem).map_err(|e| e.to_string())? {
                let info = inspect_pem(&c).map_err(|e| e.to_string())?;
                if info.self_signed {
                    if !roots.contains(&c) {
                        roots.push(c);
                    }
                } else if !own.contains(&c) && !above.contains(&c) {
                    above.push(c);
                }
            }
        }
        let info =
            inspect_pem(cert).map_err(|e| format!("Vault returned a bad certificate: {e}"))?;
        if !info.is_ca {
            return Err(format!(
                "the certificate signed at {} (serial {}) is not a CA: caPath must be a path that signs intermediates, such as pki/root/sign-intermediate",
                self.ca_path, info.serial
            ));
        }
        let life = info.not_after - info.not_before;
        let life = Duration::from_secs(life.whole_seconds().max(0) as u64);
        if life <= min_life {
            return Err(format!(
                "Vault signed the intermediate for {} only ({} was asked for), which is not longer than the data-plane certificates' lifetime ({}): raise the max_ttl of the mount that signs (vault secrets tune -max-lease-ttl=... on the mount of {}) or check its CA's own expiry, or lower dpCert.rotation.expiration",
                mosaic_core::duration::format_duration(life),
                mosaic_core::duration::format_duration(self.ttl),
                mosaic_core::duration::format_duration(min_life),
                self.ca_path
            ));
        }
        let mut bundle = own.concat();
        for c in &above {
            bundle.push_str(c);
        }
        let ca = LocalCa::from_pem(&bundle, key.key_pem.expose()).map_err(|e| {
            format!(
                "the intermediate signed at {} cannot sign: {e}",
                self.ca_path
            )
        })?;
        Ok(HeldIntermediate {
            ca,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
            renew_at: renew_at(info.not_before, info.not_after, jitter),
            roots,
        })
    }
}

// === impl HeldIntermediate ===

impl HeldIntermediate {
    /// Whether it can sign a leaf of `leaf_ttl` now without being due for renewal.
    pub fn fresh_for(&self, now: OffsetDateTime, leaf_ttl: Duration) -> bool {
        now < self.renew_at && self.covers(now, leaf_ttl)
    }

    /// Whether a leaf of `leaf_ttl` made now ends before the intermediate does.
    pub fn covers(&self, now: OffsetDateTime, leaf_ttl: Duration) -> bool {
        now + leaf_ttl <= self.not_after
    }

    /// How long, from `now`, it can go on signing leaves of `leaf_ttl` with Vault unreachable.
    pub fn outage_budget(&self, now: OffsetDateTime, leaf_ttl: Duration) -> Duration {
        let left = self.not_after - now - leaf_ttl;
        Duration::from_secs(left.whole_seconds().max(0) as u64)
    }
}

/// The renewal point of an intermediate valid from `not_before` to `not_after`: 80% of its life,
/// less `jitter` (0 to 1) times 5% of it.
pub fn renew_at(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    jitter: f64,
) -> OffsetDateTime {
    let life = (not_after - not_before).as_seconds_f64().max(0.0);
    let share = RENEW_AT - RENEW_JITTER * jitter.clamp(0.0, 1.0);
    not_before + time::Duration::seconds_f64(life * share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> IntermediatePlan {
        let from_cp: VaultFromCp = serde_json::from_value(json!({
            "address": "http://vault:8200",
            "pki": "pki",
            "mode": "intermediate",
            "intermediate": {"csrPath": "pki_int/intermediate/generate/exported", "ttl": "10h"},
        }))
        .unwrap();
        IntermediatePlan::new("default", Some("zone-1"), &from_cp)
    }

    #[test]
    fn the_plan_follows_the_conf_and_its_defaults() {
        let p = plan();
        assert_eq!(p.ca_path, "pki/root/sign-intermediate");
        assert_eq!(
            p.csr_path.as_deref(),
            Some("pki_int/intermediate/generate/exported")
        );
        assert_eq!(p.key_mount.as_deref(), Some("pki_int"));
        assert_eq!(p.ttl, Duration::from_secs(36_000));
        assert!(p.common_name.contains("default") && p.common_name.contains("zone-1"));
        assert_eq!(p.uri_san, "spiffe://default");
        let bare: VaultFromCp =
            serde_json::from_value(json!({"pki": "/root-pki/", "mode": "intermediate"})).unwrap();
        let p = IntermediatePlan::new("m", None, &bare);
        assert_eq!(p.ca_path, "root-pki/root/sign-intermediate");
        assert_eq!((p.csr_path, p.key_mount), (None, None));
        assert_eq!(p.ttl, Duration::from_secs(720 * 3600));
    }

    #[test]
    fn key_names_carry_the_expiry_and_are_only_this_mesh_and_zones() {
        let p = plan();
        let at = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        let name = p.key_name(at);
        assert_eq!(name, "mosaic_default_zone-1_1900000000");
        assert_eq!(p.key_name_expiry(&name), Some(at));
        // Another zone's key (zone-10), another mesh's, and keys Mosaic did not make.
        for other in [
            "mosaic_default_zone-10_1900000000",
            "mosaic_default-x_zone-1_1",
            "root-2024",
            "mosaic_default_zone-1_x",
        ] {
            assert_eq!(p.key_name_expiry(other), None, "{other}");
        }
    }

    #[test]
    fn renewal_is_at_80_percent_less_the_jitter_and_earlier_when_a_leaf_would_outlive_it() {
        let start = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let end = start + time::Duration::hours(100);
        assert_eq!(renew_at(start, end, 0.0), start + time::Duration::hours(80));
        assert_eq!(renew_at(start, end, 1.0), start + time::Duration::hours(75));
        let p = plan();
        let key = p.zone_key_and_csr().unwrap();
        let (root, root_key) =
            LocalCa::generate_root("default", "root", Duration::from_secs(86_400 * 30)).unwrap();
        let ca = LocalCa::from_pem(&root, root_key.expose()).unwrap();
        let held = HeldIntermediate {
            ca,
            serial: "01".into(),
            not_before: start,
            not_after: end,
            renew_at: renew_at(start, end, 0.0),
            roots: vec![],
        };
        let leaf = Duration::from_secs(10 * 3600);
        assert!(held.fresh_for(start + time::Duration::hours(10), leaf));
        // Past the renewal point: not fresh, but still covers a leaf.
        let late = start + time::Duration::hours(80);
        assert!(!held.fresh_for(late, leaf) && held.covers(late, leaf));
        // Before the renewal point, a leaf made at hour 77 would end after hour 100: renew
        // first, and it cannot sign it.
        let long = Duration::from_secs(23 * 3600 + 1);
        let at = start + time::Duration::hours(77);
        assert!(!held.fresh_for(at, long) && !held.covers(at, long));
        let leaf = Duration::from_secs(24 * 3600);
        assert_eq!(
            held.outage_budget(start + time::Duration::hours(50), leaf),
            Duration::from_secs(26 * 3600)
        );
        assert_eq!(
            held.outage_budget(start + time::Duration::hours(99), leaf),
            Duration::ZERO
        );
        assert!(key.csr_pem.contains("CERTIFICATE REQUEST") && key.vault_key_id.is_none());
    }

    #[test]
    fn generated_answers_without_the_key_are_refused_and_the_key_is_redacted() {
        let p = plan();
        let err = p
            .read_generated(&json!({"data": {"csr": "x"}}))
            .unwrap_err();
        assert!(
            err.contains("private_key") && err.contains("exported"),
            "{err}"
        );
        let got = p
            .read_generated(&json!({"data": {"csr": "c", "private_key": "SECRET", "key_id": "k1"}}))
            .unwrap();
        assert_eq!(got.vault_key_id.as_deref(), Some("k1"));
        assert!(!format!("{got:?}").contains("SECRET"));
    }
}
