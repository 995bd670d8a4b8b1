//! The metadata every KDS stream carries: `authorization: Bearer <zone token>` (read from
//! `global.token_file` on every connection attempt, so an operator can fix the file without a
//! restart), `mosaic-zone`, `mosaic-zone-version` and `mosaic-features`.

use std::path::{Path, PathBuf};

use mosaic_core::{Sensitive, token::MAX_TOKEN_BYTES};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::ZONE_VERSION;

/// Why the token file cannot be used. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read.
    #[error("cannot read `global.token_file` {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty, too large or not a header-safe token.
    #[error(
        "`global.token_file` {path:?} does not hold a zone token ({reason}): write the token `mosaicctl generate zone-token` printed into it"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        reason: &'static str,
    },
}

/// The metadata of one connection attempt.
#[derive(Clone, Debug)]
pub struct StreamMetadata {
    zone: String,
    authorization: Option<Sensitive<AsciiMetadataValue>>,
}

// === impl StreamMetadata ===

impl StreamMetadata {
    /// Reads the token (if a file is configured) and prepares the metadata for `zone`.
    pub fn load(zone: &str, token_file: Option<&Path>) -> Result<Self, TokenFileError> {
        let authorization = match token_file {
            Some(path) => Some(read_authorization(path)?),
            None => None,
        };
        Ok(Self {
            zone: zone.to_string(),
            authorization,
        })
    }

    /// Adds the metadata to a request's map.
    pub fn apply(&self, map: &mut MetadataMap) {
        if let Some(auth) = &self.authorization {
            map.insert("authorization", auth.expose().clone());
        }
        if let Ok(v) = AsciiMetadataValue::try_from(self.zone.as_str()) {
            map.insert(mosaic_kds::subscribe::ZONE_HEADER, v);
        }
        map.insert(
            mosaic_kds::subscribe::VERSION_HEADER,
            AsciiMetadataValue::from_static(ZONE_VERSION),
        );
        if let Ok(v) = AsciiMetadataValue::try_from(mosaic_kds::subscribe::FEATURES.join(",")) {
            map.insert(mosaic_kds::subscribe::FEATURES_HEADER, v);
        }
    }

    /// Whether a token is sent.
    pub fn has_token(&self) -> bool {
        self.authorization.is_some()
    }
}

fn read_authorization(path: &Path) -> Result<Sensitive<AsciiMetadataValue>, TokenFileError> {
    let invalid = |reason| TokenFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = Sensitive::new(std::fs::read(path).map_err(|source| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    })?);
    if bytes.expose().len() > MAX_TOKEN_BYTES {
        return Err(invalid("the file is larger than any token"));
    }
    let text = std::str::from_utf8(bytes.expose()).map_err(|_| invalid("not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(invalid("the file is empty"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("it contains spaces or non-ASCII characters"));
    }
    AsciiMetadataValue::try_from(format!("Bearer {token}"))
        .map(Sensitive::new)
        .map_err(|_| invalid("it contains characters a header cannot carry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "eyJhbGc.secret-part.sig\n").unwrap();
        let md = StreamMetadata::load("east", Some(&path)).unwrap();
        assert!(md.has_token());
        assert!(!format!("{md:?}").contains("secret-part"));
        let mut map = MetadataMap::new();
        md.apply(&mut map);
        assert_eq!(
            map.get("authorization").unwrap().to_str().unwrap(),
            "Bearer eyJhbGc.secret-part.sig"
        );
        assert_eq!(map.get("mosaic-zone").unwrap().to_str().unwrap(), "east");
        assert_eq!(
            map.get("mosaic-features").unwrap().to_str().unwrap(),
            "chunked-responses"
        );

        std::fs::write(&path, "two words secret-part").unwrap();
        let err = StreamMetadata::load("east", Some(&path)).unwrap_err();
        assert!(!err.to_string().contains("secret-part"), "{err}");
        std::fs::write(&path, "  \n").unwrap();
        assert!(StreamMetadata::load("east", Some(&path)).is_err());
        assert!(StreamMetadata::load("east", Some(&dir.path().join("nope"))).is_err());
        assert!(!StreamMetadata::load("east", None).unwrap().has_token());
    }
}
