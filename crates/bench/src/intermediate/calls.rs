//! `intermediate-calls`: the Vault requests that new data planes cost in `mode: intermediate`,
//! counted from OpenBao's audit log by path and operation, per 1,000 new data planes.
//!
//! OpenBao with a file audit device, set up as seed 004 writes it (`testkit::setup_seed004`:
//! openssl root loaded with `pki/config/ca`, `pki_int`, policy `gen-int-ca-istio`, Kubernetes
//! auth role `gen-int-ca-istio` answered by a fake TokenReview API). Twice, once with zone-made
//! keys and once with the seed's `csrPath` (Vault makes the key at
//! `pki_int/intermediate/generate/exported`): `zones` fresh zone issuers (each its own store,
//! zone name and Vault login) issue certificates for `dataplanes` new data planes between them;
//! every audit entry of the window is counted.

use std::collections::BTreeMap;

use mosaic_testkit::{
    FakeKubernetesApi, OpenBao, SEED004_CA_PATH, SEED004_CSR_PATH, SEED004_ROLE,
    SEED004_SA_NAMESPACE, SEED004_SERVICE_ACCOUNT,
};
use mosaic_zone::issuer::{IssuerSettings, ZoneVault};
use serde_json::{Value, json};

use super::from_cp;
use crate::{
    error::BenchError,
    load::Tally,
    report::{Report, Verdict},
    zone_issuer::{ZoneIssuer, vault_backend},
};

/// Options of the `intermediate-calls` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// Zones (each its own issuer and intermediate).
    pub zones: usize,
    /// New data planes, spread evenly over the zones.
    pub dataplanes: usize,
    /// Requests in flight per zone.
    pub concurrency: usize,
}

/// The Vault requests of one key mode's window.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModeCalls {
    /// `zone-made key` or `csrPath`.
    pub mode: String,
    /// Certificates issued (new data planes).
    pub issued: usize,
    /// Failures.
    pub errors: usize,
    /// Requests by `"<operation> <path>"` (key ids replaced by `{id}`).
    pub calls: BTreeMap<String, usize>,
    /// Requests to `caPath` (one per intermediate).
    pub sign_intermediate: usize,
    /// Requests to `<pki>/issue/*` and `<pki>/sign/*`, any mount (per-certificate calls).
    pub per_certificate: usize,
    /// Every request of the window.
    pub total: usize,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// `"<operation> <path>"` of an audit request, with the key id of `<mount>/key/<id>` replaced.
fn call_of(entry: &Value) -> Option<String> {
    if entry["type"] != "request" {
        return None;
    }
    let path = entry["request"]["path"].as_str()?;
    let op = entry["request"]["operation"].as_str().unwrap_or("?");
    let path = match path.split_once("/key/") {
        Some((mount, _)) => format!("{mount}/key/{{id}}"),
        None => path.to_string(),
    };
    Some(format!("{op} {path}"))
}

fn is_per_certificate(call: &str) -> bool {
    let path = call.split_once(' ').map_or(call, |(_, p)| p);
    let mut parts = path.split('/');
    let _mount = parts.next();
    matches!(parts.next(), Some("issue" | "sign" | "sign-verbatim"))
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    mosaic_testkit::ensure_crypto_provider();
    let bao = OpenBao::start_with_audit(None).await?;
    let kube = FakeKubernetesApi::start(SEED004_SA_NAMESPACE, SEED004_SERVICE_ACCOUNT).await?;
    let work = tempfile::Builder::new()
        .prefix("mosaic-bench-seed004-")
        .tempdir()
        .map_err(BenchError::io("creating a temporary directory"))?;
    bao.setup_seed004(work.path(), &kube.addr()).await?;
    let token_file = work.path().join("sa-token");
    std::fs::write(&token_file, kube.jwt())
        .map_err(BenchError::io("writing the service-account token"))?;
    let auth = json!({"kubernetes": {
        "role": SEED004_ROLE,
        "serviceAccountTokenFile": token_file.display().to_string(),
    }});
    let mut modes = Vec::new();
    for (mode, csr) in [
        ("zone-made key", None),
        ("csrPath (Vault makes the key)", Some(SEED004_CSR_PATH)),
    ] {
        let backend = vault_backend(from_cp(bao.addr(), "pki", csr, "720h", auth.clone()), "24h");
        modes.push(window(&bao, mode, &backend, opts).await?);
    }
    Ok(report(modes, opts))
}

/// One key mode: fresh zones issue the data planes' certificates; the audit log's new entries
/// are counted.
async fn window(
    bao: &OpenBao,
    mode: &str,
    backend: &Value,
    opts: &Options,
) -> Result<ModeCalls, BenchError> {
    let zones = opts.zones.max(1);
    let before = bao.audit_entries()?.len();
    let tag = if mode.starts_with("csr") {
        "csr"
    } else {
        "zone"
    };
    let mut issuers = Vec::new();
    for z in 0..zones {
        let settings = IssuerSettings {
            vault: ZoneVault {
                zone: Some(format!("{tag}-zone-{z}")),
                ..ZoneVault::default()
            },
            ..IssuerSettings::default()
        };
        issuers.push(ZoneIssuer::new(backend.clone(), None, settings, None)?);
    }
    let mut runs = tokio::task::JoinSet::new();
    for (z, issuer) in issuers.into_iter().enumerate() {
        let n = opts.dataplanes / zones + usize::from(z < opts.dataplanes % zones);
        let c = opts.concurrency;
        runs.spawn(async move {
            let t = issuer.run(&format!("dp-{z}"), 0, n, c).await;
            (t, issuer)
        });
    }
    let mut tally = Tally::default();
    let mut done = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (t, issuer) =
            joined.map_err(|e| BenchError::Setup(format!("a zone's issuance task: {e}")))?;
        tally.add(t);
        done.push(issuer);
    }
    // The audit device writes each entry before Vault answers; every call is in the file now.
    let entries = bao.audit_entries()?;
    let mut calls = BTreeMap::new();
    for call in entries[before.min(entries.len())..]
        .iter()
        .filter_map(call_of)
    {
        *calls.entry(call).or_insert(0) += 1;
    }
    drop(done);
    let sign_intermediate = calls
        .iter()
        .filter(|(k, _)| k.ends_with(&format!(" {SEED004_CA_PATH}")))
        .map(|(_, v)| v)
        .sum();
    let per_certificate = calls
        .iter()
        .filter(|(k, _)| is_per_certificate(k))
        .map(|(_, v)| v)
        .sum();
    Ok(ModeCalls {
        mode: mode.to_string(),
        issued: tally.issued,
        errors: tally.errors,
        total: calls.values().sum(),
        calls,
        sign_intermediate,
        per_certificate,
        first_error: tally.first_error,
    })
}

fn per_1000(calls: usize, dataplanes: usize) -> f64 {
    if dataplanes == 0 {
        0.0
    } else {
        calls as f64 * 1000.0 / dataplanes as f64
    }
}

fn report(modes: Vec<ModeCalls>, opts: &Options) -> Report {
    let zones = opts.zones.max(1);
    let clean = modes
        .iter()
        .all(|m| m.errors == 0 && m.issued == opts.dataplanes);
    let met = modes
        .iter()
        .all(|m| m.sign_intermediate == zones && m.per_certificate == 0);
    let verdict = match (clean, opts.dataplanes >= 1000) {
        (false, _) => Verdict::Missed,
        (true, false) => Verdict::NotMeasured,
        (true, true) => Verdict::from_check(Some(met)),
    };
    let mut rows = Vec::new();
    for m in &modes {
        for (call, n) in &m.calls {
            let (op, path) = call.split_once(' ').unwrap_or(("?", call));
            rows.push(vec![
                m.mode.clone(),
                format!("`{path}`"),
                op.to_string(),
                format!("{n}"),
                format!("{:.1}", per_1000(*n, m.issued)),
                format!("{:.1}", *n as f64 / zones as f64),
            ]);
        }
        rows.push(vec![
            format!("**{}: all**", m.mode),
            format!("{} certificates, {} errors", m.issued, m.errors),
            String::new(),
            format!("**{}**", m.total),
            format!("**{:.1}**", per_1000(m.total, m.issued)),
            format!("{:.1}", m.total as f64 / zones as f64),
        ]);
    }
    let reason = modes
        .iter()
        .map(|m| {
            format!(
                "{}: {} sign-intermediate for {} zones, {} per-certificate calls, {} calls in all for {} data planes",
                m.mode, m.sign_intermediate, zones, m.per_certificate, m.total, m.issued
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut notes = vec![
        format!(
            "{} new data planes spread over {zones} zones (each a fresh zone issuer: its own store, zone name, Vault login and intermediate), {} certificate requests in flight per zone, unique dataplane names; counted from OpenBao's file audit device: every request entry written while they were issued, by operation and path (`<mount>/key/{{id}}` stands for the key ids).",
            opts.dataplanes, opts.concurrency
        ),
        format!(
            "Vault as seed 004 sets it up (openssl root loaded with `pki/config/ca`, `pki_int`, policy `gen-int-ca-istio` verbatim, Kubernetes auth role `gen-int-ca-istio` against a fake TokenReview API); the Mesh's backend: `mode: intermediate`, `pki: pki`, `caPath: {SEED004_CA_PATH}`, `ttl: 720h`, 24h certificates; `csrPath: {SEED004_CSR_PATH}` in the second run."
        ),
        "What each call is: `update auth/kubernetes/login` one login per zone; `update pki/root/sign-intermediate` one intermediate per zone; `read pki/cert/ca_chain` the zone reading the root for its trust bundle (unauthenticated; it is read again every 60 s while the zone runs, `roots_refresh_interval`); with `csrPath`, `update pki_int/intermediate/generate/exported` (Vault makes the key and CSR), `delete pki_int/key/{id}` (the zone deletes Vault's copy of the key at once) and `list pki_int/keys/` (the sweep of keys this zone left behind for expired intermediates). No `issue`/`sign` call: the zone signs every leaf.".into(),
        "Not counted here: the global's admission of the Mesh, which signs one short-lived test intermediate per Mesh write (and, with csrPath, generates and deletes its key); and renewals, one intermediate per zone per 80% of `intermediate.ttl` (about 576h of the default 720h).".into(),
    ];
    notes.extend(modes.iter().filter_map(|m| {
        m.first_error
            .as_ref()
            .map(|e| format!("{}: first error: {e}", m.mode))
    }));
    Report {
        name: "intermediate-calls".into(),
        title: "Vault calls per 1,000 new data planes in intermediate mode".into(),
        aim: "1 sign-intermediate per zone and no per-certificate call, at 1,000 new data planes"
            .into(),
        verdict,
        verdict_reason: reason,
        columns: [
            "key made by",
            "Vault path",
            "operation",
            "calls",
            "per 1,000 new data planes",
            "per zone",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
        data: json!({
            "modes": modes,
            "zones": zones,
            "dataplanes": opts.dataplanes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_by_operation_and_path_with_key_ids_folded() {
        let e = |op: &str, path: &str| json!({"type": "request", "request": {"operation": op, "path": path}});
        assert_eq!(
            call_of(&e("delete", "pki_int/key/8c1f")).as_deref(),
            Some("delete pki_int/key/{id}")
        );
        assert_eq!(
            call_of(&e("update", "pki/root/sign-intermediate")).as_deref(),
            Some("update pki/root/sign-intermediate")
        );
        assert_eq!(call_of(&json!({"type": "response"})), None);
        assert!(is_per_certificate("update pki_int/issue/web"));
        assert!(is_per_certificate("update pki/sign/web"));
        assert!(!is_per_certificate("update pki/root/sign-intermediate"));
        assert!(!is_per_certificate(
            "update pki_int/intermediate/generate/exported"
        ));
    }
}
