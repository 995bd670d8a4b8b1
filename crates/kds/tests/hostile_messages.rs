//! Hostile KDS messages (#16 item 6): what one side of a KDS stream hands the other, as bytes
//! (prost decoding), as messages (chunk reassembly) and as resources (what a zone accepts of
//! what the global sends).
//!
//! Properties: nothing panics; a decoded message encodes back to a message that decodes equal;
//! chunk reassembly refuses broken sequences with a reason and never holds more chunks than a
//! response announced; `decode` accepts a resource only as valid, of its response's type, named
//! as its JSON names it, and what it accepts goes back on the wire and decodes to the same item.
//! `PROPTEST_CASES=N` raises the case counts.

use mosaic_core::{
    resource::{Resource, Spec, parse::parse_document},
    token::SigningKey,
};
use mosaic_kds::{
    KdsKey, KdsType, assemble::Assembler, decode::decode, item::KdsItem, respond::wire_resource,
    wire::KdsWire,
};
use mosaic_proto::kds::{
    DiscoveryRequest, DiscoveryResponse, Resource as WireResource, ResourceRef, ResourceVersion,
};
use proptest::{prelude::*, test_runner::Config};
use prost::Message;

fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Valid records of every global-to-zone kind, as the global sends them.
fn items() -> Vec<KdsItem> {
    let docs = [
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
        "type: Secret\nname: sec-1\nmesh: default\ndata: c2VjcmV0\n",
        "type: GlobalSecret\nname: g-1\ndata: c2VjcmV0\n",
        "type: Zone\nname: east\n",
        "type: MeshIdentity\nname: id-1\nmesh: default\nspec:\n  selector:\n    dataplane:\n      matchLabels: {}\n  spiffeID:\n    trustDomain: '{{ .Mesh }}.mesh.local'\n  provider:\n    type: Bundled\n    bundled:\n      autogenerate:\n        enabled: true\n",
    ];
    let mut out: Vec<KdsItem> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let r: Resource = parse_document(d.as_bytes()).expect("valid");
            KdsItem::from_resource(&r, i as u64 + 1)
        })
        .collect();
    let key = SigningKey::generate().expect("key");
    out.push(KdsItem::token_keys(
        KdsKey::new(KdsType::DataplaneTokenKey, None, "default"),
        9,
        &[key.public_key().clone()],
    ));
    out
}

fn kind_of(item: &KdsItem) -> KdsType {
    item.key.kind
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("default".to_string()),
        Just("Mesh".to_string()),
        Just("DataplaneTokenKey".to_string()),
        "[a-zA-Z0-9.-]{0,12}",
        "\\PC{0,16}",
    ]
}

/// A wire resource: a valid one, with fields replaced or its JSON changed.
fn wire() -> impl Strategy<Value = (KdsType, WireResource)> {
    let items = items();
    (
        prop::sample::select(items),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(any::<u64>()),
        prop_oneof![
            4 => Just(None),
            1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
            2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Some(vec![0xff, i.index(255) as u8, b])),
        ],
        prop::option::of(prop::sample::select(KdsType::GLOBAL_TO_ZONE.to_vec())),
    )
        .prop_map(|(item, ty, mesh, name, version, json, kind)| {
            let mut w = wire_resource(&item);
            if let Some(t) = ty {
                w.r#type = t;
            }
            if let Some(m) = mesh {
                w.mesh = m;
            }
            if let Some(n) = name {
                w.name = n;
            }
            if let Some(v) = version {
                w.version = v;
            }
            match json {
                None => {}
                // One byte of the real JSON changed.
                Some(bytes) if bytes.first() == Some(&0xff) && bytes.len() == 3 => {
                    let len = w.json.len().max(1);
                    if let Some(b) = w.json.get_mut(bytes[1] as usize % len) {
                        *b = bytes[2];
                    }
                }
                Some(bytes) => w.json = bytes,
            }
            (kind.unwrap_or(kind_of(&item)), w)
        })
}

fn resource_ref() -> impl Strategy<Value = ResourceRef> {
    (text(), text(), text()).prop_map(|(r#type, mesh, name)| ResourceRef { r#type, mesh, name })
}

fn response() -> impl Strategy<Value = DiscoveryResponse> {
    (
        text(),
        "[a-z0-9-]{0,8}",
        any::<bool>(),
        prop::collection::vec(wire().prop_map(|(_, w)| w), 0..4),
        prop::collection::vec(resource_ref(), 0..3),
        prop_oneof![Just(0u32), Just(1), 0u32..5, any::<u32>()],
        prop_oneof![Just(0u32), Just(1), 0u32..5, any::<u32>()],
        any::<u64>(),
    )
        .prop_map(
            |(r#type, nonce, authoritative, resources, removed, chunk, chunks, global_index)| {
                DiscoveryResponse {
                    r#type,
                    nonce,
                    authoritative,
                    resources,
                    removed,
                    chunk,
                    chunks,
                    global_index,
                }
            },
        )
}

fn request() -> impl Strategy<Value = DiscoveryRequest> {
    (
        text(),
        prop::collection::vec(
            (prop::option::of(resource_ref()), any::<u64>())
                .prop_map(|(r#ref, version)| ResourceVersion { r#ref, version }),
            0..4,
        ),
        text(),
    )
        .prop_map(|(r#type, known, response_nonce)| DiscoveryRequest {
            r#type,
            known,
            response_nonce,
            rejected: Vec::new(),
        })
}

/// Decodes `bytes` as each KDS message; what decodes encodes back to an equal message.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = DiscoveryResponse::decode(bytes) {
        prop_assert_eq!(
            DiscoveryResponse::decode(m.encode_to_vec().as_slice()).ok(),
            Some(m)
        );
    }
    if let Ok(m) = DiscoveryRequest::decode(bytes) {
        prop_assert_eq!(
            DiscoveryRequest::decode(m.encode_to_vec().as_slice()).ok(),
            Some(m)
        );
    }
    if let Ok(m) = WireResource::decode(bytes) {
        prop_assert_eq!(
            WireResource::decode(m.encode_to_vec().as_slice()).ok(),
            Some(m)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Random bytes as every KDS message: no panic; what decodes round-trips.
    #[test]
    fn random_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes)?;
    }

    /// Valid encoded messages with bytes changed, cut short or with a huge length prefix: no
    /// panic (prost refuses a length beyond the buffer instead of allocating it).
    #[test]
    fn changed_messages_decode_or_are_refused(
        resp in response(), req in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        huge_len in any::<bool>(),
    ) {
        for mut bytes in [resp.encode_to_vec(), req.encode_to_vec()] {
            if huge_len {
                // Field 4 (resources), wire type 2, length 2^35: far beyond the buffer.
                bytes.splice(0..0, [0x22, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
            }
            for (i, b) in &flips {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len().max(1)));
            }
            decode_all(&bytes)?;
        }
    }

    /// What a zone accepts of a wire resource: only a valid record of the response's kind, named
    /// as the wire names it; what it accepts goes back on the wire and decodes to the same item.
    #[test]
    fn zones_accept_only_valid_records_and_they_round_trip((kind, w) in wire()) {
        match decode(kind, &w) {
            Ok(item) => {
                prop_assert_eq!(item.key.kind, kind);
                prop_assert_eq!(w.r#type.as_str(), kind.as_str());
                prop_assert_eq!(&item.key.name, &w.name);
                prop_assert_eq!(item.version, w.version);
                match kind {
                    KdsType::DataplaneTokenKey => {
                        prop_assert!(item.public_keys().is_ok());
                    }
                    KdsType::Resource(rt) => {
                        let r = item.to_resource().map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(r.resource_type(), rt);
                        prop_assert!(r.validate().is_ok());
                        prop_assert!(!matches!(r.spec, Spec::Dataplane(_)));
                    }
                }
                let again = decode(kind, &wire_resource(&item)).map_err(TestCaseError::fail)?;
                prop_assert_eq!(again, item);
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    /// Chunk sequences in any order, count and nonce: complete responses come out whole,
    /// broken sequences are refused with a reason, and nothing panics.
    #[test]
    fn chunk_reassembly_never_panics(chunks in prop::collection::vec(response(), 1..8)) {
        let mut a = Assembler::new();
        for c in chunks {
            let announced = c.chunks.max(1);
            match a.push(c) {
                Ok(Some(done)) => prop_assert!(done.resources.len() <= 8 * 4),
                Ok(None) => prop_assert!(announced > 1),
                Err(e) => prop_assert!(!e.reason.is_empty()),
            }
        }
    }

    /// Known versions from any request: only the subscription's kind's entries count.
    #[test]
    fn known_versions_from_any_request(req in request(), kind in prop::sample::select(KdsType::GLOBAL_TO_ZONE.to_vec())) {
        let known = kind.known(&req.known);
        prop_assert!(known.len() <= req.known.len());
        if !kind.is_mesh_scoped() {
            prop_assert!(known.keys().all(|k| k.mesh.is_empty()));
        }
    }
}

/// Every seed record is accepted by a zone as the global sends it.
#[test]
fn every_seed_record_is_accepted() {
    for item in items() {
        let w = wire_resource(&item);
        let got = decode(item.key.kind, &w).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, item);
    }
}
