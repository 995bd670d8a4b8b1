//! `mode: intermediate` (seed 004): each zone holds an intermediate CA that Vault signs once and
//! signs its data planes' certificates itself. Three benchmarks, each on a real OpenBao:
//!
//! Module map:
//! - [`throughput`]: certificates per second through the zone issuer in intermediate mode vs the
//!   direct Vault client of `issuance` on the same OpenBao (EC P-256 throughout).
//! - [`calls`]: the Vault requests (from OpenBao's audit log, by path) that 1,000 new data
//!   planes cost, on seed 004's Vault set-up, with zone-made keys and with `csrPath`.
//! - [`outage`]: how long a zone keeps issuing new certificates once Vault is stopped, next to
//!   the arithmetic (the intermediate's remaining life minus the leaf lifetime).
//!
//! This file: what they share, the Vault backend in intermediate mode and an EC P-256 root.

pub mod calls;
pub mod outage;
pub mod throughput;

use std::time::Duration;

use mosaic_core::ca::identity::{CertInfo, inspect_pem, split_pem};
use mosaic_testkit::OpenBao;
use serde_json::{Value, json};

use crate::error::BenchError;

/// `conf.fromCp` of a Vault backend in `mode: intermediate` at `addr`, signing at
/// `{pki}/root/sign-intermediate` (the default `caPath`), Vault making the key at `csr_path`
/// when set, intermediates of `ttl`, authenticating with `auth`.
pub fn from_cp(addr: &str, pki: &str, csr_path: Option<&str>, ttl: &str, auth: Value) -> Value {
    let mut intermediate = json!({
        "caPath": format!("{pki}/root/sign-intermediate"),
        "ttl": ttl,
    });
    if let Some(csr) = csr_path {
        intermediate["csrPath"] = json!(csr);
    }
    json!({
        "address": addr,
        "mode": "intermediate",
        "pki": pki,
        "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
        "intermediate": intermediate,
        "auth": auth,
    })
}

/// Mounts PKI at `mount` with an internally generated EC P-256 root for mesh `mesh` (URI SAN
/// `spiffe://<mesh>`, 10 years), so both sides of a comparison sign with the same kind of key.
pub async fn ec_root(bao: &OpenBao, mount: &str, mesh: &str) -> Result<(), BenchError> {
    bao.enable_secrets(mount, "pki").await?;
    bao.tune_max_lease_ttl(mount, "87600h").await?;
    bao.write(
        &format!("{mount}/root/generate/internal"),
        json!({
            "common_name": format!("Mosaic Mesh {mesh}"),
            "uri_sans": format!("spiffe://{mesh}"),
            "ttl": "87600h",
            "key_type": "ec",
            "key_bits": 256,
        }),
    )
    .await?;
    Ok(())
}

/// The intermediate of a leaf chain (leaf, intermediate, ...): its PEM and what it says.
pub fn intermediate_of(chain_pem: &str) -> Result<(String, CertInfo), BenchError> {
    let pems =
        split_pem(chain_pem).map_err(|e| BenchError::Setup(format!("a certificate chain: {e}")))?;
    let pem = pems.get(1).cloned().ok_or_else(|| {
        BenchError::Setup(format!(
            "the chain holds {} certificate(s), not leaf + intermediate",
            pems.len()
        ))
    })?;
    let info =
        inspect_pem(&pem).map_err(|e| BenchError::Setup(format!("the intermediate: {e}")))?;
    Ok((pem, info))
}

/// `90 s` / `1.25 s`.
pub fn fmt_secs(d: f64) -> String {
    if d.abs() >= 10.0 {
        format!("{d:.1} s")
    } else {
        format!("{d:.2} s")
    }
}

/// A duration as `120s` (what `intermediate.ttl` and `dpCert.rotation.expiration` take).
pub fn as_ttl(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}
