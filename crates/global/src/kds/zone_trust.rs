//! The MeshTrusts zones make: a zone reports, in its ZoneInsight, every MeshTrust it made from
//! its MeshIdentities ([`ZoneTrust`]); the global keeps one MeshTrust per entry
//! ([`ZoneTrust::mesh_trust`]: `<identity>.<zone>`, labels `kuma.io/origin: zone` and
//! `kuma.io/zone`) and removes the zone's MeshTrusts it no longer reports, so every zone receives
//! every other zone's trust domains over GlobalToZone without anyone copying them. Deleting the
//! Zone removes them too (the store's plan cascades).

use std::collections::{BTreeMap, BTreeSet};

use mosaic_core::resource::{
    Resource, ResourceType, Spec,
    zone::{ORIGIN_LABEL, ZoneTrust},
};
use time::OffsetDateTime;

use crate::store::{Command, CommandResult, Refusal, ResourceKey, ResourceStore, StoreError};
use mosaic_kds::wire::ZONE_LABEL;

/// Whether `r` is a MeshTrust zone `zone` made (kept by the global for it).
pub fn made_by(r: &Resource, zone: &str) -> bool {
    matches!(r.spec, Spec::MeshTrust(_))
        && r.meta.labels.get(ORIGIN_LABEL).map(String::as_str) == Some("zone")
        && r.meta.labels.get(ZONE_LABEL).map(String::as_str) == Some(zone)
}

/// The zone that made `r`, when `r` is a MeshTrust a zone made.
pub fn maker(r: &Resource) -> Option<&str> {
    (matches!(r.spec, Spec::MeshTrust(_))
        && r.meta.labels.get(ORIGIN_LABEL).map(String::as_str) == Some("zone"))
    .then(|| r.meta.labels.get(ZONE_LABEL).map(String::as_str))
    .flatten()
}

/// Makes the MeshTrusts the global keeps for `zone` match `reported`. Returns, per refused
/// entry, its name and why (a mesh that does not exist, a name another MeshTrust holds, a CA
/// bundle that does not validate); the others are written. Unchanged entries are not rewritten.
pub async fn reconcile(
    store: &dyn ResourceStore,
    zone: &str,
    reported: &[ZoneTrust],
) -> Result<Vec<(String, String, String)>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let held: BTreeMap<ResourceKey, Resource> = store
        .list(ResourceType::MeshTrust, None)?
        .into_iter()
        .filter(|r| made_by(r, zone))
        .map(|r| (ResourceKey::of(&r), r))
        .collect();
    let mut rejected = Vec::new();
    let mut wanted = BTreeSet::new();
    let mut cmds = Vec::new();
    for entry in reported {
        let r = entry.mesh_trust(zone);
        let key = ResourceKey::of(&r);
        let name = r.meta.name.clone();
        wanted.insert(key.clone());
        if let Err(e) = r.validate() {
            rejected.push((entry.mesh.clone(), name, e.to_string()));
            continue;
        }
        if store.get(&ResourceKey::mesh(&entry.mesh))?.is_none() {
            rejected.push((
                entry.mesh.clone(),
                name,
                format!(
                    "mesh {:?} does not exist on the global: create it there first",
                    entry.mesh
                ),
            ));
            continue;
        }
        match held.get(&key) {
            Some(old) if old.spec == r.spec && old.meta.labels == r.meta.labels => continue,
            Some(_) => {}
            None => {
                if let Some(other) = store.get(&key)? {
                    rejected.push((
                        entry.mesh.clone(),
                        name,
                        format!(
                            "{key} exists and was not made by zone {zone:?} (labels {:?}): rename that MeshTrust",
                            other.meta.labels
                        ),
                    ));
                    continue;
                }
            }
        }
        cmds.push(Command::put(&r, now));
    }
    for key in held.keys().filter(|k| !wanted.contains(*k)) {
        cmds.push(Command::delete(key.clone(), true));
    }
    if cmds.is_empty() {
        return Ok(rejected);
    }
    let changes = cmds.len();
    if let CommandResult::Refused(why) = store.write(Command::Batch(cmds.clone())).await? {
        // Something changed meanwhile (a Mesh deleted): one by one, naming what is refused.
        tracing::debug!(refusal = ?why, "zone MeshTrusts: batch refused; writing one by one");
        for cmd in cmds {
            if let CommandResult::Refused(why) = store.write(cmd.clone()).await? {
                let what = match &cmd {
                    Command::Put { resource, .. } => {
                        resource["name"].as_str().unwrap_or("").to_string()
                    }
                    Command::Delete { key, .. } => key.name.clone(),
                    _ => String::new(),
                };
                let reason = match why {
                    Refusal::NotFound(m) | Refusal::Conflict(m) | Refusal::Invalid(m) => m,
                };
                rejected.push((String::new(), what, reason));
            }
        }
    }
    tracing::info!(%zone, changes, "the zone's MeshTrusts updated on the global");
    Ok(rejected)
}
