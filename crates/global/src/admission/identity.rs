//! Admission of MeshIdentities and MeshTrusts.
//!
//! A MeshIdentity's provider is tested as a Mesh backend is: a `Vault` provider issues a test
//! certificate for a SPIFFE ID of the identity's trust domain (`spiffe://<domain>/<path with
//! workload "mosaic-validation">`), exactly the kind of certificate its data planes will get, so
//! a role such as seed 002's (`allowed_uri_sans="spiffe://domain.name/*"`) is tested for what it
//! must sign; a provider that cannot issue is refused quoting Vault and nothing is stored. A trust
//! domain naming `{{ .Zone }}` is rendered with the first Zone the global knows (none yet: no test
//! here, and a note says each zone tests it when it issues). A provider only zones can log in to
//! (`{{ zone }}` in its auth, or no auth) is probed, as a backend is. A `Bundled` provider's CA
//! must load from the Secrets it names and, self-signed, needs `insecureAllowSelfSigned: true`
//! (Kuma's rule; `autogenerate` always makes a self-signed CA).
//!
//! A MeshTrust a zone made (`kuma.io/origin: zone`) is kept for that zone: a user's write over it
//! is refused with 409.

use std::sync::Arc;

use mosaic_ca::identity as provider;
use mosaic_core::{
    ca::{CaBackend as _, IssueRequest},
    datasource::SecretSource,
    resource::{
        MeshIdentitySpec, Resource, ResourceType,
        mesh_identity::{BundledProvider, IdentityProvider, VaultProvider},
        zone::DISPLAY_NAME_LABEL,
    },
    validate::{ValidationError, Violation},
};
use time::OffsetDateTime;

use super::{Admission, AdmissionError, Admitted, VaultCheck, check_vault_with};
use crate::{
    kds::zone_trust,
    store::{Command, ResourceKey, StoreSecrets},
};

/// The workload a provider's test SPIFFE ID names.
const TEST_WORKLOAD: &str = "mosaic-validation";

/// A MeshIdentity: its provider tested (see the module docs).
pub(super) async fn admit_identity(
    admission: &Admission,
    resource: &Resource,
    spec: &MeshIdentitySpec,
    now: OffsetDateTime,
) -> Result<Admitted, AdmissionError> {
    let mesh = resource.meta.mesh.as_deref().unwrap_or_default();
    let name = resource.meta.name.as_str();
    let secrets: Arc<dyn SecretSource> = Arc::new(StoreSecrets::new(admission.store.clone()));
    let mut notes = Vec::new();
    match &spec.provider {
        Some(IdentityProvider {
            provider_type,
            vault: Some(v),
            ..
        }) if provider_type == "Vault" => {
            if let Some(note) = check_vault_provider(admission, resource, spec, v, secrets).await? {
                notes.push(note);
            }
        }
        Some(IdentityProvider {
            provider_type,
            bundled: Some(b),
            ..
        }) if provider_type == "Bundled" => {
            check_bundled(mesh, name, spec, b, secrets.as_ref()).await?;
        }
        _ => {}
    }
    Ok(Admitted {
        command: Command::put(resource, now),
        notes,
    })
}

fn invalid(field: &str, message: impl Into<String>) -> AdmissionError {
    AdmissionError::Invalid(ValidationError {
        violations: vec![Violation::new(field.to_string(), message.into())],
    })
}

/// The test SPIFFE ID in `zone`: the identity's trust domain there and its path template with
/// the workload (and namespace, service account) `mosaic-validation`; a path reading other labels
/// becomes `/mosaic-validation`.
fn test_spiffe_id(
    resource: &Resource,
    spec: &MeshIdentitySpec,
    zone: &str,
) -> Result<String, String> {
    let mesh = resource.meta.mesh.as_deref().unwrap_or_default();
    let domain = spec.trust_domain(mesh, zone, &resource.meta.labels)?;
    let labels = [
        mosaic_core::resource::mesh_identity::WORKLOAD_LABEL,
        mosaic_core::resource::mesh_identity::NAMESPACE_LABEL,
        mosaic_core::resource::mesh_identity::SERVICE_ACCOUNT_LABEL,
    ]
    .into_iter()
    .map(|k| (k.to_string(), TEST_WORKLOAD.to_string()))
    .collect();
    Ok(spec
        .spiffe_id(&domain, &labels)
        .unwrap_or_else(|_| format!("spiffe://{domain}/{TEST_WORKLOAD}")))
}

async fn check_vault_provider(
    admission: &Admission,
    resource: &Resource,
    spec: &MeshIdentitySpec,
    vault: &VaultProvider,
    secrets: Arc<dyn SecretSource>,
) -> Result<Option<String>, AdmissionError> {
    let mesh = resource.meta.mesh.as_deref().unwrap_or_default();
    let name = resource.meta.name.as_str();
    let field = "spec.provider.vault";
    let names_zone = spec.trust_domain_template().contains(".Zone");
    let zone = if names_zone {
        let zones = admission.store.list(ResourceType::Zone, None)?;
        match zones.first() {
            Some(z) => z.meta.name.clone(),
            None => {
                return Ok(Some(format!(
                    "{field}: no test certificate was issued: the trust domain names {{{{ .Zone }}}} and no zone has joined yet; each zone tests the provider when it issues and reports it in its CA health (GET /zones/_overview, caHealth, backend \"{}\")",
                    provider::backend_name(name)
                )));
            }
        }
    } else {
        String::new()
    };
    let id = test_spiffe_id(resource, spec, &zone)
        .map_err(|e| invalid("spec.spiffeID", format!("{e}: fix the template")))?;
    let (backend, conf) = provider::vault_parts(name, vault, spec.expiry());
    let request = IssueRequest::for_identity(&id, spec.expiry());
    match check_vault_with(mesh, &backend, &conf, secrets, Some(request), field).await {
        Ok(VaultCheck::Issued(note)) => Ok(note.map(|n| format!("{field}: {n}"))),
        Ok(VaultCheck::Probed(note)) => Ok(Some(format!("{field}: {note}"))),
        Err(message) => Err(invalid(
            field,
            format!("the provider cannot issue {id}: {message}"),
        )),
    }
}

async fn check_bundled(
    mesh: &str,
    name: &str,
    spec: &MeshIdentitySpec,
    bundled: &BundledProvider,
    secrets: &dyn SecretSource,
) -> Result<(), AdmissionError> {
    let allow = bundled.insecure_allow_self_signed.unwrap_or(false);
    if bundled.autogenerated() {
        if !allow {
            return Err(invalid(
                "spec.provider.bundled.insecureAllowSelfSigned",
                "self-signed certificates are not allowed: autogenerate makes a self-signed CA in each zone, so set insecureAllowSelfSigned: true (as Kuma requires), or give ca.certificate and ca.privateKey",
            ));
        }
        return Ok(());
    }
    let (backend, cert) = provider::load_bundled(mesh, name, bundled, spec.expiry(), secrets)
        .map_err(|e| invalid("spec.provider.bundled.ca", e.to_string()))?;
    match provider::is_self_signed(&cert) {
        Ok(true) if !allow => {
            return Err(invalid(
                "spec.provider.bundled.insecureAllowSelfSigned",
                "self-signed certificates are not allowed: the CA in ca.certificate is self-signed; set insecureAllowSelfSigned: true, or use a CA signed by your organization's root",
            ));
        }
        Ok(_) => {}
        Err(e) => {
            return Err(invalid(
                "spec.provider.bundled.ca.certificate",
                format!("not a PEM certificate: {e}"),
            ));
        }
    }
    let req =
        IssueRequest::for_identity(&format!("spiffe://{mesh}/{TEST_WORKLOAD}"), spec.expiry());
    backend
        .validate_with(&req)
        .await
        .map_err(|e| invalid("spec.provider.bundled.ca", e.to_string()))
}

/// A MeshTrust: refused with 409 over one a zone made (it follows that zone's MeshIdentity).
pub(super) fn admit_trust(
    admission: &Admission,
    resource: &Resource,
    now: OffsetDateTime,
) -> Result<Admitted, AdmissionError> {
    if let Some(existing) = admission.store.get(&ResourceKey::of(resource))?
        && let Some(zone) = zone_trust::maker(&existing)
    {
        let identity = existing
            .meta
            .labels
            .get(DISPLAY_NAME_LABEL)
            .cloned()
            .unwrap_or_default();
        return Err(AdmissionError::Conflict(format!(
            "MeshTrust {:?} is kept for zone {zone:?}, made from its MeshIdentity {identity:?}: it changes when that MeshIdentity does; apply your own MeshTrust under another name",
            resource.meta.name
        )));
    }
    Ok(Admitted {
        command: Command::put(resource, now),
        notes: Vec::new(),
    })
}
