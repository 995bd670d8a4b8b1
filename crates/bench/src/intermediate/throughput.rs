//! `intermediate-issuance`: certificates per second through the zone issuer in
//! `mode: intermediate` against the direct Vault client of `issuance`, on one OpenBao.
//!
//! OpenBao (`bao server -dev`) with an EC P-256 root at `kmesh-pki-default`, role `ec-issue`
//! (`key_type=ec key_bits=256`, seed 000's parameters) and a token whose policy grants only
//! `issue/ec-issue` and `root/sign-intermediate`:
//! - **direct**: plain reqwest `POST /v1/kmesh-pki-default/issue/ec-issue` with the zone's
//!   request body (Vault makes the P-256 key and signs the leaf with the root);
//! - **zone issuer, intermediate mode**: `Issuer::certificate` over a zone store whose Mesh's
//!   backend is `mode: intermediate` on that mount (zone-made intermediate key): the zone makes
//!   each leaf's P-256 key and signs it with its intermediate, checks the chain against the trust
//!   bundle, writes the disk cache.
//!
//! Both issue certificates for unique dataplanes (nothing cached) from `concurrency` tasks, in
//! the order A B B A (half the count each time). The zone's intermediate is signed in the
//! warm-up (that first certificate's latency is shown on its own); no renewal falls in the
//! measured window (intermediates of 720h).

use std::{sync::Arc, time::Duration, time::Instant};

use mosaic_testkit::{OpenBao, PkiVerb, SEED_MOUNT, TokenSpec, pki_policy};
use mosaic_zone::issuer::{IssuerSettings, ZoneVault};
use serde_json::json;

use super::{ec_root, from_cp};
use crate::{
    error::BenchError,
    issuance::DirectClient,
    load::{CaseResult, Tally, ratio},
    report::{Report, Verdict},
    zone_issuer::{MESH, TOKEN_SECRET, ZoneIssuer, vault_backend},
};

/// The aim: the zone issuer in intermediate mode ≥ this many times the direct client.
pub const AIM_RATIO: f64 = 20.0;
const ROLE: &str = "ec-issue";
const LEAF_TTL: &str = "24h";
const INTERMEDIATE_TTL: &str = "720h";

/// Options of the `intermediate-issuance` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// Requests in flight (both sides).
    pub concurrency: usize,
    /// Certificates for the direct client.
    pub count: usize,
    /// Certificates for the zone issuer (it is much faster, so it needs more to measure well).
    pub zone_count: usize,
}

/// Both sides' results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Results {
    /// The direct client (Vault `issue`, EC P-256).
    pub direct: CaseResult,
    /// The zone issuer in intermediate mode.
    pub intermediate: CaseResult,
    /// The zone's first certificate, for which Vault signed the intermediate, ms.
    pub first_certificate_ms: f64,
    /// Intermediate / direct throughput.
    pub ratio: f64,
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    mosaic_testkit::ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    ec_root(&bao, SEED_MOUNT, MESH).await?;
    bao.create_role(
        SEED_MOUNT,
        ROLE,
        MESH,
        json!({"key_type": "ec", "key_bits": 256}),
    )
    .await?;
    let policy = format!(
        "{}\npath \"{SEED_MOUNT}/root/sign-intermediate\" {{\n  capabilities = [\"create\", \"update\"]\n}}\n",
        pki_policy(SEED_MOUNT, ROLE, &[PkiVerb::Issue])
    );
    bao.write_policy("mosaic-bench", &policy).await?;
    let token = bao.create_token(&TokenSpec::new(&["mosaic-bench"])).await?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(opts.concurrency.max(1))
        .build()
        .map_err(BenchError::request("building an HTTP client"))?;
    let direct = DirectClient {
        http,
        url: Arc::new(format!("{}/v1/{SEED_MOUNT}/issue/{ROLE}", bao.addr())),
        token: Arc::new(token.clone()),
        mesh: MESH,
        ttl: Arc::new(LEAF_TTL.to_string()),
    };
    let settings = IssuerSettings {
        vault: ZoneVault {
            zone: Some("zone-1".into()),
            ..ZoneVault::default()
        },
        ..IssuerSettings::default()
    };
    let zone = ZoneIssuer::new(
        vault_backend(
            from_cp(
                bao.addr(),
                SEED_MOUNT,
                None,
                INTERMEDIATE_TTL,
                json!({"token": {"secret": TOKEN_SECRET}}),
            ),
            LEAF_TTL,
        ),
        Some(&token),
        settings,
        None,
    )?;
    let c = opts.concurrency;

    // Warm-up: the zone's first certificate has Vault sign its intermediate.
    let first = Instant::now();
    zone.one("warm-0", 0).await.map_err(|e| {
        BenchError::Setup(format!(
            "the zone's first certificate in intermediate mode: {e}"
        ))
    })?;
    let first_certificate_ms = first.elapsed().as_secs_f64() * 1000.0;
    let warm = (2 * c).max(4);
    let _ = direct.run(0, warm, c).await;
    let _ = zone.run("warm", 1, warm, c).await;

    // A B B A, half the count each time.
    let (dh, dr) = (opts.count / 2, opts.count - opts.count / 2);
    let (zh, zr) = (opts.zone_count / 2, opts.zone_count - opts.zone_count / 2);
    let mut d = direct.run(0, dh, c).await;
    let mut z = Tally::default();
    z.add(zone.run("zone", 0, zh, c).await);
    z.add(zone.run("zone", zh, zr, c).await);
    d.add(direct.run(dh, dr, c).await);

    let direct = d.result("direct reqwest → pki/issue (EC P-256, Vault signs each leaf)");
    let intermediate =
        z.result("zone issuer, intermediate mode (EC P-256, the zone signs each leaf)");
    let ratio = ratio(&intermediate, &direct);
    Ok(report(
        Results {
            direct,
            intermediate,
            first_certificate_ms,
            ratio,
        },
        opts,
    ))
}

fn report(r: Results, opts: &Options) -> Report {
    let clean = [&r.direct, &r.intermediate]
        .iter()
        .all(|c| c.errors == 0 && c.issued > 0);
    let verdict = if clean {
        Verdict::from_check(Some(r.ratio >= AIM_RATIO))
    } else {
        Verdict::Missed
    };
    let row = |c: &CaseResult| {
        vec![
            c.case.clone(),
            format!("{}", c.issued),
            format!("{}", c.errors),
            format!("{:.1}/s", c.per_second),
            format!("{:.2} / {:.2} ms", c.p50_ms, c.p99_ms),
        ]
    };
    let rows = vec![
        row(&r.direct),
        row(&r.intermediate),
        vec![
            "zone's first certificate (Vault signs its intermediate; warm-up, not in the row above)"
                .into(),
            "1".into(),
            "0".into(),
            String::new(),
            format!("{:.1} ms", r.first_certificate_ms),
        ],
        vec![
            "ratio intermediate mode / direct".into(),
            String::new(),
            String::new(),
            format!("**{:.1}×**", r.ratio),
            String::new(),
        ],
    ];
    let mut notes = vec![
        format!(
            "Concurrency {} on both sides; {} certificates for the direct client, {} for the zone issuer (it is faster, so it needs more to last long enough to measure); unique dataplane names, so nothing comes from the issuer's cache. Interleaved A B B A, half the count each time; the zone issuer's time includes its disk-cache writes.",
            opts.concurrency, opts.count, opts.zone_count
        ),
        "Same OpenBao for both (`bao server -dev`, in-memory storage, no audit device): an EC P-256 root at `kmesh-pki-default`, role `ec-issue` (`key_type=ec key_bits=256`). Direct: Vault makes each P-256 key and signs each leaf with the root. Intermediate mode: Vault signed one intermediate for the zone (zone-made P-256 key, 720h); the zone makes each leaf's P-256 key and signs it with that intermediate, then checks the chain against its trust bundle and caches the certificate, with the issuer's semaphore (`max_in_flight` 16) and breaker, as in `issuance`.".into(),
        "The leaves are alike on both sides: EC P-256, 24h, the same SANs and common name; the intermediate-mode chain is one certificate longer (leaf + intermediate).".into(),
        "Vault, the issuer and the client share the machine's 2 cores; during the zone issuer's runs Vault is idle.".into(),
    ];
    notes.extend([&r.direct, &r.intermediate].iter().filter_map(|c| {
        c.first_error
            .as_ref()
            .map(|e| format!("{}: first error: {e}", c.case))
    }));
    Report {
        name: "intermediate-issuance".into(),
        title: "certificates per second: zone issuer in intermediate mode vs a direct Vault client"
            .into(),
        aim: format!(
            "intermediate mode ≥ {AIM_RATIO} × the direct client's throughput (EC P-256, same OpenBao)"
        ),
        verdict,
        verdict_reason: format!(
            "{:.0}/s vs {:.0}/s: ×{:.1}{}",
            r.intermediate.per_second,
            r.direct.per_second,
            r.ratio,
            if clean { "" } else { ", with errors" }
        ),
        columns: [
            "case",
            "issued",
            "errors",
            "throughput",
            "latency p50 / p99",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
        data: json!({
            "results": r,
            "ratio_intermediate_to_direct": r.ratio,
            "concurrency": opts.concurrency,
        }),
    }
}
