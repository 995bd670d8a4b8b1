//! The Vault PKI backend.
//!
//! Module map:
//! - [`sigv4`]: AWS Signature Version 4, used to sign the STS request of Vault's AWS IAM login.
//! - [`aws`]: AWS credentials and the request bodies of Vault's `auth/aws/login` (IAM and EC2).

pub mod aws;
pub mod sigv4;
