//! What a zone accepts of what the global sends: one wire resource to a [`KdsItem`], parsed and
//! validated, or the reason it is rejected (the NACK's text). The zone applies the accepted ones;
//! the benchmark's simulated zones check with the same code.

use mosaic_core::{
    resource::{Owner, ResourceType, parse::from_stored_value, validate_name},
    token::{KeyAlgorithm, PublicKey},
};
use mosaic_proto::kds::Resource as WireResource;

use crate::{KdsKey, KdsType, item::KdsItem};

/// One wire resource to a record, or the reason it is rejected.
pub fn decode(kind: KdsType, wire: &WireResource) -> Result<KdsItem, String> {
    let what = match wire.mesh.is_empty() {
        true => format!("{} {:?}", wire.r#type, wire.name),
        false => format!("{} {:?} in mesh {:?}", wire.r#type, wire.name, wire.mesh),
    };
    if wire.r#type != kind.as_str() {
        return Err(format!(
            "{what} arrived in a {kind} response: send it in a {} response",
            wire.r#type
        ));
    }
    if kind.owner() != Owner::Global {
        return Err(format!(
            "{what}: {kind} is zone-owned; the global cannot send it to a zone"
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&wire.json)
        .map_err(|e| format!("{what}: the JSON does not parse: {e}"))?;
    match kind {
        KdsType::DataplaneTokenKey => {
            // A mesh's keys are one item named after the mesh, not scoped to a mesh (the
            // global's wire form); they are stored under that name, where the SDS server reads
            // them. A mesh equal to the name is the same item spelled the other way.
            if !wire.mesh.is_empty() && wire.mesh != wire.name {
                return Err(format!(
                    "{what}: mesh: must be empty (the keys are named after their mesh)"
                ));
            }
            if let Err(e) = validate_name(ResourceType::Mesh, &wire.name) {
                return Err(format!("{what}: name: {e}"));
            }
            let keys: Vec<PublicKey> = serde_json::from_value(value)
                .map_err(|e| format!("{what}: not a list of public keys: {e}"))?;
            // Ed25519 keys are 32 bytes; imported Kuma RS256 keys an RSAPublicKey DER (2048 to
            // 8192 bits: under 1.1 KiB).
            for k in &keys {
                let fits = match k.alg {
                    KeyAlgorithm::EdDSA => k.bytes.len() == 32,
                    KeyAlgorithm::Rs256 => (64..=1100).contains(&k.bytes.len()),
                };
                if !fits {
                    return Err(format!(
                        "{what}: key {:?} is {} bytes; Ed25519 public keys are 32, RS256 ones an RSA public key of 2048 to 8192 bits",
                        k.kid,
                        k.bytes.len()
                    ));
                }
            }
            let key = KdsKey::new(kind, None, &wire.name);
            Ok(KdsItem::token_keys(key, wire.version, &keys))
        }
        KdsType::Resource(rtype) => {
            let resource = from_stored_value(value).map_err(|e| format!("{what}: {e}"))?;
            if resource.resource_type() != rtype {
                return Err(format!(
                    "{what}: the JSON describes a {}",
                    resource.resource_type()
                ));
            }
            let mesh = resource.meta.mesh.as_deref().unwrap_or_default();
            if resource.meta.name != wire.name || mesh != wire.mesh {
                return Err(format!(
                    "{what}: the JSON names {:?} in mesh {mesh:?}",
                    resource.meta.name
                ));
            }
            resource
                .validate()
                .map_err(|e| format!("{what} is invalid: {e}"))?;
            Ok(KdsItem::from_resource(&resource, wire.version))
        }
    }
}
