//! `BundleBoard`: which trust bundle each open SDS stream has had confirmed by its data plane.
//!
//! Each mesh's bundle has a generation, bumped when a root is added. A stream's
//! [`BundleReader`] records the generation of the last bundle its data plane ACKed (`mosaic-dp`
//! ACKs once `ca.pem` is written, Envoy once the secret is applied). Before the issuer hands out
//! the first certificates signed by a new root it waits until every stream that has been sent
//! a bundle confirmed one holding that root (or a deadline passed: a stuck data plane does not
//! hold back the mesh's rotation), so no data plane presents a certificate its peers in this zone
//! cannot verify yet.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::watch;

/// The bundle generations of every mesh and the streams reading them.
#[derive(Debug, Default)]
pub struct BundleBoard {
    meshes: Mutex<HashMap<String, MeshBoard>>,
}

#[derive(Debug)]
struct MeshBoard {
    generation: u64,
    readers: Vec<Weak<BundleReader>>,
    /// Ticks on every confirmation (waiters re-check).
    confirmations: watch::Sender<u64>,
}

/// One stream's view: whether it was sent a bundle, and the generation its data plane confirmed.
#[derive(Debug, Default)]
pub struct BundleReader {
    sent: AtomicBool,
    confirmed: AtomicU64,
}

impl Default for MeshBoard {
    fn default() -> Self {
        Self {
            generation: 0,
            readers: Vec::new(),
            confirmations: watch::channel(0).0,
        }
    }
}

// === impl BundleReader ===

impl BundleReader {
    /// A bundle was sent on the stream: from now on the stream counts.
    pub fn sent(&self) {
        self.sent.store(true, Ordering::Release);
    }
}

// === impl BundleBoard ===

impl BundleBoard {
    /// `mesh`'s current generation (0 until a root is added).
    pub fn generation(&self, mesh: &str) -> u64 {
        self.lock().get(mesh).map_or(0, |m| m.generation)
    }

    /// A new generation of `mesh`'s bundle (a root was added); returns it.
    pub fn bump(&self, mesh: &str) -> u64 {
        let mut meshes = self.lock();
        let board = meshes.entry(mesh.to_string()).or_default();
        board.generation += 1;
        board.generation
    }

    /// A reader for one stream of `mesh` (it stops counting when dropped).
    pub fn reader(&self, mesh: &str) -> Arc<BundleReader> {
        let reader = Arc::new(BundleReader::default());
        let mut meshes = self.lock();
        let board = meshes.entry(mesh.to_string()).or_default();
        board.readers.retain(|r| r.strong_count() > 0);
        board.readers.push(Arc::downgrade(&reader));
        reader
    }

    /// `reader`'s data plane confirmed a bundle of `generation`.
    pub fn confirmed(&self, mesh: &str, reader: &BundleReader, generation: u64) {
        reader.confirmed.fetch_max(generation, Ordering::AcqRel);
        if let Some(board) = self.lock().get(mesh) {
            board.confirmations.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Whether every stream of `mesh` that was sent a bundle confirmed one of `generation` or
    /// later.
    pub fn all_confirmed(&self, mesh: &str, generation: u64) -> bool {
        let meshes = self.lock();
        let Some(board) = meshes.get(mesh) else {
            return true;
        };
        board.readers.iter().filter_map(Weak::upgrade).all(|r| {
            !r.sent.load(Ordering::Acquire) || r.confirmed.load(Ordering::Acquire) >= generation
        })
    }

    /// Waits until [`BundleBoard::all_confirmed`] or `deadline`; whether all confirmed.
    pub async fn wait_confirmed(&self, mesh: &str, generation: u64, deadline: Instant) -> bool {
        let mut ticks = self
            .lock()
            .entry(mesh.to_string())
            .or_default()
            .confirmations
            .subscribe();
        loop {
            if self.all_confirmed(mesh, generation) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            // A stream that ends (its reader dropped) sends no tick: re-check now and then.
            let left = left.min(std::time::Duration::from_millis(500));
            let _ = tokio::time::timeout(left, ticks.changed()).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MeshBoard>> {
        self.meshes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waits_for_every_stream_that_was_sent_a_bundle() {
        let board = Arc::new(BundleBoard::default());
        assert!(
            board.all_confirmed("m", 1),
            "no stream: nothing to wait for"
        );
        let a = board.reader("m");
        let b = board.reader("m");
        let _never_sent = board.reader("m");
        a.sent();
        b.sent();
        let g = board.bump("m");
        assert_eq!(board.generation("m"), g);
        assert!(!board.all_confirmed("m", g));
        board.confirmed("m", &a, g);
        assert!(!board.all_confirmed("m", g));

        let waiter = {
            let board = board.clone();
            tokio::spawn(async move {
                board
                    .wait_confirmed("m", g, Instant::now() + Duration::from_secs(30))
                    .await
            })
        };
        board.confirmed("m", &b, g);
        assert!(waiter.await.unwrap(), "b's confirmation ends the wait");
        assert!(board.all_confirmed("other", 5), "meshes are apart");

        // A stream that never confirms holds the wait only until the deadline; a dropped one
        // not at all.
        let g2 = board.bump("m");
        board.confirmed("m", &a, g2);
        assert!(
            !board
                .wait_confirmed("m", g2, Instant::now() + Duration::from_millis(50))
                .await
        );
        drop(b);
        assert!(board.all_confirmed("m", g2));
    }
}
