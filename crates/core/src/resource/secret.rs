//! `Secret` (mesh-scoped) and `GlobalSecret`: opaque base64 data.

use serde::{Deserialize, Serialize};

use crate::{
    Sensitive,
    datasource::decode_base64,
    validate::{FieldPath, ValidationError, Validator},
};

/// Largest decoded secret value accepted (Kubernetes' own limit for a Secret).
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// The spec of a `Secret` or `GlobalSecret`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// The value, base64-encoded.
    #[serde(default)]
    pub data: String,
}

// === impl SecretSpec ===

impl SecretSpec {
    /// A spec holding `value`.
    pub fn from_bytes(value: &[u8]) -> Self {
        use base64::Engine as _;
        Self {
            data: base64::engine::general_purpose::STANDARD.encode(value),
        }
    }

    /// The decoded value.
    pub fn value(&self) -> Result<Sensitive<Vec<u8>>, String> {
        decode_base64(&self.data).map(Sensitive::new)
    }

    /// Checks that `data` is present, valid base64 and not too large.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        let path = FieldPath::from("data");
        if self.data.trim().is_empty() {
            v.violation(
                &path,
                "must not be empty: the secret's value, base64-encoded",
            );
        } else {
            match decode_base64(&self.data) {
                Err(e) => v.violation(&path, format!("is not valid base64: {e}")),
                Ok(bytes) if bytes.len() > MAX_SECRET_BYTES => v.violation(
                    &path,
                    format!(
                        "is {} bytes once decoded; the limit is {MAX_SECRET_BYTES}",
                        bytes.len()
                    ),
                ),
                Ok(_) => {}
            }
        }
        v.finish()
    }
}

impl std::fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSpec")
            .field("data", &"<redacted>")
            .finish()
    }
}
