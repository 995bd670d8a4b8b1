//! `Failpoints`: sets and clears a running `mosaic-global`'s failpoints through its diagnostics
//! listener (`GET /failpoints`, `PUT`/`DELETE /failpoints/{name}`; test builds carry the
//! `failpoints` feature, see mosaic-global's `failpoint` module).

use anyhow::{Context as _, bail};

/// A client for one replica's `/failpoints`.
#[derive(Clone, Debug)]
pub struct Failpoints {
    base: String,
    http: reqwest::Client,
}

impl Failpoints {
    /// For the diagnostics listener at `diag_url` (`http://127.0.0.1:5680`).
    pub fn new(diag_url: impl Into<String>) -> Self {
        Self {
            base: diag_url.into(),
            http: reqwest::Client::new(),
        }
    }

    /// Sets failpoint `name` to `actions` (`return`, `return(lose)`, `panic`, `sleep(500)`, `off`).
    pub async fn set(&self, name: &str, actions: &str) -> anyhow::Result<()> {
        let url = format!("{}/failpoints/{name}", self.base);
        let resp = self
            .http
            .put(&url)
            .body(actions.to_string())
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!(
                "PUT {url} ({actions:?}) answered {status}: {} (is the binary built with the failpoints feature?)",
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Clears failpoint `name`.
    pub async fn clear(&self, name: &str) -> anyhow::Result<()> {
        let url = format!("{}/failpoints/{name}", self.base);
        let resp = self
            .http
            .delete(&url)
            .send()
            .await
            .with_context(|| format!("DELETE {url}"))?;
        if !resp.status().is_success() {
            bail!("DELETE {url} answered {}", resp.status());
        }
        Ok(())
    }

    /// The failpoints set, as `(name, actions)`.
    pub async fn list(&self) -> anyhow::Result<Vec<(String, String)>> {
        let url = format!("{}/failpoints", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!(
                "GET {url} answered {} (is the binary built with the failpoints feature?)",
                resp.status()
            );
        }
        Ok(resp
            .text()
            .await?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect())
    }
}
