//! What the zone-scale run stands on: one OpenBao with two PKI mounts (the Mesh's two Vault
//! backends, EC roots with distinct names so a delivered certificate says which one signed it),
//! the measuring proxy in front of it, a single-replica global holding the Mesh, a real zone
//! with `issuer.max_in_flight` set explicitly, dataplane tokens, and the direct client that
//! measures Vault's own throughput.

use std::{sync::Arc, time::Duration};

use mosaic_dp::sds_client::{ZoneAddress, ZoneEndpoint};
use mosaic_testkit::{GlobalCluster, OpenBao, PkiVerb, TokenSpec, ZoneProcess, pki_policy};
use serde_json::{Value, json};

use super::{Options, fleet::Identity, proxy::VaultProxy};
use crate::{
    cluster::{self, Api, Binaries, SETUP_DEADLINE},
    error::BenchError,
    load::Tally,
    procs::wait_until,
};

/// The mesh.
pub const MESH: &str = "default";
/// The zone's name.
pub const ZONE: &str = "zone-scale";
/// The Secret holding the Vault token.
pub const TOKEN_SECRET: &str = "vault-token";

/// One of the Mesh's two Vault backends.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    /// The backend's name in the Mesh.
    pub name: &'static str,
    /// Its PKI mount.
    pub mount: &'static str,
    /// Its role.
    pub role: &'static str,
    /// Its root's common name (the issuer of every certificate it signs).
    pub root_cn: &'static str,
}

/// The backend the data planes start on (long-lived certificates).
pub const BACKEND_A: Backend = Backend {
    name: "vault-a",
    mount: "pki-a",
    role: "dp-a",
    root_cn: "Mosaic Bench Root A",
};
/// The backend the Mesh is switched to (the run's short lifetime).
pub const BACKEND_B: Backend = Backend {
    name: "vault-b",
    mount: "pki-b",
    role: "dp-b",
    root_cn: "Mosaic Bench Root B",
};
/// Backend A's certificate lifetime (nothing of A rotates during the run).
pub const LIFETIME_A: &str = "24h";

/// Everything started; stopped when dropped.
pub struct World {
    /// The real OpenBao.
    pub bao: OpenBao,
    /// The measuring proxy in front of it (the Mesh's Vault address).
    pub proxy: VaultProxy,
    /// The Vault token the Mesh's backends (and the direct client) use.
    pub token: String,
    /// Backend B's root (PEM), what its certificates chain to.
    pub root_b: String,
    /// The global.
    pub global: GlobalCluster,
    /// Its API.
    pub api: Api,
    /// The zone.
    pub zone: ZoneProcess,
    /// Where data planes connect.
    pub endpoint: ZoneEndpoint,
}

/// A PKI mount with an EC P-256 root named `b.root_cn` and an EC issue role that stores nothing.
async fn pki(bao: &OpenBao, b: &Backend) -> Result<String, BenchError> {
    bao.enable_secrets(b.mount, "pki").await?;
    bao.tune_max_lease_ttl(b.mount, "87600h").await?;
    let root = bao
        .write(
            &format!("{}/root/generate/internal", b.mount),
            json!({
                "common_name": b.root_cn,
                "uri_sans": format!("spiffe://{MESH}"),
                "key_type": "ec",
                "key_bits": 256,
                "ttl": "87600h",
            }),
        )
        .await?;
    let pem = root
        .pointer("/data/certificate")
        .and_then(Value::as_str)
        .ok_or_else(|| BenchError::Setup(format!("{}: the root has no certificate", b.mount)))?
        .to_string();
    bao.create_role(
        b.mount,
        b.role,
        MESH,
        json!({"key_type": "ec", "key_bits": 256, "no_store": true}),
    )
    .await?;
    Ok(pem)
}

/// One Vault backend of the Mesh: `b` at the proxy, issue mode, certificates of `lifetime`.
fn backend_json(b: &Backend, address: &str, lifetime: &str) -> Value {
    json!({
        "name": b.name,
        "type": "vault",
        "dpCert": {"rotation": {"expiration": lifetime}},
        "conf": {"fromCp": {
            "address": address,
            "pki": b.mount,
            "role": b.role,
            "mode": "issue",
            "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
            "auth": {"token": {"secret": TOKEN_SECRET}},
        }},
    })
}

/// The Mesh with both backends, `enabled` the enabled one. `skipValidation`: the global's test
/// issuance would go through the proxy too; skipping it leaves only the zone's calls there.
pub fn mesh_json(proxy: &str, enabled: &Backend, opts: &Options) -> String {
    json!({
        "type": "Mesh",
        "name": MESH,
        "mtls": {
            "enabledBackend": enabled.name,
            "skipValidation": true,
            "backends": [
                backend_json(&BACKEND_A, proxy, LIFETIME_A),
                backend_json(&BACKEND_B, proxy, &format!("{}s", opts.lifetime.as_secs())),
            ],
        },
    })
    .to_string()
}

impl World {
    /// Starts OpenBao (two PKIs, a token), the proxy, the global (Mesh on backend A), and the
    /// zone (`issuer.max_in_flight` from `opts`), and waits until the zone holds the Mesh.
    pub async fn start(bins: &Binaries, opts: &Options) -> Result<Self, BenchError> {
        let bao = OpenBao::start().await?;
        pki(&bao, &BACKEND_A).await?;
        let root_b = pki(&bao, &BACKEND_B).await?;
        let policy = [BACKEND_A, BACKEND_B]
            .iter()
            .map(|b| pki_policy(b.mount, b.role, &[PkiVerb::Issue]))
            .collect::<Vec<_>>()
            .join("\n");
        bao.write_policy("mosaic-bench-zone-scale", &policy).await?;
        let token = bao
            .create_token(&TokenSpec::new(&["mosaic-bench-zone-scale"]))
            .await?;
        let proxy = VaultProxy::start(bao.addr()).await?;

        let global = cluster::start_single_global(bins).await?;
        let api = Api::new(global.api(0))?;
        api.put_yaml(
            &format!("/meshes/{MESH}"),
            &format!("type: Mesh\nname: {MESH}\n"),
        )
        .await?;
        api.put_yaml(
            &format!("/meshes/{MESH}/secrets/{TOKEN_SECRET}"),
            &json!({
                "type": "Secret", "mesh": MESH, "name": TOKEN_SECRET,
                "data": base64_encode(&token),
            })
            .to_string(),
        )
        .await?;
        api.put_yaml(
            &format!("/meshes/{MESH}"),
            &mesh_json(&proxy.url(), &BACKEND_A, opts),
        )
        .await?;

        let zone_token = api
            .post_json("/tokens/zone", &json!({ "zone": ZONE }))
            .await?;
        let mut zone = ZoneProcess::new(
            &bins.zone,
            global.dir(),
            ZONE,
            &global.kds_url(0),
            &global.kds_ca_path(0),
            zone_token.trim(),
        )?;
        let max_in_flight = opts.max_in_flight;
        zone.edit_config(move |c| c.issuer.max_in_flight = max_in_flight);
        zone.start()?;
        zone.wait_ready(SETUP_DEADLINE).await?;
        zone.wait_for(
            &format!("/meshes/{MESH}"),
            "the Mesh on backend A",
            SETUP_DEADLINE,
            |m| m["mtls"]["enabledBackend"] == BACKEND_A.name,
        )
        .await?;
        let ca_path = zone.dp_ca_path();
        wait_until(
            "the zone's dp-server-ca.pem",
            SETUP_DEADLINE,
            Duration::from_millis(50),
            || {
                let ok = std::fs::metadata(&ca_path).is_ok_and(|m| m.len() > 0);
                async move { ok.then_some(()) }
            },
        )
        .await?;
        let ca_pem =
            std::fs::read(zone.dp_ca_path()).map_err(BenchError::io("reading dp-server-ca.pem"))?;
        let address = ZoneAddress::parse(&zone.dp_url()).map_err(BenchError::Setup)?;
        let endpoint = ZoneEndpoint::new(&address, &ca_pem)
            .map_err(|e| BenchError::Setup(format!("the zone's dataplane server: {e}")))?;
        Ok(Self {
            bao,
            proxy,
            token,
            root_b,
            global,
            api,
            zone,
            endpoint,
        })
    }

    /// The zone's process id.
    pub fn zone_pid(&self) -> Result<u32, BenchError> {
        self.zone
            .pid()
            .ok_or_else(|| BenchError::Setup("the zone is not running".into()))
    }

    /// Switches the Mesh's enabled backend to `to` through the global's API.
    pub async fn switch(&self, to: &Backend, opts: &Options) -> Result<(), BenchError> {
        self.api
            .put_yaml(
                &format!("/meshes/{MESH}"),
                &mesh_json(&self.proxy.url(), to, opts),
            )
            .await
    }

    /// Dataplane tokens for `<prefix>-0 .. <prefix>-{n-1}` (service `svc-<i mod 10>`).
    pub async fn identities(&self, prefix: &str, n: usize) -> Result<Vec<Identity>, BenchError> {
        let api = self.api.clone();
        let prefix = prefix.to_string();
        cluster::concurrent((0..n).collect(), 16, move |i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                let service = format!("svc-{}", i % 10);
                let token = api
                    .post_json(
                        "/tokens/dataplane",
                        &json!({
                            "mesh": MESH,
                            "name": name,
                            "tags": { "kuma.io/service": [service] },
                        }),
                    )
                    .await?;
                Ok(Identity {
                    name,
                    service,
                    token: token.trim().to_string(),
                })
            }
        })
        .await
    }

    /// Vault's own throughput for backend B: `count` certificates straight from OpenBao (not
    /// through the proxy) at `concurrency`, with the request body the zone sends.
    pub async fn direct(&self, count: usize, concurrency: usize, opts: &Options) -> Tally {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(concurrency.max(1))
            .build()
        {
            Ok(h) => h,
            Err(e) => {
                return Tally {
                    errors: count,
                    first_error: Some(format!("building an HTTP client: {e}")),
                    ..Tally::default()
                };
            }
        };
        let client = crate::issuance::DirectClient {
            http,
            url: Arc::new(format!(
                "{}/v1/{}/issue/{}",
                self.bao.addr(),
                BACKEND_B.mount,
                BACKEND_B.role
            )),
            token: Arc::new(self.token.clone()),
            mesh: MESH,
            ttl: Arc::new(format!("{}s", opts.lifetime.as_secs())),
        };
        client.run(0, count, concurrency).await
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
