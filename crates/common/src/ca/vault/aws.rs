//! AWS credentials and Vault AWS login bodies.

/// Placeholder until the AWS module lands: see the wt-aws branch.
pub async fn vault_login_body(
    _kind: super::auth::AwsKind,
    _role: &str,
    _server_id_header: &str,
) -> Result<serde_json::Value, String> {
    Err("AWS auth is not built yet".to_string())
}
