//! AWS credentials and Vault AWS login bodies.
