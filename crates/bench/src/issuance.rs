//! `issuance`: certificates per second through one zone's issuer against a minimal client of the
//! same OpenBao, and sign mode (EC keys made in the zone) against issue mode with RSA keys.
//!
//! One OpenBao dev server (the real `bao` 2.7.2 binary, started here) set up like seed 000 (a
//! root PKI at `kmesh-pki-default`, seed role parameters, a token whose policy grants only the
//! PKI paths used), with three roles: `ec-issue` (`key_type=ec key_bits=256`), `ec-sign` (same,
//! for CSRs) and `rsa-issue` (`key_type=rsa key_bits=2048`).
//!
//! Each case issues `count` certificates for unique dataplanes (so nothing is cached) from
//! `concurrency` tasks:
//! - **direct**: plain reqwest `POST /v1/kmesh-pki-default/issue/ec-issue` with the same body the
//!   zone sends, reading the JSON answer;
//! - **issuer (issue, EC)**: the zone crate's `Issuer` over a zone store holding a Mesh whose
//!   enabled backend is that Vault role (`mode: issue`): templating, Vault client, token manager,
//!   chain checks, circuit breaker, semaphore (`max_in_flight` 16, the zone's default) and the
//!   disk cache write;
//! - **issuer (sign, EC)** and **issuer (issue, RSA)**: the same issuer with the other roles.
//!
//! - **issuer, data dir on tmpfs** (attribution, when `/dev/shm` exists): the issue-mode issuer
//!   with its disk cache on memory, to show what the cache write costs.
//!
//! Direct, issuer and issuer-on-tmpfs run in the order A B C C B A (half the count each time) so
//! that a drift of the shared machine falls on all of them.

use std::{path::Path, sync::Arc, time::Duration};

use mosaic_testkit::{OpenBao, PkiVerb, SEED_MOUNT, TokenSpec, pki_policy};
use mosaic_zone::issuer::IssuerSettings;
use serde_json::{Value, json};

pub use crate::load::CaseResult;
use crate::{
    error::BenchError,
    load::{Tally, load, ratio},
    report::{Report, Verdict},
    zone_issuer::{MESH, TOKEN_SECRET, ZoneIssuer, vault_backend},
};

/// The aim: issuer throughput ≥ this share of the direct client's.
pub const AIM_RATIO: f64 = 0.95;
const ROLE_EC: &str = "ec-issue";
const ROLE_SIGN: &str = "ec-sign";
const ROLE_RSA: &str = "rsa-issue";
const TTL: &str = "24h";

/// Options of the `issuance` benchmark.
#[derive(Clone, Debug)]
pub struct Options {
    /// Requests in flight.
    pub concurrency: usize,
    /// Certificates per case.
    pub count: usize,
    /// Certificates per RSA case (RSA key generation in Vault is slow; defaults to `count`).
    pub rsa_count: usize,
}

/// A zone issuer whose Mesh's enabled backend is `role` of the seed mount in `mode`.
fn issuer_case(
    bao: &OpenBao,
    token: &str,
    role: &str,
    mode: &str,
    parent: Option<&Path>,
) -> Result<ZoneIssuer, BenchError> {
    let backend = vault_backend(
        json!({
            "address": bao.addr(),
            "pki": SEED_MOUNT,
            "role": role,
            "mode": mode,
            "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
            "auth": {"token": {"secret": TOKEN_SECRET}},
        }),
        TTL,
    );
    ZoneIssuer::new(backend, Some(token), IssuerSettings::default(), parent)
}

/// The minimal client: the same request the zone sends (for data planes of `mesh`, certificates
/// of `ttl`), straight to Vault at `url` (`.../issue/<role>`) with `token`.
#[derive(Clone, Debug)]
pub(crate) struct DirectClient {
    pub http: reqwest::Client,
    pub url: Arc<String>,
    pub token: Arc<String>,
    pub mesh: &'static str,
    pub ttl: Arc<String>,
}

impl DirectClient {
    /// Issues `n` certificates (request ids from `start`) from `concurrency` tasks.
    pub(crate) async fn run(&self, start: usize, n: usize, concurrency: usize) -> Tally {
        let client = self.clone();
        load(start, n, concurrency, move |i| {
            let DirectClient {
                http,
                url,
                token,
                mesh,
                ttl,
            } = client.clone();
            async move {
                let service = format!("svc-{}", i % 10);
                let body = json!({
                    "common_name": format!("{service}.mesh"),
                    "uri_sans": format!("spiffe://{mesh}/{service},kuma://kuma.io/service/{service}"),
                    "ttl": ttl.as_str(),
                    "format": "pem",
                    "exclude_cn_from_sans": true,
                    "private_key_format": "pkcs8",
                });
                let resp = http
                    .post(url.as_str())
                    .header("X-Vault-Token", token.as_str())
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                let v: Value = resp.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() || v.pointer("/data/certificate").is_none() {
                    return Err(format!("HTTP {status}: {v}"));
                }
                Ok(())
            }
        })
        .await
    }
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    mosaic_testkit::ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, MESH).await?;
    let ec = json!({"key_type": "ec", "key_bits": 256});
    bao.create_role(SEED_MOUNT, ROLE_EC, MESH, ec.clone())
        .await?;
    bao.create_role(SEED_MOUNT, ROLE_SIGN, MESH, ec).await?;
    bao.create_role(
        SEED_MOUNT,
        ROLE_RSA,
        MESH,
        json!({"key_type": "rsa", "key_bits": 2048}),
    )
    .await?;
    let policy = [
        pki_policy(SEED_MOUNT, ROLE_EC, &[PkiVerb::Issue]),
        pki_policy(SEED_MOUNT, ROLE_SIGN, &[PkiVerb::Sign]),
        pki_policy(SEED_MOUNT, ROLE_RSA, &[PkiVerb::Issue]),
    ]
    .join("\n");
    bao.write_policy("mosaic-bench", &policy).await?;
    let token = bao.create_token(&TokenSpec::new(&["mosaic-bench"])).await?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(opts.concurrency.max(1))
        .build()
        .map_err(BenchError::request("building an HTTP client"))?;
    let direct = DirectClient {
        http,
        url: Arc::new(format!("{}/v1/{SEED_MOUNT}/issue/{ROLE_EC}", bao.addr())),
        token: Arc::new(token.clone()),
        mesh: MESH,
        ttl: Arc::new(TTL.to_string()),
    };
    let c = opts.concurrency;
    let ec_issue = issuer_case(&bao, &token, ROLE_EC, "issue", None)?;
    // The same issuer with its data dir on tmpfs, where fsync costs nothing: attributes the
    // difference to the disk cache's synchronous write.
    let shm = Path::new(TMPFS);
    let ec_tmpfs = match shm.is_dir() {
        true => Some(issuer_case(&bao, &token, ROLE_EC, "issue", Some(shm))?),
        false => None,
    };
    let ec_sign = issuer_case(&bao, &token, ROLE_SIGN, "sign", None)?;
    let rsa_issue = issuer_case(&bao, &token, ROLE_RSA, "issue", None)?;

    // Warm-up: connections, the issuers' backends and tokens, Vault's first requests.
    let warm = (2 * c).max(4);
    let _ = direct.run(0, warm, c).await;
    let _ = ec_issue.run("warm-ec", 0, warm, c).await;
    if let Some(t) = &ec_tmpfs {
        let _ = t.run("warm-tmpfs", 0, warm, c).await;
    }
    let _ = ec_sign.run("warm-sign", 0, warm.min(8), c).await;
    let _ = rsa_issue.run("warm-rsa", 0, 2, c).await;

    // A B C C B A, half the count each time.
    let half = opts.count / 2;
    let rest = opts.count - half;
    let mut d = direct.run(0, half, c).await;
    let mut e = ec_issue.run("ec", 0, half, c).await;
    let mut t = Tally::default();
    if let Some(case) = &ec_tmpfs {
        t.add(case.run("tmpfs", 0, half, c).await);
        t.add(case.run("tmpfs", half, rest, c).await);
    }
    e.add(ec_issue.run("ec", half, rest, c).await);
    d.add(direct.run(half, rest, c).await);
    let s = ec_sign.run("sign", 0, opts.count, c).await;
    let r = rsa_issue.run("rsa", 0, opts.rsa_count, c).await;

    let results = Results {
        direct: d.result("direct reqwest → pki/issue (EC P-256)"),
        issuer: e.result("zone issuer, issue mode (EC P-256)"),
        issuer_tmpfs: ec_tmpfs
            .is_some()
            .then(|| t.result("zone issuer, issue mode (EC P-256), data dir on tmpfs")),
        sign: s.result("zone issuer, sign mode (EC P-256, key made in the zone)"),
        rsa: r.result("zone issuer, issue mode (RSA 2048)"),
    };
    Ok(report(results, opts))
}

/// Where the attribution case keeps its data dir.
const TMPFS: &str = "/dev/shm";

/// Every case's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Results {
    /// The direct client (EC issue).
    pub direct: CaseResult,
    /// The zone issuer (EC issue), data dir in the temp dir.
    pub issuer: CaseResult,
    /// The zone issuer (EC issue), data dir on tmpfs (when `/dev/shm` exists).
    pub issuer_tmpfs: Option<CaseResult>,
    /// The zone issuer, sign mode (EC).
    pub sign: CaseResult,
    /// The zone issuer, issue mode (RSA 2048).
    pub rsa: CaseResult,
}

fn report(results: Results, opts: &Options) -> Report {
    let all: Vec<&CaseResult> = [
        Some(&results.direct),
        Some(&results.issuer),
        results.issuer_tmpfs.as_ref(),
        Some(&results.sign),
        Some(&results.rsa),
    ]
    .into_iter()
    .flatten()
    .collect();
    let clean = all.iter().all(|r| r.errors == 0 && r.issued > 0);
    let main_ratio = ratio(&results.issuer, &results.direct);
    let tmpfs_ratio = results
        .issuer_tmpfs
        .as_ref()
        .map(|t| ratio(t, &results.direct));
    let sign_vs_rsa = ratio(&results.sign, &results.rsa);
    let verdict = if clean {
        Verdict::from_check(Some(main_ratio >= AIM_RATIO))
    } else {
        Verdict::Missed
    };
    let mut rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            vec![
                r.case.clone(),
                format!("{}", r.issued),
                format!("{}", r.errors),
                format!("{:.1}/s", r.per_second),
                format!("{:.1} / {:.1} ms", r.p50_ms, r.p99_ms),
            ]
        })
        .collect();
    let ratio_row = |label: &str, v: f64| {
        vec![
            label.to_string(),
            String::new(),
            String::new(),
            format!("**{v:.2}**"),
            String::new(),
        ]
    };
    rows.push(ratio_row("ratio issuer / direct (EC issue)", main_ratio));
    if let Some(v) = tmpfs_ratio {
        rows.push(ratio_row(
            "ratio issuer with data dir on tmpfs / direct (attribution)",
            v,
        ));
    }
    rows.push(ratio_row("ratio sign EC / issue RSA (issuer)", sign_vs_rsa));
    let mut notes = vec![
        format!(
            "Concurrency {} for every case; {} certificates per EC case, {} for RSA; unique dataplane names, so nothing is served from the issuer's cache. The zone issuer's `max_in_flight` is its default, 16.",
            opts.concurrency, opts.count, opts.rsa_count
        ),
        "Real: OpenBao 2.7.2 (`bao server -dev`, in-memory storage) set up like seed 000 with EC and RSA roles; the zone crate's `Issuer` (Vault client, token manager, chain checks, breaker, disk cache) in this process. The direct client sends the zone's request body and reads Vault's JSON answer, nothing else.".into(),
        "Direct, issuer and issuer-on-tmpfs (EC issue) ran interleaved A B C C B A; sign and RSA ran after them. Vault, the issuer and the client share the machine's cores, so Vault's own work bounds both sides.".into(),
    ];
    if let Some(v) = tmpfs_ratio {
        notes.push(format!(
            "Attribution: the same issuer with its data dir on tmpfs (`{TMPFS}`, where fsync is free) reaches {v:.2} of the direct client. The zone issuer writes each new certificate to its disk cache (tree `issuer-certs` of the zone's sled database: an in-memory insert, made durable by sled's background flush); each issuer case's time runs until the cache is flushed, so that cost is charged to it and not to the case after it."
        ));
    }
    notes.extend(all.iter().filter_map(|r| {
        r.first_error
            .as_ref()
            .map(|e| format!("{}: first error: {e}", r.case))
    }));
    Report {
        name: "issuance".into(),
        title: "certificates per second: zone issuer vs a direct Vault client".into(),
        aim: format!("zone issuer ≥ {AIM_RATIO} × the direct client's throughput (EC, issue mode)"),
        verdict,
        verdict_reason: format!(
            "ratio {main_ratio:.2}{}{}; sign (EC) is {sign_vs_rsa:.1}× issue (RSA 2048)",
            tmpfs_ratio.map_or(String::new(), |v| format!(
                " ({v:.2} with the issuer's data dir on tmpfs)"
            )),
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
            "results": results,
            "ratio_issuer_to_direct": main_ratio,
            "ratio_issuer_tmpfs_to_direct": tmpfs_ratio,
            "ratio_sign_ec_to_issue_rsa": sign_vs_rsa,
            "concurrency": opts.concurrency,
        }),
    }
}
