//! Checking that a certificate chain verifies to a set of roots (rustls-webpki), as a data plane
//! would: used by admission to prove a backend's certificates are trusted by its own bundle.

use rustls::pki_types::{CertificateDer, UnixTime};

use mosaic_core::ca::identity::pem_to_ders;

/// Verifies `chain_pem` (leaf first, then intermediates) to one of `roots` (PEM) for client
/// authentication, now. The error says why it does not.
pub fn verify(chain_pem: &str, roots: &[String]) -> Result<(), String> {
    let chain = pem_to_ders(chain_pem).map_err(|e| e.to_string())?;
    let (leaf, intermediates) = chain.split_first().ok_or("the chain has no certificate")?;
    let mut root_ders = Vec::new();
    for r in roots {
        root_ders.extend(pem_to_ders(r).map_err(|e| e.to_string())?);
    }
    let root_ders: Vec<CertificateDer<'static>> =
        root_ders.into_iter().map(CertificateDer::from).collect();
    let anchors = root_ders
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a root is not a usable trust anchor: {e}"))?;
    let leaf = CertificateDer::from(leaf.clone());
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| format!("the leaf cannot be parsed: {e}"))?;
    let intermediates: Vec<CertificateDer<'static>> = intermediates
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::local::LocalCa;

    #[test]
    fn a_leaf_verifies_to_its_root_and_not_to_another() {
        let (root, key) =
            LocalCa::generate_root("default", "root", Duration::from_secs(3600)).unwrap();
        let ca = LocalCa::from_pem(&root, key.expose()).unwrap();
        let leaf = ca
            .issue(
                &["spiffe://default/web".to_string()],
                None,
                Duration::from_secs(60),
            )
            .unwrap();
        verify(&leaf.chain_pem, &[root]).unwrap();
        let (other, _) =
            LocalCa::generate_root("default", "other", Duration::from_secs(3600)).unwrap();
        let err = verify(&leaf.chain_pem, &[other]).unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(verify("", &[]).is_err());
    }
}
