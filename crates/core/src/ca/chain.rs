//! Which trusted root a served chain reaches: the check the zone makes before it serves a
//! certificate, so a certificate signed by a CA the trust bundle does not hold yet is noticed
//! (and the bundle enlarged) before any data plane presents it.

use x509_parser::prelude::*;

use super::identity::pem_to_ders;

/// The index of the first of `roots` (PEM, each one or more certificates) that `chain_pem`
/// (leaf first, then intermediates) reaches: a root that is one of the chain's certificates or
/// whose key signed one of them (issuer name and signature both checked). `None` when none does
/// or the chain does not parse.
pub fn anchor_of(chain_pem: &str, roots: &[String]) -> Option<usize> {
    let chain_ders = pem_to_ders(chain_pem).ok()?;
    let chain: Vec<(&[u8], X509Certificate<'_>)> = chain_ders
        .iter()
        .filter_map(|d| {
            X509Certificate::from_der(d)
                .ok()
                .map(|(_, c)| (d.as_slice(), c))
        })
        .collect();
    if chain.is_empty() {
        return None;
    }
    roots.iter().position(|root| {
        let Ok(root_ders) = pem_to_ders(root) else {
            return false;
        };
        root_ders.iter().any(|rd| {
            let Ok((_, r)) = X509Certificate::from_der(rd) else {
                return false;
            };
            chain.iter().any(|(der, c)| {
                *der == rd.as_slice()
                    || (c.issuer() == r.subject()
                        && c.verify_signature(Some(r.public_key())).is_ok())
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    struct Ca {
        pem: String,
        key: KeyPair,
        params: CertificateParams,
    }

    fn params(cn: &str, ca: bool) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.is_ca = if ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        p
    }

    fn root(cn: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params = params(cn, true);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, key, params }
    }

    fn signed(cn: &str, ca: bool, by: &Ca) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params = params(cn, ca);
        let issuer = Issuer::from_params(&by.params, &by.key);
        let pem = params.signed_by(&key, &issuer).unwrap().pem();
        Ca { pem, key, params }
    }

    #[test]
    fn finds_the_root_that_signed_the_leaf_or_its_intermediate() {
        let old = root("Mesh root");
        let new = root("Mesh root"); // same name, other key: a rotated root
        let leaf = signed("web", false, &new);
        let roots = [old.pem.clone(), new.pem.clone()];
        assert_eq!(
            anchor_of(&leaf.pem, &roots),
            Some(1),
            "the signature decides"
        );
        assert_eq!(anchor_of(&leaf.pem, &roots[..1]), None);

        let int = signed("Mesh intermediate", true, &old);
        let via = signed("web", false, &int);
        let chain = format!("{}{}", via.pem, int.pem);
        assert_eq!(
            anchor_of(&chain, &roots),
            Some(0),
            "through the intermediate"
        );
        assert_eq!(
            anchor_of(&via.pem, &roots),
            None,
            "the intermediate is needed"
        );
        // A bundle holding the intermediate itself (a mount whose chain stops there).
        assert_eq!(anchor_of(&chain, std::slice::from_ref(&int.pem)), Some(0));
        assert_eq!(anchor_of("not a pem", &roots), None);
    }
}
