//! Splitting a response into chunks that each stay below a byte budget (Kuma broke on messages
//! over 10 MiB; we keep every message below ~1 MiB). All chunks share the nonce; the receiver
//! applies them together and acknowledges once.

use mosaic_proto::kds::{DiscoveryResponse, Resource, ResourceRef};
use prost::Message as _;

/// The default budget per message: 1 MiB minus room for the envelope.
pub const DEFAULT_CHUNK_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// What one response carries before it is split.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// The type.
    pub rtype: String,
    /// The nonce shared by all chunks.
    pub nonce: String,
    /// Whether this is an authoritative (prune) response.
    pub authoritative: bool,
    /// Upserts.
    pub resources: Vec<Resource>,
    /// Deletions.
    pub removed: Vec<ResourceRef>,
    /// The raft index the response reflects.
    pub global_index: u64,
}

/// Bytes an item adds to a message (field tag + length prefix + body).
fn field_len(body: usize) -> usize {
    1 + prost::length_delimiter_len(body) + body
}

/// Splits `out` into chunks of at most `budget` bytes of items each (an item larger than the
/// budget travels alone). Always at least one chunk, so an empty authoritative response still
/// reaches the receiver.
pub fn chunk(out: Outgoing, budget: usize) -> Vec<DiscoveryResponse> {
    let mut groups: Vec<(Vec<Resource>, Vec<ResourceRef>)> = vec![(Vec::new(), Vec::new())];
    let mut used = 0usize;
    for r in out.resources {
        let len = field_len(r.encoded_len());
        let current_empty = groups
            .last()
            .is_some_and(|(rs, rm)| rs.is_empty() && rm.is_empty());
        if used + len > budget && !current_empty {
            groups.push((Vec::new(), Vec::new()));
            used = 0;
        }
        used += len;
        if let Some(g) = groups.last_mut() {
            g.0.push(r);
        }
    }
    for r in out.removed {
        let len = field_len(r.encoded_len());
        let current_empty = groups
            .last()
            .is_some_and(|(rs, rm)| rs.is_empty() && rm.is_empty());
        if used + len > budget && !current_empty {
            groups.push((Vec::new(), Vec::new()));
            used = 0;
        }
        used += len;
        if let Some(g) = groups.last_mut() {
            g.1.push(r);
        }
    }
    let chunks = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (resources, removed))| DiscoveryResponse {
            r#type: out.rtype.clone(),
            nonce: out.nonce.clone(),
            authoritative: out.authoritative,
            resources,
            removed,
            chunk: u32::try_from(i).unwrap_or(u32::MAX),
            chunks,
            global_index: out.global_index,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, size: usize) -> Resource {
        Resource {
            r#type: "Secret".into(),
            mesh: "default".into(),
            name: name.into(),
            version: 1,
            json: vec![b'x'; size],
        }
    }

    #[test]
    fn splits_below_the_budget_and_keeps_everything() {
        let out = Outgoing {
            rtype: "Secret".into(),
            nonce: "n1".into(),
            authoritative: true,
            resources: (0..100).map(|i| res(&format!("s{i}"), 1000)).collect(),
            removed: vec![ResourceRef {
                r#type: "Secret".into(),
                mesh: "default".into(),
                name: "gone".into(),
            }],
            global_index: 7,
        };
        let chunks = chunk(out, 10_000);
        assert!(chunks.len() > 1);
        let n = chunks.len() as u32;
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!((c.chunk, c.chunks, c.nonce.as_str()), (i as u32, n, "n1"));
            assert!(c.authoritative);
            assert!(c.encoded_len() <= 10_000 + 200, "{}", c.encoded_len());
        }
        let total: usize = chunks.iter().map(|c| c.resources.len()).sum();
        assert_eq!(total, 100);
        assert_eq!(chunks.iter().map(|c| c.removed.len()).sum::<usize>(), 1);
    }

    #[test]
    fn empty_and_oversized() {
        let empty = chunk(
            Outgoing {
                rtype: "Mesh".into(),
                nonce: "n".into(),
                authoritative: true,
                ..Outgoing::default()
            },
            1000,
        );
        assert_eq!(empty.len(), 1);
        assert_eq!((empty[0].chunk, empty[0].chunks), (0, 1));
        let big = chunk(
            Outgoing {
                rtype: "Secret".into(),
                nonce: "n".into(),
                resources: vec![res("a", 5000), res("b", 10)],
                ..Outgoing::default()
            },
            1000,
        );
        assert_eq!(big.len(), 2);
        assert_eq!(big[0].resources[0].name, "a");
    }
}
