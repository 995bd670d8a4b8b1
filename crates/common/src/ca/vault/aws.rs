//! AWS credentials and Vault AWS login bodies.

use crate::Sensitive;

/// AWS credentials: a long-lived key pair, or temporary credentials with a session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (`AKIA...` / `ASIA...`); not secret.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Sensitive<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Sensitive<String>>,
}
