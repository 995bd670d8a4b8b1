//! Unknown fields in resource documents. Kuma 2.14 reads resources with `AllowUnknownFields`:
//! a field it does not know, anywhere in a spec, is dropped (`mtls: {ca: {builtin: }}` is stored
//! as `mtls: {}`). Mosaic does the same by default ([`UnknownFields::Ignore`]), but never
//! silently: the path of every dropped field is collected (by `serde_ignored` around the typed
//! decoding) so that the API, mosaicctl and the logs can say what was ignored.
//! [`UnknownFields::Refuse`] refuses such documents instead, naming each unknown field.
//!
//! Fields Mosaic keeps as written without knowing them one by one (a Mesh's `logging`,
//! `tracing`, ...; a Dataplane's `metrics`, `probes`, `networking.outbound`, ...) are not
//! unknown: they are kept and returned.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use super::{
    ResourceType, Spec,
    dataplane::{PASSTHROUGH_DATAPLANE_FIELDS, PASSTHROUGH_NETWORKING_FIELDS},
    mesh::{BackendType, BuiltinConf, PASSTHROUGH_MESH_FIELDS, ProvidedConf, VaultConf},
    mesh_identity::{
        CertificateParameters, MeshIdentity, VAULT_PROVIDER_OWN_FIELDS, VaultProvider,
    },
};
use crate::validate::{FieldPath, ValidationError, Violation};

/// What happens to a field a resource document has and Mosaic does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    /// Kuma's behaviour: the field is dropped (not stored, not synced) and reported as ignored.
    #[default]
    Ignore,
    /// The document is refused (400), naming each unknown field.
    Refuse,
}

/// A document decoded for a policy: the resource and the fields that were dropped from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The resource, without the ignored fields.
    pub resource: super::Resource,
    /// Paths of the ignored fields as written in the document (`mtls.ca`, `spec.mtls.ca` in the
    /// Kubernetes form, `mtls.backends[0].conf.foo`), in decoding order; empty under
    /// [`UnknownFields::Refuse`].
    pub ignored: Vec<String>,
}

/// The keys of a MeshIdentity's `provider.vault` that are not `conf.fromCp`'s.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VaultProviderOwn {
    #[serde(default)]
    certificate_parameters: Option<CertificateParameters>,
    #[serde(default)]
    mesh_trust_creation: Option<String>,
}

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The unknown fields found while decoding one document, as paths from its spec.
#[derive(Debug)]
pub(crate) struct Collector {
    policy: UnknownFields,
    found: Vec<String>,
}

// === impl UnknownFields ===

impl UnknownFields {
    /// The configuration value: `ignore` or `refuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownFields::Ignore => "ignore",
            UnknownFields::Refuse => "refuse",
        }
    }
}

impl std::fmt::Display for UnknownFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Collector ===

impl Collector {
    pub(crate) fn new(policy: UnknownFields) -> Self {
        Self {
            policy,
            found: Vec::new(),
        }
    }

    /// Decodes a spec of type `ty`, collecting (and, under `Ignore`, dropping) unknown fields.
    /// Unknown keys among the fields kept as written (a Mesh's and a Dataplane's `other`) are
    /// dropped under `Ignore` and left for the spec's validation to refuse under `Refuse`, with
    /// the messages it has always given.
    pub(crate) fn spec(&mut self, ty: ResourceType, value: Value) -> Result<Spec, ValidationError> {
        Ok(match ty {
            ResourceType::Mesh => {
                let mut spec: super::MeshSpec = self.typed(value, &FieldPath::root())?;
                self.kept_only(&mut spec.other, PASSTHROUGH_MESH_FIELDS, &FieldPath::root());
                if let Some(mtls) = &mut spec.mtls {
                    for (i, backend) in mtls.backends.iter_mut().enumerate() {
                        let path = FieldPath::from("mtls.backends").index(i).field("conf");
                        self.conf(backend.backend_type(), &mut backend.conf, &path);
                    }
                }
                Spec::Mesh(spec)
            }
            ResourceType::Dataplane => {
                let mut spec: super::DataplaneSpec = self.typed(value, &FieldPath::root())?;
                self.kept_only(
                    &mut spec.other,
                    PASSTHROUGH_DATAPLANE_FIELDS,
                    &FieldPath::root(),
                );
                self.kept_only(
                    &mut spec.networking.other,
                    PASSTHROUGH_NETWORKING_FIELDS,
                    &FieldPath::from("networking"),
                );
                Spec::Dataplane(spec)
            }
            ResourceType::Secret => Spec::Secret(self.typed(value, &FieldPath::root())?),
            ResourceType::GlobalSecret => {
                Spec::GlobalSecret(self.typed(value, &FieldPath::root())?)
            }
            ResourceType::Zone => Spec::Zone(self.typed(value, &FieldPath::root())?),
            ResourceType::ZoneInsight => Spec::ZoneInsight(self.typed(value, &FieldPath::root())?),
            ResourceType::DataplaneInsight => {
                Spec::DataplaneInsight(self.typed(value, &FieldPath::root())?)
            }
            ResourceType::MeshIdentity => Spec::MeshIdentity(Box::new(self.mesh_identity(value)?)),
            ResourceType::MeshTrust => Spec::MeshTrust(self.typed(value, &FieldPath::root())?),
        })
    }

    /// A MeshIdentity (`{spec: ...}`): `spec.provider.vault` is decoded apart, as a vault
    /// backend's `conf.fromCp` plus the identity's own fields, so that its unknown fields and
    /// shape errors are named as everywhere else.
    fn mesh_identity(&mut self, mut value: Value) -> Result<MeshIdentity, ValidationError> {
        let vault = value
            .get_mut("spec")
            .and_then(|s| s.get_mut("provider"))
            .and_then(Value::as_object_mut)
            .and_then(|p| p.remove("vault"));
        let mut identity: MeshIdentity = self.typed(value, &FieldPath::root())?;
        let Some(raw) = vault.filter(|v| !v.is_null()) else {
            return Ok(identity);
        };
        let at = FieldPath::from("spec.provider.vault");
        let Value::Object(mut fields) = raw else {
            return Err(ValidationError::single(
                at.as_str(),
                "must be a mapping: address, pki, role, auth, ... as a vault backend's conf.fromCp",
            ));
        };
        let own: Map<String, Value> = VAULT_PROVIDER_OWN_FIELDS
            .iter()
            .filter_map(|k| fields.remove(*k).map(|v| (k.to_string(), v)))
            .collect();
        let from_cp = self
            .typed(Value::Object(fields), &at)
            .map_err(|e| e.prefixed(at.as_str()))?;
        let own: VaultProviderOwn = self
            .typed(Value::Object(own), &at)
            .map_err(|e| e.prefixed(at.as_str()))?;
        if let Some(provider) = identity.spec.provider.as_mut() {
            provider.vault = Some(Box::new(VaultProvider {
                from_cp,
                certificate_parameters: own.certificate_parameters,
                mesh_trust_creation: own.mesh_trust_creation,
            }));
        }
        Ok(identity)
    }

    /// Decodes `value` as `T`; shape errors carry field paths (`serde_path_to_error`), fields
    /// `T` does not know are recorded under `at` (`serde_ignored`) and left out of the value.
    fn typed<T: DeserializeOwned>(
        &mut self,
        value: Value,
        at: &FieldPath,
    ) -> Result<T, ValidationError> {
        let (decoded, ignored) = decode_collecting::<T>(value)?;
        self.found.extend(
            ignored
                .iter()
                .map(|steps| at.join(&render(steps)).into_string()),
        );
        Ok(decoded)
    }

    /// Keys of `other` outside `kept`: recorded and removed under `Ignore`, left under `Refuse`.
    fn kept_only(&mut self, other: &mut Map<String, Value>, kept: &[&str], at: &FieldPath) {
        if self.policy == UnknownFields::Refuse {
            return;
        }
        other.retain(|key, _| {
            let known = kept.contains(&key.as_str());
            if !known {
                self.found
                    .push(at.field(&render(&[Step::Key(key.clone())])).into_string());
            }
            known
        });
    }

    /// A backend's raw `conf` (typed only when used): the fields its type does not know are
    /// recorded and removed from the raw value. A `conf` that does not decode is left as it is
    /// for validation to report.
    fn conf(&mut self, kind: Option<BackendType>, conf: &mut Option<Value>, at: &FieldPath) {
        let Some(raw) = conf.as_mut().filter(|c| c.is_object()) else {
            return;
        };
        let ignored = match kind {
            Some(BackendType::Builtin) => {
                decode_collecting::<BuiltinConf>(raw.clone()).map(|d| d.1)
            }
            Some(BackendType::Provided) => {
                decode_collecting::<ProvidedConf>(raw.clone()).map(|d| d.1)
            }
            Some(BackendType::Vault) => decode_collecting::<VaultConf>(raw.clone()).map(|d| d.1),
            None => return,
        };
        let Ok(ignored) = ignored else { return };
        for steps in &ignored {
            self.found.push(at.join(&render(steps)).into_string());
            remove(raw, steps);
        }
    }

    /// Every unknown field found, prefixed (`spec` in the Kubernetes form).
    pub(crate) fn finish(self, prefix: &str) -> Vec<String> {
        self.found
            .into_iter()
            .map(|p| FieldPath::from(prefix).join(&p).into_string())
            .collect()
    }
}

/// Decodes `value` as `T`, returning the paths of the fields `T` ignored.
fn decode_collecting<T: DeserializeOwned>(
    value: Value,
) -> Result<(T, Vec<Vec<Step>>), ValidationError> {
    let mut ignored = Vec::new();
    let decoded = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path<'_>| ignored.push(steps(&path)),
    ))
    .map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ValidationError::single(path, e.into_inner().to_string())
    })?;
    Ok((decoded, ignored))
}

/// `serde_ignored`'s path as keys and indexes (its `Option` and newtype steps add nothing).
fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    let mut at = path;
    loop {
        at = match at {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                out.push(Step::Index(*index));
                parent
            }
            serde_ignored::Path::Map { parent, key } => {
                out.push(Step::Key(key.clone()));
                parent
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => parent,
        };
    }
    out.reverse();
    out
}

/// Kuma's notation: `backends[0].conf.foo`.
fn render(steps: &[Step]) -> String {
    let mut path = FieldPath::root();
    for step in steps {
        path = match step {
            Step::Key(k) => path.field(k),
            Step::Index(i) => path.index(*i),
        };
    }
    path.into_string()
}

/// Removes the field at `steps` from `value`, if it is there.
fn remove(value: &mut Value, steps: &[Step]) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k),
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return,
        }
    }
    match (last, at) {
        (Step::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (Step::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

/// The violations that refuse `unknown` (the paths [`super::parse::from_value_with`] found
/// under `Refuse`).
pub fn refusals(unknown: &[String]) -> Vec<Violation> {
    unknown
        .iter()
        .map(|path| {
            let name = path.rsplit('.').next().unwrap_or(path);
            Violation::new(
                path.clone(),
                format!(
                    "unknown field `{name}`: remove it or fix its spelling (unknown fields are refused here; Kuma ignores them)"
                ),
            )
        })
        .collect()
}

/// Checks `resource` and applies `policy` to the unknown fields its decoding found: under
/// `Refuse` they are the violations (every one of them, before any other check, as a shape
/// error is); under `Ignore` they are returned beside the validated resource.
pub(crate) fn settle(
    resource: super::Resource,
    unknown: Vec<String>,
    policy: UnknownFields,
) -> Result<Decoded, ValidationError> {
    if policy == UnknownFields::Refuse && !unknown.is_empty() {
        // As a field of the wrong type does: the document is refused for its shape alone.
        return Err(ValidationError {
            violations: refusals(&unknown),
        });
    }
    resource.validate()?;
    Ok(Decoded {
        resource,
        ignored: match policy {
            UnknownFields::Ignore => unknown,
            UnknownFields::Refuse => Vec::new(),
        },
    })
}

/// What mosaicctl and the servers say about one ignored field: `unknown field mtls.ca ignored`.
pub fn ignored_message(path: &str) -> String {
    format!("unknown field {path} ignored")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resource::parse::{self, Target, parse_documents_with};

    fn ignored(doc: &str) -> (Decoded, serde_json::Value) {
        let mut all = parse_documents_with(doc.as_bytes(), UnknownFields::Ignore)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.len(), 1);
        let d = all.remove(0);
        let stored = d.resource.to_universal();
        (d, stored)
    }

    fn refused(doc: &str) -> Vec<Violation> {
        match parse_documents_with(doc.as_bytes(), UnknownFields::Refuse) {
            Err(e) => e.violations(),
            Ok(r) => panic!("accepted under refuse: {r:?}"),
        }
    }

    /// kumactl's own fixture (apply-mesh.input.yaml): Kuma stores it as `mtls: {}`.
    const KUMACTL_MESH: &str = "type: Mesh\nname: sample\nmtls:\n  ca:\n    builtin:\n";

    #[test]
    fn kumactls_mesh_fixture_is_stored_without_the_unknown_field() {
        let (d, stored) = ignored(KUMACTL_MESH);
        assert_eq!(d.ignored, ["mtls.ca"]);
        assert_eq!(
            stored,
            json!({"type": "Mesh", "name": "sample", "mtls": {}})
        );
        let v = refused(KUMACTL_MESH);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "mtls.ca");
        assert!(v[0].message.starts_with("unknown field `ca`"), "{v:?}");
    }

    #[test]
    fn nested_paths_in_lists_and_backend_confs() {
        let doc = "type: Mesh\nname: m\nmtls:\n  enabledBakend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n    dpCert:\n      rotation:\n        expiration: 1d\n        jitter: 5m\n    conf:\n      caCert:\n        RSAbits: 2048\n        size: 9\n      extra: true\n  - name: v\n    type: vault\n    bogus: 1\n    conf:\n      fromCp:\n        address: https://vault:8200\n        pki: pki\n        role: r\n        auth:\n          token:\n            secret: t\n            secertName: typo\n";
        let (d, stored) = ignored(doc);
        assert_eq!(
            d.ignored,
            [
                "mtls.backends[0].dpCert.rotation.jitter",
                "mtls.backends[1].bogus",
                "mtls.enabledBakend",
                "mtls.backends[0].conf.caCert.size",
                "mtls.backends[0].conf.extra",
                "mtls.backends[1].conf.fromCp.auth.token.secertName",
            ]
        );
        let mtls = &stored["mtls"];
        assert!(mtls.get("enabledBakend").is_none(), "{stored}");
        assert_eq!(
            mtls["backends"][0]["conf"],
            json!({"caCert": {"RSAbits": 2048}})
        );
        assert_eq!(
            mtls["backends"][0]["dpCert"],
            json!({"rotation": {"expiration": "1d"}})
        );
        assert!(mtls["backends"][1].get("bogus").is_none(), "{stored}");
        assert_eq!(
            mtls["backends"][1]["conf"]["fromCp"]["auth"],
            json!({"token": {"secret": "t"}})
        );
        let fields: Vec<String> = refused(doc).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, d.ignored);
    }

    #[test]
    fn top_level_fields_are_dropped_except_the_kept_ones() {
        let doc = "type: Mesh\nname: m\nlogging:\n  backends: []\nfuture: {a: 1}\n";
        let (d, stored) = ignored(doc);
        assert_eq!(d.ignored, ["future"]);
        assert_eq!(stored["logging"], json!({"backends": []}));
        assert!(stored.get("future").is_none());
        // Refused with the message the Mesh's validation has always given.
        let v = refused(doc);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "future");
        assert!(v[0].message.contains("a Mesh has mtls, logging"), "{v:?}");

        let dp = "type: Dataplane\nmesh: default\nname: dp\nevil: 1\nnetworking:\n  address: 10.0.0.1\n  inbounds: []\n  admin:\n    port: 9901\n  inbound:\n  - port: 80\n    health: {ready: true}\n    tags:\n      kuma.io/service: web\n";
        let (d, stored) = ignored(dp);
        assert_eq!(d.ignored, ["evil", "networking.inbounds"]);
        assert_eq!(stored["networking"]["admin"], json!({"port": 9901}));
        assert_eq!(
            stored["networking"]["inbound"][0]["health"],
            json!({"ready": true})
        );
        let fields: Vec<String> = refused(dp).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["evil", "networking.inbounds"]);

        let (d, _) = ignored("type: Zone\nname: east\nenabled: true\ningress: {}\n");
        assert_eq!(d.ignored, ["ingress"]);
        let (d, _) = ignored("type: Secret\nmesh: default\nname: s\ndata: dA==\nextra: x\n");
        assert_eq!(d.ignored, ["extra"]);
    }

    #[test]
    fn kubernetes_paths_start_with_spec() {
        let doc = "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: m\nspec:\n  mtls:\n    ca:\n      builtin: {}\n    backends:\n    - name: b\n      type: builtin\n      conf:\n        foo: 1\n";
        let (d, stored) = ignored(doc);
        assert_eq!(
            d.ignored,
            ["spec.mtls.ca", "spec.mtls.backends[0].conf.foo"]
        );
        assert_eq!(stored["mtls"]["backends"][0].get("conf"), Some(&json!({})));
        let fields: Vec<String> = refused(doc).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, d.ignored);
    }

    #[test]
    fn refusals_come_before_other_checks() {
        let doc = "type: Mesh\nname: m\nmtls:\n  ca: {}\n  enabledBackend: nope\n";
        let fields: Vec<String> = refused(doc).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["mtls.ca"]);
        // Ignored, the rest is still checked.
        let e = parse_documents_with(doc.as_bytes(), UnknownFields::Ignore).unwrap_err();
        assert_eq!(e.violations()[0].field, "mtls.enabledBackend");
    }

    #[test]
    fn decode_with_reports_ignored_fields_for_its_target() {
        let target = Target {
            rtype: ResourceType::Mesh,
            mesh: None,
            name: Some("sample"),
            document: "the body",
            given_by: "the URL",
        };
        let d = parse::decode_with(b"mtls:\n  ca: {}\n", &target, UnknownFields::Ignore).unwrap();
        assert_eq!(d.ignored, ["mtls.ca"]);
        assert_eq!(d.resource.meta.name, "sample");
        let Err(parse::DecodeError::Invalid(e)) =
            parse::decode_with(b"mtls:\n  ca: {}\n", &target, UnknownFields::Refuse)
        else {
            panic!("accepted under refuse");
        };
        assert_eq!(e.violations[0].field, "mtls.ca");
        // The lenient entry point and stored values read the same document.
        let r = parse::decode_for(b"mtls:\n  ca: {}\n", &target).unwrap();
        assert_eq!(r, d.resource);
        let again = parse::from_stored_value(
            json!({"type": "Mesh", "name": "sample", "mtls": {"ca": {}}, "version": 3}),
        )
        .unwrap();
        assert_eq!(again.meta.version, Some(3));
        assert_eq!(again.spec, d.resource.spec);
    }

    #[test]
    fn the_policy_reads_from_configuration_words() {
        #[derive(Deserialize)]
        struct C {
            unknown_fields: UnknownFields,
        }
        let c: C = serde_json::from_value(json!({"unknown_fields": "refuse"})).unwrap();
        assert_eq!(c.unknown_fields, UnknownFields::Refuse);
        assert_eq!(UnknownFields::default().as_str(), "ignore");
        assert!(serde_json::from_value::<C>(json!({"unknown_fields": "warn"})).is_err());
        assert_eq!(ignored_message("mtls.ca"), "unknown field mtls.ca ignored");
    }
}
