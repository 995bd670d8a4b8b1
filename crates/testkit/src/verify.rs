//! Verifies an issued certificate chain the way a data plane (Envoy) would: rustls-webpki, for
//! both clientAuth and serverAuth, against trusted roots; and that a private key matches the leaf.

use anyhow::{Context as _, anyhow, bail};
use rustls::pki_types::{CertificateDer, UnixTime};

fn ders(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .context("malformed PEM certificate")
}

/// Checks that `chain_pem` (leaf first, then intermediates) chains to one of `roots` (PEM, each
/// may hold several certificates) for both clientAuth and serverAuth, now.
pub fn verify_chain(chain_pem: &str, roots: &[String]) -> anyhow::Result<()> {
    let chain = ders(chain_pem)?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| anyhow!("the chain has no certificate"))?;
    let mut root_ders = Vec::new();
    for r in roots {
        root_ders.extend(ders(r)?);
    }
    let anchors = root_ders
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("a root is not a usable trust anchor: {e:?}"))?;
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| anyhow!("the leaf is not an end-entity certificate: {e:?}"))?;
    for (name, usage) in [
        ("clientAuth", webpki::KeyUsage::client_auth()),
        ("serverAuth", webpki::KeyUsage::server_auth()),
    ] {
        if let Err(e) = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            UnixTime::now(),
            usage,
            None,
            None,
        ) {
            bail!("the chain does not verify for {name} against the trust bundle: {e:?}");
        }
    }
    Ok(())
}
