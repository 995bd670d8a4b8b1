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

#[cfg(test)]
mod tests {
    //! Hostile node metadata (#16 item 6): whatever a data plane puts in `dataplane.resource`
    //! and around it, the zone reads a Dataplane only of the caller's node id, or refuses it with
    //! a reason; nothing panics. `PROPTEST_CASES=N` raises the case count.

    use std::collections::BTreeMap;

    use mosaic_core::token::DataplaneClaims;
    use mosaic_proto::envoy::google::protobuf::{ListValue, Value};
    use proptest::prelude::*;

    use super::*;
    use crate::sds::auth::TokenRules;

    fn caller() -> Caller {
        Caller {
            node_id: "default.web-1".into(),
            mesh: "default".into(),
            name: "web-1".into(),
            claims: DataplaneClaims::new(
                "default",
                "web-1",
                BTreeMap::new(),
                OffsetDateTime::now_utc(),
                std::time::Duration::from_secs(60),
            ),
            rules: TokenRules::default(),
        }
    }

    const VALID: &str = "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: web\n";

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(VALID.to_string()),
            Just(VALID.replace("web-1", "web-2")),
            Just(VALID.replace("mesh: default", "mesh: other")),
            Just(VALID.replace("mesh: default\n", "")),
            Just(VALID.replace("name: web-1\n", "")),
            Just(VALID.replace("type: Dataplane", "type: Mesh")),
            Just(VALID.replace("8080", "80800")),
            Just(format!("{VALID}---\n{VALID}")),
            Just("{\"type\":\"Dataplane\",\"name\":\"web-1\",\"networking\":{\"address\":\"::1\",\"inbound\":[{\"port\":1,\"tags\":{\"kuma.io/service\":\"x\"}}]}}".to_string()),
            (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| {
                let mut s = VALID.to_string();
                let at = s.char_indices().nth(i.index(s.chars().count())).map_or(0, |(b, _)| b);
                s.insert(at, c);
                s
            }),
            any::<prop::sample::Index>().prop_map(|i| VALID[..i.index(VALID.len())].to_string()),
            "\\PC{0,64}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value { kind: None }),
            any::<f64>().prop_map(|f| Value {
                kind: Some(Kind::NumberValue(f))
            }),
            any::<bool>().prop_map(|b| Value {
                kind: Some(Kind::BoolValue(b))
            }),
            any::<i32>().prop_map(|n| Value {
                kind: Some(Kind::NullValue(n))
            }),
            text().prop_map(|s| Value {
                kind: Some(Kind::StringValue(s))
            }),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|values| Value {
                    kind: Some(Kind::ListValue(ListValue { values })),
                }),
                prop::collection::hash_map("[a-z.]{0,18}", inner, 0..4).prop_map(|fields| Value {
                    kind: Some(Kind::StructValue(Struct { fields })),
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any node metadata: the Dataplane text is read only from a string field; a Dataplane
        /// accepted from it is the caller's (type, mesh, name) and valid; a refusal names the
        /// metadata field.
        #[test]
        fn node_metadata_registers_only_the_callers_dataplane(
            resource in prop::option::of(value()),
            others in prop::collection::hash_map("[a-z.]{0,18}", value(), 0..3),
            policy in prop_oneof![Just(UnknownFields::Ignore), Just(UnknownFields::Refuse)],
        ) {
            let mut fields = others;
            if let Some(v) = resource {
                fields.insert(DATAPLANE_RESOURCE_METADATA.to_string(), v);
            }
            let metadata = Struct { fields };
            match dataplane_text(Some(&metadata)) {
                Ok(None) => prop_assert!(!metadata.fields.contains_key(DATAPLANE_RESOURCE_METADATA)),
                Ok(Some(text)) => match parse_dataplane(&caller(), text, policy) {
                    Ok(d) => {
                        prop_assert_eq!(d.resource.resource_type(), ResourceType::Dataplane);
                        prop_assert_eq!(d.resource.meta.mesh.as_deref(), Some("default"));
                        prop_assert_eq!(d.resource.meta.name.as_str(), "web-1");
                        prop_assert!(d.resource.validate().is_ok());
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                },
                Err(e) => prop_assert!(e.to_string().contains(DATAPLANE_RESOURCE_METADATA), "{e}"),
            }
        }
    }

    #[test]
    fn the_valid_dataplane_is_accepted() {
        let d = parse_dataplane(&caller(), VALID, UnknownFields::Refuse).expect("valid");
        assert_eq!(d.resource.meta.name, "web-1");
    }
}
