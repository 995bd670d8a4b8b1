//! Trust beyond the Mesh's own backends: every MeshTrust of a mesh (synced from the global: the
//! operator's, and those every zone made) goes into the mesh's trust bundle, and the MeshTrusts
//! this zone makes from its MeshIdentities (`meshTrustCreation: Enabled`: the identity's trust
//! domain here and its provider's CA certificates, from Vault the chain up to the root) are
//! reported to the hook, whence the ZoneInsight carries them to the global and the global to
//! every zone. Reported again whenever a MeshIdentity, Mesh or Secret changes and on the roots
//! refresh interval (a rotated root reaches the other zones); the hook hears only changes.

use std::{collections::BTreeSet, sync::Weak};

use mosaic_core::{
    ca::identity::split_pem,
    resource::{ResourceType, Spec, zone::ZoneTrust},
};
use time::OffsetDateTime;

use super::{Inner, Issuer, book_of};
use crate::store::{KdsType, ZoneStore};

/// Every CA certificate (PEM) of the MeshTrusts of `mesh` in `store`, in store order.
pub(super) fn mesh_trust_pems(store: &ZoneStore, mesh: &str) -> Vec<String> {
    let listed = match store.list_resources(ResourceType::MeshTrust, Some(mesh)) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(mesh, error = %e, "MeshTrusts unreadable; the trust bundle holds the mesh's backends only");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for r in listed {
        let Spec::MeshTrust(trust) = r.spec else {
            continue;
        };
        for bundle in trust.spec.ca_bundles {
            let Some(pem) = bundle.pem else { continue };
            match split_pem(&pem.value) {
                Ok(certs) => out.extend(certs),
                Err(e) => {
                    tracing::warn!(mesh, meshtrust = %r.meta.name, error = %e, "a MeshTrust CA bundle does not parse; left out of the trust bundle")
                }
            }
        }
    }
    out
}

/// The MeshTrusts this zone makes: one per MeshIdentity with a provider, meshTrustCreation
/// Enabled, a trust domain that renders and CA certificates known (sorted by mesh, identity).
pub(super) async fn zone_trusts(issuer: &Issuer) -> Vec<ZoneTrust> {
    let kind = KdsType::Resource(ResourceType::MeshIdentity);
    let meshes: BTreeSet<String> = match issuer.inner.store.list(kind, None) {
        Ok(items) => items.into_iter().filter_map(|i| i.key.mesh).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "MeshIdentities unreadable; this zone's MeshTrusts are not reported");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for mesh in meshes {
        let Ok(set) = issuer.mesh_backends(&mesh).await else {
            continue;
        };
        for id in &set.identities {
            if !id.issues() || !id.spec.mesh_trust_creation() {
                continue;
            }
            let Ok(trust_domain) = &id.trust_domain else {
                continue;
            };
            let Some(entry) = set.backends.get(&id.backend) else {
                continue;
            };
            issuer.ensure_roots(&mesh, &id.backend, entry).await;
            let roots = {
                let mut books = issuer.lock_books();
                book_of(&issuer.inner, &mut books, &mesh, &id.backend)
                    .bundle(OffsetDateTime::now_utc())
            };
            if roots.is_empty() {
                continue;
            }
            out.push(ZoneTrust {
                mesh: mesh.clone(),
                identity: id.name.clone(),
                trust_domain: trust_domain.clone(),
                ca_bundles: roots,
            });
        }
    }
    out
}

/// Reports this zone's MeshTrusts to the hook when they change (until the issuer is dropped).
pub(super) async fn report(inner: Weak<Inner>) {
    let mut last: Option<Vec<ZoneTrust>> = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let Some(hook) = strong.trust_hook.clone() else {
            return;
        };
        let changed = strong.trust_changed.clone();
        let every = strong.settings.roots_refresh_interval;
        let issuer = Issuer { inner: strong };
        let trusts = zone_trusts(&issuer).await;
        drop(issuer);
        if last.as_ref() != Some(&trusts) {
            tracing::info!(
                meshtrusts = trusts.len(),
                "this zone's MeshTrusts changed; reporting them to the global"
            );
            hook.set_mesh_trusts(trusts.clone());
            last = Some(trusts);
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(every.max(std::time::Duration::from_millis(100))) => {}
        }
    }
}
