//! Looking for private keys where they must not be: every PEM private key in every file under a
//! directory (sled trees and caches included; PEM inside JSON strings, `\n` escaped, too), by
//! its public key, and raw byte strings (a known key's bytes).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One private key found on disk: the file and the key's raw public key.
#[derive(Clone, Debug)]
pub struct FoundKey {
    /// The file holding it.
    pub file: PathBuf,
    /// The key's public key (for EC, the uncompressed point).
    pub public_key: Vec<u8>,
}

/// Every file under `dir` (recursively).
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// Every PEM private key (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`) in the files under
/// `dir` that parses, with its public key.
pub fn private_keys_under(dir: &Path) -> Result<Vec<FoundKey>> {
    let mut found = Vec::new();
    for file in files_under(dir)? {
        let bytes = std::fs::read(&file)?;
        let text = String::from_utf8_lossy(&bytes).replace("\\n", "\n");
        let mut rest = text.as_str();
        while let Some(start) = rest.find("-----BEGIN ") {
            let block = &rest[start..];
            let Some(end) = block.find("-----END ") else {
                break;
            };
            let Some(close) = block[end + 9..].find("-----") else {
                break;
            };
            let pem = &block[..end + 9 + close + 5];
            rest = &block[end + 9 + close + 5..];
            if !pem.contains("PRIVATE KEY-----") {
                continue;
            }
            if let Ok(key) = rcgen::KeyPair::from_pem(pem) {
                found.push(FoundKey {
                    file: file.clone(),
                    public_key: key.public_key_raw().to_vec(),
                });
            }
        }
    }
    Ok(found)
}

/// The files under `dir` containing `needle` (a byte string: a key's DER, its PEM body).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return Ok(out);
    }
    for file in files_under(dir)? {
        let bytes = std::fs::read(&file)?;
        if bytes.windows(needle.len()).any(|w| w == needle) {
            out.push(file);
        }
    }
    Ok(out)
}

/// The raw public key of the certificate `cert_pem` (its subjectPublicKey bits).
pub fn cert_public_key(cert_pem: &str) -> Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("not a certificate: {e}"))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}
