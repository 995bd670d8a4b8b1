//! Token revocation lists, kept the way Kuma and Kong Mesh keep them: tokens are never stored,
//! so a leaked one is revoked by listing its id (the `jti` claim) in a secret.
//!
//! - Dataplane tokens of mesh `M`: the Secret `dataplane-token-revocations-M` in mesh `M`
//!   ([`dataplane_token_revocations`]); zones refuse a listed token and end its open streams.
//! - Zone tokens: the GlobalSecret `zone-token-revocations` ([`ZONE_TOKEN_REVOCATIONS`]); the
//!   global refuses a listed token and ends its zone's KDS streams.
//!
//! The secret's value is the ids separated by commas (whitespace and newlines around them are
//! ignored), e.g. `kubectl`/`mosaicctl apply` of a Secret whose `data` is
//! `base64("0f3a…,9c41…")`.

use std::collections::BTreeSet;

/// The GlobalSecret listing revoked zone token ids.
pub const ZONE_TOKEN_REVOCATIONS: &str = "zone-token-revocations";

/// The name of the Secret (in `mesh`) listing revoked dataplane token ids of `mesh`.
pub fn dataplane_token_revocations(mesh: &str) -> String {
    format!("dataplane-token-revocations-{mesh}")
}

/// A set of revoked token ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocations {
    ids: BTreeSet<String>,
}

// === impl Revocations ===

impl Revocations {
    /// Reads a revocation secret's decoded value: ids separated by commas and/or whitespace.
    /// Bytes that are not UTF-8 cannot be a token id and are ignored with the id they are in.
    pub fn parse(value: &[u8]) -> Self {
        let text = String::from_utf8_lossy(value);
        Self {
            ids: text
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(str::trim)
                .filter(|id| !id.is_empty() && !id.contains('\u{FFFD}'))
                .map(str::to_string)
                .collect(),
        }
    }

    /// Whether the token with id `jti` is revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.ids.contains(jti)
    }

    /// How many ids are listed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_split_on_commas_and_whitespace() {
        let r = Revocations::parse(b" a1b2 ,c3d4\n\ne5f6,, \t");
        assert_eq!(r.len(), 3);
        assert!(r.contains("a1b2") && r.contains("c3d4") && r.contains("e5f6"));
        assert!(!r.contains("a1b"));
        assert!(!r.contains(""));
        assert!(Revocations::parse(b"").is_empty());
        assert!(Revocations::parse(b"\xff\xfe,ok").contains("ok"));
        assert_eq!(Revocations::parse(b"\xff\xfe,ok").len(), 1);
    }

    #[test]
    fn names_follow_kuma() {
        assert_eq!(
            dataplane_token_revocations("default"),
            "dataplane-token-revocations-default"
        );
        assert_eq!(ZONE_TOKEN_REVOCATIONS, "zone-token-revocations");
    }
}
