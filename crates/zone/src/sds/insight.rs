//! The DataplaneInsight of a served data plane: which backend issued its certificate, when it
//! expires, when it was last (re)issued and how many times. Written to the zone store (and so
//! synced to the global) whenever a new certificate is served.

use mosaic_core::resource::{
    Resource, ResourceType, Spec,
    dataplane::{DataplaneInsightSpec, DataplaneMtls},
};

use crate::{
    issuer::DataplaneCert,
    store::{StoreError, StoreKey, ZoneStore},
};

/// Records that `cert` is what its dataplane is served. A certificate already recorded (same
/// issue time, e.g. after a restart or on a second stream) changes nothing. `backends` are the
/// Mesh's backend names when the caller knows them (the issuer's built Mesh); otherwise the
/// stored Mesh is read.
pub fn record(
    store: &ZoneStore,
    cert: &DataplaneCert,
    backends: Option<Vec<String>>,
) -> Result<(), StoreError> {
    let existing = store.get_resource(
        ResourceType::DataplaneInsight,
        Some(&cert.mesh),
        &cert.dataplane,
    )?;
    let mut mtls = match existing {
        Some(Resource {
            spec: Spec::DataplaneInsight(DataplaneInsightSpec { mtls: Some(m) }),
            ..
        }) => m,
        _ => DataplaneMtls::default(),
    };
    // The disk cache keeps whole seconds: compare at that precision.
    if mtls
        .last_certificate_regeneration
        .map(|t| t.unix_timestamp())
        == Some(cert.issued_at.unix_timestamp())
        && mtls.issued_backend == cert.backend
    {
        return Ok(());
    }
    mtls.certificate_expiration_time = Some(cert.cert.not_after);
    mtls.last_certificate_regeneration = Some(cert.issued_at);
    mtls.certificate_regenerations = mtls.certificate_regenerations.saturating_add(1);
    mtls.issued_backend = cert.backend.clone();
    mtls.supported_backends = match backends {
        Some(names) => names,
        None => supported_backends(store, &cert.mesh)?,
    };
    let insight = Resource::new(
        &cert.dataplane,
        Some(&cert.mesh),
        Spec::DataplaneInsight(DataplaneInsightSpec { mtls: Some(mtls) }),
    );
    store.put_local(insight, time::OffsetDateTime::now_utc())?;
    Ok(())
}

/// Every backend name of the Mesh (all of them are trusted).
fn supported_backends(store: &ZoneStore, mesh: &str) -> Result<Vec<String>, StoreError> {
    let Some(item) = store.get(&StoreKey::mesh(mesh))? else {
        return Ok(Vec::new());
    };
    Ok(match item.to_resource() {
        Ok(Resource {
            spec: Spec::Mesh(m),
            ..
        }) => m
            .mtls
            .map(|t| t.backends.into_iter().map(|b| b.name).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    })
}
