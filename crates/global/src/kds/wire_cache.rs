//! [`WireCache`]: the wire form of each changed item, made once per change and shared by every
//! GlobalToZone session.
//!
//! A change is pushed to every connected zone. Each session used to read the item from the
//! store (decoding and checking the stored record) and encode its wire form itself: with N
//! zones, N decodes and N encodes of the same record per change, a third of the global's CPU at
//! 1,000 zones (bench/README.md). DataplaneTokenKeys were worse: each session listed the mesh's
//! Secrets to derive the same public keys.
//!
//! Entries are keyed by item and stamped with the version (raft index) of the change that
//! triggered the read. A session pushing because of change `v` may reuse an entry stamped `v` or
//! later: that entry was read after `v` was applied, so it is at least as new as what reading
//! the store itself would give at `v`. A session that saw a later change reads again (once, for
//! everyone). Every push still ends with the item's state after the session's last change, as
//! before. The cache holds what sessions send anyway; it is bounded and cleared when full.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use mosaic_kds::{KdsType, wire::ItemKey};
use mosaic_proto::kds;

/// How many items the cache holds before it starts again empty.
pub const CAPACITY: usize = 4096;

/// One item's wire form (`None`: gone) as read after the change stamped on it.
#[derive(Clone, Debug)]
struct Entry {
    after: u64,
    item: Option<kds::Resource>,
}

/// The shared cache of wire forms.
#[derive(Debug, Default)]
pub struct WireCache {
    entries: Mutex<HashMap<(KdsType, ItemKey), Entry>>,
}

impl WireCache {
    /// The item `key` of `t` as read after change `after`: from the cache when an entry read
    /// after `after` (or later) is there, else from `read`, which is then cached.
    pub fn get_or_read<E>(
        &self,
        t: KdsType,
        key: &ItemKey,
        after: u64,
        read: impl FnOnce() -> Result<Option<kds::Resource>, E>,
    ) -> Result<Option<kds::Resource>, E> {
        let id = (t, key.clone());
        if let Some(e) = self.lock().get(&id)
            && e.after >= after
        {
            return Ok(e.item.clone());
        }
        let item = read()?;
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(&id) {
            entries.clear();
        }
        match entries.get(&id) {
            Some(e) if e.after >= after => {}
            _ => {
                entries.insert(
                    id,
                    Entry {
                        after,
                        item: item.clone(),
                    },
                );
            }
        }
        Ok(item)
    }

    /// How many items are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(KdsType, ItemKey), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, convert::Infallible};

    use mosaic_core::resource::ResourceType;
    use mosaic_kds::wire::KdsWire as _;

    use super::*;

    fn mesh(version: u64) -> kds::Resource {
        kds::Resource {
            r#type: "Mesh".into(),
            mesh: String::new(),
            name: "default".into(),
            version,
            json: b"{}".to_vec(),
        }
    }

    #[test]
    fn one_read_per_change_however_many_sessions_push_it() {
        let cache = WireCache::default();
        let t = KdsType::Resource(ResourceType::Mesh);
        let key = t.item_key("", "default");
        let reads = Cell::new(0);
        let read = |v: u64| {
            reads.set(reads.get() + 1);
            Ok::<_, Infallible>(Some(mesh(v)))
        };
        for _ in 0..1000 {
            let got = cache.get_or_read(t, &key, 7, || read(7)).unwrap();
            assert_eq!(got.map(|r| r.version), Some(7));
        }
        assert_eq!(reads.get(), 1, "the first session reads, the others reuse");

        // A session behind (its change 5 was followed by 7) reuses the newer read; a session
        // that saw a later change reads again.
        let got = cache.get_or_read(t, &key, 5, || read(5)).unwrap();
        assert_eq!(got.map(|r| r.version), Some(7));
        assert_eq!(reads.get(), 1);
        let got = cache.get_or_read(t, &key, 9, || read(9)).unwrap();
        assert_eq!(got.map(|r| r.version), Some(9));
        assert_eq!(reads.get(), 2);

        // A deletion is cached too.
        let got = cache
            .get_or_read(t, &key, 12, || Ok::<_, Infallible>(None))
            .unwrap();
        assert!(got.is_none());
        let got = cache.get_or_read(t, &key, 12, || read(99)).unwrap();
        assert!(got.is_none(), "the deletion read after change 12 is reused");
    }

    #[test]
    fn a_failed_read_caches_nothing_and_the_cache_stays_bounded() {
        let cache = WireCache::default();
        let t = KdsType::Resource(ResourceType::Secret);
        let key = t.item_key("default", "s");
        let failed: Result<Option<kds::Resource>, &str> =
            cache.get_or_read(t, &key, 3, || Err("store down"));
        assert_eq!(failed.unwrap_err(), "store down");
        assert!(cache.is_empty());

        for i in 0..(CAPACITY + 10) {
            let key = t.item_key("default", &format!("s{i}"));
            cache
                .get_or_read(t, &key, 1, || Ok::<_, Infallible>(None))
                .unwrap();
        }
        assert!(cache.len() <= CAPACITY);
    }
}
