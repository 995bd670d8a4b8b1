//! DataSource: where a secret value comes from (`secret: NAME`, `file: PATH`, `inline: BASE64`,
//! `inlineString: TEXT`), its validation, and the [`SecretSource`] the stores implement. Reading
//! a value (which may read a file) is `mosaic_ca::datasource`'s.

use std::{collections::HashMap, path::PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{
    Sensitive,
    validate::{FieldPath, Validator},
};

/// A DataSource as written: exactly one field must be set (checked by [`DataSource::validate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// Name of a mesh-scoped Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Path of a file on the control plane's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The value, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// The value as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_string: Option<String>,
}

/// Looks up mesh-scoped secrets; the global's and zones' stores implement it.
pub trait SecretSource: Send + Sync {
    /// The decoded value of Secret `name` in `mesh`, or `None` when there is no such Secret.
    fn mesh_secret(&self, mesh: &str, name: &str) -> Result<Option<Sensitive<Vec<u8>>>, String>;
}

/// An in-memory [`SecretSource`], for tools and tests.
#[derive(Clone, Debug, Default)]
pub struct StaticSecrets {
    secrets: HashMap<(String, String), Sensitive<Vec<u8>>>,
}

/// Why a DataSource could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataSourceError {
    /// The DataSource sets none or several of its fields.
    #[error("a DataSource needs exactly one of secret, file, inline or inlineString")]
    NotExactlyOne,
    /// The named Secret does not exist.
    #[error(
        "secret {name:?} not found in mesh {mesh:?}: create it (mosaicctl apply) before using it"
    )]
    SecretNotFound {
        /// The mesh.
        mesh: String,
        /// The Secret's name.
        name: String,
    },
    /// The secret store failed.
    #[error("could not read secret {name:?} of mesh {mesh:?}: {reason}")]
    Store {
        /// The mesh.
        mesh: String,
        /// The Secret's name.
        name: String,
        /// The store's error.
        reason: String,
    },
    /// The file could not be read.
    #[error("could not read file {path:?}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `inline` is not valid base64.
    #[error("inline value is not valid base64: {0}")]
    Base64(String),
}

// === impl DataSource ===

impl DataSource {
    /// A `secret:` DataSource.
    pub fn secret(name: impl Into<String>) -> Self {
        Self {
            secret: Some(name.into()),
            ..Self::default()
        }
    }

    /// A `file:` DataSource.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            file: Some(path.into()),
            ..Self::default()
        }
    }

    /// An `inlineString:` DataSource.
    pub fn inline_string(text: impl Into<String>) -> Self {
        Self {
            inline_string: Some(text.into()),
            ..Self::default()
        }
    }

    /// An `inline:` DataSource from raw bytes (encoded here).
    pub fn inline_bytes(bytes: &[u8]) -> Self {
        Self {
            inline: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ..Self::default()
        }
    }

    /// How many of the four fields are set (exactly one is valid).
    pub fn set_count(&self) -> usize {
        [
            self.secret.is_some(),
            self.file.is_some(),
            self.inline.is_some(),
            self.inline_string.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count()
    }

    /// Records every problem with this DataSource at `path`.
    pub fn validate(&self, path: &FieldPath, v: &mut Validator) {
        match self.set_count() {
            0 => v.violation(
                path,
                "must set exactly one of secret, file, inline or inlineString; none is set",
            ),
            1 => {}
            _ => v.violation(
                path,
                "must set exactly one of secret, file, inline or inlineString; several are set",
            ),
        }
        if let Some(s) = &self.secret
            && s.trim().is_empty()
        {
            v.violation(&path.field("secret"), "must not be empty");
        }
        if let Some(f) = &self.file
            && f.trim().is_empty()
        {
            v.violation(&path.field("file"), "must not be empty");
        }
        if let Some(i) = &self.inline
            && let Err(e) = decode_base64(i)
        {
            v.violation(&path.field("inline"), format!("is not valid base64: {e}"));
        }
    }

    /// A short description of where the value comes from, without the value (for errors).
    pub fn describe(&self) -> String {
        match (&self.secret, &self.file) {
            (Some(s), _) => format!("secret {s:?}"),
            (None, Some(f)) => format!("file {f:?}"),
            _ if self.inline.is_some() => "inline value".to_string(),
            _ => "inlineString value".to_string(),
        }
    }
}

/// Decodes standard or URL-safe base64, padded or not, ignoring line breaks.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(v) = engine.decode(&compact) {
            return Ok(v);
        }
    }
    STANDARD.decode(&compact).map_err(|e| e.to_string())
}

// === impl StaticSecrets ===

impl StaticSecrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a secret.
    pub fn insert(&mut self, mesh: &str, name: &str, value: impl Into<Vec<u8>>) {
        self.secrets.insert(
            (mesh.to_string(), name.to_string()),
            Sensitive::new(value.into()),
        );
    }

    /// Builder form of [`StaticSecrets::insert`].
    pub fn with(mut self, mesh: &str, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.insert(mesh, name, value);
        self
    }
}

impl SecretSource for StaticSecrets {
    fn mesh_secret(&self, mesh: &str, name: &str) -> Result<Option<Sensitive<Vec<u8>>>, String> {
        Ok(self
            .secrets
            .get(&(mesh.to_string(), name.to_string()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_counts_fields() {
        let mut v = Validator::new();
        let two = DataSource {
            secret: Some("a".into()),
            inline_string: Some("b".into()),
            ..Default::default()
        };
        two.validate(&FieldPath::from("auth.token"), &mut v);
        DataSource::default().validate(&FieldPath::from("tls.caCert"), &mut v);
        DataSource {
            inline: Some("!!!not base64".into()),
            ..Default::default()
        }
        .validate(&FieldPath::from("x"), &mut v);
        let e = v.finish().unwrap_err();
        let fields: Vec<_> = e.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["auth.token", "tls.caCert", "x.inline"]);
    }
}
