//! CA private keys in the PEM forms Kuma accepts for a `provided` backend: PKCS#8
//! (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa -traditional`
//! writes and Kuma's e2e uses) and SEC1 (`BEGIN EC PRIVATE KEY`, `openssl ecparam -genkey`),
//! turned into the PKCS#8 DER rcgen (ring) reads. The wrapping is plain DER: a PKCS#8
//! `PrivateKeyInfo` is `SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING <key> }`, with the
//! key's own DER as the octet string.

use mosaic_core::{Sensitive, ca::identity::CertError};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject};

/// `rsaEncryption` (1.2.840.113549.1.1.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` EXPLICIT, constructed: SEC1's `parameters` (the curve).
const TAG_CONTEXT_0: u8 = 0xa0;

/// The first private key in `pem` as PKCS#8 DER (secret: kept in [`Sensitive`]).
pub fn pkcs8_der(pem: &str) -> Result<Sensitive<Vec<u8>>, CertError> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        CertError(format!(
            "no PEM private key found ({e}): expected -----BEGIN PRIVATE KEY----- (PKCS#8), -----BEGIN RSA PRIVATE KEY----- (PKCS#1) or -----BEGIN EC PRIVATE KEY----- (SEC1)"
        ))
    })?;
    Ok(Sensitive::new(match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => wrap_pkcs1(k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => wrap_sec1(k.secret_sec1_der())?,
        _ => {
            return Err(CertError::from(
                "unsupported private key format: use PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM",
            ));
        }
    }))
}

/// `der` as rustls' PKCS#8 type (for rcgen).
pub fn as_pkcs8(der: &Sensitive<Vec<u8>>) -> PrivatePkcs8KeyDer<'_> {
    PrivatePkcs8KeyDer::from(der.expose().as_slice())
}

/// PKCS#1 `RSAPrivateKey` in a PKCS#8 `PrivateKeyInfo` (algorithm rsaEncryption, NULL).
fn wrap_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
    alg.extend(tlv(TAG_NULL, &[]));
    private_key_info(&tlv(TAG_SEQUENCE, &alg), pkcs1)
}

/// SEC1 `ECPrivateKey` in a PKCS#8 `PrivateKeyInfo` (algorithm id-ecPublicKey with the curve
/// named in the key's own `parameters`).
fn wrap_sec1(sec1: &[u8]) -> Result<Vec<u8>, CertError> {
    let curve = sec1_curve(sec1).ok_or_else(|| {
        CertError::from(
            "the EC private key (SEC1) does not name its curve: write it with its parameters (openssl ec -param_out) or as PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
        )
    })?;
    let mut alg = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
    alg.extend(tlv(TAG_OID, curve));
    Ok(private_key_info(&tlv(TAG_SEQUENCE, &alg), sec1))
}

/// `SEQUENCE { INTEGER 0, algorithm, OCTET STRING key }`.
fn private_key_info(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = tlv(TAG_INTEGER, &[0]);
    body.extend_from_slice(algorithm);
    body.extend(tlv(TAG_OCTET_STRING, key));
    tlv(TAG_SEQUENCE, &body)
}

/// The curve OID of a SEC1 `ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING,
/// [0] parameters OPTIONAL, [1] publicKey OPTIONAL }`.
fn sec1_curve(sec1: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = read_tlv(sec1)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (tag, value, next) = read_tlv(rest)?;
        if tag == TAG_CONTEXT_0 {
            let (inner, oid, _) = read_tlv(value)?;
            return (inner == TAG_OID).then_some(oid);
        }
        rest = next;
    }
    None
}

/// One DER element: its tag, its value and what follows it.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// One DER element with definite length.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_encode_and_decode() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; len];
            let der = tlv(TAG_OCTET_STRING, &value);
            let (tag, v, rest) = read_tlv(&der).expect("decodes");
            assert_eq!((tag, v.len(), rest.len()), (TAG_OCTET_STRING, len, 0));
        }
        assert!(read_tlv(&[0x30, 0x05, 1]).is_none(), "short input");
        assert!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "5-byte length"
        );
    }

    #[test]
    fn a_sec1_key_without_parameters_is_refused_with_a_way_out() {
        // ECPrivateKey { 1, OCTET STRING 32 bytes } without [0] parameters.
        let mut body = tlv(TAG_INTEGER, &[1]);
        body.extend(tlv(TAG_OCTET_STRING, &[1u8; 32]));
        let err = wrap_sec1(&tlv(TAG_SEQUENCE, &body)).unwrap_err();
        assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
    }

    #[test]
    fn not_a_key_says_which_forms_work() {
        let err = pkcs8_der("hello").unwrap_err().to_string();
        assert!(err.contains("BEGIN RSA PRIVATE KEY"), "{err}");
    }
}
