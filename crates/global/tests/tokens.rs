//! Token issuance against `TestMemStore`, an in-memory `ResourceStore` test double that applies
//! commands with the real `store::plan()` (no raft, one replica's state shared by every `Tokens`
//! built on it, so two `Tokens` stand for two replicas).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use mosaic_common::{
    resource::{Resource, ResourceType, parse_document},
    token::{TokenError, TokenKind, verify_dataplane_token, verify_zone_token},
};
use mosaic_global::{
    store::{
        Command, CommandResult, Mutation, ResourceKey, ResourceStore, StateView, StoreError, plan,
    },
    tokens::{KeyPurpose, TokenIssueError, Tokens},
};
use time::OffsetDateTime;

/// State in maps; writes go through `plan()` like the raft state machine's apply.
#[derive(Default)]
struct MemState {
    resources: BTreeMap<ResourceKey, Resource>,
    internal: BTreeMap<String, Vec<u8>>,
    index: u64,
}

impl StateView for MemState {
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        Ok(self.resources.get(key).cloned())
    }
    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        Ok(self
            .resources
            .iter()
            .filter(|(k, _)| k.rtype == rtype && (mesh.is_none() || k.mesh.as_deref() == mesh))
            .map(|(_, v)| v.clone())
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

/// The in-memory `ResourceStore` test double. With a write gate, every write waits until
/// `n` writers have arrived, so racing first uses are forced to overlap (no sleeps).
struct TestMemStore {
    state: Mutex<MemState>,
    write_gate: Option<tokio::sync::Barrier>,
    writes: Mutex<usize>,
}

impl TestMemStore {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            write_gate: None,
            writes: Mutex::new(0),
        })
    }

    fn gated(writers: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            write_gate: Some(tokio::sync::Barrier::new(writers)),
            writes: Mutex::new(0),
        })
    }

    fn apply(&self, cmd: &Command) -> CommandResult {
        let mut state = self.state.lock().unwrap();
        state.index += 1;
        let (result, muts) = plan(cmd, state.index, &*state).unwrap();
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

    fn put(&self, yaml: &str) {
        let r = parse_document(yaml.as_bytes()).unwrap();
        let result = self.apply(&Command::put(&r, OffsetDateTime::now_utc()));
        assert!(matches!(result, CommandResult::Put { .. }), "{result:?}");
    }

    fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl ResourceStore for TestMemStore {
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        *self.writes.lock().unwrap() += 1;
        if let Some(gate) = &self.write_gate {
            gate.wait().await;
        }
        Ok(self.apply(&cmd))
    }
    async fn read_barrier(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        self.state.lock().unwrap().get(key)
    }
    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        self.state.lock().unwrap().list(rtype, mesh)
    }
    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.state.lock().unwrap().internal(key)
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn service(name: &str) -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("kuma.io/service".to_string(), vec![name.to_string()])])
}

#[tokio::test]
async fn keys_are_created_once_and_reused() {
    let store = TestMemStore::new();
    let tokens = Tokens::new(store.clone());
    assert!(tokens.public_keys(&KeyPurpose::Zone).unwrap().is_empty());

    let a = tokens.issue_zone_token("east", HOUR).await.unwrap();
    let b = tokens.issue_zone_token("west", HOUR).await.unwrap();
    assert_eq!(store.writes(), 1, "the key is proposed once");
    // Another replica (another Tokens on the same state) reuses the stored key.
    let replica = Tokens::new(store.clone());
    let c = replica.issue_zone_token("north", HOUR).await.unwrap();
    assert_eq!(store.writes(), 1);
    let keys = replica.public_keys(&KeyPurpose::Zone).unwrap();
    assert_eq!(keys.len(), 1);
    let now = OffsetDateTime::now_utc();
    for (token, zone) in [(&a, "east"), (&b, "west"), (&c, "north")] {
        let claims = verify_zone_token(token.expose(), &keys, now).unwrap();
        assert_eq!(claims.zone, zone);
    }
    // Only public material is returned: 32 raw Ed25519 bytes.
    assert_eq!(keys[0].bytes.len(), 32);
}

#[tokio::test]
async fn concurrent_first_use_yields_one_key() {
    let store = TestMemStore::gated(2);
    let (r1, r2) = (Tokens::new(store.clone()), Tokens::new(store.clone()));
    // Both see no key, both generate one and propose it; the gate makes the proposals overlap.
    let (t1, t2) = tokio::join!(
        r1.issue_zone_token("east", HOUR),
        r2.issue_zone_token("west", HOUR)
    );
    let (t1, t2) = (t1.unwrap(), t2.unwrap());
    assert_eq!(store.writes(), 2, "both replicas proposed a key");
    let k1 = r1.public_keys(&KeyPurpose::Zone).unwrap();
    let k2 = r2.public_keys(&KeyPurpose::Zone).unwrap();
    assert_eq!(k1, k2, "the first writer's key won on both");
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        verify_zone_token(t1.expose(), &k1, now).unwrap().zone,
        "east"
    );
    assert_eq!(
        verify_zone_token(t2.expose(), &k1, now).unwrap().zone,
        "west"
    );
}

#[tokio::test]
async fn zone_tokens_are_rejected_when_expired_forged_or_for_another_zone() {
    let store = TestMemStore::new();
    let tokens = Tokens::new(store.clone());
    let token = tokens.issue_zone_token("east", DAY).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claims = tokens.verify_zone_token(token.expose(), now).unwrap();
    assert_eq!(claims.zone, "east");
    // A zone presenting east's token is east, whatever name it claims: the caller compares.
    assert_ne!(claims.zone, "west");

    let err = tokens
        .verify_zone_token(token.expose(), now + 2 * DAY)
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // Signed by another global's key (a different store).
    let other = Tokens::new(TestMemStore::new());
    let foreign = other.issue_zone_token("east", DAY).await.unwrap();
    let err = tokens.verify_zone_token(foreign.expose(), now).unwrap_err();
    assert!(err.to_string().contains("not among"), "{err}");

    // Claims changed to another zone, signature kept.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.expose().split('.').collect();
    let mut body: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    body["zone"] = "west".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&body).unwrap()),
        parts[2]
    );
    let err = tokens.verify_zone_token(&forged, now).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
    assert!(!err.to_string().contains(parts[2]));
}

#[tokio::test]
async fn zone_names_and_validity_are_checked() {
    let tokens = Tokens::new(TestMemStore::new());
    for bad in ["", "East", "a.b", "-x", &"x".repeat(64)] {
        let err = tokens.issue_zone_token(bad, HOUR).await.unwrap_err();
        assert!(
            matches!(err, TokenIssueError::Invalid { field: "zone", .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(err.status(), 400);
    }
    let err = tokens
        .issue_zone_token("east", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TokenIssueError::Invalid {
            field: "validFor",
            ..
        }
    ));
}

#[tokio::test]
async fn dataplane_tokens_need_an_existing_mesh_and_a_service_tag() {
    let store = TestMemStore::new();
    let tokens = Tokens::new(store.clone());
    let err = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenIssueError::MeshNotFound { .. }), "{err}");
    assert_eq!(err.status(), 404);
    assert_eq!(store.writes(), 0, "no key is made for a missing mesh");

    store.put("type: Mesh\nname: default\n");
    store.put("type: Mesh\nname: other\n");
    let err = tokens
        .issue_dataplane_token("default", "backend-1", BTreeMap::new(), DAY)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenIssueError::Invalid { field: "tags", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("kuma.io/service"), "{err}");

    let token = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap();
    let keys = tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "default".into(),
        })
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let claims = verify_dataplane_token(token.expose(), &keys, "default", now).unwrap();
    assert_eq!(
        (claims.mesh.as_str(), claims.name.as_str()),
        ("default", "backend-1")
    );
    assert_eq!(claims.tags, service("backend"));
    assert!(matches!(
        verify_dataplane_token(token.expose(), &keys, "other", now),
        Err(TokenError::WrongMesh { .. })
    ));

    // Each mesh has its own key: other's keys do not know default's tokens.
    tokens
        .issue_dataplane_token("other", "x", service("x"), DAY)
        .await
        .unwrap();
    let other_keys = tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "other".into(),
        })
        .unwrap();
    assert_ne!(other_keys, keys);
    assert!(matches!(
        verify_dataplane_token(token.expose(), &other_keys, "default", now),
        Err(TokenError::UnknownKey { .. })
    ));

    // A zone token is not a dataplane token even under a shared key list.
    let zone = tokens.issue_zone_token("east", DAY).await.unwrap();
    let mut all = keys.clone();
    all.extend(tokens.public_keys(&KeyPurpose::Zone).unwrap());
    assert!(matches!(
        verify_dataplane_token(zone.expose(), &all, "default", now),
        Err(TokenError::WrongKind {
            expected: TokenKind::Dataplane,
            ..
        })
    ));
}
