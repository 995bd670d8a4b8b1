//! `MemoryStore`: a TEST DOUBLE of `ResourceStore`: a map behind a mutex, changed only through
//! `store::plan()` exactly as the raft state machine applies commands (same versions, refusals,
//! batches). It can be switched to answer `Unavailable`, and counts writes and read barriers.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use mosaic_common::resource::{Resource, ResourceType};
use mosaic_global::store::{
    Command, CommandResult, Mutation, ResourceKey, ResourceStore, StateView, StoreError, plan,
};

/// State in maps.
#[derive(Default)]
struct State {
    resources: BTreeMap<ResourceKey, Resource>,
    internal: BTreeMap<String, Vec<u8>>,
    index: u64,
}

impl StateView for State {
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        Ok(self.resources.get(key).cloned())
    }

    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        Ok(self
            .resources
            .iter()
            .filter(|(k, _)| k.rtype == rtype && (mesh.is_none() || k.mesh.as_deref() == mesh))
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.internal.get(key).cloned())
    }

    fn internal_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .internal
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// The in-memory test double.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
    writes: AtomicUsize,
    barriers: AtomicUsize,
}

impl MemoryStore {
    /// Applies a command directly (as a zone's KDS sync would), bypassing the API.
    pub fn apply(&self, cmd: Command) -> CommandResult {
        let mut state = self.state.lock().expect("lock");
        state.index += 1;
        let (result, muts) = plan(&cmd, state.index, &*state).expect("plan");
        for m in muts {
            match m {
                Mutation::Put(k, r) => {
                    state.resources.insert(k, *r);
                }
                Mutation::Delete(k) => {
                    state.resources.remove(&k);
                }
                Mutation::PutInternal(k, v) => {
                    state.internal.insert(k, v);
                }
                Mutation::DeleteInternal(k) => {
                    state.internal.remove(&k);
                }
            }
        }
        result
    }

    /// Makes every write and barrier fail with `Unavailable` (no leader).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// How many writes were proposed through the trait.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// How many read barriers were requested.
    pub fn barriers(&self) -> usize {
        self.barriers.load(Ordering::SeqCst)
    }

    /// Every stored resource.
    pub fn all(&self) -> Vec<Resource> {
        self.state
            .lock()
            .expect("lock")
            .resources
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait::async_trait]
impl ResourceStore for MemoryStore {
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test double switched off".into()));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(self.apply(cmd))
    }

    async fn read_barrier(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test double switched off".into()));
        }
        self.barriers.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        self.state.lock().expect("lock").get(key)
    }

    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        self.state.lock().expect("lock").list(rtype, mesh)
    }

    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.state.lock().expect("lock").internal(key)
    }
}

impl MemoryStore {
    /// A mesh Secret's decoded value (as text) and version; panics when absent.
    pub fn get_secret(&self, mesh: &str, name: &str) -> (String, Option<u64>) {
        let key = ResourceKey::new(ResourceType::Secret, Some(mesh), name);
        let r = ResourceStore::get(self, &key)
            .expect("get")
            .unwrap_or_else(|| panic!("secret {mesh}/{name} is missing"));
        let mosaic_common::resource::Spec::Secret(s) = &r.spec else {
            panic!("not a secret")
        };
        let value = s.value().expect("base64").into_inner();
        (String::from_utf8_lossy(&value).into_owned(), r.meta.version)
    }
}
