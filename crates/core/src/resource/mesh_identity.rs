//! `MeshIdentity` (Kuma 2.13's shape): which data planes (`selector.dataplane.matchLabels`) get
//! which SPIFFE ID (`spiffeID.trustDomain`, `spiffeID.path`, templates) from which provider
//! (`provider.type`: Kuma's `Bundled`, or Mosaic's `Vault`, whose `provider.vault` takes a vault
//! backend's `conf.fromCp` fields). Which identity a data plane gets ([`best_match`]: Kuma's
//! rule) and the SPIFFE ID it renders to ([`MeshIdentitySpec::trust_domain`],
//! [`MeshIdentitySpec::spiffe_id`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{mesh::VaultFromCp, secure_source::SecureDataSource};
use crate::{
    duration::KumaDuration,
    spiffe_template::SpiffeTemplate,
    validate::{FieldPath, ValidationError, Validator},
};

/// Kuma's default trust domain template.
pub const DEFAULT_TRUST_DOMAIN: &str = "{{ .Mesh }}.{{ .Zone }}.mesh.local";
/// Kuma's default SPIFFE ID path template on Universal (`Workload` is the `kuma.io/workload` label).
pub const DEFAULT_UNIVERSAL_PATH: &str = "/workload/{{ .Workload }}";
/// The data-plane label `{{ .Workload }}` reads.
pub const WORKLOAD_LABEL: &str = "kuma.io/workload";
/// The data-plane label `{{ .Namespace }}` reads.
pub const NAMESPACE_LABEL: &str = "k8s.kuma.io/namespace";
/// The data-plane label `{{ .ServiceAccount }}` reads.
pub const SERVICE_ACCOUNT_LABEL: &str = "k8s.kuma.io/service-account";
/// Kuma's default lifetime of a workload certificate (`certificateParameters.expiry`).
pub const DEFAULT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The MeshIdentity that `labels` (a data plane's) select among `identities` (name, spec): the
/// one whose selector names the most labels, then the first by name, as Kuma's `BestMatched`.
pub fn best_match<'a>(
    identities: impl IntoIterator<Item = (&'a str, &'a MeshIdentitySpec)>,
    labels: &BTreeMap<String, String>,
) -> Option<(&'a str, &'a MeshIdentitySpec)> {
    identities
        .into_iter()
        .filter(|(_, spec)| spec.selects(labels))
        .min_by(|(an, a), (bn, b)| {
            let count = |s: &MeshIdentitySpec| s.match_labels().map_or(0, BTreeMap::len);
            count(b).cmp(&count(a)).then_with(|| an.cmp(bn))
        })
}

/// A MeshIdentity document's body: `spec` (Kuma keeps it under `spec` in both forms).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeshIdentity {
    /// The spec.
    #[serde(default)]
    pub spec: MeshIdentitySpec,
}

/// `spec` of a MeshIdentity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshIdentitySpec {
    /// Which data planes this identity is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<IdentitySelector>,
    /// The SPIFFE ID's templates.
    #[serde(default, rename = "spiffeID", skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<SpiffeId>,
    /// Who issues the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<IdentityProvider>,
}

/// `selector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySelector {
    /// `selector.dataplane`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<LabelSelector>,
}

/// Kuma's `LabelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every label must match; empty or absent selects every data plane (while a MeshIdentity
    /// without `selector.dataplane` selects none, as in Kuma).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// `spiffeID`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpiffeId {
    /// Template of the trust domain (default [`DEFAULT_TRUST_DOMAIN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// Template of the path (default [`DEFAULT_UNIVERSAL_PATH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `provider`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProvider {
    /// `Bundled` (Kuma's) or `Vault` (Mosaic's).
    #[serde(rename = "type", default)]
    pub provider_type: String,
    /// `provider.bundled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundled: Option<BundledProvider>,
    /// `provider.vault`: decoded by the resource reader (a vault backend's `conf.fromCp` fields
    /// plus `certificateParameters` and `meshTrustCreation`), never by serde directly.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub vault: Option<Box<VaultProvider>>,
}

/// `provider.bundled` (Kuma's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundledProvider {
    /// `Enabled` (default) or `Disabled`: whether a MeshTrust is made from this identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_trust_creation: Option<String>,
    /// Allow a self-signed CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_allow_self_signed: Option<bool>,
    /// The control plane makes the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autogenerate: Option<Autogenerate>,
    /// The operator's CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<BundledCa>,
    /// Certificate parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_parameters: Option<CertificateParameters>,
}

/// `provider.bundled.autogenerate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Autogenerate {
    /// Whether the control plane makes the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `provider.bundled.ca`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundledCa {
    /// The CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<SecureDataSource>,
    /// The CA's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecureDataSource>,
}

/// `certificateParameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateParameters {
    /// The data-plane certificates' lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<KumaDuration>,
}

/// `provider.vault` (Mosaic's): a vault backend's `conf.fromCp` plus the identity's own fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    /// The fields of a vault backend's `conf.fromCp` (address, namespace, pki, role, ...).
    #[serde(flatten)]
    pub from_cp: VaultFromCp,
    /// Certificate parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_parameters: Option<CertificateParameters>,
    /// `Enabled` (default) or `Disabled`: whether a MeshTrust is made from this identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_trust_creation: Option<String>,
}

/// The keys of `provider.vault` that are the identity's own, not `conf.fromCp`'s.
pub(crate) const VAULT_PROVIDER_OWN_FIELDS: [&str; 2] =
    ["certificateParameters", "meshTrustCreation"];

// === impl MeshIdentitySpec ===

impl MeshIdentitySpec {
    /// The trust domain template, Kuma's default when unset or empty.
    pub fn trust_domain_template(&self) -> &str {
        self.spiffe_id
            .as_ref()
            .and_then(|s| s.trust_domain.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_TRUST_DOMAIN)
    }

    /// The path template, Kuma's Universal default when unset or empty.
    pub fn path_template(&self) -> &str {
        self.spiffe_id
            .as_ref()
            .and_then(|s| s.path.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_UNIVERSAL_PATH)
    }

    /// The selector's labels (none: every data plane of the mesh).
    pub fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.selector
            .as_ref()
            .and_then(|s| s.dataplane.as_ref())
            .and_then(|d| d.match_labels.as_ref())
    }

    /// Whether a data plane with `labels` is selected: `selector.dataplane` is present and every
    /// `matchLabels` entry matches (none: all).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(selector) = self.selector.as_ref().and_then(|s| s.dataplane.as_ref()) else {
            return false;
        };
        selector
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The trust domain in `zone` of this identity of `mesh`: the template rendered with
    /// `.Mesh` and `.Zone` (the identity's own `kuma.io/zone` label wins over `zone`, as in
    /// Kuma), `label` reading the identity's labels; checked as a SPIFFE trust domain.
    pub fn trust_domain(
        &self,
        mesh: &str,
        zone: &str,
        identity_labels: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let text = self.trust_domain_template();
        let template = SpiffeTemplate::parse(text).map_err(|e| e.to_string())?;
        let zone = identity_labels
            .get("kuma.io/zone")
            .map_or(zone, String::as_str);
        let domain = template
            .render(text, &[("Mesh", mesh), ("Zone", zone)], identity_labels)
            .map_err(|e| format!("spiffeID.trustDomain: {e}"))?;
        crate::spiffe_template::check_trust_domain(&domain)
            .map_err(|e| format!("spiffeID.trustDomain: {e}"))?;
        Ok(domain)
    }

    /// The SPIFFE ID of a data plane with `labels` in `trust_domain`: `spiffe://` + the domain +
    /// the path template rendered with `.TrustDomain`, `.Workload`, `.Namespace` and
    /// `.ServiceAccount` (from the data plane's labels) and `label`; checked as a SPIFFE ID.
    pub fn spiffe_id(
        &self,
        trust_domain: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let text = self.path_template();
        let template = SpiffeTemplate::parse(text).map_err(|e| e.to_string())?;
        let get = |k: &str| labels.get(k).map_or("", String::as_str);
        let path = template
            .render(
                text,
                &[
                    ("TrustDomain", trust_domain),
                    ("Workload", get(WORKLOAD_LABEL)),
                    ("Namespace", get(NAMESPACE_LABEL)),
                    ("ServiceAccount", get(SERVICE_ACCOUNT_LABEL)),
                ],
                labels,
            )
            .map_err(|e| format!("spiffeID.path: {e}"))?;
        let id = format!("spiffe://{trust_domain}{path}");
        crate::spiffe_template::check_spiffe_id(&id)?;
        Ok(id)
    }

    /// Whether the SPIFFE ID's path derives from the data plane's `kuma.io/workload` label
    /// (`{{ .Workload }}` or `{{ label "kuma.io/workload" }}`, the Universal default included):
    /// then, as in Kuma, the data plane's token must be bound to that workload.
    pub fn uses_workload_label(&self) -> bool {
        SpiffeTemplate::parse(self.path_template()).is_ok_and(|t| {
            t.parts().iter().any(|p| match p {
                crate::spiffe_template::Part::Field(f) => f == "Workload",
                crate::spiffe_template::Part::Label(k) => k == WORKLOAD_LABEL,
                crate::spiffe_template::Part::Text(_) => false,
            })
        })
    }

    /// Whether a MeshTrust is made from this identity (`meshTrustCreation`, default Enabled).
    pub fn mesh_trust_creation(&self) -> bool {
        let mode = match self.provider.as_ref() {
            Some(IdentityProvider {
                bundled: Some(b), ..
            }) => b.mesh_trust_creation.as_deref(),
            Some(IdentityProvider { vault: Some(v), .. }) => v.mesh_trust_creation.as_deref(),
            _ => None,
        };
        mode != Some("Disabled")
    }

    /// The lifetime of its certificates (`certificateParameters.expiry`, Kuma's default 24h; a
    /// Vault provider without it uses its `dpCert.rotation.expiration`, or 24h).
    pub fn expiry(&self) -> std::time::Duration {
        let params = match self.provider.as_ref() {
            Some(IdentityProvider {
                bundled: Some(b), ..
            }) => b.certificate_parameters.as_ref(),
            Some(IdentityProvider { vault: Some(v), .. }) => v.certificate_parameters.as_ref(),
            _ => None,
        };
        params
            .and_then(|p| p.expiry.as_ref())
            .map(KumaDuration::as_duration)
            .unwrap_or(DEFAULT_EXPIRY)
    }

    fn validate(&self, path: &FieldPath, v: &mut Validator) {
        if let Some(spiffe) = &self.spiffe_id {
            let at = path.field("spiffeID");
            for (field, text) in [
                ("trustDomain", &spiffe.trust_domain),
                ("path", &spiffe.path),
            ] {
                if let Some(text) = text.as_deref().filter(|t| !t.is_empty())
                    && let Err(e) = SpiffeTemplate::parse(text)
                {
                    v.violation(&at.field(field), e.to_string());
                }
            }
        }
        if let Some(labels) = self.match_labels() {
            super::limits::check_count(
                v,
                &path
                    .field("selector")
                    .field("dataplane")
                    .field("matchLabels"),
                labels.len(),
                super::limits::MAX_LABELS,
                "labels",
                "selector",
                "select on fewer labels",
            );
        }
        if let Some(p) = &self.provider {
            p.validate(&path.field("provider"), v);
        }
    }
}

// === impl MeshIdentity ===

impl MeshIdentity {
    /// Kuma's checks, with Kuma's field paths (`spec.provider.bundled.ca`, ...).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        self.spec.validate(&FieldPath::from("spec"), &mut v);
        v.finish()
    }
}

// === impl IdentityProvider ===

impl IdentityProvider {
    fn validate(&self, path: &FieldPath, v: &mut Validator) {
        match self.provider_type.as_str() {
            "Bundled" => match &self.bundled {
                None => v.violation(&path.field("bundled"), "configuration needs to be defined"),
                Some(b) => b.validate(&path.field("bundled"), v),
            },
            "Vault" => match &self.vault {
                None => v.violation(
                    &path.field("vault"),
                    "configuration needs to be defined: address, pki, role and auth, as a vault backend's conf.fromCp",
                ),
                Some(p) => p.validate(&path.field("vault"), v),
            },
            t @ ("Spire" | "Extension") => v.violation(
                &path.field("type"),
                format!("{t:?} is not supported by Mosaic: use Bundled or Vault"),
            ),
            other => v.violation(
                &path.field("type"),
                format!("{other:?} must be one of [Bundled, Vault]"),
            ),
        }
        // A stray provider block is named only once the type itself is right.
        let known = matches!(self.provider_type.as_str(), "Bundled" | "Vault");
        if known && self.provider_type != "Bundled" && self.bundled.is_some() {
            v.violation(
                &path.field("bundled"),
                "is only used with type: Bundled: remove it or set type: Bundled",
            );
        }
        if known && self.provider_type != "Vault" && self.vault.is_some() {
            v.violation(
                &path.field("vault"),
                "is only used with type: Vault: remove it or set type: Vault",
            );
        }
    }
}

fn validate_mesh_trust_creation(mode: Option<&str>, path: &FieldPath, v: &mut Validator) {
    if let Some(m) = mode
        && !matches!(m, "Enabled" | "Disabled")
    {
        v.violation(path, format!("{m:?} must be one of [Enabled, Disabled]"));
    }
}

// === impl BundledProvider ===

impl BundledProvider {
    /// Whether the control plane makes the CA.
    pub fn autogenerated(&self) -> bool {
        self.autogenerate
            .as_ref()
            .and_then(|a| a.enabled)
            .unwrap_or(false)
    }

    fn validate(&self, path: &FieldPath, v: &mut Validator) {
        validate_mesh_trust_creation(
            self.mesh_trust_creation.as_deref(),
            &path.field("meshTrustCreation"),
            v,
        );
        let ca = path.field("ca");
        match (&self.ca, self.autogenerated()) {
            (Some(_), true) => v.violation(&ca, "shouldn't be defined once using autogenerated"),
            (None, false) => v.violation(
                &ca,
                "must be defined: certificate and privateKey (or set autogenerate.enabled: true)",
            ),
            (Some(c), false) => {
                for (field, source) in [
                    ("certificate", &c.certificate),
                    ("privateKey", &c.private_key),
                ] {
                    match source {
                        None => v.violation(&ca.field(field), "must be defined"),
                        Some(s) => s.validate(&ca.field(field), v),
                    }
                }
            }
            (None, true) => {}
        }
    }
}

// === impl VaultProvider ===

impl VaultProvider {
    fn validate(&self, path: &FieldPath, v: &mut Validator) {
        self.from_cp.validate(path, v);
        validate_mesh_trust_creation(
            self.mesh_trust_creation.as_deref(),
            &path.field("meshTrustCreation"),
            v,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Resource, Spec, parse_document};

    fn identity(doc: &str) -> MeshIdentitySpec {
        match parse_document(doc.as_bytes()) {
            Ok(Resource {
                spec: Spec::MeshIdentity(m),
                ..
            }) => m.spec,
            other => panic!("not a MeshIdentity: {other:?}"),
        }
    }

    fn refused(doc: &str) -> Vec<String> {
        match parse_document(doc.as_bytes()) {
            Err(e) => e.violations().into_iter().map(|v| v.field).collect(),
            Ok(r) => panic!("accepted: {r:?}"),
        }
    }

    const AUTO: &str = "type: MeshIdentity\nname: id\nmesh: default\nspec:\n  provider:\n    type: Bundled\n    bundled:\n      autogenerate:\n        enabled: true\n";

    #[test]
    fn defaults_are_kumas() {
        let spec = identity(AUTO);
        assert_eq!(
            spec.trust_domain_template(),
            "{{ .Mesh }}.{{ .Zone }}.mesh.local"
        );
        assert_eq!(spec.path_template(), "/workload/{{ .Workload }}");
        assert_eq!(spec.match_labels(), None);
    }

    #[test]
    fn best_match_is_kumas_most_labels_then_name() {
        let with = |labels: &[(&str, &str)]| {
            let mut spec = identity(AUTO);
            spec.selector = Some(IdentitySelector {
                dataplane: Some(LabelSelector {
                    match_labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                }),
            });
            spec
        };
        let all = with(&[]);
        let app = with(&[("app", "web")]);
        let app_v1 = with(&[("app", "web"), ("version", "v1")]);
        let none = identity(AUTO);
        let ids = [
            ("z-all", &all),
            ("b-app", &app),
            ("a-app", &app),
            ("v1", &app_v1),
            ("none", &none),
        ];
        let labels = |l: &[(&str, &str)]| -> BTreeMap<String, String> {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let pick = |l: &BTreeMap<String, String>| best_match(ids.iter().copied(), l).map(|m| m.0);
        assert_eq!(
            pick(&labels(&[("app", "web"), ("version", "v1")])),
            Some("v1")
        );
        assert_eq!(pick(&labels(&[("app", "web")])), Some("a-app"));
        assert_eq!(pick(&labels(&[("app", "db")])), Some("z-all"));
        // No selector: selects nothing.
        assert!(!none.selects(&labels(&[])));
        assert_eq!(best_match([("none", &none)], &labels(&[])), None);
    }

    #[test]
    fn spiffe_ids_render_as_kumas() {
        let spec = identity(AUTO);
        let td = spec
            .trust_domain("default", "zone-1", &BTreeMap::new())
            .unwrap();
        assert_eq!(td, "default.zone-1.mesh.local");
        let labels: BTreeMap<String, String> =
            [(WORKLOAD_LABEL.to_string(), "web".to_string())].into();
        assert_eq!(
            spec.spiffe_id(&td, &labels).unwrap(),
            "spiffe://default.zone-1.mesh.local/workload/web"
        );
        // The identity's own zone label wins.
        let own: BTreeMap<String, String> =
            [("kuma.io/zone".to_string(), "east".to_string())].into();
        assert_eq!(
            spec.trust_domain("default", "zone-1", &own).unwrap(),
            "default.east.mesh.local"
        );
        // Without the workload label the path has an empty segment: refused, saying so.
        let e = spec.spiffe_id(&td, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("empty segment"), "{e}");
        assert_eq!(spec.expiry(), DEFAULT_EXPIRY);
        assert!(
            spec.uses_workload_label(),
            "the Universal default path reads the workload"
        );
        let mut fixed = spec.clone();
        fixed.spiffe_id = Some(SpiffeId {
            trust_domain: None,
            path: Some("/app/{{ label \"app\" }}".into()),
        });
        assert!(!fixed.uses_workload_label());
        assert!(spec.mesh_trust_creation());
    }

    #[test]
    fn bundled_needs_a_ca_or_autogenerate() {
        let doc = AUTO.replace(
            "      autogenerate:\n        enabled: true\n",
            "      meshTrustCreation: Enabled\n",
        );
        assert_eq!(refused(&doc), ["spec.provider.bundled.ca"]);
        let doc = format!(
            "{AUTO}      ca:\n        certificate:\n          type: Secret\n          secretRef: {{kind: Secret, name: c}}\n"
        );
        assert_eq!(refused(&doc), ["spec.provider.bundled.ca"]);
        let doc = AUTO.replace("      autogenerate:\n        enabled: true\n", "      ca:\n        certificate:\n          type: Secret\n          secretRef: {kind: Secret, name: c}\n");
        assert_eq!(refused(&doc), ["spec.provider.bundled.ca.privateKey"]);
        let doc = AUTO.replace("type: Bundled\n", "type: Bundled\n    vault: {}\n");
        assert!(refused(&doc).contains(&"spec.provider.vault".to_string()));
    }

    #[test]
    fn bad_fields_are_named() {
        let doc = AUTO.replace(
            "      autogenerate:",
            "      meshTrustCreation: Sometimes\n      autogenerate:",
        );
        assert_eq!(refused(&doc), ["spec.provider.bundled.meshTrustCreation"]);
        let doc = AUTO.replace("type: Bundled", "type: Spire");
        assert_eq!(refused(&doc), ["spec.provider.type"]);
        let doc = format!(
            "{AUTO}  spiffeID:\n    trustDomain: \"{{{{ .Mesh \"\n    path: '{{{{ tag \"x\" }}}}'\n"
        );
        assert_eq!(
            refused(&doc),
            ["spec.spiffeID.trustDomain", "spec.spiffeID.path"]
        );
        let doc = format!("{AUTO}      certificateParameters:\n        expiry: 1parsec\n");
        assert_eq!(
            refused(&doc),
            ["spec.provider.bundled.certificateParameters.expiry"]
        );
    }

    #[test]
    fn vault_provider_takes_from_cp_fields_and_its_own() {
        let doc = "type: MeshIdentity\nname: v\nmesh: default\nspec:\n  provider:\n    type: Vault\n    vault:\n      address: https://vault.example.com:8200\n      mode: sign\n      pki: pki_int\n      role: example-dot-com\n      auth: {token: {secret: vault-token}}\n      certificateParameters: {expiry: 24h}\n";
        let spec = identity(doc);
        let vault = spec.provider.and_then(|p| p.vault).expect("vault");
        assert_eq!(vault.from_cp.pki, "pki_int");
        assert_eq!(vault.from_cp.mode.as_deref(), Some("sign"));
        assert_eq!(
            vault
                .certificate_parameters
                .and_then(|c| c.expiry)
                .map(|e| e.as_str().to_string()),
            Some("24h".into())
        );
        let bad = doc
            .replace("      role: example-dot-com\n", "")
            .replace("24h", "soon");
        assert_eq!(
            refused(&bad),
            ["spec.provider.vault.certificateParameters.expiry"]
        );
        let bad = doc.replace("      role: example-dot-com\n", "");
        assert_eq!(refused(&bad), ["spec.provider.vault.role"]);
        let bad = doc.replace("address: https://vault.example.com:8200", "address: ...");
        assert_eq!(refused(&bad), ["spec.provider.vault.address"]);
    }

    #[test]
    fn unknown_fields_are_dropped_and_reported() {
        use crate::resource::{UnknownFields, parse::parse_documents_with};
        let doc = format!("{AUTO}      colour: blue\n");
        let d = parse_documents_with(doc.as_bytes(), UnknownFields::Ignore).expect("kept");
        assert_eq!(d[0].ignored, ["spec.provider.bundled.colour"]);
        let doc = "type: MeshIdentity\nname: v\nmesh: default\nspec:\n  provider:\n    type: Vault\n    vault:\n      address: https://vault.example.com:8200\n      pki: pki\n      role: r\n      flavour: x\n      auth: {token: {secret: t}}\n";
        let d = parse_documents_with(doc.as_bytes(), UnknownFields::Ignore).expect("kept");
        assert_eq!(d[0].ignored, ["spec.provider.vault.flavour"]);
        assert!(parse_documents_with(doc.as_bytes(), UnknownFields::Refuse).is_err());
    }
}
