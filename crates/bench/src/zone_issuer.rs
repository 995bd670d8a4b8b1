//! `ZoneIssuer`: the zone crate's real `Issuer` in this process, over its own zone store holding
//! one Mesh (`default`) whose enabled backend is the given Vault backend, as a zone would hold it
//! after KDS delivered the Mesh and its Secret. Certificates are asked for unique dataplane names
//! through `Issuer::certificate`, the path an SDS stream takes.

use std::{path::Path, sync::Arc, time::Instant};

use mosaic_core::{ca::IssuedCert, resource::parse::from_value, template::Tags};
use mosaic_kds::item::KdsItem;
use mosaic_zone::{
    issuer::{Issuer, IssuerSettings},
    store::{SyncBatch, ZoneStore},
};
use serde_json::{Value, json};

use crate::{
    error::BenchError,
    load::{Tally, load},
};

/// The Mesh every benchmark issues in.
pub const MESH: &str = "default";
/// The Secret holding the Vault token, when the backend authenticates with one.
pub const TOKEN_SECRET: &str = "vault-token";

/// The tags of dataplane `i`: `kuma.io/service: svc-<i mod 10>`.
pub fn tags(i: usize) -> Tags {
    let mut t = Tags::new();
    t.entry("kuma.io/service".into())
        .or_default()
        .insert(format!("svc-{}", i % 10));
    t
}

/// A Vault backend named `vault-1` with `conf.fromCp` = `from_cp` and data-plane certificates
/// of `expiration` (e.g. `24h`).
pub fn vault_backend(from_cp: Value, expiration: &str) -> Value {
    json!({
        "name": "vault-1", "type": "vault",
        "dpCert": {"rotation": {"expiration": expiration}},
        "conf": {"fromCp": from_cp},
    })
}

/// An issuer over its own zone store holding a Mesh whose enabled backend is `backend`.
pub struct ZoneIssuer {
    issuer: Issuer,
    _dir: tempfile::TempDir,
}

// === impl ZoneIssuer ===

impl ZoneIssuer {
    /// `backend` as [`vault_backend`] makes it; `token`: the Vault token stored as Secret
    /// [`TOKEN_SECRET`], if the backend uses one; `parent`: where the zone's data dir (and so
    /// the disk cache) goes, the temp dir if `None`.
    pub fn new(
        backend: Value,
        token: Option<&str>,
        settings: IssuerSettings,
        parent: Option<&Path>,
    ) -> Result<Self, BenchError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("mosaic-bench-issuer-");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p),
            None => builder.tempdir(),
        }
        .map_err(BenchError::io("creating a temporary directory"))?;
        let store = Arc::new(
            ZoneStore::open(dir.path())
                .map_err(|e| BenchError::Setup(format!("opening a zone store: {e}")))?,
        );
        let mesh = json!({
            "type": "Mesh", "name": MESH,
            "mtls": {"enabledBackend": "vault-1", "backends": [backend]},
        });
        let mut resources = vec![mesh];
        if let Some(token) = token {
            resources.push(json!({
                "type": "Secret", "mesh": MESH, "name": TOKEN_SECRET,
                "data": base64_encode(token),
            }));
        }
        let mut upserts = Vec::new();
        for v in resources {
            let r = from_value(v).map_err(|e| BenchError::Setup(format!("a resource: {e}")))?;
            upserts.push(KdsItem::from_resource(&r, 1));
        }
        store
            .apply_sync(&SyncBatch {
                upserts,
                removes: vec![],
            })
            .map_err(|e| BenchError::Setup(format!("writing the zone store: {e}")))?;
        let issuer = Issuer::new(store, None, settings);
        Ok(Self { issuer, _dir: dir })
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The certificate of a new dataplane `dataplane` with [`tags`]`(i)`.
    pub async fn one(&self, dataplane: &str, i: usize) -> Result<Arc<IssuedCert>, String> {
        self.issuer
            .certificate(MESH, dataplane, &tags(i))
            .await
            .map_err(|e| e.to_string())
    }

    /// Issues `n` certificates; the time includes writing them to the disk cache (done in the
    /// background, off each request's path), so that work is charged to this case and does not
    /// spill into the next one's measurement.
    pub async fn run(&self, case: &str, start: usize, n: usize, concurrency: usize) -> Tally {
        let mut tally = self.issue(case, start, n, concurrency).await;
        let flushing = Instant::now();
        self.issuer.flush().await;
        tally.elapsed += flushing.elapsed();
        tally
    }

    /// Issues `n` certificates for dataplanes `<case>-<start..start + n>`.
    pub async fn issue(&self, case: &str, start: usize, n: usize, concurrency: usize) -> Tally {
        let issuer = self.issuer.clone();
        let case = case.to_string();
        load(start, n, concurrency, move |i| {
            let issuer = issuer.clone();
            let dp = format!("{case}-{i}");
            async move {
                issuer
                    .certificate(MESH, &dp, &tags(i))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
        .await
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
