//! The dataplane registry's SDS side: a data plane registers itself by sending its Dataplane in
//! node metadata `dataplane.resource` (YAML or JSON, Universal or Kubernetes form), or was
//! registered through the zone API. Either way its tags must be vouched for by its token, and
//! the certificate's identity is built from those tags only.

use mosaic_core::{
    resource::{
        Resource, ResourceType, Spec, UnknownFields,
        mesh_identity::{WORKLOAD_LABEL, best_match},
        parse::{Target, decode_with},
        unknown_fields::Decoded,
    },
    sds::{DATAPLANE_RESOURCE_METADATA, check_tags, check_workload, node_id},
    template::Tags,
};
use mosaic_proto::envoy::google::protobuf::{Struct, value::Kind};
use time::OffsetDateTime;

use super::{auth::Caller, error::SdsError};
use crate::store::{StoreKey, ZoneStore};

/// The Dataplane text a node sent in its metadata, if any.
pub fn dataplane_text(metadata: Option<&Struct>) -> Result<Option<&str>, SdsError> {
    let Some(field) = metadata.and_then(|m| m.fields.get(DATAPLANE_RESOURCE_METADATA)) else {
        return Ok(None);
    };
    match &field.kind {
        Some(Kind::StringValue(text)) => Ok(Some(text)),
        _ => Err(SdsError::BadDataplane {
            field: DATAPLANE_RESOURCE_METADATA,
            reason: "it must be a string holding the Dataplane as YAML or JSON".into(),
        }),
    }
}

/// Parses the Dataplane `text` a node sent (the node's mesh is assumed when the document names
/// none) and checks it names the caller. Decoded and validated by the same function as the zone's
/// and the global's APIs (`decode_for`), so a data plane cannot register what they would refuse.
/// Fields the zone does not know are dropped or refused by `policy` (`api.unknown_fields`).
pub fn parse_dataplane(
    caller: &Caller,
    text: &str,
    policy: UnknownFields,
) -> Result<Decoded, SdsError> {
    let target = Target {
        rtype: ResourceType::Dataplane,
        mesh: Some(&caller.mesh),
        name: None,
        document: "the Dataplane",
        given_by: "node.id",
    };
    let decoded =
        decode_with(text.as_bytes(), &target, policy).map_err(|e| SdsError::BadDataplane {
            field: DATAPLANE_RESOURCE_METADATA,
            reason: e.to_string(),
        })?;
    let resource = &decoded.resource;
    let named = node_id(
        resource.meta.mesh.as_deref().unwrap_or_default(),
        &resource.meta.name,
    );
    if named != caller.node_id {
        return Err(SdsError::DataplaneMismatch {
            resource: named,
            node: caller.node_id.clone(),
        });
    }
    Ok(decoded)
}

/// The tags of `dataplane`, once they fit its token (the tags it names match; with
/// `require_all_tags`, every tag is named) and its workload label fits the token's binding. As in
/// Kuma, a token bound to no workload is refused for a data plane labelled `kuma.io/workload`
/// whose MeshIdentity (Kuma's best match among the mesh's, in `store`) derives the SPIFFE ID from
/// that label: the label would otherwise be an identity the data plane picks for itself.
pub fn vouched_tags(
    store: &ZoneStore,
    caller: &Caller,
    dataplane: &Resource,
) -> Result<Tags, SdsError> {
    let Spec::Dataplane(spec) = &dataplane.spec else {
        return Err(SdsError::NotRegistered {
            mesh: caller.mesh.clone(),
            name: caller.name.clone(),
        });
    };
    let tags = spec.tags();
    check_tags(&tags, &caller.claims.tags, caller.rules.require_all_tags).map_err(|reason| {
        SdsError::Tags {
            name: caller.name.clone(),
            reason,
        }
    })?;
    check_workload(&caller.claims.workload, &dataplane.meta.labels).map_err(|reason| {
        SdsError::Tags {
            name: caller.name.clone(),
            reason,
        }
    })?;
    if caller.claims.workload.is_empty()
        && let Some(workload) = dataplane.meta.labels.get(WORKLOAD_LABEL)
    {
        let identities = store.list_resources(ResourceType::MeshIdentity, Some(&caller.mesh))?;
        let specs = identities.iter().filter_map(|r| match &r.spec {
            Spec::MeshIdentity(m) => Some((r.meta.name.as_str(), &m.spec)),
            _ => None,
        });
        if let Some((identity, spec)) = best_match(specs, &dataplane.meta.labels)
            && spec.uses_workload_label()
        {
            return Err(SdsError::Tags {
                name: caller.name.clone(),
                reason: format!(
                    "the Dataplane with {WORKLOAD_LABEL} label {workload:?} derives its identity from the workload (MeshIdentity {identity:?}), so it requires a workload-bound token: generate one with --workload {workload}"
                ),
            });
        }
    }
    Ok(tags)
}

/// Registers the Dataplane the node sent (stored, synced to the global), or finds the one
/// registered before; returns its vouched-for tags. Nothing is stored when a check fails.
pub fn register(
    store: &ZoneStore,
    zone: &str,
    caller: &Caller,
    sent: Option<&str>,
    policy: UnknownFields,
) -> Result<Tags, SdsError> {
    match sent {
        Some(text) => {
            let Decoded { resource, ignored } = parse_dataplane(caller, text, policy)?;
            let tags = vouched_tags(store, caller, &resource)?;
            let write = store.put_local(resource, OffsetDateTime::now_utc())?;
            if write.changed {
                tracing::info!(zone, mesh = %caller.mesh, dataplane = %caller.name, created = write.created, "Dataplane registered by its data plane");
                for field in &ignored {
                    tracing::info!(zone, mesh = %caller.mesh, dataplane = %caller.name, %field, "unknown field of the Dataplane ignored, as Kuma ignores it (api.unknown_fields = \"refuse\" refuses it)");
                }
            }
            Ok(tags)
        }
        None => {
            let stored = registered(store, caller)?;
            vouched_tags(store, caller, &stored)
        }
    }
}

/// The stored Dataplane of the caller.
pub fn registered(store: &ZoneStore, caller: &Caller) -> Result<Resource, SdsError> {
    store
        .get_resource(ResourceType::Dataplane, Some(&caller.mesh), &caller.name)?
        .ok_or_else(|| SdsError::NotRegistered {
            mesh: caller.mesh.clone(),
            name: caller.name.clone(),
        })
}

/// The store key of the caller's Dataplane.
pub fn dataplane_key(caller: &Caller) -> StoreKey {
    StoreKey::new(ResourceType::Dataplane, Some(&caller.mesh), &caller.name)
}
