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

/// `MeshBoard::readers` is not compacted below this length.
const MIN_COMPACT: usize = 64;

/// The bundle generations of every mesh and the streams reading them.
#[derive(Debug, Default)]
pub struct BundleBoard {
    meshes: Mutex<HashMap<String, MeshBoard>>,
}

#[derive(Debug)]
struct MeshBoard {
    generation: u64,
    readers: Vec<Weak<BundleReader>>,
    /// `readers` is cleared of ended streams when it grows to this length (amortized O(1) per
    /// new stream, rather than a scan of every stream each time one opens).
    compact_at: usize,
    /// The highest generation every stream was seen to have confirmed. Streams sent their
    /// first bundle later are sent one of this generation or later, so it stays settled; the
    /// check for it need not scan every stream for every certificate again.
    settled: u64,
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
            compact_at: MIN_COMPACT,
            settled: 0,
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
        if board.readers.len() >= board.compact_at {
            board.readers.retain(|r| r.strong_count() > 0);
            board.compact_at = (board.readers.len() * 2).max(MIN_COMPACT);
        }
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
        let mut meshes = self.lock();
        let Some(board) = meshes.get_mut(mesh) else {
            return true;
        };
        if generation <= board.settled {
            return true;
        }
        let all = board.readers.iter().filter_map(Weak::upgrade).all(|r| {
            !r.sent.load(Ordering::Acquire) || r.confirmed.load(Ordering::Acquire) >= generation
        });
        if all {
            board.settled = generation;
        }
        all
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

    #[test]
    fn a_settled_generation_stays_settled_for_streams_opened_later() {
        let board = BundleBoard::default();
        let a = board.reader("m");
        a.sent();
        let g = board.bump("m");
        board.confirmed("m", &a, g);
        assert!(board.all_confirmed("m", g));

        // A stream opened now is sent a bundle of generation g or later: it does not hold
        // back certificates under g's root, but it does those under a root added after.
        let late = board.reader("m");
        late.sent();
        assert!(board.all_confirmed("m", g));
        let g2 = board.bump("m");
        board.confirmed("m", &a, g2);
        assert!(!board.all_confirmed("m", g2));
        board.confirmed("m", &late, g2);
        assert!(board.all_confirmed("m", g2));
    }

    #[test]
    fn ended_streams_are_dropped_from_the_board_as_streams_open() {
        let board = BundleBoard::default();
        let kept: Vec<_> = (0..10).map(|_| board.reader("m")).collect();
        for _ in 0..1_000 {
            drop(board.reader("m"));
        }
        let len = board.lock().get("m").map(|m| m.readers.len());
        assert!(
            len.is_some_and(|len| len <= 2 * MIN_COMPACT + kept.len()),
            "1,000 ended streams are not all kept: {len:?}"
        );
    }
}
