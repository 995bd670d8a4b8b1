//! Chunk reassembly: the chunks of one response (same type and nonce, `chunk` of `chunks`) are
//! collected until complete, then handed on together so they are applied in one transaction.

use std::collections::HashMap;

use mosaic_proto::kds::{DiscoveryResponse, Resource, ResourceRef};

/// Most chunks one response may be split into (a guard against absurd `chunks` values).
pub const MAX_CHUNKS: u32 = 100_000;

/// A complete response: every chunk's resources and removals, in chunk order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assembled {
    /// The resource type.
    pub type_url: String,
    /// The response's nonce.
    pub nonce: String,
    /// Whether it is authoritative (prune what it does not mention).
    pub authoritative: bool,
    /// Upserts.
    pub resources: Vec<Resource>,
    /// Removals.
    pub removed: Vec<ResourceRef>,
    /// The highest `global_index` of its chunks.
    pub global_index: u64,
}

/// A broken chunk sequence; the stream is restarted (the next authoritative response heals it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation in a {type_url} response (nonce {nonce:?}): {reason}")]
pub struct ChunkError {
    /// The type.
    pub type_url: String,
    /// The nonce.
    pub nonce: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug)]
struct Partial {
    nonce: String,
    parts: Vec<Option<DiscoveryResponse>>,
    received: usize,
}

/// Collects chunks per type.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: HashMap<String, Partial>,
}

// === impl Assembler ===

impl Assembler {
    /// An assembler with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether chunks of an incomplete response are held.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Adds a chunk; returns the response once its last chunk arrived.
    pub fn push(&mut self, chunk: DiscoveryResponse) -> Result<Option<Assembled>, ChunkError> {
        let fail = |reason: String| ChunkError {
            type_url: chunk.r#type.clone(),
            nonce: chunk.nonce.clone(),
            reason,
        };
        let chunks = chunk.chunks.max(1);
        if chunks > MAX_CHUNKS {
            return Err(fail(format!(
                "{chunks} chunks exceed the limit {MAX_CHUNKS}"
            )));
        }
        if chunk.chunk >= chunks {
            return Err(fail(format!(
                "chunk {} of {chunks} is out of range",
                chunk.chunk
            )));
        }
        if chunks == 1 && !self.pending.contains_key(&chunk.r#type) {
            return Ok(Some(assemble(vec![chunk])));
        }
        let partial = self
            .pending
            .entry(chunk.r#type.clone())
            .or_insert_with(|| Partial {
                nonce: chunk.nonce.clone(),
                parts: vec![None; chunks as usize],
                received: 0,
            });
        if partial.nonce != chunk.nonce {
            return Err(fail(format!(
                "it started before response {:?} was complete ({} of {} chunks received)",
                partial.nonce,
                partial.received,
                partial.parts.len()
            )));
        }
        if partial.parts.len() != chunks as usize {
            return Err(fail(format!(
                "chunks of one response disagree on their count ({} vs {chunks})",
                partial.parts.len()
            )));
        }
        let slot = &mut partial.parts[chunk.chunk as usize];
        if slot.is_some() {
            return Err(fail(format!("chunk {} arrived twice", chunk.chunk)));
        }
        *slot = Some(chunk.clone());
        partial.received += 1;
        if partial.received < partial.parts.len() {
            return Ok(None);
        }
        let Some(done) = self.pending.remove(&chunk.r#type) else {
            return Ok(None);
        };
        Ok(Some(assemble(done.parts.into_iter().flatten().collect())))
    }
}

fn assemble(parts: Vec<DiscoveryResponse>) -> Assembled {
    let mut out = Assembled::default();
    for (i, p) in parts.into_iter().enumerate() {
        if i == 0 {
            out.type_url = p.r#type;
            out.nonce = p.nonce;
        }
        out.authoritative |= p.authoritative;
        out.global_index = out.global_index.max(p.global_index);
        out.resources.extend(p.resources);
        out.removed.extend(p.removed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(ty: &str, nonce: &str, i: u32, n: u32, names: &[&str]) -> DiscoveryResponse {
        DiscoveryResponse {
            r#type: ty.into(),
            nonce: nonce.into(),
            authoritative: i == 0,
            resources: names
                .iter()
                .map(|n| Resource {
                    r#type: ty.into(),
                    name: n.to_string(),
                    ..Resource::default()
                })
                .collect(),
            chunk: i,
            chunks: n,
            ..DiscoveryResponse::default()
        }
    }

    #[test]
    fn out_of_order_chunks_reassemble_once() {
        let mut a = Assembler::new();
        assert_eq!(a.push(chunk("Secret", "n1", 2, 3, &["c"])).unwrap(), None);
        // Another type interleaves.
        let mesh = a.push(chunk("Mesh", "m1", 0, 1, &["m"])).unwrap().unwrap();
        assert_eq!(mesh.resources.len(), 1);
        assert_eq!(a.push(chunk("Secret", "n1", 0, 3, &["a"])).unwrap(), None);
        let done = a
            .push(chunk("Secret", "n1", 1, 3, &["b"]))
            .unwrap()
            .unwrap();
        let names: Vec<_> = done.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(done.authoritative);
        assert!(!a.is_pending());
        // chunks = 0 means unsplit.
        assert!(a.push(chunk("Zone", "z", 0, 0, &["z"])).unwrap().is_some());
    }

    #[test]
    fn broken_sequences_are_errors() {
        let mut a = Assembler::new();
        assert!(a.push(chunk("Secret", "n1", 3, 3, &[])).is_err());
        a.push(chunk("Secret", "n1", 0, 3, &[])).unwrap();
        assert!(a.push(chunk("Secret", "n1", 0, 3, &[])).is_err());
        assert!(a.push(chunk("Secret", "n1", 1, 4, &[])).is_err());
        let e = a.push(chunk("Secret", "n2", 0, 1, &[])).unwrap_err();
        assert!(e.to_string().contains("n1"), "{e}");
    }
}
