//! Several signing keys per purpose, with serials, as Kuma keeps them (`zone-token-signing-key-N`,
//! `dataplane-token-signing-key-<mesh>-N`): the key with the highest serial signs new tokens,
//! every key not retired verifies, rotation adds key N+1, retirement removes an older key.
//!
//! Records: key 1 is the record a purpose always had (`tokens/signing-key/zone`,
//! `mesh/<mesh>/tokens/signing-key/dataplane`), so a store from before rotation existed reads as
//! key 1 alone; key N ≥ 2 is that record with `-N` appended. A record holds the key's PKCS#8, or,
//! once the key is retired, `retired:<kid>` (the private key is gone; the kid is kept so a token
//! it signed is refused naming it). Serials are dense: key N+1 is only written once key N exists.
//!
//! Every write is a `PutInternal` through the store (raft): rotation proposes key N+1 with
//! `if_absent` (two racing rotations agree on the winner's key), retirement overwrites one
//! record. Retiring the newest key is refused, so the highest serial is always a key that signs.

use std::sync::Arc;

use mosaic_core::token::{PublicKey, SigningKey};
use serde::Serialize;

use super::{KeyPurpose, TokenIssueError, Tokens};
use crate::store::{Command, CommandResult, ResourceKey};

/// What a retired key's record starts with (followed by its kid).
const RETIRED_PREFIX: &[u8] = b"retired:";

/// Most serials read for one purpose (a bound on a damaged store, far above any real use).
const MAX_SERIAL: u32 = 100_000;

/// The internal record of key `serial` of `purpose`.
pub fn record_of(purpose: &KeyPurpose, serial: u32) -> String {
    if serial <= 1 {
        purpose.record()
    } else {
        format!("{}-{serial}", purpose.record())
    }
}

/// The serial of a signing-key record of `base` (a purpose's record): `base` itself is 1,
/// `base-N` is N.
pub fn serial_of(record: &str, base: &str) -> Option<u32> {
    let rest = record.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(1);
    }
    let n: u32 = rest.strip_prefix('-')?.parse().ok()?;
    (n >= 2 && rest[1..] == n.to_string()).then_some(n)
}

/// One stored key.
pub(super) enum Slot {
    /// It verifies tokens (and signs them if it is the newest).
    Active(Arc<SigningKey>),
    /// Retired: its tokens are refused.
    Retired {
        /// Its key id.
        kid: String,
    },
}

/// A key as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyInfo {
    /// Its serial (Kuma's `N` of `zone-token-signing-key-N`).
    pub serial: u32,
    /// The key id tokens it signed name in their header.
    pub kid: String,
    /// `signing` (the newest: new tokens), `verifying` (older, its tokens still valid) or
    /// `retired` (its tokens are refused).
    pub state: KeyState,
}

/// What a key does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// The newest key: it signs new tokens (and verifies).
    Signing,
    /// An older key: it verifies the tokens it signed.
    Verifying,
    /// Retired: tokens it signed are refused.
    Retired,
}

// === impl KeyPurpose (commands) ===

impl KeyPurpose {
    /// What its keys sign, for messages (`zone tokens`, `dataplane tokens of mesh "m"`).
    pub fn describe(&self) -> String {
        match self {
            KeyPurpose::Zone => "zone tokens".to_string(),
            KeyPurpose::Dataplane { mesh } => format!("dataplane tokens of mesh {mesh:?}"),
        }
    }

    /// The `mosaicctl` arguments naming this purpose (`zone`, `dataplane --mesh m`).
    pub fn ctl_args(&self) -> String {
        match self {
            KeyPurpose::Zone => "zone".to_string(),
            KeyPurpose::Dataplane { mesh } => format!("dataplane --mesh {mesh}"),
        }
    }
}

// === impl Tokens (signing keys) ===

impl Tokens {
    /// The stored keys of `purpose` by serial (from 1), read from this replica's state.
    pub(super) fn stored_keys(
        &self,
        purpose: &KeyPurpose,
    ) -> Result<Vec<(u32, Slot)>, TokenIssueError> {
        let mut out = Vec::new();
        for serial in 1..=MAX_SERIAL {
            let record = record_of(purpose, serial);
            let Some(bytes) = self.store.internal(&record)? else {
                break;
            };
            let slot = match bytes.strip_prefix(RETIRED_PREFIX) {
                Some(kid) => Slot::Retired {
                    kid: String::from_utf8_lossy(kid).into_owned(),
                },
                None => Slot::Active(self.key_for(record, &bytes)?),
            };
            out.push((serial, slot));
        }
        Ok(out)
    }

    /// The public keys of `purpose`'s keys that are not retired, by serial.
    pub(super) fn active_public_keys(
        &self,
        purpose: &KeyPurpose,
    ) -> Result<Vec<PublicKey>, TokenIssueError> {
        Ok(self
            .stored_keys(purpose)?
            .into_iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Active(k) => Some(k.public_key().clone()),
                Slot::Retired { .. } => None,
            })
            .collect())
    }

    /// The newest key of `purpose` (the one that signs), if it has any.
    pub(super) fn newest_key(
        &self,
        purpose: &KeyPurpose,
    ) -> Result<Option<(u32, Arc<SigningKey>)>, TokenIssueError> {
        Ok(self
            .stored_keys(purpose)?
            .into_iter()
            .rev()
            .find_map(|(serial, slot)| match slot {
                Slot::Active(k) => Some((serial, k)),
                Slot::Retired { .. } => None,
            }))
    }

    /// The serial of the retired key of `purpose` whose kid is `kid`, if one is.
    pub fn retired_serial(&self, purpose: &KeyPurpose, kid: &str) -> Option<u32> {
        self.stored_keys(purpose)
            .ok()?
            .into_iter()
            .find_map(|(serial, slot)| match slot {
                Slot::Retired { kid: k } if k == kid => Some(serial),
                _ => None,
            })
    }

    /// The keys of `purpose` with their state (a consistent read: every committed rotation and
    /// retirement is seen).
    pub async fn signing_keys(
        &self,
        purpose: &KeyPurpose,
    ) -> Result<Vec<SigningKeyInfo>, TokenIssueError> {
        self.keys_readable(purpose).await?;
        let stored = self.stored_keys(purpose)?;
        let newest = stored.len();
        Ok(stored
            .into_iter()
            .enumerate()
            .map(|(i, (serial, slot))| info(serial, &slot, i + 1 == newest))
            .collect())
    }

    /// Adds key N+1 to `purpose` (key 1 when it has none), which signs every token issued from
    /// now on; the older keys keep verifying until retired. Returns the new key.
    pub async fn rotate(&self, purpose: &KeyPurpose) -> Result<SigningKeyInfo, TokenIssueError> {
        self.keys_readable(purpose).await?;
        let next = u32::try_from(self.stored_keys(purpose)?.len())
            .unwrap_or(MAX_SERIAL)
            .saturating_add(1);
        if next > MAX_SERIAL {
            return Err(TokenIssueError::Unexpected {
                record: record_of(purpose, next),
                result: format!("{} have {MAX_SERIAL} keys already", purpose.describe()),
            });
        }
        let record = record_of(purpose, next);
        let fresh = SigningKey::generate()?;
        let cmd = Command::PutInternal {
            key: record.clone(),
            value: fresh.pkcs8().expose().clone(),
            if_absent: true,
        };
        // A rotation racing this one may have written key N+1 first: its key is the new one.
        let value = match self.store.write(cmd).await? {
            CommandResult::Internal { value } => value,
            other => return Err(unexpected(record, other)),
        };
        let key = self.key_for(record, &value)?;
        tracing::info!(purpose = %purpose.describe(), serial = next, kid = %key.kid(), "rotated the token signing key: new tokens are signed by the new key");
        Ok(SigningKeyInfo {
            serial: next,
            kid: key.kid().to_string(),
            state: KeyState::Signing,
        })
    }

    /// Retires key `serial` of `purpose`: tokens it signed are refused from now on (and the open
    /// KDS/SDS streams they authenticated end). The newest key cannot be retired (409).
    pub async fn retire(
        &self,
        purpose: &KeyPurpose,
        serial: u32,
    ) -> Result<SigningKeyInfo, TokenIssueError> {
        self.keys_readable(purpose).await?;
        let stored = self.stored_keys(purpose)?;
        let newest = stored.last().map(|(n, _)| *n);
        let Some((_, slot)) = stored.iter().find(|(n, _)| *n == serial) else {
            return Err(TokenIssueError::KeyNotFound {
                purpose: purpose.describe(),
                serial,
                have: stored
                    .iter()
                    .map(|(n, s)| info(*n, s, Some(*n) == newest))
                    .filter(|i| i.state != KeyState::Retired)
                    .map(|i| i.serial.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let kid = match slot {
            Slot::Retired { kid } => {
                return Err(TokenIssueError::AlreadyRetired {
                    purpose: purpose.describe(),
                    serial,
                    kid: kid.clone(),
                });
            }
            Slot::Active(key) => key.kid().to_string(),
        };
        if Some(serial) == newest {
            return Err(TokenIssueError::RetireNewest {
                purpose: purpose.describe(),
                serial,
                only: stored
                    .iter()
                    .filter(|(_, s)| matches!(s, Slot::Active(_)))
                    .count()
                    == 1,
                ctl: purpose.ctl_args(),
            });
        }
        let record = record_of(purpose, serial);
        let mut tombstone = RETIRED_PREFIX.to_vec();
        tombstone.extend_from_slice(kid.as_bytes());
        let cmd = Command::PutInternal {
            key: record.clone(),
            value: tombstone,
            if_absent: false,
        };
        match self.store.write(cmd).await? {
            CommandResult::Internal { .. } => {}
            other => return Err(unexpected(record, other)),
        }
        tracing::warn!(purpose = %purpose.describe(), serial, kid = %kid, "retired a token signing key: tokens it signed are refused and their open streams end");
        Ok(SigningKeyInfo {
            serial,
            kid,
            state: KeyState::Retired,
        })
    }

    /// Waits for a consistent read, and for a dataplane purpose checks that its Mesh exists.
    async fn keys_readable(&self, purpose: &KeyPurpose) -> Result<(), TokenIssueError> {
        self.store.read_barrier().await?;
        if let KeyPurpose::Dataplane { mesh } = purpose
            && self.store.get(&ResourceKey::mesh(mesh))?.is_none()
        {
            return Err(TokenIssueError::MeshNotFound { mesh: mesh.clone() });
        }
        Ok(())
    }
}

fn info(serial: u32, slot: &Slot, newest: bool) -> SigningKeyInfo {
    match slot {
        Slot::Active(key) => SigningKeyInfo {
            serial,
            kid: key.kid().to_string(),
            state: if newest {
                KeyState::Signing
            } else {
                KeyState::Verifying
            },
        },
        Slot::Retired { kid } => SigningKeyInfo {
            serial,
            kid: kid.clone(),
            state: KeyState::Retired,
        },
    }
}

fn unexpected(record: String, other: CommandResult) -> TokenIssueError {
    TokenIssueError::Unexpected {
        record,
        result: match other {
            CommandResult::Refused(r) => format!("refused: {r:?}"),
            _ => "an unexpected result".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_serial() {
        let zone = KeyPurpose::Zone;
        assert_eq!(record_of(&zone, 1), "tokens/signing-key/zone");
        assert_eq!(record_of(&zone, 2), "tokens/signing-key/zone-2");
        let dp = KeyPurpose::Dataplane {
            mesh: "default".into(),
        };
        assert_eq!(
            record_of(&dp, 12),
            "mesh/default/tokens/signing-key/dataplane-12"
        );
        let base = zone.record();
        assert_eq!(serial_of("tokens/signing-key/zone", &base), Some(1));
        assert_eq!(serial_of("tokens/signing-key/zone-2", &base), Some(2));
        for bad in [
            "tokens/signing-key/zone-1",
            "tokens/signing-key/zone-02",
            "tokens/signing-key/zone-",
            "tokens/signing-key/zone-x",
            "tokens/signing-key/zone2",
            "tokens/signing-key/zones",
        ] {
            assert_eq!(serial_of(bad, &base), None, "{bad}");
        }
    }

    #[test]
    fn states_serialize_as_the_api_shows_them() {
        let i = SigningKeyInfo {
            serial: 2,
            kid: "abc".into(),
            state: KeyState::Verifying,
        };
        assert_eq!(
            serde_json::to_value(&i).unwrap(),
            serde_json::json!({"serial": 2, "kid": "abc", "state": "verifying"})
        );
    }
}
