//! `RootBook`: the roots one backend has shown this zone, and how long each stays in the trust
//! bundle. A CA's roots change under a running mesh (Vault's default issuer replaced, a rotated
//! root, a new intermediate), and Vault's `{pki}/cert/ca_chain` then answers only the new
//! chain, so the bundle is the union of what was seen, each root kept while a certificate it
//! signed may still be presented:
//!
//! - a root the backend reports now is always in the bundle (it may sign at any moment);
//! - a root it no longer reports is kept until its keep-until: the latest `not_after` of any
//!   certificate this zone served under it, and at least the moment it stopped being reported
//!   plus the backend's certificate lifetime (every certificate it signed, in any zone, was
//!   issued before it was replaced, so expires by then), never past the root's own expiry;
//! - a root whose keep-until has passed and that the backend no longer reports is dropped.
//!
//! The book is public material (certificates only) and is kept in the zone's database
//! ([`super::cache::DiskCache::store_root_book`]) so a restart keeps what it must trust.

use std::time::{Duration, Instant};

use mosaic_core::ca::{chain::anchor_of, identity::inspect_pem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One root the backend has shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownRoot {
    /// The certificate (PEM, one certificate).
    pub pem: String,
    /// Its own expiry (a root is never kept past it).
    pub not_after: OffsetDateTime,
    /// Whether the backend's last answer held it.
    pub reported: bool,
    /// Until when it stays in the bundle once no longer reported.
    pub keep_until: OffsetDateTime,
    /// When this process first saw it, and the bundle generation that brought it (`None` for a
    /// root remembered from disk: data planes were served it before).
    pub added: Option<(u64, Instant)>,
}

/// The roots of one backend of one mesh.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootBook {
    roots: Vec<KnownRoot>,
}

/// What [`RootBook::learn`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// Roots the book did not hold before.
    pub added: usize,
    /// Whether anything changed (added, superseded or reported again).
    pub changed: bool,
}

/// The book as the zone's database keeps it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RootBookRecord {
    /// The roots of the bundle when written (what older versions read).
    pub roots: Vec<String>,
    /// Every known root with its state (absent in records of older versions).
    #[serde(default)]
    pub known: Vec<KnownRootRecord>,
}

/// One root in a [`RootBookRecord`].
#[derive(Debug, Serialize, Deserialize)]
pub struct KnownRootRecord {
    /// PEM.
    pub pem: String,
    /// Whether the backend reported it last.
    pub reported: bool,
    /// Unix seconds.
    pub keep_until: i64,
}

// === impl RootBook ===

impl RootBook {
    /// The book a record describes; an older record (roots only) counts them as reported.
    /// Unparseable roots are left out.
    pub fn from_record(record: RootBookRecord) -> Self {
        let known: Vec<(String, bool, Option<OffsetDateTime>)> = if record.known.is_empty() {
            record.roots.into_iter().map(|r| (r, true, None)).collect()
        } else {
            record
                .known
                .into_iter()
                .map(|k| {
                    let until = OffsetDateTime::from_unix_timestamp(k.keep_until).ok();
                    (k.pem, k.reported, until)
                })
                .collect()
        };
        let roots = known
            .into_iter()
            .filter_map(|(pem, reported, until)| {
                let not_after = inspect_pem(&pem).ok()?.not_after;
                Some(KnownRoot {
                    keep_until: until.unwrap_or(OffsetDateTime::UNIX_EPOCH).min(not_after),
                    pem,
                    not_after,
                    reported,
                    added: None,
                })
            })
            .collect();
        Self { roots }
    }

    /// What the database keeps (the bundle at `now`, and every root's state).
    pub fn to_record(&self, now: OffsetDateTime) -> RootBookRecord {
        RootBookRecord {
            roots: self.bundle(now),
            known: self
                .roots
                .iter()
                .map(|r| KnownRootRecord {
                    pem: r.pem.clone(),
                    reported: r.reported,
                    keep_until: r.keep_until.unix_timestamp(),
                })
                .collect(),
        }
    }

    /// Whether the book holds nothing.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The roots, in the order first seen.
    pub fn roots(&self) -> &[KnownRoot] {
        &self.roots
    }

    /// Takes in the backend's current answer `reported` (PEMs, one certificate each) at `now`:
    /// roots not known yet are added as brought by bundle `generation`; known roots missing from
    /// it are superseded and kept for `lifetime` more (see the module docs).
    pub fn learn(
        &mut self,
        reported: &[String],
        now: OffsetDateTime,
        lifetime: Duration,
        generation: u64,
    ) -> Learned {
        let mut out = Learned::default();
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::ZERO);
        let norm = |p: &str| p.split_whitespace().collect::<String>();
        let reported_norm: Vec<String> = reported.iter().map(|p| norm(p)).collect();
        for root in &mut self.roots {
            let now_reported = reported_norm.contains(&norm(&root.pem));
            if root.reported && !now_reported {
                root.keep_until = root.keep_until.max(now + lifetime).min(root.not_after);
                out.changed = true;
            } else if !root.reported && now_reported {
                out.changed = true;
            }
            root.reported = now_reported;
        }
        for (pem, n) in reported.iter().zip(&reported_norm) {
            if self.roots.iter().any(|r| norm(&r.pem) == *n) {
                continue;
            }
            let Ok(info) = inspect_pem(pem) else {
                continue;
            };
            self.roots.push(KnownRoot {
                pem: pem.clone(),
                not_after: info.not_after,
                reported: true,
                keep_until: now.min(info.not_after),
                added: Some((generation, Instant::now())),
            });
            out.added += 1;
            out.changed = true;
        }
        out
    }

    /// The root (index) that `chain_pem` reaches among the roots in the bundle at `now`.
    pub fn anchor(&self, chain_pem: &str, now: OffsetDateTime) -> Option<usize> {
        let live: Vec<usize> = (0..self.roots.len())
            .filter(|&i| self.in_bundle(i, now))
            .collect();
        let pems: Vec<String> = live.iter().map(|&i| self.roots[i].pem.clone()).collect();
        anchor_of(chain_pem, &pems).map(|i| live[i])
    }

    /// A certificate valid until `leaf_not_after` was served under root `index`: it is kept at
    /// least that long (never past its own expiry). Whether the keep-until moved.
    pub fn served(&mut self, index: usize, leaf_not_after: OffsetDateTime) -> bool {
        let Some(root) = self.roots.get_mut(index) else {
            return false;
        };
        let until = leaf_not_after.min(root.not_after);
        if until > root.keep_until {
            root.keep_until = until;
            return true;
        }
        false
    }

    /// The bundle at `now`: every reported root and every other root still kept.
    pub fn bundle(&self, now: OffsetDateTime) -> Vec<String> {
        (0..self.roots.len())
            .filter(|&i| self.in_bundle(i, now))
            .map(|i| self.roots[i].pem.clone())
            .collect()
    }

    /// Drops the roots whose keep-until has passed and that the backend no longer reports.
    /// Whether any was dropped.
    pub fn prune(&mut self, now: OffsetDateTime) -> bool {
        let before = self.roots.len();
        self.roots.retain(|r| r.reported || r.keep_until > now);
        self.roots.len() != before
    }

    /// The earliest moment a root will leave the bundle, if any is waiting to.
    pub fn next_drop(&self) -> Option<OffsetDateTime> {
        self.roots
            .iter()
            .filter(|r| !r.reported)
            .map(|r| r.keep_until)
            .min()
    }

    fn in_bundle(&self, index: usize, now: OffsetDateTime) -> bool {
        let r = &self.roots[index];
        r.reported || r.keep_until > now
    }
}

#[cfg(test)]
mod tests {
    use mosaic_ca::local::LocalCa;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn root(name: &str) -> String {
        LocalCa::generate_root("default", name, DAY * 365)
            .unwrap()
            .0
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(secs)
    }

    #[test]
    fn a_replaced_root_stays_a_lifetime_and_while_its_certificates_live() {
        let (old, new) = (root("old"), root("new"));
        let lifetime = Duration::from_secs(3600);
        let mut book = RootBook::default();
        let l = book.learn(std::slice::from_ref(&old), at(0), lifetime, 1);
        assert_eq!((l.added, l.changed), (1, true));
        assert_eq!(book.roots()[0].added.map(|a| a.0), Some(1));
        // The same answer again changes nothing.
        assert_eq!(
            book.learn(std::slice::from_ref(&old), at(1), lifetime, 2),
            Learned::default()
        );
        // A certificate served under the old root until +2h.
        assert!(book.served(0, at(7200)));
        assert!(!book.served(0, at(3600)), "an earlier expiry moves nothing");

        // The backend now answers only the new root (Vault's ca_chain after a rotation).
        let l = book.learn(std::slice::from_ref(&new), at(10), lifetime, 2);
        assert_eq!((l.added, l.changed), (1, true));
        assert_eq!(book.bundle(at(10)), vec![old.clone(), new.clone()]);
        // Kept until the later of the served certificate (+2h) and replaced + lifetime (+1h10s).
        assert_eq!(
            book.next_drop().map(|t| t.unix_timestamp()),
            Some(at(7200).unix_timestamp())
        );
        assert!(!book.prune(at(7199)));
        assert_eq!(book.bundle(at(7199)).len(), 2);
        assert_eq!(book.bundle(at(7201)), vec![new.clone()]);
        assert!(book.prune(at(7201)), "dropped once its keep-until passed");
        assert_eq!(book.roots().len(), 1);
        // A reported root never leaves, however old its keep-until.
        assert!(!book.prune(at(86_400 * 30)));
        assert_eq!(book.bundle(at(86_400 * 30)), vec![new]);
    }

    #[test]
    fn replaced_without_served_certificates_it_stays_one_lifetime_capped_by_its_expiry() {
        let (old, new) = (root("old"), root("new"));
        let mut book = RootBook::default();
        book.learn(std::slice::from_ref(&old), at(0), DAY, 1);
        book.learn(std::slice::from_ref(&new), at(100), DAY, 2);
        let until = book.roots()[0].keep_until;
        assert!(until > at(86_400) && until <= at(86_500), "{until}");
        // A lifetime longer than the root's own life: kept until the root expires, no longer.
        let mut book = RootBook::default();
        book.learn(std::slice::from_ref(&old), at(0), DAY, 1);
        book.learn(std::slice::from_ref(&new), at(0), DAY * 1000, 2);
        assert_eq!(book.roots()[0].keep_until, book.roots()[0].not_after);
        // Served past the root's expiry: capped too.
        assert!(book.served(1, at(86_400 * 2000)));
        assert_eq!(book.roots()[1].keep_until, book.roots()[1].not_after);
    }

    #[test]
    fn a_root_reported_again_is_not_added_twice_and_the_record_round_trips() {
        let (old, new) = (root("old"), root("new"));
        let mut book = RootBook::default();
        book.learn(std::slice::from_ref(&old), at(0), DAY, 1);
        book.learn(std::slice::from_ref(&new), at(0), DAY, 2);
        // Back to the old default issuer (`pki/root/replace` the other way).
        let l = book.learn(std::slice::from_ref(&old), at(5), DAY, 3);
        assert_eq!(l.added, 0);
        assert!(l.changed);
        assert!(book.roots()[0].reported && !book.roots()[1].reported);

        let record = book.to_record(at(5));
        assert_eq!(record.roots.len(), 2);
        let json = serde_json::to_vec(&record).unwrap();
        let back = RootBook::from_record(serde_json::from_slice(&json).unwrap());
        assert_eq!(back.roots().len(), 2);
        for (a, b) in back.roots().iter().zip(book.roots()) {
            assert_eq!((&a.pem, a.reported), (&b.pem, b.reported));
            assert_eq!(a.keep_until.unix_timestamp(), b.keep_until.unix_timestamp());
            assert_eq!(a.added, None, "remembered roots were served before");
        }
        // An older record (roots only): every root counts as reported.
        let old_record: RootBookRecord =
            serde_json::from_value(serde_json::json!({"roots": [old.clone()]})).unwrap();
        let back = RootBook::from_record(old_record);
        assert_eq!(back.bundle(at(0)), vec![old]);
        assert!(back.roots()[0].reported);
    }

    #[test]
    fn the_anchor_is_the_root_that_signed_among_those_in_the_bundle() {
        let (old_pem, old_key) = LocalCa::generate_root("default", "old", DAY).unwrap();
        let new = root("new");
        let leaf = LocalCa::from_pem(&old_pem, old_key.expose())
            .unwrap()
            .issue(
                &["spiffe://default/web".to_string()],
                None,
                Duration::from_secs(3600),
            )
            .unwrap()
            .chain_pem;
        let mut book = RootBook::default();
        book.learn(std::slice::from_ref(&new), at(0), DAY, 1);
        assert_eq!(book.anchor(&leaf, at(0)), None, "not known yet");
        book.learn(&[new.clone(), old_pem.clone()], at(0), DAY, 2);
        assert_eq!(book.anchor(&leaf, at(0)), Some(1));
        // Superseded and past its keep-until: no longer an anchor.
        book.learn(
            std::slice::from_ref(&new),
            at(0),
            Duration::from_secs(10),
            3,
        );
        assert_eq!(book.anchor(&leaf, at(5)), Some(1));
        assert_eq!(book.anchor(&leaf, at(20)), None);
    }
}
