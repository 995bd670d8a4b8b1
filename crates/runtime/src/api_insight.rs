//! `MeshInsight`s (`GET /mesh-insights[/{mesh}]`) and the `GlobalInsight` (`GET /global-insight`)
//! in Kuma's shapes (`MeshInsight` proto; `GlobalInsightBase` of Kuma's OpenAPI), counted from a
//! store's list function at request time (Kuma keeps them cached, refreshed every few seconds).
//!
//! Mosaic's DataplaneInsight holds the certificate's state, not an xDS connection, so a data
//! plane counts as *online* while it holds a certificate that has not expired, *offline*
//! otherwise; `partiallyDegraded` is a service's state when some of its data planes are online.

use std::collections::{BTreeMap, BTreeSet};

use mosaic_core::resource::{
    Resource, ResourceType, Spec,
    dataplane::{DataplaneInsightSpec, DataplaneSpec, GatewayKind, SERVICE_TAG},
};
use serde_json::{Map, Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::api_error::ApiFailure;

/// Online/offline counts (Kuma's `FullStatus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// All of them.
    pub total: u64,
    /// Online.
    pub online: u64,
    /// Offline.
    pub offline: u64,
    /// Partly online (services).
    pub partially_degraded: u64,
}

impl Status {
    fn add(&mut self, online: bool) {
        self.total += 1;
        if online {
            self.online += 1;
        } else {
            self.offline += 1;
        }
    }

    fn merge(&mut self, other: Status) {
        self.total += other.total;
        self.online += other.online;
        self.offline += other.offline;
        self.partially_degraded += other.partially_degraded;
    }

    /// `{total, online, offline, partiallyDegraded}`.
    pub fn to_json(self) -> Value {
        json!({
            "total": self.total,
            "online": self.online,
            "offline": self.offline,
            "partiallyDegraded": self.partially_degraded,
        })
    }
}

/// One mesh's counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshCounts {
    /// Every data plane.
    pub dataplanes: Status,
    /// Non-gateway data planes.
    pub standard: Status,
    /// Builtin gateways.
    pub gateway_builtin: Status,
    /// Delegated gateways.
    pub gateway_delegated: Status,
    /// Per issuing backend.
    pub issued_backends: BTreeMap<String, Status>,
    /// Per supported backend.
    pub supported_backends: BTreeMap<String, Status>,
    /// Per service (`kuma.io/service` of inbounds), for the services' states.
    pub services: BTreeMap<String, Status>,
    /// Gateway services, by kind.
    pub gateway_services: BTreeMap<String, (GatewayKind, Status)>,
    /// Resources of the mesh by type name.
    pub resources: BTreeMap<&'static str, u64>,
}

/// Whether a data plane with `insight` is online at `now`: it holds an unexpired certificate.
pub fn is_online(insight: Option<&DataplaneInsightSpec>, now: OffsetDateTime) -> bool {
    insight
        .and_then(|i| i.mtls.as_ref())
        .and_then(|m| m.certificate_expiration_time)
        .is_some_and(|t| t > now)
}

fn services_state(per_dp: &Status) -> (bool, bool) {
    (per_dp.online == per_dp.total, per_dp.online > 0)
}

// === impl MeshCounts ===

impl MeshCounts {
    /// Counts `mesh`'s resources by `list` at `now`.
    pub fn count<L, E>(list: &L, mesh: &str, now: OffsetDateTime) -> Result<Self, ApiFailure>
    where
        L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
        E: Into<ApiFailure>,
    {
        let mut out = MeshCounts::default();
        let insights: BTreeMap<String, DataplaneInsightSpec> =
            list(ResourceType::DataplaneInsight, Some(mesh))
                .map_err(Into::into)?
                .into_iter()
                .filter_map(|r| match r.spec {
                    Spec::DataplaneInsight(s) => Some((r.meta.name, s)),
                    _ => None,
                })
                .collect();
        let dataplanes = list(ResourceType::Dataplane, Some(mesh)).map_err(Into::into)?;
        for dp in &dataplanes {
            let Spec::Dataplane(spec) = &dp.spec else {
                continue;
            };
            let insight = insights.get(&dp.meta.name);
            out.add_dataplane(spec, insight, is_online(insight, now));
        }
        for rtype in ResourceType::ALL
            .into_iter()
            .filter(|t| t.is_mesh_scoped() && *t != ResourceType::DataplaneInsight)
        {
            let n = if rtype == ResourceType::Dataplane {
                dataplanes.len()
            } else {
                list(rtype, Some(mesh)).map_err(Into::into)?.len()
            };
            if n > 0 {
                out.resources.insert(rtype.as_str(), n as u64);
            }
        }
        Ok(out)
    }

    fn add_dataplane(
        &mut self,
        spec: &DataplaneSpec,
        insight: Option<&DataplaneInsightSpec>,
        online: bool,
    ) {
        self.dataplanes.add(online);
        match spec.networking.gateway.as_ref().map(|g| g.kind()) {
            None => self.standard.add(online),
            Some(GatewayKind::Builtin) => self.gateway_builtin.add(online),
            Some(GatewayKind::Delegated) => self.gateway_delegated.add(online),
        }
        if let Some(m) = insight.and_then(|i| i.mtls.as_ref()) {
            if !m.issued_backend.is_empty() {
                self.issued_backends
                    .entry(m.issued_backend.clone())
                    .or_default()
                    .add(online);
            }
            for b in &m.supported_backends {
                self.supported_backends
                    .entry(b.clone())
                    .or_default()
                    .add(online);
            }
        }
        if let Some(g) = &spec.networking.gateway {
            if let Some(service) = g.tags.get(SERVICE_TAG) {
                self.gateway_services
                    .entry(service.clone())
                    .or_insert((g.kind(), Status::default()))
                    .1
                    .add(online);
            }
        } else {
            let services: BTreeSet<&String> = spec
                .networking
                .inbound
                .iter()
                .filter_map(|i| i.tags.get(SERVICE_TAG))
                .collect();
            for s in services {
                self.services.entry(s.clone()).or_default().add(online);
            }
        }
    }

    /// Services as Kuma's `FullStatus`: online when every data plane is, partially degraded when
    /// some are, offline when none is.
    fn service_status<'a>(per_service: impl Iterator<Item = &'a Status>) -> Status {
        let mut out = Status::default();
        for s in per_service {
            out.total += 1;
            match services_state(s) {
                (true, _) => out.online += 1,
                (false, true) => out.partially_degraded += 1,
                (false, false) => out.offline += 1,
            }
        }
        out
    }

    fn gateway_service_status(&self, kind: GatewayKind) -> Status {
        Self::service_status(
            self.gateway_services
                .values()
                .filter(|(k, _)| *k == kind)
                .map(|(_, s)| s),
        )
    }

    /// The `MeshInsight` of `mesh` (its Mesh resource gives the times).
    pub fn to_mesh_insight(&self, mesh: &Resource) -> Value {
        let backends = |m: &BTreeMap<String, Status>| -> Value {
            Value::Object(
                m.iter()
                    .map(|(k, s)| (k.clone(), s.to_json()))
                    .collect::<Map<_, _>>(),
            )
        };
        let universal = mesh.to_universal();
        let mut gateway = self.gateway_builtin;
        gateway.merge(self.gateway_delegated);
        json!({
            "type": "MeshInsight",
            "name": mesh.meta.name,
            "creationTime": universal.get("creationTime"),
            "modificationTime": universal.get("modificationTime"),
            "dataplanes": self.dataplanes.to_json(),
            "dataplanesByType": {
                "standard": self.standard.to_json(),
                "gateway": gateway.to_json(),
                "gatewayBuiltin": self.gateway_builtin.to_json(),
                "gatewayDelegated": self.gateway_delegated.to_json(),
            },
            "policies": {},
            "dns": {},
            "mTLS": {
                "issuedBackends": backends(&self.issued_backends),
                "supportedBackends": backends(&self.supported_backends),
            },
            "services": {
                "total": self.services.len() + self.gateway_services.len(),
                "internal": self.services.len() + self.gateway_services.len(),
                "external": 0,
            },
            "resources": self.resources.iter().map(|(k, n)| (k.to_string(), json!({"total": n}))).collect::<Map<_, _>>(),
        })
    }
}

/// Every mesh's `MeshInsight`, sorted by name.
pub fn mesh_insights<L, E>(list: &L, now: OffsetDateTime) -> Result<Vec<Value>, ApiFailure>
where
    L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
    E: Into<ApiFailure>,
{
    let mut meshes = list(ResourceType::Mesh, None).map_err(Into::into)?;
    meshes.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    meshes
        .iter()
        .map(|m| Ok(MeshCounts::count(list, &m.meta.name, now)?.to_mesh_insight(m)))
        .collect()
}

/// The `GlobalInsight`: every mesh's counts summed, the global types' totals and the zones'
/// (`zones_online` of `zones_total` control planes online).
pub fn global_insight<L, E>(
    list: &L,
    now: OffsetDateTime,
    zones_total: u64,
    zones_online: u64,
) -> Result<Value, ApiFailure>
where
    L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
    E: Into<ApiFailure>,
{
    let meshes = list(ResourceType::Mesh, None).map_err(Into::into)?;
    let (mut standard, mut builtin, mut delegated) = Default::default();
    let (mut internal, mut gw_builtin, mut gw_delegated) = Default::default();
    let mut resources: BTreeMap<String, u64> = BTreeMap::new();
    for m in &meshes {
        let c = MeshCounts::count(list, &m.meta.name, now)?;
        Status::merge(&mut standard, c.standard);
        Status::merge(&mut builtin, c.gateway_builtin);
        Status::merge(&mut delegated, c.gateway_delegated);
        Status::merge(
            &mut internal,
            MeshCounts::service_status(c.services.values()),
        );
        Status::merge(
            &mut gw_builtin,
            c.gateway_service_status(GatewayKind::Builtin),
        );
        Status::merge(
            &mut gw_delegated,
            c.gateway_service_status(GatewayKind::Delegated),
        );
        for (k, n) in c.resources {
            *resources.entry(k.to_string()).or_default() += n;
        }
    }
    let global_secrets = list(ResourceType::GlobalSecret, None)
        .map_err(Into::into)?
        .len();
    if global_secrets > 0 {
        resources.insert("GlobalSecret".into(), global_secrets as u64);
    }
    let base = |s: Status| json!({"total": s.total, "online": s.online});
    Ok(json!({
        "createdAt": now.format(&Rfc3339).unwrap_or_default(),
        "meshes": {"total": meshes.len()},
        "dataplanes": {
            "standard": standard.to_json(),
            "gatewayBuiltin": builtin.to_json(),
            "gatewayDelegated": delegated.to_json(),
        },
        "policies": {"total": 0},
        "resources": resources.iter().map(|(k, n)| (k.clone(), json!({"total": n}))).collect::<Map<_, _>>(),
        "services": {
            "internal": internal.to_json(),
            "external": {"total": 0},
            "gatewayBuiltin": gw_builtin.to_json(),
            "gatewayDelegated": gw_delegated.to_json(),
        },
        "zones": {
            "controlPlanes": base(Status { total: zones_total, online: zones_online, ..Status::default() }),
            "zoneIngresses": base(Status::default()),
            "zoneEgresses": base(Status::default()),
        },
    }))
}

#[cfg(test)]
mod tests {
    use mosaic_core::resource::parse_document;

    use super::*;

    fn res(doc: &str) -> Resource {
        parse_document(doc.as_bytes()).expect("resource")
    }

    #[test]
    fn counts_follow_kumas_shape() {
        let now = OffsetDateTime::now_utc();
        let later = (now + time::Duration::hours(1)).format(&Rfc3339).unwrap();
        let store = [
            res("type: Mesh\nname: default\n"),
            res("type: Secret\nmesh: default\nname: s\ndata: YQ==\n"),
            res(
                "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n",
            ),
            res(
                "type: Dataplane\nmesh: default\nname: web-2\nnetworking:\n  address: 10.0.0.2\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n",
            ),
            res(
                "type: Dataplane\nmesh: default\nname: edge\nnetworking:\n  address: 10.0.0.3\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n",
            ),
            res(&format!(
                "type: DataplaneInsight\nmesh: default\nname: web-1\nmTLS:\n  issuedBackend: ca-1\n  supportedBackends: [ca-1]\n  certificateExpirationTime: \"{later}\"\n"
            )),
        ];
        let list = |t: ResourceType, m: Option<&str>| -> Result<Vec<Resource>, ApiFailure> {
            Ok(store
                .iter()
                .filter(|r| r.resource_type() == t && (m.is_none() || r.meta.mesh.as_deref() == m))
                .cloned()
                .collect())
        };
        let mi = &mesh_insights(&list, now).unwrap()[0];
        assert_eq!(mi["type"], "MeshInsight");
        assert_eq!(
            mi["dataplanes"],
            json!({"total": 3, "online": 1, "offline": 2, "partiallyDegraded": 0})
        );
        assert_eq!(mi["dataplanesByType"]["gatewayBuiltin"]["total"], 1);
        assert_eq!(mi["mTLS"]["issuedBackends"]["ca-1"]["online"], 1);
        assert_eq!(
            mi["resources"],
            json!({"Dataplane": {"total": 3}, "Secret": {"total": 1}})
        );
        let gi = global_insight(&list, now, 2, 1).unwrap();
        assert_eq!(gi["meshes"]["total"], 1);
        assert_eq!(gi["dataplanes"]["standard"]["total"], 2);
        assert_eq!(
            gi["services"]["internal"],
            json!({"total": 1, "online": 0, "offline": 0, "partiallyDegraded": 1})
        );
        assert_eq!(gi["services"]["gatewayBuiltin"]["offline"], 1);
        assert_eq!(
            gi["zones"]["controlPlanes"],
            json!({"total": 2, "online": 1})
        );
    }
}
