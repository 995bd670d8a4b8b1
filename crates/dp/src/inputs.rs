//! The files named on the command line, read and checked before anything is sent: the zone's CA
//! (`--ca-cert-file`), the token (`--token-file`) and the Dataplane (`--dataplane-file`). Every
//! error names the flag and the file.

use std::{
    fs,
    path::{Path, PathBuf},
};

use mosaic_core::{
    Sensitive,
    ca::identity,
    resource::{ResourceType, parse_document},
};

use crate::sds_client;

/// A file named on the command line is missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path is a directory.
    #[error("{flag} `{}` is a directory, not a file", path.display())]
    IsDir {
        /// The flag.
        flag: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("cannot read {flag} `{}`: {source}", path.display())]
    Read {
        /// The flag.
        flag: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no certificate.
    #[error(
        "--ca-cert-file `{}` holds no usable PEM certificate ({reason}); use the CA that signs the zone's dataplane-server certificate (the zone writes dp-server-ca.pem into its data_dir)",
        path.display()
    )]
    NotPem {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The token file is blank.
    #[error("--token-file `{}` is empty; put the dataplane token in it", path.display())]
    EmptyToken {
        /// The path.
        path: PathBuf,
    },
    /// The token cannot be sent.
    #[error("--token-file `{}`: {source}", path.display())]
    BadToken {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: sds_client::InvalidToken,
    },
    /// The Dataplane file does not parse or validate.
    #[error("--dataplane-file `{}` is not a valid Dataplane: {reason}", path.display())]
    BadDataplane {
        /// The path.
        path: PathBuf,
        /// The parser's message (with field paths).
        reason: String,
    },
    /// The Dataplane's name or mesh differs from the flags.
    #[error(
        "--dataplane-file `{}` describes {what} {found:?} but --{what} is {flag:?}; they must match",
        path.display()
    )]
    Mismatch {
        /// The path.
        path: PathBuf,
        /// `name` or `mesh`.
        what: &'static str,
        /// What the file says.
        found: String,
        /// What the flag says.
        flag: String,
    },
}

/// Reads a file named by `flag`, refusing directories.
pub fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, InputError> {
    if path.is_dir() {
        return Err(InputError::IsDir {
            flag,
            path: path.to_path_buf(),
        });
    }
    fs::read(path).map_err(|source| InputError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// Checks the CA file's content: at least one parseable certificate.
pub fn check_ca(path: &Path, pem: &[u8]) -> Result<(), InputError> {
    let not_pem = |reason: String| InputError::NotPem {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(pem).map_err(|_| not_pem("not UTF-8 text".into()))?;
    let ders = identity::pem_to_ders(text).map_err(|e| not_pem(e.0))?;
    if ders.is_empty() {
        return Err(not_pem("expected -----BEGIN CERTIFICATE-----".to_string()));
    }
    for der in &ders {
        identity::inspect_der(der).map_err(|e| not_pem(e.0))?;
    }
    Ok(())
}

/// The token: the file's content without surrounding whitespace, sendable as a header.
pub fn token(path: &Path, content: &[u8]) -> Result<Sensitive<String>, InputError> {
    let text = String::from_utf8_lossy(content);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InputError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    let token = Sensitive::new(trimmed.to_string());
    sds_client::bearer(&token).map_err(|source| InputError::BadToken {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(token)
}

/// Parses the Dataplane (Universal or Kubernetes, YAML or JSON), checks it is a valid Dataplane
/// named `name` in `mesh`, and returns its text unchanged.
pub fn dataplane(
    path: &Path,
    content: &[u8],
    mesh: &str,
    name: &str,
) -> Result<String, InputError> {
    let bad = |reason: String| InputError::BadDataplane {
        path: path.to_path_buf(),
        reason,
    };
    let resource = parse_document(content).map_err(|e| bad(e.to_string()))?;
    if resource.resource_type() != ResourceType::Dataplane {
        return Err(bad(format!(
            "it describes a {}; expected type Dataplane (Universal) or kind Dataplane (Kubernetes)",
            resource.resource_type()
        )));
    }
    let mismatch = |what, found: &str, flag: &str| InputError::Mismatch {
        path: path.to_path_buf(),
        what,
        found: found.to_string(),
        flag: flag.to_string(),
    };
    if resource.meta.name != name {
        return Err(mismatch("name", &resource.meta.name, name));
    }
    let file_mesh = resource.meta.mesh.as_deref().unwrap_or_default();
    if file_mesh != mesh {
        return Err(mismatch("mesh", file_mesh, mesh));
    }
    String::from_utf8(content.to_vec()).map_err(|_| bad("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIVERSAL: &str = "type: Dataplane\nmesh: default\nname: backend-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: backend\n";

    #[test]
    fn universal_kubernetes_and_json_dataplanes() {
        let p = Path::new("dp.yaml");
        assert_eq!(
            dataplane(p, UNIVERSAL.as_bytes(), "default", "backend-1").unwrap(),
            UNIVERSAL
        );
        let kube = "apiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmesh: prod\nmetadata:\n  name: web\nspec:\n  networking:\n    address: 10.0.0.2\n    inbound:\n    - port: 80\n      tags:\n        kuma.io/service: web\n";
        assert_eq!(dataplane(p, kube.as_bytes(), "prod", "web").unwrap(), kube);
        let json = r#"{"type":"Dataplane","mesh":"default","name":"b","networking":{"address":"1.2.3.4","inbound":[{"port":1,"tags":{"kuma.io/service":"b"}}]}}"#;
        assert!(dataplane(p, json.as_bytes(), "default", "b").is_ok());
    }

    #[test]
    fn invalid_or_mismatched_dataplanes() {
        let p = Path::new("dp.yaml");
        let e = dataplane(p, b"type: Dataplane\n", "default", "backend-1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--dataplane-file `dp.yaml` is not a valid Dataplane"),
            "{e}"
        );
        assert!(e.contains("networking"), "{e}");
        let e = dataplane(p, b"type: Mesh\nname: default\n", "default", "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("describes a Mesh"), "{e}");
        let e = dataplane(p, UNIVERSAL.as_bytes(), "default", "web-1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("describes name \"backend-1\" but --name is \"web-1\""),
            "{e}"
        );
        let e = dataplane(p, UNIVERSAL.as_bytes(), "prod", "backend-1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("describes mesh \"default\" but --mesh is \"prod\""),
            "{e}"
        );
    }

    #[test]
    fn tokens_are_trimmed_and_checked() {
        let p = Path::new("token");
        assert_eq!(token(p, b"  abc.def\n").unwrap().expose(), "abc.def");
        assert!(matches!(
            token(p, b" \n\t"),
            Err(InputError::EmptyToken { .. })
        ));
        assert!(matches!(
            token(p, b"ab\x01cd"),
            Err(InputError::BadToken { .. })
        ));
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let p = Path::new("ca.pem");
        let ca = mosaic_runtime::tls::generate_ca("test").unwrap();
        check_ca(p, ca.cert_pem.as_bytes()).unwrap();
        for bad in [
            &b"-----BEGIN CERTIFICATE-----\n"[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let e = check_ca(p, bad).unwrap_err().to_string();
            assert!(e.contains("--ca-cert-file `ca.pem`"), "{e}");
        }
    }
}
