//! Reading a [`DataSource`]'s value: a mesh Secret through the store's [`SecretSource`], a file on
//! this host, or the inline value.

use std::path::PathBuf;

use mosaic_core::{
    Sensitive,
    datasource::{DataSource, DataSourceError, SecretSource, decode_base64},
};

/// Reads a [`DataSource`]'s value.
pub trait ResolveDataSource {
    /// The value; Secrets are looked up in `mesh`.
    fn resolve(
        &self,
        mesh: &str,
        secrets: &dyn SecretSource,
    ) -> Result<Sensitive<Vec<u8>>, DataSourceError>;

    /// The value as UTF-8 text with surrounding whitespace trimmed (tokens, PEM).
    fn resolve_string(
        &self,
        mesh: &str,
        secrets: &dyn SecretSource,
    ) -> Result<Sensitive<String>, DataSourceError>;
}

impl ResolveDataSource for DataSource {
    /// Reads the value. Secrets are looked up in `mesh`.
    fn resolve(
        &self,
        mesh: &str,
        secrets: &dyn SecretSource,
    ) -> Result<Sensitive<Vec<u8>>, DataSourceError> {
        if self.set_count() != 1 {
            return Err(DataSourceError::NotExactlyOne);
        }
        if let Some(name) = &self.secret {
            return match secrets.mesh_secret(mesh, name) {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(DataSourceError::SecretNotFound {
                    mesh: mesh.to_string(),
                    name: name.clone(),
                }),
                Err(reason) => Err(DataSourceError::Store {
                    mesh: mesh.to_string(),
                    name: name.clone(),
                    reason,
                }),
            };
        }
        if let Some(path) = &self.file {
            return std::fs::read(path).map(Sensitive::new).map_err(|source| {
                DataSourceError::File {
                    path: PathBuf::from(path),
                    source,
                }
            });
        }
        if let Some(b64) = &self.inline {
            return decode_base64(b64)
                .map(Sensitive::new)
                .map_err(DataSourceError::Base64);
        }
        Ok(Sensitive::new(
            self.inline_string.clone().unwrap_or_default().into_bytes(),
        ))
    }

    /// Reads the value as UTF-8 text with surrounding whitespace trimmed (tokens, PEM).
    fn resolve_string(
        &self,
        mesh: &str,
        secrets: &dyn SecretSource,
    ) -> Result<Sensitive<String>, DataSourceError> {
        let bytes = self.resolve(mesh, secrets)?.into_inner();
        let text = String::from_utf8(bytes)
            .map_err(|_| DataSourceError::Base64("the value is not UTF-8 text".to_string()))?;
        Ok(Sensitive::new(text.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use mosaic_core::datasource::StaticSecrets;

    use super::*;

    #[test]
    fn resolves_each_kind() {
        let secrets = StaticSecrets::new().with("default", "token-1", "s.abc");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "s.file\n").unwrap();
        let cases = [
            (DataSource::secret("token-1"), "s.abc"),
            (DataSource::file(file.to_string_lossy()), "s.file"),
            (DataSource::inline_bytes(b"s.inline"), "s.inline"),
            (DataSource::inline_string("s.text"), "s.text"),
        ];
        for (ds, want) in cases {
            let got = ds.resolve_string("default", &secrets).unwrap();
            assert_eq!(got.expose(), want);
        }
    }

    #[test]
    fn errors_are_clear_and_secret_free() {
        let secrets = StaticSecrets::new();
        let e = DataSource::secret("missing")
            .resolve("default", &secrets)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("secret \"missing\" not found in mesh \"default\"")
        );
        let e = DataSource::file("/nonexistent/x")
            .resolve("default", &secrets)
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x"));
        let e = DataSource::default()
            .resolve("default", &secrets)
            .unwrap_err();
        assert!(matches!(e, DataSourceError::NotExactlyOne));
    }
}
