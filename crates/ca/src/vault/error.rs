//! `VaultError`: what failed talking to Vault, Vault's own message quoted, and what to do.

use std::fmt;

/// What a request to Vault was for; used to word errors and hints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Logging in with an auth method at a mount.
    Login {
        /// The method (`cert`, `approle`, `kubernetes`, `aws`).
        method: &'static str,
        /// Its mount path.
        mount: String,
    },
    /// Looking up the configured token.
    LookupSelf,
    /// Renewing the current token.
    Renew,
    /// `{pki}/issue/{role}`.
    Issue {
        /// PKI mount.
        pki: String,
        /// Role.
        role: String,
    },
    /// `{pki}/sign/{role}`.
    Sign {
        /// PKI mount.
        pki: String,
        /// Role.
        role: String,
    },
    /// Reading the CA chain of a PKI mount.
    ReadCa {
        /// PKI mount.
        pki: String,
    },
    /// Reading a PKI role (`{pki}/roles/{role}`), for admission's notes.
    ReadRole {
        /// PKI mount.
        pki: String,
        /// Role.
        role: String,
    },
    /// `sys/health`: whether Vault answers, is initialized and unsealed.
    Health,
    /// `intermediate.csrPath`: Vault makes a zone intermediate's key and CSR.
    GenerateIntermediate {
        /// The path.
        path: String,
    },
    /// `intermediate.caPath`: Vault signs a zone intermediate.
    SignIntermediate {
        /// The path.
        path: String,
    },
    /// Listing the keys of a PKI mount (to find the ones Mosaic made and no longer needs).
    ListKeys {
        /// The mount.
        mount: String,
    },
    /// Deleting a key Mosaic made in a PKI mount.
    DeleteKey {
        /// The mount.
        mount: String,
        /// The key's id.
        key: String,
    },
}

/// A failed exchange with Vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The request did not get an HTTP answer (connection, TLS, timeout).
    #[error(
        "could not reach Vault at {addr} to {op}: {cause}{}",
        hint_suffix(hint)
    )]
    Transport {
        /// Vault's address as configured.
        addr: String,
        /// What the request was for.
        op: Operation,
        /// The transport error chain.
        cause: String,
        /// What to do.
        hint: String,
    },
    /// Vault answered with an error status.
    #[error(
        "Vault at {addr} refused to {op} (HTTP {status}): {}{}",
        quote(errors),
        hint_suffix(hint)
    )]
    Status {
        /// Vault's address as configured.
        addr: String,
        /// What the request was for.
        op: Operation,
        /// HTTP status.
        status: u16,
        /// Vault's `errors` list.
        errors: Vec<String>,
        /// What to do.
        hint: String,
    },
    /// Vault answered 2xx but the body was not what its API documents.
    #[error("Vault at {addr} answered the request to {op} with an unexpected body: {reason}")]
    Decode {
        /// Vault's address as configured.
        addr: String,
        /// What the request was for.
        op: Operation,
        /// What was wrong.
        reason: String,
    },
    /// The client could not be configured (CA certificate, client certificate, address).
    #[error("{0}")]
    Config(String),
    /// Vault issued something Mosaic cannot use.
    #[error("{0}")]
    Certificate(String),
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

fn quote(errors: &[String]) -> String {
    if errors.is_empty() {
        return "no error message".to_string();
    }
    errors
        .iter()
        .map(|e| format!("{:?}", e.trim()))
        .collect::<Vec<_>>()
        .join("; ")
}

// === impl Operation ===

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Login { method, mount } => {
                write!(f, "log in with {method} auth at auth/{mount}")
            }
            Operation::LookupSelf => f.write_str("look up the token (auth/token/lookup-self)"),
            Operation::Renew => f.write_str("renew the token (auth/token/renew-self)"),
            Operation::Issue { pki, role } => {
                write!(f, "issue a certificate at {pki}/issue/{role}")
            }
            Operation::Sign { pki, role } => write!(f, "sign a certificate at {pki}/sign/{role}"),
            Operation::ReadCa { pki } => write!(f, "read the CA chain of {pki}"),
            Operation::ReadRole { pki, role } => write!(f, "read the role {pki}/roles/{role}"),
            Operation::Health => f.write_str("report its health (sys/health)"),
            Operation::GenerateIntermediate { path } => {
                write!(f, "make an intermediate's key and CSR at {path}")
            }
            Operation::SignIntermediate { path } => {
                write!(f, "sign a zone intermediate CA at {path}")
            }
            Operation::ListKeys { mount } => write!(f, "list the keys of {mount} ({mount}/keys)"),
            Operation::DeleteKey { mount, key } => {
                write!(f, "delete key {key} of {mount} ({mount}/key/{key})")
            }
        }
    }
}

// === impl VaultError ===

impl VaultError {
    /// Vault's HTTP status, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Replaces the `<mesh>` placeholder of hints with the mesh's name.
    pub fn for_mesh(mut self, mesh: &str) -> Self {
        if let VaultError::Status { hint, .. } | VaultError::Transport { hint, .. } = &mut self {
            *hint = hint.replace("<mesh>", mesh);
        }
        self
    }

    /// Whether Vault refused a CSR's key (its type or size is not the role's).
    pub fn is_key_refusal(&self) -> bool {
        match self {
            VaultError::Status { errors, .. } => is_key_text(&errors.join(" ").to_lowercase()),
            _ => false,
        }
    }

    /// Whether Vault said "permission denied" (bad, expired or revoked token, or missing policy).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            VaultError::Status { status, errors, .. } => {
                *status == 403 || errors.iter().any(|e| e.contains("permission denied"))
            }
            _ => false,
        }
    }
}

/// What to do about a Vault error status.
pub fn status_hint(op: &Operation, status: u16, errors: &[String]) -> String {
    let text = errors.join(" ").to_lowercase();
    let path_caps = |path: String, verbs: &str| {
        format!("check that the token is valid and that its policy grants {verbs} on \"{path}\"")
    };
    if text.contains("unknown role")
        || text.contains("no role found")
        || text.contains("role not found")
    {
        return match op {
            Operation::Issue { pki, role } | Operation::Sign { pki, role } => {
                format!(
                    "create the role with `vault write {pki}/roles/{role} ...` or fix conf.fromCp.role"
                )
            }
            Operation::Login { mount, .. } => {
                format!("create that role in auth/{mount} or fix the auth role")
            }
            _ => String::new(),
        };
    }
    if text.contains("uri subject alternative names")
        || text.contains("uri sans")
        || text.contains("uri_sans")
    {
        return "the role's allowed_uri_sans must allow spiffe://<mesh>/* and kuma://*".to_string();
    }
    if is_key_text(&text) {
        let role = match op {
            Operation::Sign { pki, role } | Operation::Issue { pki, role } => {
                format!("{pki}/roles/{role}")
            }
            _ => "the role".to_string(),
        };
        return format!(
            "mode sign makes the CSR's key as the role's key_type and key_bits say when the token may read {role}, else an ECDSA P-256 key: grant [\"read\"] on {role} to the token's policy, or set key_type=ec (or any) on the role, or use mode issue"
        );
    }
    if text.contains("common name") && text.contains("not allowed") {
        return "the role must allow the rendered commonName: set allowed_domains and allow_subdomains, or drop conf.fromCp.commonName".to_string();
    }
    if text.contains("no handler for route") || status == 404 {
        return match op {
            Operation::Issue { pki, .. }
            | Operation::Sign { pki, .. }
            | Operation::ReadCa { pki } => format!(
                "check that a PKI secrets engine is mounted at {pki:?}{}",
                " (and in the right namespace)"
            ),
            Operation::Login { method, mount } => {
                format!("check that the {method} auth method is enabled at auth/{mount}")
            }
            Operation::GenerateIntermediate { path } | Operation::SignIntermediate { path } => {
                format!(
                    "check that a PKI secrets engine is mounted at the start of {path:?} (and in the right namespace) and that the path is right (intermediate.caPath / intermediate.csrPath)"
                )
            }
            _ => String::new(),
        };
    }
    if status == 403 || text.contains("permission denied") {
        return match op {
            Operation::Issue { pki, role } => {
                path_caps(format!("{pki}/issue/{role}"), "[\"create\", \"update\"]")
            }
            Operation::Sign { pki, role } => {
                path_caps(format!("{pki}/sign/{role}"), "[\"create\", \"update\"]")
            }
            Operation::Login { method, .. } => format!(
                "Vault rejected the {method} credentials: check them and the role they log in to"
            ),
            Operation::LookupSelf | Operation::Renew => {
                "the token is invalid, expired or revoked: issue a new one".to_string()
            }
            // The CA chain is read without a token: Vault answers an unserved path so.
            Operation::ReadCa { pki } => format!(
                "check that a PKI secrets engine is mounted at {pki:?} (and in the right namespace): Vault answers \"permission denied\" to a request without a token for a path it does not serve"
            ),
            Operation::ReadRole { pki, role } => {
                path_caps(format!("{pki}/roles/{role}"), "[\"read\"]")
            }
            Operation::Health => String::new(),
            Operation::GenerateIntermediate { path } | Operation::SignIntermediate { path } => {
                path_caps(path.clone(), "[\"create\", \"update\"]")
            }
            Operation::ListKeys { mount } => path_caps(format!("{mount}/keys"), "[\"list\"]"),
            Operation::DeleteKey { mount, .. } => {
                path_caps(format!("{mount}/key/*"), "[\"delete\"]")
            }
        };
    }
    if status == 503 && text.contains("sealed") {
        return "unseal Vault".to_string();
    }
    if *op == Operation::Health && status == 501 {
        return "initialize Vault (vault operator init)".to_string();
    }
    String::new()
}

/// Whether Vault's (lower-cased) errors are about a key's type or size.
fn is_key_text(text: &str) -> bool {
    text.contains("key type")
        || text.contains("key_type")
        || text.contains("role requires keys")
        || text.contains("role requires a minimum of")
        || text.contains("csr's key is")
        || text.contains("key_bits")
        || text.contains("key bits")
}

/// What to do about a transport error, from its message chain.
pub fn transport_hint(cause: &str, timeout: std::time::Duration) -> String {
    let c = cause.to_lowercase();
    if c.contains("notvalidforname")
        || c.contains("not valid for name")
        || c.contains("certificate is not valid for")
    {
        "Vault's TLS certificate does not name the host dialled: set conf.fromCp.tls.serverName to a name in it, or fix the address".into()
    } else if c.contains("unknownissuer")
        || c.contains("unknown issuer")
        || c.contains("invalid peer certificate")
    {
        "Vault's TLS certificate is not trusted: set conf.fromCp.tls.caCert to the CA that signed it (or skipVerify for development only)".into()
    } else if c.contains("timed out") || c.contains("timeout") {
        format!(
            "no answer within {}: raise dpCert.requestTimeout or check Vault's health",
            mosaic_core::duration::format_duration(timeout)
        )
    } else if c.contains("connection refused") || c.contains("dns") || c.contains("connect") {
        "check conf.fromCp.address and that Vault is running and reachable from this control plane (every zone must reach Vault at the same address)".into()
    } else {
        String::new()
    }
}

impl From<VaultError> for mosaic_core::ca::CaErrorKind {
    fn from(e: VaultError) -> Self {
        mosaic_core::ca::CaErrorKind::Vault(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(errors: &[&str]) -> VaultError {
        VaultError::Status {
            addr: "http://vault:8200".into(),
            op: Operation::Sign {
                pki: "pki_int".into(),
                role: "example-dot-com".into(),
            },
            status: 400,
            errors: errors.iter().map(|e| e.to_string()).collect(),
            hint: String::new(),
        }
    }

    #[test]
    fn vault_s_key_refusals_are_recognised() {
        for text in [
            "role requires keys of type rsa",
            "role requires a minimum of a 4096-bit key, but CSR's key is 2048 bits",
        ] {
            assert!(refused(&[text]).is_key_refusal(), "{text}");
        }
        for text in [
            "permission denied",
            "common name web.mesh not allowed by this role",
        ] {
            assert!(!refused(&[text]).is_key_refusal(), "{text}");
        }
    }

    #[test]
    fn the_key_type_hint_names_the_role_to_grant_read_on() {
        let op = Operation::Sign {
            pki: "pki_int".into(),
            role: "example-dot-com".into(),
        };
        let hint = status_hint(&op, 400, &["role requires keys of type rsa".into()]);
        for want in [
            "grant [\"read\"] on pki_int/roles/example-dot-com",
            "set key_type=ec (or any)",
            "use mode issue",
        ] {
            assert!(hint.contains(want), "{want:?} missing from {hint}");
        }
    }
}
