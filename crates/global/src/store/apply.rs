//! `plan()`: how a committed [`Command`] changes state. Pure and deterministic (the clock comes
//! from the command, versions from the raft index), so every replica computes the same mutations.
//! Referential safety lives here, at apply time, where it cannot race: a Secret a Mesh uses cannot
//! be deleted, a Mesh with data planes needs `force`, a mesh-scoped resource needs its Mesh, a
//! MeshTrust whose trust domain a MeshIdentity gives data planes needs `force`; a Zone takes the
//! MeshTrusts it made with it.

use std::collections::{BTreeMap, BTreeSet};

use mosaic_core::resource::{
    Resource, ResourceType, Spec, mesh_identity::best_match, parse::from_value, zone::ORIGIN_LABEL,
};

use super::{
    StoreError,
    command::{Command, CommandResult, Refusal, mesh_internal_prefix},
    keys::ResourceKey,
};

/// Read access to the state a command is applied to.
pub trait StateView {
    /// One resource.
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError>;
    /// Every resource of `rtype` (in `mesh`, when given).
    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError>;
    /// An internal record.
    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The keys of every internal record starting with `prefix`.
    fn internal_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// A change to state.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Store a resource (meta already stamped).
    Put(ResourceKey, Box<Resource>),
    /// Remove a resource.
    Delete(ResourceKey),
    /// Store an internal record.
    PutInternal(String, Vec<u8>),
    /// Remove an internal record.
    DeleteInternal(String),
}

/// A view with a batch's earlier mutations laid over the base state.
struct Overlay<'a> {
    base: &'a dyn StateView,
    resources: BTreeMap<ResourceKey, Option<Resource>>,
    internal: BTreeMap<String, Option<Vec<u8>>>,
}

impl Overlay<'_> {
    fn record(&mut self, muts: &[Mutation]) {
        for m in muts {
            match m {
                Mutation::Put(k, r) => {
                    self.resources.insert(k.clone(), Some((**r).clone()));
                }
                Mutation::Delete(k) => {
                    self.resources.insert(k.clone(), None);
                }
                Mutation::PutInternal(k, v) => {
                    self.internal.insert(k.clone(), Some(v.clone()));
                }
                Mutation::DeleteInternal(k) => {
                    self.internal.insert(k.clone(), None);
                }
            }
        }
    }
}

impl StateView for Overlay<'_> {
    fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        match self.resources.get(key) {
            Some(r) => Ok(r.clone()),
            None => self.base.get(key),
        }
    }

    fn list(&self, rtype: ResourceType, mesh: Option<&str>) -> Result<Vec<Resource>, StoreError> {
        let mut out: BTreeMap<ResourceKey, Resource> = self
            .base
            .list(rtype, mesh)?
            .into_iter()
            .map(|r| (ResourceKey::of(&r), r))
            .collect();
        for (k, v) in &self.resources {
            if k.kind == rtype && (mesh.is_none() || k.mesh.as_deref() == mesh) {
                match v {
                    Some(r) => out.insert(k.clone(), r.clone()),
                    None => out.remove(k),
                };
            }
        }
        Ok(out.into_values().collect())
    }

    fn internal(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.internal.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.internal(key),
        }
    }

    fn internal_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys: BTreeSet<String> = self.base.internal_keys(prefix)?.into_iter().collect();
        for (k, v) in &self.internal {
            if k.starts_with(prefix) {
                match v {
                    Some(_) => keys.insert(k.clone()),
                    None => keys.remove(k),
                };
            }
        }
        Ok(keys.into_iter().collect())
    }
}

/// Plans `cmds` one after another, each against the state the earlier ones leave; with
/// `stop_at_refusal` the refused command's result is the last one returned.
fn plan_in_order(
    cmds: &[Command],
    index: u64,
    view: &dyn StateView,
    stop_at_refusal: bool,
) -> Result<(Vec<CommandResult>, Vec<Mutation>), StoreError> {
    let mut overlay = Overlay {
        base: view,
        resources: BTreeMap::new(),
        internal: BTreeMap::new(),
    };
    let mut results = Vec::with_capacity(cmds.len());
    let mut all = Vec::new();
    for c in cmds {
        let (result, muts) = plan(c, index, &overlay)?;
        let stop = stop_at_refusal && matches!(result, CommandResult::Refused(_));
        results.push(result);
        if stop {
            break;
        }
        overlay.record(&muts);
        all.extend(muts);
    }
    Ok((results, all))
}

/// Why a mesh-scoped resource cannot be written yet: its Mesh does not exist.
pub fn missing_mesh(mesh: &str, rtype: ResourceType) -> String {
    let then = if rtype == ResourceType::Secret {
        " (a Mesh whose backends name this Secret: apply it without mtls first, then the Secret, then the whole Mesh; `mosaicctl apply -f` does that for a file holding both)"
    } else {
        ""
    };
    format!(
        "mesh {mesh:?} does not exist: create Mesh {mesh:?} first (PUT /meshes/{mesh}), then its {rtype}s{then}"
    )
}

fn refused(r: Refusal) -> (CommandResult, Vec<Mutation>) {
    (CommandResult::Refused(r), Vec::new())
}

/// Computes the result of `cmd`, committed at raft `index`, against `view`.
pub fn plan(
    cmd: &Command,
    index: u64,
    view: &dyn StateView,
) -> Result<(CommandResult, Vec<Mutation>), StoreError> {
    match cmd {
        Command::Noop => Ok((CommandResult::Done, Vec::new())),
        Command::Unreadable { format, .. } => Err(StoreError::UnreadableEntry {
            index,
            format: *format,
            reads: super::command::ENTRY_FORMAT,
        }),
        Command::Batch(cmds) => {
            let (results, all) = plan_in_order(cmds, index, view, true)?;
            match results.last() {
                Some(CommandResult::Refused(r)) => Ok(refused(r.clone())),
                _ => Ok((CommandResult::Batch(results), all)),
            }
        }
        Command::Group(cmds) => {
            // A refused command plans no mutations, so the others apply as if it were absent.
            let (results, all) = plan_in_order(cmds, index, view, false)?;
            Ok((CommandResult::Group(results), all))
        }
        Command::PutInternal {
            key,
            value,
            if_absent,
        } => {
            if *if_absent && let Some(existing) = view.internal(key)? {
                return Ok((CommandResult::Internal { value: existing }, Vec::new()));
            }
            Ok((
                CommandResult::Internal {
                    value: value.clone(),
                },
                vec![Mutation::PutInternal(key.clone(), value.clone())],
            ))
        }
        Command::Put {
            resource,
            now,
            expect_version,
        } => {
            let mut r = match from_value(resource.clone()) {
                Ok(r) => r,
                Err(e) => return Ok(refused(Refusal::Invalid(e.to_string()))),
            };
            let key = ResourceKey::of(&r);
            // Every mesh-scoped resource needs its Mesh, Secrets too (as in Kuma: otherwise a
            // `vault-token` could be planted before the Mesh exists). A Mesh whose vault backend
            // names a Secret is created without `mtls` first, then the Secret, then the backend.
            if let Some(mesh) = &r.meta.mesh
                && view.get(&ResourceKey::mesh(mesh))?.is_none()
            {
                return Ok(refused(Refusal::NotFound(missing_mesh(mesh, key.kind))));
            }
            let existing = view.get(&key)?;
            let current = existing.as_ref().and_then(|e| e.meta.version).unwrap_or(0);
            if let Some(expected) = expect_version
                && *expected != current
            {
                return Ok(refused(Refusal::Conflict(format!(
                    "{key} is at version {current}, not {expected}: it changed since it was read; read it again and retry"
                ))));
            }
            r.meta.creation_time = existing
                .as_ref()
                .and_then(|e| e.meta.creation_time)
                .or(Some(*now));
            r.meta.modification_time = Some(*now);
            r.meta.version = Some(index);
            Ok((
                CommandResult::Put {
                    version: index,
                    created: existing.is_none(),
                },
                vec![Mutation::Put(key, Box::new(r))],
            ))
        }
        Command::Delete {
            key,
            force,
            expect_version,
        } => {
            let Some(existing) = view.get(key)? else {
                return Ok(refused(Refusal::NotFound(format!("{key} does not exist"))));
            };
            let current = existing.meta.version.unwrap_or(0);
            if let Some(expected) = expect_version
                && *expected != current
            {
                return Ok(refused(Refusal::Conflict(format!(
                    "{key} is at version {current}, not {expected}: it changed since it was read; read it again and retry"
                ))));
            }
            match &existing.spec {
                Spec::Secret(_) => {
                    let mesh = key.mesh.as_deref().unwrap_or_default();
                    if let Some(m) = view.get(&ResourceKey::mesh(mesh))?
                        && let Spec::Mesh(spec) = &m.spec
                        && let Some(used) = spec
                            .secret_references(mesh)
                            .into_iter()
                            .find(|s| s.secret == key.name)
                    {
                        return Ok(refused(Refusal::Conflict(format!(
                            "secret {:?} is used by Mesh {mesh:?} (backend {:?}, {}): change or remove that backend first",
                            key.name, used.backend, used.field
                        ))));
                    }
                    Ok((
                        CommandResult::Deleted { cascaded: 0 },
                        vec![Mutation::Delete(key.clone())],
                    ))
                }
                Spec::Mesh(_) => {
                    let dataplanes = view.list(ResourceType::Dataplane, Some(&key.name))?;
                    if !dataplanes.is_empty() && !force {
                        let zones: BTreeSet<&str> = dataplanes
                            .iter()
                            .filter_map(|d| d.meta.labels.get("kuma.io/zone").map(String::as_str))
                            .collect();
                        return Ok(refused(Refusal::Conflict(format!(
                            "mesh {:?} has {} data plane(s) reported by zone(s) {}: deleting it cuts them off; move them out first or delete with ?force=true",
                            key.name,
                            dataplanes.len(),
                            if zones.is_empty() {
                                "unknown".to_string()
                            } else {
                                zones.into_iter().collect::<Vec<_>>().join(", ")
                            }
                        ))));
                    }
                    let mut muts = Vec::new();
                    for t in ResourceType::ALL.into_iter().filter(|t| t.is_mesh_scoped()) {
                        for r in view.list(t, Some(&key.name))? {
                            muts.push(Mutation::Delete(ResourceKey::of(&r)));
                        }
                    }
                    let cascaded = muts.len();
                    for k in view.internal_keys(&mesh_internal_prefix(&key.name))? {
                        muts.push(Mutation::DeleteInternal(k));
                    }
                    muts.push(Mutation::Delete(key.clone()));
                    Ok((CommandResult::Deleted { cascaded }, muts))
                }
                Spec::MeshTrust(trust) => {
                    let mesh = key.mesh.as_deref().unwrap_or_default();
                    if !force
                        && let Some((identity, dataplane)) =
                            relied_on(view, mesh, &trust.spec.trust_domain)?
                    {
                        return Ok(refused(Refusal::Conflict(format!(
                            "MeshTrust {:?} of mesh {mesh:?} holds the CAs of trust domain {:?}, which MeshIdentity {identity:?} gives data plane {dataplane:?} (and maybe others): deleting it makes their peers distrust them; change the MeshIdentity first, or delete with ?force=true",
                            key.name, trust.spec.trust_domain
                        ))));
                    }
                    Ok((
                        CommandResult::Deleted { cascaded: 0 },
                        vec![Mutation::Delete(key.clone())],
                    ))
                }
                // A Zone takes the MeshTrusts it made with it: its trust domains leave every zone.
                Spec::Zone(_) => {
                    let mut muts = Vec::new();
                    for r in view.list(ResourceType::MeshTrust, None)? {
                        if r.meta.labels.get(ORIGIN_LABEL).map(String::as_str) == Some("zone")
                            && r.meta.labels.get("kuma.io/zone") == Some(&key.name)
                        {
                            muts.push(Mutation::Delete(ResourceKey::of(&r)));
                        }
                    }
                    let cascaded = muts.len();
                    muts.push(Mutation::Delete(key.clone()));
                    Ok((CommandResult::Deleted { cascaded }, muts))
                }
                _ => Ok((
                    CommandResult::Deleted { cascaded: 0 },
                    vec![Mutation::Delete(key.clone())],
                )),
            }
        }
    }
}

/// The MeshIdentity and a data plane of `mesh` that rely on trust domain `domain`: a data plane
/// (as its zone reported it) whose MeshIdentity (Kuma's best match among those with a provider)
/// has `domain` as its trust domain in that data plane's zone.
fn relied_on(
    view: &dyn StateView,
    mesh: &str,
    domain: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let identities = view.list(ResourceType::MeshIdentity, Some(mesh))?;
    let issuing: Vec<(&str, &mosaic_core::resource::MeshIdentitySpec, &Resource)> = identities
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::MeshIdentity(m) if m.spec.provider.is_some() => {
                Some((r.meta.name.as_str(), &m.spec, r))
            }
            _ => None,
        })
        .collect();
    if issuing.is_empty() {
        return Ok(None);
    }
    for dp in view.list(ResourceType::Dataplane, Some(mesh))? {
        let Some((name, spec)) =
            best_match(issuing.iter().map(|(n, s, _)| (*n, *s)), &dp.meta.labels)
        else {
            continue;
        };
        let labels = issuing
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, r)| r.meta.labels.clone())
            .unwrap_or_default();
        let zone = dp
            .meta
            .labels
            .get("kuma.io/zone")
            .map(String::as_str)
            .unwrap_or_default();
        if spec.trust_domain(mesh, zone, &labels).as_deref() == Ok(domain) {
            return Ok(Some((name.to_string(), dp.meta.name.clone())));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use mosaic_core::resource::parse_document;
    use time::OffsetDateTime;

    use super::*;

    /// State in a map, for testing `plan` alone.
    #[derive(Default)]
    pub struct MapState {
        resources: BTreeMap<ResourceKey, Resource>,
        internal: BTreeMap<String, Vec<u8>>,
        index: u64,
    }

    impl StateView for MapState {
        fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
            Ok(self.resources.get(key).cloned())
        }
        fn list(
            &self,
            rtype: ResourceType,
            mesh: Option<&str>,
        ) -> Result<Vec<Resource>, StoreError> {
            Ok(self
                .resources
                .iter()
                .filter(|(k, _)| k.kind == rtype && (mesh.is_none() || k.mesh.as_deref() == mesh))
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

    impl MapState {
        pub fn apply(&mut self, cmd: Command) -> CommandResult {
            self.index += 1;
            let (result, muts) = plan(&cmd, self.index, self).unwrap();
            for m in muts {
                match m {
                    Mutation::Put(k, r) => {
                        self.resources.insert(k, *r);
                    }
                    Mutation::Delete(k) => {
                        self.resources.remove(&k);
                    }
                    Mutation::PutInternal(k, v) => {
                        self.internal.insert(k, v);
                    }
                    Mutation::DeleteInternal(k) => {
                        self.internal.remove(&k);
                    }
                }
            }
            result
        }
        pub fn put(&mut self, yaml: &str) -> CommandResult {
            let r = parse_document(yaml.as_bytes()).unwrap();
            self.apply(Command::put(&r, OffsetDateTime::now_utc()))
        }
    }

    const MESH: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: v\n  backends:\n  - name: v\n    type: vault\n    conf:\n      fromCp:\n        address: http://vault:8200\n        pki: p\n        role: r\n        auth:\n          token:\n            secret: token-1\n";

    #[test]
    fn versions_and_times_are_stamped() {
        let mut s = MapState::default();
        assert_eq!(
            s.put(MESH),
            CommandResult::Put {
                version: 1,
                created: true
            }
        );
        let first = s.get(&ResourceKey::mesh("default")).unwrap().unwrap();
        assert_eq!(
            s.put(MESH),
            CommandResult::Put {
                version: 2,
                created: false
            }
        );
        let second = s.get(&ResourceKey::mesh("default")).unwrap().unwrap();
        assert_eq!(second.meta.version, Some(2));
        assert_eq!(second.meta.creation_time, first.meta.creation_time);
        assert!(second.meta.modification_time >= first.meta.modification_time);
        let stale = Command::Put {
            resource: first.to_universal(),
            now: OffsetDateTime::now_utc(),
            expect_version: Some(1),
        };
        assert!(matches!(
            s.apply(stale),
            CommandResult::Refused(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn a_delete_with_an_expected_version_needs_that_version() {
        let mut s = MapState::default();
        s.put("type: Mesh\nname: default\n");
        s.put("type: Secret\nmesh: default\nname: s\ndata: YQ==\n");
        let key = ResourceKey::new(ResourceType::Secret, Some("default"), "s");
        let delete = |v| Command::Delete {
            key: key.clone(),
            force: false,
            expect_version: Some(v),
        };
        let CommandResult::Refused(Refusal::Conflict(msg)) = s.apply(delete(1)) else {
            panic!("a stale delete must be refused");
        };
        assert!(msg.contains("at version 2, not 1"), "{msg}");
        assert!(s.get(&key).unwrap().is_some());
        assert_eq!(s.apply(delete(2)), CommandResult::Deleted { cascaded: 0 });
        assert!(matches!(
            s.apply(delete(2)),
            CommandResult::Refused(Refusal::NotFound(_))
        ));
    }

    fn pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_meshtrust_data_planes_rely_on_needs_force() {
        let mut s = MapState::default();
        s.put("type: Mesh\nname: default\n");
        s.put("type: MeshIdentity\nname: id\nmesh: default\nspec:\n  selector:\n    dataplane:\n      matchLabels: {app: web}\n  provider:\n    type: Bundled\n    bundled:\n      autogenerate: {enabled: true}\n");
        let trust = |name: &str, domain: &str| {
            Resource::new(
                name,
                Some("default"),
                Spec::MeshTrust(mosaic_core::resource::MeshTrust {
                    spec: mosaic_core::resource::MeshTrustSpec {
                        trust_domain: domain.into(),
                        ca_bundles: vec![mosaic_core::resource::mesh_trust::CaBundle {
                            bundle_type: "Pem".into(),
                            pem: Some(mosaic_core::resource::mesh_trust::PemBundle {
                                value: pem(),
                            }),
                        }],
                    },
                    status: None,
                }),
            )
        };
        for (name, domain) in [
            ("east", "default.east.mesh.local"),
            ("other", "partner.example"),
        ] {
            let r = s.apply(Command::put(
                &trust(name, domain),
                OffsetDateTime::now_utc(),
            ));
            assert!(matches!(r, CommandResult::Put { .. }), "{r:?}");
        }
        let key = |n: &str| ResourceKey::new(ResourceType::MeshTrust, Some("default"), n);
        // A data plane of zone east that the identity selects relies on east's trust domain.
        s.put("type: Dataplane\nmesh: default\nname: web-1\nlabels:\n  app: web\n  kuma.io/zone: east\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n");
        let r = s.apply(Command::delete(key("east"), false));
        let CommandResult::Refused(Refusal::Conflict(msg)) = r else {
            panic!("{r:?}")
        };
        assert!(
            msg.contains("MeshIdentity \"id\"")
                && msg.contains("\"web-1\"")
                && msg.contains("?force=true"),
            "{msg}"
        );
        // Another trust domain is not relied on; force deletes the relied-on one.
        assert!(matches!(
            s.apply(Command::delete(key("other"), false)),
            CommandResult::Deleted { .. }
        ));
        assert!(matches!(
            s.apply(Command::delete(key("east"), true)),
            CommandResult::Deleted { .. }
        ));
    }

    #[test]
    fn deleting_a_zone_takes_the_meshtrusts_it_made() {
        let mut s = MapState::default();
        s.put("type: Mesh\nname: default\n");
        s.put("type: Zone\nname: west\n");
        for zone in ["east", "west"] {
            let t = mosaic_core::resource::zone::ZoneTrust {
                mesh: "default".into(),
                identity: "id".into(),
                trust_domain: format!("default.{zone}.mesh.local"),
                ca_bundles: vec![pem()],
            };
            let r = s.apply(Command::put(&t.mesh_trust(zone), OffsetDateTime::now_utc()));
            assert!(matches!(r, CommandResult::Put { .. }), "{r:?}");
        }
        let r = s.apply(Command::delete(
            ResourceKey::new(ResourceType::Zone, None, "west"),
            false,
        ));
        assert_eq!(r, CommandResult::Deleted { cascaded: 1 });
        let names: Vec<String> = s
            .list(ResourceType::MeshTrust, None)
            .unwrap()
            .into_iter()
            .map(|r| r.meta.name)
            .collect();
        assert_eq!(names, ["id.east"]);
    }

    #[test]
    fn mesh_scoped_resources_need_their_mesh() {
        let mut s = MapState::default();
        let dp = "type: Dataplane\nmesh: default\nname: dp-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n";
        let r = s.put(dp);
        assert!(
            matches!(r, CommandResult::Refused(Refusal::NotFound(ref m)) if m.contains("mesh \"default\" does not exist")),
            "{r:?}"
        );
        // Secrets too (as in Kuma): none can be planted before its Mesh exists.
        let r = s.put("type: Secret\nmesh: default\nname: token-1\ndata: dA==\n");
        assert!(
            matches!(r, CommandResult::Refused(Refusal::NotFound(ref m))
                if m.contains("create Mesh \"default\" first") && m.contains("without mtls")),
            "{r:?}"
        );
        assert!(s.list(ResourceType::Secret, None).unwrap().is_empty());
        // GlobalSecrets belong to no mesh; once the Mesh exists its Secrets are written.
        let r = s.put("type: GlobalSecret\nname: g\ndata: dA==\n");
        assert!(
            matches!(r, CommandResult::Put { created: true, .. }),
            "{r:?}"
        );
        s.put("type: Mesh\nname: default\n");
        let r = s.put("type: Secret\nmesh: default\nname: token-1\ndata: dA==\n");
        assert!(
            matches!(r, CommandResult::Put { created: true, .. }),
            "{r:?}"
        );
    }

    #[test]
    fn a_secret_in_use_cannot_be_deleted() {
        let mut s = MapState::default();
        s.put("type: Mesh\nname: default\n");
        s.put("type: Secret\nmesh: default\nname: token-1\ndata: dA==\n");
        s.put(MESH);
        let key = ResourceKey::new(ResourceType::Secret, Some("default"), "token-1");
        let r = s.apply(Command::delete(key.clone(), false));
        let CommandResult::Refused(Refusal::Conflict(msg)) = r else {
            panic!("{r:?}")
        };
        assert!(
            msg.contains("Mesh \"default\"")
                && msg.contains("mtls.backends[0].conf.fromCp.auth.token"),
            "{msg}"
        );
        s.put("type: Mesh\nname: default\n");
        assert_eq!(
            s.apply(Command::delete(key, false)),
            CommandResult::Deleted { cascaded: 0 }
        );
    }

    #[test]
    fn a_mesh_with_dataplanes_needs_force_and_cascades() {
        let mut s = MapState::default();
        s.put("type: Mesh\nname: default\n");
        s.put("type: Secret\nmesh: default\nname: other\ndata: dA==\n");
        s.put("type: Dataplane\nmesh: default\nname: dp-1\nlabels:\n  kuma.io/zone: east\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n");
        let r = s.apply(Command::delete(ResourceKey::mesh("default"), false));
        let CommandResult::Refused(Refusal::Conflict(msg)) = r else {
            panic!("{r:?}")
        };
        assert!(
            msg.contains("1 data plane(s)") && msg.contains("east") && msg.contains("force=true"),
            "{msg}"
        );
        assert_eq!(
            s.apply(Command::delete(ResourceKey::mesh("default"), true)),
            CommandResult::Deleted { cascaded: 2 }
        );
        assert!(
            s.list(ResourceType::Secret, Some("default"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn internal_records_first_writer_wins() {
        let mut s = MapState::default();
        let a = s.apply(Command::PutInternal {
            key: "k".into(),
            value: b"a".to_vec(),
            if_absent: true,
        });
        let b = s.apply(Command::PutInternal {
            key: "k".into(),
            value: b"b".to_vec(),
            if_absent: true,
        });
        assert_eq!(
            a,
            CommandResult::Internal {
                value: b"a".to_vec()
            }
        );
        assert_eq!(
            b,
            CommandResult::Internal {
                value: b"a".to_vec()
            }
        );
    }

    /// Mesh `default`, a Secret in it, and a Dataplane of a mesh that does not exist.
    fn mesh_secret_and_orphan() -> (Resource, Resource, Resource) {
        let mesh = parse_document(b"type: Mesh\nname: default\n").unwrap();
        let secret =
            parse_document(b"type: Secret\nmesh: default\nname: ca\ndata: dA==\n").unwrap();
        let orphan = parse_document(b"type: Dataplane\nmesh: other\nname: x\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n").unwrap();
        (mesh, secret, orphan)
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_sees_its_own_writes() {
        let mut s = MapState::default();
        let now = OffsetDateTime::now_utc();
        let (mesh, secret, orphan) = mesh_secret_and_orphan();
        let bad = Command::Batch(vec![Command::put(&mesh, now), Command::put(&orphan, now)]);
        assert!(matches!(
            s.apply(bad),
            CommandResult::Refused(Refusal::NotFound(_))
        ));
        assert!(
            s.get(&ResourceKey::mesh("default")).unwrap().is_none(),
            "nothing applied"
        );
        let good = Command::Batch(vec![Command::put(&mesh, now), Command::put(&secret, now)]);
        let r = s.apply(good);
        assert!(
            matches!(r, CommandResult::Batch(ref v) if v.len() == 2),
            "{r:?}"
        );
        assert_eq!(
            s.list(ResourceType::Secret, Some("default")).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_group_applies_each_command_on_its_own_in_order() {
        let mut s = MapState::default();
        let now = OffsetDateTime::now_utc();
        let (mesh, secret, orphan) = mesh_secret_and_orphan();
        // Two writers raced on one Secret with the same expected version: only the first wins.
        let group = Command::Group(vec![
            Command::put(&mesh, now),
            Command::put(&orphan, now),
            Command::put(&secret, now),
            Command::Put {
                resource: secret.to_universal(),
                now,
                expect_version: Some(0),
            },
            Command::delete(ResourceKey::mesh("missing"), false),
        ]);
        let CommandResult::Group(results) = s.apply(group) else {
            panic!("a group answers with a group of results")
        };
        assert_eq!(results.len(), 5, "{results:?}");
        assert_eq!(
            results[0],
            CommandResult::Put {
                version: 1,
                created: true
            }
        );
        assert!(matches!(
            results[1],
            CommandResult::Refused(Refusal::NotFound(_))
        ));
        // The Secret sees the Mesh written earlier in the same entry.
        assert_eq!(
            results[2],
            CommandResult::Put {
                version: 1,
                created: true
            }
        );
        assert!(
            matches!(results[3], CommandResult::Refused(Refusal::Conflict(_))),
            "{:?}",
            results[3]
        );
        assert!(matches!(
            results[4],
            CommandResult::Refused(Refusal::NotFound(_))
        ));
        assert!(s.get(&ResourceKey::mesh("default")).unwrap().is_some());
        assert_eq!(
            s.list(ResourceType::Secret, Some("default")).unwrap().len(),
            1
        );
        assert!(s.list(ResourceType::Dataplane, None).unwrap().is_empty());
    }

    #[test]
    fn missing_and_invalid() {
        let mut s = MapState::default();
        assert!(matches!(
            s.apply(Command::delete(ResourceKey::mesh("x"), false)),
            CommandResult::Refused(Refusal::NotFound(_))
        ));
        let bad = Command::Put {
            resource: serde_json::json!({"type": "Nope"}),
            now: OffsetDateTime::now_utc(),
            expect_version: None,
        };
        assert!(matches!(
            s.apply(bad),
            CommandResult::Refused(Refusal::Invalid(_))
        ));
    }
}
