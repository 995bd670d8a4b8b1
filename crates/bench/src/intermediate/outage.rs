//! `intermediate-outage`: how long a zone in `mode: intermediate` keeps giving new data planes
//! certificates once Vault is stopped, next to what it should be by construction.
//!
//! One OpenBao (EC P-256 root at `pki`, a token allowed `pki/root/sign-intermediate` only) and
//! one zone issuer whose Mesh asks for short intermediates (`intermediate.ttl`, default 60 s) and
//! short leaves (`dpCert.rotation.expiration`, default 20 s). The zone's first certificate has
//! Vault sign its intermediate; `stop_after` later the OpenBao process is killed; from then on a
//! new data plane asks for a certificate every `interval` until one is refused.
//!
//! By construction the zone signs a leaf while `now + leaf lifetime <= intermediate not_after`,
//! so the predicted budget is `not_after - (time Vault stopped) - leaf lifetime`. Measured: the
//! last certificate obtained after the stop, and the first refusal; the prediction must fall
//! between them (the granularity is the time between those two requests).

use std::time::{Duration, Instant};

use mosaic_testkit::{OpenBao, TokenSpec};
use mosaic_zone::issuer::{IssuerSettings, ZoneVault};
use serde_json::json;
use time::OffsetDateTime;

use super::{as_ttl, ec_root, fmt_secs, from_cp, intermediate_of};
use crate::{
    error::BenchError,
    report::{Report, Verdict},
    zone_issuer::{MESH, TOKEN_SECRET, ZoneIssuer, vault_backend},
};

const PKI: &str = "pki";

/// Options of the `intermediate-outage` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// `intermediate.ttl`.
    pub intermediate_ttl: Duration,
    /// `dpCert.rotation.expiration` (the leaves' lifetime).
    pub leaf_ttl: Duration,
    /// How long after the intermediate is signed Vault is stopped.
    pub stop_after: Duration,
    /// Time between two new data planes' requests after the stop.
    pub interval: Duration,
}

/// What was measured, seconds from the moment Vault stopped.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outage {
    /// The intermediate's validity as Vault signed it (`not_after - not_before`; Vault backdates
    /// `not_before` by 30 s).
    pub intermediate_life_s: f64,
    /// From the intermediate's signing (the first certificate's answer) to the stop.
    pub stopped_after_s: f64,
    /// `not_after - stop`: the intermediate's remaining life when Vault stopped.
    pub remaining_life_s: f64,
    /// The leaves' lifetime.
    pub leaf_lifetime_s: f64,
    /// `remaining_life - leaf_lifetime`.
    pub predicted_s: f64,
    /// The last request after the stop that got a certificate (its start).
    pub measured_s: f64,
    /// The first request refused (its end).
    pub first_refusal_s: f64,
    /// `first_refusal - measured`: how precisely the measurement brackets the cut.
    pub granularity_s: f64,
    /// `measured - predicted`.
    pub difference_s: f64,
    /// Certificates obtained after the stop.
    pub issued_during_outage: usize,
    /// Whether every certificate after the stop was signed by the first intermediate.
    pub same_intermediate: bool,
    /// The refusal's message.
    pub refusal: String,
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    mosaic_testkit::ensure_crypto_provider();
    if opts.intermediate_ttl <= opts.leaf_ttl {
        return Err(BenchError::Setup(format!(
            "--intermediate-ttl ({}) must be longer than --leaf-ttl ({}), as the Mesh's validation requires",
            as_ttl(opts.intermediate_ttl),
            as_ttl(opts.leaf_ttl)
        )));
    }
    let mut bao = OpenBao::start().await?;
    ec_root(&bao, PKI, MESH).await?;
    bao.write_policy(
        "mosaic-bench",
        &format!("path \"{PKI}/root/sign-intermediate\" {{\n  capabilities = [\"create\", \"update\"]\n}}\n"),
    )
    .await?;
    let token = bao.create_token(&TokenSpec::new(&["mosaic-bench"])).await?;
    let settings = IssuerSettings {
        vault: ZoneVault {
            zone: Some("outage".into()),
            ..ZoneVault::default()
        },
        ..IssuerSettings::default()
    };
    let zone = ZoneIssuer::new(
        vault_backend(
            from_cp(
                bao.addr(),
                PKI,
                None,
                &as_ttl(opts.intermediate_ttl),
                json!({"token": {"secret": TOKEN_SECRET}}),
            ),
            &as_ttl(opts.leaf_ttl),
        ),
        Some(&token),
        settings,
        None,
    )?;

    let first = zone
        .one("outage-0", 0)
        .await
        .map_err(|e| BenchError::Setup(format!("the zone's first certificate: {e}")))?;
    let signed_at = OffsetDateTime::now_utc();
    let (intermediate, info) = intermediate_of(&first.chain_pem)?;
    tokio::time::sleep(opts.stop_after).await;
    bao.stop();
    let stopped = OffsetDateTime::now_utc();
    let stopped_instant = Instant::now();

    let leaf = opts.leaf_ttl.as_secs_f64();
    let remaining = (info.not_after - stopped).as_seconds_f64();
    let predicted = remaining - leaf;
    let deadline = Duration::from_secs_f64(predicted.max(0.0)) + Duration::from_secs(60);
    let mut last_ok: Option<f64> = None;
    let mut issued = 0;
    let mut same = true;
    let mut i = 1;
    let (refused_at, refusal) = loop {
        let began = stopped_instant.elapsed().as_secs_f64();
        match zone.one(&format!("outage-{i}"), i).await {
            Ok(cert) => {
                issued += 1;
                last_ok = Some(began);
                same &= intermediate_of(&cert.chain_pem)
                    .map(|(pem, _)| pem == intermediate)
                    .unwrap_or(false);
            }
            Err(e) => break (stopped_instant.elapsed().as_secs_f64(), e),
        }
        if stopped_instant.elapsed() > deadline {
            return Err(BenchError::Timeout {
                what: format!(
                    "the zone to refuse a certificate with Vault stopped (predicted after {})",
                    fmt_secs(predicted)
                ),
                after: deadline,
            });
        }
        i += 1;
        tokio::time::sleep(opts.interval).await;
    };
    let measured = last_ok.unwrap_or(0.0);
    let outage = Outage {
        intermediate_life_s: (info.not_after - info.not_before).as_seconds_f64(),
        stopped_after_s: (stopped - signed_at).as_seconds_f64(),
        remaining_life_s: remaining,
        leaf_lifetime_s: leaf,
        predicted_s: predicted,
        measured_s: measured,
        first_refusal_s: refused_at,
        granularity_s: refused_at - measured,
        difference_s: measured - predicted,
        issued_during_outage: issued,
        same_intermediate: same,
        refusal,
    };
    Ok(report(outage, opts))
}

fn report(o: Outage, opts: &Options) -> Report {
    // The cut lies between the last certificate and the first refusal: the prediction must too.
    let agrees = o.issued_during_outage > 0
        && o.same_intermediate
        && o.measured_s <= o.predicted_s
        && o.predicted_s <= o.first_refusal_s;
    let rows = vec![
        vec![
            "intermediate's life as signed (`not_after - not_before`)".into(),
            fmt_secs(o.intermediate_life_s),
            format!(
                "`intermediate.ttl` {} + Vault's 30 s backdating of not_before",
                as_ttl(opts.intermediate_ttl)
            ),
        ],
        vec![
            "Vault stopped, after the intermediate was signed".into(),
            fmt_secs(o.stopped_after_s),
            "`bao` process killed".into(),
        ],
        vec![
            "remaining life of the intermediate when Vault stopped".into(),
            fmt_secs(o.remaining_life_s),
            "`not_after - stop`".into(),
        ],
        vec![
            "leaf lifetime".into(),
            fmt_secs(o.leaf_lifetime_s),
            "`dpCert.rotation.expiration`".into(),
        ],
        vec![
            "**predicted**: keeps issuing for".into(),
            format!("**{}**", fmt_secs(o.predicted_s)),
            format!(
                "{} − {} (by construction: a leaf is signed while now + leaf lifetime ≤ not_after)",
                fmt_secs(o.remaining_life_s),
                fmt_secs(o.leaf_lifetime_s)
            ),
        ],
        vec![
            "**measured**: last new certificate after the stop".into(),
            format!("**{}**", fmt_secs(o.measured_s)),
            format!(
                "{} new data planes got certificates after the stop, all from the same intermediate: {}",
                o.issued_during_outage,
                if o.same_intermediate { "yes" } else { "no" }
            ),
        ],
        vec![
            "first refusal after the stop".into(),
            fmt_secs(o.first_refusal_s),
            format!(
                "granularity {} (one request every {} ms)",
                fmt_secs(o.granularity_s),
                opts.interval.as_millis()
            ),
        ],
        vec![
            "**measured − predicted**".into(),
            format!("**{:+.2} s**", o.difference_s),
            format!(
                "the prediction lies between the last certificate and the first refusal: {}",
                if agrees { "yes" } else { "no" }
            ),
        ],
    ];
    let notes = vec![
        format!(
            "Real: OpenBao (`bao server -dev`, EC P-256 root at `{PKI}`), the zone crate's `Issuer` in this process in `mode: intermediate` (zone-made key), intermediates of {}, certificates of {}. The zone's first certificate has Vault sign the intermediate; {} ms later the OpenBao process is killed; then a new data plane asks every {} ms.",
            as_ttl(opts.intermediate_ttl),
            as_ttl(opts.leaf_ttl),
            opts.stop_after.as_millis(),
            opts.interval.as_millis()
        ),
        "Once the intermediate is due for renewal (80% of its life from the backdated not_before, less up to 5% jitter, or when the next leaf would outlive it), each renewal attempt fails at once (connection refused) and is held back 15 s; meanwhile the current intermediate signs on while now + leaf lifetime ≤ not_after. The first refusal is the zone saying it cannot renew: from then on only data planes that already hold a certificate keep it (until it expires). With the defaults (720h intermediate, 24h leaves) a fresh intermediate gives 696h.".into(),
        format!("The refusal: {}", o.refusal),
    ];
    Report {
        name: "intermediate-outage".into(),
        title: "new certificates with Vault stopped: measured vs the intermediate's remaining life minus the leaf lifetime".into(),
        aim: "measured and predicted agree within the measurement's granularity".into(),
        verdict: Verdict::from_check(Some(agrees)),
        verdict_reason: format!(
            "measured {}, predicted {}, difference {:+.2} s, granularity {}",
            fmt_secs(o.measured_s),
            fmt_secs(o.predicted_s),
            o.difference_s,
            fmt_secs(o.granularity_s)
        ),
        columns: ["", "seconds", "how"].map(String::from).to_vec(),
        rows,
        notes,
        data: json!({ "outage": o, "agrees": agrees }),
    }
}
